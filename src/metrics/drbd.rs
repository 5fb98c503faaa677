//! drbd-reactor's metric set (LINBIT/drbd-reactor 1.11 prometheus plugin):
//! the same names, types, labels (in the same order) and units, so existing
//! dashboards and alert rules keep working. `drbd_version` is written with
//! the agent's facts (see `agent.rs`).

use super::family::{add_enum, Def, Kind, Spec};
use super::objects::{
    connections, devices, peer_device_number, CONNECTION, DEVICE, PEER_DEVICE, RESOURCE,
};
use super::Totals;
use crate::events2::{DiskState, Tristate, YesNo};
use crate::state::Resource;

const SECTOR: u64 = 512;
const KIB: u64 = 1024;

const fn gauge(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Spec {
    Spec {
        name,
        help,
        kind: Kind::Gauge,
        labels,
    }
}

const fn counter(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Spec {
    Spec {
        name,
        help,
        kind: Kind::Counter,
        labels,
    }
}

fn yes(value: &YesNo) -> Option<bool> {
    value.as_bool()
}

/// `yes` 1, `no` 0, `unknown` (and unknown words) absent.
fn tristate(value: &Tristate) -> Option<bool> {
    match value {
        Tristate::Yes => Some(true),
        Tristate::No => Some(false),
        _ => None,
    }
}

/// The families about all resources together.
pub(super) fn totals_defs() -> Vec<Def<Totals>> {
    vec![Def {
        spec: gauge("drbd_resource_resources", "Number of DRBD resources.", &[]),
        fill: |totals, w| w.add_u64(&[], totals.resources as u64),
    }]
}

/// The resource families.
pub(super) fn resource_defs() -> Vec<Def<Resource>> {
    vec![
        Def {
            spec: gauge(
                "drbd_resource_role",
                "Role of the local node, one series per role (1 for the current).",
                &["name", "drbd_resource_role"],
            ),
            fill: |resource, w| {
                if let Some(role) = &resource.role {
                    add_enum(w, &[&resource.name], role)?;
                }
                Ok(())
            },
        },
        Def {
            spec: gauge(
                "drbd_resource_suspended",
                "1 if I/O of the resource is suspended (any reason).",
                RESOURCE,
            ),
            fill: |resource, w| {
                if let Some(flags) = &resource.suspended {
                    w.add_bool(&[&resource.name], !flags.is_none())?;
                }
                Ok(())
            },
        },
        Def {
            spec: gauge(
                "drbd_resource_maypromote",
                "1 if the resource may be promoted to Primary.",
                RESOURCE,
            ),
            fill: |resource, w| {
                if let Some(value) = resource.may_promote.as_ref().and_then(yes) {
                    w.add_bool(&[&resource.name], value)?;
                }
                Ok(())
            },
        },
        Def {
            spec: gauge(
                "drbd_resource_promotionscore",
                "Promotion score of the resource (higher is better).",
                RESOURCE,
            ),
            fill: |resource, w| {
                if let Some(score) = resource.promotion_score {
                    w.add_u64(&[&resource.name], score)?;
                }
                Ok(())
            },
        },
        Def {
            spec: gauge(
                "drbd_resource_forceiofailures",
                "1 if the resource forces I/O failures (force-io-failures).",
                RESOURCE,
            ),
            fill: |resource, w| {
                if let Some(value) = resource.force_io_failures.as_ref().and_then(yes) {
                    w.add_bool(&[&resource.name], value)?;
                }
                Ok(())
            },
        },
    ]
}

/// The connection families.
pub(super) fn connection_defs() -> Vec<Def<Resource>> {
    vec![
        Def {
            spec: gauge(
                "drbd_connection_state",
                "Connection state towards the peer, one series per state (1 for the current).",
                &["name", "conn_name", "peer_node_id", "drbd_connection_state"],
            ),
            fill: |resource, w| {
                for (name, connection, node) in connections(resource) {
                    if let Some(state) = &connection.connection {
                        add_enum(w, &[name, &connection.conn_name, &node], state)?;
                    }
                }
                Ok(())
            },
        },
        Def {
            spec: gauge(
                "drbd_connection_congested",
                "1 if the connection's send buffer is congested.",
                CONNECTION,
            ),
            fill: |resource, w| {
                for (name, connection, node) in connections(resource) {
                    if let Some(value) = connection.congested.as_ref().and_then(yes) {
                        w.add_bool(&[name, &connection.conn_name, &node], value)?;
                    }
                }
                Ok(())
            },
        },
        Def {
            spec: gauge(
                "drbd_connection_apinflight_bytes",
                "Application data in flight to the peer, bytes.",
                CONNECTION,
            ),
            fill: |resource, w| {
                for (name, connection, node) in connections(resource) {
                    if let Some(sectors) = connection.ap_in_flight {
                        w.add_u64(&[name, &connection.conn_name, &node], sectors * SECTOR)?;
                    }
                }
                Ok(())
            },
        },
        Def {
            spec: gauge(
                "drbd_connection_rsinflight_bytes",
                "Resync data in flight to the peer, bytes.",
                CONNECTION,
            ),
            fill: |resource, w| {
                for (name, connection, node) in connections(resource) {
                    if let Some(sectors) = connection.rs_in_flight {
                        w.add_u64(&[name, &connection.conn_name, &node], sectors * SECTOR)?;
                    }
                }
                Ok(())
            },
        },
    ]
}

/// The peer-device families of drbd-reactor.
pub(super) fn peer_device_defs() -> Vec<Def<Resource>> {
    vec![
        peer_device_number!(
            gauge(
                "drbd_peerdevice_outofsync_bytes",
                "Data that differs from the peer, bytes.",
                PEER_DEVICE,
            ),
            |pd| pd.stats.out_of_sync.map(|kib| kib * KIB)
        ),
        // The next two lack the `_total` suffix: drbd-reactor's names, kept
        // for existing dashboards (promtool flags them; nothing else may be).
        peer_device_number!(
            counter(
                "drbd_peerdevice_sent_bytes",
                "Data sent to the peer, bytes.",
                PEER_DEVICE,
            ),
            |pd| pd.stats.sent.map(|kib| kib * KIB)
        ),
        peer_device_number!(
            counter(
                "drbd_peerdevice_received_bytes",
                "Data received from the peer, bytes.",
                PEER_DEVICE,
            ),
            |pd| pd.stats.received.map(|kib| kib * KIB)
        ),
    ]
}

/// A device family from one optional number of the device.
macro_rules! device_number {
    ($spec:expr, |$device:ident| $value:expr) => {
        Def {
            spec: $spec,
            fill: |resource, w| {
                for ($device, [volume, minor], name) in devices(resource) {
                    if let Some(value) = $value {
                        w.add_u64(&[name, &volume, &minor], value)?;
                    }
                }
                Ok(())
            },
        }
    };
}

/// A device family from one optional flag of the device.
macro_rules! device_flag {
    ($spec:expr, |$device:ident| $value:expr) => {
        Def {
            spec: $spec,
            fill: |resource, w| {
                for ($device, [volume, minor], name) in devices(resource) {
                    if let Some(value) = $value {
                        w.add_bool(&[name, &volume, &minor], value)?;
                    }
                }
                Ok(())
            },
        }
    };
}

/// The device families.
pub(super) fn device_defs() -> Vec<Def<Resource>> {
    vec![
        Def {
            spec: gauge(
                "drbd_device_state",
                "Local disk state, one series per state (1 for the current).",
                &["name", "volume", "minor", "drbd_device_state"],
            ),
            fill: |resource, w| {
                for (device, [volume, minor], name) in devices(resource) {
                    if let Some(disk) = &device.disk {
                        add_enum(w, &[name, &volume, &minor], disk)?;
                    }
                }
                Ok(())
            },
        },
        device_flag!(
            gauge(
                "drbd_device_client",
                "1 if the device is a DRBD client (diskless by intention).",
                DEVICE
            ),
            |device| device.client.as_ref().and_then(tristate)
        ),
        device_flag!(
            gauge(
                "drbd_device_unintentionaldiskless",
                "1 if the device is Diskless without being a client.",
                DEVICE
            ),
            |device| device
                .disk
                .as_ref()
                .map(|disk| *disk == DiskState::Diskless && device.client != Some(Tristate::Yes))
        ),
        device_flag!(
            gauge("drbd_device_quorum", "1 if the device has quorum.", DEVICE),
            |device| device.quorum.as_ref().and_then(yes)
        ),
        device_flag!(
            gauge("drbd_device_open", "1 if the device is opened.", DEVICE),
            |device| device.open.as_ref().and_then(tristate)
        ),
        device_number!(
            gauge(
                "drbd_device_size_bytes",
                "Size of the device, bytes.",
                DEVICE
            ),
            |device| device.stats.size.map(|kib| kib * KIB)
        ),
        device_number!(
            counter(
                "drbd_device_read_bytes_total",
                "Data read from the device, bytes.",
                DEVICE
            ),
            |device| device.stats.read.map(|kib| kib * KIB)
        ),
        device_number!(
            counter(
                "drbd_device_written_bytes_total",
                "Data written to the device, bytes.",
                DEVICE
            ),
            |device| device.stats.written.map(|kib| kib * KIB)
        ),
        device_number!(
            counter(
                "drbd_device_alwrites_total",
                "Activity log updates written to the metadata.",
                DEVICE
            ),
            |device| device.stats.al_writes
        ),
        device_number!(
            counter(
                "drbd_device_bmwrites_total",
                "Bitmap pages written to the metadata.",
                DEVICE
            ),
            |device| device.stats.bm_writes
        ),
        device_number!(
            gauge(
                "drbd_device_upperpending",
                "Requests from the upper layer not yet completed.",
                DEVICE
            ),
            |device| device.stats.upper_pending
        ),
        device_number!(
            gauge(
                "drbd_device_lowerpending",
                "Requests to the backing device not yet completed.",
                DEVICE
            ),
            |device| device.stats.lower_pending
        ),
        device_flag!(
            gauge(
                "drbd_device_alsuspended",
                "1 if activity log updates are suspended.",
                DEVICE
            ),
            |device| device.stats.al_suspended.as_ref().and_then(yes)
        ),
    ]
}
