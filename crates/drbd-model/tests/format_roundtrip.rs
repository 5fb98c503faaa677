//! Property tests: what the formatter prints, parsed and applied to a model,
//! gives back the state it printed.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::collections::BTreeMap;

use drbd_model::events2::format::{batch, end_of_dump, BatchKind, FormatOptions};
use drbd_model::events2::{
    parse_line, BlockedBy, ConnectionState, DiskState, Eta, Flags, ReplicationState,
    ResyncSuspendReason, Role, SuspendReason, SyncState, Tristate, WriteOrdering, YesNo,
};
use drbd_model::state::{
    Connection, Device, DeviceStats, Model, Path, PeerDevice, PeerDeviceStats, Resource,
};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

const CONN_NAMES: &[&str] = &["alpha", "bravo", "charlie", "delta"];
const LOCALS: &[&str] = &["ipv4:10.0.0.1:7000", "ipv6:[fe80::1%eth0]:7000"];
const PEERS: &[&str] = &["ipv4:10.0.0.2:7000", "ipv4:192.168.1.9:7789"];

fn known<T: Clone + std::fmt::Debug + 'static>(values: &'static [T]) -> impl Strategy<Value = T> {
    select(values)
}

fn flags<T: Clone + std::fmt::Debug + 'static>(
    values: &'static [T],
) -> impl Strategy<Value = Flags<T>> {
    subsequence(values, 0..=values.len()).prop_map(Flags)
}

fn counter() -> impl Strategy<Value = Option<u64>> {
    (0u64..1 << 40).prop_map(Some)
}

/// A rate as drbdsetup prints it: two decimals.
fn rate() -> impl Strategy<Value = f64> {
    (0u64..10_000_000).prop_map(|hundredths| hundredths as f64 / 100.0)
}

fn device(volume: u32) -> impl Strategy<Value = Device> {
    let info = (
        0u32..2000,
        select(&["/dev/vg0/r0", "/dev/sdb1", "none"][..]),
        known(DiskState::KNOWN),
        known(Tristate::KNOWN),
        known(Tristate::KNOWN),
        known(YesNo::KNOWN),
    );
    let stats = (
        [
            counter(),
            counter(),
            counter(),
            counter(),
            counter(),
            counter(),
            counter(),
        ],
        known(YesNo::KNOWN),
        flags(BlockedBy::KNOWN),
    );
    (info, stats).prop_map(
        move |((minor, backing, disk, client, open, quorum), (c, al_suspended, blocked))| Device {
            volume,
            announced: true,
            minor: Some(minor),
            backing_dev: Some(backing.to_owned()),
            disk: Some(disk),
            client: Some(client),
            open: Some(open),
            quorum: Some(quorum),
            stats: DeviceStats {
                size: c[0],
                read: c[1],
                written: c[2],
                al_writes: c[3],
                bm_writes: c[4],
                upper_pending: c[5],
                lower_pending: c[6],
                al_suspended: Some(al_suspended),
                blocked: Some(blocked),
            },
            ..Device::default()
        },
    )
}

fn replication(allow_verify: bool) -> impl Strategy<Value = ReplicationState> {
    known(ReplicationState::KNOWN).prop_map(move |state| match state {
        ReplicationState::VerifyS if !allow_verify => ReplicationState::SyncSource,
        ReplicationState::VerifyT if !allow_verify => ReplicationState::SyncTarget,
        other => other,
    })
}

fn peer_device(volume: u32, allow_verify: bool) -> impl Strategy<Value = PeerDevice> {
    let state = (
        replication(allow_verify),
        known(DiskState::KNOWN),
        known(Tristate::KNOWN),
        flags(ResyncSuspendReason::KNOWN),
        [counter(), counter(), counter(), counter(), counter()],
    );
    let details = (
        [rate(), rate(), rate(), rate()],
        prop_oneof![Just(Eta::Unknown), (0u64..1_000_000).prop_map(Eta::Seconds)],
        [
            counter(),
            counter(),
            counter(),
            counter(),
            counter(),
            counter(),
            counter(),
        ],
        [
            counter(),
            counter(),
            counter(),
            counter(),
            counter(),
            counter(),
            counter(),
        ],
        (1u64..1 << 40, 1u64..10_000_000),
    );
    (state, details).prop_map(
        move |((replication, disk, client, suspended, c), (rates, eta, rs, ov, (left, want)))| {
            let running = replication.is_resync() || replication.is_verify();
            let verify = replication.is_verify();
            let when = |value: Option<u64>, cond: bool| value.filter(|_| cond);
            let mut stats = PeerDeviceStats {
                received: c[0],
                sent: c[1],
                out_of_sync: c[2],
                pending: c[3],
                unacked: c[4],
                ..PeerDeviceStats::default()
            };
            if running {
                stats.dbdt1 = Some(rates[1]);
                stats.eta = Some(eta);
                stats.rs_total = rs[0];
                stats.rs_dt_start_ms = rs[1];
                stats.rs_paused_ms = rs[2];
                stats.rs_dt0_ms = rs[3];
                stats.rs_db0_sectors = rs[4];
                stats.rs_dt1_ms = rs[5];
                stats.rs_db1_sectors = rs[6];
                stats.rs_failed = when(ov[5], !verify);
                stats.rs_same_csum = when(ov[6], !verify);
                stats.ov_start_sector = when(ov[0], verify);
                stats.ov_stop_sector = when(ov[1], verify);
                stats.ov_position = when(ov[2], verify);
                stats.ov_left = when(Some(left), verify);
                stats.ov_skipped = when(ov[4], verify);
                stats.want = Some(want as f64 / 100.0);
                stats.dbdt = Some(rates[2]);
                stats.dbdt0 = Some(rates[3]);
            }
            PeerDevice {
                volume,
                announced: true,
                replication: Some(replication),
                peer_disk: Some(disk),
                peer_client: Some(client),
                resync_suspended: Some(suspended),
                done: running.then_some(rates[0]),
                stats,
                ..PeerDevice::default()
            }
        },
    )
}

