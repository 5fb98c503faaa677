//! The floor and ceiling of one step of the law (see `law.rs`).

use super::law::{LawPolicy, Observation};
use super::rate::KibPerSec;

/// The floor and ceiling for this step. The floor doubles every
/// `floor_doubling` at reduced redundancy (every half of it with at most
/// one UpToDate replica left), up to `floor_cap`; it never exceeds the
/// ceiling.
pub fn bounds(policy: &LawPolicy, obs: &Observation) -> (KibPerSec, KibPerSec) {
    let ceiling = match obs.configured_c_max_rate {
        Some(configured) => policy.max_rate.min(configured),
        None => policy.max_rate,
    };
    // The NIC is the bottleneck: the resync gets what replication leaves.
    let ceiling = match obs
        .network_headroom_kib_per_sec
        .filter(|h| h.is_finite() && *h >= 0.0)
    {
        Some(headroom) => {
            ceiling.min(KibPerSec::saturating_from_f64(headroom).max(policy.min_rate))
        }
        None => ceiling,
    };
    let period = if obs.uptodate_replicas <= 1 {
        policy.floor_doubling.as_secs_f64() / 2.0
    } else {
        policy.floor_doubling.as_secs_f64()
    };
    let doublings = if period > 0.0 {
        (obs.reduced_redundancy_for.as_secs_f64() / period).clamp(0.0, 40.0)
    } else {
        0.0
    };
    let risen = policy.min_rate.as_f64() * doublings.exp2();
    let cap = policy.floor_cap.max(policy.min_rate).as_f64();
    let floor = KibPerSec::saturating_from_f64(risen.min(cap)).max(policy.min_rate);
    (floor.min(ceiling), ceiling)
}
