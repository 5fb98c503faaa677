//! Runs the strategies on the plants of [`super::family`] and judges them.
//!
//! The agent strategies step the law once per 1 s of plant time on an
//! [`Observation`] built from the plant's `stat` texts as the daemon builds
//! it (the DRBD device on a Primary SyncTarget; the backing device and the
//! replicated writes on a Secondary SyncTarget), with the resync's achieved
//! rate as `dbdt1`. Each window is judged by the agent's own signal (the
//! window's mean latency of that device).
//!
//! Figures per run ([`FamilyMetrics`]):
//! - `over_share`: windows whose mean latency exceeds 1.1 × target, out of
//!   all windows except the 3 s after the load step;
//! - `oracle_ratio`: resynced KiB over the oracle's ([`Plant::oracle_kib_s`]
//!   summed over the same windows);
//! - `settle_s` / `settle_after_step_s`: from taking charge (from the
//!   step) until the rate set stays within ±10 % of its mean over the
//!   phase's last 20 s (constant strategies: 0).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::family::{plants, Plant, Role, IO_KIB, STEP_AT_S};
use super::run::{constant_options, BenchError, C_MAX_RATE_DEFAULT, FIXED_RATE};
use crate::diskstats::{derive, parse_stat, DiskStat, IoRates};
use crate::options::PeerDeviceOptions;
use crate::plant::{
    LoadProfile, NodeId, Plant as Sim, PlantError, ResyncId, ResyncSpec, VolumeId, VolumeSpec,
    Window,
};
use crate::throttle::backing::replicated_write_kib;
use crate::throttle::{Controller, KibPerSec, LawPolicy, Observation, Statistic};

/// Windows over this many times the target count as over.
pub const OVER: f64 = 1.1;
/// Windows this long after the step are not judged for `over_share`.
pub const STEP_GRACE_S: f64 = 3.0;
/// Settled = within this share of the phase's final rate …
pub const SETTLE_BAND: f64 = 0.1;
/// … the mean over this many last seconds of the phase.
pub const SETTLE_TAIL_S: f64 = 20.0;
/// The agent's ceiling in the family (above every plant's capacity).
pub const FAMILY_MAX_RATE: u64 = 4 * 1024 * 1024;

/// The strategies of the family table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FamilyStrategy {
    /// The law with the queue model.
    Agent,
    /// The law before the model (feedback only).
    Previous,
    Unthrottled,
    DrbdDefaults,
    Fixed,
}

impl FamilyStrategy {
    pub const ALL: [FamilyStrategy; 5] = [
        Self::Agent,
        Self::Previous,
        Self::Unthrottled,
        Self::DrbdDefaults,
        Self::Fixed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Previous => "previous",
            Self::Unthrottled => "unthrottled",
            Self::DrbdDefaults => "drbd-defaults",
            Self::Fixed => "fixed",
        }
    }
}

/// How one strategy did on one plant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FamilyMetrics {
    pub over_share: f64,
    pub oracle_ratio: f64,
    pub mean_latency_ms: f64,
    pub settle_s: f64,
    /// `None` for a steady plant.
    pub settle_after_step_s: Option<f64>,
}

/// One plant's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilyRow {
    pub plant: String,
    pub target_ms: f64,
    pub oracle_kib_s: f64,
    pub results: Vec<(FamilyStrategy, FamilyMetrics)>,
}

/// The whole family (`--json` prints this).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilyReport {
    pub rows: Vec<FamilyRow>,
}

struct Built {
    sim: Sim,
    volume: VolumeId,
    resync: ResyncId,
    target: NodeId,
}

fn plant_err(p: &Plant) -> impl Fn(PlantError) -> BenchError + '_ {
    move |source| BenchError::Plant {
        scenario: p.name(),
        source,
    }
}

fn signal_err(p: &Plant, reason: String) -> BenchError {
    BenchError::Signal {
        scenario: p.name(),
        reason,
    }
}

