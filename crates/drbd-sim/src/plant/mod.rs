//! The plant: a pure virtual-time model of DRBD nodes under foreground
//! ingest and resync, to judge resync throttling against.
//!
//! No I/O, no clocks, no threads: [`Plant::step`] advances the model in
//! 100 ms ticks (the kernel's resync timer); the same seed gives the same
//! run. Parts: [`disk`] (queueing latency and `/sys/block/*/stat`
//! counters), [`link`] (bandwidth and RTT shared by replication and
//! resync), [`resync`] (DRBD's c-plan-ahead controller and c-min-rate
//! throttle), [`load`] (ingest profiles and traces); `tick.rs` is one tick
//! of physics, `observe.rs` the 1 s observation windows.
//!
//! Model per tick:
//! - each volume's Primary writes (and reads) what its [`LoadProfile`]
//!   says; every write is mirrored to every other replica over the link
//!   (replication before resync on the link);
//! - a resync's SyncTarget asks for data as its [`resync::Pacer`] allows
//!   (unless its c-min-rate throttle holds it back); the SyncSource reads
//!   it (one request per tick while its own c-min-rate throttle applies and
//!   the target is not Primary), the link carries it, the target writes it;
//! - every backing disk serves the sum; an overloaded disk or link accepts
//!   only a share, and the rest waits (resync) or is not written
//!   (application: the achieved rate drops below the offered one);
//! - protocol C: a Primary's write completes after the slowest diskful
//!   peer's write: latency = max(local, link delay + peer's latency).

pub mod disk;
pub mod link;
pub mod load;
mod observe;
pub mod resync;
mod tick;

use std::time::Duration;

use thiserror::Error;

pub use disk::{Counters, Disk, DiskSpec, DiskTick, Io};
pub use link::LinkSpec;
pub use load::{parse_trace, LoadError, LoadProfile, Rates, TraceRow};
pub use observe::{LatencyMix, NodeWindow, ResyncWindow, VolumeWindow, Window};
pub use resync::{MinRate, Pacer};

use crate::disk::DiskStats;
use crate::options::PeerDeviceOptions;
use observe::{NodeAcc, ResyncAcc, VolumeAcc};

/// Length of one tick, seconds.
pub const TICK_S: f64 = 0.1;
/// Ticks per observation window (1 s).
pub const WINDOW_TICKS: u64 = 10;

/// A node, by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);
/// A volume (resource/volume), by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VolumeId(pub usize);
/// A resync, by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResyncId(pub usize);

/// A plant that cannot be built as asked.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlantError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("no node #{0}")]
    UnknownNode(usize),
    #[error("no volume #{0}")]
    UnknownVolume(usize),
    #[error("no resync #{0}")]
    UnknownResync(usize),
    #[error("duplicate name '{0}'")]
    Duplicate(String),
    #[error("no link between '{a}' and '{b}'")]
    NoLink { a: String, b: String },
    #[error("node '{node}' holds no replica of volume '{volume}'")]
    NotAReplica { volume: String, node: String },
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// A volume and who holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeSpec {
    /// Shown in observations, e.g. `"r0/0"`.
    pub name: String,
    /// Where the application runs.
    pub primary: NodeId,
    /// The other diskful replicas.
    pub secondaries: Vec<NodeId>,
    pub load: LoadProfile,
    /// Size of one application write, KiB.
    pub write_io_kib: f64,
    /// Size of one application read, KiB.
    pub read_io_kib: f64,
}

impl VolumeSpec {
    /// A volume with 4 KiB writes and reads and no load yet.
    pub fn new(name: &str, primary: NodeId, secondaries: Vec<NodeId>) -> Self {
        Self {
            name: name.to_owned(),
            primary,
            secondaries,
            load: LoadProfile::default(),
            write_io_kib: 4.0,
            read_io_kib: 4.0,
        }
    }
}

/// A resync to start.
#[derive(Debug, Clone, PartialEq)]
pub struct ResyncSpec {
    pub volume: VolumeId,
    pub source: NodeId,
    pub target: NodeId,
    pub out_of_sync_kib: f64,
    /// peer-device-options on the SyncTarget (pacing, its c-min-rate).
    pub target_options: PeerDeviceOptions,
    /// peer-device-options on the SyncSource (its c-min-rate).
    pub source_options: PeerDeviceOptions,
    /// Size of one resync request as the disks see it, KiB.
    pub io_kib: f64,
    /// max-buffers of the connection (4 KiB pages).
    pub max_buffers: u64,
}

