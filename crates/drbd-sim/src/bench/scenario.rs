//! The built-in scenarios: two nodes (or one disk shared by three
//! resyncs), a foreground load, resyncs to run, and the latency SLO.
//!
//! Every scenario uses the same disk (200 MiB/s, 20k IOPS, 1 ms service
//! time, 10 % noise) unless it says otherwise, 64 KiB application writes,
//! and the SLO "a 1 s window's p99 write latency on the Primary's DRBD
//! device is at most 20 ms".

use std::time::Duration;

use crate::options::PeerDeviceOptions;
use crate::plant::{
    DiskSpec, LinkSpec, LoadProfile, NodeId, Plant, PlantError, ResyncId, ResyncSpec, VolumeId,
    VolumeSpec,
};

/// KiB in one GiB.
pub const GIB: f64 = 1024.0 * 1024.0;

/// One volume of a scenario: its load and how much of it is out of sync
/// (all volumes: Primary on node `a`, resync from `a` to `b`).
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeCase {
    pub load: LoadProfile,
    pub out_of_sync_kib: f64,
}

/// A benchmark scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub disk: DiskSpec,
    pub link: LinkSpec,
    pub volumes: Vec<VolumeCase>,
    /// The SLO: a window's p99 write latency above this is a violation.
    pub target_p99: Duration,
    /// Plant seed (fixed: the same scenario gives the same numbers).
    pub seed: u64,
    /// A run stops here even if a resync has not finished.
    pub limit: Duration,
}

/// A built plant and the ids the runners need.
#[derive(Debug, Clone)]
pub struct Built {
    pub plant: Plant,
    pub volumes: Vec<VolumeId>,
    pub resyncs: Vec<ResyncId>,
    /// The SyncTarget (every resync's).
    pub target: NodeId,
}

/// The disk of every built-in scenario.
pub fn standard_disk() -> DiskSpec {
    DiskSpec {
        capacity_mib_s: 200.0,
        capacity_iops: 20_000.0,
        service_ms: 1.0,
        queue_limit: 256.0,
        noise: 0.1,
    }
}

impl Scenario {
    /// A scenario with the standard disk and a 10 GbE link.
    fn standard(name: &str, description: &str, volumes: Vec<VolumeCase>) -> Self {
        Self {
            name: name.to_owned(),
            description: description.to_owned(),
            disk: standard_disk(),
            link: LinkSpec::default(),
            volumes,
            target_p99: Duration::from_millis(30),
            seed: 42,
            limit: Duration::from_secs(6 * 3600),
        }
    }

    /// The plant at time 0 with every resync started with `options` on both
    /// sides.
    pub fn build(&self, options: PeerDeviceOptions) -> Result<Built, PlantError> {
        let mut plant = Plant::new(self.seed);
        let a = plant.add_node("a", self.disk)?;
        let b = plant.add_node("b", self.disk)?;
        plant.add_link(a, b, self.link)?;
        let mut volumes = Vec::new();
        let mut resyncs = Vec::new();
        for (i, case) in self.volumes.iter().enumerate() {
            let mut spec = VolumeSpec::new(&format!("r{i}/0"), a, vec![b]);
            spec.load = case.load.clone();
            spec.write_io_kib = 64.0;
            let v = plant.add_volume(spec)?;
            let mut r = ResyncSpec::new(v, a, b, case.out_of_sync_kib);
            r.target_options = options;
            r.source_options = options;
            resyncs.push(plant.start_resync(r)?);
            volumes.push(v);
        }
        Ok(Built {
            plant,
            volumes,
            resyncs,
            target: b,
        })
    }
}

fn constant(mib_s: f64) -> LoadProfile {
    LoadProfile::Constant {
        write_mib_s: mib_s,
        read_mib_s: 0.0,
    }
}

/// The names of the built-in scenarios, in order.
pub const BUILTIN_NAMES: [&str; 6] = [
    "steady",
    "steps",
    "bursts",
    "diurnal",
    "network-bound",
    "three-resyncs",
];

/// A built-in scenario by name.
pub fn builtin(name: &str) -> Option<Scenario> {
    let one = |load: LoadProfile, gib: f64| {
        vec![VolumeCase {
            load,
            out_of_sync_kib: gib * GIB,
        }]
    };
    let s = match name {
        "steady" => Scenario::standard(
            name,
            "steady ingest at 50% of disk capacity (100 of 200 MiB/s), 40 GiB out of sync",
            one(constant(100.0), 40.0),
        ),
        "steps" => Scenario::standard(
            name,
            "ingest 20% -> 70% (at 5 min) -> 20% (at 15 min), 100 GiB",
            one(
                LoadProfile::Steps(vec![(0.0, 40.0), (300.0, 140.0), (900.0, 40.0)]),
                100.0,
            ),
        ),
        "bursts" => Scenario::standard(
            name,
            "on/off bursts: 70% for 60 s, idle for 60 s, 40 GiB",
            one(
                LoadProfile::Bursts {
                    period_s: 120.0,
                    duty: 0.5,
                    level_mib_s: 140.0,
                },
                40.0,
            ),
        ),
        "diurnal" => Scenario::standard(
            name,
            "diurnal ramp 10% -> 70% -> 10% over 30 min, 100 GiB",
            one(
                LoadProfile::Diurnal {
                    min_mib_s: 20.0,
                    max_mib_s: 140.0,
                    period_s: 1800.0,
                },
                100.0,
            ),
        ),
        "network-bound" => {
            let mut s = Scenario::standard(
                name,
                "100 MiB/s link shared by 30 MiB/s replication and the resync; disks 1 GiB/s, 40 GiB",
                one(constant(30.0), 40.0),
            );
            s.disk.capacity_mib_s = 1024.0;
            s.disk.capacity_iops = 100_000.0;
            s.disk.service_ms = 0.5;
            s.link = LinkSpec {
                bandwidth_mib_s: 100.0,
                rtt_ms: 0.5,
            };
            s
        }
        "three-resyncs" => Scenario::standard(
            name,
            "three volumes on one disk pair, 3 x 30 MiB/s ingest (45%), 10 + 20 + 30 GiB",
            vec![
                VolumeCase {
                    load: constant(30.0),
                    out_of_sync_kib: 30.0 * GIB,
                },
                VolumeCase {
                    load: constant(30.0),
                    out_of_sync_kib: 10.0 * GIB,
                },
                VolumeCase {
                    load: constant(30.0),
                    out_of_sync_kib: 20.0 * GIB,
                },
            ],
        ),
        _ => return None,
    };
    Some(s)
}

/// Every built-in scenario.
pub fn builtins() -> Vec<Scenario> {
    BUILTIN_NAMES.iter().filter_map(|n| builtin(n)).collect()
}