fn path() -> impl Strategy<Value = Path> {
    (select(LOCALS), select(PEERS), known(YesNo::KNOWN)).prop_map(|(local, peer, established)| {
        Path {
            local: local.to_owned(),
            peer: peer.to_owned(),
            announced: true,
            established: Some(established),
            ..Path::default()
        }
    })
}

fn connection(name: &'static str, allow_verify: bool) -> impl Strategy<Value = Connection> {
    let state = (
        0u32..32,
        known(ConnectionState::KNOWN),
        known(Role::KNOWN),
        known(YesNo::KNOWN),
        counter(),
        counter(),
        proptest::option::of(known(SyncState::KNOWN)),
    );
    let volumes = subsequence(vec![0u32, 1, 2], 0..=3);
    let children = volumes.prop_flat_map(move |volumes| {
        let peer_devices: Vec<_> = volumes
            .into_iter()
            .map(|v| peer_device(v, allow_verify))
            .collect();
        (peer_devices, proptest::collection::vec(path(), 0..3))
    });
    (state, children).prop_map(
        move |((node_id, cstate, role, congested, ap, rs, sync), (peer_devices, paths))| {
            let mut unique: Vec<Path> = Vec::new();
            for path in paths {
                if !unique
                    .iter()
                    .any(|p| p.local == path.local && p.peer == path.peer)
                {
                    unique.push(path);
                }
            }
            Connection {
                conn_name: name.to_owned(),
                announced: true,
                peer_node_id: Some(node_id),
                sync_state: sync.filter(|_| cstate == ConnectionState::StandAlone),
                connection: Some(cstate),
                peer_role: Some(role),
                congested: Some(congested),
                ap_in_flight: ap,
                rs_in_flight: rs,
                peer_devices: peer_devices
                    .into_iter()
                    .map(|p| (p.volume, Box::new(p)))
                    .collect(),
                paths: unique,
                ..Connection::default()
            }
        },
    )
}

fn resource(name: &'static str, allow_verify: bool) -> impl Strategy<Value = Resource> {
    let state = (
        known(Role::KNOWN),
        flags(SuspendReason::KNOWN),
        known(YesNo::KNOWN),
        known(WriteOrdering::KNOWN),
        known(YesNo::KNOWN),
        0u64..100_000,
    );
    let devices = subsequence(vec![0u32, 1, 2], 0..=3)
        .prop_flat_map(|volumes| volumes.into_iter().map(device).collect::<Vec<_>>());
    let connections = subsequence(CONN_NAMES, 0..=3).prop_flat_map(move |names| {
        names
            .into_iter()
            .map(|n| connection(n, allow_verify))
            .collect::<Vec<_>>()
    });
    (state, devices, connections).prop_map(
        move |((role, suspended, fail_io, ordering, may_promote, score), devices, connections)| {
            Resource {
                name: name.to_owned(),
                announced: true,
                role: Some(role),
                suspended: Some(suspended),
                force_io_failures: Some(fail_io),
                write_ordering: Some(ordering),
                may_promote: Some(may_promote),
                promotion_score: Some(score),
                devices: devices
                    .into_iter()
                    .map(|d| (d.volume, Box::new(d)))
                    .collect(),
                connections: connections
                    .into_iter()
                    .map(|c| (c.conn_name.clone(), Box::new(c)))
                    .collect(),
                ..Resource::default()
            }
        },
    )
}

