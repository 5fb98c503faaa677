//! The `drbd-agent` binary: --version, check-config, status errors, demo
//! without a simulator, and `run` end to end against a fake drbdsetup
//! (SIGTERM stops it and leaves no child behind).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BOUND: Duration = Duration::from_secs(30);

fn agent() -> &'static str {
    env!("CARGO_BIN_EXE_drbd-agent")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the agent to completion, bounded in time.
async fn run_agent(args: &[&str]) -> Output {
    let child = tokio::process::Command::new(agent())
        .args(args)
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(BOUND, child)
        .await
        .expect("drbd-agent did not finish")
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn version() {
    let output = run_agent(&["--version"]).await;
    assert!(output.status.success());
    assert_eq!(
        stdout(&output).trim(),
        format!("drbd-agent {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn check_config_good_and_bad() {
    let good = repo().join("tests/data/config/agent.toml");
    let output = run_agent(&["check-config", "--config", good.to_str().unwrap()]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("configuration OK"));
    assert!(stdout(&output).contains("node-name: alpha"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("agent.toml");
    fs::write(&bad, "[drbd]\nstatistics-poll-interval = \"soon\"\n").unwrap();
    let output = run_agent(&["check-config", "--config", bad.to_str().unwrap()]).await;
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "{}:2:28: key `drbd.statistics-poll-interval`: ",
            bad.display()
        )),
        "{message}"
    );

    let missing = dir.path().join("nope.toml");
    let output = run_agent(&["check-config", "--config", missing.to_str().unwrap()]).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("nope.toml"), "{}", stderr(&output));
}

#[tokio::test]
async fn status_without_agent_is_a_clear_error() {
    // Port 1 on loopback: nothing listens there.
    let output = run_agent(&["status", "--url", "http://127.0.0.1:1"]).await;
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("cannot reach the agent at http://127.0.0.1:1/v1/status"),
        "{message}"
    );
}

#[tokio::test]
async fn demo_without_simulator_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("drbd-agent");
    // A hard link where possible: a freshly written copy can fail to start
    // with ETXTBSY while another test thread forks.
    if fs::hard_link(agent(), &copy).is_err() {
        fs::copy(agent(), &copy).unwrap();
    }
    let output = tokio::time::timeout(BOUND, async {
        loop {
            match tokio::process::Command::new(&copy)
                .arg("demo")
                .kill_on_drop(true)
                .output()
                .await
            {
                Err(e) if e.raw_os_error() == Some(26) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                other => return other,
            }
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("simulator is not installed"), "{message}");
    assert!(message.contains("drbd-sim"), "{message}");
    assert!(message.contains("drbd-agent-sim"), "{message}");
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn run_serves_status_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("drbdsetup");
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\nFAKE_DIR='{}' exec '{}' \"$@\"\n",
            dir.path().display(),
            repo().join("tests/fake/drbdsetup-events2.sh").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    fs::copy(
        repo().join("tests/data/events2/resync-3node.statistics.txt"),
        dir.path().join("run.txt"),
    )
    .unwrap();
    let port = free_port();
    let config = dir.path().join("agent.toml");
    fs::write(
        &config,
        format!(
            "node-name = \"alpha\"\nlog-level = \"debug\"\n[drbd]\ndrbdsetup = \"{}\"\n[api]\nlisten = [\"127.0.0.1:{port}\"]\n",
            fake.display()
        ),
    )
    .unwrap();
    let mut daemon = tokio::process::Command::new(agent())
        .args(["run", "--config", config.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");

    let table = tokio::time::timeout(BOUND, async {
        loop {
            let output = run_agent(&["status", "--url", &url]).await;
            let text = stdout(&output);
            if output.status.success() && text.contains("events: 34") {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the agent never showed the fixture state");
    assert!(table.starts_with("node alpha"), "{table}");
    assert!(table.contains("drbd reachable: yes"), "{table}");
    assert!(
        table.contains("\nthrottle: disabled  reverts: 0  failures: 0"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.contains("bravo"))
        .expect("a row for peer bravo");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "r0",
            "Primary",
            "0",
            "UpToDate",
            "bravo",
            "Connected",
            "Secondary",
            "Established",
            "UpToDate",
            "-"
        ]
    );

    let output = run_agent(&["status", "--url", &url, "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["agent"]["node_name"], "alpha");
    let child_pid: u32 = fs::read_to_string(dir.path().join("pids"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_exists(child_pid));

    let pid = daemon.id().unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(BOUND, daemon.wait())
        .await
        .expect("the agent did not stop on SIGTERM")
        .unwrap();
    let mut log = String::new();
    if let Some(mut err) = daemon.stderr.take() {
        use tokio::io::AsyncReadExt;
        err.read_to_string(&mut log).await.unwrap();
    }
    assert!(status.success(), "exit {status}; log:\n{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(!process_exists(child_pid), "events2 child left behind");
}
