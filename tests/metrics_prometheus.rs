//! A real Prometheus server (Debian's `prometheus`) scrapes an agent that
//! follows `drbd-sim`; the test asks Prometheus's HTTP API for values the
//! scenario determines: roles, disk states, a resync in progress with its
//! progress and rate, out-of-sync bytes going to 0.
//!
//! A missing `prometheus` binary is a failure: `scripts/test-all` installs it.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod common;
}
use support::common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{http_get, poll, program, Cluster, Proc};

/// The whole test ends (fails) after this long.
const BOUND: Duration = Duration::from_secs(90);

const MIB: f64 = 1048576.0;

/// Node alpha is the agent. r0 (alpha Primary) loses its link to bravo and
/// comes back with 60 MiB out of sync, resynced at 10 MiB/s (~6 s; the
/// simulator reports progress every 3 s); r1's primary moves from bravo to
/// alpha and back. The story repeats every 20 s, so the test never depends
/// on catching its first round.
const SCENARIO: &str = r#"
[[node]]
name = "alpha"
node-id = 0

[[node]]
name = "bravo"
node-id = 1

[[resource]]
name = "r0"
port = 7000
primary = "alpha"
write-rate = "0"
resync-capacity = "10M"
[[resource.volume]]
volume = 0
minor = 1000
size = "1G"

[[resource]]
name = "r1"
port = 7001
primary = "bravo"
write-rate = "1M"
resync-capacity = "10M"
[[resource.volume]]
volume = 0
minor = 1001
size = "1G"

[[event]]
at = "1s"
action = "demote"
node = "bravo"
resource = "r1"

[[event]]
at = "2s"
action = "promote"
node = "alpha"
resource = "r1"

[[event]]
at = "3s"
action = "disconnect"
resource = "r0"
nodes = ["alpha", "bravo"]

[[event]]
at = "4s"
action = "reconnect"
resource = "r0"
nodes = ["alpha", "bravo"]
out-of-sync = "60M"
source = "alpha"

[[event]]
at = "12s"
action = "demote"
node = "alpha"
resource = "r1"

[[event]]
at = "13s"
action = "promote"
node = "bravo"
resource = "r1"

[[event]]
at = "20s"
action = "repeat"
"#;

/// Labels of r0's peer device towards bravo.
const R0_BRAVO: &str = r#"name="r0",conn_name="bravo",peer_node_id="1",volume="0""#;

/// A Prometheus server on loopback with a temporary storage directory.
struct Prometheus {
    addr: SocketAddr,
    _proc: Proc,
}

impl Prometheus {
    fn start(dir: &std::path::Path, target: SocketAddr) -> Prometheus {
        let binary = program(
            "prometheus",
            "install prometheus (scripts/test-all does: apt-get install prometheus)",
        );
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: drbd-agent\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let data = dir.join("tsdb");
        std::fs::create_dir(&data).expect("tsdb dir");
        let addr: SocketAddr = format!("127.0.0.1:{}", common::free_port())
            .parse()
            .expect("address");
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn");
        let mut proc = Proc::spawn("prometheus", command, dir.join("prometheus.log"));
        poll(
            Duration::from_secs(30),
            Duration::from_millis(100),
            "Prometheus to be ready",
            || {
                proc.assert_running();
                matches!(http_get(addr, "/-/ready"), Ok((200, _))).then_some(())
            },
        );
        Prometheus { addr, _proc: proc }
    }

    /// The API's `data` for `GET path`, after checking `status: success`.
    fn api(&self, path: &str) -> serde_json::Value {
        let (code, body) =
            http_get(self.addr, path).unwrap_or_else(|e| panic!("GET {path} failed: {e}"));
        assert_eq!(code, 200, "GET {path}: {body}");
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        assert_eq!(json["status"], "success", "{path}: {body}");
        json["data"].clone()
    }

    /// Health of the one scrape target ("up", "down", "unknown").
    fn target_health(&self) -> String {
        let data = self.api("/api/v1/targets");
        let targets = data["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(targets.len() <= 1, "one target expected: {data}");
        targets
            .first()
            .and_then(|t| t["health"].as_str())
            .unwrap_or("none")
            .to_owned()
    }

    /// An instant query evaluated at `at` (unix seconds): the value of each
    /// series by its labels.
    fn query_at(&self, expr: &str, at: f64) -> BTreeMap<String, f64> {
        let data = self.api(&format!(
            "/api/v1/query?query={}&time={at:.3}",
            url_encode(expr)
        ));
        assert_eq!(data["resultType"], "vector", "{expr}: {data}");
        let mut values = BTreeMap::new();
        for item in data["result"].as_array().into_iter().flatten() {
            let labels = item["metric"].to_string();
            let value: f64 = item["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{expr}: bad value in {item}"));
            values.insert(labels, value);
        }
        values
    }

