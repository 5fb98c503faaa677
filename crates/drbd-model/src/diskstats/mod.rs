//! Block device counters from `/sys/block/<dev>/stat`, and the rates derived
//! from two samples.
//!
//! Pure: [`parse_stat`] turns the file's one line into a [`DiskStat`];
//! [`derive()`] turns two samples and the time between them (measured by the
//! caller, no clock here) into an [`IoRates`]. Reading the files is the
//! caller's job.
//!
//! The line holds 11 fields (kernels before 4.18), 15 (with discards, 4.18+)
//! or 17 (with flushes, 5.5+); see the kernel's Documentation/block/stat.rst.
//! On a DRBD device (`drbdN`) the counters see only upper (application) I/O:
//! resync I/O goes to the backing device, so they give an app-only latency.

mod delta;
mod parse;

pub use delta::{derive, DeltaError, IoRates, SECTOR_BYTES};
pub use parse::{parse_stat, DiscardStat, DiskStat, FlushStat, StatError, FIELD_NAMES};
