//! Resync throttle: hold the application's write latency at its target and
//! let the resync have the rest.
//!
//! TODO: design notes.

mod allocate;
mod glob;
mod law;
mod rate;

pub use allocate::{allocate, Allocation, Claim};
pub use glob::glob_match;
pub use law::*;
pub use rate::{parse_rate, KibPerSec, RateError};
