//! One node's view of the truth as a [`Resource`], the way the kernel
//! would report it.

use crate::events2::{
    ConnectionState, DiskState, Eta, Flags, ReplicationState, Role, Tristate, WriteOrdering, YesNo,
};
use crate::state::{Connection, Device, DeviceStats, Path, PeerDevice, PeerDeviceStats, Resource};

use super::cluster::{pair, Cluster, Link, ResourceTruth, ResyncPhase};

/// The resource as `node` sees it; None if the node does not have it.
pub fn resource(cluster: &Cluster, truth: &ResourceTruth, node: &str) -> Option<Resource> {
    if !truth.present.contains(node) {
        return None;
    }
    let spec = &truth.spec;
    let role = truth.roles.get(node).cloned().unwrap_or(Role::Secondary);
    let me = cluster.scenario.node(node)?;
    let mut resource = Resource {
        name: spec.name.clone(),
        announced: true,
        role: Some(role.clone()),
        suspended: Some(Flags(Vec::new())),
        force_io_failures: Some(YesNo::No),
        write_ordering: Some(WriteOrdering::Flush),
        ..Resource::default()
    };
    let mut connected_peers = 0u64;
    let mut up_to_date_peers = 0u64;
    let mut peer_primary = false;
    let mut inconsistent = false;
    for peer in &spec.nodes {
        if peer == node {
            continue;
        }
        let Some(peer_spec) = cluster.scenario.node(peer) else {
            continue;
        };
        let p = pair(node, peer);
        let link = if truth.present.contains(peer) {
            truth.links.get(&p).copied().unwrap_or(Link::Connected)
        } else {
            Link::Connecting { path_up: false }
        };
        let connected = link == Link::Connected;
        let replicating = connected && !truth.handshake.contains(&p);
        let mut peer_up_to_date = replicating;
        let peer_role = truth.roles.get(peer).cloned().unwrap_or(Role::Secondary);
        if connected {
            connected_peers += 1;
            peer_primary |= peer_role == Role::Primary;
        }
        let mut connection = crate::state::Connection {
            conn_name: peer.clone(),
            announced: true,
            peer_node_id: Some(peer_spec.node_id),
            connection: Some(match link {
                Link::Connected => ConnectionState::Connected,
                Link::NetworkFailure => ConnectionState::NetworkFailure,
                Link::Unconnected => ConnectionState::Unconnected,
                Link::Connecting { .. } => ConnectionState::Connecting,
            }),
            peer_role: Some(if connected { peer_role } else { Role::Unknown }),
            congested: Some(YesNo::No),
            ap_in_flight: Some(0),
            rs_in_flight: Some(0),
            ..Connection::default()
        };
        for vol in &spec.volumes {
            let pv = truth.volumes.get(&(p.clone(), vol.volume));
            let resync = pv.and_then(|pv| pv.resync.as_ref()).filter(|_| connected);
            let counters = truth
                .peers
                .get(&(node.to_owned(), peer.clone(), vol.volume))
                .copied()
                .unwrap_or_default();
            let mut peer_device = PeerDevice {
                volume: vol.volume,
                announced: true,
                replication: Some(ReplicationState::Off),
                peer_disk: Some(DiskState::DUnknown),
                peer_client: Some(Tristate::No),
                resync_suspended: Some(Flags(Vec::new())),
                ..PeerDevice::default()
            };
            let mut stats = PeerDeviceStats {
                received: Some(counters.received_kib.round() as u64),
                sent: Some(counters.sent_kib.round() as u64),
                out_of_sync: Some(pv.map(|pv| pv.out_of_sync.round() as u64).unwrap_or(0)),
                pending: Some(0),
                unacked: Some(0),
                ..PeerDeviceStats::default()
            };
            if replicating {
                peer_device.replication = Some(ReplicationState::Established);
                peer_device.peer_disk = Some(DiskState::UpToDate);
            }
            if let Some(rs) = resync {
                let source = rs.source == node;
                inconsistent |= !source && rs.phase == ResyncPhase::Running;
                let (replication, peer_disk) = match (rs.phase, source) {
                    (ResyncPhase::WaitBitmap, true) => {
                        (ReplicationState::WFBitMapS, DiskState::Outdated)
                    }
                    (ResyncPhase::WaitBitmap, false) => {
                        (ReplicationState::WFBitMapT, DiskState::UpToDate)
                    }
                    (ResyncPhase::Running, true) => {
                        (ReplicationState::SyncSource, DiskState::Inconsistent)
                    }
                    (ResyncPhase::Running, false) => {
                        (ReplicationState::SyncTarget, DiskState::UpToDate)
                    }
                };
                peer_up_to_date &= peer_disk == DiskState::UpToDate;
                peer_device.replication = Some(replication);
                peer_device.peer_disk = Some(peer_disk);
                stats.out_of_sync = Some(rs.shown_remaining);
                if rs.phase == ResyncPhase::Running {
                    peer_device.done = Some((rs.shown_done * 100.0).floor() / 100.0);
                    stats.dbdt1 = Some(rs.dbdt1);
                    stats.eta = Some(rs.eta);
                    stats.pending = Some(if rs.eta == Eta::Unknown { 0 } else { 4 });
                    connection.rs_in_flight = Some(if source { 0 } else { 2048 });
                }
            }
            peer_device.stats = stats;
            connection
                .peer_devices
                .insert(vol.volume, Box::new(peer_device));
        }
        up_to_date_peers += u64::from(peer_up_to_date);
        let port = spec.port;
        connection.paths.push(Path {
            local: format!("ipv4:{}:{port}", me.address),
            peer: format!("ipv4:{}:{port}", peer_spec.address),
            announced: true,
            established: Some(YesNo::from_bool(matches!(
                link,
                Link::Connected | Link::Connecting { path_up: true }
            ))),
            ..Path::default()
        });
        resource
            .connections
            .insert(peer.clone(), Box::new(connection));
    }
    let open = truth.open.get(node).copied().unwrap_or(false);
    let quorum = (connected_peers + 1) * 2 > spec.nodes.len() as u64;
    for vol in &spec.volumes {
        let counters = truth
            .devices
            .get(&(node.to_owned(), vol.volume))
            .copied()
            .unwrap_or_default();
        resource.devices.insert(
            vol.volume,
            Box::new(Device {
                volume: vol.volume,
                announced: true,
                minor: Some(vol.minor),
                backing_dev: Some(vol.backing_disk.clone()),
                disk: Some(if inconsistent {
                    DiskState::Inconsistent
                } else {
                    DiskState::UpToDate
                }),
                client: Some(Tristate::No),
                open: Some(Tristate::from_wire(if open { "yes" } else { "no" })),
                quorum: Some(YesNo::from_bool(quorum)),
                stats: DeviceStats {
                    size: Some(vol.size_kib),
                    read: Some(counters.read_kib.round() as u64),
                    written: Some(counters.written_kib.round() as u64),
                    al_writes: Some((counters.written_kib / 4096.0).round() as u64),
                    bm_writes: Some(0),
                    upper_pending: Some(0),
                    lower_pending: Some(0),
                    al_suspended: Some(YesNo::No),
                    blocked: Some(Flags(Vec::new())),
                },
                ..Device::default()
            }),
        );
    }
    let up_to_date = !inconsistent;
    resource.may_promote = Some(YesNo::from_bool(
        role == Role::Secondary && up_to_date && !peer_primary && quorum,
    ));
    resource.promotion_score = Some(if up_to_date {
        10_100 + up_to_date_peers + 1
    } else {
        0
    });
    Some(resource)
}

