//! The replication model: resources → devices, connections → peer devices and
//! paths, built by applying parsed events2 lines. Pure and deterministic.

mod adopt;
mod apply;
mod types;

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

pub use types::*;

/// What one applied event changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// `exists -`: the model now mirrors the kernel's state.
    InitialDumpComplete,
    /// The object was not in the model before (also for parents that a child
    /// line created implicitly).
    Created {
        object: ObjectRef,
    },
    /// At least one field of the object changed value.
    Updated {
        object: ObjectRef,
    },
    /// The object and everything below it are gone.
    Destroyed {
        object: ObjectRef,
    },
    Renamed {
        from: String,
        to: String,
    },
    HelperCalled {
        object: ObjectRef,
        helper: String,
    },
    HelperResponded {
        object: ObjectRef,
        helper: String,
        status: u32,
        exit_code: u32,
    },
    /// `- skipped N`: events were lost; the state must be re-read.
    EventsLost {
        count: u64,
    },
}

/// The node's replication state as seen through events2.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Model {
    resources: BTreeMap<String, Resource>,
    initial_dump_done: bool,
    last_event_at: Option<DateTime<FixedOffset>>,
}

impl Model {
    /// An empty model waiting for an initial dump.
    pub fn new() -> Self {
        Self::default()
    }

    /// All resources by name.
    pub fn resources(&self) -> &BTreeMap<String, Resource> {
        &self.resources
    }

    /// One resource.
    pub fn resource(&self, name: &str) -> Option<&Resource> {
        self.resources.get(name)
    }

    /// True once `exists -` was applied since the last [`flush`](Self::flush).
    pub fn initial_dump_done(&self) -> bool {
        self.initial_dump_done
    }

    /// Timestamp of the last applied line that carried one.
    pub fn last_event_at(&self) -> Option<DateTime<FixedOffset>> {
        self.last_event_at
    }

    /// Forgets everything: the event source restarted and the next initial
    /// dump rebuilds the state, so nothing stale survives.
    pub fn flush(&mut self) {
        self.resources.clear();
        self.initial_dump_done = false;
    }

    /// Number of (resources, devices, connections, peer devices, paths).
    pub fn counts(&self) -> ObjectCounts {
        let mut counts = ObjectCounts::default();
        for resource in self.resources.values() {
            counts.resources += 1;
            counts.devices += resource.devices.len();
            for connection in resource.connections.values() {
                counts.connections += 1;
                counts.peer_devices += connection.peer_devices.len();
                counts.paths += connection.paths.len();
            }
        }
        counts
    }
}

/// How many objects of each kind a model holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ObjectCounts {
    pub resources: usize,
    pub devices: usize,
    pub connections: usize,
    pub peer_devices: usize,
    pub paths: usize,
}