impl ResyncSpec {
    /// DRBD's defaults on both sides, 64 KiB requests, max-buffers 2048.
    pub fn new(volume: VolumeId, source: NodeId, target: NodeId, out_of_sync_kib: f64) -> Self {
        Self {
            volume,
            source,
            target,
            out_of_sync_kib,
            target_options: PeerDeviceOptions::default(),
            source_options: PeerDeviceOptions::default(),
            io_kib: 64.0,
            max_buffers: 2048,
        }
    }
}

/// A resync's state as the outside sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResyncStatus {
    pub volume: VolumeId,
    pub source: NodeId,
    pub target: NodeId,
    pub total_kib: f64,
    pub left_kib: f64,
    /// Requested by the target and not yet written, KiB.
    pub in_flight_kib: f64,
    pub done_at_s: Option<f64>,
    pub target_options: PeerDeviceOptions,
    pub source_options: PeerDeviceOptions,
}

#[derive(Debug, Clone)]
struct Node {
    name: String,
    disk: Disk,
    /// Sectors of non-resync I/O the backing disk completed (c-min-rate's view).
    foreign_sectors: f64,
    acc: NodeAcc,
}

#[derive(Debug, Clone)]
struct Link {
    a: NodeId,
    b: NodeId,
    spec: LinkSpec,
}

#[derive(Debug, Clone)]
struct Volume {
    spec: VolumeSpec,
    /// The DRBD device's counters on the Primary (application I/O only).
    upper: Counters,
    acc: VolumeAcc,
}

#[derive(Debug, Clone)]
struct Resync {
    spec: ResyncSpec,
    pacer: Pacer,
    target_throttle: MinRate,
    source_throttle: MinRate,
    left_kib: f64,
    /// KiB written on the target last tick, as sectors not yet reported.
    came_in_sectors: f64,
    /// Requested and not yet served at the end of the last tick, KiB.
    backlog_kib: f64,
    /// Time from request to written data in the last tick, ms.
    response_ms: f64,
    done_at_tick: Option<u64>,
    acc: ResyncAcc,
}

/// The whole model. Build it with `add_*`, then [`Plant::step`].
#[derive(Debug, Clone)]
pub struct Plant {
    seed: u64,
    tick: u64,
    /// Time asked for by `step` and not yet run, in ticks' share.
    pending_s: f64,
    nodes: Vec<Node>,
    links: Vec<Link>,
    volumes: Vec<Volume>,
    resyncs: Vec<Resync>,
    last_window: Option<Window>,
}

