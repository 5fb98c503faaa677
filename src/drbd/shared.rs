//! What the events2 supervisor shares with the API: the model and counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Notify, RwLock};

use crate::state::{Change, Model, ObjectRef};

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
    /// Code that changes `model` directly must bump it too, and call
    /// [`touch`](Self::touch) for the resources it changed.
    pub generation: u64,
    /// Per resource in the model, the generation of its last change. Names
    /// leave with their resource (destroy, rename, flush), so there are never
    /// more entries than resources. Readers keep the generation they saw last
    /// and ask [`changed_since`](Self::changed_since); nobody has to clear it,
    /// so any number of readers can share it under the read lock.
    touched: BTreeMap<String, u64>,
    /// The generation of the last flush: everything before it is stale.
    flushed_at: u64,
}

/// What changed since a generation (see [`DrbdState::changed_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangedSince<'a> {
    /// Nothing changed.
    Nothing,
    /// These resources changed (sorted); resources that are gone are not
    /// listed: compare with the model's resources.
    Resources(Vec<&'a str>),
    /// Assume everything changed (a flush, or a generation never seen).
    Everything,
}

impl DrbdState {
    /// Forgets the model (see [`Model::flush`]) and bumps the generation.
    pub fn flush(&mut self) {
        self.model.flush();
        self.generation += 1;
        self.touched.clear();
        self.flushed_at = self.generation;
    }

    /// Records what [`Model::apply`] returned: bumps the generation when
    /// anything changed and marks the resources the changes name.
    pub fn record(&mut self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        self.generation += 1;
        for change in changes {
            match change {
                Change::Created { object }
                | Change::Updated { object }
                | Change::HelperCalled { object, .. }
                | Change::HelperResponded { object, .. } => self.touch(resource_of(object)),
                Change::Destroyed {
                    object: ObjectRef::Resource { resource },
                } => {
                    self.touched.remove(resource);
                }
                Change::Destroyed { object } => self.touch(resource_of(object)),
                Change::Renamed { from, to } => {
                    self.touched.remove(from);
                    self.touch(to);
                }
                Change::InitialDumpComplete | Change::EventsLost { .. } => {}
            }
        }
    }

    /// Marks a resource as changed in the current generation.
    pub fn touch(&mut self, resource: &str) {
        let generation = self.generation;
        match self.touched.get_mut(resource) {
            Some(at) => *at = generation,
            None => {
                self.touched.insert(resource.to_owned(), generation);
            }
        }
    }

    /// The resources changed after generation `seen` (`None`: never looked).
    /// Destroyed and renamed-away resources are not listed; a reader finds
    /// them missing from the model.
    pub fn changed_since(&self, seen: Option<u64>) -> ChangedSince<'_> {
        let Some(seen) = seen.filter(|seen| *seen <= self.generation) else {
            return ChangedSince::Everything;
        };
        if seen == self.generation {
            return ChangedSince::Nothing;
        }
        if self.flushed_at > seen {
            return ChangedSince::Everything;
        }
        ChangedSince::Resources(
            self.touched
                .iter()
                .filter(|(_, at)| **at > seen)
                .map(|(name, _)| name.as_str())
                .collect(),
        )
    }

    /// The child runs and its initial dump is complete: the model mirrors DRBD.
    pub fn drbd_reachable(&self) -> bool {
        self.stats.child_running && self.model.initial_dump_done()
    }
}

/// The resource an object belongs to.
fn resource_of(object: &ObjectRef) -> &str {
    match object {
        ObjectRef::Resource { resource }
        | ObjectRef::Device { resource, .. }
        | ObjectRef::Connection { resource, .. }
        | ObjectRef::PeerDevice { resource, .. }
        | ObjectRef::Path { resource, .. } => resource,
    }
}

/// State shared between the supervisor and its readers.
#[derive(Debug, Default)]
pub struct Shared {
    pub state: RwLock<DrbdState>,
    /// Signalled after the model's generation moved (events applied, a
    /// flush); readers that keep derived data fresh wait on it.
    pub model_changed: Notify,
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
