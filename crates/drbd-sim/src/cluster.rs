//! The simulated cluster: the truth (links, roles, resyncs, counters), the
//! timeline that changes it, and per node the state the kernel last
//! announced. Pure: [`Cluster::step`] takes the simulated time and returns
//! what every node's `events2` prints.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::events2::{Eta, Role};
use crate::state::Resource;

use super::disk::{Disk, IoModel};
use super::options::{OptionChange, PeerDeviceOptions};
use super::scenario::{Fault, ResourceSpec, Scenario};
use super::view;

/// Counters of resources nobody looks at are brought up to date this often
/// (views and stat files: see [`Cluster::sync_counters`]).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The kernel pushes resync progress this often.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(3);

/// Two node names, sorted.
pub type Pair = (String, String);

pub fn pair(a: &str, b: &str) -> Pair {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

/// State of the link between two nodes for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Connected,
    NetworkFailure,
    Unconnected,
    Connecting { path_up: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncPhase {
    WaitBitmap,
    Running,
}

/// A resync between two nodes of one volume.
#[derive(Debug, Clone, PartialEq)]
pub struct Resync {
    pub source: String,
    pub target: String,
    pub phase: ResyncPhase,
    pub total_kib: u64,
    pub remaining_kib: f64,
    /// Progress as last pushed (percent).
    pub shown_done: f64,
    /// Out-of-sync KiB as last pushed.
    pub shown_remaining: u64,
    pub last_push: Duration,
    pub dbdt1: f64,
    pub eta: Eta,
    /// KiB/s while running (the SyncTarget's options; refreshed when they change).
    pub rate: u64,
    /// Plant mode: progress comes from the plant, not from `rate`.
    pub driven: bool,
}

/// Per pair and volume.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PairVolume {
    /// KiB that differ (written while disconnected).
    pub out_of_sync: f64,
    pub resync: Option<Resync>,
}

/// Counters of one device on one node.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DeviceCounters {
    pub read_kib: f64,
    pub written_kib: f64,
}

/// Counters of one peer device (node → peer, volume).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PeerCounters {
    pub sent_kib: f64,
    pub received_kib: f64,
}

/// The truth about one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceTruth {
    pub spec: ResourceSpec,
    /// Nodes on which the resource (still) exists.
    pub present: BTreeSet<String>,
    pub roles: BTreeMap<String, Role>,
    pub open: BTreeMap<String, bool>,
    pub links: BTreeMap<Pair, Link>,
    /// Connected pairs still negotiating (peer devices not yet replicating).
    pub handshake: BTreeSet<Pair>,
    pub volumes: BTreeMap<(Pair, u32), PairVolume>,
    pub devices: BTreeMap<(String, u32), DeviceCounters>,
    /// (node, peer, volume).
    pub peers: BTreeMap<(String, String, u32), PeerCounters>,
    /// Simulated time up to which the counters have been advanced.
    pub advanced_to: Duration,
    /// Indices into the cluster's disks of this resource's block devices.
    pub disk_ids: Vec<usize>,
    /// Bumped whenever the state or the counters change: an unchanged
    /// generation means an unchanged view.
    pub generation: u64,
}

/// A helper call and its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperEvent {
    pub resource: String,
    pub peer: Option<(u32, String)>,
    /// Volume and minor.
    pub volume: Option<(u32, u32)>,
    pub helper: String,
    /// Wait status (exit code << 8).
    pub status: u32,
}

/// One thing a node's events2 clients receive.
// Batches dominate and are shared behind an Arc when broadcast: boxing
// them would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A kernel state change of one resource.
    Batch {
        old: Option<Resource>,
        new: Option<Resource>,
    },
    Helper(HelperEvent),
    Fault(Fault),
}

/// What one node's events2 prints next.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeBatch {
    pub node: String,
    pub item: Item,
}

/// A scheduled follow-up of a timeline action.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    Link(String, Pair, Link),
    StartResync(String, Pair, String),
    RunResync(String, Pair),
    Role(String, String, Role),
    Open(String, String, bool),
}

impl Step {
    /// The resource the step changes.
    pub(super) fn resource(&self) -> &str {
        match self {
            Step::Link(name, ..)
            | Step::StartResync(name, ..)
            | Step::RunResync(name, ..)
            | Step::Role(name, ..)
            | Step::Open(name, ..) => name,
        }
    }
}

