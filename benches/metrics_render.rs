//! /metrics for 1,000 and 5,000 resources × 2 peers × 1 volume:
//! - the DRBD part rendered from scratch (what every scrape after a change
//!   cost before the per-resource cache);
//! - a scrape after one resource changed, and an unchanged scrape;
//! - the three ways to put the body together: one contiguous copy,
//!   frames of 256 KiB copied from the cached chunks (what the API sends),
//!   every piece as its own frame (zero-copy);
//! - the same three end to end over HTTP on loopback (request to last body
//!   byte), each after a one-resource change;
//! - the gzip body (assembled from the cached deflated pieces) after one
//!   change and unchanged, and over HTTP;
//! - the exposition size, its gzip size, the cache size and this process's RSS.
//!
//! Run: `cargo bench --bench metrics_render`

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use criterion::Criterion;
use drbd_agent::api::{bind, serve, Limits};
use drbd_agent::drbd::{apply_line, Line, Shared};
use drbd_agent::metrics::{
    render_drbd, DrbdInput, DrbdVersions, Exporter, Exposition, Facts, CONTENT_TYPE,
};
use drbd_agent::runtime::CancellationToken;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn name(r: usize) -> String {
    format!("pvc-{r:08}-2c4e-4f7a-9d1b-5b8e2a1c0f3d")
}

/// An initial dump with statistics: `resources` resources, two peers, one
/// volume each, one resync running per 100 resources.
fn dump(resources: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for r in 0..resources {
        let name = name(r);
        lines.push(format!("exists resource name:{name} role:Secondary suspended:no force-io-failures:no write-ordering:flush may_promote:no promotion_score:10202"));
        for (peer, node) in [("node-b", 1), ("node-c", 2)] {
            lines.push(format!("exists connection name:{name} peer-node-id:{node} conn-name:{peer} connection:Connected role:Secondary congested:no ap-in-flight:0 rs-in-flight:0"));
        }
        lines.push(format!("exists device name:{name} volume:0 minor:{minor} backing_dev:/dev/vg0/{name}_00000 disk:UpToDate client:no open:no quorum:yes size:10485760 read:2112 written:524288 al-writes:37 bm-writes:0 upper-pending:0 lower-pending:0 al-suspended:no blocked:no", minor = 1000 + r));
        for (peer, node) in [("node-b", 1), ("node-c", 2)] {
            let resync = if r % 100 == 0 && node == 1 {
                "replication:SyncSource peer-disk:Inconsistent done:17.48 dbdt1:59.67 eta:14"
            } else {
                "replication:Established peer-disk:UpToDate"
            };
            lines.push(format!("exists peer-device name:{name} peer-node-id:{node} conn-name:{peer} volume:0 {resync} peer-client:no resync-suspended:no received:524288 sent:0 out-of-sync:0 pending:0 unacked:0"));
            lines.push(format!("exists path name:{name} peer-node-id:{node} conn-name:{peer} local:ipv4:10.0.0.1:{port} peer:ipv4:10.0.0.{node}:{port} established:yes", port = 7000 + r));
        }
    }
    lines.push("exists -".to_owned());
    lines
}

fn shared_with(resources: usize) -> Arc<Shared> {
    let shared = Arc::new(Shared::new());
    {
        let mut state = shared.state.blocking_write();
        for line in dump(resources) {
            apply_line(&mut state, &Line::Text(line));
        }
        state.stats.child_running = true;
    }
    shared
}

/// One resource's statistics move (as the events of a running resync do).
struct Changer {
    shared: Arc<Shared>,
    resources: usize,
    next: AtomicU64,
}

impl Changer {
    fn change_one(&self) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let resource = name((n as usize * 7) % self.resources);
        let line = format!(
            "change peer-device name:{resource} peer-node-id:1 conn-name:node-b volume:0 received:{} sent:0 out-of-sync:0 pending:0 unacked:0",
            600_000 + n
        );
        apply_line(&mut self.shared.state.blocking_write(), &Line::Text(line));
    }
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

#[derive(Clone)]
struct Served {
    shared: Arc<Shared>,
    exporter: Arc<Exporter>,
}

/// The body built four ways: `/chunks` is what the API serves.
async fn body(served: &Served, how: &str) -> Response {
    let Ok(exposition) = served.exporter.exposition(&served.shared).await else {
        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
    };
    let length = match how {
        "gzip" => exposition.gzip_len(),
        _ => exposition.len(),
    };
    let body = match how {
        "gzip" => Body::from_stream(futures_util::stream::iter(
            exposition.into_gzip_chunks().map(Ok::<_, Infallible>),
        )),
        "chunks" => Body::from_stream(futures_util::stream::iter(
            exposition.into_chunks().map(Ok::<_, Infallible>),
        )),
        "chunks64" => Body::from_stream(futures_util::stream::iter(
            exposition
                .into_chunks_of(64 * 1024)
                .map(Ok::<_, Infallible>),
        )),
        "pieces" => Body::from_stream(futures_util::stream::iter(
            exposition.into_pieces().map(Ok::<_, Infallible>),
        )),
        _ => Body::from(exposition.to_bytes()),
    };
    (
        [
            ("content-type", CONTENT_TYPE.to_owned()),
            ("content-length", length.to_string()),
        ],
        body,
    )
        .into_response()
}

fn router(served: Served) -> Router {
    Router::new()
        .route(
            "/chunks",
            get(|State(s): State<Served>| async move { body(&s, "chunks").await }),
        )
        .route(
            "/chunks64",
            get(|State(s): State<Served>| async move { body(&s, "chunks64").await }),
        )
        .route(
            "/gzip",
            get(|State(s): State<Served>| async move { body(&s, "gzip").await }),
        )
        .route(
            "/pieces",
            get(|State(s): State<Served>| async move { body(&s, "pieces").await }),
        )
        .route(
            "/contiguous",
            get(|State(s): State<Served>| async move { body(&s, "contiguous").await }),
        )
        .with_state(served)
}

