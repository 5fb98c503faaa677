//! The `drbdsetup events2` line format: typed events ([`Event`]), a parser that
//! never panics ([`parse_line`]) and a formatter that prints model state
//! exactly as drbdsetup does ([`format`]).
//!
//! Unknown keys and unknown enum values are kept (as [`Field::Unknown`] and
//! the `Other` variants) and never cost the rest of a line.

mod parse;
mod types;

pub mod format;

pub use parse::{parse_line, ParseError, ParseErrorKind};
pub use types::*;
