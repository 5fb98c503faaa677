//! The throttle's queue model end to end, in real time: the real
//! `drbd-agent run` on bravo, a Secondary SyncTarget, against
//! `drbd-sim serve` in plant mode (tests/data/sim/throttle-model-plant.toml).
//! Alpha writes 160 MiB/s to a 400 MiB/s, 1 ms disk; the oracle rate for a
//! 5 ms mean target is 160 MiB/s (ρ = 0.8). The agent's signal is bravo's
//! backing device.
//!
//! After a settling time the agent must run the resync at ≥ 0.8 × the
//! oracle (the median rate it sets; the resync's measured progress only
//! ≥ 0.5 ×, as a stalled simulator on a loaded machine moves less data),
//! above 1.2 × it in at most two windows, with the model in use and
//! alpha's write latency near the target. Bounds are loose (noise, a
//! loaded 2-core CI machine).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod common;
}
use support::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{poll, Cluster};
use drbd_agent::diskstats::{derive, parse_stat, DiskStat};
use serde_json::Value;

const SCENARIO: &str = include_str!("data/sim/throttle-model-plant.toml");
const TARGET_MS: f64 = 5.0;
/// 400 MiB/s × (1 − 1 ms / 5 ms) − 160 MiB/s, KiB/s.
const ORACLE_KIB_S: f64 = 160.0 * 1024.0;
const PEER: &str = "r0/0/0";
const BOUND: Duration = Duration::from_secs(60);
const EVERY: Duration = Duration::from_millis(100);
/// Windows skipped after the agent takes charge (generous: the law needs
/// about five on an unloaded machine; its fit firms up over more).
const SETTLE_WINDOWS: usize = 15;
/// Windows measured after settling.
const WINDOWS: usize = 12;

fn agent_config(state: &Path) -> String {
    format!(
        "[state]\n\
         directory = \"{}\"\n\
         [throttle]\n\
         enabled = true\n\
         mode = \"enforce\"\n\
         interval = \"1s\"\n\
         latency-target = \"{TARGET_MS}ms\"\n\
         min-rate = \"1MiB/s\"\n\
         max-rate = \"1GiB/s\"\n",
        state.display()
    )
}

fn alpha_stat(cluster: &Cluster) -> DiskStat {
    let path = cluster.sim_dir.join("alpha/sys/block/drbd1000/stat");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_stat(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn throttle(cluster: &mut Cluster) -> Option<Value> {
    cluster.agent.assert_running();
    cluster.sim.assert_running();
    cluster.status().map(|s| s["throttle"].clone())
}

fn out_of_sync(cluster: &Cluster) -> Option<u64> {
    let status = cluster.status()?;
    status["resources"]["r0"]["connections"]
        .as_object()?
        .values()
        .find_map(|c| c["peer_devices"]["0"]["stats"]["out_of_sync"].as_u64())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

// Was `#[ignore]`d (6 of 10 runs) until three fixes (issue 14): the
// simulator writes a small cluster's stat files every tick, as the kernel's
// are live (once a second, a 1 s reader saw 0 or 2 updates per interval);
// a window whose latency is off the curve at its own load is held, not
// fitted; a foreground step must exceed 3 σ of the foreground's own
// interval noise, and an idle-looking interval after a busy one is held.
// Since then 37 of 38 runs passed (the failure at 0.79 × beside a CPU-bound
// bench); the median rate set 0.83–0.90 × the oracle.
#[test]
fn model_runs_the_resync_near_the_oracle_rate() {
    let state = tempfile::tempdir().expect("state dir");
    let mut cluster = Cluster::start_node(SCENARIO, "bravo", "1s", &agent_config(state.path()));
    poll(BOUND, EVERY, "the agent to take charge of r0/0/0", || {
        throttle(&mut cluster)?["peers"][PEER]["rate_set_kib"].as_u64()
    });
    for window in 0..SETTLE_WINDOWS {
        std::thread::sleep(Duration::from_secs(1));
        let t = throttle(&mut cluster).expect("status");
        eprintln!(
            "settling {window}: rate {} decision {} model {}",
            t["peers"][PEER]["rate_set_kib"],
            t["peers"][PEER]["decision"],
            t["peers"][PEER]["model"]
        );
    }

    let mut rates = Vec::new();
    let mut latencies = Vec::new();
    let mut in_use = 0;
    let mut before = (alpha_stat(&cluster), Instant::now());
    let oos_start = out_of_sync(&cluster).expect("out-of-sync known");
    let started = Instant::now();
    for window in 0..WINDOWS {
        std::thread::sleep(Duration::from_secs(1));
        let now = (alpha_stat(&cluster), Instant::now());
        let alpha = derive(&before.0, &now.0, now.1 - before.1).expect("alpha's counters");
        before = now;
        let t = throttle(&mut cluster).expect("status");
        let peer = &t["peers"][PEER];
        eprintln!(
            "window {window}: alpha latency {:?} ms, rate {} decision {} model {}",
            alpha.write_latency_ms, peer["rate_set_kib"], peer["decision"], peer["model"]
        );
        let Some(rate) = peer["rate_set_kib"].as_u64() else {
            panic!("the resync ended (or the agent let go) in window {window}: {t}");
        };
        rates.push(rate as f64);
        latencies.extend(alpha.write_latency_ms);
        if peer["model"]["in_use"] == Value::Bool(true) {
            in_use += 1;
        }
    }
    let moved = oos_start.saturating_sub(out_of_sync(&cluster).expect("out-of-sync known"));
    let progress_kib_s = moved as f64 / started.elapsed().as_secs_f64();

    let set = median(&mut rates.clone());
    assert!(
        set >= 0.8 * ORACLE_KIB_S,
        "median rate set {set:.0} KiB/s under 0.8 × the oracle's {ORACLE_KIB_S}: {rates:?}"
    );
    // A stalled simulator (a loaded machine) can make one sample look
    // idle: at most two windows over 1.2 × the oracle's rate.
    let high = rates.iter().filter(|&&r| r > 1.2 * ORACLE_KIB_S).count();
    assert!(high <= 2, "{high} rates over 1.2 × the oracle's: {rates:?}");
    assert!(
        progress_kib_s >= 0.5 * ORACLE_KIB_S,
        "the resync moved only {progress_kib_s:.0} KiB/s (rates {rates:?})"
    );
    assert!(
        in_use >= WINDOWS / 2,
        "the model steered in only {in_use} of {WINDOWS} windows"
    );
    assert!(
        latencies.len() >= WINDOWS - 3,
        "alpha's writes measured in only {} of {WINDOWS} windows",
        latencies.len()
    );
    let median_ms = median(&mut latencies.clone());
    assert!(
        median_ms <= 1.3 * TARGET_MS,
        "alpha's median latency {median_ms:.2} ms over the {TARGET_MS} ms target: {latencies:?}"
    );
}
