//! End to end: drbd-sim as DRBD, the real agent with `[linstor] enabled`,
//! the fake controller (tests/support/fake_linstor.rs). The report follows the
//! simulated resync; `/v1/status`, `drbd-agent status` and `/metrics`
//! (promtool-clean) show the connection.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod common;
    pub mod fake_linstor;
}
use support::{common, fake_linstor};

use std::process::Command;
use std::time::Duration;

use common::{http_get, poll, promtool_findings, run_bounded, sample_value, Cluster, AGENT};
use fake_linstor::Fake;

const SCENARIO: &str = include_str!("data/sim/short.toml");

#[test]
fn the_agent_reports_the_simulated_resync() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(Fake::start(&["alpha", "bravo"], None));
    let state = tempfile::tempdir().unwrap();
    let extra = format!(
        "[state]\ndirectory = \"{}\"\n[linstor]\nenabled = true\ncontrollers = [\"{}\"]\nreport-interval = \"200ms\"\n",
        state.path().display(),
        fake.url()
    );
    let cluster = Cluster::start_node(SCENARIO, "alpha", "500ms", &extra);
    let bound = Duration::from_secs(30);
    let every = Duration::from_millis(100);

    // The scenario resyncs 40M at 10M/s from alpha (SyncSource) to bravo.
    let key = "alpha/r0/bravo/volume-0/replication-state";
    let put_with = |key: &str, wanted: Option<&str>| {
        fake.puts().iter().any(|put| {
            put.body.as_ref().is_some_and(|b| match wanted {
                Some(value) => b["override_props"][key] == value,
                None => b["override_props"][key].is_string(),
            })
        })
    };
    poll(bound, every, "the resync in a report", || {
        (put_with(key, Some("SyncSource"))
            && put_with("alpha/r0/bravo/volume-0/resync-done-percent", None))
        .then_some(())
    });
    poll(bound, every, "the end of the resync in the store", || {
        let kv = fake.kv("drbd-agent");
        (kv.get(key).map(String::as_str) == Some("Established")).then_some(())
    });
    let kv = fake.kv("drbd-agent");
    assert_eq!(
        kv.get("alpha/r0/bravo/connection-state")
            .map(String::as_str),
        Some("Connected")
    );
    assert_eq!(
        kv.get("alpha/r0/bravo/volume-0/out-of-sync-bytes")
            .map(String::as_str),
        Some("0")
    );
    assert!(
        !kv.contains_key("alpha/r0/bravo/volume-0/resync-done-percent"),
        "{kv:?}"
    );
    assert!(kv.contains_key("alpha/heartbeat-unix-seconds"));
    // Only GETs, and PUTs to the key-value store; never /v1/view/resources.
    for r in fake.requests() {
        assert!(
            r.method == "GET" || (r.method == "PUT" && r.path == "/v1/key-value-store/drbd-agent"),
            "{r:?}"
        );
        assert!(!r.path.starts_with("/v1/view/"), "{r:?}");
    }

    let status = cluster.status().expect("/v1/status");
    let linstor = &status["linstor"];
    assert_eq!(linstor["enabled"], true, "{linstor}");
    assert_eq!(linstor["connected"], true, "{linstor}");
    assert_eq!(linstor["node_check"], "ok", "{linstor}");
    assert_eq!(linstor["controller"], fake.url().as_str(), "{linstor}");
    assert!(linstor["last_report_unix_seconds"].is_i64(), "{linstor}");

    let mut command = Command::new(AGENT);
    command.args(["status", "--url", &format!("http://{}", cluster.addr)]);
    let (code, table, _) = run_bounded(command, Duration::from_secs(20));
    assert_eq!(code, 0);
    assert!(
        table.contains(&format!(
            "linstor: connected to {} (controller 1.28.0), node check: ok",
            fake.url()
        )),
        "{table}"
    );

    let (code, metrics) = http_get(cluster.addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert_eq!(sample_value(&metrics, "drbd_agent_linstor_up"), Some(1.0));
    assert!(sample_value(&metrics, "drbd_agent_linstor_last_report_timestamp_seconds").is_some());
    assert!(
        metrics.contains(&format!(
            "drbd_agent_linstor_controller_info{{url=\"{}\"}} 1",
            fake.url()
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "drbd_agent_linstor_requests_total{endpoint=\"key_value_store\",result=\"ok\"}"
        ),
        "{metrics}"
    );
    let findings: Vec<String> = promtool_findings(&metrics)
        .into_iter()
        .filter(|f| f.contains("linstor"))
        .collect();
    assert!(findings.is_empty(), "{findings:?}");
}

#[test]
fn a_node_unknown_to_linstor_is_shown() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(Fake::start(&["bravo"], None));
    let state = tempfile::tempdir().unwrap();
    let extra = format!(
        "[state]\ndirectory = \"{}\"\n[linstor]\nenabled = true\ncontrollers = [\"{}\"]\nreport-interval = \"200ms\"\n",
        state.path().display(),
        fake.url()
    );
    let cluster = Cluster::start_node(SCENARIO, "alpha", "500ms", &extra);
    let linstor = poll(
        Duration::from_secs(30),
        Duration::from_millis(100),
        "the node check",
        || {
            let status = cluster.status()?;
            (status["linstor"]["node_check"] == "not-a-node").then(|| status["linstor"].clone())
        },
    );
    assert!(
        linstor["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("node alpha is not a LINSTOR node"),
        "{linstor}"
    );
    let (_, metrics) = http_get(cluster.addr, "/metrics").unwrap();
    assert_eq!(sample_value(&metrics, "drbd_agent_linstor_up"), Some(0.0));
    let mut command = Command::new(AGENT);
    command.args(["status", "--url", &format!("http://{}", cluster.addr)]);
    let (_, table, _) = run_bounded(command, Duration::from_secs(20));
    assert!(table.contains("node check: not-a-node"), "{table}");
    assert!(
        table.contains("linstor error: node alpha is not a LINSTOR node"),
        "{table}"
    );
    assert!(fake.puts().is_empty());
}

#[test]
fn a_bearer_token_is_not_sent_to_a_plain_http_controller() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(Fake::start(&["alpha", "bravo"], None));
    let state = tempfile::tempdir().unwrap();
    let token = state.path().join("auth.json");
    std::fs::write(&token, "{\"token\": \"linstor-s3cret\"}").unwrap();
    let extra = format!(
        "[state]\ndirectory = \"{}\"\n[linstor]\nenabled = true\ncontrollers = [\"{}\"]\n\
         bearer-token-file = \"{}\"\nreport-interval = \"200ms\"\n",
        state.path().display(),
        fake.url(),
        token.display()
    );
    let cluster = Cluster::start_node(SCENARIO, "alpha", "500ms", &extra);
    let bound = Duration::from_secs(30);
    let every = Duration::from_millis(100);
    let error = poll(bound, every, "the refusal in /v1/status", || {
        let status = cluster.status()?;
        let error = status["linstor"]["last_error"].as_str()?.to_owned();
        error
            .contains("the bearer token goes over TLS only")
            .then_some(error)
    });
    assert!(error.contains("allow-plain-http-token"), "{error}");
    let (code, metrics) = http_get(cluster.addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    let refused: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("drbd_agent_linstor_requests_total{")
                && l.contains("result=\"plain_http_token_refused\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(refused >= 1.0, "{metrics}");
    assert_eq!(sample_value(&metrics, "drbd_agent_linstor_up"), Some(0.0));
    // Nothing reached the controller, so the token did not either.
    let requests = fake.requests();
    assert!(
        requests.iter().all(|r| r.authorization.is_none()),
        "{requests:?}"
    );
    assert!(requests.is_empty(), "{requests:?}");
}
