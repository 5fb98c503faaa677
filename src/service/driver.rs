//! The thin I/O side of the service-manager protocol: reads the
//! environment, observes the daemon, and writes what [`Notifier`] decides
//! to `NOTIFY_SOCKET` (through the `sd-notify` crate; nothing is sent when
//! the variable is unset).
//!
//! The main loop of `drbd-agent run` owns the [`Service`] and calls
//! [`Service::tick`] on every tick of [`Service::ticker`]: the watchdog
//! pings come from that loop, so a wedged loop stops them.

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};
use tracing::{debug, warn};

use super::notify::{
    ping_interval, status_line, DrbdAvailability, Facts, Message, Notifier, StatusFacts,
};
use crate::config::parse_duration;
use crate::daemon::Daemon;
use crate::runtime::DrbdState;

/// Test hook: when set (e.g. `2s`), the main loop stops ticking that long
/// after the start, as a wedged loop would (no more watchdog pings, no more
/// signal handling). Only for tests; unset in production.
pub const STALL_HOOK_ENV: &str = "DRBD_AGENT_TEST_STALL_MAIN_LOOP_AFTER";

/// The main loop ticks at least this often (readiness is noticed this fast).
const MAX_TICK: Duration = Duration::from_millis(250);

/// READY=1 is sent at the latest this long after the start, even if events2
/// neither delivered its dump nor failed (a hung drbdsetup): the agent
/// serves anyway, and the start must not run into `TimeoutStartSec=`.
const READY_DEADLINE: Duration = Duration::from_secs(45);

/// What the LINSTOR field of the status says until a reporter exists.
const LINSTOR_NOT_CONFIGURED: &str = "not configured";

/// The LINSTOR part of `STATUS=`: `connected`, or why not (one line).
fn linstor_summary(status: &crate::linstor::LinstorStatus) -> String {
    if status.up() {
        return "connected".to_owned();
    }
    let reason = status
        .node_check_message
        .as_deref()
        .or(status.last_error.as_deref())
        .unwrap_or("connecting");
    // One line, bounded (chars, not bytes: never split a character).
    format!("not connected ({reason})")
        .chars()
        .filter(|c| *c != '\n')
        .take(160)
        .collect()
}

/// The service-manager side of the main loop.
#[derive(Debug)]
pub struct Service {
    notifier: Notifier,
    tick_every: Duration,
    reload_error: Option<String>,
    started: Instant,
    stall_after: Option<Duration>,
    send_failed: bool,
}

impl Service {
    /// Reads `WATCHDOG_USEC`, `WATCHDOG_PID` and the stall test hook.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok();
        let ping_every = ping_interval(
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            std::process::id(),
        );
        let stall_after = var(STALL_HOOK_ENV).and_then(|text| match parse_duration(&text) {
            Ok(after) => Some(after),
            Err(e) => {
                warn!(variable = STALL_HOOK_ENV, error = %e, "test hook ignored");
                None
            }
        });
        // Tick at least twice per ping interval so pings are never late by
        // more than half of one.
        let tick_every = ping_every.map_or(MAX_TICK, |every| (every / 2).min(MAX_TICK));
        if let Some(every) = ping_every {
            debug!(ping_every_ms = every.as_millis() as u64, "systemd watchdog");
        }
        Self {
            notifier: Notifier::new(ping_every),
            tick_every: tick_every.max(Duration::from_millis(1)),
            reload_error: None,
            started: Instant::now(),
            stall_after,
            send_failed: false,
        }
    }

    /// The main loop's clock.
    pub fn ticker(&self) -> Interval {
        let mut ticker = tokio::time::interval(self.tick_every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker
    }

    /// One tick of the main loop: status, readiness, watchdog.
    pub async fn tick(&mut self, daemon: &Daemon) {
        if let Some(after) = self.stall_after {
            if self.started.elapsed() >= after {
                warn!(
                    variable = STALL_HOOK_ENV,
                    "test hook: the main loop stalls now"
                );
                std::future::pending::<()>().await;
            }
        }
        let facts = self.observe(daemon).await;
        let messages = self.notifier.tick(Instant::now().into_std(), &facts);
        self.send(&messages);
    }

    /// A reload begins (SIGHUP received).
    pub fn reloading(&mut self) {
        let Some(usec) = monotonic_usec() else {
            return;
        };
        let messages = self.notifier.reloading(usec);
        self.send(&messages);
    }

    /// A reload ended: `error` says why it was refused (`None`: applied).
    pub async fn reloaded(&mut self, daemon: &Daemon, error: Option<String>) {
        self.reload_error = error;
        let facts = self.observe(daemon).await;
        let messages = self.notifier.reloaded(&facts);
        self.send(&messages);
    }

    /// The daemon is about to stop.
    pub fn stopping(&mut self) {
        let messages = self.notifier.stopping();
        self.send(&messages);
    }

    async fn observe(&self, daemon: &Daemon) -> Facts {
        let (drbd_settled, drbd, resources, resyncs) = {
            let state = daemon.shared.state.read().await;
            let (resources, resyncs) = count_resyncs(&state);
            (
                drbd_settled(&state),
                availability(&state),
                resources,
                resyncs,
            )
        };
        let throttled = daemon
            .throttle
            .read()
            .await
            .peers
            .values()
            .filter(|peer| peer.rate_set_kib.is_some())
            .count();
        let linstor = match &daemon.linstor {
            None => LINSTOR_NOT_CONFIGURED.to_owned(),
            Some(status) => linstor_summary(&*status.read().await),
        };
        let status = status_line(&StatusFacts {
            drbd,
            resources,
            resyncs,
            throttled,
            linstor,
            reload_error: self.reload_error.clone(),
        });
        let overdue = !drbd_settled && self.started.elapsed() >= READY_DEADLINE;
        if overdue && self.notifier.phase() == super::notify::Phase::Starting {
            warn!(
                after_s = READY_DEADLINE.as_secs(),
                "no events2 initial dump yet; reporting ready anyway"
            );
        }
        Facts {
            drbd_settled: drbd_settled || overdue,
            healthy: daemon.shared.supervisor_alive(),
            status,
        }
    }

    fn send(&mut self, messages: &[Message]) {
        if messages.is_empty() {
            return;
        }
        let states: Vec<sd_notify::NotifyState<'_>> = messages.iter().map(to_state).collect();
        match sd_notify::notify(&states) {
            Ok(()) => self.send_failed = false,
            Err(e) => {
                // Warn once per run of failures, not at every tick.
                if !self.send_failed {
                    warn!(error = %e, "cannot notify the service manager");
                }
                self.send_failed = true;
            }
        }
    }
}

