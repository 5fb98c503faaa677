//! The resync throttle's series (`drbd_agent_throttle_*`), rendered on every
//! scrape from its [`ThrottleStatus`] (a few series per followed peer
//! device) and merged into the agent part.
//!
//! - `drbd_agent_throttle_enabled` 0/1; `drbd_agent_throttle_mode{mode}` one
//!   series per mode, 1 for the current (absent while disabled).
//! - Per SyncTarget peer device the throttle follows (labels `name`,
//!   `peer_node_id`, `volume`): the rate it set (absent while not in
//!   charge, e.g. in observe mode), the observed latency (absent while
//!   unknown, never NaN), the target, the floor and the controller state
//!   (absent before the first step), reverts and failures.
//! - Per peer device, the queue model (absent before the first step): in
//!   use 0/1, the fallback reason (one series per reason), and with a fit
//!   its S, C and set point.
//! - Node counters: reverts, actuation failures, restores, journal errors.

use super::family::{Def, FamilyWriter, Kind, Spec};
use super::MetricsError;
use crate::throttle::{ControlState, Mode, PeerStatus, ThrottleStatus, Unfit};

/// Bytes per KiB: the status holds KiB/s, the metrics bytes/s.
const KIB: f64 = 1024.0;

/// The label names of the per peer device families (those of the
/// `drbd_peerdevice_*` families, without `conn_name`, which the throttle
/// does not track).
const PEER_LABELS: &[&str] = &["name", "peer_node_id", "volume"];

/// The label names of `drbd_agent_throttle_state`.
const STATE_LABELS: &[&str] = &["name", "peer_node_id", "volume", "state"];

/// The label names of `drbd_agent_throttle_model_fallback`.
const FALLBACK_LABELS: &[&str] = &["name", "peer_node_id", "volume", "reason"];

/// Every mode, in output order.
const MODES: [Mode; 2] = [Mode::Enforce, Mode::Observe];

/// Every controller state, in output order.
const STATES: [ControlState; 5] = [
    ControlState::Holding,
    ControlState::Increasing,
    ControlState::BackingOff,
    ControlState::Floor,
    ControlState::AtCeiling,
];

/// The wire name of a mode (as in the configuration and `/v1/status`).
fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "enforce",
        Mode::Observe => "observe",
    }
}

/// Position in [`STATES`]: the exhaustive match makes a new state a
/// compile error here, so the list cannot silently fall behind.
fn state_index(state: ControlState) -> usize {
    match state {
        ControlState::Holding => 0,
        ControlState::Increasing => 1,
        ControlState::BackingOff => 2,
        ControlState::Floor => 3,
        ControlState::AtCeiling => 4,
    }
}

const fn spec(
    name: &'static str,
    help: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
) -> Spec {
    Spec {
        name,
        help,
        kind,
        labels,
    }
}

/// Writes one series per peer device with the value `value` gives
/// (none for `None` or a value that is not finite).
fn per_peer(
    status: &ThrottleStatus,
    w: &mut FamilyWriter<'_>,
    value: impl Fn(&PeerStatus) -> Option<f64>,
) -> Result<(), MetricsError> {
    for peer in status.peers.values() {
        let Some(v) = value(peer).filter(|v| v.is_finite()) else {
            continue;
        };
        let node = peer.peer_node_id.to_string();
        let volume = peer.volume.to_string();
        w.add(&[&peer.resource, &node, &volume], v)?;
    }
    Ok(())
}

/// A per peer device family whose value comes from `$value` (a closure
/// from `&PeerStatus` to `Option<f64>`).
macro_rules! peer_family {
    ($name:literal, $help:literal, $kind:expr, $value:expr) => {
        Def {
            spec: spec($name, $help, $kind, PEER_LABELS),
            fill: |status, w| per_peer(status, w, $value),
        }
    };
}

/// A node counter from one `ThrottleStatus` field.
macro_rules! node_counter {
    ($name:literal, $help:literal, $field:ident) => {
        Def {
            spec: spec($name, $help, Kind::Counter, &[]),
            fill: |status, w| w.add_u64(&[], status.$field),
        }
    };
}

