//! Two agents on one simulated cluster, each with its own node view and API
//! port on loopback: alpha (Primary, SyncSource) publishes its pressure on
//! `GET /v1/pressure`; bravo (SyncTarget) fetches it and lets it steer its
//! throttle — until alpha's agent goes away (local signals, and the status
//! says why) or presents the wrong token.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod common;
}
use support::common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{
    http_get, http_get_with, poll, promtool_findings, run_bounded, sample_value, Cluster, AGENT,
    LEGACY_FINDINGS,
};
use serde_json::Value;

const SCENARIO: &str = include_str!("data/sim/throttle-plant.toml");
const TOKEN: &str = "s3cret-token-0123456789";
const PEER: &str = "r0/0/0";
const BOUND: Duration = Duration::from_secs(60);
const EVERY: Duration = Duration::from_millis(100);

fn token_file(dir: &Path, name: &str, token: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{token}\n")).expect("write token");
    path.display().to_string()
}

fn alpha_config(dir: &Path) -> String {
    format!(
        "[state]\ndirectory = \"{}\"\n\
         [throttle]\nlatency-target = \"5ms\"\n\
         [pressure]\nenabled = true\ninterval = \"500ms\"\ntoken-file = \"{}\"\n\
         allow-plain-http-token = true\n",
        dir.join("alpha-state").display(),
        token_file(dir, "alpha.token", TOKEN),
    )
}

fn bravo_config(dir: &Path, alpha: SocketAddr, token: &str) -> String {
    std::fs::create_dir_all(dir.join("bravo-state")).expect("state dir");
    format!(
        "[state]\ndirectory = \"{}\"\n\
         [throttle]\nenabled = true\nmode = \"enforce\"\ninterval = \"500ms\"\n\
         latency-target = \"5ms\"\nmin-rate = \"1MiB/s\"\nmax-rate = \"100MiB/s\"\n\
         [pressure]\nenabled = true\ninterval = \"500ms\"\nstale-after = \"2s\"\n\
         token-file = \"{}\"\nallow-plain-http-token = true\n[pressure.peers]\nalpha = \"{alpha}\"\n",
        dir.join("bravo-state").display(),
        token_file(dir, "bravo.token", token),
    )
}

fn signal(addr: SocketAddr) -> Option<Value> {
    let (code, body) = http_get(addr, "/v1/status").ok()?;
    (code == 200).then_some(())?;
    let status: Value = serde_json::from_str(&body).ok()?;
    let s = status["throttle"]["peers"][PEER]["signal"].clone();
    (!s.is_null()).then_some(s)
}

/// The cluster with alpha's agent, and the directory of alpha's token and
/// state (kept until the test ends).
fn start() -> (Cluster, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = Cluster::start_node(SCENARIO, "alpha", "1s", &alpha_config(dir.path()));
    (cluster, dir)
}

#[test]
fn pressure_endpoint_needs_the_token() {
    let (cluster, _dir) = start();
    let (code, body) = http_get(cluster.addr, "/v1/pressure").expect("GET");
    assert_eq!(code, 401);
    assert!(!body.contains("resources"), "401 leaks data: {body}");
    let (code, body) = http_get_with(
        cluster.addr,
        "/v1/pressure",
        "Authorization: Bearer wrong-token-0123456789\r\n",
    )
    .expect("GET");
    assert_eq!(code, 401);
    assert!(!body.contains("resources"), "401 leaks data: {body}");
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    // Alpha is Primary of r0 and writes: a pressure once two samples exist.
    let report: Value = poll(BOUND, EVERY, "alpha's pressure report", || {
        let (code, body) = http_get_with(cluster.addr, "/v1/pressure", &auth).ok()?;
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("JSON");
        v["resources"][0]["pressure"].as_f64().map(|_| v)
    });
    assert_eq!(report["node"], "alpha");
    let r = &report["resources"][0];
    assert_eq!(r["resource"], "r0");
    assert_eq!(r["volume"], 0);
    assert_eq!(r["target_ms"].as_f64(), Some(5.0));
    let (latency, pressure) = (
        r["write_latency_ms"].as_f64().expect("latency"),
        r["pressure"].as_f64().expect("pressure"),
    );
    assert!((pressure - latency / 5.0).abs() < 1e-9, "{r}");
}

