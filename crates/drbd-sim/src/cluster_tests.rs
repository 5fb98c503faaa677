//! Timeline stepping of the cluster (pure: simulated time only).

use std::time::Duration;

use crate::events2::{ConnectionState, DiskState, ReplicationState, Role, Tristate};
use crate::state::Resource;

use super::cluster::{Cluster, CommandError, Item, NodeBatch};
use super::options::OptionChange;
use super::scenario::{self, Fault};

fn run(cluster: &mut Cluster, until_s: f64) -> Vec<NodeBatch> {
    let mut out = Vec::new();
    let mut t = cluster.now();
    let end = Duration::from_secs_f64(until_s);
    while t < end {
        t += Duration::from_millis(100);
        out.extend(cluster.step(t));
    }
    out
}

fn batches_of<'a>(out: &'a [NodeBatch], node: &str) -> Vec<&'a Resource> {
    out.iter()
        .filter(|b| b.node == node)
        .filter_map(|b| match &b.item {
            Item::Batch { new: Some(new), .. } => Some(new),
            _ => None,
        })
        .collect()
}

fn peer_state(r: &Resource, peer: &str) -> (ConnectionState, ReplicationState, Option<f64>) {
    let c = &r.connections[peer];
    let pd = &c.peer_devices[&0];
    (
        c.connection.clone().unwrap(),
        pd.replication.clone().unwrap(),
        pd.done,
    )
}

