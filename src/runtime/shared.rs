//! What the events2 supervisor shares with the API: the model and counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Notify, RwLock};

use crate::events2::Event;
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
    /// Since when the served model may be behind DRBD (a stream restart,
    /// lost events); `None` while it mirrors DRBD or before the first dump.
    pub stale_since: Option<DateTime<Utc>>,
    /// Why it is stale (`exited: exit code 20`, `3 events lost`).
    pub stale_reason: Option<String>,
    /// Complete initial dumps of a restarted stream swapped in for a stale
    /// model.
    pub model_rebuilds: u64,
    /// `events2 --now` dumps taken and applied after lost events.
    pub lost_event_dumps: u64,
}

/// The model plus the stream counters, behind one lock so readers see both
/// consistent.
///
/// The served `model` is only ever replaced by a complete newer one: when a
/// stream ends after a complete dump, the model stays, marked stale
/// ([`stream_ended`](Self::stream_ended)), and the next stream's initial dump
/// is built on the side and swapped in at its `exists -`
/// ([`apply_event`](Self::apply_event)); after lost events the stream goes on
/// and a `--now` dump is adopted ([`adopt_dump`](Self::adopt_dump)).
#[derive(Debug, Clone, Default)]
pub struct DrbdState {
    /// What the agent serves.
    pub model: Model,
    /// The initial dump of a restarted stream, until its `exists -`.
    side: Option<Model>,
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
    /// Forgets the model (see [`Model::flush`]), any side model and the
    /// staleness, and bumps the generation.
    pub fn flush(&mut self) {
        self.model.flush();
        self.side = None;
        self.stats.stale_since = None;
        self.stats.stale_reason = None;
        self.generation += 1;
        self.touched.clear();
        self.flushed_at = self.generation;
    }

    /// Applies one parsed event: to the served model, or, while a restarted
    /// stream's initial dump is being read, to the side model, which
    /// replaces the served one at its `exists -`. Returns what changed in
    /// the served model plus the side model's helper and dump-complete
    /// changes (for the counters).
    pub fn apply_event(&mut self, event: &Event<'_>) -> Vec<Change> {
        let Some(side) = self.side.as_mut() else {
            let changes = self.model.apply(event);
            self.record(&changes);
            return changes;
        };
        let changes = side.apply(event);
        if !side.initial_dump_done() {
            return changes
                .into_iter()
                .filter(|c| {
                    matches!(
                        c,
                        Change::HelperCalled { .. }
                            | Change::HelperResponded { .. }
                            | Change::EventsLost { .. }
                    )
                })
                .collect();
        }
        let Some(side) = self.side.take() else {
            return changes;
        };
        let mut swapped = self.model.adopt(side);
        swapped.push(Change::InitialDumpComplete);
        self.record(&swapped);
        self.stats.model_rebuilds += 1;
        self.clear_stale();
        swapped
    }

    /// The stream ended (`reason`, at `now`). A model that was complete is
    /// kept and marked stale (the earliest `since` stays), and the next
    /// stream's initial dump is read on the side; a first dump that never
    /// completed is dropped (nothing was known).
    pub fn stream_ended(&mut self, reason: &str, now: DateTime<Utc>) {
        if self.model.initial_dump_done() {
            self.side = Some(Model::new());
            self.mark_stale(reason, now);
        } else {
            self.flush();
        }
    }

    /// Events were lost on a running stream: the model is kept, marked
    /// stale, until a `--now` dump is adopted.
    pub fn events_lost(&mut self, count: u64, now: DateTime<Utc>) {
        self.mark_stale(&format!("{count} events lost"), now);
    }

    /// Replaces the served model with a complete `--now` dump (after lost
    /// events); the stream goes on, so a side model is dropped too. The
    /// model stays stale when `more_lost` (events were lost again while the
    /// dump ran: another dump follows).
    pub fn adopt_dump(&mut self, dump: Model, more_lost: bool) {
        self.side = None;
        let changes = self.model.adopt(dump);
        self.generation += 1;
        self.record(&changes);
        self.stats.lost_event_dumps += 1;
        if !more_lost {
            self.clear_stale();
        }
    }

