//! The README's first command, as a new user runs it: `drbd-agent demo`
//! starts the simulator and the agent; the status API shows the simulated
//! cluster and follows it as it changes; Ctrl-C cleans everything up.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
}

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

const BOUND: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

async fn status_json(url: &str) -> Option<serde_json::Value> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_drbd-agent"))
        .args(["status", "--json", "--url", url])
        .output()
        .await
        .ok()?;
    if !output.status.success() {
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

#[tokio::test]
async fn demo_shows_a_changing_cluster_and_cleans_up() {
    // demo runs the drbd-sim beside drbd-agent.
    let _ = support::bins::sim();
    let port = free_port();
    let mut demo = tokio::process::Command::new(env!("CARGO_BIN_EXE_drbd-agent"))
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start demo");
    let mut stdout = tokio::io::BufReader::new(demo.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(BOUND, stdout.next_line())
        .await
        .expect("demo printed something")
        .expect("read")
        .expect("a line");
    // "demo: simulator scenario "demo" in DIR, agent as node alpha"
    let dir = first
        .split(" in ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .expect("the demo names its directory")
        .to_owned();
    assert!(Path::new(&dir).join("sim.sock").exists(), "{first}");

    let url = format!("http://127.0.0.1:{port}");
    // The initial dump arrives, then the cluster changes: the replication
    // state of some peer device differs between two looks.
    let (first_look, changed) = tokio::time::timeout(BOUND, async {
        let mut first_look: Option<serde_json::Value> = None;
        loop {
            if let Some(json) = status_json(&url).await {
                if json["agent"]["initial_dump_done"] == true {
                    let states = replication_states(&json);
                    match &first_look {
                        None => first_look = Some(json),
                        Some(before) if replication_states(before) != states => {
                            return (before.clone(), json);
                        }
                        Some(_) => {}
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the demo cluster changed within a minute");
    assert_eq!(first_look["agent"]["node_name"], "alpha");
    assert_eq!(first_look["agent"]["drbd_reachable"], true);
    assert_eq!(first_look["agent"]["parse_errors"], 0);
    // Starting after the simulator, the agent never had to restart events2.
    assert_eq!(first_look["agent"]["child_restarts"], 0);
    for resource in ["db", "web"] {
        assert!(
            changed["resources"][resource].is_object(),
            "{resource} missing"
        );
    }

    // Ctrl-C: exit 0, the simulator and its directory are gone.
    let pid = demo.id().expect("pid");
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), demo.wait())
        .await
        .expect("demo stopped")
        .expect("wait");
    assert!(status.success(), "{status}");
    assert!(!Path::new(&dir).exists(), "{dir} left behind");
}

/// (resource, peer, volume, replication) of every peer device.
fn replication_states(json: &serde_json::Value) -> Vec<String> {
    let mut states = Vec::new();
    if let Some(resources) = json["resources"].as_object() {
        for (name, resource) in resources {
            if let Some(connections) = resource["connections"].as_object() {
                for (peer, connection) in connections {
                    if let Some(peer_devices) = connection["peer_devices"].as_object() {
                        for (volume, pd) in peer_devices {
                            states.push(format!("{name}/{peer}/{volume}={}", pd["replication"]));
                        }
                    }
                }
            }
        }
    }
    states
}
