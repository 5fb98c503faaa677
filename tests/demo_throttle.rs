//! The demo's throttled resync, from the demo's own metrics: `drbd-agent
//! demo` (alpha, db's Primary, writes 100 MiB/s and resyncs 1 GiB from
//! bravo as a Primary SyncTarget, the throttle in `enforce` mode at 5 ms).
//! After settling, the median of the 1 s windows of the latency the agent
//! compares with its target (`drbd_agent_throttle_latency_seconds`: alpha's
//! DRBD device, the application's writes) is within 1.3 × the target, and
//! the resync moves far faster than DRBD's defaults move it on the same
//! plant (`drbd-sim plant --scenario demo`, virtual time: c-min-rate 250k
//! backs the resync off to ~250 KiB/s while the application writes).
//! Loose bounds: a loaded 2-core CI machine.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod demo_common;
}
use support::demo_common;

use std::time::{Duration, Instant};

use demo_common::{metric, poll, Demo};

const LABELS: &[&str] = &["name=\"db\"", "peer_node_id=\"1\"", "volume=\"0\""];
/// Windows skipped after the agent takes charge.
const SETTLE_WINDOWS: usize = 8;
/// Windows measured at most (the resync may end before).
const WINDOWS: usize = 20;
/// Windows that must be measured.
const MIN_WINDOWS: usize = 8;

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// db's out-of-sync KiB at alpha, from the agent's model.
fn out_of_sync(demo: &Demo) -> Option<u64> {
    demo.status()?["resources"]["db"]["connections"]["bravo"]["peer_devices"]["0"]["stats"]
        ["out_of_sync"]
        .as_u64()
}

/// The resync's mean rate (KiB/s) with DRBD's defaults over t = 8..30 s of
/// the same scenario, in virtual time.
fn defaults_rate_kib_s() -> f64 {
    let output = std::process::Command::new(support::bins::sim())
        .args(["plant", "--scenario", "demo", "--duration", "30s", "--json"])
        .output()
        .expect("drbd-sim plant");
    assert!(output.status.success(), "{output:?}");
    let rates: Vec<f64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["t_s"].as_f64().is_some_and(|t| t >= 8.0))
        .filter_map(|v| v["resync_kib_s"].as_f64())
        .collect();
    assert!(rates.len() >= 20, "{rates:?}");
    rates.iter().sum::<f64>() / rates.len() as f64
}

#[test]
fn the_demo_holds_the_latency_near_its_target_and_beats_drbds_defaults() {
    let defaults = defaults_rate_kib_s();
    // DRBD's c-min-rate throttle: the resync crawls near 250 KiB/s.
    assert!(
        defaults < 1024.0,
        "DRBD's defaults gave {defaults:.0} KiB/s"
    );

    let mut demo = Demo::start(&[]);
    let metrics = |demo: &Demo| demo.get("/metrics");
    poll(
        Duration::from_secs(60),
        Duration::from_millis(200),
        "the throttle to take charge of db",
        || {
            metric(
                &metrics(&demo)?,
                "drbd_agent_throttle_resync_rate_bytes_per_second",
                LABELS,
            )
        },
    );
    let mut latencies = Vec::new();
    let mut setpoints = Vec::new();
    let mut target = None;
    let mut start: Option<(u64, Instant)> = None;
    let mut end = None;
    for window in 0..SETTLE_WINDOWS + WINDOWS {
        std::thread::sleep(Duration::from_secs(1));
        demo.assert_running();
        let Some(text) = metrics(&demo) else { continue };
        let Some(rate) = metric(
            &text,
            "drbd_agent_throttle_resync_rate_bytes_per_second",
            LABELS,
        ) else {
            // The resync ended (or the agent let go).
            eprintln!("window {window}: no setpoint, the resync is over");
            break;
        };
        let latency = metric(&text, "drbd_agent_throttle_latency_seconds", LABELS);
        target = metric(&text, "drbd_agent_throttle_latency_target_seconds", LABELS).or(target);
        eprintln!("window {window}: latency {latency:?} s, setpoint {rate} B/s");
        if window < SETTLE_WINDOWS {
            continue;
        }
        if let Some(oos) = out_of_sync(&demo) {
            start.get_or_insert((oos, Instant::now()));
            end = Some((oos, Instant::now()));
        }
        latencies.extend(latency);
        setpoints.push(rate);
    }
    assert!(
        latencies.len() >= MIN_WINDOWS,
        "only {} windows measured: {latencies:?}",
        latencies.len()
    );
    let target = target.expect("the latency target is exported");
    assert!((target - 0.005).abs() < 1e-6, "target {target}");
    let median_latency = median(&latencies);
    assert!(
        median_latency <= 1.3 * target,
        "median latency {:.2} ms over 1.3 × the {:.1} ms target: {latencies:?}",
        median_latency * 1e3,
        target * 1e3
    );
    let ((oos_start, t0), (oos_end, t1)) = (start.expect("measured"), end.expect("measured"));
    let moved = oos_start.saturating_sub(oos_end) as f64;
    let rate = moved / (t1 - t0).as_secs_f64().max(1.0);
    eprintln!("resync {rate:.0} KiB/s throttled, {defaults:.0} KiB/s with DRBD's defaults");
    assert!(
        rate > 8.0 * defaults,
        "the throttled resync moved {rate:.0} KiB/s, DRBD's defaults {defaults:.0} KiB/s (setpoints {setpoints:?})"
    );
    assert!(demo.stop().success());
}

#[test]
fn no_throttle_leaves_the_resync_to_drbd() {
    let mut demo = Demo::start(&["--no-throttle"]);
    let status = poll(
        Duration::from_secs(60),
        Duration::from_millis(200),
        "db's resync",
        || {
            let status = demo.status()?;
            (status["resources"]["db"]["connections"]["bravo"]["peer_devices"]["0"]["replication"]
                == "SyncTarget")
                .then_some(status)
        },
    );
    assert_eq!(status["throttle"]["enabled"], false);
    std::thread::sleep(Duration::from_secs(2));
    let metrics = demo.get("/metrics").expect("metrics");
    assert!(
        metric(
            &metrics,
            "drbd_agent_throttle_resync_rate_bytes_per_second",
            LABELS
        )
        .is_none(),
        "no setpoint without the throttle"
    );
    assert!(demo.stop().success());
}
