//! The resync throttle's series on `/metrics`: through the HTTP API with a
//! throttle status set, in name order with the agent part, and clean for
//! `promtool check metrics` (a missing promtool is a failure, as in
//! metrics_promtool.rs).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod common;
}
use support::common;

use common::promtool_findings;
use std::sync::Arc;
use std::time::Duration;

use drbd_agent::api::{bind, router_with_metrics, serve, ApiState, Limits};
use drbd_agent::drbd::{apply_line, Line, Shared};
use drbd_agent::metrics::{throttle_family_names, Exporter, Facts};
use drbd_agent::runtime::CancellationToken;
use drbd_agent::throttle::{
    ControlState, Decision, KibPerSec, Mode, ModelReport, PeerStatus, QueueModel, Reason,
    SharedThrottleStatus, ThrottleStatus,
};

const BOUND: Duration = Duration::from_secs(20);
const STORY: &str = include_str!("data/events2/resync-3node.statistics.txt");

/// The findings drbd-reactor's own names draw; nothing else may appear.
const LEGACY: [&str; 2] = [
    "drbd_peerdevice_received_bytes counter metrics should have \"_total\" suffix",
    "drbd_peerdevice_sent_bytes counter metrics should have \"_total\" suffix",
];

fn kib(v: u64) -> KibPerSec {
    KibPerSec::new(v).unwrap()
}

/// The queue model's fit of a 1 ms, 100 MiB/s queue from exact samples.
fn exact_fit() -> drbd_agent::throttle::Fit {
    let mut m = QueueModel::new();
    for load in [10_240.0, 40_960.0, 71_680.0, 92_160.0] {
        m.observe(load, 1.0 / (1.0 - load / 102_400.0)).unwrap();
    }
    m.fit().unwrap()
}

