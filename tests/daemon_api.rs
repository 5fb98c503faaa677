//! The HTTP API on 127.0.0.1:0.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use drbd_agent::api::{bind, router, serve, ApiState, Limits};
use drbd_agent::drbd::{apply_line, Line, Shared};
use drbd_agent::runtime::CancellationToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BOUND: Duration = Duration::from_secs(20);

async fn filled_shared() -> Arc<Shared> {
    let shared = Arc::new(Shared::new());
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/events2/resync-3node.statistics.txt"),
    )
    .unwrap();
    let mut state = shared.state.write().await;
    for line in text.lines() {
        apply_line(&mut state, &Line::Text(line.to_owned()));
    }
    apply_line(&mut state, &Line::Text("garbage".to_owned()));
    state.stats.child_running = true;
    drop(state);
    shared
}

/// Sends raw bytes and returns the status line of the answer.
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before all of a large request is sent.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn status_health_404_and_limits() {
    tokio::time::timeout(BOUND, async {
        let shared = filled_shared().await;
        let alive = shared.alive_guard();
        let app = router(ApiState {
            node_name: "alpha".to_owned(),
            shared: shared.clone(),
            throttle: Default::default(),
            linstor: None,
        });
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

        let response = client
            .get(format!("{base}/v1/status"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let status: serde_json::Value = response.json().await.unwrap();
        let agent = &status["agent"];
        assert_eq!(agent["node_name"], "alpha");
        // Throttling is off unless configured; its counters are shown anyway.
        assert_eq!(status["throttle"]["enabled"], false);
        assert_eq!(status["throttle"]["reverts"], 0);
        assert_eq!(agent["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(agent["events"], 34);
        assert_eq!(agent["parse_errors"], 1);
        assert!(agent["last_parse_error"]
            .as_str()
            .unwrap()
            .contains("garbage"));
        assert_eq!(agent["drbd_reachable"], true);
        assert_eq!(agent["initial_dump_done"], true);
        assert_eq!(agent["child_restarts"], 0);
        assert_eq!(agent["drifts"], 0);
        assert!(
            agent["last_event_at"].is_null(),
            "fixture has no timestamps"
        );
        let r0 = &status["resources"]["r0"];
        assert_eq!(r0["role"], "Primary");
        assert_eq!(r0["devices"]["0"]["disk"], "UpToDate");
        assert_eq!(
            r0["connections"]["bravo"]["peer_devices"]["0"]["replication"],
            "Established"
        );

        let response = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "ok\n");

        let response = client.get(format!("{base}/metricz")).send().await.unwrap();
        assert_eq!(response.status(), 404);
        let response = client.get(format!("{base}/")).send().await.unwrap();
        assert_eq!(response.status(), 404);

        // A declared body over the limit is refused before routing.
        let answer = raw(
            addr,
            b"POST /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

        // A request head over the buffer limit is refused.
        let mut huge = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
        huge.extend_from_slice(b"\r\n\r\n");
        let answer = raw(addr, &huge).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

        // The supervisor is gone: not healthy.
        drop(alive);
        let response = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 503);

        stop.cancel();
        task.await.unwrap();
        assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    })
    .await
    .expect("API test took too long");
}

#[tokio::test]
async fn bad_listen_address_is_an_error() {
    let taken = bind(&["127.0.0.1:0".parse().unwrap()]).await.unwrap();
    let addr = taken[0].local_addr().unwrap();
    let error = bind(&[addr]).await.unwrap_err();
    assert_eq!(error.addr, addr);
    assert!(error.to_string().contains(&addr.to_string()));
}
