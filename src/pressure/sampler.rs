//! The publishing side: every interval, sample the DRBD device of each
//! volume this node is Primary of and publish a [`PressureReport`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, RwLock};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, warn};

use crate::diskstats::{derive, read_stat_file, DiskStat, IoRates};
use crate::events2::Role;
use crate::runtime::CancellationToken;
use crate::runtime::Shared;
use crate::state::Model;
use crate::throttle::ThrottleConfig;

use super::{pressure, PressureReport, VolumePressure};

/// The report served on `/v1/pressure`.
pub type SharedReport = Arc<RwLock<PressureReport>>;

/// A window without completed writes is widened up to this many
/// intervals before "no writes" is published.
const HOLD_INTERVALS: u32 = 4;

/// One volume of a resource this node is Primary of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryVolume {
    pub resource: String,
    pub volume: u32,
    pub minor: u32,
}

/// The volumes (with a known minor) of the resources this node is Primary of.
pub fn primary_volumes(model: &Model) -> Vec<PrimaryVolume> {
    model
        .resources()
        .values()
        .filter(|r| r.role == Some(Role::Primary))
        .flat_map(|r| {
            r.devices.values().filter_map(|d| {
                Some(PrimaryVolume {
                    resource: r.name.clone(),
                    volume: d.volume,
                    minor: d.minor?,
                })
            })
        })
        .collect()
}

/// The figures of one volume from its rates and the target in force.
pub fn volume_pressure(v: &PrimaryVolume, rates: &IoRates, target_ms: f64) -> VolumePressure {
    VolumePressure {
        resource: v.resource.clone(),
        volume: v.volume,
        write_latency_ms: rates.write_latency_ms,
        queue_depth: rates.queue_depth,
        foreground_kib_per_sec: (rates.read_bytes_per_sec + rates.write_bytes_per_sec) / 1024.0,
        target_ms,
        pressure: pressure(rates.write_latency_ms, target_ms),
    }
}

/// Samples and publishes until `stop`.
/// Where the latency targets come from: the live `[throttle]` section and
/// the LINSTOR controller's policies (the throttle's own precedence).
#[derive(Debug, Clone)]
pub struct Policies {
    pub throttle: watch::Receiver<ThrottleConfig>,
    pub remote: crate::linstor::policy::SharedRemotePolicies,
}

pub async fn run_sampler(
    node_name: String,
    sysfs_root: PathBuf,
    interval: Duration,
    policies: Policies,
    shared: Arc<Shared>,
    report: SharedReport,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut previous: BTreeMap<u32, (DiskStat, Instant)> = BTreeMap::new();
    let mut last_published: BTreeMap<u32, VolumePressure> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => return,
        }
        let volumes = primary_volumes(&shared.state.read().await.model);
        let config = policies.throttle.borrow().clone();
        let local = chrono::Local::now().naive_local();
        let mut resources = Vec::new();
        let mut window_ms = 0;
        let mut seen = BTreeMap::new();
        for v in &volumes {
            let path = sysfs_root.join(format!("block/drbd{}/stat", v.minor));
            let stat = match read_stat_file(&path).await {
                Ok(stat) => stat,
                Err(e) if e.is_missing() => {
                    debug!(resource = %v.resource, volume = v.volume, error = %e, "pressure: no stat file");
                    continue;
                }
                Err(e) => {
                    warn!(resource = %v.resource, volume = v.volume, error = %e, "pressure: bad stat file");
                    continue;
                }
            };
            let now = Instant::now();
            let mut sample = (stat, now);
            if let Some((before, at)) = previous.get(&v.minor) {
                let elapsed = now.saturating_duration_since(*at);
                if let Ok(rates) = derive(before, &stat, elapsed) {
                    if rates.writes == 0 && elapsed < interval * HOLD_INTERVALS {
                        // No write completed yet (or the counters are
                        // updated coarsely): widen the window rather than
                        // publish a gap; the last figures stand meanwhile.
                        sample = (*before, *at);
                        if let Some(last) = last_published.get(&v.minor) {
                            resources.push(last.clone());
                        }
                    } else {
                        let remote = crate::linstor::policy::snapshot(&policies.remote);
                        let target = config
                            .policy_with(&v.resource, local, remote.get(&v.resource))
                            .law
                            .latency_target;
                        let figures = volume_pressure(v, &rates, target.as_secs_f64() * 1000.0);
                        last_published.insert(v.minor, figures.clone());
                        resources.push(figures);
                        window_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
                    }
                }
            }
            seen.insert(v.minor, sample);
        }
        last_published.retain(|minor, _| seen.contains_key(minor));
        previous = seen;
        *report.write().await = PressureReport {
            node: node_name.clone(),
            window_ms,
            resources,
        };
    }
}
