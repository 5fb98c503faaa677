//! Walking the model's objects with their label values.

use crate::state::{Connection, Device, Path, PeerDevice, Resource};

/// Label names of each object kind, in drbd-reactor's order.
pub(super) const RESOURCE: &[&str] = &["name"];
pub(super) const CONNECTION: &[&str] = &["name", "conn_name", "peer_node_id"];
pub(super) const PEER_DEVICE: &[&str] = &["name", "conn_name", "peer_node_id", "volume"];
pub(super) const DEVICE: &[&str] = &["name", "volume", "minor"];
pub(super) const PATH: &[&str] = &["name", "conn_name", "peer_node_id", "local", "peer"];

/// A number label, empty while unknown.
fn number(value: Option<u32>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// The resource's devices with their labels `[volume, minor]` and the
/// resource name.
pub(super) fn devices(resource: &Resource) -> impl Iterator<Item = (&Device, [String; 2], &str)> {
    resource.devices.values().map(move |device| {
        let labels = [device.volume.to_string(), number(device.minor)];
        (device.as_ref(), labels, resource.name.as_str())
    })
}

/// The resource's connections with the resource name and peer node id label.
pub(super) fn connections(
    resource: &Resource,
) -> impl Iterator<Item = (&str, &Connection, String)> {
    resource.connections.values().map(move |connection| {
        (
            resource.name.as_str(),
            connection.as_ref(),
            number(connection.peer_node_id),
        )
    })
}

/// The resource's peer devices with `[name, conn_name]`, peer node id and
/// volume labels.
pub(super) fn peer_devices(
    resource: &Resource,
) -> impl Iterator<Item = (&str, &Connection, String, &PeerDevice, String)> {
    connections(resource).flat_map(|(name, connection, node)| {
        connection.peer_devices.values().map(move |peer_device| {
            (
                name,
                connection,
                node.clone(),
                peer_device.as_ref(),
                peer_device.volume.to_string(),
            )
        })
    })
}

/// The resource's paths with its name, connection and peer node id label.
pub(super) fn paths(
    resource: &Resource,
) -> impl Iterator<Item = (&str, &Connection, String, &Path)> {
    connections(resource).flat_map(|(name, connection, node)| {
        connection
            .paths
            .iter()
            .map(move |path| (name, connection, node.clone(), path))
    })
}

/// A peer-device family from one optional number of each peer device
/// (labels `name, conn_name, peer_node_id, volume`).
macro_rules! peer_device_number {
    ($spec:expr, |$pd:ident| $value:expr) => {
        $crate::metrics::family::Def {
            spec: $spec,
            fill: |resource, w| {
                for (name, conn, node, $pd, volume) in
                    $crate::metrics::objects::peer_devices(resource)
                {
                    if let Some(value) = $value {
                        w.add_u64(&[name, &conn.conn_name, &node, &volume], value)?;
                    }
                }
                Ok(())
            },
        }
    };
}
pub(super) use peer_device_number;
