//! Scripted stories: a sequence of kernel batches (model states) and helper
//! calls as one node sees them, printed with the events2 formatter.
//!
//! A story is data about DRBD (roles, disk states, resync counters), never
//! the expected text: the lines come from [`crate::events2::format`], so the
//! same story renders with or without `--statistics`, `--full` and
//! `--timestamps`.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Local, NaiveDate, TimeDelta, TimeZone};

use crate::events2::format::{self, BatchKind, FormatOptions, HelperLine};
use crate::events2::{
    ConnectionState, DiskState, Eta, Flags, ReplicationState, Role, Tristate, WriteOrdering, YesNo,
};
use crate::state::{Connection, Device, DeviceStats, Path, PeerDevice, PeerDeviceStats, Resource};

/// The names [`render`] knows.
pub const STORIES: &[&str] = &["resync-3node"];

/// The drbdsetup flags a story is rendered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoryOptions {
    /// `--timestamps`.
    pub timestamps: bool,
    /// `--statistics` given this many times.
    pub statistics: u8,
    /// `--full`.
    pub full: bool,
}

/// Why a story cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoryError {
    #[error("unknown story {name:?}; known stories: {}", known.join(", "))]
    Unknown {
        name: String,
        known: Vec<&'static str>,
    },
}

/// One thing the node's drbdsetup prints.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A kernel batch; the resource's state after it (None: destroyed).
    Batch(Option<Resource>),
    /// `exists -`.
    EndOfDump,
    /// A helper call (`status` None) or response.
    Helper {
        peer_node_id: Option<u32>,
        conn_name: Option<String>,
        volume: Option<u32>,
        minor: Option<u32>,
        helper: String,
        status: Option<u32>,
    },
}

/// A story: steps with their time since the start, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Story {
    pub resource: String,
    pub steps: Vec<(u64, Step)>,
}

impl Story {
    /// The resource's state after the last batch.
    pub fn final_state(&self) -> Option<&Resource> {
        self.steps.iter().rev().find_map(|(_, step)| match step {
            Step::Batch(state) => Some(state.as_ref()),
            _ => None,
        })?
    }
}

/// The story called `name`.
pub fn story(name: &str) -> Result<Story, StoryError> {
    match name {
        "resync-3node" => Ok(resync_3node()),
        _ => Err(StoryError::Unknown {
            name: name.to_owned(),
            known: STORIES.to_vec(),
        }),
    }
}

/// Renders a story as `drbdsetup events2` prints it; timestamps (if asked
/// for) start at a fixed moment in this machine's local offset.
pub fn render(name: &str, options: StoryOptions) -> Result<String, StoryError> {
    let start = NaiveDate::from_ymd_opt(2025, 3, 14)
        .and_then(|d| d.and_hms_micro_opt(9, 26, 53, 589_793))
        .unwrap_or_default();
    let offset = Local.offset_from_utc_datetime(&start);
    let start = DateTime::<FixedOffset>::from_naive_utc_and_offset(start, offset);
    render_at(name, options, start)
}

/// [`render`] with the virtual clock starting at `start`.
pub fn render_at(
    name: &str,
    options: StoryOptions,
    start: DateTime<FixedOffset>,
) -> Result<String, StoryError> {
    let story = story(name)?;
    let format_options = FormatOptions {
        statistics: options.statistics,
        full: options.full,
    };
    let mut out = String::new();
    let mut current: Option<Resource> = None;
    let mut kind = BatchKind::InitialDump;
    for (index, (ms, step)) in story.steps.iter().enumerate() {
        let prefix = if options.timestamps {
            // A few microseconds between lines, as on a real node.
            let micros = i64::try_from(index).unwrap_or_default() * 37;
            let at = start
                + TimeDelta::milliseconds(i64::try_from(*ms).unwrap_or_default())
                + TimeDelta::microseconds(micros);
            format::timestamp_prefix(at)
        } else {
            String::new()
        };
        match step {
            Step::Batch(new) => {
                format::batch(
                    current.as_ref(),
                    new.as_ref(),
                    kind,
                    &format_options,
                    &prefix,
                    &mut out,
                );
                current = new.clone();
            }
            Step::EndOfDump => {
                format::end_of_dump(&prefix, &mut out);
                kind = BatchKind::Live;
            }
            Step::Helper {
                peer_node_id,
                conn_name,
                volume,
                minor,
                helper,
                status,
            } => {
                let line = HelperLine {
                    response: status.is_some(),
                    resource: &story.resource,
                    peer_node_id: *peer_node_id,
                    conn_name: conn_name.as_deref(),
                    addresses: None,
                    volume: *volume,
                    minor: *minor,
                    helper,
                    status: *status,
                };
                format::helper_event(&prefix, &line, &mut out);
            }
        }
    }
    Ok(out)
}

