//! What the events2 supervisor shares with the API: the model and counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::RwLock;

use crate::state::Model;

/// Counters and facts about the events2 stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamStats {
    /// Lines parsed and applied.
    pub events: u64,
    /// Lines that could not be parsed (also too long or not UTF-8).
    pub parse_errors: u64,
    pub last_parse_error: Option<String>,
    /// Fields with keys this version does not know.
    pub unknown_keys: u64,
    /// Fields with known keys and unknown values.
    pub unknown_values: u64,
    /// Times the stream was started again after it ended (exit, kill,
    /// failed start).
    pub child_restarts: u64,
    /// Times drbdsetup could not be started (e.g. not installed).
    pub spawn_errors: u64,
    pub last_spawn_error: Option<String>,
    /// Times a reconcile dump disagreed with the live model.
    pub drifts: u64,
    /// Times a reconcile dump could not be taken.
    pub reconcile_errors: u64,
    /// Times `- skipped N` was seen (events lost).
    pub events_lost: u64,
    /// How the last child ended (`exit code 20`, `killed: drift`, ...).
    pub last_exit: Option<String>,
    /// The events2 child is running.
    pub child_running: bool,
    /// Its process id, while it runs.
    pub child_pid: Option<u32>,
    /// Wall-clock time of the last line read.
    pub last_line_at: Option<DateTime<Utc>>,
    /// Helper `call` lines by helper name.
    pub helper_calls: BTreeMap<String, u64>,
    /// Helper `response` lines by helper name and exit code.
    pub helper_responses: BTreeMap<String, BTreeMap<u32, u64>>,
}

/// The model plus the stream counters, behind one lock so readers see both
/// consistent.
#[derive(Debug, Clone, Default)]
pub struct DrbdState {
    pub model: Model,
    pub stats: StreamStats,
    /// Bumped whenever the model changes (a line that changed something, a
    /// flush): readers (the metrics cache) compare it to skip re-rendering.
    /// Code that changes `model` directly must bump it too.
    pub generation: u64,
}

impl DrbdState {
    /// Forgets the model (see [`Model::flush`]) and bumps the generation.
    pub fn flush(&mut self) {
        self.model.flush();
        self.generation += 1;
    }

    /// The child runs and its initial dump is complete: the model mirrors DRBD.
    pub fn drbd_reachable(&self) -> bool {
        self.stats.child_running && self.model.initial_dump_done()
    }
}

/// State shared between the supervisor and its readers.
#[derive(Debug, Default)]
pub struct Shared {
    pub state: RwLock<DrbdState>,
    supervisor_alive: AtomicBool,
}

impl Shared {
    pub fn new() -> Self {
        Self::default()
    }

    /// True while the supervisor loop runs.
    pub fn supervisor_alive(&self) -> bool {
        self.supervisor_alive.load(Ordering::SeqCst)
    }

    /// Marks the supervisor alive until the returned guard is dropped (also
    /// when its task panics or is aborted).
    pub fn alive_guard(&self) -> AliveGuard<'_> {
        self.supervisor_alive.store(true, Ordering::SeqCst);
        AliveGuard { shared: self }
    }
}

/// Clears [`Shared::supervisor_alive`] on drop.
#[derive(Debug)]
pub struct AliveGuard<'a> {
    shared: &'a Shared,
}

impl Drop for AliveGuard<'_> {
    fn drop(&mut self) {
        self.shared.supervisor_alive.store(false, Ordering::SeqCst);
    }
}