/// Why a command on a node failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("Could not connect to 'drbd' generic netlink family")]
    ModuleMissing,
    #[error("{0}: Failure: (158) Unknown resource")]
    UnknownResource(String),
    #[error("{resource}: Failure: (162) Invalid configuration request\nadditional info from kernel:\nunknown peer device (peer-node-id {peer_node_id}, volume {volume})")]
    UnknownPeerDevice {
        resource: String,
        peer_node_id: u32,
        volume: u32,
    },
    #[error("Failure: (10) State change failed: injected failure (simulator)")]
    Injected,
    #[error("unknown node '{0}'")]
    UnknownNode(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct NodeFaults {
    pub(super) module_missing_until: Option<Duration>,
    pub(super) fail_next: u32,
}

/// The whole simulated cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub(super) scenario: Scenario,
    pub(super) clock: Duration,
    pub(super) cycle_start: Duration,
    pub(super) next_event: usize,
    pub(super) pending: Vec<(Duration, Step)>,
    pub(super) faults: BTreeMap<String, NodeFaults>,
    pub(super) resources: BTreeMap<String, ResourceTruth>,
    /// What each node's kernel last announced, by node and resource.
    pub(super) published: BTreeMap<String, BTreeMap<String, Resource>>,
    /// Block devices by (node, device name).
    /// Sorted by (node, device name); resources refer to them by index.
    pub(super) disks: Vec<((String, String), Disk)>,
    /// When the counters of all moving resources were last caught up.
    pub(super) last_sweep: Duration,
    /// Runtime options by (node, resource, peer node-id, volume).
    pub(super) options: BTreeMap<(String, String, u32, u32), PeerDeviceOptions>,
    /// Resources whose state changed since the last publish.
    pub(super) dirty: BTreeSet<String>,
    /// Resources with a resync (waiting or running).
    pub(super) resyncing: BTreeSet<String>,
    /// When each resource with a running resync next needs a step
    /// (progress push or end).
    pub(super) resync_due: BTreeMap<String, Duration>,
    /// Resources whose counters move on their own (writes, running resync).
    pub(super) active: BTreeSet<String>,
    /// Plant mode: the physics behind resyncs and stat files.
    pub(super) plant: Option<super::plant_bridge::PlantBridge>,
}

