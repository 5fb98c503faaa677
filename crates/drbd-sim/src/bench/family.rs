//! `drbd-agent bench throttle family`: a family of plants unlike the
//! built-in scenarios, to judge the model-based law on what it was not
//! tuned on.
//!
//! Each [`Plant`] is one queueing disk per node (no-load service time S,
//! capacity C, per-tick log-normal latency noise), a fast link, and an
//! application writing 64 KiB requests at a share of C — steady, or one
//! step up or down — while a resync runs into the SyncTarget. The agent
//! steers either a **Secondary SyncTarget** (its signal: the backing
//! device, shared by the replicated writes and the resync) or a **Primary
//! SyncTarget** (its signal: its own DRBD device, protocol C: the slower
//! of the local write and the peer's plus the link delay).
//!
//! The mean-latency target of each plant is set from its parameters so
//! that the oracle gives the resync `headroom` of what the higher
//! application load leaves. The oracle rate at each moment is the constant
//! rate that just meets the target under that moment's load, computed
//! from the plant's own parameters ([`Plant::oracle_utilisation`]): the
//! total utilisation ρ* at which the expected window latency equals the
//! target, minus the application's share.
//!
//! Pure and deterministic (fixed seeds); running is in `family_run.rs`.

use serde::Serialize;

use crate::plant::{DiskSpec, LinkSpec};

/// Which node the agent runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The SyncTarget is a Secondary: the signal is its backing device.
    Secondary,
    /// The SyncTarget is the Primary: the signal is its DRBD device.
    Primary,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secondary => "sec",
            Self::Primary => "pri",
        }
    }
}

/// One plant of the family.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Plant {
    pub role: Role,
    /// No-load service time, ms.
    pub service_ms: f64,
    /// Disk capacity, MiB/s.
    pub capacity_mib_s: f64,
    /// Log-normal latency noise per 100 ms tick (≈ noise / √10 on a 1 s
    /// window).
    pub noise: f64,
    /// Application load as a share of the capacity, before and after the
    /// step (equal: steady).
    pub app_before: f64,
    pub app_after: f64,
    /// Share of what the higher application load leaves that the oracle
    /// gives the resync.
    pub headroom: f64,
    pub seed: u64,
}

/// Link round trip of every plant, ms.
pub const RTT_MS: f64 = 0.05;
/// Link bandwidth of every plant, MiB/s (never the bottleneck).
pub const LINK_MIB_S: f64 = 20_000.0;
/// Application and resync request size, KiB.
pub const IO_KIB: f64 = 64.0;
/// Length of a steady run, s; step runs step at `STEP_AT_S` and last
/// `STEP_AT_S + AFTER_STEP_S`.
pub const STEADY_S: f64 = 120.0;
pub const STEP_AT_S: f64 = 60.0;
pub const AFTER_STEP_S: f64 = 60.0;

impl Plant {
    /// e.g. `pri S1.0 C350 n0.15 app50>20`.
    pub fn name(&self) -> String {
        let app = if self.is_step() {
            format!(
                "{:.0}>{:.0}",
                self.app_before * 100.0,
                self.app_after * 100.0
            )
        } else {
            format!("{:.0}", self.app_before * 100.0)
        };
        format!(
            "{} S{} C{:.0} n{:.2} app{}",
            self.role.as_str(),
            self.service_ms,
            self.capacity_mib_s,
            self.noise,
            app
        )
    }

    pub fn is_step(&self) -> bool {
        (self.app_before - self.app_after).abs() > 1e-9
    }

    /// Plant time the run lasts, s.
    pub fn duration_s(&self) -> f64 {
        if self.is_step() {
            STEP_AT_S + AFTER_STEP_S
        } else {
            STEADY_S
        }
    }

    /// The application's write rate at `t_s`, MiB/s.
    pub fn app_mib_s(&self, t_s: f64) -> f64 {
        let share = if self.is_step() && t_s >= STEP_AT_S {
            self.app_after
        } else {
            self.app_before
        };
        share * self.capacity_mib_s
    }

    pub fn disk(&self) -> DiskSpec {
        DiskSpec {
            capacity_mib_s: self.capacity_mib_s,
            // Bandwidth binds, not IOPS (64 KiB requests).
            capacity_iops: self.capacity_mib_s * 1024.0 / IO_KIB * 10.0,
            service_ms: self.service_ms,
            // Deep enough that the queue, not its limit, sets the latency.
            queue_limit: 1.0e6,
            noise: self.noise,
        }
    }

