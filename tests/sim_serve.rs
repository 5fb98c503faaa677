//! `drbd-sim serve` with the drbdsetup/drbdadm front-end, end to end.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod sim_common;
}
use support::sim_common;

use sim_common::{assert_all_parse, data, run_in, Sim};

fn short() -> Sim {
    Sim::start(data("short.toml").to_str().unwrap())
}

#[test]
fn events2_now_dumps_and_exits() {
    let sim = short();
    let out = sim.run("drbdsetup", "alpha", &["events2", "--now", "-s", "all"], "");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.ends_with("exists -\n"), "{out:?}");
    assert_all_parse(&out.stdout);
    assert!(
        out.stdout.contains("exists resource name:r0 "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "exists connection name:r0 peer-node-id:1 conn-name:bravo connection:Connected"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn events2_streams_live_batches_with_timestamps() {
    let sim = short();
    let stream = sim.stream("alpha", &["events2", "-T", "--statistics", "all"]);
    let lines = stream.read_until(|l| l.contains("replication:SyncSource"));
    let text = lines.join("\n");
    assert_all_parse(&text);
    assert!(text.contains("exists -"), "{text}");
    assert!(text.contains("connection:NetworkFailure"), "{text}");
    assert!(
        text.contains("call helper name:r0 peer-node-id:1 conn-name:bravo helper:disconnected"),
        "{text}"
    );
    for line in &lines {
        let event = drbd_agent::events2::parse_line(line).unwrap();
        assert!(event.timestamp.is_some(), "no timestamp: {line}");
    }
    // Progress arrives every 3 s and the resync ends.
    let rest = stream.read_until(|l| l.contains("replication:Established"));
    assert!(rest.iter().any(|l| l.contains(" done:")), "{rest:#?}");
    assert_all_parse(&rest.join("\n"));
}

#[test]
fn poll_redumps_and_eof_exits_zero() {
    let sim = short();
    let mut stream = sim.stream("alpha", &["events2", "--poll", "-s", "all"]);
    stream.read_until(|l| l == "exists -");
    std::thread::sleep(std::time::Duration::from_millis(600));
    stream.send("n\n");
    // The primary writes 4 MiB/s: its device counters moved.
    let lines = stream.read_until(|l| l.starts_with("change device name:r0"));
    assert!(lines.last().unwrap().contains(" written:"), "{lines:#?}");
    let (code, stderr) = stream.finish();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn peer_device_options_round_trip_through_show() {
    let sim = short();
    let set = sim.run(
        "drbdsetup",
        "bravo",
        &[
            "peer-device-options",
            "r0",
            "0",
            "0",
            "--c-max-rate=20M",
            "--c-fill-target",
            "200s",
        ],
        "",
    );
    assert_eq!(set.code, 0, "{set:?}");
    assert!(set.stdout.is_empty() && set.stderr.is_empty(), "{set:?}");
    let show = sim.run("drbdsetup", "bravo", &["show", "--json", "r0"], "");
    assert_eq!(show.code, 0, "{show:?}");
    let value: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    let disk = &value[0]["connections"][0]["volumes"][0]["disk"];
    assert_eq!(value[0]["connections"][0]["_peer_node_id"], 0);
    assert_eq!(disk["c-max-rate"], "20480k");
    assert_eq!(disk["c-fill-target"], "200s");
    assert_eq!(disk["c-min-rate"], "250k");

    let adjust = sim.run("drbdadm", "bravo", &["adjust", "r0"], "");
    assert_eq!(adjust.code, 0, "{adjust:?}");
    let show = sim.run("drbdsetup", "bravo", &["show", "--json", "all"], "");
    let value: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(
        value[0]["connections"][0]["volumes"][0]["disk"]["c-max-rate"],
        "102400k"
    );
}

#[test]
fn bad_options_and_unknown_objects_fail() {
    let sim = short();
    let bad = sim.run(
        "drbdsetup",
        "alpha",
        &["peer-device-options", "r0", "1", "0", "--c-max-rate=1.5M"],
        "",
    );
    assert_eq!(bad.code, 20, "{bad:?}");
    assert!(
        bad.stderr.contains("c-max-rate: invalid value '1.5M'"),
        "{bad:?}"
    );
    let range = sim.run(
        "drbdsetup",
        "alpha",
        &["peer-device-options", "r0", "1", "0", "--c-plan-ahead=301"],
        "",
    );
    assert_eq!(range.code, 20, "{range:?}");
    assert!(range.stderr.contains("out of range [0..300]"), "{range:?}");
    let unknown = sim.run(
        "drbdsetup",
        "alpha",
        &["peer-device-options", "r9", "1", "0", "--c-max-rate=1M"],
        "",
    );
    assert_eq!(unknown.code, 10, "{unknown:?}");
    assert!(
        unknown
            .stderr
            .contains("r9: Failure: (158) Unknown resource"),
        "{unknown:?}"
    );
    let peer = sim.run(
        "drbdsetup",
        "alpha",
        &["peer-device-options", "r0", "5", "0"],
        "",
    );
    assert_eq!(peer.code, 10, "{peer:?}");
    let status = sim.run("drbdsetup", "alpha", &["status", "--json", "r0"], "");
    assert_eq!(status.code, 0, "{status:?}");
    let value: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(value[0]["role"], "Primary");
}

#[test]
fn stat_files_move() {
    let sim = short();
    let path = sim.path().join("alpha/sys/block/drbd1000/stat");
    let read = || -> u64 {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.split_whitespace()
            .nth(6)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
    };
    let start = std::time::Instant::now();
    while read() == 0 {
        assert!(
            start.elapsed() < sim_common::LIMIT,
            "sectors written never moved"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.split_whitespace().count(), 17, "{text}");
    assert!(sim.path().join("bravo/sys/block/dm-0/stat").exists());
    // The first node's devices are also at DIR/sys/block (the default view).
    let default_view = sim.path().join("sys/block/drbd1000/stat");
    let text = std::fs::read_to_string(&default_view).unwrap();
    assert_eq!(text.split_whitespace().count(), 17, "{text}");
}

#[test]
fn drbdadm_version_with_and_without_module() {
    let sim = short();
    let out = sim.run("drbdadm", "alpha", &["--version"], "");
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("DRBD_KERNEL_VERSION=9.2."), "{out:?}");
    assert!(out.stdout.contains("DRBDADM_API_VERSION=2\n"), "{out:?}");
    let none = run_in(None, "drbdadm", "alpha", &["--version"], "");
    assert_eq!(none.code, 0);
    assert!(none.stdout.contains("DRBD_KERNEL_VERSION=0\n"), "{none:?}");
}

#[test]
fn no_server_is_no_module() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["events2", "--now", "all"][..],
        &["show", "--json", "all"][..],
    ] {
        let out = run_in(Some(dir.path()), "drbdsetup", "alpha", args, "");
        assert_eq!(out.code, 20, "{out:?}");
        assert_eq!(
            out.stderr,
            "Could not connect to 'drbd' generic netlink family\n"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn symlink_named_drbdsetup_is_the_front_end() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("drbdsetup");
    std::os::unix::fs::symlink(support::bins::sim(), &link).unwrap();
    let mut command = std::process::Command::new(&link);
    command
        .args(["events2", "--now", "all"])
        .env("DRBD_SIM_DIR", dir.path());
    let out = sim_common::run_command(command, "");
    assert_eq!(out.code, 20, "{out:?}");
    assert!(out.stderr.contains("generic netlink family"));
}

#[test]
fn check_reports_scenario_errors_with_line() {
    let mut command = std::process::Command::new(support::bins::sim());
    command.args(["check", data("bad-key.toml").to_str().unwrap()]);
    let out = sim_common::run_command(command, "");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("bad-key.toml:4: "), "{out:?}");
    assert!(out.stderr.contains("colour"), "{out:?}");
    let mut command = std::process::Command::new(support::bins::sim());
    command.args(["check", "demo"]);
    let out = sim_common::run_command(command, "");
    assert_eq!(out.code, 0, "{out:?}");
}
