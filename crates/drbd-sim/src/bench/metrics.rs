//! What a run is judged by, computed from its 1 s samples.
//!
//! Definitions (each sample is one 1 s window of plant time):
//! - the resync period is from time 0 until the last resync finished (or
//!   the run's limit); only samples that start inside it count;
//! - `p50_latency_ms` / `p99_latency_ms`: the median over those samples of
//!   the window's p50 / p99 write latency (the worst volume's);
//! - `slo_violation_seconds`: samples whose p99 exceeds the target;
//!   `slo_violation_seconds_after_steps` leaves out the first sample after
//!   a load step (offered load up by more than [`STEP_REL`] over the
//!   previous sample's and by at least [`STEP_MIN_MIB_S`]);
//! - `reduced_redundancy_seconds`: Σ over resyncs of its completion time
//!   (volume-seconds below full redundancy);
//! - `direction_changes_per_minute`: sign changes of the rate the strategy
//!   sets (c-max-rate, summed over resyncs), per minute of the resync
//!   period; constant strategies have none.

use serde::Serialize;

/// A rise in offered load counts as a step above this share …
pub const STEP_REL: f64 = 0.10;
/// … and this many MiB/s.
pub const STEP_MIN_MIB_S: f64 = 5.0;

/// One window of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub start_s: f64,
    /// The worst volume's p50 / p99 write latency, ms.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Offered application writes, all volumes, MiB/s.
    pub offered_mib_s: f64,
    /// The rate the strategy had set during the window, KiB/s (all resyncs).
    pub set_rate_kib_s: f64,
}

/// How a run went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunMetrics {
    pub p50_latency_ms: f64,
    pub p99_latency_ms: f64,
    pub slo_violation_seconds: f64,
    pub slo_violation_seconds_after_steps: f64,
    /// Until the last resync finished (the limit if one did not).
    pub resync_seconds: f64,
    pub reduced_redundancy_seconds: f64,
    pub direction_changes_per_minute: f64,
    /// Every resync finished within the limit.
    pub completed: bool,
}

/// The median (0 for none); NaNs sort last.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Sign changes in a sequence of rates (equal neighbours carry the last
/// direction on).
pub fn direction_changes(rates: &[f64]) -> u32 {
    let mut last = 0i8;
    let mut changes = 0;
    for pair in rates.windows(2) {
        let dir = match pair[1].total_cmp(&pair[0]) {
            std::cmp::Ordering::Greater => 1,
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
        };
        if dir != 0 {
            if last != 0 && dir != last {
                changes += 1;
            }
            last = dir;
        }
    }
    changes
}

/// Whether sample `i` is the first after a load step.
fn after_step(samples: &[Sample], i: usize) -> bool {
    let Some(prev) = i.checked_sub(1).and_then(|p| samples.get(p)) else {
        return false;
    };
    let rise = samples[i].offered_mib_s - prev.offered_mib_s;
    rise > STEP_REL * prev.offered_mib_s && rise >= STEP_MIN_MIB_S
}

