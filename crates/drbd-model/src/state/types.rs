//! The objects of the replication model.
//!
//! Every state field is an `Option`: `None` until a line carried it (older
//! drbd-utils never print some keys). A change line that omits a field keeps
//! the previous value.
//!
//! Children are boxed: B-tree nodes hold eleven values inline, and unboxed
//! objects made a 1,000-resource model three times larger.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use crate::events2::{
    BlockedBy, ConnectionState, DiskState, Eta, Flags, ReplicationState, ResyncSuspendReason, Role,
    SuspendReason, SyncState, Tristate, WriteOrdering, YesNo,
};

/// The last call and response of one helper (e.g. `fence-peer`) on one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct HelperRecord {
    /// When the last `call` line arrived (its timestamp, if it had one).
    pub last_call: Option<DateTime<FixedOffset>>,
    pub calls: u64,
    /// The last `response`, if any arrived after the last call.
    pub last_response: Option<HelperResponse>,
}

/// A helper's `response` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HelperResponse {
    pub at: Option<DateTime<FixedOffset>>,
    /// The wait status as printed (`status:`).
    pub status: u32,
    /// The helper's exit code (`status >> 8`).
    pub exit_code: u32,
}

/// Helpers by helper name.
pub type Helpers = BTreeMap<String, HelperRecord>;

/// Keys this version does not know, with their last value.
pub type UnknownFields = BTreeMap<String, String>;

/// A DRBD resource on this node.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Resource {
    pub name: String,
    /// False while the resource is only known from a child object's line.
    pub announced: bool,
    pub role: Option<Role>,
    pub suspended: Option<Flags<SuspendReason>>,
    pub force_io_failures: Option<YesNo>,
    pub write_ordering: Option<WriteOrdering>,
    pub may_promote: Option<YesNo>,
    pub promotion_score: Option<u64>,
    /// Devices by volume number.
    pub devices: BTreeMap<u32, Box<Device>>,
    /// Connections by `conn-name` (the peer's name).
    pub connections: BTreeMap<String, Box<Connection>>,
    pub helpers: Helpers,
    pub unknown: UnknownFields,
}

/// Statistics of a device (`--statistics`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct DeviceStats {
    /// KiB.
    pub size: Option<u64>,
    /// KiB read from this device since it was created.
    pub read: Option<u64>,
    /// KiB written.
    pub written: Option<u64>,
    pub al_writes: Option<u64>,
    pub bm_writes: Option<u64>,
    pub upper_pending: Option<u64>,
    pub lower_pending: Option<u64>,
    pub al_suspended: Option<YesNo>,
    pub blocked: Option<Flags<BlockedBy>>,
}

/// One volume of a resource on this node.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Device {
    pub volume: u32,
    pub announced: bool,
    pub minor: Option<u32>,
    /// The backing block device path, or `none`.
    pub backing_dev: Option<String>,
    pub disk: Option<DiskState>,
    pub client: Option<Tristate>,
    pub open: Option<Tristate>,
    pub quorum: Option<YesNo>,
    pub stats: DeviceStats,
    pub helpers: Helpers,
    pub unknown: UnknownFields,
}

/// The connection to one peer node.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Connection {
    pub conn_name: String,
    pub announced: bool,
    pub peer_node_id: Option<u32>,
    pub connection: Option<ConnectionState>,
    /// The PEER's role.
    pub peer_role: Option<Role>,
    pub congested: Option<YesNo>,
    /// Application data in flight, 512-byte sectors.
    pub ap_in_flight: Option<u64>,
    /// Resync data in flight, 512-byte sectors.
    pub rs_in_flight: Option<u64>,
    /// Printed only on StandAlone connections after a split brain.
    pub sync_state: Option<SyncState>,
    /// Peer devices by volume.
    pub peer_devices: BTreeMap<u32, Box<PeerDevice>>,
    /// Paths in the order they were first seen.
    pub paths: Vec<Path>,
    pub helpers: Helpers,
    pub unknown: UnknownFields,
}

/// Statistics of a peer device (`--statistics`; the `rs-*`/`ov-*` group with `-s -s`).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct PeerDeviceStats {
    /// KiB received from the peer.
    pub received: Option<u64>,
    /// KiB sent to the peer.
    pub sent: Option<u64>,
    /// KiB that differ from the peer.
    pub out_of_sync: Option<u64>,
    pub pending: Option<u64>,
    pub unacked: Option<u64>,
    /// Resync speed over the last interval, MiB/s (while resyncing).
    pub dbdt1: Option<f64>,
    /// Seconds to go (while resyncing).
    pub eta: Option<Eta>,
    pub rs_total: Option<u64>,
    pub rs_dt_start_ms: Option<u64>,
    pub rs_paused_ms: Option<u64>,
    pub rs_dt0_ms: Option<u64>,
    pub rs_db0_sectors: Option<u64>,
    pub rs_dt1_ms: Option<u64>,
    pub rs_db1_sectors: Option<u64>,
    pub rs_failed: Option<u64>,
    pub rs_same_csum: Option<u64>,
    pub ov_start_sector: Option<u64>,
    pub ov_stop_sector: Option<u64>,
    pub ov_position: Option<u64>,
    pub ov_left: Option<u64>,
    pub ov_skipped: Option<u64>,
    /// The resync controller's wanted rate, MiB/s.
    pub want: Option<f64>,
    /// Average speed since the resync started, MiB/s.
    pub dbdt: Option<f64>,
    /// Speed over the previous interval, MiB/s.
    pub dbdt0: Option<f64>,
}

/// One volume's replication to one peer.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct PeerDevice {
    pub volume: u32,
    pub announced: bool,
    pub replication: Option<ReplicationState>,
    pub peer_disk: Option<DiskState>,
    pub peer_client: Option<Tristate>,
    pub resync_suspended: Option<Flags<ResyncSuspendReason>>,
    /// Resync or verify progress in percent; `None` when none runs.
    pub done: Option<f64>,
    pub stats: PeerDeviceStats,
    pub helpers: Helpers,
    pub unknown: UnknownFields,
}

/// One network path of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Path {
    /// Local address as printed, e.g. `ipv4:10.0.0.1:7000`.
    pub local: String,
    /// Peer address as printed.
    pub peer: String,
    pub announced: bool,
    pub established: Option<YesNo>,
    pub unknown: UnknownFields,
}

/// Which object a [`Change`](super::Change) is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "object", rename_all = "kebab-case")]
pub enum ObjectRef {
    Resource {
        resource: String,
    },
    Device {
        resource: String,
        volume: u32,
    },
    Connection {
        resource: String,
        connection: String,
    },
    PeerDevice {
        resource: String,
        connection: String,
        volume: u32,
    },
    Path {
        resource: String,
        connection: String,
        local: String,
        peer: String,
    },
}