    fn mark_stale(&mut self, reason: &str, now: DateTime<Utc>) {
        if self.stats.stale_since.is_none() {
            self.stats.stale_since = Some(now);
        }
        self.stats.stale_reason = Some(reason.to_owned());
    }

    fn clear_stale(&mut self) {
        self.stats.stale_since = None;
        self.stats.stale_reason = None;
    }

    /// The served model may be behind DRBD.
    pub fn is_stale(&self) -> bool {
        self.stats.stale_since.is_some()
    }

    /// The running stream's own initial dump is complete (the served model
    /// is its, not one kept from before).
    pub fn stream_dump_done(&self) -> bool {
        self.side.is_none() && self.model.initial_dump_done()
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

    /// The child runs, its initial dump is complete and no events were
    /// lost since: the model mirrors DRBD.
    pub fn drbd_reachable(&self) -> bool {
        self.stats.child_running && self.stream_dump_done() && !self.is_stale()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events2::parse_line;
    use chrono::TimeZone;

    const DUMP: &str = "exists resource name:r0 role:Secondary\n\
        exists connection name:r0 peer-node-id:1 conn-name:bravo connection:Connected role:Primary\n\
        exists resource name:r1 role:Secondary\n\
        exists -\n";

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
    }

    fn feed(state: &mut DrbdState, text: &str) -> Vec<Change> {
        text.lines()
            .flat_map(|line| state.apply_event(&parse_line(line).unwrap()))
            .collect()
    }

    fn running(text: &str) -> DrbdState {
        let mut state = DrbdState::default();
        state.stats.child_running = true;
        feed(&mut state, text);
        state
    }

    fn names(state: &DrbdState) -> Vec<&str> {
        state.model.resources().keys().map(String::as_str).collect()
    }

    #[test]
    fn the_first_dump_fills_the_served_model_directly() {
        let mut state = running("exists resource name:r0 role:Secondary\n");
        assert_eq!(names(&state), ["r0"], "no complete model to protect yet");
        assert!(!state.drbd_reachable());
        assert!(!state.is_stale());
        feed(&mut state, "exists -\n");
        assert!(state.drbd_reachable());
        assert!(state.stream_dump_done());
    }

    #[test]
    fn a_partial_first_dump_is_dropped_when_its_stream_ends() {
        let mut state = running("exists resource name:r0 role:Secondary\n");
        state.stream_ended("exited: exit code 20", at(0));
        assert!(state.model.resources().is_empty());
        assert!(!state.is_stale(), "nothing was known, nothing is stale");
    }

    #[test]
    fn an_ended_stream_keeps_the_model_stale_until_the_new_dump_is_complete() {
        let mut state = running(DUMP);
        let generation = state.generation;
        state.stream_ended("exited: exit code 1", at(0));
        state.stats.child_running = false;
        assert_eq!(names(&state), ["r0", "r1"]);
        assert!(state.is_stale());
        assert_eq!(state.stats.stale_since, Some(at(0)));
        assert_eq!(
            state.stats.stale_reason.as_deref(),
            Some("exited: exit code 1")
        );
        assert!(!state.drbd_reachable());
        assert!(!state.stream_dump_done());
        // A second failure keeps the first time, takes the new reason.
        state.stream_ended("start failed: not found", at(5));
        assert_eq!(state.stats.stale_since, Some(at(0)));
        assert_eq!(
            state.stats.stale_reason.as_deref(),
            Some("start failed: not found")
        );
        // The new stream's dump is read on the side: nothing served changes.
        state.stats.child_running = true;
        feed(
            &mut state,
            "exists resource name:r0 role:Primary\nexists resource name:r2 role:Secondary\n",
        );
        assert_eq!(names(&state), ["r0", "r1"]);
        assert_eq!(
            state.generation, generation,
            "the served model did not move"
        );
        assert_eq!(
            state.model.resource("r0").unwrap().role,
            Some(crate::events2::Role::Secondary)
        );
        // `exists -`: swapped in at once, r1 is gone, r2 is there.
        let changes = feed(&mut state, "exists -\n");
        assert_eq!(names(&state), ["r0", "r2"]);
        assert!(changes.contains(&Change::InitialDumpComplete));
        assert!(changes.contains(&Change::Destroyed {
            object: ObjectRef::Resource {
                resource: "r1".into()
            }
        }));
        assert!(!state.is_stale());
        assert_eq!(state.stats.stale_since, None);
        assert!(state.drbd_reachable());
        assert_eq!(state.stats.model_rebuilds, 1);
        assert!(state.generation > generation);
        assert_eq!(
            state.changed_since(Some(generation)),
            ChangedSince::Resources(vec!["r0", "r2"])
        );
        // Later lines apply to the served model again.
        feed(&mut state, "change resource name:r2 role:Primary\n");
        assert_eq!(
            state.model.resource("r2").unwrap().role,
            Some(crate::events2::Role::Primary)
        );
    }

    #[test]
    fn a_restart_before_the_side_dump_completes_starts_it_over() {
        let mut state = running(DUMP);
        state.stream_ended("killed: drift", at(0));
        feed(&mut state, "exists resource name:r7 role:Secondary\n");
        state.stream_ended("killed: no initial dump", at(3));
        feed(
            &mut state,
            "exists resource name:r0 role:Secondary\nexists -\n",
        );
        assert_eq!(
            names(&state),
            ["r0"],
            "r7 of the abandoned dump is not kept"
        );
        assert!(!state.is_stale());
    }

    #[test]
    fn lost_events_keep_the_stream_and_a_dump_brings_the_model_back() {
        let mut state = running(DUMP);
        state.events_lost(3, at(10));
        assert!(state.is_stale());
        assert_eq!(state.stats.stale_reason.as_deref(), Some("3 events lost"));
        assert!(!state.drbd_reachable());
        // Lines after the skip are valid and still applied.
        feed(&mut state, "change resource name:r1 role:Primary\n");
        assert_eq!(
            state.model.resource("r1").unwrap().role,
            Some(crate::events2::Role::Primary)
        );
        let mut dump = Model::new();
        for line in "exists resource name:r0 role:Secondary\nexists resource name:r1 role:Primary\nexists -\n".lines() {
            dump.apply(&parse_line(line).unwrap());
        }
        // Lost again while the dump ran: still stale.
        state.adopt_dump(dump.clone(), true);
        assert!(state.is_stale());
        assert_eq!(state.stats.stale_since, Some(at(10)));
        state.adopt_dump(dump, false);
        assert!(!state.is_stale());
        assert!(state.drbd_reachable());
        assert_eq!(names(&state), ["r0", "r1"]);
        assert!(
            state.model.resource("r0").unwrap().connections.is_empty(),
            "the dump is the truth"
        );
        assert_eq!(state.stats.lost_event_dumps, 2);
    }

    #[test]
    fn a_dump_during_a_side_rebuild_replaces_it() {
        let mut state = running(DUMP);
        state.stream_ended("exited: exit code 0", at(0));
        feed(&mut state, "exists resource name:r0 role:Secondary\n");
        let mut dump = Model::new();
        dump.apply(&parse_line("exists resource name:r5 role:Secondary").unwrap());
        dump.apply(&parse_line("exists -").unwrap());
        state.adopt_dump(dump, false);
        assert_eq!(names(&state), ["r5"]);
        assert!(state.stream_dump_done());
        feed(&mut state, "exists resource name:r6 role:Secondary\n");
        assert_eq!(names(&state), ["r5", "r6"], "served directly again");
    }

    #[test]
    fn flush_forgets_everything() {
        let mut state = running(DUMP);
        state.stream_ended("exited: exit code 0", at(0));
        state.flush();
        assert!(state.model.resources().is_empty());
        assert!(!state.is_stale());
        assert!(!state.stream_dump_done());
        feed(&mut state, "exists resource name:r0 role:Secondary\n");
        assert_eq!(names(&state), ["r0"], "no side model after a flush");
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// `exists resource` of one of four names.
        Exists(u8),
        Done,
        Destroy(u8),
        StreamEnded,
        EventsLost,
        /// A complete `--now` dump of the names whose bit is set.
        Dump(u8, bool),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0u8..4).prop_map(Op::Exists),
            Just(Op::Done),
            (0u8..4).prop_map(Op::Destroy),
            Just(Op::StreamEnded),
            Just(Op::EventsLost),
            (0u8..16, any::<bool>()).prop_map(|(m, more)| Op::Dump(m, more)),
        ]
    }

    proptest::proptest! {
        /// Whatever happens, once a complete model was served, what is
        /// served only changes by lines of a live stream or by a complete
        /// newer model; it is stale exactly between a stream end or lost
        /// events and the next complete model.
        #[test]
        fn the_served_model_is_only_replaced_by_a_complete_newer_one(
            ops in proptest::collection::vec(op(), 1..60)
        ) {
            let mut state = DrbdState::default();
            state.stats.child_running = true;
            // The served resources as the rules say they must be.
            let mut expected: std::collections::BTreeSet<String> = Default::default();
            // The next stream's dump, while read on the side.
            let mut side: Option<std::collections::BTreeSet<String>> = None;
            let mut stale = false;
            let mut complete = false;
            for (i, op) in ops.into_iter().enumerate() {
                let t = at(i as i64);
                match op {
                    Op::Exists(n) => {
                        let name = format!("r{n}");
                        feed(&mut state, &format!("exists resource name:{name} role:Secondary\n"));
                        match side.as_mut() {
                            Some(side) => { side.insert(name); }
                            None => { expected.insert(name); }
                        }
                    }
                    Op::Destroy(n) => {
                        let name = format!("r{n}");
                        feed(&mut state, &format!("destroy resource name:{name}\n"));
                        match side.as_mut() {
                            Some(side) => { side.remove(&name); }
                            None => { expected.remove(&name); }
                        }
                    }
                    Op::Done => {
                        feed(&mut state, "exists -\n");
                        if let Some(side) = side.take() {
                            expected = side;
                            stale = false;
                        }
                        complete = true;
                    }
                    Op::StreamEnded => {
                        state.stream_ended("exited", t);
                        if complete {
                            side = Some(Default::default());
                            stale = true;
                        } else {
                            expected.clear();
                            side = None;
                            stale = false;
                        }
                    }
                    Op::EventsLost => {
                        state.events_lost(1, t);
                        stale = true;
                    }
                    Op::Dump(mask, more) => {
                        let mut dump = Model::new();
                        let mut names = std::collections::BTreeSet::new();
                        for n in 0..4 {
                            if mask & (1 << n) != 0 {
                                dump.apply(&parse_line(&format!("exists resource name:r{n} role:Secondary")).unwrap());
                                names.insert(format!("r{n}"));
                            }
                        }
                        dump.apply(&parse_line("exists -").unwrap());
                        state.adopt_dump(dump, more);
                        expected = names;
                        side = None;
                        complete = true;
                        if !more {
                            stale = false;
                        }
                    }
                }
                let served: std::collections::BTreeSet<String> =
                    state.model.resources().keys().cloned().collect();
                proptest::prop_assert_eq!(&served, &expected);
                proptest::prop_assert_eq!(state.is_stale(), stale);
                proptest::prop_assert_eq!(state.drbd_reachable(), complete && side.is_none() && !state.is_stale());
            }
        }
    }
}
