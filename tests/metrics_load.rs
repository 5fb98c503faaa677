//! `/metrics` under load and under bad input, end to end: `drbd-agent run`
//! following `drbd-sim` (events flowing all the time).
//!
//! - 50 concurrent scrapers: every answer 200 with a complete, valid
//!   exposition while the agent's event counter keeps increasing. The
//!   numbers are printed (`--nocapture`); only correctness is asserted.
//! - Unknown path 404, other methods 405, oversized requests 413/431.
//! - Slow clients (idle, head sent byte by byte, idle keep-alive) are cut
//!   off by the 10 s header read timeout.
//! - A resource name with `"` and `\` renders valid exposition (promtool).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod common;
}
use support::common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{
    http_get, parse_exposition, promtool_findings, raw_request, sample_value, Cluster,
    LEGACY_FINDINGS,
};

const SCRAPERS: usize = 50;
const SCRAPES_EACH: usize = 20;
/// A scraper that has not yet seen the event counter move goes on, at most
/// this many scrapes in all.
const SCRAPES_MAX: usize = 2_000;
/// The load part ends (fails) after this long.
const LOAD_BOUND: Duration = Duration::from_secs(60);

/// The header read timeout of the API (`Limits::default()`), and the
/// margin the tests allow on top.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const MARGIN: Duration = Duration::from_secs(8);

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A name with both characters that must be escaped in a label value.
const WEIRD: &str = r#"we"ird\name"#;
const WEIRD_ESCAPED: &str = r#"we\"ird\\name"#;

/// Writes on every primary and a link failing and coming back every 2 s:
/// with a 200 ms statistics poll, events never stop.
const BUSY: &str = r#"
[[node]]
name = "alpha"
node-id = 0

[[node]]
name = "bravo"
node-id = 1

[[node]]
name = "charlie"
node-id = 2

[[resource]]
name = "r0"
primary = "alpha"
write-rate = "20M"
resync-capacity = "100M"
[[resource.volume]]
volume = 0
minor = 1000
size = "10G"
[[resource.volume]]
volume = 1
minor = 1001
size = "1G"

[[resource]]
name = "r1"
port = 7001
primary = "bravo"
write-rate = "5M"
resync-capacity = "50M"
[[resource.volume]]
volume = 0
minor = 1002
size = "10G"

[[resource]]
name = 'we"ird\name'
port = 7002
primary = "alpha"
write-rate = "1M"
[[resource.volume]]
volume = 0
minor = 1003
size = "1G"

[[event]]
at = "500ms"
action = "disconnect"
resource = "r0"
nodes = ["alpha", "charlie"]

[[event]]
at = "1s"
action = "reconnect"
resource = "r0"
nodes = ["alpha", "charlie"]

[[event]]
at = "2s"
action = "repeat"
"#;

/// One resource and nothing happening: for the HTTP edge cases.
const QUIET: &str = r#"
[[node]]
name = "alpha"
node-id = 0

[[node]]
name = "bravo"
node-id = 1

[[resource]]
name = "r0"
primary = "alpha"
[[resource.volume]]
volume = 0
minor = 1000
size = "1G"
"#;

/// What one scraper saw.
#[derive(Debug, Default)]
struct ScraperReport {
    latencies: Vec<Duration>,
    /// drbd_agent_events_total of each body, in order.
    events: Vec<f64>,
    /// The distinct bodies (checked after the load, so that checking does
    /// not slow the scrapers down).
    bodies: BTreeSet<String>,
}

/// Checks one /metrics body: a valid exposition, no series twice, every
/// resource present, DRBD up. Returns the event counter.
fn check_body(body: &str) -> f64 {
    let samples = parse_exposition(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    let mut seen = BTreeSet::new();
    for sample in &samples {
        assert!(
            seen.insert((sample.name.clone(), sample.labels.clone())),
            "series twice: {sample:?}"
        );
    }
    for name in ["r0", "r1", WEIRD] {
        let roles: Vec<_> = samples
            .iter()
            .filter(|s| {
                s.name == "drbd_resource_role"
                    && s.labels.first() == Some(&("name".to_owned(), name.to_owned()))
            })
            .collect();
        assert!(!roles.is_empty(), "no role series for {name:?}");
        let current: f64 = roles.iter().map(|s| s.value).sum();
        assert_eq!(current, 1.0, "{name:?}: {roles:?}");
    }
    assert_eq!(sample_value(body, "drbd_agent_drbd_up"), Some(1.0));
    assert_eq!(
        sample_value(body, "drbd_agent_parse_errors_total"),
        Some(0.0)
    );
    sample_value(body, "drbd_agent_events_total").expect("drbd_agent_events_total")
}

async fn scraper(url: String, from: std::net::IpAddr) -> ScraperReport {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .local_address(from)
        .build()
        .expect("HTTP client");
    let mut report = ScraperReport::default();
    while report.events.len() < SCRAPES_EACH
        || (report.events.last() <= report.events.first() && report.events.len() < SCRAPES_MAX)
    {
        let started = Instant::now();
        let response = client.get(&url).send().await.expect("scrape");
        assert_eq!(response.status(), 200);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE));
        let body = response.text().await.expect("body");
        report.latencies.push(started.elapsed());
        let events = sample_value(&body, "drbd_agent_events_total")
            .unwrap_or_else(|| panic!("no drbd_agent_events_total in\n{body}"));
        if let Some(&before) = report.events.last() {
            assert!(
                events >= before,
                "event counter went back: {before} -> {events}"
            );
        }
        report.events.push(events);
        report.bodies.insert(body);
    }
    report
}

