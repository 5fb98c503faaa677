//! Rendering /metrics for 1,000 and 5,000 resources × 2 peers × 1 volume:
//! the DRBD part from scratch (after a model change), the copy of the model
//! taken under the lock, and a cached scrape (nothing changed); plus the
//! exposition size.
//!
//! Run: `cargo bench --bench metrics_render`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use drbd_agent::drbd::{apply_line, Line, Shared, StreamStats};
use drbd_agent::metrics::{render_drbd, DrbdInput, DrbdVersions, Exporter, Facts};
use drbd_agent::state::Model;

/// An initial dump with statistics: `resources` resources, two peers, one
/// volume each, one resync running per 100 resources.
fn dump(resources: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for r in 0..resources {
        let name = format!("pvc-{r:08}-2c4e-4f7a-9d1b-5b8e2a1c0f3d");
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

fn bench(c: &mut Criterion, resources: usize) {
    let shared = shared_with(resources);
    let model: Model = shared.state.blocking_read().model.clone();
    let stats = StreamStats::default();
    let drbd_part = render_drbd(&DrbdInput::new(&model, &stats)).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let exporter = Exporter::new(Facts::of_this_build());
    exporter.set_drbd_versions(Some(DrbdVersions {
        kmod: Some("9.2.16".to_owned()),
        utils: "9.34.0".to_owned(),
    }));
    let full = runtime
        .block_on(exporter.render(&shared))
        .unwrap_or_default();
    println!(
        "{resources} resources x 2 peers x 1 volume: exposition {:.1} MiB ({} lines), DRBD part {:.1} MiB",
        full.len() as f64 / (1024.0 * 1024.0),
        full.lines().count(),
        drbd_part.len() as f64 / (1024.0 * 1024.0),
    );

    let mut group = c.benchmark_group(format!("metrics/{resources}"));
    group.sample_size(10);
    group.bench_function("render DRBD part", |b| {
        b.iter(|| black_box(render_drbd(&DrbdInput::new(&model, &stats))))
    });
    group.bench_function("copy model (under the lock)", |b| {
        b.iter(|| black_box(shared.state.blocking_read().model.clone()))
    });
    group.bench_function("scrape, cached", |b| {
        b.iter(|| black_box(runtime.block_on(exporter.exposition(&shared))))
    });
    group.bench_function("scrape after a change", |b| {
        b.iter(|| {
            shared.state.blocking_write().generation += 1;
            black_box(runtime.block_on(exporter.exposition(&shared)))
        })
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for resources in [1000, 5000] {
        bench(&mut criterion, resources);
    }
    criterion.final_summary();
}
