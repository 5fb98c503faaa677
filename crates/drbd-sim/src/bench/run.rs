//! The strategies, each a runner over the plant in virtual time.
//!
//! - `agent`: every 1 s the law's [`Controller`] steps on an
//!   [`Observation`] built as the daemon builds it: the DRBD device's and
//!   the backing device's `stat` text, parsed and derived
//!   ([`crate::diskstats`]); the resync rate (`dbdt1`) and out-of-sync
//!   from the resync's status. Its rate becomes the SyncTarget's
//!   c-max-rate, with c-min-rate 0 on both sides. Several resyncs share
//!   one controller (floors and ceilings summed) and [`allocate`] splits
//!   its rate.
//! - `unthrottled`: c-max-rate 100 MiB/s, c-min-rate 0.
//! - `drbd-defaults`: c-max-rate 100 MiB/s, c-min-rate 250 KiB/s, both sides.
//! - `fixed`: c-max-rate 10 MiB/s, c-min-rate 0.
//! - `oracle`: the best constant c-max-rate (see [`super::oracle`]).

use std::time::Duration;

use thiserror::Error;

use super::metrics::{compute, RunMetrics, Sample};
use super::scenario::{Built, Scenario};
use crate::diskstats::{derive, parse_stat, DiskStat};
use crate::options::PeerDeviceOptions;
use crate::plant::{PlantError, Window};
use crate::throttle::{allocate, bounds, Claim, Controller, KibPerSec, LawPolicy, Observation};

/// DRBD's default c-max-rate, KiB/s.
pub const C_MAX_RATE_DEFAULT: u64 = 102_400;
/// The `fixed` strategy's rate, KiB/s.
pub const FIXED_RATE: u64 = 10_240;

/// The strategies, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Agent,
    Unthrottled,
    DrbdDefaults,
    Fixed,
    Oracle,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [
        Self::Agent,
        Self::Unthrottled,
        Self::DrbdDefaults,
        Self::Fixed,
        Self::Oracle,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Unthrottled => "unthrottled",
            Self::DrbdDefaults => "drbd-defaults",
            Self::Fixed => "fixed",
            Self::Oracle => "oracle",
        }
    }
}

/// A run that could not be done.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BenchError {
    #[error("scenario '{scenario}': {source}")]
    Plant {
        scenario: String,
        #[source]
        source: PlantError,
    },
    #[error("scenario '{scenario}': {reason}")]
    Signal { scenario: String, reason: String },
    #[error("unknown scenario '{0}' (built in: steady, steps, bursts, diurnal, network-bound, three-resyncs; or a path to a .toml scenario file)")]
    UnknownScenario(String),
    #[error(transparent)]
    File(#[from] super::file::ScenarioFileError),
}

/// The options a constant strategy sets, given its c-max-rate and c-min-rate.
pub fn constant_options(c_max_rate: u64, c_min_rate: u64) -> PeerDeviceOptions {
    PeerDeviceOptions {
        c_max_rate,
        c_min_rate,
        ..PeerDeviceOptions::default()
    }
}

/// The law's policy in the benchmark: the scenario's p99 target (p99
/// estimated from the diskstats mean), 250 KiB/s floor, 100 MiB/s ceiling,
/// floor doubling every 10 min at reduced redundancy up to 25 MiB/s.
pub fn law_policy(scenario: &Scenario) -> LawPolicy {
    LawPolicy {
        latency_target: scenario.target_p99,
        statistic: crate::throttle::Statistic::P99,
        min_rate: KibPerSec::new(250).unwrap_or(KibPerSec::MIN),
        max_rate: KibPerSec::new(C_MAX_RATE_DEFAULT).unwrap_or(KibPerSec::MAX),
        floor_doubling: Duration::from_secs(600),
        floor_cap: KibPerSec::new(25_600).unwrap_or(KibPerSec::MIN),
    }
}

