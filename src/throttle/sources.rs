//! The SyncSource side, pure: which peer devices this node is SyncSource
//! of, and the `peer-device-options` lines that neutralise and give back
//! c-min-rate there.
//!
//! DRBD applies the activity-based c-min-rate on the SyncSource too, per
//! resync read request it serves, whenever the peer is not Primary: with
//! steady application I/O on this node's backing disk the source sleeps
//! before every read and pins the resync near c-min-rate (250 KiB/s by
//! default) whatever the SyncTarget asks for. So while this node is
//! SyncSource the agent sets `--c-min-rate=0` on that peer device and
//! nothing else: c-max-rate and c-plan-ahead only act on the SyncTarget
//! side (it paces the requests), and are never touched here.
//!
//! `PausedSyncS` counts as SyncSource: the resync is not over, only held
//! (`pause-sync`, a `resync-after` dependency, the peer's pause), and it
//! resumes without passing through another state; giving c-min-rate back
//! at every pause would just make the first interval after the resume run
//! at 250 KiB/s again and churn the journal. This mirrors the SyncTarget
//! side, which keeps `PausedSyncT`. `VerifyS` (online verify) is not a
//! resync and is left alone.

use crate::events2::ReplicationState;
use crate::state::Model;

use super::options::PeerKey;

/// Whether a replication state is this node being a resync's source.
pub fn is_resync_source(state: &ReplicationState) -> bool {
    matches!(
        state,
        ReplicationState::SyncSource | ReplicationState::PausedSyncS
    )
}

/// The peer devices in SyncSource or PausedSyncS, with a known peer node id.
pub fn sync_sources(model: &Model) -> Vec<PeerKey> {
    let mut out = Vec::new();
    for resource in model.resources().values() {
        for connection in resource.connections.values() {
            let Some(peer_node_id) = connection.peer_node_id else {
                continue;
            };
            for pd in connection.peer_devices.values() {
                if pd.replication.as_ref().is_some_and(is_resync_source) {
                    out.push(PeerKey {
                        resource: resource.name.clone(),
                        peer_node_id,
                        volume: pd.volume,
                    });
                }
            }
        }
    }
    out
}

fn head(key: &PeerKey) -> Vec<String> {
    vec![
        "peer-device-options".to_owned(),
        key.resource.clone(),
        key.peer_node_id.to_string(),
        key.volume.to_string(),
    ]
}

/// `peer-device-options RES PEER VOL --c-min-rate=0`: only c-min-rate.
pub fn source_args(key: &PeerKey) -> Vec<String> {
    let mut args = head(key);
    args.push("--c-min-rate=0".to_owned());
    args
}

/// Gives back the recorded c-min-rate (KiB/s), and nothing else.
pub fn source_restore_args(key: &PeerKey, c_min_rate_kib: u64) -> Vec<String> {
    let mut args = head(key);
    args.push(format!("--c-min-rate={c_min_rate_kib}k"));
    args
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

    const LINES: &str = "exists resource name:r0 role:Primary suspended:no
exists device name:r0 volume:0 minor:7 disk:UpToDate client:no
exists device name:r0 volume:1 minor:8 disk:UpToDate client:no
exists connection name:r0 peer-node-id:1 conn-name:beta connection:Connected role:Secondary
exists peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:SyncSource peer-disk:Inconsistent out-of-sync:4096
exists peer-device name:r0 peer-node-id:1 conn-name:beta volume:1 replication:Established peer-disk:UpToDate
exists connection name:r0 peer-node-id:2 conn-name:gamma connection:Connected role:Secondary
exists peer-device name:r0 peer-node-id:2 conn-name:gamma volume:0 replication:SyncTarget peer-disk:UpToDate
exists -";

    fn key(peer: u32, volume: u32) -> PeerKey {
        PeerKey {
            resource: "r0".into(),
            peer_node_id: peer,
            volume,
        }
    }

    #[test]
    fn finds_sync_sources_only() {
        assert_eq!(sync_sources(&model(LINES)), vec![key(1, 0)]);
        let paused = LINES.replace("replication:SyncSource", "replication:PausedSyncS");
        assert_eq!(sync_sources(&model(&paused)), vec![key(1, 0)]);
        let verify = LINES.replace("replication:SyncSource", "replication:VerifyS");
        assert!(sync_sources(&model(&verify)).is_empty());
        let ended = format!(
            "{LINES}\nchange peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:Established"
        );
        assert!(sync_sources(&model(&ended)).is_empty());
        let both = LINES.replace(
            "volume:1 replication:Established",
            "volume:1 replication:PausedSyncS",
        );
        assert_eq!(sync_sources(&model(&both)), vec![key(1, 0), key(1, 1)]);
    }

    #[test]
    fn only_c_min_rate_is_touched() {
        assert_eq!(
            source_args(&key(1, 0)).join(" "),
            "peer-device-options r0 1 0 --c-min-rate=0"
        );
        assert_eq!(
            source_restore_args(&key(2, 3), 250).join(" "),
            "peer-device-options r0 2 3 --c-min-rate=250k"
        );
        for args in [source_args(&key(1, 0)), source_restore_args(&key(1, 0), 9)] {
            assert!(!args.iter().any(|a| a.contains("c-max-rate")
                || a.contains("c-plan-ahead")
                || a.contains("set-defaults")));
        }
    }
}