fn resources() -> impl Strategy<Value = Vec<Resource>> {
    subsequence(vec!["r0", "r1", "r2"], 1..=3).prop_flat_map(|names| {
        names
            .into_iter()
            .map(|n| resource(n, true))
            .collect::<Vec<_>>()
    })
}

/// Parses and applies every line; each must parse without unknown keys.
fn apply_all(model: &mut Model, text: &str) -> Result<(), TestCaseError> {
    for line in text.lines() {
        let event = parse_line(line).map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
        prop_assert_eq!(event.unknown_keys() + event.unknown_values(), 0, "{}", line);
        model.apply(&event);
    }
    Ok(())
}

/// Drops what `--statistics` given once does not print.
fn without_level_two(resource: &mut Resource) {
    for connection in resource.connections.values_mut() {
        for peer_device in connection.peer_devices.values_mut() {
            let s = &mut peer_device.stats;
            for slot in [
                &mut s.rs_total,
                &mut s.rs_dt_start_ms,
                &mut s.rs_paused_ms,
                &mut s.rs_dt0_ms,
                &mut s.rs_db0_sectors,
                &mut s.rs_dt1_ms,
                &mut s.rs_db1_sectors,
                &mut s.rs_failed,
                &mut s.rs_same_csum,
                &mut s.ov_start_sector,
                &mut s.ov_stop_sector,
                &mut s.ov_position,
                &mut s.ov_left,
                &mut s.ov_skipped,
            ] {
                *slot = None;
            }
            s.want = None;
            s.dbdt = None;
            s.dbdt0 = None;
        }
    }
}

fn dump(resources: &[Resource], options: &FormatOptions) -> String {
    let mut out = String::new();
    for resource in resources {
        batch(
            None,
            Some(resource),
            BatchKind::InitialDump,
            options,
            "",
            &mut out,
        );
    }
    end_of_dump("", &mut out);
    out
}

/// Turns an independently drawn `b` into a change from `a` that drbdsetup's
/// events can express: identities (minor, peer-node-id) stay, a device's
/// backing_dev/client only travel with a disk/quorum/open change, a
/// StandAlone connection keeps its sync-state unless its state changes, and
/// new paths come after the surviving ones.
fn expressible(a: &Resource, mut b: Resource) -> Resource {
    for (volume, device) in &mut b.devices {
        if let Some(before) = a.devices.get(volume) {
            device.minor = before.minor;
            if device.disk == before.disk
                && device.quorum == before.quorum
                && device.open == before.open
            {
                device.backing_dev = before.backing_dev.clone();
                device.client = before.client.clone();
            }
        }
    }
    for (name, connection) in &mut b.connections {
        let Some(before) = a.connections.get(name) else {
            continue;
        };
        connection.peer_node_id = before.peer_node_id;
        if connection.connection == before.connection {
            connection.sync_state = before.sync_state.clone();
        }
        let mut paths: Vec<Path> = before
            .paths
            .iter()
            .filter_map(|p| {
                connection
                    .paths
                    .iter()
                    .find(|n| n.local == p.local && n.peer == p.peer)
                    .cloned()
            })
            .collect();
        for path in &connection.paths {
            if !paths
                .iter()
                .any(|p| p.local == path.local && p.peer == path.peer)
            {
                paths.push(path.clone());
            }
        }
        connection.paths = paths;
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn initial_dump_rebuilds_the_model(resources in resources(), level in 1u8..=2, full in any::<bool>()) {
        let options = FormatOptions { statistics: level, full };
        let text = dump(&resources, &options);
        let mut model = Model::new();
        apply_all(&mut model, &text)?;
        prop_assert!(model.initial_dump_done());
        let mut expected: BTreeMap<String, Resource> = BTreeMap::new();
        for resource in &resources {
            let mut resource = resource.clone();
            if level < 2 {
                without_level_two(&mut resource);
            }
            expected.insert(resource.name.clone(), resource);
        }
        prop_assert_eq!(model.resources(), &expected, "{}", text);
    }

    #[test]
    fn change_batch_takes_a_to_b(
        a in resource("r0", false),
        b in resource("r0", false),
        destroy in proptest::bool::weighted(0.1),
        full in any::<bool>(),
    ) {
        let options = FormatOptions { statistics: 2, full };
        let mut model = Model::new();
        apply_all(&mut model, &dump(std::slice::from_ref(&a), &options))?;
        prop_assert_eq!(model.resource("r0"), Some(&a));
        let b = (!destroy).then(|| expressible(&a, b));
        let mut text = String::new();
        batch(Some(&a), b.as_ref(), BatchKind::Live, &options, "", &mut text);
        apply_all(&mut model, &text)?;
        prop_assert_eq!(model.resource("r0"), b.as_ref(), "{}", text);
    }
}
