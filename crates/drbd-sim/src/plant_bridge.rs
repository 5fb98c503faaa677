//! Plant mode: the [`Plant`] behind a simulated cluster.
//!
//! A scenario with plant keys (see [`super::scenario_plant`]) gets a plant
//! with one node per scenario node (its `disk`, else the plant's default
//! disk), a link between every two nodes (its `[[link]]`, else 10 GbE) and
//! a volume per resource volume: Primary the resource's `primary` (else its
//! first node), the other nodes its secondaries, 64 KiB writes, the load
//! its `load` (else `write-rate` as a constant write load on the Primary).
//!
//! Every cluster step first steps the plant to the same time. Then:
//! - a running resync of the cluster that has no plant resync yet starts
//!   one (source and target as in the cluster, the out-of-sync it holds);
//!   a plant resync whose cluster resync ended (done or disconnected) stops;
//! - the peer-device options of both sides (what `peer-device-options` and
//!   `adjust` left in the cluster) go to the plant every step;
//! - the resync's left KiB and the last window's rate become the cluster
//!   resync's progress (out-of-sync, done, dbdt1, ETA, the end);
//! - stat files: `drbd<minor>` on the volume's Primary counts the
//!   application's I/O, on other nodes nothing; every backing device of a
//!   node shows that node's plant disk (everything it served).
//!
//! Not modelled: role changes and disconnects do not change the plant's
//! replication (the Primary and its peers are fixed at the start).

use std::collections::BTreeMap;
use std::time::Duration;

use super::cluster::{pair, Cluster, Pair, ResyncPhase};
use super::disk::DiskStats;
use super::plant::{
    DiskSpec, LinkSpec, LoadProfile, NodeId, Plant, PlantError, ResyncId, ResyncSpec, VolumeId,
    VolumeSpec, Window,
};
use super::scenario::Scenario;

/// The plant's seed in plant mode (the same scenario gives the same run).
pub const SEED: u64 = 42;
/// Size of one application write in plant mode, KiB.
pub const WRITE_IO_KIB: f64 = 64.0;
/// Windows kept for [`PlantBridge::take_windows`] when nobody takes them.
const MAX_WINDOWS: usize = 600;

/// Where a stat file's counters come from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum StatSource {
    /// The DRBD device: the volume's counters on its Primary, else none.
    Device { volume: VolumeId, node: NodeId },
    /// A backing device: the node's disk.
    Backing(NodeId),
}

/// The plant and how the cluster's names map onto it.
#[derive(Debug, Clone)]
pub struct PlantBridge {
    plant: Plant,
    stepped_to: Duration,
    nodes: BTreeMap<String, NodeId>,
    volumes: BTreeMap<(String, u32), VolumeId>,
    /// Plant resyncs of running cluster resyncs, by (resource, pair, volume).
    resyncs: BTreeMap<(String, Pair, u32), ResyncId>,
    /// Last window's rate per plant resync, KiB/s.
    rates: BTreeMap<ResyncId, f64>,
    /// Cluster disk index → counters.
    stats: Vec<(usize, StatSource)>,
    windows: Vec<Window>,
}

/// A built plant and the ids of the scenario's nodes and volumes.
type Built = (
    Plant,
    BTreeMap<String, NodeId>,
    BTreeMap<(String, u32), VolumeId>,
);

/// Builds the plant of a scenario (no stat-file mapping yet).
fn build(scenario: &Scenario) -> Result<Built, PlantError> {
    let config = scenario.plant.clone().unwrap_or_default();
    let mut plant = Plant::new(SEED);
    let mut nodes = BTreeMap::new();
    for node in &scenario.nodes {
        let disk = config
            .disks
            .get(&node.name)
            .copied()
            .unwrap_or_else(DiskSpec::default);
        nodes.insert(node.name.clone(), plant.add_node(&node.name, disk)?);
    }
    for (i, a) in scenario.nodes.iter().enumerate() {
        for b in &scenario.nodes[i + 1..] {
            let (x, y) = pair(&a.name, &b.name);
            let spec = config
                .links
                .iter()
                .find(|(p, q, _)| *p == x && *q == y)
                .map_or_else(LinkSpec::default, |(_, _, s)| *s);
            plant.add_link(nodes[&x], nodes[&y], spec)?;
        }
    }
    let mut volumes = BTreeMap::new();
    for res in &scenario.resources {
        let Some(primary) = res.primary.as_ref().or(res.nodes.first()) else {
            continue;
        };
        let load = match config.loads.get(&res.name) {
            Some(load) => load.clone(),
            None if res.primary.is_some() => LoadProfile::Constant {
                write_mib_s: res.write_rate as f64 / 1024.0,
                read_mib_s: 0.0,
            },
            None => LoadProfile::default(),
        };
        let secondaries: Vec<NodeId> = res
            .nodes
            .iter()
            .filter(|n| *n != primary)
            .map(|n| nodes[n])
            .collect();
        for vol in &res.volumes {
            let mut spec = VolumeSpec::new(
                &format!("{}/{}", res.name, vol.volume),
                nodes[primary],
                secondaries.clone(),
            );
            spec.load = load.clone();
            spec.write_io_kib = WRITE_IO_KIB;
            volumes.insert((res.name.clone(), vol.volume), plant.add_volume(spec)?);
        }
    }
    Ok((plant, nodes, volumes))
}