#[test]
fn fifty_concurrent_scrapers_while_events_flow() {
    let cluster = Cluster::start(BUSY, "200ms");
    let url = format!("http://{}/metrics", cluster.addr);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let reports = runtime.block_on(async {
        // From four loopback addresses: one address may hold only its
        // share of the connection slots (`Limits::max_connections_per_client`).
        let tasks: Vec<_> = (0..SCRAPERS)
            .map(|i| {
                let from = std::net::Ipv4Addr::new(127, 0, 0, 1 + (i % 4) as u8);
                tokio::spawn(scraper(url.clone(), from.into()))
            })
            .collect();
        tokio::time::timeout(LOAD_BOUND, async {
            let mut reports = Vec::new();
            for task in tasks {
                reports.push(task.await.expect("a scraper failed"));
            }
            reports
        })
        .await
        .expect("the scrapers did not finish in time")
    });
    let wall = started.elapsed();

    // Every scraper saw the counter move: events flowed during the load.
    for report in &reports {
        assert!(report.events.len() >= SCRAPES_EACH);
        assert!(
            report.events.last() > report.events.first(),
            "no events during a scraper's run: {:?}",
            report.events
        );
    }
    let bodies: BTreeSet<&String> = reports.iter().flat_map(|r| &r.bodies).collect();
    for body in &bodies {
        check_body(body);
    }
    let body = bodies.last().expect("a body");
    assert!(
        body.contains(&format!("name=\"{WEIRD_ESCAPED}\"")),
        "{body}"
    );
    assert_eq!(promtool_findings(body), LEGACY_FINDINGS, "{body}");

    let mut latencies: Vec<Duration> = reports
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let events: Vec<f64> = reports.iter().flat_map(|r| r.events.clone()).collect();
    let low = events.iter().copied().fold(f64::INFINITY, f64::min);
    let high = events.iter().copied().fold(0.0, f64::max);
    println!(
        "load: {SCRAPERS} scrapers, {} scrapes in {wall:?} ({:.0}/s), latency median {:?} p99 {:?} max {:?}, {} distinct bodies of ~{} bytes, events {low} -> {high}",
        latencies.len(),
        latencies.len() as f64 / wall.as_secs_f64(),
        at(0.5),
        at(0.99),
        at(1.0),
        bodies.len(),
        body.len(),
    );
    drop(cluster);
}

