//! The oracle: the highest constant c-max-rate that meets the SLO for the
//! scenario's known load, found by bisection over runs of the same seeded
//! model (geometric: the rates span two orders of magnitude).
//!
//! "Meets" = SLO-violation seconds (beyond the first window after a load
//! step) at most [`SLO_BUDGET`] of the resync period — the same aim the
//! agent is judged by. The search assumes that a higher constant rate
//! never violates less, which holds for the plant's monotone queues.

use super::metrics::RunMetrics;

/// Share of the resync period allowed over the target.
pub const SLO_BUDGET: f64 = 0.01;
/// Bisection steps (the bracket shrinks to (hi/lo)^(1/2^STEPS)).
pub const STEPS: u32 = 9;

/// Whether a run meets the SLO aim.
pub fn meets(m: &RunMetrics) -> bool {
    m.slo_violation_seconds_after_steps <= SLO_BUDGET * m.resync_seconds
}

/// The result of a search: the rate and its run.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub rate_kib_s: u64,
    pub metrics: RunMetrics,
    /// The runs it took.
    pub runs: u32,
}

/// Searches `[lo, hi]` KiB/s with `run(rate)`. `hi` if it meets; else the
/// highest rate seen to meet (`lo` if none does, whatever its run shows).
pub fn search<E>(
    lo: u64,
    hi: u64,
    mut run: impl FnMut(u64) -> Result<RunMetrics, E>,
) -> Result<Found, E> {
    let lo = lo.max(1);
    let hi = hi.max(lo);
    let mut runs = 1;
    let top = run(hi)?;
    if meets(&top) {
        return Ok(Found {
            rate_kib_s: hi,
            metrics: top,
            runs,
        });
    }
    let (mut good, mut bad) = (lo, hi);
    let mut best: Option<RunMetrics> = None;
    for _ in 0..STEPS {
        let mid = ((good as f64) * (bad as f64)).sqrt().round() as u64;
        if mid <= good || mid >= bad {
            break;
        }
        runs += 1;
        let m = run(mid)?;
        if meets(&m) {
            good = mid;
            best = Some(m);
        } else {
            bad = mid;
        }
    }
    let metrics = match best {
        Some(m) => m,
        None => {
            runs += 1;
            run(good)?
        }
    };
    Ok(Found {
        rate_kib_s: good,
        metrics,
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy: 1 GiB at `rate`, violating every second once rate > `limit`.
    fn toy(limit: u64) -> impl FnMut(u64) -> Result<RunMetrics, ()> {
        move |rate| {
            let secs = (1024.0 * 1024.0) / rate as f64;
            Ok(RunMetrics {
                p50_latency_ms: 1.0,
                p99_latency_ms: 1.0,
                slo_violation_seconds: if rate > limit { secs } else { 0.0 },
                slo_violation_seconds_after_steps: if rate > limit { secs } else { 0.0 },
                resync_seconds: secs,
                reduced_redundancy_seconds: secs,
                direction_changes_per_minute: 0.0,
                completed: true,
            })
        }
    }

    #[test]
    fn finds_a_rate_that_meets_and_just_above_it_does_not() {
        let f = search(1024, 102_400, toy(30_000)).unwrap();
        assert!(f.rate_kib_s <= 30_000, "{f:?}");
        assert!(f.rate_kib_s as f64 >= 30_000.0 * 0.985, "{f:?}");
        assert!(meets(&f.metrics));
        let mut run = toy(30_000);
        let above = run((f.rate_kib_s as f64 * 1.03) as u64).unwrap();
        assert!(!meets(&above));
        assert!(f.runs <= STEPS + 2);
    }

    #[test]
    fn top_rate_when_it_meets_and_floor_when_nothing_does() {
        let f = search(1024, 102_400, toy(u64::MAX)).unwrap();
        assert_eq!(f.rate_kib_s, 102_400);
        assert_eq!(f.runs, 1);
        let f = search(1024, 102_400, toy(10)).unwrap();
        assert_eq!(f.rate_kib_s, 1024);
        assert!(!meets(&f.metrics));
    }
}