    /// The single value of `expr` at `at`; None when there is no series.
    fn one_at(&self, expr: &str, at: f64) -> Option<f64> {
        let values = self.query_at(expr, at);
        assert!(
            values.len() <= 1,
            "{expr}: more than one series: {values:?}"
        );
        values.into_values().next()
    }

    fn one(&self, expr: &str) -> Option<f64> {
        self.one_at(expr, now())
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Percent-encoding for a query parameter.
fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// One look at r0's resync, all values at the same evaluation time (so from
/// the same scrape).
#[derive(Debug, Clone, Copy)]
struct ResyncLook {
    sync_source: Option<f64>,
    ratio: Option<f64>,
    out_of_sync: Option<f64>,
    rate: Option<f64>,
    peer_inconsistent: Option<f64>,
}

fn look(prometheus: &Prometheus, at: f64) -> ResyncLook {
    let series =
        |name: &str, extra: &str| prometheus.one_at(&format!("{name}{{{R0_BRAVO}{extra}}}"), at);
    ResyncLook {
        sync_source: series(
            "drbd_peerdevice_replication_state",
            r#",drbd_replication_state="SyncSource""#,
        ),
        ratio: series("drbd_peerdevice_resync_done_ratio", ""),
        out_of_sync: series("drbd_peerdevice_outofsync_bytes", ""),
        rate: series("drbd_peerdevice_resync_rate_bytes_per_second", ""),
        peer_inconsistent: series(
            "drbd_peerdevice_peer_disk_state",
            r#",drbd_peer_disk_state="Inconsistent""#,
        ),
    }
}

#[test]
fn prometheus_scrapes_the_simulated_cluster() {
    let started = Instant::now();
    let deadline = started + BOUND;
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = Cluster::start(SCENARIO, "1s");
    let prometheus = Prometheus::start(dir.path(), cluster.addr);

    poll(
        left(deadline),
        Duration::from_millis(200),
        "the target to be up",
        || (prometheus.target_health() == "up").then_some(()),
    );
    // The first scrape is in.
    poll(
        left(deadline),
        Duration::from_millis(200),
        "drbd_agent_drbd_up",
        || prometheus.one("drbd_agent_drbd_up"),
    );
    assert_eq!(prometheus.one("drbd_agent_drbd_up"), Some(1.0));
    assert_eq!(prometheus.one(r#"up{job="drbd-agent"}"#), Some(1.0));
    assert_eq!(
        prometheus.one(r#"drbd_resource_role{name="r0",drbd_resource_role="Primary"}"#),
        Some(1.0)
    );
    // One series per current state (`[metrics] enum-series = "current"`).
    assert_eq!(
        prometheus.one(r#"drbd_resource_role{name="r0",drbd_resource_role="Secondary"}"#),
        None
    );
    assert_eq!(
        prometheus.one(
            r#"drbd_device_state{name="r0",volume="0",minor="1000",drbd_device_state="UpToDate"}"#
        ),
        Some(1.0)
    );
    // Exactly one role per resource is 1.
    let roles = prometheus.query_at("sum by (name) (drbd_resource_role)", now());
    assert_eq!(roles.len(), 2, "{roles:?}");
    assert!(roles.values().all(|v| *v == 1.0), "{roles:?}");

    // A resync in progress, seen twice with growing progress. If a round
    // ends before two looks, the next round is used.
    let mut earlier: Option<ResyncLook> = None;
    let (first, second) = poll(
        left(deadline),
        Duration::from_millis(250),
        "a resync seen making progress",
        || {
            let current = look(&prometheus, now());
            if current.sync_source != Some(1.0) {
                earlier = None;
                return None;
            }
            match earlier {
                None => {
                    earlier = Some(current);
                    None
                }
                Some(before) if current.ratio > before.ratio => Some((before, current)),
                Some(_) => None,
            }
        },
    );
    let ratio1 = first.ratio.expect("done ratio during the resync");
    let ratio2 = second.ratio.expect("done ratio during the resync");
    assert!((0.0..1.0).contains(&ratio1), "{first:?}");
    assert!(ratio1 < ratio2 && ratio2 <= 1.0, "{first:?} {second:?}");
    for look in [first, second] {
        let oos = look
            .out_of_sync
            .expect("out-of-sync bytes during the resync");
        assert!(oos > 0.0 && oos <= 60.0 * MIB, "{look:?}");
        assert_eq!(look.peer_inconsistent, Some(1.0), "{look:?}");
    }
    // Progress reported by the simulator carries the configured rate.
    assert_eq!(second.rate, Some(10.0 * MIB), "{second:?}");
    let eta = prometheus.one(&format!("drbd_peerdevice_resync_eta_seconds{{{R0_BRAVO}}}"));
    if let Some(eta) = eta {
        assert!(eta.is_finite() && eta >= 0.0, "eta {eta}");
    }

    // The resync ends: Established, UpToDate, nothing out of sync.
    let ended_at = poll(
        left(deadline),
        Duration::from_millis(250),
        "the resync to end",
        || {
            let at = now();
            let established = prometheus.one_at(
            &format!(
                r#"drbd_peerdevice_replication_state{{{R0_BRAVO},drbd_replication_state="Established"}}"#
            ),
            at,
        );
            let oos = prometheus.one_at(
                &format!("drbd_peerdevice_outofsync_bytes{{{R0_BRAVO}}}"),
                at,
            );
            (established == Some(1.0) && oos == Some(0.0)).then_some(at)
        },
    );
    // In the same scrape the resync-only series are gone.
    let ended = look(&prometheus, ended_at);
    // The old state's series left the exposition, and Prometheus marked it
    // stale in that scrape: no value at that instant.
    assert_eq!(ended.sync_source, None, "{ended:?}");
    assert_eq!((ended.ratio, ended.rate), (None, None), "{ended:?}");
    assert_eq!(
        prometheus.one_at(
            &format!("drbd_peerdevice_resync_eta_seconds{{{R0_BRAVO}}}"),
            ended_at
        ),
        None
    );
    assert_eq!(
        prometheus.one(&format!(
            r#"drbd_peerdevice_peer_disk_state{{{R0_BRAVO},drbd_peer_disk_state="UpToDate"}}"#
        )),
        Some(1.0)
    );
    let window = format!("[{}s]", started.elapsed().as_secs() + 5);
    let max_oos = prometheus
        .one(&format!(
            "max_over_time(drbd_peerdevice_outofsync_bytes{{{R0_BRAVO}}}{window})"
        ))
        .expect("out-of-sync history");
    assert!(
        max_oos > 0.0 && max_oos <= 60.0 * MIB,
        "max out-of-sync {max_oos}"
    );
    assert_eq!(
        prometheus.one(&format!(
            r#"max_over_time(drbd_peerdevice_replication_state{{{R0_BRAVO},drbd_replication_state="SyncSource"}}{window})"#
        )),
        Some(1.0)
    );
    // r1's role on alpha changes (Primary from 2 s to 12 s of each round).
    let role_of_r1 = || {
        let at = now();
        let primary = prometheus.one_at(
            r#"drbd_resource_role{name="r1",drbd_resource_role="Primary"}"#,
            at,
        );
        let secondary = prometheus.one_at(
            r#"drbd_resource_role{name="r1",drbd_resource_role="Secondary"}"#,
            at,
        );
        // Exactly one of the two series, 1 (the other is stale or absent).
        match (primary, secondary) {
            (Some(1.0), None) => "Primary",
            (None, Some(1.0)) => "Secondary",
            other => panic!("r1 role series {other:?}"),
        }
    };
    let role_before = role_of_r1();
    let role_after = poll(
        left(deadline),
        Duration::from_millis(250),
        "r1 to change role",
        || {
            let role = role_of_r1();
            (role != role_before).then_some(role)
        },
    );
    println!("r1 on alpha: {role_before} -> {role_after}");

    // The agent never lost its events2 stream or failed to parse a line.
    assert_eq!(prometheus.one("drbd_agent_parse_errors_total"), Some(0.0));
    assert_eq!(prometheus.one("drbd_agent_drbd_up"), Some(1.0));
    let events = prometheus
        .one("drbd_agent_events_total")
        .expect("events counter");
    assert!(events > 0.0, "{events}");
    drop(cluster);
    println!("prometheus end-to-end test took {:?}", started.elapsed());
}
