//! A network link between two nodes, shared by replication and resync.
//!
//! Each direction has the full bandwidth (a full-duplex NIC). Per tick:
//!
//! 1. replication (the Primary's writes mirrored to a peer) is served
//!    first; if it alone exceeds the bandwidth only that share gets
//!    through and the application's writes are held back accordingly;
//! 2. resync data gets what remains, split between the resyncs on that
//!    direction by water-filling (equal shares, a resync needing less than
//!    its share leaves the rest to the others).
//!
//! Replication still feels resync traffic in its latency: both share the
//! TCP stream and the NIC queue, so a replicated write's network delay is
//! RTT + its serialisation time / (1 − ρ_link), with ρ_link the link's total
//! utilisation (clamped like a disk's).

use super::disk::{positive, RHO_MAX};
use super::PlantError;

/// What a link can do (each direction).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkSpec {
    /// Bandwidth per direction, MiB/s.
    pub bandwidth_mib_s: f64,
    /// Round-trip time, ms.
    pub rtt_ms: f64,
}

impl Default for LinkSpec {
    /// 10 GbE on a LAN.
    fn default() -> Self {
        Self {
            bandwidth_mib_s: 1150.0,
            rtt_ms: 0.2,
        }
    }
}

impl LinkSpec {
    pub fn validate(&self) -> Result<(), PlantError> {
        positive("link.bandwidth_mib_s", self.bandwidth_mib_s)?;
        if !self.rtt_ms.is_finite() || self.rtt_ms < 0.0 {
            return Err(PlantError::Invalid {
                field: "link.rtt_ms",
                reason: format!("{} is not a finite number >= 0", self.rtt_ms),
            });
        }
        Ok(())
    }

    /// KiB one direction carries in `dt_s`.
    pub fn capacity_kib(&self, dt_s: f64) -> f64 {
        self.bandwidth_mib_s * 1024.0 * dt_s.max(0.0)
    }
}

/// One direction's share-out for a tick.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkShare {
    /// Share of the offered replication that gets through (≤ 1).
    pub replication_accept: f64,
    /// KiB granted to each resync, in the order asked.
    pub resync_kib: Vec<f64>,
    /// Total utilisation after the share-out (≤ 1).
    pub rho: f64,
}

/// Shares one direction of `spec` over `dt_s` between `replication_kib`
/// and the resyncs asking for `resync_demand_kib`.
pub fn share(
    spec: &LinkSpec,
    dt_s: f64,
    replication_kib: f64,
    resync_demand_kib: &[f64],
) -> LinkShare {
    let capacity = spec.capacity_kib(dt_s);
    let replication = replication_kib.max(0.0);
    let replication_accept = if replication > capacity && replication > 0.0 {
        capacity / replication
    } else {
        1.0
    };
    let left = (capacity - replication).max(0.0);
    let resync_kib = water_fill(left, resync_demand_kib);
    let used = replication.min(capacity) + resync_kib.iter().sum::<f64>();
    let rho = if capacity > 0.0 {
        (used / capacity).min(1.0)
    } else {
        1.0
    };
    LinkShare {
        replication_accept,
        resync_kib,
        rho,
    }
}

/// Splits `total` between demands: equal shares, capped by each demand.
pub fn water_fill(total: f64, demands: &[f64]) -> Vec<f64> {
    let mut grant = vec![0.0; demands.len()];
    let mut open: Vec<usize> = (0..demands.len()).filter(|&i| demands[i] > 0.0).collect();
    let mut left = total.max(0.0);
    while !open.is_empty() && left > 1e-12 {
        let each = left / open.len() as f64;
        let mut still = Vec::with_capacity(open.len());
        let mut given = 0.0;
        for &i in &open {
            let want = demands[i] - grant[i];
            if want <= each {
                grant[i] += want;
                given += want;
            } else {
                grant[i] += each;
                given += each;
                still.push(i);
            }
        }
        left -= given;
        if still.len() == open.len() {
            break; // everyone took a full share: nothing left over
        }
        open = still;
    }
    grant
}

/// Network part of a replicated write of `io_kib`, ms: RTT plus
/// serialisation, queued behind a link at utilisation `rho`.
pub fn write_delay_ms(spec: &LinkSpec, io_kib: f64, rho: f64) -> f64 {
    let serialise_ms = io_kib.max(0.0) / (spec.bandwidth_mib_s * 1024.0) * 1000.0;
    spec.rtt_ms + serialise_ms / (1.0 - rho.clamp(0.0, RHO_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_first_resync_gets_the_rest() {
        let spec = LinkSpec {
            bandwidth_mib_s: 100.0,
            rtt_ms: 1.0,
        };
        let s = share(&spec, 1.0, 60.0 * 1024.0, &[100.0 * 1024.0]);
        assert_eq!(s.replication_accept, 1.0);
        assert!((s.resync_kib[0] - 40.0 * 1024.0).abs() < 1e-6);
        assert!((s.rho - 1.0).abs() < 1e-9);
    }

    #[test]
    fn replication_beyond_the_link_is_held_back() {
        let spec = LinkSpec {
            bandwidth_mib_s: 100.0,
            rtt_ms: 1.0,
        };
        let s = share(&spec, 1.0, 200.0 * 1024.0, &[10.0]);
        assert!((s.replication_accept - 0.5).abs() < 1e-9);
        assert_eq!(s.resync_kib, vec![0.0]);
    }

    #[test]
    fn water_filling_gives_small_demands_in_full() {
        let g = water_fill(90.0, &[10.0, 100.0, 100.0, 0.0]);
        assert_eq!(g, vec![10.0, 40.0, 40.0, 0.0]);
        let g = water_fill(90.0, &[10.0, 20.0]);
        assert_eq!(g, vec![10.0, 20.0]);
    }

    #[test]
    fn delay_grows_with_utilisation() {
        let spec = LinkSpec::default();
        let idle = write_delay_ms(&spec, 64.0, 0.0);
        let busy = write_delay_ms(&spec, 64.0, 0.95);
        assert!(idle >= spec.rtt_ms && busy > idle && busy.is_finite());
    }
}