impl Cluster {
    /// The cluster at time zero: every link connected and in sync.
    pub fn new(scenario: Scenario) -> Self {
        let mut resources = BTreeMap::new();
        let mut disks = BTreeMap::new();
        let mut options = BTreeMap::new();
        for spec in &scenario.resources {
            let mut truth = ResourceTruth {
                spec: spec.clone(),
                present: spec.nodes.iter().cloned().collect(),
                roles: BTreeMap::new(),
                open: BTreeMap::new(),
                links: BTreeMap::new(),
                handshake: BTreeSet::new(),
                volumes: BTreeMap::new(),
                devices: BTreeMap::new(),
                peers: BTreeMap::new(),
                advanced_to: Duration::ZERO,
                disk_ids: Vec::new(),
                generation: 0,
            };
            for node in &spec.nodes {
                let primary = spec.primary.as_deref() == Some(node.as_str());
                let role = if primary {
                    Role::Primary
                } else {
                    Role::Secondary
                };
                truth.roles.insert(node.clone(), role);
                truth.open.insert(node.clone(), primary);
                for vol in &spec.volumes {
                    truth
                        .devices
                        .insert((node.clone(), vol.volume), DeviceCounters::default());
                    let model = IoModel::default();
                    disks.insert(
                        (node.clone(), format!("drbd{}", vol.minor)),
                        Disk::new(model),
                    );
                    disks.insert((node.clone(), vol.backing_device.clone()), Disk::new(model));
                }
                for peer in &spec.nodes {
                    if peer == node {
                        continue;
                    }
                    let peer_id = scenario.node_id(peer).unwrap_or_default();
                    truth.links.insert(pair(node, peer), Link::Connected);
                    for vol in &spec.volumes {
                        truth
                            .volumes
                            .insert((pair(node, peer), vol.volume), PairVolume::default());
                        truth.peers.insert(
                            (node.clone(), peer.clone(), vol.volume),
                            PeerCounters::default(),
                        );
                        options.insert(
                            (node.clone(), spec.name.clone(), peer_id, vol.volume),
                            spec.options,
                        );
                    }
                }
            }
            resources.insert(spec.name.clone(), truth);
        }
        let disks: Vec<((String, String), Disk)> = disks.into_iter().collect();
        for truth in resources.values_mut() {
            for node in &truth.spec.nodes {
                for vol in &truth.spec.volumes {
                    for dev in [format!("drbd{}", vol.minor), vol.backing_device.clone()] {
                        let key = (node.clone(), dev);
                        if let Ok(index) = disks.binary_search_by(|(k, _)| k.cmp(&key)) {
                            if !truth.disk_ids.contains(&index) {
                                truth.disk_ids.push(index);
                            }
                        }
                    }
                }
            }
        }
        let mut cluster = Self {
            scenario,
            clock: Duration::ZERO,
            cycle_start: Duration::ZERO,
            next_event: 0,
            pending: Vec::new(),
            resources,
            published: BTreeMap::new(),
            disks,
            last_sweep: Duration::ZERO,
            options,
            faults: BTreeMap::new(),
            dirty: BTreeSet::new(),
            resyncing: BTreeSet::new(),
            resync_due: BTreeMap::new(),
            active: BTreeSet::new(),
            plant: None,
        };
        cluster.plant = super::plant_bridge::PlantBridge::for_cluster(&cluster);
        let names: Vec<String> = cluster.resources.keys().cloned().collect();
        for name in names {
            cluster.touch(&name);
        }
        cluster.dirty.clear();
        for node in cluster.node_names() {
            let views = cluster.views(&node);
            cluster.published.insert(node, views);
        }
        cluster
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Simulated time of the last step.
    pub fn now(&self) -> Duration {
        self.clock
    }

    pub fn node_names(&self) -> Vec<String> {
        self.scenario.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// What the node's kernel last announced (the initial dump of a new
    /// events2 client).
    pub fn published(&self, node: &str) -> BTreeMap<String, Resource> {
        self.published.get(node).cloned().unwrap_or_default()
    }

    /// The node's state with current counters (what `--poll` re-reads).
    pub fn views(&self, node: &str) -> BTreeMap<String, Resource> {
        self.resources
            .values()
            .filter_map(|truth| view::resource(self, truth, node))
            .map(|r| (r.name.clone(), r))
            .collect()
    }

    /// The views of the node's resources whose generation differs from
    /// `seen` (name → generation): `(name, generation, view)`, the view
    /// None where the node no longer has a resource it was told about.
    pub fn views_since(
        &self,
        node: &str,
        seen: &BTreeMap<String, u64>,
    ) -> Vec<(String, u64, Option<Resource>)> {
        self.resources
            .iter()
            .filter(|(name, truth)| seen.get(*name) != Some(&truth.generation))
            .filter_map(|(name, truth)| {
                let view = view::resource(self, truth, node);
                (view.is_some() || seen.contains_key(name))
                    .then(|| (name.clone(), truth.generation, view))
            })
            .collect()
    }

    /// Fails when the node's module is "not loaded" now.
    pub fn check_module(&self, node: &str) -> Result<(), CommandError> {
        if !self.scenario.nodes.iter().any(|n| n.name == node) {
            return Err(CommandError::UnknownNode(node.to_owned()));
        }
        match self.faults.get(node).and_then(|f| f.module_missing_until) {
            Some(until) if until > self.clock => Err(CommandError::ModuleMissing),
            _ => Ok(()),
        }
    }

    /// `drbdsetup peer-device-options`.
    pub fn set_peer_device_options(
        &mut self,
        node: &str,
        resource: &str,
        peer_node_id: u32,
        volume: u32,
        change: &OptionChange,
    ) -> Result<(), CommandError> {
        self.check_module(node)?;
        let present = self
            .resources
            .get(resource)
            .is_some_and(|r| r.present.contains(node));
        if !present {
            return Err(CommandError::UnknownResource(resource.to_owned()));
        }
        let key = (node.to_owned(), resource.to_owned(), peer_node_id, volume);
        let Some(current) = self.options.get(&key).copied() else {
            return Err(CommandError::UnknownPeerDevice {
                resource: resource.to_owned(),
                peer_node_id,
                volume,
            });
        };
        if let Some(faults) = self.faults.get_mut(node) {
            if faults.fail_next > 0 {
                faults.fail_next -= 1;
                return Err(CommandError::Injected);
            }
        }
        // The resync rate changes from now on.
        self.catch_up(resource);
        self.options.insert(key, change.apply(&current));
        self.refresh_rates(resource);
        Ok(())
    }

    /// `drbdadm adjust RES|all`: runtime options back to the configured ones.
    pub fn adjust(&mut self, node: &str, resource: &str) -> Result<(), CommandError> {
        self.check_module(node)?;
        if resource != "all"
            && !self
                .resources
                .get(resource)
                .is_some_and(|r| r.present.contains(node))
        {
            return Err(CommandError::UnknownResource(resource.to_owned()));
        }
        self.catch_up_resyncs();
        for ((n, res, _, _), value) in self.options.iter_mut() {
            if n == node && (resource == "all" || res == resource) {
                if let Some(truth) = self.resources.get(res) {
                    *value = truth.spec.options;
                }
            }
        }
        let names: Vec<String> = self.resyncing.iter().cloned().collect();
        for name in names {
            self.refresh_rates(&name);
        }
        Ok(())
    }

    /// Runtime options of one peer device.
    pub fn peer_device_options(
        &self,
        node: &str,
        resource: &str,
        peer_node_id: u32,
        volume: u32,
    ) -> Option<PeerDeviceOptions> {
        self.options
            .get(&(node.to_owned(), resource.to_owned(), peer_node_id, volume))
            .copied()
    }

    /// `(relative path, text)` of every stat file: `<node>/sys/block/<dev>/stat`.
    ///
    /// Every node's devices live under `<node>/sys/block/`; the scenario's
    /// first node (the default view of `drbdsetup`) is also written to
    /// `sys/block/`, so one agent pointed at `DIR/sys` sees its own disks.
    pub fn stat_files(&self) -> Vec<(String, String)> {
        let default_node = self.scenario.nodes.first().map(|n| n.name.as_str());
        let mut files = Vec::with_capacity(self.disks.len() * 2);
        for ((node, dev), disk) in &self.disks {
            let text = disk.stats.stat_text();
            if Some(node.as_str()) == default_node {
                files.push((format!("sys/block/{dev}/stat"), text.clone()));
            }
            files.push((format!("{node}/sys/block/{dev}/stat"), text));
        }
        files
    }

    /// Advances the simulation to `now` and returns what the nodes print.
    pub fn step(&mut self, now: Duration) -> Vec<NodeBatch> {
        let mut out = Vec::new();
        self.plant_step(now);
        // Bounded: every pass consumes one due item; a runaway scenario
        // cannot hang the server.
        for _ in 0..10_000 {
            let Some(due) = self.next_due().filter(|due| *due <= now) else {
                break;
            };
            self.clock = due.max(self.clock);
            self.run_due(&mut out);
            self.publish(&mut out);
        }
        if now > self.clock {
            self.clock = now;
        }
        if self.clock >= self.last_sweep + SWEEP_INTERVAL {
            self.sync_counters();
        }
        out
    }

    fn next_due(&self) -> Option<Duration> {
        let mut due: Vec<Duration> = Vec::new();
        if let Some(event) = self.scenario.timeline.get(self.next_event) {
            due.push(self.cycle_start + event.at);
        } else if let Some(repeat) = self.scenario.repeat_at {
            due.push(self.cycle_start + repeat);
        }
        due.extend(self.pending.iter().map(|(at, _)| *at));
        due.extend(self.resync_due.values().copied());
        due.into_iter().min()
    }

    /// KiB/s of a running resync: the SyncTarget's options decide.
    pub(super) fn resync_rate(
        &self,
        truth: &ResourceTruth,
        _pair: &Pair,
        volume: u32,
        rs: &Resync,
    ) -> u64 {
        let source_id = self.scenario.node_id(&rs.source).unwrap_or_default();
        let options = self
            .peer_device_options(&rs.target, &truth.spec.name, source_id, volume)
            .unwrap_or(truth.spec.options);
        options.effective_rate(truth.spec.resync_capacity)
    }

    fn run_due(&mut self, out: &mut Vec<NodeBatch>) {
        let clock = self.clock;
        // Scheduled follow-ups first (they belong to earlier actions), one
        // at a time: each is its own batch.
        if let Some(index) = self.pending.iter().position(|(at, _)| *at <= clock) {
            let (_, step) = self.pending.remove(index);
            self.catch_up(step.resource());
            self.run_step(step, out);
            return;
        }
        if self.progress_due(out) {
            return;
        }
        match self.scenario.timeline.get(self.next_event) {
            Some(event) if self.cycle_start + event.at <= clock => {
                let action = event.action.clone();
                self.next_event += 1;
                self.run_action(action, out);
            }
            Some(_) => {}
            None => {
                if let Some(repeat) = self.scenario.repeat_at {
                    if self.cycle_start + repeat <= clock {
                        self.cycle_start += repeat;
                        self.next_event = 0;
                    }
                }
            }
        }
    }

    pub(super) fn schedule(&mut self, delay_ms: u64, step: Step) {
        let at = self.clock + Duration::from_millis(delay_ms);
        // Keep order for equal times: insert after the last item due at or before `at`.
        let index = self.pending.iter().take_while(|(t, _)| *t <= at).count();
        self.pending.insert(index, (at, step));
    }
}
