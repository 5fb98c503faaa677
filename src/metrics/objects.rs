//! Walking the model's objects with their label values.

use crate::state::{Connection, Device, Model, Path, PeerDevice, Resource};

/// Label names of each object kind, in drbd-reactor's order.
pub const RESOURCE: &[&str] = &["name"];
pub const CONNECTION: &[&str] = &["name", "conn_name", "peer_node_id"];
pub const PEER_DEVICE: &[&str] = &["name", "conn_name", "peer_node_id", "volume"];
pub const DEVICE: &[&str] = &["name", "volume", "minor"];
pub const PATH: &[&str] = &["name", "conn_name", "peer_node_id", "local", "peer"];

/// A number label, empty while unknown.
fn number(value: Option<u32>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// Every device with its labels `[name, volume, minor]`.
pub fn devices(model: &Model) -> impl Iterator<Item = (&Device, [String; 2], &str)> {
    model.resources().values().flat_map(|resource: &Resource| {
        resource.devices.values().map(move |device| {
            let labels = [device.volume.to_string(), number(device.minor)];
            (device.as_ref(), labels, resource.name.as_str())
        })
    })
}

/// Every connection with its resource name and peer node id label.
pub fn connections(model: &Model) -> impl Iterator<Item = (&str, &Connection, String)> {
    model.resources().values().flat_map(|resource: &Resource| {
        resource.connections.values().map(move |connection| {
            (
                resource.name.as_str(),
                connection.as_ref(),
                number(connection.peer_node_id),
            )
        })
    })
}

/// Every peer device with `[name, conn_name]`, peer node id and volume labels.
pub fn peer_devices(
    model: &Model,
) -> impl Iterator<Item = (&str, &Connection, String, &PeerDevice, String)> {
    connections(model).flat_map(|(name, connection, node)| {
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

/// Every path with its resource name, connection and peer node id label.
pub fn paths(model: &Model) -> impl Iterator<Item = (&str, &Connection, String, &Path)> {
    connections(model).flat_map(|(name, connection, node)| {
        connection
            .paths
            .iter()
            .map(move |path| (name, connection, node.clone(), path))
    })
}