fn to_state(message: &Message) -> sd_notify::NotifyState<'_> {
    use sd_notify::NotifyState;
    match message {
        Message::Ready => NotifyState::Ready,
        Message::Reloading => NotifyState::Reloading,
        Message::MonotonicUsec(usec) => NotifyState::MonotonicUsec(i128::from(*usec)),
        Message::Stopping => NotifyState::Stopping,
        Message::Watchdog => NotifyState::Watchdog,
        Message::Status(text) => NotifyState::Status(text),
    }
}

/// `CLOCK_MONOTONIC` now, in µs.
fn monotonic_usec() -> Option<u64> {
    match sd_notify::NotifyState::monotonic_usec_now() {
        Ok(sd_notify::NotifyState::MonotonicUsec(usec)) => u64::try_from(usec).ok(),
        Ok(_) => None,
        Err(e) => {
            warn!(error = %e, "cannot read CLOCK_MONOTONIC");
            None
        }
    }
}

/// The first initial dump was applied, or a run of events2 already ended
/// without one (DRBD unavailable: the agent serves anyway).
fn drbd_settled(state: &DrbdState) -> bool {
    state.model.initial_dump_done()
        || state.stats.last_exit.is_some()
        || state.stats.spawn_errors > 0
}

fn availability(state: &DrbdState) -> DrbdAvailability {
    if state.drbd_reachable() {
        return DrbdAvailability::Up;
    }
    match (&state.stats.last_exit, &state.stats.last_spawn_error) {
        (Some(exit), _) => DrbdAvailability::Unavailable(exit.clone()),
        (None, Some(error)) => DrbdAvailability::Unavailable(error.clone()),
        (None, None) => DrbdAvailability::Waiting,
    }
}

/// (resources, peer devices resyncing).
fn count_resyncs(state: &DrbdState) -> (usize, usize) {
    let resources = state.model.resources();
    let resyncs = resources
        .values()
        .flat_map(|resource| resource.connections.values())
        .flat_map(|connection| connection.peer_devices.values())
        .filter(|peer| peer.replication.as_ref().is_some_and(|r| r.is_resync()))
        .count();
    (resources.len(), resyncs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linstor::{LinstorStatus, NodeCheck};

    #[test]
    fn linstor_summary_says_why_not() {
        let mut status = LinstorStatus::default();
        assert_eq!(linstor_summary(&status), "not connected (connecting)");
        status.last_error = Some("connection refused\nby ctrl-1".into());
        assert_eq!(
            linstor_summary(&status),
            "not connected (connection refusedby ctrl-1)"
        );
        status.node_check_message = Some("node alpha is not a LINSTOR node ".repeat(20));
        let line = linstor_summary(&status);
        assert_eq!(line.chars().count(), 160);
        status.connected = true;
        status.node_check = NodeCheck::Ok;
        status.last_error = None;
        assert_eq!(linstor_summary(&status), "connected");
    }
}
