//! Typed vocabulary of `drbdsetup events2`: actions, objects, state enums and fields.

use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::{Serialize, Serializer};

/// Defines a DRBD state enum whose wire form is a fixed word, with an
/// `Other` variant that keeps any word this version does not know.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant,)+
            /// A value this version does not know (kept verbatim, counted).
            Other(Box<str>),
        }

        impl $name {
            /// Every known value, in DRBD's order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// Maps a wire word to a value; unknown words become `Other`.
            pub fn from_wire(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    other => Self::Other(other.into()),
                }
            }

            /// The wire word.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(text) => text,
                }
            }

            /// False for `Other`.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// What happened to an object.
    Action {
        Exists = "exists",
        Create = "create",
        Change = "change",
        Destroy = "destroy",
        Call = "call",
        Response = "response",
        Rename = "rename",
    }
);

wire_enum!(
    /// The kind of object a line is about.
    ObjectKind {
        Resource = "resource",
        Device = "device",
        Connection = "connection",
        PeerDevice = "peer-device",
        Path = "path",
        Helper = "helper",
    }
);

wire_enum!(
    /// Role of the local node (resource) or of the peer (connection).
    Role {
        Unknown = "Unknown",
        Primary = "Primary",
        Secondary = "Secondary",
    }
);

wire_enum!(
    /// Local disk state (`disk`) or the peer's (`peer-disk`).
    DiskState {
        Diskless = "Diskless",
        Attaching = "Attaching",
        Detaching = "Detaching",
        Failed = "Failed",
        Negotiating = "Negotiating",
        Inconsistent = "Inconsistent",
        Outdated = "Outdated",
        DUnknown = "DUnknown",
        Consistent = "Consistent",
        UpToDate = "UpToDate",
    }
);

wire_enum!(
    /// Connection state towards one peer.
    ConnectionState {
        StandAlone = "StandAlone",
        Disconnecting = "Disconnecting",
        Unconnected = "Unconnected",
        Timeout = "Timeout",
        BrokenPipe = "BrokenPipe",
        NetworkFailure = "NetworkFailure",
        ProtocolError = "ProtocolError",
        TearDown = "TearDown",
        Connecting = "Connecting",
        Connected = "Connected",
    }
);

wire_enum!(
    /// Replication state of one peer device.
    ReplicationState {
        Off = "Off",
        Established = "Established",
        StartingSyncS = "StartingSyncS",
        StartingSyncT = "StartingSyncT",
        WFBitMapS = "WFBitMapS",
        WFBitMapT = "WFBitMapT",
        WFSyncUUID = "WFSyncUUID",
        SyncSource = "SyncSource",
        SyncTarget = "SyncTarget",
        VerifyS = "VerifyS",
        VerifyT = "VerifyT",
        PausedSyncS = "PausedSyncS",
        PausedSyncT = "PausedSyncT",
        Ahead = "Ahead",
        Behind = "Behind",
    }
);

impl ReplicationState {
    /// A resync is running or paused (source or target side).
    pub fn is_resync(&self) -> bool {
        matches!(
            self,
            Self::SyncSource | Self::SyncTarget | Self::PausedSyncS | Self::PausedSyncT
        )
    }

    /// This node receives resync data from the peer.
    pub fn is_sync_target(&self) -> bool {
        matches!(self, Self::SyncTarget | Self::PausedSyncT)
    }

    /// An online verify is running.
    pub fn is_verify(&self) -> bool {
        matches!(self, Self::VerifyS | Self::VerifyT)
    }
}

wire_enum!(
    /// `write-ordering` of a resource.
    WriteOrdering {
        None = "none",
        Drain = "drain",
        Flush = "flush",
        Barrier = "barrier",
    }
);

wire_enum!(
    /// A `yes`/`no` value.
    YesNo {
        Yes = "yes",
        No = "no",
    }
);

impl YesNo {
    /// `Some(true)` for yes, `Some(false)` for no, `None` for an unknown word.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Yes => Some(true),
            Self::No => Some(false),
            Self::Other(_) => None,
        }
    }

    /// The value for a bool.
    pub fn from_bool(value: bool) -> Self {
        if value {
            Self::Yes
        } else {
            Self::No
        }
    }
}

