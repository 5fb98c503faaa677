//! Properties of the disk model and the plant's counters.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use drbd_sim::plant::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Latency is finite, at least the base service time, and does not
    /// fall as load rises; served throughput never exceeds capacity.
    #[test]
    fn disk_latency_monotone_and_capacity_respected(
        mib_s in 1.0f64..5000.0, io_kib in 1.0f64..1024.0, extra in 0.0f64..3000.0,
    ) {
        let spec = DiskSpec { noise: 0.0, ..DiskSpec::default() };
        let mut disk = Disk::new(spec, 1).unwrap();
        let low = Io::writes(mib_s * 102.4, io_kib);
        let high = Io::writes((mib_s + extra) * 102.4, io_kib);
        let (l1, _) = disk.expected(&low, 0.1);
        let (l2, _) = disk.expected(&high, 0.1);
        prop_assert!(l1.is_finite() && l2.is_finite());
        prop_assert!(l1 >= spec.service_ms - 1e-12);
        prop_assert!(l2 >= l1 - 1e-9);
        let t = disk.serve(&high, 0.1);
        let served_mib_s = high.write_kib * t.accept / 0.1 / 1024.0;
        let served_iops = high.write_ios * t.accept / 0.1;
        prop_assert!(served_mib_s <= spec.capacity_mib_s * (1.0 + 1e-9));
        prop_assert!(served_iops <= spec.capacity_iops * (1.0 + 1e-9));
    }

    /// Every stat field of every device only grows, whatever the load.
    #[test]
    fn counters_are_monotonic(
        seed in any::<u64>(), w in 0.0f64..800.0, r in 0.0f64..300.0, kib in 0.0f64..1e7,
    ) {
        let mut p = Plant::new(seed);
        let a = p.add_node("a", DiskSpec::default()).unwrap();
        let b = p.add_node("b", DiskSpec::default()).unwrap();
        p.add_link(a, b, LinkSpec::default()).unwrap();
        let mut v = VolumeSpec::new("r0/0", a, vec![b]);
        v.load = LoadProfile::Constant { write_mib_s: w, read_mib_s: r };
        let v = p.add_volume(v).unwrap();
        p.start_resync(ResyncSpec::new(v, a, b, kib)).unwrap();
        let fields = |p: &Plant| {
            let mut out = Vec::new();
            for s in [p.device_stats(v).unwrap(), p.backing_stats(a).unwrap(), p.backing_stats(b).unwrap()] {
                out.extend([s.reads, s.sectors_read, s.ms_reading, s.writes, s.sectors_written,
                            s.ms_writing, s.io_ticks, s.time_in_queue]);
            }
            out
        };
        let mut prev = fields(&p);
        for _ in 0..20 {
            let ws = p.step(Duration::from_millis(500));
            for w in &ws {
                let vw = &w.volumes[0];
                prop_assert!(vw.write_p99_ms.is_finite() && vw.write_p50_ms <= vw.write_p99_ms + 1e-9);
            }
            let now = fields(&p);
            for (x, y) in prev.iter().zip(&now) {
                prop_assert!(y >= x);
            }
            prev = now;
        }
    }
}