/// A resync in progress, in the kernel's units (sectors, milliseconds).
#[derive(Debug, Clone, Copy, Default)]
struct Resync {
    total_sectors: u64,
    elapsed_ms: u64,
    db0_sectors: u64,
    dt0_ms: u64,
    db1_sectors: u64,
    dt1_ms: u64,
}

/// One peer as this node sees it.
#[derive(Debug, Clone)]
struct Peer {
    name: &'static str,
    node_id: u32,
    local: &'static str,
    address: &'static str,
    connection: ConnectionState,
    role: Role,
    replication: ReplicationState,
    disk: DiskState,
    established: bool,
    /// KiB.
    received: u64,
    sent: u64,
    out_of_sync: u64,
    pending: u64,
    unacked: u64,
    resync: Option<Resync>,
}

/// The node's view of one resource with one volume.
#[derive(Debug, Clone)]
struct Node {
    resource: &'static str,
    role: Role,
    minor: u32,
    backing_dev: &'static str,
    disk: DiskState,
    open: bool,
    /// KiB.
    size: u64,
    read: u64,
    written: u64,
    al_writes: u64,
    peers: Vec<Peer>,
}

const SECTORS_PER_MIB: f64 = 2048.0;

impl Node {
    fn peer(&mut self, name: &str) -> &mut Peer {
        let index = self.peers.iter().position(|p| p.name == name);
        // Stories only name peers they defined; fall back to the first one.
        &mut self.peers[index.unwrap_or_default()]
    }

    /// may_promote and promotion_score, computed the way drbdsetup does for
    /// one UpToDate-capable volume with stable peers.
    fn promotion(&self) -> (bool, u64) {
        let local = u64::from(self.disk == DiskState::UpToDate);
        let replicas = local
            + self
                .peers
                .iter()
                .filter(|p| p.disk == DiskState::UpToDate)
                .count() as u64;
        if replicas == 0 {
            return (false, 0);
        }
        let has_disk = matches!(
            self.disk,
            DiskState::UpToDate | DiskState::Consistent | DiskState::Inconsistent
        );
        let primary =
            self.role == Role::Primary || self.peers.iter().any(|p| p.role == Role::Primary);
        let score = u64::from(has_disk) * 10_000 + local.min(99) * 100 + replicas.min(99);
        (!primary, score)
    }

    fn state(&self) -> Resource {
        let (may_promote, score) = self.promotion();
        let device = Device {
            volume: 0,
            announced: true,
            minor: Some(self.minor),
            backing_dev: Some(self.backing_dev.to_owned()),
            disk: Some(self.disk.clone()),
            client: Some(Tristate::No),
            open: Some(if self.open {
                Tristate::Yes
            } else {
                Tristate::No
            }),
            quorum: Some(YesNo::Yes),
            stats: DeviceStats {
                size: Some(self.size),
                read: Some(self.read),
                written: Some(self.written),
                al_writes: Some(self.al_writes),
                bm_writes: Some(0),
                upper_pending: Some(0),
                lower_pending: Some(0),
                al_suspended: Some(YesNo::No),
                blocked: Some(Flags(Vec::new())),
            },
            ..Device::default()
        };
        Resource {
            name: self.resource.to_owned(),
            announced: true,
            role: Some(self.role.clone()),
            suspended: Some(Flags(Vec::new())),
            force_io_failures: Some(YesNo::No),
            write_ordering: Some(WriteOrdering::Flush),
            may_promote: Some(YesNo::from_bool(may_promote)),
            promotion_score: Some(score),
            devices: BTreeMap::from([(0, Box::new(device))]),
            connections: self
                .peers
                .iter()
                .map(|p| (p.name.to_owned(), Box::new(p.state())))
                .collect(),
            ..Resource::default()
        }
    }
}