pub(super) fn plant_err(s: &Scenario) -> impl Fn(PlantError) -> BenchError + '_ {
    move |source| BenchError::Plant {
        scenario: s.name.clone(),
        source,
    }
}

/// A window as a sample (worst volume), with the rate in force.
pub(super) fn sample(w: &Window, set_rate: f64) -> Sample {
    let worst =
        |f: fn(&crate::plant::VolumeWindow) -> f64| w.volumes.iter().map(f).fold(0.0, f64::max);
    Sample {
        start_s: w.start_s,
        p50_ms: worst(|v| v.write_p50_ms),
        p99_ms: worst(|v| v.write_p99_ms),
        offered_mib_s: w.volumes.iter().map(|v| v.offered_write_mib_s).sum(),
        set_rate_kib_s: set_rate,
    }
}

pub(super) fn done_times(b: &Built, s: &Scenario) -> Result<Vec<Option<f64>>, BenchError> {
    b.resyncs
        .iter()
        .map(|&r| {
            b.plant
                .resync_status(r)
                .map(|st| st.done_at_s)
                .map_err(plant_err(s))
        })
        .collect()
}

/// A run with the same options all along (both sides).
pub fn run_constant(
    scenario: &Scenario,
    options: PeerDeviceOptions,
) -> Result<RunMetrics, BenchError> {
    let mut b = scenario.build(options).map_err(plant_err(scenario))?;
    let set_rate = options.c_max_rate as f64 * b.resyncs.len() as f64;
    let limit = scenario.limit.as_secs_f64();
    let mut samples = Vec::new();
    while b.plant.now_s() < limit {
        for w in b.plant.step(Duration::from_secs(60)) {
            samples.push(sample(&w, set_rate));
        }
        if done_times(&b, scenario)?.iter().all(Option::is_some) {
            break;
        }
    }
    let done = done_times(&b, scenario)?;
    Ok(compute(
        &samples,
        &done,
        limit,
        scenario.target_p99.as_secs_f64() * 1000.0,
    ))
}

/// Parses a plant stat text as the daemon parses `/sys/block/*/stat`.
pub(super) fn read_stat(text: &str, scenario: &Scenario) -> Result<DiskStat, BenchError> {
    parse_stat(text).map_err(|e| BenchError::Signal {
        scenario: scenario.name.clone(),
        reason: e.to_string(),
    })
}

/// The agent: one controller for all the scenario's resyncs.
pub fn run_agent(scenario: &Scenario) -> Result<RunMetrics, BenchError> {
    let single = law_policy(scenario);
    let start = constant_options(single.min_rate.get(), 0);
    let mut b = scenario.build(start).map_err(plant_err(scenario))?;
    let n = b.resyncs.len() as u64;
    let scale = |k: KibPerSec| KibPerSec::new(k.get().saturating_mul(n.max(1))).unwrap_or(k);
    let shared = LawPolicy {
        min_rate: scale(single.min_rate),
        max_rate: scale(single.max_rate),
        floor_cap: scale(single.floor_cap),
        ..single
    };
    let interval = Duration::from_secs(1);
    let read_all = |b: &Built| -> Result<(Vec<DiskStat>, DiskStat), BenchError> {
        let mut devices = Vec::new();
        for &v in &b.volumes {
            let text = b.plant.device_stat_text(v).map_err(plant_err(scenario))?;
            devices.push(read_stat(&text, scenario)?);
        }
        let text = b
            .plant
            .backing_stat_text(b.target)
            .map_err(plant_err(scenario))?;
        Ok((devices, read_stat(&text, scenario)?))
    };
    let (mut devices, mut backing) = read_all(&b)?;
    let mut controller = Controller::new();
    let mut set_rate = shared.min_rate.as_f64();
    let mut samples = Vec::new();
    let limit = scenario.limit.as_secs_f64();
    while b.plant.now_s() < limit {
        let windows = b.plant.step(interval);
        for w in &windows {
            samples.push(sample(w, set_rate));
        }
        let done = done_times(&b, scenario)?;
        if done.iter().all(Option::is_some) {
            break;
        }
        let (now_devices, now_backing) = read_all(&b)?;
        let obs = observe(
            &b,
            scenario,
            &devices,
            &now_devices,
            &backing,
            &now_backing,
            windows.last(),
            interval,
        )?;
        devices = now_devices;
        backing = now_backing;
        let decision = controller.step(&shared, &obs);
        // Split among the resyncs still running.
        let mut claims = Vec::new();
        let mut running = Vec::new();
        for (&r, d) in b.resyncs.iter().zip(&done) {
            if d.is_some() {
                continue;
            }
            let st = b.plant.resync_status(r).map_err(plant_err(scenario))?;
            let (floor, ceiling) = bounds(&single, &obs);
            claims.push(Claim {
                uptodate_replicas: 1,
                out_of_sync_kib: st.left_kib.max(0.0) as u64,
                floor,
                ceiling,
            });
            running.push(r);
        }
        let shares = allocate(decision.rate, &claims).shares;
        for (&r, share) in running.iter().zip(shares) {
            b.plant
                .set_target_options(r, constant_options(share.get(), 0))
                .map_err(plant_err(scenario))?;
        }
        set_rate = decision.rate.as_f64();
    }
    let done = done_times(&b, scenario)?;
    Ok(compute(
        &samples,
        &done,
        limit,
        scenario.target_p99.as_secs_f64() * 1000.0,
    ))
}