/// Whether the scenario's plant can be built (for the scenario check).
pub fn check(scenario: &Scenario) -> Result<(), PlantError> {
    build(scenario).map(|_| ())
}

impl PlantBridge {
    /// The bridge of a cluster whose scenario is in plant mode.
    pub(super) fn for_cluster(cluster: &Cluster) -> Option<Self> {
        let scenario = &cluster.scenario;
        scenario.plant.as_ref()?;
        let (plant, nodes, volumes) = match build(scenario) {
            Ok(built) => built,
            Err(error) => {
                // The scenario check builds the same plant; not reached.
                tracing::error!(%error, "plant not built; plant mode off");
                return None;
            }
        };
        let mut stats = Vec::new();
        for (index, ((node, dev), _)) in cluster.disks.iter().enumerate() {
            let Some(&node_id) = nodes.get(node) else {
                continue;
            };
            for res in &scenario.resources {
                for vol in &res.volumes {
                    let Some(&volume) = volumes.get(&(res.name.clone(), vol.volume)) else {
                        continue;
                    };
                    if *dev == format!("drbd{}", vol.minor) {
                        stats.push((
                            index,
                            StatSource::Device {
                                volume,
                                node: node_id,
                            },
                        ));
                    } else if *dev == vol.backing_device && !stats.iter().any(|(i, _)| *i == index)
                    {
                        stats.push((index, StatSource::Backing(node_id)));
                    }
                }
            }
        }
        Some(Self {
            plant,
            stepped_to: Duration::ZERO,
            nodes,
            volumes,
            resyncs: BTreeMap::new(),
            rates: BTreeMap::new(),
            stats,
            windows: Vec::new(),
        })
    }

    pub fn plant(&self) -> &Plant {
        &self.plant
    }

    /// The 1 s windows completed since the last call (at most the last 600).
    pub fn take_windows(&mut self) -> Vec<Window> {
        std::mem::take(&mut self.windows)
    }

    fn stats_of(&self, source: StatSource) -> DiskStats {
        let stats = match source {
            StatSource::Backing(node) => self.plant.backing_stats(node),
            StatSource::Device { volume, node } => match self.plant.volume_spec(volume) {
                Ok(spec) if spec.primary == node => self.plant.device_stats(volume),
                _ => Ok(DiskStats::default()),
            },
        };
        stats.unwrap_or_default()
    }
}

impl Cluster {
    /// The plant, in plant mode.
    pub fn plant_bridge(&mut self) -> Option<&mut PlantBridge> {
        self.plant.as_mut()
    }

    /// Plant mode: steps the plant to `now` and carries its state over
    /// (see the module docs). Does nothing otherwise.
    pub(super) fn plant_step(&mut self, now: Duration) {
        let Some(mut bridge) = self.plant.take() else {
            return;
        };
        self.plant_resyncs(&mut bridge);
        let dt = now.saturating_sub(bridge.stepped_to);
        bridge.stepped_to = bridge.stepped_to.max(now);
        for window in bridge.plant.step(dt) {
            for r in &window.resyncs {
                bridge.rates.insert(r.resync, r.rate_kib_s);
            }
            bridge.windows.push(window);
        }
        let excess = bridge.windows.len().saturating_sub(MAX_WINDOWS);
        bridge.windows.drain(..excess);
        self.plant_progress(&bridge);
        for &(index, source) in &bridge.stats {
            let stats = bridge.stats_of(source);
            if let Some((_, disk)) = self.disks.get_mut(index) {
                disk.stats = stats;
            }
        }
        self.plant = Some(bridge);
    }