impl Peer {
    fn state(&self) -> Connection {
        let path = Path {
            local: self.local.to_owned(),
            peer: self.address.to_owned(),
            announced: true,
            established: Some(YesNo::from_bool(self.established)),
            ..Path::default()
        };
        let mut peer_device = PeerDevice {
            volume: 0,
            announced: true,
            replication: Some(self.replication.clone()),
            peer_disk: Some(self.disk.clone()),
            peer_client: Some(Tristate::No),
            resync_suspended: Some(Flags(Vec::new())),
            stats: PeerDeviceStats {
                received: Some(self.received),
                sent: Some(self.sent),
                out_of_sync: Some(self.out_of_sync),
                pending: Some(self.pending),
                unacked: Some(self.unacked),
                ..PeerDeviceStats::default()
            },
            ..PeerDevice::default()
        };
        if let Some(resync) = &self.resync {
            resync.fill(self.out_of_sync, &mut peer_device);
        }
        Connection {
            conn_name: self.name.to_owned(),
            announced: true,
            peer_node_id: Some(self.node_id),
            connection: Some(self.connection.clone()),
            peer_role: Some(self.role.clone()),
            congested: Some(YesNo::No),
            ap_in_flight: Some(0),
            rs_in_flight: Some(0),
            peer_devices: BTreeMap::from([(0, Box::new(peer_device))]),
            paths: vec![path],
            ..Connection::default()
        }
    }
}

impl Resync {
    /// The progress fields drbdsetup derives from the kernel's counters.
    fn fill(&self, out_of_sync_kib: u64, peer_device: &mut PeerDevice) {
        let to_go = out_of_sync_kib * 2;
        let total = self.total_sectors;
        let done_sectors = total.saturating_sub(to_go) as f64;
        let rate = |sectors: f64, ms: u64| sectors / (ms.max(1) as f64) * 1000.0 / SECTORS_PER_MIB;
        peer_device.done = Some(if total == 0 {
            0.0
        } else {
            100.0 * done_sectors / total as f64
        });
        let stats = &mut peer_device.stats;
        stats.rs_total = Some(total);
        stats.rs_dt_start_ms = Some(self.elapsed_ms);
        stats.rs_paused_ms = Some(0);
        stats.rs_dt0_ms = Some(self.dt0_ms);
        stats.rs_db0_sectors = Some(self.db0_sectors);
        stats.rs_dt1_ms = Some(self.dt1_ms);
        stats.rs_db1_sectors = Some(self.db1_sectors);
        stats.rs_failed = Some(0);
        stats.rs_same_csum = Some(0);
        stats.dbdt = Some(rate(done_sectors, self.elapsed_ms));
        stats.dbdt0 = Some(rate(self.db0_sectors as f64, self.dt0_ms));
        stats.dbdt1 = Some(rate(self.db1_sectors as f64, self.dt1_ms));
        stats.eta = Some(if self.db1_sectors == 0 {
            Eta::Unknown
        } else {
            let seconds = self.dt1_ms.max(1) as f64 * 1e-3 * to_go as f64 / self.db1_sectors as f64;
            Eta::Seconds(seconds.round_ties_even() as u64)
        });
    }
}

/// Collects steps while the clock advances.
struct Script {
    ms: u64,
    steps: Vec<(u64, Step)>,
}

impl Script {
    fn after(&mut self, ms: u64) -> &mut Self {
        self.ms += ms;
        self
    }

    fn batch(&mut self, node: &Node) -> &mut Self {
        self.steps.push((self.ms, Step::Batch(Some(node.state()))));
        self
    }

    fn step(&mut self, step: Step) -> &mut Self {
        self.steps.push((self.ms, step));
        self
    }
}

fn helper(peer: &Peer, volume: Option<(u32, u32)>, name: &str, status: Option<u32>) -> Step {
    Step::Helper {
        peer_node_id: Some(peer.node_id),
        conn_name: Some(peer.name.to_owned()),
        volume: volume.map(|(v, _)| v),
        minor: volume.map(|(_, m)| m),
        helper: name.to_owned(),
        status,
    }
}

fn connected_peer(name: &'static str, node_id: u32, address: &'static str, role: Role) -> Peer {
    Peer {
        name,
        node_id,
        local: "ipv4:10.0.0.1:7000",
        address,
        connection: ConnectionState::Connected,
        role,
        replication: ReplicationState::Established,
        disk: DiskState::UpToDate,
        established: true,
        received: 0,
        sent: 0,
        out_of_sync: 0,
        pending: 0,
        unacked: 0,
        resync: None,
    }
}

