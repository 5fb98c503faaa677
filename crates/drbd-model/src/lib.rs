//! The pure core of drbd-agent: what `drbdsetup events2` prints and what it
//! means.
//!
//! - [`events2`]: the line types, [`events2::parse_line`] and the formatter
//!   (drbd-utils' exact output, which the simulator prints);
//! - [`state`]: the replication state model a stream of lines builds
//!   ([`state::Model::apply`]);
//! - [`diskstats`]: `/sys/block/<dev>/stat` lines and the rates between two
//!   samples;
//! - [`units`]: durations, KiB sizes and rates as every configuration and
//!   scenario file writes them (one grammar).
//!
//! No tokio, no files, no clocks: every function here is deterministic, and
//! the daemon (drbd-agent) and the simulator (drbd-sim) both build on it.

#![forbid(unsafe_code)]

pub mod diskstats;
pub mod events2;
pub mod state;
pub mod units;
