//! The simulator's own cost at scale: one 100 ms clock step of a generated
//! cluster (`scale:N`, events flowing), and one node's full view (what an
//! initial dump or a `--poll` re-read starts from).
//!
//! Run: `cargo bench --bench sim_step`

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use drbd_sim::cluster::Cluster;
use drbd_sim::scenario;

fn bench(c: &mut Criterion) {
    for n in [1000, 5000] {
        let Ok(scenario) = scenario::load(&format!("scale:{n}")) else {
            panic!("scale:{n} does not load");
        };
        let mut cluster = Cluster::new(scenario);
        // Warm up into the steady state: resyncs running, primaries moving.
        let mut now = Duration::ZERO;
        while now < Duration::from_secs(20) {
            now += Duration::from_millis(100);
            cluster.step(now);
        }
        c.bench_function(&format!("step 100ms scale:{n}"), |b| {
            b.iter(|| {
                now += Duration::from_millis(100);
                black_box(cluster.step(now).len())
            })
        });
        c.bench_function(&format!("views alpha scale:{n}"), |b| {
            b.iter(|| black_box(cluster.views("alpha").len()))
        });
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
