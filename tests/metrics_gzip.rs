//! gzip `/metrics` bodies assembled from cached deflated pieces: after any
//! sequence of changes, destroys, renames and flushes the gzip body
//! decompresses (flate2 and the system `gzip`) to exactly the plain body;
//! over HTTP gzip is served only when the request accepts it.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use drbd_agent::api::{bind, router_with_metrics, serve, ApiState, Limits};
use drbd_agent::drbd::{apply_line, Line, Shared};
use drbd_agent::metrics::{Exporter, Exposition, Facts};
use drbd_agent::runtime::CancellationToken;
use proptest::prelude::*;

const FIXTURES: [&str; 4] = [
    include_str!("data/events2/resync-3node.statistics.txt"),
    include_str!("data/events2/resync-3node.txt"),
    include_str!("data/events2/captured-drbdtop-tests.txt"),
    include_str!("data/events2/captured-centreon-now-statistics.txt"),
];
const STORY: &str = FIXTURES[0];
const NAMES: [&str; 4] = ["r0", "r1", "pvc-a\\\"q", "s9"];
const BOUND: Duration = Duration::from_secs(60);

fn facts() -> Facts {
    Facts {
        version: "1.2.3".to_owned(),
        git_commit: "abc123".to_owned(),
    }
}

fn fixture_lines() -> Vec<&'static str> {
    FIXTURES
        .iter()
        .flat_map(|text| text.lines())
        .filter(|line| !line.trim().is_empty())
        .collect()
}