impl Plant {
    /// An empty plant at time 0; `seed` fixes every noise source.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            tick: 0,
            pending_s: 0.0,
            nodes: Vec::new(),
            links: Vec::new(),
            volumes: Vec::new(),
            resyncs: Vec::new(),
            last_window: None,
        }
    }

    /// Plant time, seconds.
    pub fn now_s(&self) -> f64 {
        self.tick as f64 * TICK_S
    }

    /// Ticks run so far.
    pub fn ticks(&self) -> u64 {
        self.tick
    }

    pub fn add_node(&mut self, name: &str, disk: DiskSpec) -> Result<NodeId, PlantError> {
        if self.nodes.iter().any(|n| n.name == name) {
            return Err(PlantError::Duplicate(name.to_owned()));
        }
        let index = self.nodes.len();
        // A distinct, fixed stream per node (golden-ratio stride).
        let seed = self
            .seed
            .wrapping_add((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        self.nodes.push(Node {
            name: name.to_owned(),
            disk: Disk::new(disk, seed)?,
            foreign_sectors: 0.0,
            acc: NodeAcc::default(),
        });
        Ok(NodeId(index))
    }

    pub fn add_link(&mut self, a: NodeId, b: NodeId, spec: LinkSpec) -> Result<(), PlantError> {
        self.node(a)?;
        self.node(b)?;
        spec.validate()?;
        if a == b {
            return Err(PlantError::Invalid {
                field: "link",
                reason: "a link needs two different nodes".into(),
            });
        }
        self.links
            .retain(|l| !((l.a == a && l.b == b) || (l.a == b && l.b == a)));
        self.links.push(Link { a, b, spec });
        Ok(())
    }

    pub fn add_volume(&mut self, spec: VolumeSpec) -> Result<VolumeId, PlantError> {
        if self.volumes.iter().any(|v| v.spec.name == spec.name) {
            return Err(PlantError::Duplicate(spec.name));
        }
        self.node(spec.primary)?;
        for &peer in &spec.secondaries {
            self.node(peer)?;
            if peer == spec.primary {
                return Err(PlantError::Invalid {
                    field: "volume.secondaries",
                    reason: format!("'{}' is the Primary", self.nodes[peer.0].name),
                });
            }
            self.link_between(spec.primary, peer)?;
        }
        disk::positive("volume.write_io_kib", spec.write_io_kib)?;
        disk::positive("volume.read_io_kib", spec.read_io_kib)?;
        spec.load.validate()?;
        self.volumes.push(Volume {
            spec,
            upper: Counters::default(),
            acc: VolumeAcc::default(),
        });
        Ok(VolumeId(self.volumes.len() - 1))
    }

    pub fn start_resync(&mut self, spec: ResyncSpec) -> Result<ResyncId, PlantError> {
        let volume = self.volume(spec.volume)?;
        let holds = |n: NodeId| volume.spec.primary == n || volume.spec.secondaries.contains(&n);
        for node in [spec.source, spec.target] {
            self.node(node)?;
            if !holds(node) {
                return Err(PlantError::NotAReplica {
                    volume: volume.spec.name.clone(),
                    node: self.nodes[node.0].name.clone(),
                });
            }
        }
        if spec.source == spec.target {
            return Err(PlantError::Invalid {
                field: "resync",
                reason: "source and target are the same node".into(),
            });
        }
        self.link_between(spec.source, spec.target)?;
        if !spec.out_of_sync_kib.is_finite() || spec.out_of_sync_kib < 0.0 {
            return Err(PlantError::Invalid {
                field: "resync.out_of_sync_kib",
                reason: format!("{} is not a size >= 0", spec.out_of_sync_kib),
            });
        }
        disk::positive("resync.io_kib", spec.io_kib)?;
        let left = spec.out_of_sync_kib;
        let target_foreign = self.nodes[spec.target.0].foreign_sectors;
        let source_foreign = self.nodes[spec.source.0].foreign_sectors;
        let done = (left <= 0.0).then_some(self.tick);
        self.resyncs.push(Resync {
            pacer: Pacer::new(spec.target_options, spec.max_buffers),
            target_throttle: MinRate::new(self.tick, left, target_foreign),
            source_throttle: MinRate::new(self.tick, left, source_foreign),
            left_kib: left,
            came_in_sectors: 0.0,
            backlog_kib: 0.0,
            response_ms: TICK_S * 1000.0,
            done_at_tick: done,
            acc: ResyncAcc::default(),
            spec,
        });
        Ok(ResyncId(self.resyncs.len() - 1))
    }

    /// `peer-device-options` on the SyncTarget (a changed c-plan-ahead resets the plan).
    pub fn set_target_options(
        &mut self,
        id: ResyncId,
        options: PeerDeviceOptions,
    ) -> Result<(), PlantError> {
        let r = self
            .resyncs
            .get_mut(id.0)
            .ok_or(PlantError::UnknownResync(id.0))?;
        r.spec.target_options = options;
        r.pacer.set_options(options);
        Ok(())
    }

    /// `peer-device-options` on the SyncSource (only c-min-rate matters there).
    pub fn set_source_options(
        &mut self,
        id: ResyncId,
        options: PeerDeviceOptions,
    ) -> Result<(), PlantError> {
        let r = self
            .resyncs
            .get_mut(id.0)
            .ok_or(PlantError::UnknownResync(id.0))?;
        r.spec.source_options = options;
        Ok(())
    }

    /// Ends a resync where it stands (the connection went away): it asks
    /// for and moves nothing more; its status keeps what was left.
    pub fn stop_resync(&mut self, id: ResyncId) -> Result<(), PlantError> {
        let tick = self.tick;
        let r = self
            .resyncs
            .get_mut(id.0)
            .ok_or(PlantError::UnknownResync(id.0))?;
        r.done_at_tick.get_or_insert(tick);
        Ok(())
    }

    /// Replaces a volume's load profile from now on.
    pub fn set_load(&mut self, id: VolumeId, load: LoadProfile) -> Result<(), PlantError> {
        load.validate()?;
        let v = self
            .volumes
            .get_mut(id.0)
            .ok_or(PlantError::UnknownVolume(id.0))?;
        v.spec.load = load;
        Ok(())
    }

    /// Advances plant time by `dt` in whole 100 ms ticks (a remainder waits
    /// for the next call); returns the 1 s windows completed meanwhile.
    pub fn step(&mut self, dt: Duration) -> Vec<Window> {
        self.pending_s += dt.as_secs_f64();
        let ticks = (self.pending_s / TICK_S + 1e-9).floor();
        self.pending_s = (self.pending_s - ticks * TICK_S).max(0.0);
        let mut windows = Vec::new();
        for _ in 0..ticks as u64 {
            if let Some(w) = self.tick_once() {
                windows.push(w);
            }
        }
        windows
    }

    /// Runs whole ticks until every resync is done or `limit` passed;
    /// returns whether all finished.
    pub fn run_until_synced(&mut self, limit: Duration) -> bool {
        let end = self.tick + (limit.as_secs_f64() / TICK_S).ceil() as u64;
        while self.tick < end {
            if self.resyncs.iter().all(|r| r.done_at_tick.is_some()) {
                return true;
            }
            self.tick_once();
        }
        self.resyncs.iter().all(|r| r.done_at_tick.is_some())
    }

    /// The most recent complete 1 s window.
    pub fn last_window(&self) -> Option<&Window> {
        self.last_window.as_ref()
    }

    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.name == name).map(NodeId)
    }

    pub fn volume_id(&self, name: &str) -> Option<VolumeId> {
        self.volumes
            .iter()
            .position(|v| v.spec.name == name)
            .map(VolumeId)
    }

    pub fn volume_spec(&self, id: VolumeId) -> Result<&VolumeSpec, PlantError> {
        Ok(&self.volume(id)?.spec)
    }

    /// Counters of a node's backing disk (everything it served).
    pub fn backing_stats(&self, id: NodeId) -> Result<DiskStats, PlantError> {
        Ok(self.node(id)?.disk.stats())
    }

    /// Counters of a volume's DRBD device on its Primary (application I/O only).
    pub fn device_stats(&self, id: VolumeId) -> Result<DiskStats, PlantError> {
        Ok(self.volume(id)?.upper.stats())
    }

    /// `/sys/block/<backing>/stat` text of a node.
    pub fn backing_stat_text(&self, id: NodeId) -> Result<String, PlantError> {
        Ok(self.backing_stats(id)?.stat_text())
    }

    /// `/sys/block/drbdN/stat` text of a volume on its Primary.
    pub fn device_stat_text(&self, id: VolumeId) -> Result<String, PlantError> {
        Ok(self.device_stats(id)?.stat_text())
    }

    pub fn resync_status(&self, id: ResyncId) -> Result<ResyncStatus, PlantError> {
        let r = self
            .resyncs
            .get(id.0)
            .ok_or(PlantError::UnknownResync(id.0))?;
        Ok(ResyncStatus {
            volume: r.spec.volume,
            source: r.spec.source,
            target: r.spec.target,
            total_kib: r.spec.out_of_sync_kib,
            left_kib: r.left_kib,
            in_flight_kib: r.pacer.in_flight_sectors() as f64 / 2.0,
            done_at_s: r.done_at_tick.map(|t| t as f64 * TICK_S),
            target_options: r.spec.target_options,
            source_options: r.spec.source_options,
        })
    }

    fn node(&self, id: NodeId) -> Result<&Node, PlantError> {
        self.nodes.get(id.0).ok_or(PlantError::UnknownNode(id.0))
    }

    fn volume(&self, id: VolumeId) -> Result<&Volume, PlantError> {
        self.volumes
            .get(id.0)
            .ok_or(PlantError::UnknownVolume(id.0))
    }

    /// Index of the link joining `a` and `b`.
    fn link_between(&self, a: NodeId, b: NodeId) -> Result<usize, PlantError> {
        self.links
            .iter()
            .position(|l| (l.a == a && l.b == b) || (l.a == b && l.b == a))
            .ok_or_else(|| PlantError::NoLink {
                a: self
                    .nodes
                    .get(a.0)
                    .map_or_else(|| a.0.to_string(), |n| n.name.clone()),
                b: self
                    .nodes
                    .get(b.0)
                    .map_or_else(|| b.0.to_string(), |n| n.name.clone()),
            })
    }
}
