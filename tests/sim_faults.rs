//! Faults injected by a scenario reach the front-end as exit codes and
//! messages drbdsetup would give.

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

use sim_common::{data, Sim, LIMIT};

fn faults() -> Sim {
    Sim::start(data("faults.toml").to_str().unwrap())
}

#[test]
fn overrun_exits_20_and_module_unloaded_121() {
    let sim = faults();
    let alpha = sim.stream("alpha", &["events2", "all"]);
    let bravo = sim.stream("bravo", &["events2", "all"]);
    alpha.read_until(|l| l == "exists -");
    bravo.read_until(|l| l == "exists -");
    let (code, stderr) = alpha.finish();
    assert_eq!(code, 20, "{stderr}");
    assert!(stderr.contains("socket receive buffer overrun"), "{stderr}");
    let (code, stderr) = bravo.finish();
    assert_eq!(code, 121, "{stderr}");
    assert!(stderr.contains("module unloaded"), "{stderr}");
}

#[test]
fn command_failures_then_missing_module() {
    let sim = faults();
    let pdo = |sim: &Sim| {
        sim.run(
            "drbdsetup",
            "alpha",
            &["peer-device-options", "r0", "1", "0", "--c-max-rate=1M"],
            "",
        )
    };
    // Before 3 s commands work; from 3 s the next two fail.
    let start = Instant::now();
    let mut failures = 0;
    while failures < 2 {
        assert!(start.elapsed() < LIMIT, "no injected failure");
        let out = pdo(&sim);
        if out.code == 10 {
            assert!(out.stderr.contains("injected"), "{out:?}");
            failures += 1;
        } else {
            assert_eq!(out.code, 0, "{out:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(pdo(&sim).code, 0);
    // From 5 s to 8 s the module is missing.
    loop {
        assert!(start.elapsed() < LIMIT, "module never went missing");
        let out = sim.run("drbdsetup", "alpha", &["events2", "--now", "all"], "");
        if out.code == 20 {
            assert_eq!(
                out.stderr,
                "Could not connect to 'drbd' generic netlink family\n"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // bravo is not affected.
    assert_eq!(
        sim.run("drbdsetup", "bravo", &["events2", "--now", "all"], "")
            .code,
        0
    );
    loop {
        assert!(start.elapsed() < LIMIT, "module never came back");
        if pdo(&sim).code == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn garbage_line_then_a_hang_then_events_again() {
    let sim = Sim::start(data("garbage-hang.toml").to_str().unwrap());
    let stream = sim.stream("alpha", &["events2", "all"]);
    stream.read_until(|l| l == "exists -");
    let lines = stream.read_until(|l| drbd_agent::events2::parse_line(l).is_err());
    assert_eq!(lines.len(), 1, "{lines:#?}");
    // After the silence the events that queued up arrive, in order.
    let after = stream.read_until(|l| l.contains("connection:NetworkFailure"));
    for line in &after {
        drbd_agent::events2::parse_line(line).unwrap();
    }
}
