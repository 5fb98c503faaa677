//! Pure helpers of the throttle loop: which peer devices this node is
//! SyncTarget of (from the model), the law's [`Observation`] from diskstats
//! and DRBD statistics, and what to give back.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::diskstats::IoRates;
use crate::events2::DiskState;
use crate::state::Model;

use super::backing::replicated_write_kib;
use super::law::Observation;
use super::options::{PeerKey, PeerOptions};
use super::rate::KibPerSec;

/// One peer device this node is SyncTarget of.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub key: PeerKey,
    /// The DRBD device's minor (`/sys/block/drbd<minor>`), if known.
    pub minor: Option<u32>,
    /// The backing device's path as events2 prints it (`none`: diskless).
    pub backing_dev: Option<String>,
    pub out_of_sync_kib: Option<u64>,
    /// `dbdt1`, KiB/s.
    pub resync_kib_per_sec: Option<f64>,
    pub rs_in_flight_kib: Option<u64>,
    pub pending: Option<u64>,
    /// UpToDate replicas of the volume (this node and its peers).
    pub uptodate_replicas: u32,
    /// The nodes whose pressure matters (`crate::pressure`): the one synced
    /// from, then the Primaries among the peers.
    pub pressure_nodes: Vec<String>,
}

/// The peer devices in SyncTarget or PausedSyncT, with a known peer node id.
pub fn sync_targets(model: &Model) -> Vec<Target> {
    let mut out = Vec::new();
    for resource in model.resources().values() {
        for connection in resource.connections.values() {
            let Some(peer_node_id) = connection.peer_node_id else {
                continue;
            };
            for pd in connection.peer_devices.values() {
                if !pd.replication.as_ref().is_some_and(|r| r.is_sync_target()) {
                    continue;
                }
                let device = resource.devices.get(&pd.volume);
                let local_up = device
                    .and_then(|d| d.disk.as_ref())
                    .is_some_and(|d| *d == DiskState::UpToDate);
                let peers_up = resource
                    .connections
                    .values()
                    .filter_map(|c| c.peer_devices.get(&pd.volume))
                    .filter(|p| p.peer_disk.as_ref() == Some(&DiskState::UpToDate))
                    .count();
                out.push(Target {
                    key: PeerKey {
                        resource: resource.name.clone(),
                        peer_node_id,
                        volume: pd.volume,
                    },
                    minor: device.and_then(|d| d.minor),
                    backing_dev: device.and_then(|d| d.backing_dev.clone()),
                    out_of_sync_kib: pd.stats.out_of_sync,
                    resync_kib_per_sec: pd.stats.dbdt1.map(|mib| mib * 1024.0),
                    rs_in_flight_kib: connection.rs_in_flight.map(|sectors| sectors / 2),
                    pending: pd.stats.pending,
                    uptodate_replicas: u32::from(local_up) + peers_up as u32,
                    pressure_nodes: pressure_nodes(resource, &connection.conn_name),
                });
            }
        }
    }
    out
}

/// `source` (the node synced from), then the connections whose peer is
/// Primary, without repeats.
fn pressure_nodes(resource: &crate::state::Resource, source: &str) -> Vec<String> {
    let mut nodes = vec![source.to_owned()];
    for c in resource.connections.values() {
        if c.peer_role == Some(crate::events2::Role::Primary) && !nodes.contains(&c.conn_name) {
            nodes.push(c.conn_name.clone());
        }
    }
    nodes
}

/// The law's input for one interval: `rates` of the DRBD device, `backing`
/// of its backing device over the same interval (if sampled).
pub fn observation(
    target: &Target,
    rates: &IoRates,
    backing: Option<&IoRates>,
    reduced_redundancy_for: Duration,
    recorded: Option<&PeerOptions>,
) -> Observation {
    Observation {
        elapsed: Duration::from_secs_f64(rates.elapsed_ms / 1000.0),
        app_write_latency_ms: rates.write_latency_ms,
        app_write_latency_p99_ms: None,
        app_queue_depth: Some(rates.queue_depth),
        foreground_kib_per_sec: Some(
            (rates.read_bytes_per_sec + rates.write_bytes_per_sec) / 1024.0,
        ),
        backing_write_latency_ms: backing.and_then(|b| b.write_latency_ms),
        backing_write_kib_per_sec: backing.map(|b| b.write_bytes_per_sec / 1024.0),
        replicated_write_kib_per_sec: replicated_write_kib(backing, target.resync_kib_per_sec),
        rs_in_flight_kib: target.rs_in_flight_kib,
        pending: target.pending,
        out_of_sync_kib: target.out_of_sync_kib,
        resync_kib_per_sec: target.resync_kib_per_sec,
        uptodate_replicas: target.uptodate_replicas,
        reduced_redundancy_for,
        // 0 = unlimited: no second ceiling.
        configured_c_max_rate: recorded.and_then(|o| KibPerSec::new(o.c_max_rate)),
        network_headroom_kib_per_sec: None,
    }
}

