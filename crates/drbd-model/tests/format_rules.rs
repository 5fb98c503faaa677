//! One test per formatting rule of `events2::format`.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use drbd_model::events2::format::{
    batch, end_of_dump, helper_event, helper_line, rename_line, timestamp_prefix, BatchKind,
    FormatOptions, HelperLine,
};
use drbd_model::events2::parse_line;
use drbd_model::events2::{
    BlockedBy, ConnectionState, DiskState, Eta, Flags, ReplicationState, Role, SuspendReason,
    SyncState, Tristate, YesNo,
};
use drbd_model::state::{Model, Resource};

const BASE: &[&str] = &[
    "exists resource name:r0 role:Secondary suspended:no force-io-failures:no write-ordering:flush may_promote:no promotion_score:10102",
    "exists connection name:r0 peer-node-id:1 conn-name:bravo connection:Connected role:Secondary congested:no ap-in-flight:0 rs-in-flight:0",
    "exists connection name:r0 peer-node-id:2 conn-name:alpha connection:Connected role:Secondary congested:no ap-in-flight:0 rs-in-flight:0",
    "exists device name:r0 volume:0 minor:1000 backing_dev:/dev/a disk:UpToDate client:no open:no quorum:yes size:100 read:1 written:2 al-writes:3 bm-writes:4 upper-pending:0 lower-pending:0 al-suspended:no blocked:no",
    "exists device name:r0 volume:1 minor:1001 backing_dev:/dev/b disk:UpToDate client:no open:no quorum:yes size:100 read:1 written:2 al-writes:3 bm-writes:4 upper-pending:0 lower-pending:0 al-suspended:no blocked:no",
    "exists peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no received:0 sent:0 out-of-sync:0 pending:0 unacked:0",
    "exists peer-device name:r0 peer-node-id:1 conn-name:bravo volume:1 replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no received:0 sent:0 out-of-sync:0 pending:0 unacked:0",
    "exists path name:r0 peer-node-id:1 conn-name:bravo local:ipv4:10.0.0.1:7000 peer:ipv4:10.0.0.2:7000 established:yes",
    "exists path name:r0 peer-node-id:1 conn-name:bravo local:ipv4:10.1.0.1:7000 peer:ipv4:10.1.0.2:7000 established:yes",
];

fn base() -> Resource {
    let mut model = Model::new();
    for line in BASE {
        model.apply(&parse_line(line).expect("base line parses"));
    }
    model.resource("r0").expect("r0").clone()
}

const PLAIN: FormatOptions = FormatOptions {
    statistics: 0,
    full: false,
};
const STATS: FormatOptions = FormatOptions {
    statistics: 1,
    full: false,
};
const STATS2: FormatOptions = FormatOptions {
    statistics: 2,
    full: false,
};
const FULL: FormatOptions = FormatOptions {
    statistics: 0,
    full: true,
};

