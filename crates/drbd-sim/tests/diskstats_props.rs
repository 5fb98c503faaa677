//! Property tests for `diskstats`: arbitrary input never panics, rates are
//! never negative, and the simulator's stat text round-trips.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use drbd_model::diskstats::{derive, parse_stat, DeltaError, DiskStat, StatError};
use drbd_sim::disk::{Disk, IoModel};
use proptest::prelude::*;

fn any_stat() -> impl Strategy<Value = DiskStat> {
    (
        proptest::array::uniform11(any::<u64>()),
        proptest::option::of(proptest::array::uniform4(any::<u64>())),
    )
        .prop_map(|(v, discard)| DiskStat {
            reads: v[0],
            reads_merged: v[1],
            sectors_read: v[2],
            ms_reading: v[3],
            writes: v[4],
            writes_merged: v[5],
            sectors_written: v[6],
            ms_writing: v[7],
            in_flight: v[8],
            io_ticks: v[9],
            weighted_ms: v[10],
            discard: discard.map(|d| drbd_model::diskstats::DiscardStat {
                discards: d[0],
                discards_merged: d[1],
                sectors_discarded: d[2],
                ms_discarding: d[3],
            }),
            flush: None,
        })
}

/// A sample and a later one of the same device: every counter grew by a
/// small non-negative amount.
fn growing_pair() -> impl Strategy<Value = (DiskStat, DiskStat)> {
    (
        proptest::array::uniform11(0u64..1 << 40),
        proptest::array::uniform11(0u64..1 << 30),
    )
        .prop_map(|(base, growth)| {
            let make = |v: [u64; 11]| DiskStat {
                reads: v[0],
                reads_merged: v[1],
                sectors_read: v[2],
                ms_reading: v[3],
                writes: v[4],
                writes_merged: v[5],
                sectors_written: v[6],
                ms_writing: v[7],
                in_flight: v[8],
                io_ticks: v[9],
                weighted_ms: v[10],
                discard: None,
                flush: None,
            };
            let mut later = base;
            for (l, g) in later.iter_mut().zip(growth) {
                *l += g;
            }
            (make(base), make(later))
        })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}") {
        let _ = parse_stat(&text);
    }

    #[test]
    fn arbitrary_numbers_parse_back(values in proptest::collection::vec(any::<u64>(), 0..20)) {
        let line = values.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
        match parse_stat(&line) {
            Ok(stat) => {
                prop_assert!(matches!(values.len(), 11 | 15 | 17));
                prop_assert_eq!(stat.writes, values[4]);
                prop_assert_eq!(stat.weighted_ms, values[10]);
                prop_assert_eq!(stat.discard.is_some(), values.len() >= 15);
                prop_assert_eq!(stat.flush.is_some(), values.len() == 17);
            }
            Err(StatError::Empty) => prop_assert!(values.is_empty()),
            Err(StatError::FieldCount { found }) => prop_assert_eq!(found, values.len()),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn arbitrary_pairs_never_panic_and_never_go_negative(
        a in any_stat(), b in any_stat(), ms in 0u64..u64::MAX / 1_000_000,
    ) {
        match derive(&a, &b, Duration::from_millis(ms)) {
            Ok(r) => {
                for v in [r.read_iops, r.write_iops, r.read_bytes_per_sec,
                          r.write_bytes_per_sec, r.queue_depth, r.utilisation] {
                    prop_assert!(v.is_finite() && v >= 0.0, "{r:?}");
                }
                prop_assert!(r.utilisation <= 1.0);
                for v in [r.read_latency_ms, r.write_latency_ms].into_iter().flatten() {
                    prop_assert!(v.is_finite() && v >= 0.0);
                }
            }
            Err(DeltaError::NoTimeElapsed) => prop_assert_eq!(ms, 0),
            Err(DeltaError::CounterWentBack { before, after, .. }) => prop_assert!(after < before),
        }
    }

    #[test]
    fn growing_counters_always_give_a_sample((a, b) in growing_pair(), ms in 1u64..100_000) {
        let r = derive(&a, &b, Duration::from_millis(ms)).unwrap();
        prop_assert_eq!(r.writes, b.writes - a.writes);
        prop_assert_eq!(r.write_latency_ms.is_some(), b.writes > a.writes);
        prop_assert!(r.queue_depth >= 0.0);
        // Reversed, any counter that grew is a reset.
        let reversed = derive(&b, &a, Duration::from_millis(ms));
        prop_assert_eq!(reversed.is_err(), a != b && {
            let grew = |x: u64, y: u64| y > x;
            grew(a.reads, b.reads) || grew(a.reads_merged, b.reads_merged)
                || grew(a.sectors_read, b.sectors_read) || grew(a.ms_reading, b.ms_reading)
                || grew(a.writes, b.writes) || grew(a.writes_merged, b.writes_merged)
                || grew(a.sectors_written, b.sectors_written) || grew(a.ms_writing, b.ms_writing)
                || grew(a.io_ticks, b.io_ticks) || grew(a.weighted_ms, b.weighted_ms)
        });
    }
}

/// The simulator's stat text parses, and the derived latency is its
/// service time.
#[test]
fn simulator_stat_text_round_trips() {
    let mut disk = Disk::new(IoModel {
        request_kib: 64.0,
        service_ms: 2.0,
    });
    disk.account(Duration::from_secs(1), 0.0, 64.0 * 10.0);
    let before = parse_stat(&disk.stats.stat_text()).unwrap();
    disk.account(Duration::from_secs(1), 64.0 * 4.0, 64.0 * 100.0);
    let after = parse_stat(&disk.stats.stat_text()).unwrap();
    assert_eq!(after.writes, 110);
    let r = derive(&before, &after, Duration::from_secs(1)).unwrap();
    assert_eq!(r.writes, 100);
    assert_eq!(r.write_latency_ms, Some(2.0));
    assert_eq!(r.read_latency_ms, Some(2.0));
    assert!((r.write_bytes_per_sec - 6400.0 * 1024.0).abs() < 1e-6);
    assert!((r.queue_depth - 0.208).abs() < 1e-9, "{}", r.queue_depth);
}
