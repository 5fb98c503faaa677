//! What to tell the service manager (systemd's `sd_notify` protocol) and
//! when: a small state machine, pure. The driver ([`super::driver`]) feeds
//! it the clock and the daemon's facts and writes what it returns to
//! `NOTIFY_SOCKET`.
//!
//! - `READY=1` once DRBD is settled: the first events2 initial dump has been
//!   applied, or DRBD is known to be unavailable and the agent serves anyway.
//! - `WATCHDOG=1` every half watchdog interval, only from [`Notifier::tick`],
//!   which the main loop calls: a wedged loop stops the pings; and only
//!   while the daemon's tasks are alive.
//! - `STATUS=` whenever the one-line summary changes.
//! - `RELOADING=1` + `MONOTONIC_USEC=` on a reload, `READY=1` after it.
//! - `STOPPING=1` on the way out; nothing after it.

use std::fmt;
use std::time::{Duration, Instant};

/// Longest `STATUS=` text sent.
const MAX_STATUS: usize = 400;

/// One assignment of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Ready,
    Reloading,
    /// `CLOCK_MONOTONIC` in µs when a reload started (sent with `Reloading`).
    MonotonicUsec(u64),
    Stopping,
    Watchdog,
    Status(String),
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready => f.write_str("READY=1"),
            Self::Reloading => f.write_str("RELOADING=1"),
            Self::MonotonicUsec(usec) => write!(f, "MONOTONIC_USEC={usec}"),
            Self::Stopping => f.write_str("STOPPING=1"),
            Self::Watchdog => f.write_str("WATCHDOG=1"),
            Self::Status(text) => write!(f, "STATUS={text}"),
        }
    }
}

/// Where the service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Started, DRBD not settled yet: no `READY=1` sent.
    Starting,
    Ready,
    /// A reload runs; `was_ready` says whether `READY=1` follows it.
    Reloading {
        was_ready: bool,
    },
    Stopping,
}

/// What the driver observed at a tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The first initial dump was applied, or DRBD is known unavailable.
    pub drbd_settled: bool,
    /// The daemon's own tasks run (the events2 supervisor is alive); no
    /// watchdog ping otherwise, so systemd restarts a broken agent.
    pub healthy: bool,
    /// The one-line status (see [`status_line`]).
    pub status: String,
}

/// The protocol's state machine.
#[derive(Debug, Clone)]
pub struct Notifier {
    phase: Phase,
    /// `WATCHDOG=1` this often (half of `WATCHDOG_USEC`); `None`: no watchdog.
    ping_every: Option<Duration>,
    last_ping: Option<Instant>,
    last_status: Option<String>,
}

impl Notifier {
    pub fn new(ping_every: Option<Duration>) -> Self {
        Self {
            phase: Phase::Starting,
            ping_every,
            last_ping: None,
            last_status: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// A tick of the main loop at `now`: a changed status, `READY=1` when DRBD
    /// just settled, `WATCHDOG=1` when one is due.
    pub fn tick(&mut self, now: Instant, facts: &Facts) -> Vec<Message> {
        let mut out = Vec::new();
        if self.phase == Phase::Stopping {
            return out;
        }
        self.status(&facts.status, &mut out);
        if self.phase == Phase::Starting && facts.drbd_settled {
            self.phase = Phase::Ready;
            out.push(Message::Ready);
        }
        if let Some(every) = self.ping_every.filter(|_| facts.healthy) {
            let due = self
                .last_ping
                .is_none_or(|last| now.saturating_duration_since(last) >= every);
            if due {
                self.last_ping = Some(now);
                out.push(Message::Watchdog);
            }
        }
        out
    }

    /// A reload starts at `monotonic_usec` (`CLOCK_MONOTONIC`).
    pub fn reloading(&mut self, monotonic_usec: u64) -> Vec<Message> {
        match self.phase {
            Phase::Stopping | Phase::Reloading { .. } => Vec::new(),
            phase => {
                self.phase = Phase::Reloading {
                    was_ready: phase == Phase::Ready,
                };
                vec![Message::Reloading, Message::MonotonicUsec(monotonic_usec)]
            }
        }
    }

    /// The reload is over (applied or refused): the new status, and
    /// `READY=1` if the service was ready before.
    pub fn reloaded(&mut self, facts: &Facts) -> Vec<Message> {
        let Phase::Reloading { was_ready } = self.phase else {
            return Vec::new();
        };
        let mut out = Vec::new();
        self.status(&facts.status, &mut out);
        if was_ready || facts.drbd_settled {
            self.phase = Phase::Ready;
            out.push(Message::Ready);
        } else {
            self.phase = Phase::Starting;
        }
        out
    }

    /// The service stops: `STOPPING=1`, once.
    pub fn stopping(&mut self) -> Vec<Message> {
        if self.phase == Phase::Stopping {
            return Vec::new();
        }
        self.phase = Phase::Stopping;
        vec![Message::Stopping]
    }

    fn status(&mut self, status: &str, out: &mut Vec<Message>) {
        if self.last_status.as_deref() != Some(status) {
            self.last_status = Some(status.to_owned());
            out.push(Message::Status(status.to_owned()));
        }
    }
}

/// The ping interval from `WATCHDOG_USEC` and `WATCHDOG_PID`: half the
/// watchdog timeout, and only if the watchdog is meant for `own_pid` (or no
/// pid is given). Unparsable or zero values mean no watchdog.
pub fn ping_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|usec| *usec > 0)?;
    if let Some(pid) = pid {
        let pid: u32 = pid.trim().parse().ok()?;
        if pid != own_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}

/// Whether DRBD can be reached, for the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrbdAvailability {
    /// The initial dump has not arrived yet and nothing failed so far.
    Waiting,
    Up,
    /// The stream failed; how it ended last.
    Unavailable(String),
}

/// What the status line summarises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusFacts {
    pub drbd: DrbdAvailability,
    pub resources: usize,
    /// Peer devices resyncing (either direction, paused included).
    pub resyncs: usize,
    /// Peer devices whose resync rate the agent sets.
    pub throttled: usize,
    /// The LINSTOR reporter's state (`not configured` until it exists).
    pub linstor: String,
    /// Why the last reload was refused, if it was.
    pub reload_error: Option<String>,
}

/// `STATUS=` text: one line, bounded.
pub fn status_line(facts: &StatusFacts) -> String {
    let drbd = match &facts.drbd {
        DrbdAvailability::Waiting => "drbd: waiting for events2".to_owned(),
        DrbdAvailability::Up => "drbd: up".to_owned(),
        DrbdAvailability::Unavailable(why) => format!("drbd: unavailable ({why})"),
    };
    let mut line = format!(
        "{drbd}; resources: {}; resyncs: {}; throttled: {}; linstor: {}",
        facts.resources, facts.resyncs, facts.throttled, facts.linstor
    );
    if let Some(error) = &facts.reload_error {
        line.push_str("; config reload failed, old config in force: ");
        line.push_str(error);
    }
    one_line(&line, MAX_STATUS)
}

/// Newlines and other control characters become spaces; cut at `max` bytes.
fn one_line(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > max {
        let mut end = max;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

/// The datagram for `messages`: one assignment per line.
pub fn datagram(messages: &[Message]) -> String {
    messages.iter().map(|m| format!("{m}\n")).collect()
}

#[cfg(test)]
#[path = "notify_tests.rs"]
mod tests;
