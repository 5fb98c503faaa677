//! The fetcher against peers that misbehave — down, slow, answering garbage,
//! refusing the token — and against the real `/v1/pressure` route: every
//! failure is classified, bounded by the timeout, and never taken as data.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use drbd_agent::pressure::api::{router, Access, PressureApi};
use drbd_agent::pressure::fetch::{fetch_one, Fetched};
use drbd_agent::pressure::sampler::SharedReport;
use drbd_agent::pressure::{PressureReport, VolumePressure};

const TOKEN: &str = "0123456789abcdef-token";

/// A one-shot-per-connection HTTP server answering `answer` after `delay`.
fn fake_peer(answer: impl Into<String>, delay: Duration) -> SocketAddr {
    let answer: Arc<str> = answer.into().into();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                std::thread::sleep(delay);
                let _ = stream.write_all(answer.as_bytes());
            });
        }
    });
    addr
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client")
}

fn result_of(f: &Fetched) -> &'static str {
    match f {
        Fetched::Ok(_) => "ok",
        Fetched::Failed { result, .. } => result,
    }
}

/// A 200 answer with `body`.
fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

const GOOD: &str = "{\"node\":\"alpha\",\"window_ms\":500,\"resources\":[{\"resource\":\"r0\",\"volume\":0,\"write_latency_ms\":6.0,\"queue_depth\":2.0,\"foreground_kib_per_sec\":1.0,\"target_ms\":5.0,\"pressure\":1.2}]}";

#[tokio::test]
async fn misbehaving_peers_are_classified() {
    let c = client();
    let good = fake_peer(ok(GOOD), Duration::ZERO);
    match fetch_one(&c, "alpha", &good.to_string(), TOKEN).await {
        Fetched::Ok(r) => assert_eq!(r.resources[0].pressure, Some(1.2)),
        other => panic!("{other:?}"),
    }
    // The same answer under another node's name: a misdirected override.
    assert_eq!(
        result_of(&fetch_one(&c, "charlie", &good.to_string(), TOKEN).await),
        "garbage"
    );
    let garbage = fake_peer(ok("not json!"), Duration::ZERO);
    assert_eq!(
        result_of(&fetch_one(&c, "alpha", &garbage.to_string(), TOKEN).await),
        "garbage"
    );
    let nan = fake_peer(
        ok("{\"node\":\"alpha\",\"window_ms\":1,\"resources\":[{\"resource\":\"r0\",\"volume\":0,\"write_latency_ms\":-6.0,\"queue_depth\":2.0,\"foreground_kib_per_sec\":1.0,\"target_ms\":5.0}]}"),
        Duration::ZERO,
    );
    assert_eq!(
        result_of(&fetch_one(&c, "alpha", &nan.to_string(), TOKEN).await),
        "garbage"
    );
    let refused = fake_peer(
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        Duration::ZERO,
    );
    assert_eq!(
        result_of(&fetch_one(&c, "alpha", &refused.to_string(), TOKEN).await),
        "unauthorized"
    );
    let broken = fake_peer(
        "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        Duration::ZERO,
    );
    assert_eq!(
        result_of(&fetch_one(&c, "alpha", &broken.to_string(), TOKEN).await),
        "bad-status"
    );
    // Slow: answers after 3 s, the client gives up at 300 ms.
    let slow = fake_peer(ok(GOOD), Duration::from_secs(3));
    assert_eq!(
        result_of(&fetch_one(&c, "alpha", &slow.to_string(), TOKEN).await),
        "timeout"
    );
    // Down: nothing listens there.
    let down = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    assert_eq!(
        result_of(&fetch_one(&c, "alpha", &down.to_string(), TOKEN).await),
        "unreachable"
    );
}

#[tokio::test]
async fn the_real_route_serves_the_report_to_token_holders_only() {
    let report = SharedReport::default();
    *report.write().await = PressureReport {
        node: "alpha".into(),
        window_ms: 1000,
        resources: vec![VolumePressure {
            resource: "r0".into(),
            volume: 0,
            write_latency_ms: Some(10.0),
            queue_depth: 1.0,
            foreground_kib_per_sec: 2048.0,
            target_ms: 5.0,
            pressure: Some(2.0),
        }],
    };
    let app = router(PressureApi {
        report: report.clone(),
        access: Access::Token(Arc::from(TOKEN)),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let c = client();
    match fetch_one(&c, "alpha", &addr, TOKEN).await {
        Fetched::Ok(r) => assert_eq!(r, report.read().await.clone()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        result_of(&fetch_one(&c, "alpha", &addr, "another-token-0123456789").await),
        "unauthorized"
    );
    let plain = c
        .get(format!("http://{addr}/v1/pressure"))
        .send()
        .await
        .expect("GET");
    assert_eq!(plain.status().as_u16(), 401);
    assert!(!plain.text().await.expect("body").contains("r0"));
    server.abort();
}
