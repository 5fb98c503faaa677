//! `/metrics` over HTTP and the exporter's cache.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use drbd_agent::api::{bind, router_with_metrics, serve, ApiState, Limits};
use drbd_agent::drbd::{apply_line, Line, Shared};
use drbd_agent::metrics::{family_names, DrbdVersions, Exporter, Facts};
use drbd_agent::runtime::CancellationToken;

const BOUND: Duration = Duration::from_secs(20);
const STORY: &str = include_str!("data/events2/resync-3node.statistics.txt");

async fn shared_with(lines: &[&str]) -> Arc<Shared> {
    let shared = Arc::new(Shared::new());
    let mut state = shared.state.write().await;
    for line in lines {
        apply_line(&mut state, &Line::Text((*line).to_owned()));
    }
    state.stats.child_running = true;
    drop(state);
    shared
}

fn facts() -> Facts {
    Facts {
        version: "1.2.3".to_owned(),
        git_commit: "abc123".to_owned(),
    }
}

/// `# TYPE` names in output order.
fn family_order(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn metrics_route_content_type_and_methods() {
    tokio::time::timeout(BOUND, async {
        let shared = shared_with(&STORY.lines().collect::<Vec<_>>()).await;
        let exporter = Arc::new(Exporter::new(facts()));
        exporter.set_drbd_versions(Some(DrbdVersions {
            kmod: Some("9.2.16".to_owned()),
            utils: "9.34.0".to_owned(),
        }));
        let app = router_with_metrics(
            ApiState {
                node_name: "alpha".to_owned(),
                shared: shared.clone(),
                throttle: Default::default(),
                linstor: None,
            },
            exporter,
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
        let base = format!("http://{addr}");
        let client = reqwest::Client::new();

        let response = client.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let length: usize = response.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let text = response.text().await.unwrap();
        assert_eq!(text.len(), length);
        // All three parts arrived: agent, DRBD, version and process.
        assert!(text.starts_with("# HELP drbd_agent_build_info "), "{text}");
        assert!(text.contains("process_start_time_seconds "));
        assert!(text.contains("drbd_agent_build_info{version=\"1.2.3\",git_commit=\"abc123\"} 1\n"));
        assert!(text.contains("drbd_version{kmod=\"9.2.16\",utils=\"9.34.0\"} 1\n"));
        assert!(text.contains("drbd_agent_drbd_up 1\n"), "{text}");
        assert!(text.contains("drbd_agent_events_total 34\n"));
        assert!(text.contains("process_resident_memory_bytes "));
        assert!(text.contains(
            "drbd_resource_role{name=\"r0\",drbd_resource_role=\"Primary\"} 1\n"
        ));

        for (method, path, status) in [
            (reqwest::Method::POST, "/metrics", 405),
            (reqwest::Method::PUT, "/metrics", 405),
            (reqwest::Method::DELETE, "/metrics", 405),
            (reqwest::Method::POST, "/v1/status", 405),
            (reqwest::Method::POST, "/healthz", 405),
            (reqwest::Method::GET, "/metrics/x", 404),
            (reqwest::Method::GET, "/nope", 404),
            (reqwest::Method::POST, "/nope", 404),
        ] {
            let response = client
                .request(method.clone(), format!("{base}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{method} {path}");
        }
        // HEAD is GET without a body.
        let response = client.head(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);

        stop.cancel();
        task.await.unwrap();
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn exposition_families_sorted_and_complete() {
    let shared = shared_with(&STORY.lines().collect::<Vec<_>>()).await;
    let exporter = Exporter::new(facts());
    exporter.set_drbd_versions(Some(DrbdVersions {
        kmod: None,
        utils: "9.22.0".to_owned(),
    }));
    let text = exporter.render(&shared).await.unwrap();
    let order = family_order(&text);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    // Every family the renderer knows appears (the story covers them all
    // except the resync series of a finished resync and the suspension;
    // the model is not stale).
    let absent = [
        "drbd_agent_last_event_age_seconds",
        "drbd_agent_model_stale_seconds",
        "drbd_peerdevice_resync_done_ratio",
        "drbd_peerdevice_resync_eta_seconds",
        "drbd_peerdevice_resync_rate_bytes_per_second",
        // One series per reason that holds (`[metrics] enum-series`).
        "drbd_peerdevice_resync_suspended",
    ];
    for name in family_names() {
        assert_eq!(
            order.iter().any(|n| n == name),
            !absent.contains(&name),
            "{name}"
        );
    }
    assert!(order.iter().any(|n| n.starts_with("process_")));
    assert!(text.contains("drbd_version{kmod=\"\",utils=\"9.22.0\"} 1\n"));
    assert!(text.contains("drbd_agent_config_reloads_total{result=\"success\"} 0\n"));
    exporter.record_reload(false);
    let text = exporter.render(&shared).await.unwrap();
    assert!(text.contains("drbd_agent_config_reloads_total{result=\"failure\"} 1\n"));
}

#[tokio::test]
async fn cache_follows_the_model_generation() {
    let shared = shared_with(&STORY.lines().collect::<Vec<_>>()).await;
    let exporter = Exporter::new(facts());
    let first = exporter.render(&shared).await.unwrap();
    assert!(first.contains("conn_name=\"bravo\""));

    // A change the cache must not hide.
    {
        let mut state = shared.state.write().await;
        apply_line(
            &mut state,
            &Line::Text("change resource name:r0 role:Secondary".to_owned()),
        );
    }
    let second = exporter.render(&shared).await.unwrap();
    assert!(second.contains("drbd_resource_role{name=\"r0\",drbd_resource_role=\"Secondary\"} 1\n"));

    // Destroyed objects disappear.
    {
        let mut state = shared.state.write().await;
        for line in [
            "destroy peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0",
            "destroy connection name:r0 peer-node-id:1 conn-name:bravo",
        ] {
            apply_line(&mut state, &Line::Text(line.to_owned()));
        }
    }
    let third = exporter.render(&shared).await.unwrap();
    assert!(!third.contains("conn_name=\"bravo\""));
    assert!(third.contains("conn_name=\"charlie\""));

    // Without a generation bump the cached text is served: a direct model
    // edit that skips the bump stays invisible (which proves the cache is used).
    {
        let mut state = shared.state.write().await;
        let event = drbd_agent::events2::parse_line("destroy resource name:r0").unwrap();
        state.model.apply(&event);
    }
    let cached = exporter.render(&shared).await.unwrap();
    assert!(cached.contains("name=\"r0\""));
    shared.state.write().await.generation += 1;
    let fresh = exporter.render(&shared).await.unwrap();
    assert!(!fresh.contains("name=\"r0\""));
    assert!(fresh.contains("drbd_resource_resources 0\n"));

    // A flush (the events2 child ended) empties the DRBD part too.
    {
        let mut state = shared.state.write().await;
        apply_line(
            &mut state,
            &Line::Text("exists resource name:r9 role:Secondary".to_owned()),
        );
    }
    assert!(exporter
        .render(&shared)
        .await
        .unwrap()
        .contains("name=\"r9\""));
    shared.state.write().await.flush();
    assert!(!exporter
        .render(&shared)
        .await
        .unwrap()
        .contains("name=\"r9\""));
}
