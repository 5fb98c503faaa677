//! `drbd-agent status --watch`: a table again and again until SIGINT,
//! which ends it with exit 0.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod demo_common;
}
use support::demo_common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use demo_common::{poll, signal, wait_bounded, Demo};

#[test]
fn watch_prints_tables_until_sigint() {
    let demo = Demo::start(&[]);
    poll(
        Duration::from_secs(60),
        Duration::from_millis(200),
        "the demo's API",
        || demo.status(),
    );
    let mut watch = Command::new(env!("CARGO_BIN_EXE_drbd-agent"))
        .args([
            "status",
            "--watch",
            "--interval",
            "500ms",
            "--url",
            &demo.url(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start status --watch");
    let stdout = watch.stdout.take().expect("stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    // Two tables: two header lines of the resource table, each under a
    // separator line with the time.
    let mut separators = 0;
    let mut headers = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while headers < 2 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = receiver
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{headers} tables within 30 s"));
        if line.starts_with("--- ") {
            separators += 1;
        }
        if line.starts_with("RESOURCE ") && line.contains("REPLICATION") {
            headers += 1;
        }
    }
    assert!(separators >= 2);
    assert!(signal(watch.id(), "-INT"));
    let status =
        wait_bounded(&mut watch, Duration::from_secs(10)).expect("watch stopped on SIGINT");
    assert!(status.success(), "{status}");
}

#[test]
fn watch_needs_an_interval_with_a_unit() {
    let output = Command::new(env!("CARGO_BIN_EXE_drbd-agent"))
        .args(["status", "--watch", "--interval", "5"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let output = Command::new(env!("CARGO_BIN_EXE_drbd-agent"))
        .args(["status", "--interval", "5s"])
        .output()
        .expect("run");
    assert!(!output.status.success(), "--interval needs --watch");
}