wire_enum!(
    /// A `yes`/`no`/`unknown` value (`client`, `peer-client`, `open`).
    Tristate {
        Yes = "yes",
        No = "no",
        Unknown = "unknown",
    }
);

wire_enum!(
    /// Why a resource's I/O is suspended.
    SuspendReason {
        User = "user",
        NoData = "no-data",
        Fencing = "fencing",
        Quorum = "quorum",
    }
);

wire_enum!(
    /// Why a resync is suspended.
    ResyncSuspendReason {
        User = "user",
        Peer = "peer",
        Dependency = "dependency",
        MaxParallel = "max-parallel",
    }
);

wire_enum!(
    /// Which side of a device blocks I/O.
    BlockedBy {
        Upper = "upper",
        Lower = "lower",
    }
);

wire_enum!(
    /// `sync-state` of a StandAlone connection.
    SyncState {
        SplitBrain = "SplitBrain",
        Unrelated = "Unrelated",
    }
);

/// A comma list of reasons, printed as `no` when empty (`suspended`,
/// `resync-suspended`, `blocked`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Flags<T>(pub Vec<T>);

impl<T> Flags<T> {
    /// No reason is set.
    pub fn is_none(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: fmt::Display> fmt::Display for Flags<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no");
        }
        for (index, flag) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{flag}")?;
        }
        Ok(())
    }
}

impl<T: Serialize> Serialize for Flags<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Estimated seconds to the end of a resync; `nan` at its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Eta {
    /// drbdsetup printed `eta:nan` (no progress measured yet).
    Unknown,
    /// Seconds.
    Seconds(u64),
}

impl fmt::Display for Eta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => f.write_str("nan"),
            Self::Seconds(seconds) => write!(f, "{seconds}"),
        }
    }
}

impl Serialize for Eta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Unknown => serializer.serialize_none(),
            Self::Seconds(seconds) => serializer.serialize_u64(*seconds),
        }
    }
}

/// Integer statistics, all printed as plain decimal numbers.
///
/// Units: `size read written received sent out-of-sync` KiB; `ap-in-flight
/// rs-in-flight` 512-byte sectors; the `rs-*-ms` fields milliseconds; the
/// `*-sectors` fields and `ov-*` sectors; the rest counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    PromotionScore,
    ApInFlight,
    RsInFlight,
    Size,
    Read,
    Written,
    AlWrites,
    BmWrites,
    UpperPending,
    LowerPending,
    Received,
    Sent,
    OutOfSync,
    Pending,
    Unacked,
    RsTotal,
    RsDtStartMs,
    RsPausedMs,
    RsDt0Ms,
    RsDb0Sectors,
    RsDt1Ms,
    RsDb1Sectors,
    RsFailed,
    RsSameCsum,
    OvStartSector,
    OvStopSector,
    OvPosition,
    OvLeft,
    OvSkipped,
}

impl Counter {
    /// Every counter with its wire key.
    pub const ALL: &'static [(Counter, &'static str)] = &[
        (Counter::PromotionScore, "promotion_score"),
        (Counter::ApInFlight, "ap-in-flight"),
        (Counter::RsInFlight, "rs-in-flight"),
        (Counter::Size, "size"),
        (Counter::Read, "read"),
        (Counter::Written, "written"),
        (Counter::AlWrites, "al-writes"),
        (Counter::BmWrites, "bm-writes"),
        (Counter::UpperPending, "upper-pending"),
        (Counter::LowerPending, "lower-pending"),
        (Counter::Received, "received"),
        (Counter::Sent, "sent"),
        (Counter::OutOfSync, "out-of-sync"),
        (Counter::Pending, "pending"),
        (Counter::Unacked, "unacked"),
        (Counter::RsTotal, "rs-total"),
        (Counter::RsDtStartMs, "rs-dt-start-ms"),
        (Counter::RsPausedMs, "rs-paused-ms"),
        (Counter::RsDt0Ms, "rs-dt0-ms"),
        (Counter::RsDb0Sectors, "rs-db0-sectors"),
        (Counter::RsDt1Ms, "rs-dt1-ms"),
        (Counter::RsDb1Sectors, "rs-db1-sectors"),
        (Counter::RsFailed, "rs-failed"),
        (Counter::RsSameCsum, "rs-same-csum"),
        (Counter::OvStartSector, "ov-start-sector"),
        (Counter::OvStopSector, "ov-stop-sector"),
        (Counter::OvPosition, "ov-position"),
        (Counter::OvLeft, "ov-left"),
        (Counter::OvSkipped, "ov-skipped"),
    ];

    /// The wire key.
    pub fn key(self) -> &'static str {
        // ALL lists every variant, in declaration order.
        Self::ALL[self as usize].1
    }
}