#[test]
fn resync_3node_story_on_alpha() {
    let mut cluster = Cluster::new(scenario::load("resync-3node").unwrap());
    let initial = cluster.published("alpha");
    assert_eq!(initial["r0"].role, Some(Role::Secondary));
    assert_eq!(initial["r0"].promotion_score, Some(10103));
    assert_eq!(
        initial["r0"].connections["charlie"].peer_role,
        Some(Role::Primary)
    );
    let out = run(&mut cluster, 35.0);
    let alpha = batches_of(&out, "alpha");
    let states: Vec<_> = alpha.iter().map(|r| peer_state(r, "bravo")).collect();
    let conn_seq: Vec<ConnectionState> = states.iter().map(|s| s.0.clone()).collect();
    let first = |c: ConnectionState| conn_seq.iter().position(|x| *x == c).unwrap();
    assert!(first(ConnectionState::NetworkFailure) < first(ConnectionState::Unconnected));
    assert!(first(ConnectionState::Unconnected) < first(ConnectionState::Connecting));
    let repl: Vec<ReplicationState> = states.iter().map(|s| s.1.clone()).collect();
    let pos = |r: ReplicationState| repl.iter().position(|x| *x == r).unwrap();
    assert!(pos(ReplicationState::WFBitMapS) < pos(ReplicationState::SyncSource));
    assert_eq!(repl.last(), Some(&ReplicationState::Established));
    // Progress every 3 s: 1 GiB at 70 MiB/s is about 14.6 s → 4 pushes.
    let dones: Vec<f64> = states.iter().filter_map(|s| s.2).collect();
    assert_eq!(dones[0], 0.0);
    assert!(dones.len() >= 5, "{dones:?}");
    assert!(dones.windows(2).all(|w| w[0] < w[1]), "{dones:?}");
    assert!((dones[1] - 20.5).abs() < 1.0, "{dones:?}");
    // Helpers: disconnected, then before-resync-source.
    let helpers: Vec<&str> = out
        .iter()
        .filter(|b| b.node == "alpha")
        .filter_map(|b| match &b.item {
            Item::Helper(h) => Some(h.helper.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(helpers, vec!["disconnected", "before-resync-source"]);
    // At the end alpha is Primary with the device open; charlie is Secondary.
    let last = cluster.published("alpha");
    assert_eq!(last["r0"].role, Some(Role::Primary));
    assert_eq!(last["r0"].devices[&0].open, Some(Tristate::Yes));
    assert_eq!(
        last["r0"].connections["charlie"].peer_role,
        Some(Role::Secondary)
    );
}

#[test]
fn sync_target_is_inconsistent_until_done() {
    let mut cluster = Cluster::new(scenario::load("resync-3node").unwrap());
    let out = run(&mut cluster, 30.0);
    let bravo = batches_of(&out, "bravo");
    let disks: Vec<DiskState> = bravo
        .iter()
        .map(|r| r.devices[&0].disk.clone().unwrap())
        .collect();
    assert!(disks.contains(&DiskState::Inconsistent));
    assert_eq!(disks.last(), Some(&DiskState::UpToDate));
    assert!(bravo
        .iter()
        .any(|r| peer_state(r, "alpha").1 == ReplicationState::SyncTarget));
}

#[test]
fn sync_target_options_set_the_rate() {
    let mut cluster = Cluster::new(scenario::load("resync-3node").unwrap());
    let change = OptionChange::parse(&["--c-max-rate=10M".to_owned()]).unwrap();
    // bravo is the SyncTarget; its peer device towards alpha (node-id 0).
    cluster
        .set_peer_device_options("bravo", "r0", 0, 0, &change)
        .unwrap();
    let out = run(&mut cluster, 12.0);
    let dones: Vec<f64> = batches_of(&out, "alpha")
        .iter()
        .filter_map(|r| peer_state(r, "bravo").2)
        .collect();
    // 3 s at 10 MiB/s of 1 GiB ≈ 2.9 %.
    assert!(dones.len() >= 2, "{dones:?}");
    assert!(dones[1] > 2.0 && dones[1] < 4.0, "{dones:?}");
    cluster.adjust("bravo", "r0").unwrap();
    assert_eq!(
        cluster
            .peer_device_options("bravo", "r0", 0, 0)
            .unwrap()
            .c_max_rate,
        102_400
    );
}

#[test]
fn unknown_objects_and_injected_failures() {
    let text = format!(
        "{}\n[[event]]\nat = \"1s\"\naction = \"fault\"\nnode = \"alpha\"\nfault = \"command-fail\"\ncount = 2\n\n[[event]]\nat = \"2s\"\naction = \"fault\"\nnode = \"bravo\"\nfault = \"module-missing\"\nduration = \"3s\"\n",
        include_str!("scenarios/resync-3node.toml")
    );
    let mut cluster = Cluster::new(scenario::parse("t", &text).unwrap());
    let change = OptionChange::default();
    assert_eq!(
        cluster.set_peer_device_options("alpha", "r9", 1, 0, &change),
        Err(CommandError::UnknownResource("r9".into()))
    );
    assert!(matches!(
        cluster.set_peer_device_options("alpha", "r0", 7, 0, &change),
        Err(CommandError::UnknownPeerDevice { .. })
    ));
    let out = run(&mut cluster, 2.5);
    assert!(out
        .iter()
        .any(|b| b.node == "bravo" && matches!(b.item, Item::Fault(Fault::ModuleMissing { .. }))));
    for _ in 0..2 {
        assert_eq!(
            cluster.set_peer_device_options("alpha", "r0", 1, 0, &change),
            Err(CommandError::Injected)
        );
    }
    assert_eq!(
        cluster.set_peer_device_options("alpha", "r0", 1, 0, &change),
        Ok(())
    );
    assert_eq!(
        cluster.check_module("bravo"),
        Err(CommandError::ModuleMissing)
    );
    run(&mut cluster, 5.5);
    assert_eq!(cluster.check_module("bravo"), Ok(()));
}

#[test]
fn demo_repeats_forever() {
    let mut cluster = Cluster::new(scenario::load("demo").unwrap());
    let first = run(&mut cluster, 90.0);
    let second = run(&mut cluster, 180.0);
    let count = |out: &[NodeBatch]| {
        out.iter()
            .filter(|b| matches!(b.item, Item::Helper(ref h) if h.helper == "disconnected"))
            .count()
    };
    assert!(count(&first) > 0);
    assert_eq!(count(&first), count(&second));
    // After two cycles charlie is Primary of web again.
    assert_eq!(
        cluster.published("charlie")["web"].role,
        Some(Role::Primary)
    );
}

#[test]
fn destroy_announces_a_removal() {
    let text = format!(
        "{}\n[[event]]\nat = \"1s\"\naction = \"destroy\"\nresource = \"r0\"\nnode = \"bravo\"\n",
        include_str!("scenarios/resync-3node.toml")
    )
    .replace("at = \"3s\"", "at = \"30s\"")
    .replace("at = \"5s\"", "at = \"31s\"");
    let mut cluster = Cluster::new(scenario::parse("t", &text).unwrap());
    let out = run(&mut cluster, 2.0);
    assert!(out.iter().any(|b| b.node == "bravo"
        && matches!(
            &b.item,
            Item::Batch {
                old: Some(_),
                new: None
            }
        )));
    assert!(cluster.published("bravo").is_empty());
    let alpha = cluster.published("alpha");
    assert_eq!(
        alpha["r0"].connections["bravo"].connection,
        Some(ConnectionState::Connecting)
    );
}

#[test]
fn writes_move_stat_files_and_counters() {
    let mut cluster = Cluster::new(scenario::load("resync-3node").unwrap());
    let before = cluster.stat_files();
    cluster.step(Duration::from_secs(2));
    let after = cluster.stat_files();
    let field = |files: &[(String, String)], path: &str, index: usize| -> u64 {
        let text = &files.iter().find(|(p, _)| p == path).unwrap().1;
        text.split_whitespace().nth(index).unwrap().parse().unwrap()
    };
    // charlie is Primary with 8 MiB/s: 2 s = 16 MiB = 32768 sectors.
    assert_eq!(field(&before, "charlie/sys/block/drbd1000/stat", 6), 0);
    assert_eq!(field(&after, "charlie/sys/block/drbd1000/stat", 6), 32768);
    assert_eq!(field(&after, "alpha/sys/block/dm-0/stat", 6), 32768);
    assert_eq!(field(&after, "alpha/sys/block/drbd1000/stat", 6), 0);
    // Counters only move in the fresh view, not in what was announced.
    assert_eq!(
        cluster.views("charlie")["r0"].devices[&0].stats.written,
        Some(16384)
    );
    assert_eq!(
        cluster.published("charlie")["r0"].devices[&0].stats.written,
        Some(0)
    );
}

#[test]
fn steps_touch_only_what_changes() {
    use super::scenario::Action;
    let mut cluster = Cluster::new(scenario::load("scale:300").unwrap());
    let out = run(&mut cluster, 5.0);
    let named: std::collections::BTreeSet<String> = cluster
        .scenario
        .timeline
        .iter()
        .filter(|e| e.at <= Duration::from_secs(5))
        .filter_map(|e| match &e.action {
            Action::Disconnect { resource, .. } | Action::Reconnect { resource, .. } => {
                resource.clone()
            }
            Action::Promote { resource, .. } | Action::Demote { resource, .. } => {
                Some(resource.clone())
            }
            _ => None,
        })
        .collect();
    assert!(!named.is_empty());
    let changed: std::collections::BTreeSet<String> = batches_of(&out, "alpha")
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert!(!changed.is_empty());
    assert!(changed.is_subset(&named), "{changed:?} not in {named:?}");
    // Idle resources nobody changed were never even advanced.
    let idle: Vec<_> = cluster
        .resources
        .values()
        .filter(|t| !named.contains(&t.spec.name) && t.spec.write_rate == 0)
        .collect();
    assert!(idle.len() > 200, "{}", idle.len());
    assert!(idle.iter().all(|t| t.advanced_to == Duration::ZERO));
    // Writing resources are swept: their counters are current.
    let writer = cluster
        .resources
        .values()
        .find(|t| t.spec.write_rate > 0 && !named.contains(&t.spec.name))
        .unwrap();
    assert_eq!(writer.advanced_to, Duration::from_secs(5));
}