#[test]
fn quote_and_backslash_in_a_resource_name_render_valid_exposition() {
    let scenario = format!(
        "{QUIET}\n[[resource]]\nname = '{WEIRD}'\nport = 7001\nprimary = \"bravo\"\n[[resource.volume]]\nvolume = 0\nminor = 1001\nsize = \"1G\"\n"
    );
    let cluster = Cluster::start(&scenario, "1s");
    let (code, body) = common::poll(
        Duration::from_secs(20),
        Duration::from_millis(100),
        "the weird resource on /metrics",
        || {
            let (code, body) = http_get(cluster.addr, "/metrics").ok()?;
            body.contains(WEIRD_ESCAPED).then_some((code, body))
        },
    );
    assert_eq!(code, 200);
    let expected = [
        format!("drbd_resource_role{{name=\"{WEIRD_ESCAPED}\",drbd_resource_role=\"Secondary\"}} 1"),
        format!(
            "drbd_connection_state{{name=\"{WEIRD_ESCAPED}\",conn_name=\"bravo\",peer_node_id=\"1\",drbd_connection_state=\"Connected\"}} 1"
        ),
        format!(
            "drbd_device_state{{name=\"{WEIRD_ESCAPED}\",volume=\"0\",minor=\"1001\",drbd_device_state=\"UpToDate\"}} 1"
        ),
    ];
    for line in &expected {
        assert!(body.lines().any(|l| l == line), "{line} missing:\n{body}");
    }
    // Unescaped, the label value is the name again.
    let samples = parse_exposition(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    assert!(samples
        .iter()
        .any(|s| s.labels.contains(&("name".to_owned(), WEIRD.to_owned()))));
    assert_eq!(promtool_findings(&body), LEGACY_FINDINGS, "{body}");
    drop(cluster);
}

/// The status of the answer to `request` on a fresh connection.
fn status_of(addr: SocketAddr, request: &[u8]) -> u16 {
    match raw_request(addr, request) {
        Ok((code, _)) => code,
        Err(e) => panic!(
            "no HTTP answer to {:?}: {e}",
            String::from_utf8_lossy(&request[..request.len().min(60)])
        ),
    }
}

#[test]
fn unknown_paths_other_methods_and_oversized_requests_are_refused() {
    let cluster = Cluster::start(QUIET, "1s");
    let addr = cluster.addr;
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(status_of(addr, get("/metrics").as_bytes()), 200);
    for path in [
        "/",
        "/metric",
        "/metrics/",
        "/metrics/x",
        "/v2/status",
        "/%22",
    ] {
        assert_eq!(status_of(addr, get(path).as_bytes()), 404, "{path}");
    }
    let head = raw_request(
        addr,
        b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .expect("HEAD answer");
    assert_eq!(head, (200, String::new()));
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let request = format!(
            "{method} /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab"
        );
        assert_eq!(status_of(addr, request.as_bytes()), 405, "{method}");
    }
    // A head larger than the 16 KiB buffer, in one header or in the URI.
    let big_header = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(40_000)
    );
    assert_eq!(status_of(addr, big_header.as_bytes()), 431);
    let big_uri = format!(
        "GET /metrics?{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(40_000)
    );
    assert_eq!(status_of(addr, big_uri.as_bytes()), 431);
    // A body larger than the 64 KiB limit is refused from its length.
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
        .write_all(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        .expect("send head");
    let _ = stream.write_all(&[b'a'; 100_000]);
    let mut answer = [0u8; 512];
    let n = stream.read(&mut answer).expect("an answer");
    let head = String::from_utf8_lossy(&answer[..n]);
    assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
    // The server still answers afterwards.
    assert_eq!(status_of(addr, get("/healthz").as_bytes()), 200);
    drop(cluster);
}

/// Sends `head` one byte every `pace` and waits for the server to close;
/// returns how long the connection lived and what the server sent.
fn trickle(addr: SocketAddr, head: &[u8], pace: Duration) -> (Duration, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(pace)).expect("timeout");
    let started = Instant::now();
    let limit = HEADER_TIMEOUT + MARGIN;
    let mut received = Vec::new();
    let mut bytes = head.iter();
    let mut buffer = [0u8; 1024];
    while started.elapsed() < limit {
        if let Some(&byte) = bytes.next() {
            if stream.write_all(&[byte]).is_err() {
                return (started.elapsed(), received);
            }
        }
        match stream.read(&mut buffer) {
            Ok(0) => return (started.elapsed(), received),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (started.elapsed(), received),
        }
    }
    panic!(
        "the server kept a slow connection open for {limit:?}; got {:?}",
        String::from_utf8_lossy(&received)
    );
}

#[test]
fn slow_clients_are_cut_off_by_the_header_timeout() {
    let cluster = Cluster::start(QUIET, "1s");
    let addr = cluster.addr;
    let pace = Duration::from_millis(250);
    // A head that takes far longer than the timeout to send (~20 s at 4 B/s).
    let slow_head = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: {}\r\n\r\n",
        "s".repeat(40)
    );
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("nothing sent", Vec::new(), false),
        ("head byte by byte", slow_head.into_bytes(), false),
        // One full request, then the connection idles in keep-alive.
        (
            "idle keep-alive",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            true,
        ),
    ];
    let threads: Vec<_> = cases
        .into_iter()
        .map(|(name, head, answered)| {
            std::thread::spawn(move || {
                let (lived, received) = if answered {
                    // Send at once, then idle.
                    let mut stream = TcpStream::connect(addr).expect("connect");
                    stream
                        .set_read_timeout(Some(HEADER_TIMEOUT + MARGIN))
                        .expect("timeout");
                    stream.write_all(&head).expect("send");
                    let started = Instant::now();
                    let mut received = Vec::new();
                    let mut buffer = [0u8; 1024];
                    loop {
                        match stream.read(&mut buffer) {
                            Ok(0) => break,
                            Ok(n) => received.extend_from_slice(&buffer[..n]),
                            Err(e) => panic!(
                                "{name}: not closed ({e}); got {:?}",
                                String::from_utf8_lossy(&received)
                            ),
                        }
                    }
                    (started.elapsed(), received)
                } else {
                    trickle(addr, &head, pace)
                };
                (
                    name,
                    answered,
                    lived,
                    String::from_utf8_lossy(&received).into_owned(),
                )
            })
        })
        .collect();
    for thread in threads {
        let (name, answered, lived, received) = thread.join().expect("a slow client failed");
        println!("slow client ({name}): closed after {lived:?}");
        if answered {
            assert!(received.starts_with("HTTP/1.1 200 "), "{name}: {received}");
            assert_eq!(
                received.matches("HTTP/1.1").count(),
                1,
                "{name}: {received}"
            );
        } else {
            // Cut off without being served (hyper may say 408 first).
            assert!(!received.contains(" 200 "), "{name}: served: {received}");
        }
    }
    // Other clients are still served.
    assert_eq!(http_get(addr, "/healthz").expect("healthz").0, 200);
    drop(cluster);
}