/// Node alpha (node-id 0) of r0; bravo (1) loses its link, reconnects and is
/// resynced from alpha; charlie (2) demotes and alpha promotes.
fn resync_3node() -> Story {
    let mut bravo = connected_peer("bravo", 1, "ipv4:10.0.0.2:7000", Role::Secondary);
    bravo.sent = 524_288;
    let mut charlie = connected_peer("charlie", 2, "ipv4:10.0.0.3:7000", Role::Primary);
    charlie.received = 524_288;
    let mut node = Node {
        resource: "r0",
        role: Role::Secondary,
        minor: 1000,
        backing_dev: "/dev/vg0/r0",
        disk: DiskState::UpToDate,
        open: false,
        size: 10_485_760,
        read: 2112,
        written: 524_288,
        al_writes: 37,
        peers: vec![bravo, charlie],
    };
    let volume = Some((0, node.minor));
    let mut s = Script {
        ms: 0,
        steps: Vec::new(),
    };
    s.batch(&node).step(Step::EndOfDump);

    // bravo's link fails.
    let peer = node.peer("bravo");
    peer.connection = ConnectionState::NetworkFailure;
    peer.role = Role::Unknown;
    peer.replication = ReplicationState::Off;
    peer.disk = DiskState::DUnknown;
    peer.established = false;
    let peer = peer.clone();
    s.after(4_211).batch(&node);
    s.after(2).step(helper(&peer, None, "disconnected", None));
    s.after(9)
        .step(helper(&peer, None, "disconnected", Some(0)));
    for state in [ConnectionState::Unconnected, ConnectionState::Connecting] {
        node.peer("bravo").connection = state;
        s.after(3).batch(&node);
    }

    // bravo comes back; the bitmap exchange finds 1 GiB out of sync.
    node.peer("bravo").established = true;
    s.after(1_517).batch(&node);
    let peer = node.peer("bravo");
    peer.connection = ConnectionState::Connected;
    peer.role = Role::Secondary;
    s.after(23).batch(&node);
    let peer = node.peer("bravo");
    peer.out_of_sync = 1_048_576;
    peer.unacked = 1;
    s.after(4).batch(&node);
    let peer = node.peer("bravo");
    peer.replication = ReplicationState::WFBitMapS;
    peer.disk = DiskState::Outdated;
    peer.unacked = 0;
    let peer = peer.clone();
    s.after(6).batch(&node);
    s.after(1)
        .step(helper(&peer, volume, "before-resync-source", None));
    s.after(12)
        .step(helper(&peer, volume, "before-resync-source", Some(0)));

    // Resync: alpha is SyncSource, progress every ~3 s.
    let peer = node.peer("bravo");
    peer.replication = ReplicationState::SyncSource;
    peer.disk = DiskState::Inconsistent;
    let mut resync = Resync {
        total_sectors: peer.out_of_sync * 2,
        ..Resync::default()
    };
    peer.resync = Some(resync);
    s.after(2).batch(&node);
    for (step, (db1, dt1)) in [
        (366_592, 3000),
        (425_984, 3004),
        (434_176, 3008),
        (442_368, 3012),
    ]
    .into_iter()
    .enumerate()
    {
        resync.db0_sectors = resync.db1_sectors;
        resync.dt0_ms = resync.dt1_ms;
        resync.db1_sectors = db1;
        resync.dt1_ms = dt1;
        resync.elapsed_ms += dt1;
        let peer = node.peer("bravo");
        peer.sent += db1 / 2;
        peer.out_of_sync -= db1 / 2;
        peer.pending = 3 + step as u64;
        peer.resync = Some(resync);
        s.after(dt1).batch(&node);
    }

    // The resync finishes.
    let peer = node.peer("bravo");
    peer.sent += peer.out_of_sync;
    peer.out_of_sync = 0;
    peer.pending = 0;
    peer.resync = None;
    peer.replication = ReplicationState::Established;
    peer.disk = DiskState::UpToDate;
    s.after(2_871).batch(&node);

    // charlie demotes, alpha promotes and the device is opened.
    node.peer("charlie").role = Role::Secondary;
    s.after(6_102).batch(&node);
    node.role = Role::Primary;
    s.after(731).batch(&node);
    node.open = true;
    node.written = 1_572_864;
    s.after(18).batch(&node);

    Story {
        resource: node.resource.to_owned(),
        steps: s.steps,
    }
}