fn build(p: &Plant, options: PeerDeviceOptions) -> Result<Built, PlantError> {
    let mut sim = Sim::new(p.seed);
    let a = sim.add_node("a", p.disk())?;
    let b = sim.add_node("b", p.disk())?;
    sim.add_link(a, b, p.link())?;
    // The resync runs a → b; b is the SyncTarget (and the Primary in the
    // Primary role).
    let (primary, secondary) = match p.role {
        Role::Secondary => (a, b),
        Role::Primary => (b, a),
    };
    let mut spec = VolumeSpec::new("r0/0", primary, vec![secondary]);
    spec.load = if p.is_step() {
        LoadProfile::Steps(vec![
            (0.0, p.app_mib_s(0.0)),
            (STEP_AT_S, p.app_mib_s(STEP_AT_S)),
        ])
    } else {
        LoadProfile::Constant {
            write_mib_s: p.app_mib_s(0.0),
            read_mib_s: 0.0,
        }
    };
    spec.write_io_kib = IO_KIB;
    let volume = sim.add_volume(spec)?;
    let mut r = ResyncSpec::new(volume, a, b, 1.0e12);
    r.target_options = options;
    r.source_options = options;
    r.io_kib = IO_KIB;
    // Room for a fast disk's rate in flight.
    r.max_buffers = 16_384;
    let resync = sim.start_resync(r)?;
    Ok(Built {
        sim,
        volume,
        resync,
        target: b,
    })
}

/// One window as judged: start, the signal's mean latency, resynced KiB/s,
/// the rate set.
#[derive(Debug, Clone, Copy)]
struct Judged {
    start_s: f64,
    latency_ms: f64,
    resync_kib_s: f64,
    set_kib_s: f64,
}

fn judged(p: &Plant, b: &Built, w: &Window, set: f64) -> Judged {
    let latency_ms = match p.role {
        Role::Primary => w
            .volumes
            .iter()
            .find(|v| v.volume == b.volume)
            .map_or(0.0, |v| v.write_mean_ms),
        Role::Secondary => w
            .nodes
            .iter()
            .find(|n| n.node == b.target)
            .map_or(0.0, |n| n.mean_latency_ms),
    };
    Judged {
        start_s: w.start_s,
        latency_ms,
        resync_kib_s: w.resyncs.iter().map(|r| r.rate_kib_s).sum(),
        set_kib_s: set,
    }
}

fn read(text: Result<String, PlantError>, p: &Plant) -> Result<DiskStat, BenchError> {
    let text = text.map_err(plant_err(p))?;
    parse_stat(&text).map_err(|e| signal_err(p, e.to_string()))
}

fn rates(before: &DiskStat, now: &DiskStat, p: &Plant) -> Result<IoRates, BenchError> {
    derive(before, now, Duration::from_secs(1)).map_err(|e| signal_err(p, e.to_string()))
}

/// The law's policy on a family plant: its mean target, 250 KiB/s floor,
/// a ceiling above any plant's capacity.
pub fn family_policy(p: &Plant) -> LawPolicy {
    LawPolicy {
        latency_target: Duration::from_secs_f64(p.target_ms() / 1000.0),
        statistic: Statistic::Mean,
        min_rate: KibPerSec::new(250).unwrap_or(KibPerSec::MIN),
        max_rate: KibPerSec::new(FAMILY_MAX_RATE).unwrap_or(KibPerSec::MAX),
        floor_doubling: Duration::from_secs(600),
        floor_cap: KibPerSec::new(25_600).unwrap_or(KibPerSec::MIN),
    }
}