/// A keep-alive HTTP/1.1 client reading whole responses.
struct Client {
    stream: BufReader<TcpStream>,
    body: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: BufReader::new(TcpStream::connect(addr).await.unwrap()),
            body: Vec::new(),
        }
    }

    /// GET `path`, returning the body length.
    async fn get(&mut self, path: &str) -> usize {
        let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .unwrap();
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        self.body.resize(length, 0);
        self.stream.read_exact(&mut self.body).await.unwrap();
        length
    }
}

fn bench(c: &mut Criterion, resources: usize) {
    let shared = shared_with(resources);
    let rss_model = rss_mib();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let exporter = Arc::new(Exporter::new(Facts::of_this_build()));
    exporter.set_drbd_versions(Some(DrbdVersions {
        kmod: Some("9.2.16".to_owned()),
        utils: "9.34.0".to_owned(),
    }));
    let exposition = runtime.block_on(exporter.exposition(&shared)).unwrap();
    let cached = runtime.block_on(exporter.cached_bytes());
    let deflated = runtime.block_on(exporter.cached_deflated_bytes());
    let gzip_len = exposition.gzip_len();
    let rss_cached = rss_mib();
    let text = exposition.to_text();
    let pieces = exposition.clone().into_pieces().count();
    let chunks = exposition.clone().into_chunks().count();
    drop(exposition);
    println!(
        "{resources} resources x 2 peers x 1 volume: exposition {:.1} MiB ({} lines), \
         gzip {:.2} MiB, per-resource cache {:.1} MiB (of which deflated {:.1} MiB), \
         {pieces} pieces, {chunks} frames of 256 KiB; \
         RSS {rss_model:.1} MiB with the model, {rss_cached:.1} MiB with the cache",
        text.len() as f64 / (1024.0 * 1024.0),
        text.lines().count(),
        gzip_len as f64 / (1024.0 * 1024.0),
        cached as f64 / (1024.0 * 1024.0),
        deflated as f64 / (1024.0 * 1024.0),
    );
    drop(text);

    let changer = Changer {
        shared: shared.clone(),
        resources,
        next: AtomicU64::new(0),
    };
    let mut group = c.benchmark_group(format!("metrics/{resources}"));
    group.sample_size(20);
    {
        let model = shared.state.blocking_read().model.clone();
        let stats = shared.state.blocking_read().stats.clone();
        group.bench_function("full render of the DRBD part", |b| {
            b.iter(|| black_box(render_drbd(&DrbdInput::new(&model, &stats))))
        });
    }
    group.bench_function("scrape, unchanged", |b| {
        b.iter(|| black_box(runtime.block_on(exporter.exposition(&shared))))
    });
    group.bench_function("scrape, one resource changed", |b| {
        b.iter(|| {
            changer.change_one();
            black_box(runtime.block_on(exporter.exposition(&shared)))
        })
    });
    let gzip_frames = |exposition: Exposition| {
        exposition
            .into_gzip_chunks()
            .map(|c| c.len())
            .sum::<usize>()
    };
    group.bench_function("gzip scrape (exposition + frames), unchanged", |b| {
        b.iter(|| {
            let exposition = runtime.block_on(exporter.exposition(&shared)).unwrap();
            black_box(gzip_frames(exposition))
        })
    });
    group.bench_function(
        "gzip scrape (exposition + frames), one resource changed",
        |b| {
            b.iter(|| {
                changer.change_one();
                let exposition = runtime.block_on(exporter.exposition(&shared)).unwrap();
                black_box(gzip_frames(exposition))
            })
        },
    );
    let exposition = runtime.block_on(exporter.exposition(&shared)).unwrap();
    group.bench_function("body: one contiguous copy", |b| {
        b.iter(|| black_box(exposition.to_bytes()))
    });
    group.bench_function("body: 256 KiB frames (API)", |b| {
        b.iter(|| {
            black_box(
                exposition
                    .clone()
                    .into_chunks()
                    .map(|c| c.len())
                    .sum::<usize>(),
            )
        })
    });
    group.bench_function("body: every piece a frame", |b| {
        b.iter(|| {
            black_box(
                exposition
                    .clone()
                    .into_pieces()
                    .map(|c| c.len())
                    .sum::<usize>(),
            )
        })
    });
    drop(exposition);

    let stop = CancellationToken::new();

    let stopped = stop.clone();
    let served = Served {
        shared: shared.clone(),
        exporter: exporter.clone(),
    };
    let (addr, server) = runtime.block_on(async {
        let listeners = bind(&["127.0.0.1:0".parse().unwrap()]).await.unwrap();
        let addr = listeners[0].local_addr().unwrap();
        let listener = listeners.into_iter().next().unwrap();
        (
            addr,
            serve(listener, router(served), Limits::default(), stopped),
        )
    });
    // The client runs on its own runtime (its own thread), like a scraper.
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut client = client_runtime.block_on(Client::connect(addr));
    for how in ["gzip", "chunks", "chunks64", "pieces", "contiguous"] {
        let path = format!("/{how}");
        group.bench_function(format!("HTTP GET after a change: {how}"), |b| {
            b.iter(|| {
                changer.change_one();
                black_box(client_runtime.block_on(client.get(&path)))
            })
        });
    }
    group.finish();
    stop.cancel();
    let _ = runtime.block_on(server);
}

fn main() {
    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let sizes: Vec<usize> = match std::env::var("METRICS_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        Err(_) => vec![1000, 5000],
    };
    for resources in sizes {
        bench(&mut criterion, resources);
    }
    criterion.final_summary();
}