    /// Starts, stops and configures plant resyncs after the cluster's.
    fn plant_resyncs(&mut self, bridge: &mut PlantBridge) {
        let mut running = Vec::new();
        for name in &self.resyncing {
            let Some(truth) = self.resources.get(name) else {
                continue;
            };
            for ((p, vol), pv) in &truth.volumes {
                let Some(rs) = pv
                    .resync
                    .as_ref()
                    .filter(|r| r.phase == ResyncPhase::Running)
                else {
                    continue;
                };
                let options = |node: &str, peer: &str| {
                    let peer_id = self.scenario.node_id(peer).unwrap_or_default();
                    self.peer_device_options(node, name, peer_id, *vol)
                        .unwrap_or(truth.spec.options)
                };
                running.push((
                    (name.clone(), p.clone(), *vol),
                    rs.source.clone(),
                    rs.target.clone(),
                    rs.remaining_kib,
                    options(&rs.target, &rs.source),
                    options(&rs.source, &rs.target),
                ));
            }
        }
        let ended: Vec<_> = bridge
            .resyncs
            .keys()
            .filter(|k| !running.iter().any(|r| r.0 == **k))
            .cloned()
            .collect();
        for key in ended {
            if let Some(id) = bridge.resyncs.remove(&key) {
                let _ = bridge.plant.stop_resync(id);
                bridge.rates.remove(&id);
            }
        }
        for (key, source, target, left, target_options, source_options) in running {
            let id = match bridge.resyncs.get(&key) {
                Some(id) => *id,
                None => {
                    let (Some(&volume), Some(&s), Some(&t)) = (
                        bridge.volumes.get(&(key.0.clone(), key.2)),
                        bridge.nodes.get(&source),
                        bridge.nodes.get(&target),
                    ) else {
                        continue;
                    };
                    let mut spec = ResyncSpec::new(volume, s, t, left.max(0.0));
                    spec.target_options = target_options;
                    spec.source_options = source_options;
                    match bridge.plant.start_resync(spec) {
                        Ok(id) => {
                            tracing::debug!(resource = key.0, volume = key.2, %source, %target, "plant resync started");
                            bridge.resyncs.insert(key, id);
                            id
                        }
                        Err(error) => {
                            tracing::warn!(resource = key.0, volume = key.2, %error, "plant resync not started");
                            continue;
                        }
                    }
                }
            };
            let _ = bridge.plant.set_target_options(id, target_options);
            let _ = bridge.plant.set_source_options(id, source_options);
        }
    }

    /// Copies the plant resyncs' progress into the cluster's resyncs.
    fn plant_progress(&mut self, bridge: &PlantBridge) {
        let mut touched = Vec::new();
        for ((name, p, vol), id) in &bridge.resyncs {
            let Ok(status) = bridge.plant.resync_status(*id) else {
                continue;
            };
            let Some(rs) = self
                .resources
                .get_mut(name)
                .and_then(|t| t.volumes.get_mut(&(p.clone(), *vol)))
                .and_then(|pv| pv.resync.as_mut())
            else {
                continue;
            };
            rs.remaining_kib = if status.done_at_s.is_some() {
                0.0
            } else {
                status.left_kib
            };
            let rate = bridge.rates.get(id).copied().unwrap_or(0.0);
            rs.rate = rate.round().max(1.0) as u64;
            if !touched.contains(name) {
                touched.push(name.clone());
            }
        }
        for name in touched {
            self.touch(&name);
        }
    }
}

/// One line of `drbd-sim plant`: a 1 s window of the plant.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WindowLine {
    /// End of the window, s.
    pub t_s: f64,
    /// Worst volume's Primary write latency p50, ms.
    pub p50_ms: f64,
    /// Worst volume's Primary write latency p99, ms.
    pub p99_ms: f64,
    /// Sum of the resync rates, KiB/s.
    pub resync_kib_s: f64,
    /// Sum of what the running resyncs have left, KiB.
    pub out_of_sync_kib: f64,
}

impl WindowLine {
    pub fn of(w: &Window) -> Self {
        let worst =
            |f: fn(&super::plant::VolumeWindow) -> f64| w.volumes.iter().map(f).fold(0.0, f64::max);
        Self {
            t_s: w.end_s,
            p50_ms: worst(|v| v.write_p50_ms),
            p99_ms: worst(|v| v.write_p99_ms),
            // `+ 0.0`: an empty sum is -0.
            resync_kib_s: w.resyncs.iter().map(|r| r.rate_kib_s).sum::<f64>() + 0.0,
            out_of_sync_kib: w
                .resyncs
                .iter()
                .filter(|r| r.done_at_s.is_none())
                .map(|r| r.left_kib)
                .sum::<f64>()
                + 0.0,
        }
    }