fn run_law(p: &Plant, mut controller: Controller) -> Result<Vec<Judged>, BenchError> {
    let policy = family_policy(p);
    let mut b = build(p, constant_options(policy.min_rate.get(), 0)).map_err(plant_err(p))?;
    let mut device = read(b.sim.device_stat_text(b.volume), p)?;
    let mut backing = read(b.sim.backing_stat_text(b.target), p)?;
    let mut set = policy.min_rate.as_f64();
    let mut out = Vec::new();
    while b.sim.now_s() < p.duration_s() {
        let windows = b.sim.step(Duration::from_secs(1));
        let Some(w) = windows.last() else { continue };
        out.push(judged(p, &b, w, set));
        let now_device = read(b.sim.device_stat_text(b.volume), p)?;
        let now_backing = read(b.sim.backing_stat_text(b.target), p)?;
        let dev = rates(&device, &now_device, p)?;
        let back = rates(&backing, &now_backing, p)?;
        device = now_device;
        backing = now_backing;
        let achieved = w.resyncs.iter().map(|r| r.rate_kib_s).sum::<f64>();
        let mut obs = Observation {
            elapsed: Duration::from_secs(1),
            backing_write_latency_ms: back.write_latency_ms,
            backing_write_kib_per_sec: Some(back.write_bytes_per_sec / 1024.0),
            out_of_sync_kib: Some(u64::MAX / 2),
            resync_kib_per_sec: Some(achieved),
            uptodate_replicas: 1,
            ..Observation::default()
        };
        match p.role {
            Role::Primary => {
                obs.app_write_latency_ms = dev.write_latency_ms;
                obs.app_queue_depth = Some(dev.queue_depth);
                obs.foreground_kib_per_sec =
                    Some((dev.write_bytes_per_sec + dev.read_bytes_per_sec) / 1024.0);
            }
            Role::Secondary => {
                // The Secondary's DRBD device carries no application I/O.
                obs.foreground_kib_per_sec = Some(0.0);
                obs.replicated_write_kib_per_sec =
                    replicated_write_kib(Some(&back), Some(achieved));
            }
        }
        let decision = controller.step(&policy, &obs);
        set = decision.rate.as_f64();
        b.sim
            .set_target_options(b.resync, constant_options(decision.rate.get(), 0))
            .map_err(plant_err(p))?;
    }
    Ok(out)
}

fn run_constant(p: &Plant, options: PeerDeviceOptions) -> Result<Vec<Judged>, BenchError> {
    let mut b = build(p, options).map_err(plant_err(p))?;
    let mut out = Vec::new();
    while b.sim.now_s() < p.duration_s() {
        for w in b.sim.step(Duration::from_secs(1)) {
            out.push(judged(p, &b, &w, options.c_max_rate as f64));
        }
    }
    Ok(out)
}

/// Time from `from` until the rate set stays within the band around the
/// mean of the last [`SETTLE_TAIL_S`] before `to`.
fn settle(run: &[Judged], from: f64, to: f64) -> f64 {
    let phase: Vec<&Judged> = run
        .iter()
        .filter(|j| j.start_s >= from && j.start_s < to)
        .collect();
    let tail: Vec<f64> = phase
        .iter()
        .filter(|j| j.start_s >= to - SETTLE_TAIL_S)
        .map(|j| j.set_kib_s)
        .collect();
    if tail.is_empty() {
        return 0.0;
    }
    let last = tail.iter().sum::<f64>() / tail.len() as f64;
    let outside = |j: &&&Judged| (j.set_kib_s - last).abs() > SETTLE_BAND * last;
    match phase.iter().rposition(|j| outside(&j)) {
        Some(i) => phase.get(i + 1).map_or(to, |j| j.start_s) - from,
        None => 0.0,
    }
}

fn judge(p: &Plant, run: &[Judged]) -> FamilyMetrics {
    let target = p.target_ms();
    let graced =
        |j: &Judged| p.is_step() && j.start_s >= STEP_AT_S && j.start_s < STEP_AT_S + STEP_GRACE_S;
    let counted: Vec<&Judged> = run.iter().filter(|j| !graced(j)).collect();
    let over = counted
        .iter()
        .filter(|j| j.latency_ms > OVER * target)
        .count();
    let resynced: f64 = run.iter().map(|j| j.resync_kib_s).sum();
    let oracle: f64 = run.iter().map(|j| p.oracle_kib_s(j.start_s)).sum();
    let mean = run.iter().map(|j| j.latency_ms).sum::<f64>() / run.len().max(1) as f64;
    let (first_end, step) = if p.is_step() {
        (STEP_AT_S, Some(settle(run, STEP_AT_S, p.duration_s())))
    } else {
        (p.duration_s(), None)
    };
    FamilyMetrics {
        over_share: over as f64 / counted.len().max(1) as f64,
        oracle_ratio: if oracle > 0.0 { resynced / oracle } else { 0.0 },
        mean_latency_ms: mean,
        settle_s: settle(run, 0.0, first_end),
        settle_after_step_s: step,
    }
}