/// Decimal statistics printed with two decimals (`%.2f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rate {
    /// Resync/verify progress in percent.
    Done,
    /// Resync speed over the last interval, MiB/s.
    Dbdt1,
    /// Controller's wanted rate, MiB/s (`-s -s`, only when non-zero).
    Want,
    /// Average speed since the start, MiB/s (`-s -s`).
    Dbdt,
    /// Speed over the previous interval, MiB/s (`-s -s`).
    Dbdt0,
}

impl Rate {
    /// Every rate with its wire key.
    pub const ALL: &'static [(Rate, &'static str)] = &[
        (Rate::Done, "done"),
        (Rate::Dbdt1, "dbdt1"),
        (Rate::Want, "want"),
        (Rate::Dbdt, "dbdt"),
        (Rate::Dbdt0, "dbdt0"),
    ];

    /// The wire key.
    pub fn key(self) -> &'static str {
        // ALL lists every variant, in declaration order.
        Self::ALL[self as usize].1
    }
}

/// One `key:value` of an event line after the identity keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<'a> {
    /// `role` (the resource's own role, or the peer's on a connection line).
    Role(Role),
    Suspended(Flags<SuspendReason>),
    ForceIoFailures(YesNo),
    WriteOrdering(WriteOrdering),
    MayPromote(YesNo),
    /// `new_name` of a `rename resource` line.
    NewName(&'a str),
    Connection(ConnectionState),
    Congested(YesNo),
    SyncState(SyncState),
    /// `backing_dev`: a path, or `none`.
    BackingDev(&'a str),
    Disk(DiskState),
    Client(Tristate),
    Open(Tristate),
    Quorum(YesNo),
    AlSuspended(YesNo),
    Blocked(Flags<BlockedBy>),
    Replication(ReplicationState),
    PeerDisk(DiskState),
    PeerClient(Tristate),
    ResyncSuspended(Flags<ResyncSuspendReason>),
    Established(YesNo),
    /// `helper:<name>` of a call/response line.
    Helper(&'a str),
    /// `status:<wait status>` of a helper response.
    Status(u32),
    Counter(Counter, u64),
    Rate(Rate, f64),
    Eta(Eta),
    /// A key this version does not know, kept verbatim.
    Unknown {
        key: &'a str,
        value: &'a str,
    },
    /// A known key whose value could not be read (e.g. `size:abc`).
    Invalid {
        key: &'a str,
        value: &'a str,
    },
}

impl Field<'_> {
    /// The key is unknown to this version.
    pub fn is_unknown_key(&self) -> bool {
        matches!(self, Field::Unknown { .. })
    }

    /// The key is known but its value is not (an unknown enum word or an
    /// unreadable number).
    pub fn is_unknown_value(&self) -> bool {
        match self {
            Field::Role(v) => !v.is_known(),
            Field::Suspended(v) => v.0.iter().any(|f| !f.is_known()),
            Field::ForceIoFailures(v)
            | Field::MayPromote(v)
            | Field::Congested(v)
            | Field::Quorum(v)
            | Field::AlSuspended(v)
            | Field::Established(v) => !v.is_known(),
            Field::WriteOrdering(v) => !v.is_known(),
            Field::Connection(v) => !v.is_known(),
            Field::SyncState(v) => !v.is_known(),
            Field::Disk(v) | Field::PeerDisk(v) => !v.is_known(),
            Field::Client(v) | Field::Open(v) | Field::PeerClient(v) => !v.is_known(),
            Field::Blocked(v) => v.0.iter().any(|f| !f.is_known()),
            Field::Replication(v) => !v.is_known(),
            Field::ResyncSuspended(v) => v.0.iter().any(|f| !f.is_known()),
            Field::Invalid { .. } => true,
            Field::NewName(_)
            | Field::BackingDev(_)
            | Field::Helper(_)
            | Field::Status(_)
            | Field::Counter(..)
            | Field::Rate(..)
            | Field::Eta(_)
            | Field::Unknown { .. } => false,
        }
    }
}

/// The identity keys of an object line (those always printed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity<'a> {
    /// Resource name.
    pub name: &'a str,
    pub peer_node_id: Option<u32>,
    pub conn_name: Option<&'a str>,
    pub volume: Option<u32>,
    pub minor: Option<u32>,
    /// Path (and some helper) local address, e.g. `ipv4:10.0.0.1:7000`.
    pub local: Option<&'a str>,
    /// Path (and some helper) peer address.
    pub peer: Option<&'a str>,
}