/// The journaled peer devices to give back: those not in `keep` (the
/// SyncTarget peer devices the agent is enforcing on now).
pub fn to_restore<'a>(
    journaled: impl IntoIterator<Item = &'a PeerKey>,
    keep: &BTreeSet<PeerKey>,
) -> Vec<PeerKey> {
    journaled
        .into_iter()
        .filter(|k| !keep.contains(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events2::parse_line;

    fn model(lines: &str) -> Model {
        let mut m = Model::new();
        for line in lines.lines() {
            m.apply(&parse_line(line).unwrap());
        }
        m
    }

    const LINES: &str = "exists resource name:r0 role:Secondary suspended:no
exists device name:r0 volume:0 minor:7 disk:Inconsistent client:no
exists connection name:r0 peer-node-id:1 conn-name:beta connection:Connected role:Primary
exists peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:SyncTarget peer-disk:UpToDate out-of-sync:4096 pending:2 dbdt1:2.00
exists connection name:r0 peer-node-id:2 conn-name:gamma connection:Connected role:Secondary
exists peer-device name:r0 peer-node-id:2 conn-name:gamma volume:0 replication:Established peer-disk:UpToDate
exists -";

    #[test]
    fn finds_sync_targets() {
        let t = sync_targets(&model(LINES));
        assert_eq!(t.len(), 1);
        assert_eq!(
            t[0].key,
            PeerKey {
                resource: "r0".into(),
                peer_node_id: 1,
                volume: 0
            }
        );
        assert_eq!(t[0].minor, Some(7));
        assert_eq!(t[0].backing_dev, None);
        assert_eq!(t[0].out_of_sync_kib, Some(4096));
        assert_eq!(t[0].resync_kib_per_sec, Some(2048.0));
        assert_eq!(t[0].uptodate_replicas, 2);
        assert_eq!(t[0].pressure_nodes, vec!["beta".to_owned()]);
        let ended = model(&format!(
            "{LINES}\nchange peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:Established"
        ));
        assert!(sync_targets(&ended).is_empty());
        let source = LINES.replace("replication:SyncTarget", "replication:SyncSource");
        assert!(sync_targets(&model(&source)).is_empty());
        let paused = LINES.replace("replication:SyncTarget", "replication:PausedSyncT");
        assert_eq!(sync_targets(&model(&paused)).len(), 1);
    }

    #[test]
    fn restore_what_is_not_kept() {
        let a = PeerKey {
            resource: "a".into(),
            peer_node_id: 1,
            volume: 0,
        };
        let b = PeerKey {
            resource: "b".into(),
            peer_node_id: 1,
            volume: 0,
        };
        let keep: BTreeSet<PeerKey> = [a.clone()].into();
        assert_eq!(to_restore([&a, &b], &keep), vec![b.clone()]);
        assert!(to_restore([&a], &keep).is_empty());
        assert_eq!(to_restore([&a, &b], &BTreeSet::new()).len(), 2);
    }

    #[test]
    fn observation_from_rates() {
        let t = &sync_targets(&model(LINES))[0];
        let rates = IoRates {
            elapsed_ms: 1000.0,
            reads: 0,
            writes: 100,
            read_iops: 0.0,
            write_iops: 100.0,
            read_bytes_per_sec: 0.0,
            write_bytes_per_sec: 1024.0 * 400.0,
            read_latency_ms: None,
            write_latency_ms: Some(3.0),
            queue_depth: 0.3,
            utilisation: 0.3,
            in_flight: 0,
        };
        let rec = PeerOptions {
            c_max_rate: 0,
            c_min_rate: 250,
        };
        let o = observation(t, &rates, None, Duration::from_secs(5), Some(&rec));
        assert_eq!(o.elapsed, Duration::from_secs(1));
        assert_eq!(o.backing_write_latency_ms, None);
        assert_eq!(o.replicated_write_kib_per_sec, None);
        assert_eq!(o.app_write_latency_ms, Some(3.0));
        assert_eq!(o.foreground_kib_per_sec, Some(400.0));
        assert_eq!(o.configured_c_max_rate, None, "0 = unlimited");
        let rec = PeerOptions {
            c_max_rate: 8000,
            c_min_rate: 250,
        };
        let o = observation(t, &rates, None, Duration::from_secs(5), Some(&rec));
        assert_eq!(o.configured_c_max_rate, KibPerSec::new(8000));
        assert_eq!(o.uptodate_replicas, 2);
        // A Secondary SyncTarget: the backing device carries the Primary's
        // writes (6 MiB/s) beside the resync's (dbdt1 2 MiB/s).
        let backing = IoRates {
            write_bytes_per_sec: 8.0 * 1024.0 * 1024.0,
            write_latency_ms: Some(7.5),
            ..rates
        };
        let o = observation(t, &rates, Some(&backing), Duration::ZERO, None);
        assert_eq!(o.backing_write_latency_ms, Some(7.5));
        assert_eq!(o.replicated_write_kib_per_sec, Some(6.0 * 1024.0));
    }
}