fn renamed(line: &str, name: &str) -> String {
    line.split(' ')
        .map(|word| match word.strip_prefix("name:") {
            Some(_) => format!("name:{name}"),
            None => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn apply(shared: &Shared, line: &str) {
    let mut state = shared.state.write().await;
    apply_line(&mut state, &Line::Text(line.to_owned()));
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("a valid gzip body");
    out
}

/// The gzip body, checked against the plain one and the gzip frames.
fn check(exposition: &Exposition) -> Result<(), TestCaseError> {
    let plain = exposition.to_bytes();
    let gzip = exposition.to_gzip_bytes();
    prop_assert_eq!(gzip.len(), exposition.gzip_len());
    prop_assert_eq!(&gzip[..3], &[0x1f, 0x8b, 8][..]);
    prop_assert!(gunzip(&gzip) == plain.to_vec(), "gzip body differs");
    let frames: Vec<u8> = exposition
        .clone()
        .into_gzip_chunks()
        .flat_map(|frame| frame.to_vec())
        .collect();
    prop_assert!(frames == gzip.to_vec(), "frames differ from the body");
    Ok(())
}

#[derive(Debug, Clone)]
enum Step {
    Line(usize, usize),
    DestroyResource(usize),
    DestroyConnection(usize),
    DestroyDevice(usize),
    Rename(usize, usize),
    Flush,
}

impl Step {
    fn lines(&self, fixtures: &[&str]) -> Vec<String> {
        let name = |i: usize| NAMES[i % NAMES.len()];
        match *self {
            Step::Line(line, n) => vec![renamed(fixtures[line % fixtures.len()], name(n))],
            Step::DestroyResource(n) => vec![format!("destroy resource name:{}", name(n))],
            Step::DestroyConnection(n) => vec![format!(
                "destroy connection name:{} peer-node-id:1 conn-name:bravo",
                name(n)
            )],
            Step::DestroyDevice(n) => vec![format!("destroy device name:{} volume:0", name(n))],
            Step::Rename(from, to) => vec![format!(
                "rename resource name:{} new_name:{}",
                name(from),
                name(to)
            )],
            Step::Flush => Vec::new(),
        }
    }
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0..1000usize, 0..4usize).prop_map(|(l, n)| Step::Line(l, n)),
        1 => (0..4usize).prop_map(Step::DestroyResource),
        1 => (0..4usize).prop_map(Step::DestroyConnection),
        1 => (0..4usize).prop_map(Step::DestroyDevice),
        1 => (0..4usize, 0..4usize).prop_map(|(f, t)| Step::Rename(f, t)),
        1 => Just(Step::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// After every scrape of an incrementally updated cache, the gzip body
    /// decompresses to exactly the plain body.
    #[test]
    fn gzip_body_decompresses_to_the_plain_body(
        steps in prop::collection::vec((step(), any::<bool>()), 1..40)
    ) {
        let fixtures = fixture_lines();
        let runtime = runtime();
        let shared = Shared::new();
        let exporter = Exporter::new(facts());
        runtime.block_on(async {
            for (index, (step, scrape)) in steps.iter().enumerate() {
                if let Step::Flush = step {
                    shared.state.write().await.flush();
                }
                for line in step.lines(&fixtures) {
                    apply(&shared, &line).await;
                }
                if *scrape || index + 1 == steps.len() {
                    check(&exporter.exposition(&shared).await.unwrap())?;
                }
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}

/// Runs a system tool with `input` on stdin; returns its stdout.
fn system(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} must be installed: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "{program} {args:?} failed");
    output.stdout
}

#[test]
fn system_gzip_accepts_the_body() {
    runtime().block_on(async {
        let shared = Shared::new();
        for r in 0..200 {
            for line in STORY.lines() {
                apply(&shared, &renamed(line, &format!("res-{r:04}"))).await;
            }
        }
        let exporter = Exporter::new(facts());
        exporter.exposition(&shared).await.unwrap();
        // One change and one destroy after the first scrape.
        apply(&shared, "change resource name:res-0007 promotion_score:3").await;
        apply(&shared, "destroy resource name:res-0100").await;
        let exposition = exporter.exposition(&shared).await.unwrap();
        let plain = exposition.to_bytes();
        assert!(plain.len() > 500_000, "{}", plain.len());
        let gzip = exposition.to_gzip_bytes();
        assert!(
            gzip.len() < plain.len() / 3,
            "{} of {}",
            gzip.len(),
            plain.len()
        );
        system("gzip", &["-t"], &gzip);
        assert!(
            system("zcat", &[], &gzip) == plain.to_vec(),
            "zcat output differs"
        );
        assert!(gunzip(&gzip) == plain.to_vec());
        let text = String::from_utf8(plain.to_vec()).unwrap();
        assert!(text.contains("drbd_resource_promotionscore{name=\"res-0007\"} 3\n"));
        assert!(!text.contains("name=\"res-0100\""));
    });
}

/// The body without the lines that change between scrapes.
fn stable(text: &str) -> String {
    text.lines()
        .filter(|l| !l.contains("process_") && !l.contains("drbd_agent_"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[tokio::test]
async fn metrics_route_serves_gzip_when_accepted() {
    tokio::time::timeout(BOUND, async {
        let shared = Arc::new(Shared::new());
        {
            let mut state = shared.state.write().await;
            for line in STORY.lines() {
                apply_line(&mut state, &Line::Text(line.to_owned()));
            }
        }
        let app = router_with_metrics(
            ApiState {
                node_name: "alpha".to_owned(),
                shared: shared.clone(),
                throttle: Default::default(),
                linstor: None,
            },
            Arc::new(Exporter::new(facts())),
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
        let url = format!("http://{addr}/metrics");
        let client = reqwest::Client::new();
        let fetch = |encoding: Option<&'static str>| {
            let mut request = client.get(&url);
            if let Some(value) = encoding {
                request = request.header("accept-encoding", value);
            }
            async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200);
                let headers = response.headers().clone();
                (headers, response.bytes().await.unwrap())
            }
        };

        let (plain_headers, plain) = fetch(None).await;
        assert!(plain_headers.get("content-encoding").is_none());
        assert_eq!(plain_headers["vary"], "Accept-Encoding");
        let plain = String::from_utf8(plain.to_vec()).unwrap();
        assert!(
            plain.contains("drbd_resource_role{name=\"r0\",drbd_resource_role=\"Primary\"} 1\n")
        );

        for accept in ["gzip", "deflate, gzip;q=0.8", "br, *"] {
            let (headers, body) = fetch(Some(accept)).await;
            assert_eq!(headers["content-encoding"], "gzip", "{accept}");
            assert_eq!(headers["vary"], "Accept-Encoding");
            assert_eq!(
                headers["content-type"],
                "text/plain; version=0.0.4; charset=utf-8"
            );
            let length: usize = headers["content-length"].to_str().unwrap().parse().unwrap();
            assert_eq!(body.len(), length);
            let text = String::from_utf8(gunzip(&body)).unwrap();
            assert!(text.starts_with("# HELP drbd_agent_build_info "));
            assert!(text.contains("process_start_time_seconds "));
            assert_eq!(stable(&text), stable(&plain), "{accept}");
        }

        for accept in ["gzip;q=0", "identity", "deflate, br"] {
            let (headers, body) = fetch(Some(accept)).await;
            assert!(headers.get("content-encoding").is_none(), "{accept}");
            let text = String::from_utf8(body.to_vec()).unwrap();
            assert_eq!(stable(&text), stable(&plain), "{accept}");
        }

        stop.cancel();
        task.await.unwrap();
    })
    .await
    .expect("test timed out");
}

/// Many resources (several blocks of cached sums): changes, destroys and
/// creations between scrapes keep the gzip body equal to the plain one.
#[test]
fn gzip_body_follows_changes_across_many_resources() {
    runtime().block_on(async {
        let shared = Shared::new();
        let add = |r: usize| {
            STORY
                .lines()
                .map(move |line| renamed(line, &format!("res-{r:04}")))
        };
        for r in 0..150 {
            for line in add(r) {
                apply(&shared, &line).await;
            }
        }
        let exporter = Exporter::new(facts());
        check(&exporter.exposition(&shared).await.unwrap()).unwrap();
        for round in 0..24usize {
            let r = (round * 37) % 150;
            match round % 4 {
                0 | 1 => {
                    let line = format!("change resource name:res-{r:04} promotion_score:{round}");
                    apply(&shared, &line).await;
                }
                2 => apply(&shared, &format!("destroy resource name:res-{r:04}")).await,
                _ => {
                    for line in add(1000 + round) {
                        apply(&shared, &line).await;
                    }
                }
            }
            let exposition = exporter.exposition(&shared).await.unwrap();
            check(&exposition).unwrap();
            if round % 4 < 2 {
                let text = String::from_utf8(gunzip(&exposition.to_gzip_bytes())).unwrap();
                let expected =
                    format!("drbd_resource_promotionscore{{name=\"res-{r:04}\"}} {round}\n");
                assert!(text.contains(&expected), "round {round}");
            }
        }
    });
}