    pub fn link(&self) -> LinkSpec {
        LinkSpec {
            bandwidth_mib_s: LINK_MIB_S,
            rtt_ms: RTT_MS,
        }
    }

    /// The total utilisation the oracle allows (what the target is set
    /// from).
    pub fn oracle_utilisation(&self) -> f64 {
        let top = self.app_before.max(self.app_after);
        top + self.headroom * (1.0 - top)
    }

    /// The mean-latency target, ms: the expected window latency of the
    /// agent's signal at [`oracle_utilisation`](Self::oracle_utilisation).
    pub fn target_ms(&self) -> f64 {
        self.expected_latency_ms(self.oracle_utilisation())
    }

    /// Expected mean latency of the agent's signal over a window at total
    /// disk utilisation `rho`: the queue's S / (1 − ρ) on the backing
    /// device; on the Primary's DRBD device the slower of the local write
    /// and the link delay plus the peer's (both disks equally loaded,
    /// independent noise), by quadrature over the two noises.
    pub fn expected_latency_ms(&self, rho: f64) -> f64 {
        let queue = self.service_ms / (1.0 - rho.clamp(0.0, 0.999));
        match self.role {
            Role::Secondary => queue,
            Role::Primary => {
                let link_rho = self.app_mib_s(0.0).max(self.app_mib_s(f64::MAX)) / LINK_MIB_S;
                let delay = RTT_MS + IO_KIB / (LINK_MIB_S * 1024.0) * 1000.0 / (1.0 - link_rho);
                expected_max(queue, delay, self.noise)
            }
        }
    }

    /// The oracle resync rate at `t_s`, KiB/s (never below 0).
    pub fn oracle_kib_s(&self, t_s: f64) -> f64 {
        let total = self.oracle_utilisation() * self.capacity_mib_s;
        ((total - self.app_mib_s(t_s)) * 1024.0).max(0.0)
    }
}

/// E[max(w·e₁, d + w·e₂)] for independent log-normal e (mean 1, σ).
fn expected_max(w: f64, d: f64, sigma: f64) -> f64 {
    if sigma <= 0.0 {
        return w + d;
    }
    const POINTS: usize = 81;
    let z = |i: usize| -6.0 + 12.0 * i as f64 / (POINTS - 1) as f64;
    let pdf = |x: f64| (-0.5 * x * x).exp();
    let e = |x: f64| (sigma * x - sigma * sigma / 2.0).exp();
    let (mut sum, mut weight) = (0.0, 0.0);
    for i in 0..POINTS {
        for j in 0..POINTS {
            let p = pdf(z(i)) * pdf(z(j));
            sum += p * (w * e(z(i))).max(d + w * e(z(j)));
            weight += p;
        }
    }
    sum / weight
}

