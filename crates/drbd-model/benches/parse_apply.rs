//! Parse + apply throughput on a stream of real events2 lines, and the memory
//! a model of 1,000 resources × 2 peers × 2 volumes takes.
//!
//! Run: `cargo bench --bench parse_apply`

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use drbd_model::events2::parse_line;
use drbd_model::state::Model;

const STORY: &str = include_str!("../../../tests/data/events2/resync-3node.statistics.txt");
const CAPTURED: &str = include_str!("../../../tests/data/events2/captured-drbdtop-tests.txt");

/// The story of one resource, repeated for `resources` resources, plus old
/// captured lines (timestamps, older formats): a mixed stream.
fn mixed_stream(resources: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for index in 0..resources {
        let name = format!("name:res{index}");
        for line in STORY.lines() {
            lines.push(line.replace("name:r0", &name));
        }
    }
    lines.extend(CAPTURED.lines().map(str::to_owned));
    lines
}

/// An initial dump with statistics for `resources` resources, each with two
/// peers and two volumes.
fn large_dump(resources: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for r in 0..resources {
        let name = format!("pvc-{r:08}-2c4e-4f7a-9d1b-5b8e2a1c0f3d");
        lines.push(format!("exists resource name:{name} role:Secondary suspended:no force-io-failures:no write-ordering:flush may_promote:no promotion_score:10202"));
        for (peer, node) in [("node-b", 1), ("node-c", 2)] {
            lines.push(format!("exists connection name:{name} peer-node-id:{node} conn-name:{peer} connection:Connected role:Secondary congested:no ap-in-flight:0 rs-in-flight:0"));
        }
        for volume in 0..2 {
            let minor = 1000 + r * 2 + volume;
            lines.push(format!("exists device name:{name} volume:{volume} minor:{minor} backing_dev:/dev/vg0/{name}_{volume:05} disk:UpToDate client:no open:no quorum:yes size:10485760 read:2112 written:524288 al-writes:37 bm-writes:0 upper-pending:0 lower-pending:0 al-suspended:no blocked:no"));
        }
        for (peer, node) in [("node-b", 1), ("node-c", 2)] {
            for volume in 0..2 {
                lines.push(format!("exists peer-device name:{name} peer-node-id:{node} conn-name:{peer} volume:{volume} replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no received:524288 sent:0 out-of-sync:0 pending:0 unacked:0"));
            }
            lines.push(format!("exists path name:{name} peer-node-id:{node} conn-name:{peer} local:ipv4:10.0.0.1:{port} peer:ipv4:10.0.0.{node}:{port} established:yes", port = 7000 + r));
        }
    }
    lines.push("exists -".to_owned());
    lines
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn throughput(c: &mut Criterion) {
    let lines = mixed_stream(100);
    let mut group = c.benchmark_group("events2");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| {
            for line in &lines {
                let _ = black_box(parse_line(black_box(line)));
            }
        })
    });
    group.bench_function("parse+apply", |b| {
        b.iter(|| {
            let mut model = Model::new();
            for line in &lines {
                if let Ok(event) = parse_line(line) {
                    black_box(model.apply(&event));
                }
            }
            model
        })
    });
    group.finish();
}

fn memory() {
    let lines = large_dump(1000);
    let before = resident_bytes();
    let mut model = Model::new();
    for line in &lines {
        if let Ok(event) = parse_line(line) {
            model.apply(&event);
        }
    }
    let after = resident_bytes();
    let json = serde_json::to_vec(&model).map(|v| v.len()).unwrap_or(0);
    let counts = model.counts();
    println!(
        "model memory: {} resources, {} devices, {} connections, {} peer devices, {} paths: \
         resident +{:.1} MiB (status JSON {:.1} MiB)",
        counts.resources,
        counts.devices,
        counts.connections,
        counts.peer_devices,
        counts.paths,
        after.saturating_sub(before) as f64 / (1024.0 * 1024.0),
        json as f64 / (1024.0 * 1024.0),
    );
    black_box(model);
}

fn main() {
    memory();
    let mut criterion = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(5));
    throughput(&mut criterion);
    criterion.final_summary();
}