/// The metrics of a run: its samples, each resync's completion time
/// (`None` = unfinished at `limit_s`), the SLO's p99 target.
pub fn compute(
    samples: &[Sample],
    done_at_s: &[Option<f64>],
    limit_s: f64,
    target_p99_ms: f64,
) -> RunMetrics {
    let completed = done_at_s.iter().all(Option::is_some);
    let ends: Vec<f64> = done_at_s.iter().map(|d| d.unwrap_or(limit_s)).collect();
    let end = ends.iter().copied().fold(0.0, f64::max);
    let during = samples.iter().take_while(|s| s.start_s < end).count();
    let window = &samples[..during];
    let mut p50: Vec<f64> = window.iter().map(|s| s.p50_ms).collect();
    let mut p99: Vec<f64> = window.iter().map(|s| s.p99_ms).collect();
    let over: Vec<usize> = (0..during)
        .filter(|&i| window[i].p99_ms > target_p99_ms)
        .collect();
    let excused = over.iter().filter(|&&i| after_step(window, i)).count();
    let rates: Vec<f64> = window.iter().map(|s| s.set_rate_kib_s).collect();
    let minutes = end / 60.0;
    RunMetrics {
        p50_latency_ms: median(&mut p50),
        p99_latency_ms: median(&mut p99),
        slo_violation_seconds: over.len() as f64,
        slo_violation_seconds_after_steps: (over.len() - excused) as f64,
        resync_seconds: end,
        reduced_redundancy_seconds: ends.iter().sum(),
        direction_changes_per_minute: if minutes > 0.0 {
            f64::from(direction_changes(&rates)) / minutes
        } else {
            0.0
        },
        completed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, p99: f64, offered: f64, rate: f64) -> Sample {
        Sample {
            start_s: t,
            p50_ms: p99 / 4.0,
            p99_ms: p99,
            offered_mib_s: offered,
            set_rate_kib_s: rate,
        }
    }

    #[test]
    fn slo_seconds_count_windows_over_target_during_the_resync() {
        let p99 = [10.0, 25.0, 19.9, 20.0, 30.0, 50.0, 99.0];
        let s: Vec<Sample> = p99
            .iter()
            .enumerate()
            .map(|(i, &l)| sample(i as f64, l, 50.0, 1000.0))
            .collect();
        // Done at 6 s: the last window (starting at 6) is after the resync.
        let m = compute(&s, &[Some(6.0)], 100.0, 20.0);
        assert_eq!(m.slo_violation_seconds, 3.0); // 25, 30, 50 (20.0 is not over)
        assert_eq!(m.slo_violation_seconds_after_steps, 3.0);
        assert_eq!(m.resync_seconds, 6.0);
        assert!(m.completed);
        assert_eq!(m.p99_latency_ms, (20.0 + 25.0) / 2.0);
        assert_eq!(m.direction_changes_per_minute, 0.0);
    }

    #[test]
    fn the_first_window_after_a_step_is_excused() {
        let s = vec![
            sample(0.0, 10.0, 40.0, 1.0),
            sample(1.0, 30.0, 140.0, 1.0), // step up: excused
            sample(2.0, 30.0, 140.0, 1.0), // still over: counts
            sample(3.0, 10.0, 40.0, 1.0),  // step down
            sample(4.0, 30.0, 42.0, 1.0),  // +2 MiB/s is no step
        ];
        let m = compute(&s, &[None], 5.0, 20.0);
        assert_eq!(m.slo_violation_seconds, 3.0);
        assert_eq!(m.slo_violation_seconds_after_steps, 2.0);
        assert!(!m.completed);
        assert_eq!(m.resync_seconds, 5.0);
    }

    #[test]
    fn direction_changes_ignore_plateaus() {
        assert_eq!(direction_changes(&[1.0, 2.0, 3.0, 3.0, 4.0]), 0);
        assert_eq!(direction_changes(&[1.0, 2.0, 2.0, 1.0, 1.0, 2.0]), 2);
        assert_eq!(direction_changes(&[5.0, 4.0, 5.0, 4.0, 5.0]), 3);
        assert_eq!(direction_changes(&[]), 0);
        // 3 changes over a 60 s resync: 3 per minute.
        let s: Vec<Sample> = (0..60)
            .map(|i| sample(i as f64, 1.0, 1.0, if i % 15 < 8 { 1.0 } else { 2.0 }))
            .collect();
        let m = compute(&s, &[Some(60.0)], 60.0, 20.0);
        let expected = direction_changes(&s.iter().map(|x| x.set_rate_kib_s).collect::<Vec<_>>());
        assert_eq!(expected, 6);
        assert!((m.direction_changes_per_minute - 6.0).abs() < 1e-9);
    }

    #[test]
    fn reduced_redundancy_adds_up_each_resync() {
        let s = vec![sample(0.0, 1.0, 1.0, 1.0); 1];
        let m = compute(&s, &[Some(100.0), Some(300.0), None], 1000.0, 20.0);
        assert_eq!(m.resync_seconds, 1000.0);
        assert_eq!(m.reduced_redundancy_seconds, 1400.0);
        assert!(!m.completed);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}