/// Runs one strategy on one plant.
pub fn run_plant(p: &Plant, s: FamilyStrategy) -> Result<FamilyMetrics, BenchError> {
    let run = match s {
        FamilyStrategy::Agent => run_law(p, Controller::new())?,
        FamilyStrategy::Previous => run_law(p, Controller::feedback_only())?,
        FamilyStrategy::Unthrottled => run_constant(p, constant_options(C_MAX_RATE_DEFAULT, 0))?,
        FamilyStrategy::DrbdDefaults => run_constant(p, constant_options(C_MAX_RATE_DEFAULT, 250))?,
        FamilyStrategy::Fixed => run_constant(p, constant_options(FIXED_RATE, 0))?,
    };
    Ok(judge(p, &run))
}

/// A constant c-max-rate of `kib_s` on one plant (the oracle's rate, for
/// the seed sweep: how often the plant's own noise puts a window over).
pub fn run_constant_rate(p: &Plant, kib_s: u64) -> Result<FamilyMetrics, BenchError> {
    let run = run_constant(p, constant_options(kib_s, 0))?;
    Ok(judge(p, &run))
}

/// Every strategy on every plant of the family.
pub fn run_family() -> Result<FamilyReport, BenchError> {
    run_family_of(&plants())
}

/// Every strategy on every plant given (`unseen_plants()`: the family the
/// law was not tuned on).
pub fn run_family_of(plants: &[Plant]) -> Result<FamilyReport, BenchError> {
    let mut rows = Vec::new();
    for p in plants {
        let results = FamilyStrategy::ALL
            .iter()
            .map(|&s| run_plant(p, s).map(|m| (s, m)))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(FamilyRow {
            plant: p.name(),
            target_ms: p.target_ms(),
            oracle_kib_s: p.oracle_kib_s(0.0),
            results,
        });
    }
    Ok(FamilyReport { rows })
}

/// The family table: per plant the agent's figures in full, and the
/// others' share of the oracle and of windows over.
pub fn render_family(report: &FamilyReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<32} {:>7} {:>8} | {:>6} {:>6} {:>6} {:>6} | {:>11} {:>11} {:>11} {:>11}",
        "plant",
        "tgt ms",
        "orc MiB",
        "/orc",
        "over%",
        "settle",
        "step",
        "previous",
        "unthrottled",
        "defaults",
        "fixed"
    );
    for row in &report.rows {
        let get = |s: FamilyStrategy| row.results.iter().find(|(k, _)| *k == s).map(|(_, m)| *m);
        let Some(agent) = get(FamilyStrategy::Agent) else {
            continue;
        };
        let pair = |s: FamilyStrategy| {
            get(s).map_or_else(String::new, |m| {
                format!("{:.2}/{:.0}%", m.oracle_ratio, m.over_share * 100.0)
            })
        };
        let _ = writeln!(
            out,
            "{:<32} {:>7.2} {:>8.0} | {:>6.2} {:>6.1} {:>6.0} {:>6} | {:>11} {:>11} {:>11} {:>11}",
            row.plant,
            row.target_ms,
            row.oracle_kib_s / 1024.0,
            agent.oracle_ratio,
            agent.over_share * 100.0,
            agent.settle_s,
            agent
                .settle_after_step_s
                .map_or_else(|| "-".to_owned(), |s| format!("{s:.0}")),
            pair(FamilyStrategy::Previous),
            pair(FamilyStrategy::Unthrottled),
            pair(FamilyStrategy::DrbdDefaults),
            pair(FamilyStrategy::Fixed),
        );
    }
    out.push_str(
        "/orc: resynced ÷ the oracle's (the constant rate that just meets the target under the load of the moment); \
over%: 1 s windows with mean latency > 1.1 × target, except the 3 s after the step; \
settle/step: s from taking charge / from the step until the set rate stays within ±10 % of its final level; \
others: /orc and over%.\n",
    );
    out
}