#[test]
fn the_primarys_pressure_steers_bravo_until_it_goes_away() {
    let (mut cluster, _dir) = start();
    let dir = cluster.dir.path().to_owned();
    let config = bravo_config(&dir, cluster.addr, TOKEN);
    let (mut bravo, bravo_addr) = cluster.start_peer_agent("bravo", &config);
    let peer = poll(BOUND, EVERY, "bravo steered by alpha's pressure", || {
        bravo.assert_running();
        signal(bravo_addr).filter(|s| s["source"] == "peer")
    });
    assert_eq!(peer["node"], "alpha");
    assert!(peer["pressure"].as_f64().is_some_and(|p| p > 0.0), "{peer}");
    // The rate is set from it (the agent is in charge).
    poll(BOUND, EVERY, "bravo setting a rate", || {
        let (_, body) = http_get(bravo_addr, "/v1/status").ok()?;
        let v: Value = serde_json::from_str(&body).ok()?;
        v["throttle"]["peers"][PEER]["rate_set_kib"].as_u64()
    });

    // `drbd-agent status` says which signal steers.
    let mut command = std::process::Command::new(AGENT);
    command
        .args(["status", "--url", &format!("http://{bravo_addr}")])
        .env_remove("RUST_LOG");
    let (code, table, stderr) = run_bounded(command, Duration::from_secs(20));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        table.contains("signal r0/0/0: pressure of alpha"),
        "{table}"
    );
    assert!(
        table.contains("pressure peer alpha at 127.0.0.1:"),
        "{table}"
    );

    // The metrics say so, on both sides, promtool-clean.
    let (_, metrics) = http_get(bravo_addr, "/metrics").expect("metrics");
    assert_eq!(
        sample_value(&metrics, "drbd_agent_pressure_peer_up{peer=\"alpha\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        sample_value(
            &metrics,
            "drbd_agent_pressure_fetches_total{peer=\"alpha\",result=\"ok\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    let from_peer =
        "drbd_agent_throttle_signal_from_peer{name=\"r0\",peer_node_id=\"0\",volume=\"0\"}";
    assert_eq!(sample_value(&metrics, from_peer), Some(1.0), "{metrics}");
    let (_, alpha_metrics) = http_get(cluster.addr, "/metrics").expect("metrics");
    assert!(
        sample_value(
            &alpha_metrics,
            "drbd_agent_pressure_published{name=\"r0\",volume=\"0\"}"
        )
        .is_some_and(|p| p > 0.0),
        "{alpha_metrics}"
    );
    for text in [&metrics, &alpha_metrics] {
        let findings: Vec<String> = promtool_findings(text)
            .into_iter()
            .filter(|f| !LEGACY_FINDINGS.iter().any(|l| f.contains(l)))
            .collect();
        assert!(findings.is_empty(), "promtool: {findings:?}");
    }

    // Alpha's agent goes away: bravo falls back to its local signals and says why.
    cluster.kill_agent();
    let local = poll(BOUND, EVERY, "bravo falling back to local signals", || {
        bravo.assert_running();
        signal(bravo_addr)
            .filter(|s| s["reason"]["why"] == "stale" || s["reason"]["why"] == "unreachable")
    });
    assert_eq!(local["source"], "local");
    assert_eq!(local["reason"]["node"], "alpha");
    // Still throttling (on the backing device's latency).
    let (_, body) = http_get(bravo_addr, "/v1/status").expect("status");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert!(v["throttle"]["peers"][PEER]["decision"].is_object(), "{v}");
    let (_, metrics) = http_get(bravo_addr, "/metrics").expect("metrics");
    assert_eq!(sample_value(&metrics, from_peer), Some(0.0), "{metrics}");
    assert_eq!(
        sample_value(&metrics, "drbd_agent_pressure_peer_up{peer=\"alpha\"}"),
        Some(0.0),
        "{metrics}"
    );
}

#[test]
fn a_wrong_token_is_refused_and_local_signals_steer() {
    let (mut cluster, _dir) = start();
    let dir = cluster.dir.path().to_owned();
    let config = bravo_config(&dir, cluster.addr, "not-the-right-token-42");
    let (mut bravo, bravo_addr) = cluster.start_peer_agent("bravo", &config);
    let local = poll(BOUND, EVERY, "bravo reporting the refusal", || {
        bravo.assert_running();
        signal(bravo_addr).filter(|s| {
            s["reason"]["why"] == "unreachable"
                && s["reason"]["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("401"))
        })
    });
    assert_eq!(local["source"], "local");
    // Repeated over several intervals, never a peer signal.
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(500));
        let s = signal(bravo_addr).expect("signal");
        assert_eq!(s["source"], "local", "{s}");
    }
}

#[test]
fn the_token_is_not_sent_over_plain_http() {
    let (mut cluster, _dir) = start();
    let dir = cluster.dir.path().to_owned();
    // Stands for alpha's agent: any connection to it would carry the token.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    trap.set_nonblocking(true).expect("nonblocking");
    let trap_addr = trap.local_addr().expect("address");
    let config =
        bravo_config(&dir, trap_addr, TOKEN).replace("allow-plain-http-token = true\n", "");
    assert!(!config.contains("allow-plain-http-token"));
    let (mut bravo, bravo_addr) = cluster.start_peer_agent("bravo", &config);
    let local = poll(BOUND, EVERY, "bravo reporting the refusal", || {
        bravo.assert_running();
        signal(bravo_addr).filter(|s| {
            s["reason"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("the token goes over TLS only"))
        })
    });
    assert_eq!(local["source"], "local", "{local}");
    let (code, metrics) = http_get(bravo_addr, "/metrics").expect("GET /metrics");
    assert_eq!(code, 200);
    let refused = sample_value(
        &metrics,
        "drbd_agent_pressure_fetches_total{peer=\"alpha\",result=\"plain-http-token-refused\"}",
    );
    assert!(refused.is_some_and(|n| n >= 1.0), "{metrics}");
    assert!(
        matches!(trap.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "bravo connected to the peer over plain HTTP"
    );
}
