//! `drbd-sim serve` in plant mode, in real time (~25 s): the Primary's
//! DRBD write latency (from its stat file) rises during the resync; a low
//! c-max-rate on the SyncTarget slows the resync; `drbdadm adjust` brings
//! the configured rate back.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod sim_common;
}
use support::sim_common;

use std::time::{Duration, Instant};

use sim_common::{data, Sim};

/// (writes, ms writing) of a stat file.
fn writes(sim: &Sim, relative: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(sim.path().join(relative)).unwrap();
    let fields: Vec<u64> = text
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(fields.len(), 17, "{text:?}");
    (fields[4], fields[7])
}

/// Mean ms per write between two reads.
fn mean_write_ms(a: (u64, u64), b: (u64, u64)) -> f64 {
    let n = b.0 - a.0;
    assert!(n > 0, "no writes between {a:?} and {b:?}");
    (b.1 - a.1) as f64 / n as f64
}

/// alpha's out-of-sync towards bravo in `events2 --now -s`.
fn out_of_sync(sim: &Sim) -> u64 {
    let out = sim.run("drbdsetup", "alpha", &["events2", "--now", "-s", "r0"], "");
    assert_eq!(out.code, 0, "{out:?}");
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("peer-device") && l.contains("conn-name:bravo"))
        .unwrap_or_else(|| panic!("no peer device in {}", out.stdout));
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("out-of-sync:"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no out-of-sync in {line}"))
}

fn sleep_until(start: Instant, at_s: f64) {
    let at = start + Duration::from_secs_f64(at_s);
    if let Some(left) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
}

#[test]
fn resync_in_the_plant_raises_latency_and_follows_the_options() {
    let scenario = data("plant-small.toml");
    let sim = Sim::start(scenario.to_str().unwrap());
    let start = Instant::now();
    let stat = "sys/block/drbd1000/stat";

    // Before the resync (reconnect at 2 s, resync from ~2.9 s).
    sleep_until(start, 1.3);
    let q1 = writes(&sim, stat);
    sleep_until(start, 2.6);
    let q2 = writes(&sim, stat);
    // During it, unthrottled (c-max-rate 100M).
    sleep_until(start, 4.0);
    let a0 = out_of_sync(&sim);
    sleep_until(start, 4.5);
    let r1 = writes(&sim, stat);
    sleep_until(start, 6.5);
    let r2 = writes(&sim, stat);
    sleep_until(start, 8.0);
    let a1 = out_of_sync(&sim);

    let quiet = mean_write_ms(q1, q2);
    let busy = mean_write_ms(r1, r2);
    assert!(
        busy > 2.0 * quiet,
        "write latency during the resync {busy:.2} ms, before {quiet:.2} ms"
    );

    // The SyncTarget (bravo) slows its resync from alpha (node-id 0) down.
    let set = sim.run(
        "drbdsetup",
        "bravo",
        &["peer-device-options", "r0", "0", "0", "--c-max-rate=1M"],
        "",
    );
    assert_eq!(set.code, 0, "{set:?}");
    sleep_until(start, 11.5);
    let b0 = out_of_sync(&sim);
    sleep_until(start, 15.5);
    let b1 = out_of_sync(&sim);

    // `drbdadm adjust` restores c-max-rate 100M.
    let adjust = sim.run("drbdadm", "bravo", &["adjust", "r0"], "");
    assert_eq!(adjust.code, 0, "{adjust:?}");
    sleep_until(start, 19.0);
    let c0 = out_of_sync(&sim);
    sleep_until(start, 23.0);
    let c1 = out_of_sync(&sim);

    let fast = a0.saturating_sub(a1);
    let slow = b0.saturating_sub(b1);
    let restored = c0.saturating_sub(c1);
    assert!(
        fast > 100 * 1024,
        "unthrottled: out-of-sync {a0} -> {a1} KiB"
    );
    assert!(
        slow * 4 < fast,
        "at 1M out-of-sync fell {slow} KiB, at 100M {fast} KiB"
    );
    assert!(
        restored > slow * 4,
        "after adjust out-of-sync fell {restored} KiB, at 1M {slow} KiB"
    );
}