/// The `drbd_agent_throttle_*` families.
pub(super) fn defs() -> Vec<Def<ThrottleStatus>> {
    vec![
        Def {
            spec: spec(
                "drbd_agent_throttle_enabled",
                "1 while the resync throttle runs (`[throttle] enabled`).",
                Kind::Gauge,
                &[],
            ),
            fill: |status, w| w.add_bool(&[], status.enabled),
        },
        Def {
            spec: spec(
                "drbd_agent_throttle_mode",
                "The resync throttle's mode, one series per mode, 1 for the current; absent while disabled.",
                Kind::Gauge,
                &["mode"],
            ),
            fill: |status, w| {
                let Some(current) = status.mode.filter(|_| status.enabled) else {
                    return Ok(());
                };
                for mode in MODES {
                    w.add_bool(&[mode_name(mode)], mode == current)?;
                }
                Ok(())
            },
        },
        peer_family!(
            "drbd_agent_throttle_resync_rate_bytes_per_second",
            "The c-max-rate the throttle set on a SyncTarget peer device; absent while not in charge.",
            Kind::Gauge,
            |p: &PeerStatus| p.rate_set_kib.map(|kib| kib as f64 * KIB)
        ),
        peer_family!(
            "drbd_agent_throttle_latency_seconds",
            "Application I/O latency the throttle compared with its target; absent while unknown.",
            Kind::Gauge,
            |p: &PeerStatus| p.decision.and_then(|d| d.latency_ms).map(|ms| ms / 1000.0)
        ),
        peer_family!(
            "drbd_agent_throttle_latency_target_seconds",
            "The latency target in force for a SyncTarget peer device.",
            Kind::Gauge,
            |p: &PeerStatus| Some(p.latency_target_ms / 1000.0)
        ),
        peer_family!(
            "drbd_agent_throttle_floor_bytes_per_second",
            "The lowest rate the throttle may set now; absent before its first step.",
            Kind::Gauge,
            |p: &PeerStatus| p.decision.map(|d| d.floor.as_f64() * KIB)
        ),
        Def {
            spec: spec(
                "drbd_agent_throttle_state",
                "The throttle controller's state per peer device, one series per state, 1 for the current; absent before its first step.",
                Kind::Gauge,
                STATE_LABELS,
            ),
            fill: |status, w| {
                for peer in status.peers.values() {
                    let Some(decision) = peer.decision else {
                        continue;
                    };
                    let node = peer.peer_node_id.to_string();
                    let volume = peer.volume.to_string();
                    let current = state_index(decision.state);
                    for state in STATES {
                        w.add_bool(
                            &[&peer.resource, &node, &volume, state.as_str()],
                            state_index(state) == current,
                        )?;
                    }
                }
                Ok(())
            },
        },
        peer_family!(
            "drbd_agent_throttle_model_in_use",
            "1 while the queue model steers the rate of a SyncTarget peer device, 0 while the feedback law does; absent before its first step.",
            Kind::Gauge,
            |p: &PeerStatus| p.model.map(|m| if m.in_use { 1.0 } else { 0.0 })
        ),
        Def {
            spec: spec(
                "drbd_agent_throttle_model_fallback",
                "Why the feedback law decided instead of the queue model, one series per reason, 1 for the current (all 0 while the model steers); absent before the first step.",
                Kind::Gauge,
                FALLBACK_LABELS,
            ),
            fill: |status, w| {
                for peer in status.peers.values() {
                    let Some(model) = peer.model else {
                        continue;
                    };
                    let node = peer.peer_node_id.to_string();
                    let volume = peer.volume.to_string();
                    for reason in Unfit::ALL {
                        w.add_bool(
                            &[&peer.resource, &node, &volume, reason.as_str()],
                            model.fallback == Some(reason),
                        )?;
                    }
                }
                Ok(())
            },
        },
        peer_family!(
            "drbd_agent_throttle_model_service_seconds",
            "The queue model's no-load latency S of the bottleneck; absent without a fit.",
            Kind::Gauge,
            |p: &PeerStatus| p.model.and_then(|m| m.fit).map(|f| f.service_ms / 1000.0)
        ),
        peer_family!(
            "drbd_agent_throttle_model_capacity_bytes_per_second",
            "The queue model's capacity C of the bottleneck (application and resync together); absent without a fit.",
            Kind::Gauge,
            |p: &PeerStatus| p
                .model
                .and_then(|m| m.fit)
                .map(|f| f.capacity_kib_per_sec * KIB)
        ),
        peer_family!(
            "drbd_agent_throttle_model_setpoint_seconds",
            "The latency the queue model aims at (the target less the measured noise margin); absent while the model does not steer.",
            Kind::Gauge,
            |p: &PeerStatus| p.model.and_then(|m| m.setpoint_ms).map(|ms| ms / 1000.0)
        ),
        peer_family!(
            "drbd_agent_throttle_peer_reverts_total",
            "Times the options read back from a peer device were not the throttle's.",
            Kind::Counter,
            |p: &PeerStatus| Some(p.reverts as f64)
        ),
        peer_family!(
            "drbd_agent_throttle_peer_failures_total",
            "Failed commands and bad samples for a peer device.",
            Kind::Counter,
            |p: &PeerStatus| Some(p.failures as f64)
        ),
        node_counter!(
            "drbd_agent_throttle_reverts_total",
            "Times options read back were not the throttle's (e.g. after drbdadm adjust).",
            reverts
        ),
        node_counter!(
            "drbd_agent_throttle_actuation_failures_total",
            "Failed commands, unreadable stat files and bad samples of the throttle.",
            failures
        ),
        node_counter!(
            "drbd_agent_throttle_restores_total",
            "Peer devices given back their recorded resync options.",
            restores
        ),
        node_counter!(
            "drbd_agent_throttle_journal_errors_total",
            "Corrupt or foreign throttle journals set aside and journal write failures.",
            journal_errors
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::family::write_sorted;
    use crate::throttle::{Decision, KibPerSec, Reason};

    fn render(status: &ThrottleStatus) -> String {
        let mut out = String::new();
        write_sorted(&mut out, defs(), status).unwrap();
        out
    }

    /// The series lines (no comments).
    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn kib(v: u64) -> KibPerSec {
        KibPerSec::new(v).unwrap()
    }

    fn decision(state: ControlState, latency_ms: Option<f64>) -> Decision {
        Decision {
            rate: kib(20480),
            state,
            reason: Reason::Idle,
            floor: kib(1024),
            ceiling: kib(102_400),
            latency_ms,
        }
    }

    fn peer(resource: &str, node: u32, volume: u32) -> PeerStatus {
        PeerStatus {
            resource: resource.to_owned(),
            peer_node_id: node,
            volume,
            latency_target_ms: 5.0,
            ..PeerStatus::default()
        }
    }

    fn status(peers: Vec<PeerStatus>) -> ThrottleStatus {
        ThrottleStatus {
            enabled: true,
            mode: Some(Mode::Enforce),
            peers: peers
                .into_iter()
                .map(|p| (format!("{}/{}/{}", p.resource, p.peer_node_id, p.volume), p))
                .collect(),
            reverts: 3,
            failures: 4,
            restores: 5,
            journal_errors: 6,
            last_error: Some("boom".to_owned()),
            ..ThrottleStatus::default()
        }
    }

    #[test]
    fn status_in_exact_series_out() {
        let mut charged = peer("r0", 1, 0);
        charged.rate_set_kib = Some(20480);
        charged.decision = Some(decision(ControlState::BackingOff, Some(7.5)));
        charged.reverts = 1;
        charged.failures = 2;
        let text = render(&status(vec![charged]));
        assert_eq!(
            series(&text),
            [
                "drbd_agent_throttle_actuation_failures_total 4",
                "drbd_agent_throttle_enabled 1",
                r#"drbd_agent_throttle_floor_bytes_per_second{name="r0",peer_node_id="1",volume="0"} 1048576"#,
                "drbd_agent_throttle_journal_errors_total 6",
                r#"drbd_agent_throttle_latency_seconds{name="r0",peer_node_id="1",volume="0"} 0.0075"#,
                r#"drbd_agent_throttle_latency_target_seconds{name="r0",peer_node_id="1",volume="0"} 0.005"#,
                r#"drbd_agent_throttle_mode{mode="enforce"} 1"#,
                r#"drbd_agent_throttle_mode{mode="observe"} 0"#,
                r#"drbd_agent_throttle_peer_failures_total{name="r0",peer_node_id="1",volume="0"} 2"#,
                r#"drbd_agent_throttle_peer_reverts_total{name="r0",peer_node_id="1",volume="0"} 1"#,
                "drbd_agent_throttle_restores_total 5",
                r#"drbd_agent_throttle_resync_rate_bytes_per_second{name="r0",peer_node_id="1",volume="0"} 20971520"#,
                "drbd_agent_throttle_reverts_total 3",
                r#"drbd_agent_throttle_state{name="r0",peer_node_id="1",volume="0",state="holding"} 0"#,
                r#"drbd_agent_throttle_state{name="r0",peer_node_id="1",volume="0",state="increasing"} 0"#,
                r#"drbd_agent_throttle_state{name="r0",peer_node_id="1",volume="0",state="backing-off"} 1"#,
                r#"drbd_agent_throttle_state{name="r0",peer_node_id="1",volume="0",state="floor"} 0"#,
                r#"drbd_agent_throttle_state{name="r0",peer_node_id="1",volume="0",state="at-ceiling"} 0"#,
            ]
        );
        assert!(text.contains("# TYPE drbd_agent_throttle_reverts_total counter\n"));
        assert!(text.contains("# TYPE drbd_agent_throttle_state gauge\n"));
    }

    #[test]
    fn unknown_values_are_absent() {
        // Not in charge, no step yet: only the target and the counters.
        let fresh = peer("r0", 2, 1);
        // A step without a latency signal (and a NaN one): no latency series.
        let mut blind = peer("r1", 1, 0);
        blind.decision = Some(decision(ControlState::Floor, None));
        let mut nan = peer("r2", 1, 0);
        nan.decision = Some(decision(ControlState::Holding, Some(f64::NAN)));
        let text = render(&status(vec![fresh, blind, nan]));
        assert!(!text.contains("drbd_agent_throttle_resync_rate_bytes_per_second"));
        assert!(
            !text.contains("drbd_agent_throttle_latency_seconds"),
            "{text}"
        );
        assert!(!text.contains("NaN"));
        assert!(!text.contains(r#"floor_bytes_per_second{name="r0""#));
        assert!(text.contains(r#"floor_bytes_per_second{name="r1""#));
        assert!(!text.contains(r#"drbd_agent_throttle_state{name="r0""#));
        assert!(text.contains(
            r#"drbd_agent_throttle_state{name="r1",peer_node_id="1",volume="0",state="floor"} 1"#
        ));
        assert!(text.contains(
            r#"drbd_agent_throttle_latency_target_seconds{name="r0",peer_node_id="2",volume="1"} 0.005"#
        ));
        assert!(text.contains(
            r#"drbd_agent_throttle_peer_reverts_total{name="r0",peer_node_id="2",volume="1"} 0"#
        ));
    }

    #[test]
    fn disabled_has_no_mode_and_no_peers() {
        let text = render(&ThrottleStatus::default());
        assert_eq!(
            series(&text),
            [
                "drbd_agent_throttle_actuation_failures_total 0",
                "drbd_agent_throttle_enabled 0",
                "drbd_agent_throttle_journal_errors_total 0",
                "drbd_agent_throttle_restores_total 0",
                "drbd_agent_throttle_reverts_total 0",
            ]
        );
        let observe = ThrottleStatus {
            mode: Some(Mode::Observe),
            ..status(Vec::new())
        };
        let text = render(&observe);
        assert!(text.contains("drbd_agent_throttle_mode{mode=\"enforce\"} 0\n"));
        assert!(text.contains("drbd_agent_throttle_mode{mode=\"observe\"} 1\n"));
    }

    #[test]
    fn resource_names_are_escaped() {
        let mut odd = peer(r#"we"ird\name"#, 1, 0);
        odd.rate_set_kib = Some(1);
        odd.decision = Some(decision(ControlState::Increasing, Some(1.0)));
        let text = render(&status(vec![odd]));
        assert!(
            text.contains(
                r#"drbd_agent_throttle_resync_rate_bytes_per_second{name="we\"ird\\name",peer_node_id="1",volume="0"} 1024"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"drbd_agent_throttle_state{name="we\"ird\\name",peer_node_id="1",volume="0",state="increasing"} 1"#
        ));
    }

    #[test]
    fn every_state_listed_once_in_order() {
        for (index, state) in STATES.into_iter().enumerate() {
            assert_eq!(state_index(state), index, "{state}");
        }
    }
}