/// An event about one object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectEvent<'a> {
    pub action: Action,
    pub object: ObjectKind,
    pub id: Identity<'a>,
    /// The fields after the identity keys, in line order.
    pub fields: Vec<Field<'a>>,
}

/// What a line says.
#[derive(Debug, Clone, PartialEq)]
pub enum Body<'a> {
    /// `exists -`: the initial dump is complete.
    InitialDumpDone,
    /// `- skipped N` (drbd-utils 9.14–9.27): N events were lost, state must be re-read.
    Skipped(u64),
    /// An event about one object.
    Object(ObjectEvent<'a>),
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// The `--timestamps` prefix, with the offset drbdsetup printed.
    pub timestamp: Option<DateTime<FixedOffset>>,
    pub body: Body<'a>,
}

impl Event<'_> {
    /// Fields with keys this version does not know.
    pub fn unknown_keys(&self) -> usize {
        self.fields().filter(|f| f.is_unknown_key()).count()
    }

    /// Fields with known keys but unknown or unreadable values.
    pub fn unknown_values(&self) -> usize {
        self.fields().filter(|f| f.is_unknown_value()).count()
    }

    fn fields(&self) -> impl Iterator<Item = &Field<'_>> {
        match &self.body {
            Body::Object(object) => object.fields.iter(),
            _ => [].iter(),
        }
    }
}

impl<'a> Field<'a> {
    /// The key and value as drbdsetup prints them.
    pub fn wire(&self) -> (&'a str, String) {
        match self {
            Field::Role(v) => ("role", v.to_string()),
            Field::Suspended(v) => ("suspended", v.to_string()),
            Field::ForceIoFailures(v) => ("force-io-failures", v.to_string()),
            Field::WriteOrdering(v) => ("write-ordering", v.to_string()),
            Field::MayPromote(v) => ("may_promote", v.to_string()),
            Field::NewName(v) => ("new_name", (*v).to_owned()),
            Field::Connection(v) => ("connection", v.to_string()),
            Field::Congested(v) => ("congested", v.to_string()),
            Field::SyncState(v) => ("sync-state", v.to_string()),
            Field::BackingDev(v) => ("backing_dev", (*v).to_owned()),
            Field::Disk(v) => ("disk", v.to_string()),
            Field::Client(v) => ("client", v.to_string()),
            Field::Open(v) => ("open", v.to_string()),
            Field::Quorum(v) => ("quorum", v.to_string()),
            Field::AlSuspended(v) => ("al-suspended", v.to_string()),
            Field::Blocked(v) => ("blocked", v.to_string()),
            Field::Replication(v) => ("replication", v.to_string()),
            Field::PeerDisk(v) => ("peer-disk", v.to_string()),
            Field::PeerClient(v) => ("peer-client", v.to_string()),
            Field::ResyncSuspended(v) => ("resync-suspended", v.to_string()),
            Field::Established(v) => ("established", v.to_string()),
            Field::Helper(v) => ("helper", (*v).to_owned()),
            Field::Status(v) => ("status", v.to_string()),
            Field::Counter(counter, v) => (counter.key(), v.to_string()),
            Field::Rate(rate, v) => (rate.key(), format!("{v:.2}")),
            Field::Eta(v) => ("eta", v.to_string()),
            Field::Unknown { key, value } | Field::Invalid { key, value } => {
                (key, (*value).to_owned())
            }
        }
    }
}
