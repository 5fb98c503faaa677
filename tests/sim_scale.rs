//! `drbd-sim serve --scenario scale:N`: the generated cluster, served end
//! to end through the drbdsetup front-end. Every wait is bounded
//! (sim_common::LIMIT); children are killed on drop.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod sim_common;
}
use support::sim_common;

use drbd_agent::events2::parse_line;
use drbd_agent::state::Model;
use sim_common::{run_in, Sim};

/// Applies every line to a fresh model; panics on the first bad line.
fn apply_all(model: &mut Model, text: &str) -> usize {
    let mut count = 0;
    for line in text.lines() {
        let event = parse_line(line).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        model.apply(&event);
        count += 1;
    }
    count
}

#[test]
fn scale_1000_dumps_every_resource_with_two_connections() {
    let sim = Sim::start("scale:1000");
    let out = sim.run(
        "drbdsetup",
        "alpha",
        &["events2", "--now", "--statistics", "--full", "all"],
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.ends_with("exists -\n"));
    let mut model = Model::new();
    apply_all(&mut model, &out.stdout);
    let counts = model.counts();
    assert_eq!(counts.resources, 1000, "{counts:?}");
    assert_eq!(counts.devices, 1000, "{counts:?}");
    assert_eq!(counts.connections, 2000, "{counts:?}");
    assert_eq!(counts.peer_devices, 2000, "{counts:?}");
    assert_eq!(counts.paths, 2000, "{counts:?}");
    assert!(model
        .resources()
        .keys()
        .all(|name| name.starts_with("pvc-")));
    // Minors 1000..1999, one per resource.
    let mut minors: Vec<u32> = model
        .resources()
        .values()
        .flat_map(|r| r.devices.values().filter_map(|d| d.minor))
        .collect();
    minors.sort_unstable();
    assert_eq!(minors, (1000..2000).collect::<Vec<u32>>());
    // The first node's stat files are at DIR/sys/block and DIR/alpha/sys/block.
    let waited = std::time::Instant::now();
    let stat = sim.path().join("sys/block/drbd1999/stat");
    while !stat.exists() {
        assert!(waited.elapsed() < sim_common::LIMIT, "no stat file");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(sim.path().join("alpha/sys/block/drbd1999/stat").exists());
}

#[test]
fn scale_1000_streams_changes_continuously() {
    let sim = Sim::start("scale:1000");
    let mut stream = sim.stream(
        "alpha",
        &["events2", "--timestamps", "--statistics", "--poll", "all"],
    );
    let dump = stream.read_until(|l| l.ends_with(" exists -"));
    let mut model = Model::new();
    apply_all(&mut model, &dump.join("\n"));
    assert_eq!(model.counts().resources, 1000);
    // A poll request is answered while events flow.
    stream.send("n\n");
    let changes = std::cell::Cell::new(0);
    let mut kinds = std::collections::BTreeSet::new();
    let lines = stream.read_until(|l| {
        if l.contains(" change ") {
            changes.set(changes.get() + 1);
        }
        changes.get() >= 300
    });
    let text = lines.join("\n");
    assert_eq!(apply_all(&mut model, &text), lines.len());
    for line in &lines {
        let mut words = line.split(' ').skip(1);
        if let (Some(action), Some(kind)) = (words.next(), words.next()) {
            kinds.insert(format!("{action} {kind}"));
        }
    }
    for expected in [
        "change connection",
        "change peer-device",
        "change resource",
        "call helper",
    ] {
        assert!(kinds.contains(expected), "{expected} missing in {kinds:?}");
    }
    assert!(text.contains("replication:SyncSource") || text.contains("replication:SyncTarget"));
    // Nothing disappeared: the stream only changes existing objects.
    assert_eq!(model.counts().resources, 1000);
    assert_eq!(model.counts().connections, 2000);
    let (code, stderr) = stream.finish();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn bad_scale_names_are_refused_with_the_syntax() {
    let out = run_in(None, "check", "alpha", &["scale:10:0"], "");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("scale:N[:P[:V[:R]]]"), "{}", out.stderr);
    let out = run_in(None, "check", "alpha", &["scale:10:3:2"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("4 nodes, 10 resources"),
        "{}",
        out.stdout
    );
    let out = run_in(None, "scenarios", "alpha", &[], "");
    assert!(out.stdout.contains("scale:N[:P[:V[:R]]]"), "{}", out.stdout);
}
