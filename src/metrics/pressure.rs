//! The cross-node pressure's series, rendered with the throttle's from its
//! status (`ThrottleStatus::pressure`; absent while `[pressure]` is off):
//!
//! - `drbd_agent_pressure_published{name,volume}`: the pressure this node
//!   publishes for a volume it is Primary of (write latency / target;
//!   absent without writes).
//! - `drbd_agent_pressure_peer_up{peer}`: 1 if the last fetch from the
//!   peer's agent succeeded.
//! - `drbd_agent_pressure_fetches_total{peer,result}`: fetches by result.
//! - `drbd_agent_throttle_signal_from_peer{name,peer_node_id,volume}`: 1
//!   while a peer's pressure steers a SyncTarget peer device, 0 while its
//!   local signals do.

use super::family::{Def, Kind, Spec};
use crate::throttle::ThrottleStatus;

/// The fetch results, in output order (every one has a series per peer).
const RESULTS: [&str; 8] = [
    "ok",
    "unreachable",
    "timeout",
    "unauthorized",
    "bad-status",
    "garbage",
    "no-address",
    crate::pressure::fetch::PLAIN_HTTP_TOKEN_REFUSED,
];

/// The pressure families.
pub(super) fn defs() -> Vec<Def<ThrottleStatus>> {
    vec![
        Def {
            spec: Spec {
                name: "drbd_agent_pressure_published",
                help: "Write latency over target of a volume this node is Primary of, as published to peers; absent without writes.",
                kind: Kind::Gauge,
                labels: &["name", "volume"],
            },
            fill: |status, w| {
                let Some(p) = &status.pressure else {
                    return Ok(());
                };
                for v in &p.published {
                    if let Some(value) = v.pressure.filter(|x| x.is_finite()) {
                        w.add(&[&v.resource, &v.volume.to_string()], value)?;
                    }
                }
                Ok(())
            },
        },
        Def {
            spec: Spec {
                name: "drbd_agent_pressure_peer_up",
                help: "1 if the last pressure fetch from the peer's agent succeeded.",
                kind: Kind::Gauge,
                labels: &["peer"],
            },
            fill: |status, w| {
                let Some(p) = &status.pressure else {
                    return Ok(());
                };
                for (node, peer) in &p.peers {
                    w.add_bool(&[node], peer.up)?;
                }
                Ok(())
            },
        },
        Def {
            spec: Spec {
                name: "drbd_agent_pressure_fetches_total",
                help: "Pressure fetches from a peer's agent by result.",
                kind: Kind::Counter,
                labels: &["peer", "result"],
            },
            fill: |status, w| {
                let Some(p) = &status.pressure else {
                    return Ok(());
                };
                for (node, peer) in &p.peers {
                    for result in RESULTS {
                        w.add_u64(&[node, result], peer.fetches.get(result).copied().unwrap_or(0))?;
                    }
                }
                Ok(())
            },
        },
        Def {
            spec: Spec {
                name: "drbd_agent_throttle_signal_from_peer",
                help: "1 while a peer's pressure steers the throttle of a SyncTarget peer device, 0 while local signals do.",
                kind: Kind::Gauge,
                labels: &["name", "peer_node_id", "volume"],
            },
            fill: |status, w| {
                for peer in status.peers.values() {
                    let Some(signal) = &peer.signal else {
                        continue;
                    };
                    w.add_bool(
                        &[
                            &peer.resource,
                            &peer.peer_node_id.to_string(),
                            &peer.volume.to_string(),
                        ],
                        signal.kind() == "peer",
                    )?;
                }
                Ok(())
            },
        },
    ]
}
