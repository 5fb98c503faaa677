//! The sd_notify protocol of `drbd-agent run`, against a fake
//! `NOTIFY_SOCKET`: READY only after the events2 initial dump, the reload
//! sequence, STOPPING then exit 0 on SIGTERM, and watchdog pings that come
//! from the main loop (none once it stalls, via the documented test hook).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod common;
    pub mod notify_common;
}
use support::{common, notify_common};

use std::path::Path;
use std::time::Duration;

use common::{http_get, poll, sample_value};
use notify_common::{
    config_text, lines, log, port, signal, start_agent, start_sim, NotifySocket, BOUND,
};

fn resources(addr: std::net::SocketAddr) -> usize {
    let (code, body) = http_get(addr, "/v1/status").expect("GET /v1/status");
    assert_eq!(code, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("status JSON");
    doc["resources"]
        .as_array()
        .map(Vec::len)
        .or_else(|| doc["resources"].as_object().map(|m| m.len()))
        .unwrap_or(0)
}

#[test]
fn ready_after_the_initial_dump_then_reload_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut notify = NotifySocket::bind(root);
    // The shim delays events2 by 2 s: a READY sent at start would come
    // before the model has any resource.
    let (_sim, bin) = start_sim(root, "2");
    let config = config_text(root, &bin.join("drbdsetup"), &bin.join("drbdadm"), port());
    let (mut agent, addr) = start_agent(root, &config, &notify.path, &[]);

    let ready = notify.wait_for(
        "READY=1",
        || agent.assert_running(),
        |d| lines(d).contains(&"READY=1"),
    );
    // READY is sent only once the dump is in the shared model, which the
    // status API reads directly.
    assert!(
        resources(addr) > 0,
        "READY before the initial dump ({ready:?})"
    );
    let before: Vec<&String> = notify.received.iter().collect();
    assert!(
        before.iter().any(|d| d.contains("STATUS=drbd: waiting")),
        "no waiting status before READY: {before:?}"
    );
    let up = |d: &str| d.contains("STATUS=drbd: up;");
    let status = match notify.received.iter().find(|d| up(d)).cloned() {
        Some(status) => status,
        None => notify.wait_for("a status with DRBD up", || agent.assert_running(), up),
    };
    assert!(status.contains("linstor: not configured"), "{status}");
    assert!(
        !notify.received.iter().any(|d| d.contains("WATCHDOG=1")),
        "no watchdog asked for"
    );

    // A good reload: RELOADING=1 with MONOTONIC_USEC in one datagram, then READY=1.
    signal(&agent, "HUP");
    let reloading = notify.wait_for(
        "RELOADING=1",
        || agent.assert_running(),
        |d| lines(d).contains(&"RELOADING=1"),
    );
    let usec: u64 = lines(&reloading)
        .iter()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"))
        .parse()
        .expect("MONOTONIC_USEC is a number");
    assert!(usec > 0);
    notify.wait_for(
        "READY=1 after the reload",
        || agent.assert_running(),
        |d| lines(d).contains(&"READY=1"),
    );

    // A bad reload: still READY=1 after it, the status says it failed.
    std::fs::write(
        root.join("agent.toml"),
        format!("{config}[throttle]\nmode = 3\n"),
    )
    .unwrap();
    signal(&agent, "HUP");
    notify.wait_for(
        "RELOADING=1",
        || agent.assert_running(),
        |d| lines(d).contains(&"RELOADING=1"),
    );
    let after = notify.wait_for(
        "READY=1 after the failed reload",
        || agent.assert_running(),
        |d| lines(d).contains(&"READY=1"),
    );
    assert!(
        after.contains("STATUS=") && after.contains("config reload failed"),
        "{after:?}"
    );
    let failures = poll(
        BOUND,
        Duration::from_millis(50),
        "the failed reload counted",
        || {
            let (_, body) = http_get(addr, "/metrics").ok()?;
            sample_value(&body, "drbd_agent_config_reloads_total{result=\"failure\"}")
                .filter(|v| *v >= 1.0)
        },
    );
    assert_eq!(failures, 1.0);

    // SIGTERM: STOPPING=1, then exit 0.
    signal(&agent, "TERM");
    notify.wait_for("STOPPING=1", || {}, |d| lines(d).contains(&"STOPPING=1"));
    let status = poll(
        BOUND,
        Duration::from_millis(50),
        "the agent to exit",
        || agent.child.try_wait().expect("wait"),
    );
    assert!(status.success(), "{status}; log:\n{}", log(root));
    assert!(
        !notify
            .drain_for(Duration::from_millis(200))
            .iter()
            .any(|d| d.contains("READY=1")),
        "READY after STOPPING"
    );
}

