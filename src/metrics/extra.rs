//! The series drbd-reactor lacks, under the same `drbd_` prefix and label
//! sets: replication and peer disk state, resync progress, rate, ETA and
//! suspension, pending/unacked requests, paths, helper calls.

use super::family::{add_enum, add_flags, Def, Kind, Spec};
use super::objects::{paths, peer_device_number, peer_devices, PATH, PEER_DEVICE};
use super::Totals;
use crate::events2::Eta;
use crate::state::Resource;

const MIB: f64 = 1024.0 * 1024.0;

/// The new families about all resources together.
pub(super) fn totals_defs() -> Vec<Def<Totals>> {
    vec![
        Def {
            spec: Spec {
                name: "drbd_helper_calls_total",
                help: "Calls of a DRBD helper (fence-peer, split-brain, before-resync-target, ...) seen since the agent started.",
                kind: Kind::Counter,
                labels: &["helper"],
            },
            fill: |totals, w| {
                for (helper, calls) in &totals.helper_calls {
                    w.add_u64(&[helper], *calls)?;
                }
                Ok(())
            },
        },
        Def {
            spec: Spec {
                name: "drbd_helper_responses_total",
                help: "Responses of a DRBD helper by exit code, seen since the agent started.",
                kind: Kind::Counter,
                labels: &["helper", "exit_code"],
            },
            fill: |totals, w| {
                for (helper, by_code) in &totals.helper_responses {
                    for (code, count) in by_code {
                        w.add_u64(&[helper, &code.to_string()], *count)?;
                    }
                }
                Ok(())
            },
        },
    ]
}

/// The new per-resource families.
pub(super) fn defs() -> Vec<Def<Resource>> {
    vec![
        Def {
            spec: Spec {
                name: "drbd_path_established",
                help: "1 if the network path between the local and the peer address is established.",
                kind: Kind::Gauge,
                labels: PATH,
            },
            fill: |resource, w| {
                for (name, conn, node, path) in paths(resource) {
                    if let Some(value) = path.established.as_ref().and_then(|v| v.as_bool()) {
                        w.add_bool(&[name, &conn.conn_name, &node, &path.local, &path.peer], value)?;
                    }
                }
                Ok(())
            },
        },
        Def {
            spec: Spec {
                name: "drbd_peerdevice_peer_disk_state",
                help: "The peer's disk state, one series per state (1 for the current).",
                kind: Kind::Gauge,
                labels: &["name", "conn_name", "peer_node_id", "volume", "drbd_peer_disk_state"],
            },
            fill: |resource, w| {
                for (name, conn, node, pd, volume) in peer_devices(resource) {
                    if let Some(state) = &pd.peer_disk {
                        add_enum(w, &[name, &conn.conn_name, &node, &volume], state)?;
                    }
                }
                Ok(())
            },
        },
        peer_device_number!(
            Spec {
                name: "drbd_peerdevice_pending",
                help: "Requests sent to the peer and not yet answered.",
                kind: Kind::Gauge,
                labels: PEER_DEVICE,
            },
            |pd| pd.stats.pending
        ),
        Def {
            spec: Spec {
                name: "drbd_peerdevice_replication_state",
                help: "Replication state towards the peer, one series per state (1 for the current).",
                kind: Kind::Gauge,
                labels: &["name", "conn_name", "peer_node_id", "volume", "drbd_replication_state"],
            },
            fill: |resource, w| {
                for (name, conn, node, pd, volume) in peer_devices(resource) {
                    if let Some(state) = &pd.replication {
                        add_enum(w, &[name, &conn.conn_name, &node, &volume], state)?;
                    }
                }
                Ok(())
            },
        },
        Def {
            spec: Spec {
                name: "drbd_peerdevice_resync_done_ratio",
                help: "Progress of the running resync or verify, 0 to 1.",
                kind: Kind::Gauge,
                labels: PEER_DEVICE,
            },
            fill: |resource, w| {
                for (name, conn, node, pd, volume) in peer_devices(resource) {
                    if let Some(percent) = pd.done.filter(|p| p.is_finite()) {
                        let ratio = (percent / 100.0).clamp(0.0, 1.0);
                        w.add(&[name, &conn.conn_name, &node, &volume], ratio)?;
                    }
                }
                Ok(())
            },
        },
        Def {
            spec: Spec {
                name: "drbd_peerdevice_resync_eta_seconds",
                help: "Estimated time to the end of the running resync; absent while unknown.",
                kind: Kind::Gauge,
                labels: PEER_DEVICE,
            },
            fill: |resource, w| {
                for (name, conn, node, pd, volume) in peer_devices(resource) {
                    if let Some(Eta::Seconds(seconds)) = pd.stats.eta {
                        w.add_u64(&[name, &conn.conn_name, &node, &volume], seconds)?;
                    }
                }
                Ok(())
            },
        },
        Def {
            spec: Spec {
                name: "drbd_peerdevice_resync_rate_bytes_per_second",
                help: "Resync speed over the last interval (dbdt1), bytes per second.",
                kind: Kind::Gauge,
                labels: PEER_DEVICE,
            },
            fill: |resource, w| {
                for (name, conn, node, pd, volume) in peer_devices(resource) {
                    if let Some(mib) = pd.stats.dbdt1.filter(|v| v.is_finite()) {
                        let bytes = (mib * MIB).round();
                        w.add(&[name, &conn.conn_name, &node, &volume], bytes)?;
                    }
                }
                Ok(())
            },
        },
        Def {
            spec: Spec {
                name: "drbd_peerdevice_resync_suspended",
                help: "1 for each reason the resync towards the peer is suspended (user, peer, dependency, max-parallel).",
                kind: Kind::Gauge,
                labels: &["name", "conn_name", "peer_node_id", "volume", "reason"],
            },
            fill: |resource, w| {
                for (name, conn, node, pd, volume) in peer_devices(resource) {
                    if let Some(flags) = &pd.resync_suspended {
                        add_flags(w, &[name, &conn.conn_name, &node, &volume], &flags.0)?;
                    }
                }
                Ok(())
            },
        },
        peer_device_number!(
            Spec {
                name: "drbd_peerdevice_unacked",
                help: "Requests received from the peer and not yet acknowledged.",
                kind: Kind::Gauge,
                labels: PEER_DEVICE,
            },
            |pd| pd.stats.unacked
        ),
    ]
}
