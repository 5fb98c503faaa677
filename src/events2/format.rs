//! Model → events2 lines, exactly as drbdsetup prints them.
//!
//! The simulator keeps one [`Resource`] per node and resource; each kernel
//! state change is a batch that turns an old copy into a new one, and
//! [`batch`] prints the lines drbdsetup prints for it.

use chrono::{DateTime, FixedOffset};

use crate::state::Resource;

/// The drbdsetup flags that change what is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FormatOptions {
    /// `--statistics` given once (1) or twice (2); `--full` implies at least 1.
    pub statistics: u8,
    /// `--full`: every group on every change line.
    pub full: bool,
}

/// What kind of batch is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// Part of the initial dump: new objects print as `exists`.
    InitialDump,
    /// After `exists -`: new objects print as `create`.
    Live,
}

/// Appends to `out` the lines drbdsetup prints for one batch that turned
/// `old` into `new` (`old` = None: the resource is new; `new` = None: it was
/// destroyed). `prefix` is the timestamp prefix (see [`timestamp_prefix`]) or "".
pub fn batch(
    _old: Option<&Resource>,
    _new: Option<&Resource>,
    _kind: BatchKind,
    _options: &FormatOptions,
    _prefix: &str,
    _out: &mut String,
) {
}

/// The `--timestamps` prefix for a moment, with its trailing space:
/// `YYYY-MM-DDTHH:MM:SS.uuuuuu+HH:MM `.
pub fn timestamp_prefix(_at: DateTime<FixedOffset>) -> String {
    String::new()
}