#[test]
fn watchdog_pings_come_from_the_main_loop() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut notify = NotifySocket::bind(root);
    // No DRBD at all: the agent serves anyway (READY), and pings.
    let missing = Path::new("/nonexistent/drbdsetup");
    let config = config_text(root, missing, Path::new("/nonexistent/drbdadm"), port());
    // WATCHDOG_USEC = 0.4 s: a ping every 0.2 s; the loop stalls after 2 s.
    let (mut agent, _addr) = start_agent(
        root,
        &config,
        &notify.path,
        &[
            ("WATCHDOG_USEC", "400000"),
            ("DRBD_AGENT_TEST_STALL_MAIN_LOOP_AFTER", "2s"),
        ],
    );
    notify.wait_for(
        "READY=1",
        || agent.assert_running(),
        |d| lines(d).contains(&"READY=1"),
    );
    poll(
        BOUND,
        Duration::from_millis(20),
        "the main loop to stall",
        || {
            agent.assert_running();
            notify.recv();
            log(root).contains("the main loop stalls now").then_some(())
        },
    );
    // Every ping sent before the stall is queued by now.
    notify.drain_for(Duration::from_millis(300));
    let pings = notify
        .received
        .iter()
        .filter(|d| lines(d).contains(&"WATCHDOG=1"))
        .count();
    // ~2 s at one ping per 0.2 s: never more often than every half interval.
    assert!(
        (2..=11).contains(&pings),
        "{pings} pings: {:?}",
        notify.received
    );
    // Stalled: the process lives on, but no more pings.
    let later = notify.drain_for(Duration::from_millis(1500));
    assert!(
        !later.iter().any(|d| d.contains("WATCHDOG=1")),
        "pings while the main loop is stalled: {later:?}"
    );
    agent.assert_running();
}

#[test]
fn watchdog_for_another_pid_is_not_pinged() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut notify = NotifySocket::bind(root);
    let config = config_text(
        root,
        Path::new("/nonexistent/drbdsetup"),
        Path::new("/nonexistent/drbdadm"),
        port(),
    );
    // PID 1 is never the agent.
    let (mut agent, _addr) = start_agent(
        root,
        &config,
        &notify.path,
        &[("WATCHDOG_USEC", "400000"), ("WATCHDOG_PID", "1")],
    );
    notify.wait_for(
        "READY=1",
        || agent.assert_running(),
        |d| lines(d).contains(&"READY=1"),
    );
    notify.drain_for(Duration::from_millis(1000));
    assert!(
        !notify.received.iter().any(|d| d.contains("WATCHDOG=1")),
        "{:?}",
        notify.received
    );
}

/// Starts an agent whose stderr is `root/NAME.log`, with `JOURNAL_STREAM`
/// naming that file (`matching`) or another inode; returns the first log line.
fn first_log_line(root: &Path, name: &str, matching: bool) -> String {
    use std::os::unix::fs::MetadataExt;
    let log_path = root.join(format!("{name}.log"));
    let file = std::fs::File::create(&log_path).unwrap();
    let meta = file.metadata().unwrap();
    let ino = if matching { meta.ino() } else { meta.ino() + 1 };
    let config = config_text(
        root,
        Path::new("/nonexistent/drbdsetup"),
        Path::new("/nonexistent/drbdadm"),
        port(),
    );
    let config_path = root.join(format!("{name}.toml"));
    std::fs::write(&config_path, config).unwrap();
    let mut command = std::process::Command::new(common::AGENT);
    command
        .arg("run")
        .arg("--config")
        .arg(&config_path)
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .env("JOURNAL_STREAM", format!("{}:{ino}", meta.dev()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(file);
    let mut child = command.spawn().unwrap();
    let line = poll(BOUND, Duration::from_millis(20), "a log line", || {
        let text = std::fs::read_to_string(&log_path).ok()?;
        text.lines()
            .find(|l| l.contains("drbd-agent"))
            .map(str::to_owned)
    });
    let _ = child.kill();
    let _ = child.wait();
    line
}

#[test]
fn journald_lines_carry_no_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let journal = first_log_line(dir.path(), "journal", true);
    assert!(journal.trim_start().starts_with("INFO"), "{journal:?}");
    let file = first_log_line(dir.path(), "file", false);
    let year = file.get(..4).and_then(|y| y.parse::<u32>().ok());
    assert!(year.is_some_and(|y| y >= 2000), "no timestamp in {file:?}");
}