/// One interval's observation, as the daemon would build it.
#[allow(clippy::too_many_arguments)]
fn observe(
    b: &Built,
    scenario: &Scenario,
    devices_before: &[DiskStat],
    devices_now: &[DiskStat],
    backing_before: &DiskStat,
    backing_now: &DiskStat,
    window: Option<&Window>,
    interval: Duration,
) -> Result<Observation, BenchError> {
    let signal = |e: crate::diskstats::DeltaError| BenchError::Signal {
        scenario: scenario.name.clone(),
        reason: e.to_string(),
    };
    // The shared signal: the worst volume's latency, the sum of the rest.
    let mut latency: Option<f64> = None;
    let mut queue = 0.0;
    let mut foreground = 0.0;
    for (before, now) in devices_before.iter().zip(devices_now) {
        let r = derive(before, now, interval).map_err(signal)?;
        if let Some(l) = r.write_latency_ms {
            latency = Some(latency.map_or(l, |x: f64| x.max(l)));
        }
        queue += r.queue_depth;
        foreground += (r.write_bytes_per_sec + r.read_bytes_per_sec) / 1024.0;
    }
    let backing = derive(backing_before, backing_now, interval).map_err(signal)?;
    let mut left = 0.0;
    for &r in &b.resyncs {
        left += b
            .plant
            .resync_status(r)
            .map_err(|source| BenchError::Plant {
                scenario: scenario.name.clone(),
                source,
            })?
            .left_kib;
    }
    let achieved = window.map(|w| w.resyncs.iter().map(|r| r.rate_kib_s).sum::<f64>());
    let now = b.plant.now_s();
    Ok(Observation {
        elapsed: interval,
        app_write_latency_ms: latency,
        app_write_latency_p99_ms: None,
        app_queue_depth: Some(queue),
        foreground_kib_per_sec: Some(foreground),
        backing_write_latency_ms: backing.write_latency_ms,
        backing_write_kib_per_sec: Some(backing.write_bytes_per_sec / 1024.0),
        // The bench's agent is on the Primary: the app's I/O is local.
        replicated_write_kib_per_sec: None,
        rs_in_flight_kib: None,
        pending: None,
        out_of_sync_kib: Some(left.max(0.0) as u64),
        resync_kib_per_sec: achieved,
        uptodate_replicas: 1,
        reduced_redundancy_for: Duration::from_secs_f64(now.max(0.0)),
        configured_c_max_rate: KibPerSec::new(C_MAX_RATE_DEFAULT),
        network_headroom_kib_per_sec: None,
    })
}
