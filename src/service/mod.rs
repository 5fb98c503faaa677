//! Running under systemd: the `sd_notify` protocol (readiness, reload,
//! stop, watchdog, status line) and journald detection for the log format.

mod driver;
mod journal;
mod notify;

pub use driver::{Service, STALL_HOOK_ENV};
pub use journal::{parse_journal_stream, stderr_is_journal};
pub use notify::{
    datagram, ping_interval, status_line, DrbdAvailability, Facts, Message, Notifier, Phase,
    StatusFacts,
};