/// The resource without the counters the kernel does not push on its own
/// (what decides whether a state change happened).
pub fn strip(resource: &Resource) -> Resource {
    let mut copy = resource.clone();
    for device in copy.devices.values_mut() {
        device.stats = DeviceStats::default();
    }
    for connection in copy.connections.values_mut() {
        connection.ap_in_flight = None;
        connection.rs_in_flight = None;
        for peer_device in connection.peer_devices.values_mut() {
            peer_device.stats = PeerDeviceStats::default();
        }
    }
    copy
}

/// `new`, but objects whose state did not change keep their old counters:
/// the kernel only reports objects that are part of a state change.
pub fn settle(old: &Resource, mut new: Resource) -> Resource {
    for (volume, device) in new.devices.iter_mut() {
        if let Some(before) = old.devices.get(volume) {
            let mut a = before.clone();
            a.stats = DeviceStats::default();
            let mut b = device.clone();
            b.stats = DeviceStats::default();
            if a == b {
                device.stats = before.stats.clone();
            }
        }
    }
    for (name, connection) in new.connections.iter_mut() {
        let Some(before) = old.connections.get(name) else {
            continue;
        };
        let same_connection = before.connection == connection.connection
            && before.peer_role == connection.peer_role
            && before.congested == connection.congested;
        if same_connection {
            connection.ap_in_flight = before.ap_in_flight;
            connection.rs_in_flight = before.rs_in_flight;
        }
        for (volume, peer_device) in connection.peer_devices.iter_mut() {
            if let Some(was) = before.peer_devices.get(volume) {
                let mut a = was.clone();
                a.stats = PeerDeviceStats::default();
                let mut b = peer_device.clone();
                b.stats = PeerDeviceStats::default();
                if a == b {
                    peer_device.stats = was.stats.clone();
                }
            }
        }
    }
    new
}