fn live(old: &Resource, new: &Resource, options: FormatOptions) -> String {
    let mut out = String::new();
    batch(
        Some(old),
        Some(new),
        BatchKind::Live,
        &options,
        "",
        &mut out,
    );
    out
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn initial_dump_prints_reverse_kernel_order() {
    let mut out = String::new();
    batch(
        None,
        Some(&base()),
        BatchKind::InitialDump,
        &PLAIN,
        "",
        &mut out,
    );
    let objects: Vec<String> = out
        .lines()
        .map(|l| l.split(' ').take(5).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        objects,
        [
            "exists resource name:r0 role:Secondary suspended:no",
            "exists connection name:r0 peer-node-id:2 conn-name:alpha",
            "exists connection name:r0 peer-node-id:1 conn-name:bravo",
            "exists device name:r0 volume:1 minor:1001",
            "exists device name:r0 volume:0 minor:1000",
            "exists peer-device name:r0 peer-node-id:1 conn-name:bravo",
            "exists peer-device name:r0 peer-node-id:1 conn-name:bravo",
            "exists path name:r0 peer-node-id:1 conn-name:bravo",
            "exists path name:r0 peer-node-id:1 conn-name:bravo",
        ]
    );
    assert!(lines(&out)[5].ends_with(
        "volume:1 replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no"
    ));
    assert!(
        lines(&out)[7].contains("local:ipv4:10.0.0.1:7000"),
        "paths in stored order"
    );
}

#[test]
fn new_objects_after_the_dump_are_created() {
    let mut out = String::new();
    batch(None, Some(&base()), BatchKind::Live, &PLAIN, "", &mut out);
    assert!(out.lines().all(|l| l.starts_with("create ")), "{out}");
    assert_eq!(out.lines().count(), 9);
}

#[test]
fn unchanged_batch_prints_nothing() {
    let r = base();
    for options in [PLAIN, STATS, STATS2, FULL] {
        assert_eq!(live(&r, &r, options), "");
    }
}

#[test]
fn resource_prints_only_changed_groups() {
    let old = base();
    let mut new = old.clone();
    new.role = Some(Role::Primary);
    assert_eq!(
        live(&old, &new, PLAIN),
        "change resource name:r0 role:Primary\n"
    );
    let mut new = old.clone();
    new.suspended = Some(Flags(vec![SuspendReason::User, SuspendReason::Quorum]));
    assert_eq!(
        live(&old, &new, PLAIN),
        "change resource name:r0 suspended:user,quorum\n"
    );
    let mut new = old.clone();
    new.promotion_score = Some(10103);
    assert_eq!(
        live(&old, &new, PLAIN),
        "change resource name:r0 may_promote:no promotion_score:10103\n"
    );
}

#[test]
fn write_ordering_needs_statistics() {
    let old = base();
    let mut new = old.clone();
    new.write_ordering = Some(drbd_model::events2::WriteOrdering::Drain);
    assert_eq!(live(&old, &new, PLAIN), "");
    assert_eq!(
        live(&old, &new, STATS),
        "change resource name:r0 write-ordering:drain\n"
    );
}

#[test]
fn full_prints_every_resource_group() {
    let old = base();
    let mut new = old.clone();
    new.role = Some(Role::Primary);
    assert_eq!(
        live(&old, &new, FULL),
        "change resource name:r0 role:Primary suspended:no force-io-failures:no write-ordering:flush may_promote:no promotion_score:10102\n"
    );
}

#[test]
fn connection_statistics_and_congested() {
    let old = base();
    let mut new = old.clone();
    let bravo = new.connections.get_mut("bravo").expect("bravo");
    bravo.ap_in_flight = Some(8);
    assert_eq!(live(&old, &new, PLAIN), "");
    assert_eq!(
        live(&old, &new, STATS),
        "change connection name:r0 peer-node-id:1 conn-name:bravo ap-in-flight:8 rs-in-flight:0\n"
    );
    new.connections.get_mut("bravo").expect("bravo").congested = Some(YesNo::Yes);
    assert_eq!(
        live(&old, &new, STATS),
        "change connection name:r0 peer-node-id:1 conn-name:bravo congested:yes ap-in-flight:8 rs-in-flight:0\n"
    );
}

#[test]
fn sync_state_only_while_standalone() {
    let old = base();
    let mut new = old.clone();
    let bravo = new.connections.get_mut("bravo").expect("bravo");
    bravo.connection = Some(ConnectionState::StandAlone);
    bravo.sync_state = Some(SyncState::SplitBrain);
    assert_eq!(
        live(&old, &new, PLAIN),
        "change connection name:r0 peer-node-id:1 conn-name:bravo connection:StandAlone sync-state:SplitBrain\n"
    );
    let mut other = old.clone();
    let bravo = other.connections.get_mut("bravo").expect("bravo");
    bravo.connection = Some(ConnectionState::Connecting);
    bravo.sync_state = Some(SyncState::SplitBrain);
    assert_eq!(
        live(&old, &other, PLAIN),
        "change connection name:r0 peer-node-id:1 conn-name:bravo connection:Connecting\n"
    );
}

#[test]
fn device_prints_the_five_together() {
    let old = base();
    let mut new = old.clone();
    let device = new.devices.get_mut(&0).expect("volume 0");
    device.open = Some(Tristate::Yes);
    assert_eq!(
        live(&old, &new, PLAIN),
        "change device name:r0 volume:0 minor:1000 backing_dev:/dev/a disk:UpToDate client:no open:yes quorum:yes\n"
    );
    // backing_dev and client alone do not make a line.
    let mut new = old.clone();
    new.devices.get_mut(&0).expect("volume 0").backing_dev = None;
    assert_eq!(live(&old, &new, PLAIN), "");
    new.devices.get_mut(&0).expect("volume 0").disk = Some(DiskState::Diskless);
    assert_eq!(
        live(&old, &new, PLAIN),
        "change device name:r0 volume:0 minor:1000 backing_dev:none disk:Diskless client:no open:no quorum:yes\n"
    );
}

#[test]
fn device_statistics_blocked_and_al_suspended() {
    let old = base();
    let mut new = old.clone();
    new.devices.get_mut(&1).expect("volume 1").stats.blocked =
        Some(Flags(vec![BlockedBy::Upper, BlockedBy::Lower]));
    assert_eq!(live(&old, &new, PLAIN), "");
    assert_eq!(
        live(&old, &new, STATS),
        "change device name:r0 volume:1 minor:1001 size:100 read:1 written:2 al-writes:3 bm-writes:4 upper-pending:0 lower-pending:0 blocked:upper,lower\n"
    );
    let mut new = old.clone();
    new.devices.get_mut(&1).expect("volume 1").stats.written = Some(5);
    assert_eq!(
        live(&old, &new, FULL),
        "change device name:r0 volume:1 minor:1001 backing_dev:/dev/b disk:UpToDate client:no open:no quorum:yes size:100 read:1 written:5 al-writes:3 bm-writes:4 upper-pending:0 lower-pending:0 al-suspended:no\n",
        "--full forces al-suspended but not blocked"
    );
}

#[test]
fn peer_device_statistics_change_without_s_prints_bare_line() {
    let old = base();
    let mut new = old.clone();
    let pd = new
        .connections
        .get_mut("bravo")
        .and_then(|c| c.peer_devices.get_mut(&0))
        .expect("peer device");
    pd.stats.out_of_sync = Some(64);
    assert_eq!(
        live(&old, &new, PLAIN),
        "change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0\n"
    );
    assert_eq!(
        live(&old, &new, STATS),
        "change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 received:0 sent:0 out-of-sync:64 pending:0 unacked:0\n"
    );
}

fn resyncing(verify: bool) -> (Resource, Resource) {
    let old = base();
    let mut new = old.clone();
    let pd = new
        .connections
        .get_mut("bravo")
        .and_then(|c| c.peer_devices.get_mut(&0))
        .expect("peer device");
    pd.replication = Some(if verify {
        ReplicationState::VerifyS
    } else {
        ReplicationState::SyncTarget
    });
    pd.done = Some(12.345);
    let s = &mut pd.stats;
    s.dbdt1 = Some(1.5);
    s.eta = Some(Eta::Unknown);
    s.rs_total = Some(1000);
    s.rs_dt_start_ms = Some(10);
    s.rs_paused_ms = Some(0);
    s.rs_dt0_ms = Some(1);
    s.rs_db0_sectors = Some(2);
    s.rs_dt1_ms = Some(3);
    s.rs_db1_sectors = Some(4);
    s.rs_failed = Some(5);
    s.rs_same_csum = Some(6);
    s.want = Some(0.0);
    s.dbdt = Some(7.0);
    s.dbdt0 = Some(8.125);
    if verify {
        s.ov_start_sector = Some(11);
        s.ov_stop_sector = Some(12);
        s.ov_position = Some(13);
        s.ov_left = Some(14);
        s.ov_skipped = Some(15);
    }
    (old, new)
}

#[test]
fn done_prints_without_statistics() {
    let (old, new) = resyncing(false);
    assert_eq!(
        live(&old, &new, PLAIN),
        "change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 replication:SyncTarget done:12.35\n"
    );
    assert_eq!(
        live(&old, &new, STATS),
        "change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 replication:SyncTarget done:12.35 received:0 sent:0 out-of-sync:0 pending:0 unacked:0 dbdt1:1.50 eta:nan\n"
    );
}

#[test]
fn two_levels_print_resync_details_and_want_only_when_set() {
    let (old, mut new) = resyncing(false);
    assert_eq!(
        live(&old, &new, STATS2),
        "change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 replication:SyncTarget done:12.35 received:0 sent:0 out-of-sync:0 pending:0 unacked:0 rs-total:1000 rs-dt-start-ms:10 rs-paused-ms:0 rs-dt0-ms:1 rs-db0-sectors:2 rs-dt1-ms:3 rs-db1-sectors:4 rs-failed:5 rs-same-csum:6 dbdt:7.00 dbdt0:8.12 dbdt1:1.50 eta:nan\n"
    );
    let pd = new
        .connections
        .get_mut("bravo")
        .and_then(|c| c.peer_devices.get_mut(&0))
        .expect("peer device");
    pd.stats.want = Some(20.0);
    pd.stats.eta = Some(Eta::Seconds(42));
    assert!(live(&old, &new, STATS2)
        .contains(" rs-same-csum:6 want:20.00 dbdt:7.00 dbdt0:8.12 dbdt1:1.50 eta:42\n"));
}

#[test]
fn verify_prints_ov_fields_instead_of_rs_failed() {
    let (old, new) = resyncing(true);
    let out = live(&old, &new, STATS2);
    assert!(
        out.contains(" rs-db1-sectors:4 ov-start-sector:11 ov-stop-sector:12 ov-position:13 ov-left:14 ov-skipped:15 dbdt:7.00"),
        "{out}"
    );
    assert!(!out.contains("rs-failed"));
}

#[test]
fn peer_disk_and_client_print_as_a_pair() {
    let old = base();
    let mut new = old.clone();
    let pd = new
        .connections
        .get_mut("bravo")
        .and_then(|c| c.peer_devices.get_mut(&1))
        .expect("peer device");
    pd.peer_client = Some(Tristate::Yes);
    pd.resync_suspended = Some(Flags(vec![drbd_model::events2::ResyncSuspendReason::Peer]));
    assert_eq!(
        live(&old, &new, PLAIN),
        "change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:1 peer-disk:UpToDate peer-client:yes resync-suspended:peer\n"
    );
}

#[test]
fn batch_order_and_destroys() {
    let old = base();
    let mut new = old.clone();
    new.promotion_score = Some(1);
    new.devices.remove(&1);
    let bravo = new.connections.get_mut("bravo").expect("bravo");
    bravo.connection = Some(ConnectionState::Connecting);
    bravo.paths[1].established = Some(YesNo::No);
    bravo.paths.remove(0);
    bravo.peer_devices.remove(&0);
    bravo.peer_devices.get_mut(&1).expect("pd").replication = Some(ReplicationState::Off);
    new.connections.remove("alpha");
    assert_eq!(
        live(&old, &new, PLAIN),
        "change resource name:r0 may_promote:no promotion_score:1\n\
         change connection name:r0 peer-node-id:1 conn-name:bravo connection:Connecting\n\
         change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:1 replication:Off\n\
         change path name:r0 peer-node-id:1 conn-name:bravo local:ipv4:10.1.0.1:7000 peer:ipv4:10.1.0.2:7000 established:no\n\
         destroy path name:r0 peer-node-id:1 conn-name:bravo local:ipv4:10.0.0.1:7000 peer:ipv4:10.0.0.2:7000\n\
         destroy peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0\n\
         destroy connection name:r0 peer-node-id:2 conn-name:alpha\n\
         destroy device name:r0 volume:1\n"
    );
}

#[test]
fn destroyed_resource_prints_children_first() {
    let mut out = String::new();
    batch(Some(&base()), None, BatchKind::Live, &PLAIN, "", &mut out);
    assert_eq!(
        out,
        "destroy path name:r0 peer-node-id:1 conn-name:bravo local:ipv4:10.0.0.1:7000 peer:ipv4:10.0.0.2:7000\n\
         destroy path name:r0 peer-node-id:1 conn-name:bravo local:ipv4:10.1.0.1:7000 peer:ipv4:10.1.0.2:7000\n\
         destroy peer-device name:r0 peer-node-id:1 conn-name:bravo volume:1\n\
         destroy peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0\n\
         destroy connection name:r0 peer-node-id:2 conn-name:alpha\n\
         destroy connection name:r0 peer-node-id:1 conn-name:bravo\n\
         destroy device name:r0 volume:1\n\
         destroy device name:r0 volume:0\n\
         destroy resource name:r0\n"
    );
    let mut none = String::new();
    batch(None, None, BatchKind::Live, &PLAIN, "", &mut none);
    assert_eq!(none, "");
}

#[test]
fn path_prints_when_established_changes() {
    let old = base();
    let mut new = old.clone();
    new.connections.get_mut("bravo").expect("bravo").paths[0].established = Some(YesNo::No);
    assert_eq!(
        live(&old, &new, FULL),
        "change path name:r0 peer-node-id:1 conn-name:bravo local:ipv4:10.0.0.1:7000 peer:ipv4:10.0.0.2:7000 established:no\n"
    );
}

#[test]
fn prefix_starts_every_line() {
    let mut out = String::new();
    batch(
        None,
        Some(&base()),
        BatchKind::InitialDump,
        &STATS,
        "T ",
        &mut out,
    );
    end_of_dump("T ", &mut out);
    assert!(out.lines().all(|l| l.starts_with("T ")));
    assert!(out.ends_with("T exists -\n"));
}

#[test]
fn helper_rename_and_end_of_dump_lines() {
    let mut out = String::new();
    helper_line(
        "",
        false,
        "r0",
        Some(1),
        Some("bravo"),
        Some(0),
        Some(1000),
        "before-resync-target",
        None,
        &mut out,
    );
    helper_line(
        "",
        true,
        "r0",
        None,
        None,
        None,
        None,
        "fence-peer",
        Some(1024),
        &mut out,
    );
    helper_event(
        "",
        &HelperLine {
            response: false,
            resource: "r0",
            peer_node_id: Some(1),
            conn_name: Some("bravo"),
            addresses: Some(("ipv4:10.0.0.1:7000", "ipv4:10.0.0.2:7000")),
            helper: "x",
            ..HelperLine::default()
        },
        &mut out,
    );
    rename_line("", "r0", "r1", &mut out);
    end_of_dump("", &mut out);
    assert_eq!(
        out,
        "call helper name:r0 peer-node-id:1 conn-name:bravo volume:0 minor:1000 helper:before-resync-target\n\
         response helper name:r0 helper:fence-peer status:1024\n\
         call helper name:r0 peer-node-id:1 conn-name:bravo local:ipv4:10.0.0.1:7000 peer:ipv4:10.0.0.2:7000 helper:x\n\
         rename resource name:r0 new_name:r1\n\
         exists -\n"
    );
    for line in out.lines() {
        parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
}

fn at(offset_seconds: i32, micros: u32) -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(offset_seconds).expect("valid offset");
    let naive = NaiveDate::from_ymd_opt(2024, 2, 29)
        .and_then(|d| d.and_hms_micro_opt(23, 5, 9, micros))
        .expect("valid time");
    offset.from_local_datetime(&naive).single().expect("unique")
}

#[test]
fn timestamp_prefix_format() {
    assert_eq!(
        timestamp_prefix(at(7200, 42)),
        "2024-02-29T23:05:09.000042+02:00 "
    );
    assert_eq!(
        timestamp_prefix(at(-(3 * 3600 + 1800), 999_999)),
        "2024-02-29T23:05:09.999999-03:30 "
    );
    assert_eq!(
        timestamp_prefix(at(0, 0)),
        "2024-02-29T23:05:09.000000+00:00 "
    );
    // drbdsetup truncates the hours, so -00:30 prints as +00:30.
    assert_eq!(
        timestamp_prefix(at(-1800, 1)),
        "2024-02-29T23:05:09.000001+00:30 "
    );
    let line = format!("{}exists -", timestamp_prefix(at(19800, 5)));
    let event = parse_line(&line).expect("parses");
    assert_eq!(event.timestamp, Some(at(19800, 5)));
}