/// Two followed peer devices: one in charge with a latency, one of an
/// oddly named resource without a step yet.
fn throttle_status() -> ThrottleStatus {
    let charged = PeerStatus {
        resource: "r0".to_owned(),
        peer_node_id: 1,
        volume: 0,
        rate_set_kib: Some(40 * 1024),
        decision: Some(Decision {
            rate: kib(40 * 1024),
            state: ControlState::Increasing,
            reason: Reason::Headroom { latency_ms: 2.5 },
            floor: kib(4 * 1024),
            ceiling: kib(100 * 1024),
            latency_ms: Some(2.5),
        }),
        latency_target_ms: 10.0,
        policy: None,
        reverts: 2,
        failures: 1,
        signal: None,
        model: Some(ModelReport {
            in_use: true,
            fallback: None,
            fit: Some(exact_fit()),
            bias: Some(1.0),
            setpoint_ms: Some(9.5),
        }),
    };
    let fresh = PeerStatus {
        resource: r#"we"ird\name"#.to_owned(),
        peer_node_id: 2,
        volume: 3,
        latency_target_ms: 20.0,
        ..PeerStatus::default()
    };
    ThrottleStatus {
        enabled: true,
        mode: Some(Mode::Enforce),
        peers: [
            ("r0/1/0".to_owned(), charged),
            (r#"we"ird\name/2/3"#.to_owned(), fresh),
        ]
        .into_iter()
        .collect(),
        reverts: 2,
        failures: 7,
        restores: 1,
        journal_errors: 0,
        last_error: Some("drbdsetup failed".to_owned()),
        ..ThrottleStatus::default()
    }
}

async fn shared_story() -> Arc<Shared> {
    let shared = Arc::new(Shared::new());
    let mut state = shared.state.write().await;
    for line in STORY.lines() {
        apply_line(&mut state, &Line::Text(line.to_owned()));
    }
    state.stats.child_running = true;
    drop(state);
    shared
}

/// `# TYPE` names in output order.
fn family_order(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect()
}

/// Scrapes `/metrics` over HTTP from a router whose exporter follows `throttle`.
async fn scrape(throttle: SharedThrottleStatus) -> String {
    let shared = shared_story().await;
    let exporter = Exporter::new(Facts {
        version: "1.2.3".to_owned(),
        git_commit: "abc123".to_owned(),
    })
    .with_throttle(throttle.clone());
    let app = router_with_metrics(
        ApiState {
            node_name: "alpha".to_owned(),
            shared,
            throttle,
            linstor: None,
        },
        Arc::new(exporter),
    );
    let listeners = bind(&["127.0.0.1:0".parse().unwrap()]).await.unwrap();
    let addr = listeners[0].local_addr().unwrap();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let task = serve(
        listeners.into_iter().next().unwrap(),
        app,
        Limits::default(),
        stopped,
    );
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    stop.cancel();
    task.await.unwrap();
    text
}

#[tokio::test]
async fn throttle_series_over_http_sorted_and_promtool_clean() {
    tokio::time::timeout(BOUND, async {
        let throttle = SharedThrottleStatus::default();
        *throttle.write().await = throttle_status();
        let text = scrape(throttle).await;

        for line in [
            "drbd_agent_throttle_enabled 1\n",
            "drbd_agent_throttle_mode{mode=\"enforce\"} 1\n",
            "drbd_agent_throttle_mode{mode=\"observe\"} 0\n",
            "drbd_agent_throttle_resync_rate_bytes_per_second{name=\"r0\",peer_node_id=\"1\",volume=\"0\"} 41943040\n",
            "drbd_agent_throttle_latency_seconds{name=\"r0\",peer_node_id=\"1\",volume=\"0\"} 0.0025\n",
            "drbd_agent_throttle_latency_target_seconds{name=\"r0\",peer_node_id=\"1\",volume=\"0\"} 0.01\n",
            "drbd_agent_throttle_latency_target_seconds{name=\"we\\\"ird\\\\name\",peer_node_id=\"2\",volume=\"3\"} 0.02\n",
            "drbd_agent_throttle_floor_bytes_per_second{name=\"r0\",peer_node_id=\"1\",volume=\"0\"} 4194304\n",
            "drbd_agent_throttle_state{name=\"r0\",peer_node_id=\"1\",volume=\"0\",state=\"increasing\"} 1\n",
            "drbd_agent_throttle_state{name=\"r0\",peer_node_id=\"1\",volume=\"0\",state=\"holding\"} 0\n",
            "drbd_agent_throttle_model_in_use{name=\"r0\",peer_node_id=\"1\",volume=\"0\"} 1\n",
            "drbd_agent_throttle_model_fallback{name=\"r0\",peer_node_id=\"1\",volume=\"0\",reason=\"uncertain\"} 0\n",
            "drbd_agent_throttle_model_fallback{name=\"r0\",peer_node_id=\"1\",volume=\"0\",reason=\"not-convex\"} 0\n",
            "drbd_agent_throttle_model_setpoint_seconds{name=\"r0\",peer_node_id=\"1\",volume=\"0\"} 0.0095\n",
            "drbd_agent_throttle_peer_reverts_total{name=\"r0\",peer_node_id=\"1\",volume=\"0\"} 2\n",
            "drbd_agent_throttle_peer_failures_total{name=\"we\\\"ird\\\\name\",peer_node_id=\"2\",volume=\"3\"} 0\n",
            "drbd_agent_throttle_reverts_total 2\n",
            "drbd_agent_throttle_actuation_failures_total 7\n",
            "drbd_agent_throttle_restores_total 1\n",
            "drbd_agent_throttle_journal_errors_total 0\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        // The peer without a step has no rate, latency, floor or state.
        for family in [
            "drbd_agent_throttle_resync_rate_bytes_per_second",
            "drbd_agent_throttle_latency_seconds",
            "drbd_agent_throttle_floor_bytes_per_second",
            "drbd_agent_throttle_state",
            "drbd_agent_throttle_model_in_use",
            "drbd_agent_throttle_model_fallback",
        ] {
            assert!(
                !text.contains(&format!("{family}{{name=\"we")),
                "{family} of the fresh peer"
            );
        }
        assert!(!text.contains("NaN"));

        // Every family once, all in name order, the throttle ones inside
        // the agent part.
        let order = family_order(&text);
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        for name in throttle_family_names() {
            assert!(order.iter().any(|n| n == name), "{name}");
        }
        let first_drbd = order
            .iter()
            .position(|n| !n.starts_with("drbd_agent_"))
            .unwrap();
        assert!(order[..first_drbd]
            .iter()
            .any(|n| n == "drbd_agent_throttle_state"));
        assert!(order[..first_drbd]
            .iter()
            .any(|n| n == "drbd_agent_unknown_values_total"));

        let mut expected: Vec<String> = LEGACY.iter().map(|s| (*s).to_owned()).collect();
        expected.sort();
        assert_eq!(promtool_findings(&text), expected, "{text}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn the_status_is_read_on_every_scrape() {
    tokio::time::timeout(BOUND, async {
        let throttle = SharedThrottleStatus::default();
        let shared = shared_story().await;
        let exporter = Exporter::new(Facts::of_this_build()).with_throttle(throttle.clone());
        let disabled = exporter.render(&shared).await.unwrap();
        assert!(disabled.contains("drbd_agent_throttle_enabled 0\n"));
        assert!(!disabled.contains("drbd_agent_throttle_mode"));
        assert!(!disabled.contains("drbd_agent_throttle_state"));

        *throttle.write().await = throttle_status();
        let enabled = exporter.render(&shared).await.unwrap();
        assert!(enabled.contains("drbd_agent_throttle_enabled 1\n"));
        assert!(enabled.contains("drbd_agent_throttle_actuation_failures_total 7\n"));

        // Without a status the exporter renders no throttle family at all.
        let plain = Exporter::new(Facts::of_this_build());
        let text = plain.render(&shared).await.unwrap();
        assert!(!text.contains("drbd_agent_throttle_"));
        assert!(text.contains("drbd_agent_build_info{"));
    })
    .await
    .expect("test timed out");
}
