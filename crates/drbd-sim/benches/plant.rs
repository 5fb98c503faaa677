//! Virtual-time speed of the plant: one hour of plant time (36 000 ticks)
//! for two nodes with one resync under steady ingest, and for three nodes
//! with three resyncs sharing one backing disk.
//!
//! Run: `cargo bench --bench plant`

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use drbd_sim::plant::*;

fn two_nodes() -> Plant {
    let mut p = Plant::new(1);
    let a = p.add_node("a", DiskSpec::default()).unwrap();
    let b = p.add_node("b", DiskSpec::default()).unwrap();
    p.add_link(a, b, LinkSpec::default()).unwrap();
    let mut v = VolumeSpec::new("r0/0", a, vec![b]);
    v.load = LoadProfile::Constant {
        write_mib_s: 100.0,
        read_mib_s: 20.0,
    };
    v.write_io_kib = 64.0;
    let v = p.add_volume(v).unwrap();
    p.start_resync(ResyncSpec::new(v, a, b, 1e12)).unwrap();
    p
}

fn three_resyncs() -> Plant {
    let mut p = Plant::new(1);
    let a = p.add_node("a", DiskSpec::default()).unwrap();
    let b = p.add_node("b", DiskSpec::default()).unwrap();
    let c = p.add_node("c", DiskSpec::default()).unwrap();
    p.add_link(a, b, LinkSpec::default()).unwrap();
    p.add_link(a, c, LinkSpec::default()).unwrap();
    p.add_link(b, c, LinkSpec::default()).unwrap();
    for i in 0..3 {
        let mut v = VolumeSpec::new(&format!("r{i}/0"), a, vec![b, c]);
        v.load = LoadProfile::Diurnal {
            min_mib_s: 5.0,
            max_mib_s: 40.0,
            period_s: 600.0,
        };
        let v = p.add_volume(v).unwrap();
        p.start_resync(ResyncSpec::new(v, a, c, 1e12)).unwrap();
    }
    p
}

fn bench(c: &mut Criterion) {
    let hour = Duration::from_secs(3600);
    let mut group = c.benchmark_group("plant_one_hour");
    group.sample_size(10);
    group.bench_function("two_nodes_one_resync", |b| {
        b.iter(|| black_box(two_nodes().step(hour).len()))
    });
    group.bench_function("three_nodes_three_resyncs_one_disk", |b| {
        b.iter(|| black_box(three_resyncs().step(hour).len()))
    });
    group.finish();
}

criterion::criterion_group!(benches, bench);
criterion::criterion_main!(benches);
