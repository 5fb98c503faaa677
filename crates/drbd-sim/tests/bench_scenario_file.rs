//! `bench throttle --scenario FILE`: the shipped example file runs through
//! the bench (library and binary, deterministic), and a bad file is a clear
//! error naming file, line and key.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use drbd_sim::bench::run::run_agent;
use drbd_sim::bench::{file, run_scenario, select, BenchError};

/// The drbd-agent binary, built by the workspace's root package into the
/// same target directory (`cargo test` at the top builds it).
fn agent() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/drbd-agent
    let bin = exe.parent().unwrap().parent().unwrap().join("drbd-agent");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --bin drbd-agent`",
        bin.display()
    );
    bin
}

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/bench-scenario.example.toml")
}

#[test]
fn the_example_file_runs_through_the_bench() {
    let s = file::load(&example()).unwrap();
    assert_eq!(s.name, "example");
    assert_eq!(s.volumes.len(), 2);
    let chosen = select(&[example().display().to_string()]).unwrap();
    assert_eq!(chosen, vec![s.clone()]);
    let report = run_scenario(&s).unwrap();
    assert_eq!(report.name, "example");
    assert_eq!(report.target_p99_ms, 30.0);
    let r = &report.strategies;
    assert!(r.agent.metrics.completed, "{:?}", r.agent.metrics);
    assert!(
        r.unthrottled.metrics.completed,
        "{:?}",
        r.unthrottled.metrics
    );
    assert!(
        r.unthrottled.metrics.resync_seconds <= r.agent.metrics.resync_seconds + 1.0,
        "{:?} vs {:?}",
        r.unthrottled.metrics,
        r.agent.metrics
    );
    // Deterministic: the same file gives the same numbers.
    assert_eq!(run_agent(&s).unwrap(), r.agent.metrics);
}

#[test]
fn the_binary_takes_a_file_and_reports_a_bad_one() {
    let out = Command::new(agent())
        .args(["bench", "throttle", "--json", "--scenario"])
        .arg(example())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["scenarios"][0]["name"], "example");
    assert!(v["scenarios"][0]["strategies"]["agent"]["resync_seconds"].is_number());

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    fs::write(
        &bad,
        "name = \"bad\"\n[[volume]]\nout-of-sync-gib = 1\nload = \"bursts\"\nperiod = \"1m\"\nduty = 1.5\nlevel-mib-s = 10\n",
    )
    .unwrap();
    let out = Command::new(agent())
        .args(["bench", "throttle", "--scenario"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:4:8: key `volume[0].load`:", bad.display()))
            && err.contains("duty 1.5"),
        "{err}"
    );
    // A missing file is named; an unknown bare name is not taken for a file.
    let missing = dir.path().join("missing.toml").display().to_string();
    let e = select(std::slice::from_ref(&missing)).unwrap_err();
    assert!(matches!(e, BenchError::File(_)), "{e:?}");
    assert!(e.to_string().contains(&missing), "{e}");
    assert!(matches!(
        select(&["missing".to_owned()]),
        Err(BenchError::UnknownScenario(_))
    ));
}
