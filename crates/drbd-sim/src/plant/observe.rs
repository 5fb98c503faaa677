//! What the plant shows every second: per volume the application's write
//! latency (p50/p99/mean from the tick mixture) and throughput, per node the
//! backing disk, per resync its rate and progress.

use super::{NodeId, ResyncId, VolumeId};

/// Latency samples of one window: per tick, `n` I/Os whose latency is
/// `base_ms` + an exponential with mean `mean_ms`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyMix {
    parts: Vec<(f64, f64, f64)>,
}

impl LatencyMix {
    pub fn add(&mut self, n: f64, base_ms: f64, mean_ms: f64) {
        if n > 0.0 && base_ms.is_finite() && mean_ms.is_finite() {
            self.parts.push((n, base_ms.max(0.0), mean_ms.max(1e-9)));
        }
    }

    pub fn clear(&mut self) {
        self.parts.clear();
    }

    pub fn count(&self) -> f64 {
        self.parts.iter().map(|p| p.0).sum()
    }

    /// Mean latency, ms (0 without samples).
    pub fn mean(&self) -> f64 {
        let n = self.count();
        if n <= 0.0 {
            return 0.0;
        }
        self.parts.iter().map(|(k, b, m)| k * (b + m)).sum::<f64>() / n
    }

    /// Share of samples at or below `x` ms.
    fn cdf(&self, x: f64) -> f64 {
        let n = self.count();
        let below: f64 = self
            .parts
            .iter()
            .map(|(k, b, m)| {
                if x <= *b {
                    0.0
                } else {
                    k * (1.0 - (-(x - b) / m).exp())
                }
            })
            .sum();
        below / n
    }

    /// The `p` quantile (0 < p < 1), ms, by bisection (0 without samples).
    pub fn quantile(&self, p: f64) -> f64 {
        if self.parts.is_empty() {
            return 0.0;
        }
        // The mixture's quantile lies between its parts' quantiles.
        let q = -(1.0 - p.clamp(1e-9, 1.0 - 1e-9)).ln();
        let part_quantile = |&(_, b, m): &(f64, f64, f64)| b + m * q;
        let mut lo = self
            .parts
            .iter()
            .map(part_quantile)
            .fold(f64::INFINITY, f64::min);
        let mut hi = self.parts.iter().map(part_quantile).fold(0.0, f64::max);
        for _ in 0..32 {
            if hi - lo <= 1e-9 * hi {
                break;
            }
            let mid = (lo + hi) / 2.0;
            if self.cdf(mid) < p {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (lo + hi) / 2.0
    }
}

/// One volume's application I/O over a window (on its Primary).
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeWindow {
    pub volume: VolumeId,
    pub name: String,
    pub write_p50_ms: f64,
    pub write_p99_ms: f64,
    pub write_mean_ms: f64,
    /// Writes completed, MiB/s.
    pub write_mib_s: f64,
    /// Writes the load profile asked for, MiB/s.
    pub offered_write_mib_s: f64,
    pub read_mib_s: f64,
    /// Mean I/Os in flight on the DRBD device.
    pub queue_depth: f64,
}

/// One node's backing disk over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeWindow {
    pub node: NodeId,
    pub name: String,
    /// Mean offered utilisation (may exceed 1 when overloaded).
    pub utilisation: f64,
    pub mean_latency_ms: f64,
    pub queue_depth: f64,
    pub read_mib_s: f64,
    pub write_mib_s: f64,
}

/// One resync over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct ResyncWindow {
    pub resync: ResyncId,
    /// Data resynced in the window, KiB/s.
    pub rate_kib_s: f64,
    pub left_kib: f64,
    /// Plant time the resync finished, s.
    pub done_at_s: Option<f64>,
    /// Ticks in the window the SyncTarget's c-min-rate held back requests.
    pub target_throttled_ticks: u32,
    /// Ticks in the window the SyncSource's c-min-rate slowed its reads.
    pub source_throttled_ticks: u32,
}

/// Everything observed over one second of plant time.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub start_s: f64,
    pub end_s: f64,
    pub volumes: Vec<VolumeWindow>,
    pub nodes: Vec<NodeWindow>,
    pub resyncs: Vec<ResyncWindow>,
}

/// Per-volume sums while a window fills.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct VolumeAcc {
    pub writes: LatencyMix,
    pub write_kib: f64,
    pub offered_write_kib: f64,
    pub read_kib: f64,
    pub waited_ms: f64,
}

/// Per-node sums while a window fills.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct NodeAcc {
    pub rho: f64,
    pub ios: f64,
    pub waited_ms: f64,
    pub read_kib: f64,
    pub write_kib: f64,
}

/// Per-resync sums while a window fills.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ResyncAcc {
    pub done_kib: f64,
    pub target_throttled: u32,
    pub source_throttled: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_mixture_has_the_textbook_percentiles() {
        let mut mix = LatencyMix::default();
        for _ in 0..10 {
            mix.add(100.0, 0.0, 2.0);
        }
        assert!((mix.mean() - 2.0).abs() < 1e-9);
        assert!((mix.quantile(0.5) - 2.0 * 2f64.ln()).abs() < 1e-6);
        assert!((mix.quantile(0.99) - 2.0 * 100f64.ln()).abs() < 1e-6);
    }

    #[test]
    fn base_shifts_every_sample() {
        let mut mix = LatencyMix::default();
        mix.add(1.0, 5.0, 1.0);
        assert!(mix.quantile(0.01) >= 5.0);
        assert_eq!(LatencyMix::default().quantile(0.99), 0.0);
    }
}