    /// The text form: `t=12s p50=1.20ms p99=5.10ms resync=51200KiB/s out-of-sync=1048576KiB`.
    pub fn text(&self) -> String {
        format!(
            "t={:.0}s p50={:.2}ms p99={:.2}ms resync={:.0}KiB/s out-of-sync={:.0}KiB",
            self.t_s, self.p50_ms, self.p99_ms, self.resync_kib_s, self.out_of_sync_kib
        )
    }
}

/// Runs a plant-mode scenario's cluster in virtual time (100 ms steps, as
/// fast as the CPU allows) for `duration`; calls `each` per 1 s window.
/// None if the scenario is not in plant mode.
pub fn run_virtual(
    scenario: Scenario,
    duration: Duration,
    mut each: impl FnMut(&Window),
) -> Option<()> {
    let mut cluster = Cluster::new(scenario);
    cluster.plant.as_ref()?;
    let step = Duration::from_millis(100);
    let mut now = Duration::ZERO;
    while now < duration {
        now += step;
        cluster.step(now);
        for w in cluster.plant_bridge()?.take_windows() {
            each(&w);
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events2::{DiskState, ReplicationState};

    const SCENARIO: &str = r#"
[[node]]
name = "alpha"
node-id = 0
disk = { capacity-mib-s = "200MiB/s" }
[[node]]
name = "bravo"
node-id = 1
[[resource]]
name = "r0"
primary = "alpha"
options = { c-max-rate = "100M", c-min-rate = "0" }
load = { profile = "constant", write = "50MiB/s" }
[[resource.volume]]
volume = 0
minor = 1000
size = "10G"
[[event]]
at = "1s"
action = "reconnect"
nodes = ["alpha", "bravo"]
out-of-sync = "200M"
source = "alpha"
"#;

    fn replication(cluster: &Cluster, node: &str) -> (ReplicationState, DiskState, u64) {
        let views = cluster.views(node);
        let res = &views["r0"];
        let peer = if node == "alpha" { "bravo" } else { "alpha" };
        let pd = &res.connections[peer].peer_devices[&0];
        (
            pd.replication.clone().unwrap(),
            res.devices[&0].disk.clone().unwrap(),
            pd.stats.out_of_sync.unwrap(),
        )
    }

    #[test]
    fn plant_resync_runs_to_the_end_and_stat_files_follow_the_plant() {
        let scenario = crate::scenario::parse("t", SCENARIO).unwrap();
        let mut cluster = Cluster::new(scenario);
        let mut now = Duration::ZERO;
        let mut seen_target = false;
        while now < Duration::from_secs(20) {
            now += Duration::from_millis(100);
            cluster.step(now);
            let (rep, disk, _) = replication(&cluster, "bravo");
            if rep == ReplicationState::SyncTarget {
                seen_target = true;
                assert_eq!(disk, DiskState::Inconsistent);
            }
        }
        assert!(seen_target, "bravo never became SyncTarget");
        let (rep, disk, oos) = replication(&cluster, "bravo");
        assert_eq!(rep, ReplicationState::Established);
        assert_eq!(disk, DiskState::UpToDate);
        assert_eq!(oos, 0);
        // 200 MiB at up to 100 MiB/s: done within a few seconds of 20.
        let bridge = cluster.plant.as_ref().unwrap();
        let id = *bridge.resyncs.values().next().unwrap_or(&ResyncId(0));
        let status = bridge.plant.resync_status(id).unwrap();
        assert!(status.done_at_s.is_some(), "{status:?}");
        // Stat files: alpha's drbd1000 has the plant's application writes,
        // bravo's none; both backing disks served writes.
        cluster.sync_counters();
        let files: BTreeMap<String, String> = cluster.stat_files().into_iter().collect();
        let writes = |path: &str| -> u64 {
            files[path]
                .split_whitespace()
                .nth(4)
                .unwrap()
                .parse()
                .unwrap()
        };
        // ~50 MiB/s of 64 KiB writes for 20 s: ~16000.
        assert!(writes("alpha/sys/block/drbd1000/stat") > 10_000);
        assert_eq!(writes("bravo/sys/block/drbd1000/stat"), 0);
        assert!(writes("bravo/sys/block/dm-0/stat") > 10_000);
    }

    #[test]
    fn scenarios_without_plant_keys_have_no_plant() {
        let cluster = Cluster::new(crate::scenario::load("resync-3node").unwrap());
        assert!(cluster.plant.is_none());
        // The demo has disks and a load (issue 17): a plant.
        let cluster = Cluster::new(crate::scenario::load("demo").unwrap());
        assert!(cluster.plant.is_some());
    }
}