/// The family: a spread of S, C, noise, load and role (each value of each
/// parameter several times, in different combinations; none of them the
/// built-in scenarios' disk), and two stress plants with 1 s noise of
/// ≈ 25 %.
pub fn plants() -> Vec<Plant> {
    // (role, S ms, C MiB/s, noise, app before, app after, headroom)
    let rows: [(Role, f64, f64, f64, f64, f64, f64); 20] = [
        (Role::Secondary, 0.3, 100.0, 0.05, 0.2, 0.2, 0.5),
        (Role::Primary, 1.0, 350.0, 0.15, 0.5, 0.5, 0.5),
        (Role::Secondary, 3.0, 1000.0, 0.25, 0.8, 0.8, 0.5),
        (Role::Primary, 0.3, 1000.0, 0.15, 0.2, 0.2, 0.35),
        (Role::Secondary, 1.0, 100.0, 0.25, 0.5, 0.5, 0.65),
        (Role::Primary, 3.0, 350.0, 0.05, 0.8, 0.8, 0.5),
        (Role::Secondary, 0.5, 600.0, 0.15, 0.35, 0.35, 0.5),
        (Role::Primary, 2.0, 150.0, 0.25, 0.65, 0.65, 0.5),
        (Role::Secondary, 0.3, 350.0, 0.15, 0.2, 0.6, 0.5),
        (Role::Primary, 1.0, 1000.0, 0.05, 0.6, 0.2, 0.5),
        (Role::Secondary, 3.0, 100.0, 0.15, 0.3, 0.8, 0.5),
        (Role::Primary, 0.3, 600.0, 0.25, 0.8, 0.3, 0.5),
        (Role::Secondary, 1.0, 150.0, 0.05, 0.2, 0.5, 0.5),
        (Role::Primary, 3.0, 1000.0, 0.15, 0.5, 0.2, 0.35),
        (Role::Secondary, 2.0, 350.0, 0.25, 0.4, 0.7, 0.65),
        (Role::Primary, 0.5, 100.0, 0.15, 0.7, 0.4, 0.5),
        (Role::Secondary, 1.0, 600.0, 0.15, 0.8, 0.2, 0.5),
        (Role::Primary, 1.0, 350.0, 0.25, 0.2, 0.8, 0.5),
        // Stress: per-tick noise 0.8 (≈ 25 % on a 1 s window).
        (Role::Secondary, 1.0, 350.0, 0.8, 0.5, 0.5, 0.5),
        (Role::Primary, 0.5, 600.0, 0.8, 0.3, 0.6, 0.5),
    ];
    rows.iter()
        .enumerate()
        .map(|(i, &(role, s, c, noise, before, after, headroom))| Plant {
            role,
            service_ms: s,
            capacity_mib_s: c,
            noise,
            app_before: before,
            app_after: after,
            headroom,
            seed: 1000 + i as u64,
        })
        .collect()
}

/// A second family the law's constants were NOT tuned on (added after the
/// last change to the law, run once): other S, C, noise and load values,
/// other combinations, other seeds, the same ranges as the issue's.
pub fn unseen_plants() -> Vec<Plant> {
    // (role, S ms, C MiB/s, noise, app before, app after, headroom)
    let rows: [(Role, f64, f64, f64, f64, f64, f64); 12] = [
        (Role::Primary, 0.4, 120.0, 0.2, 0.3, 0.3, 0.5),
        (Role::Secondary, 0.7, 800.0, 0.08, 0.6, 0.6, 0.5),
        (Role::Primary, 2.5, 450.0, 0.12, 0.25, 0.25, 0.6),
        (Role::Secondary, 1.5, 250.0, 0.2, 0.75, 0.75, 0.4),
        (Role::Primary, 0.7, 250.0, 0.08, 0.45, 0.45, 0.5),
        (Role::Secondary, 2.5, 120.0, 0.12, 0.4, 0.4, 0.55),
        (Role::Secondary, 0.4, 450.0, 0.12, 0.25, 0.7, 0.5),
        (Role::Primary, 1.5, 800.0, 0.2, 0.7, 0.25, 0.5),
        (Role::Secondary, 0.7, 120.0, 0.2, 0.55, 0.3, 0.45),
        (Role::Primary, 2.5, 250.0, 0.08, 0.35, 0.75, 0.5),
        (Role::Secondary, 1.5, 800.0, 0.12, 0.75, 0.45, 0.6),
        (Role::Primary, 0.4, 450.0, 0.2, 0.3, 0.55, 0.4),
    ];
    rows.iter()
        .enumerate()
        .map(|(i, &(role, s, c, noise, before, after, headroom))| Plant {
            role,
            service_ms: s,
            capacity_mib_s: c,
            noise,
            app_before: before,
            app_after: after,
            headroom,
            seed: 7919 + 13 * i as u64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_meet_the_oracle_utilisation_and_the_oracle_is_positive() {
        for p in plants().into_iter().chain(unseen_plants()) {
            let t = p.target_ms();
            let rho = p.oracle_utilisation();
            assert!(t > p.service_ms && t.is_finite(), "{}", p.name());
            assert!((p.expected_latency_ms(rho) - t).abs() < 1e-9);
            assert!(p.expected_latency_ms(rho + 0.01) > t);
            for at in [0.0, STEP_AT_S + 1.0] {
                assert!(p.oracle_kib_s(at) > 0.0, "{}", p.name());
            }
        }
    }

    #[test]
    fn the_max_of_two_noisy_latencies_is_above_either_mean() {
        let m = expected_max(1.0, 0.1, 0.25);
        assert!(m > 1.1 && m < 1.4, "{m}");
        assert!((expected_max(1.0, 0.1, 0.0) - 1.1).abs() < 1e-12);
    }
}
