//! `drbd-agent run` and SIGHUP, end to end against the fake events2
//! drbdsetup: a bad file counts a failed reload and the daemon keeps
//! serving with the old configuration; a good one counts a success, its
//! `[throttle]` applies live and keys needing a restart are logged.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod common;
}
use support::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{free_port, http_get, poll, sample_value, Proc, AGENT};

const BOUND: Duration = Duration::from_secs(30);
const EVERY: Duration = Duration::from_millis(50);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn base_config(dir: &Path, port: u16) -> String {
    format!(
        "node-name = \"alpha\"\n[drbd]\ndrbdsetup = \"{}\"\n[api]\nlisten = [\"127.0.0.1:{port}\"]\n[state]\ndirectory = \"{}\"\n",
        dir.join("drbdsetup").display(),
        dir.join("state").display()
    )
}

fn signal(proc: &Proc, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(proc.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn reloads(addr: std::net::SocketAddr, result: &str) -> Option<f64> {
    let (code, body) = http_get(addr, "/metrics").ok()?;
    (code == 200).then_some(())?;
    sample_value(
        &body,
        &format!("drbd_agent_config_reloads_total{{result=\"{result}\"}}"),
    )
}

fn throttle_status(addr: std::net::SocketAddr) -> Option<serde_json::Value> {
    let (code, body) = http_get(addr, "/v1/status").ok()?;
    (code == 200).then_some(())?;
    let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(doc["throttle"].clone())
}

#[test]
fn sighup_reloads_bad_then_good() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let fake = path.join("drbdsetup");
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\nFAKE_DIR='{}' exec '{}' \"$@\"\n",
            path.display(),
            repo().join("tests/fake/drbdsetup-events2.sh").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    fs::copy(
        repo().join("tests/data/events2/resync-3node.statistics.txt"),
        path.join("run.txt"),
    )
    .unwrap();
    fs::write(path.join("now.txt"), "exists -\n").unwrap();
    let port = free_port();
    let config = path.join("agent.toml");
    let base = base_config(path, port);
    fs::write(&config, &base).unwrap();
    let mut command = Command::new(AGENT);
    command
        .args(["run", "--config", config.to_str().unwrap()])
        .env_remove("RUST_LOG");
    let mut agent = Proc::spawn("drbd-agent", command, path.join("agent.log"));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    poll(BOUND, EVERY, "the agent's /metrics", || {
        agent.assert_running();
        reloads(addr, "success")
    });
    assert_eq!(reloads(addr, "failure"), Some(0.0));
    assert_eq!(throttle_status(addr).unwrap()["enabled"], false);

    // A bad file: counted as failed, the old configuration stays, still serving.
    let bad = format!("{base}[throttle]\nenabled = true\nlatency-target = \"soon\"\n");
    let bad_line = bad.lines().count();
    fs::write(&config, bad).unwrap();
    signal(&agent, "HUP");
    poll(BOUND, EVERY, "a failed reload counted", || {
        agent.assert_running();
        (reloads(addr, "failure") == Some(1.0)).then_some(())
    });
    assert_eq!(reloads(addr, "success"), Some(0.0));
    agent.assert_running();
    assert_eq!(throttle_status(addr).unwrap()["enabled"], false);
    let log = fs::read_to_string(path.join("agent.log")).unwrap();
    let at = format!("{}:{bad_line}:", config.display());
    assert!(
        log.contains(&at) && log.contains("latency-target"),
        "no {at} in:\n{log}"
    );

    // A good file: counted, [throttle] applied live, the rest needs a restart.
    let good = base.replace("[api]", "reconcile-interval = \"1h\"\n[api]")
        + "[throttle]\nenabled = true\nmode = \"observe\"\nlatency-target = \"7ms\"\n";
    fs::write(&config, good).unwrap();
    signal(&agent, "HUP");
    poll(BOUND, EVERY, "a successful reload counted", || {
        agent.assert_running();
        (reloads(addr, "success") == Some(1.0)).then_some(())
    });
    let throttle = poll(BOUND, EVERY, "the new [throttle] in force", || {
        throttle_status(addr).filter(|t| t["enabled"] == true)
    });
    assert_eq!(throttle["mode"], "observe", "{throttle}");
    assert_eq!(reloads(addr, "failure"), Some(1.0));
    let log = fs::read_to_string(path.join("agent.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("needs a restart") && l.contains("drbd.reconcile-interval")),
        "{log}"
    );

    signal(&agent, "TERM");
    let status = poll(BOUND, EVERY, "the agent to stop", || {
        agent.child.try_wait().unwrap()
    });
    assert!(status.success(), "{status}");
}
