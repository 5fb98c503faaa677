//! `drbd-agent bench pressure`: the agent on the SyncTarget with its local
//! signals only, against the same agent fed the Primary's published
//! pressure ([`crate::pressure`]), where the Primary is the SyncSource and
//! its disk is the bottleneck.
//!
//! The SyncTarget's disk is fast, so its backing device — the local
//! signal of a Secondary SyncTarget — never sees the trouble: the resync's
//! reads crowd the *source's* disk, where the application writes. Only the
//! Primary's latency shows it. The pressure reaches the throttle one
//! interval late (published, then fetched), as in the daemon.
//!
//! Pure and deterministic, like the throttle benchmark.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::metrics::{compute, RunMetrics};
use super::run::{
    constant_options, done_times, law_policy, plant_err, read_stat, sample, BenchError,
    C_MAX_RATE_DEFAULT,
};
use super::scenario::{Built, Scenario, VolumeCase, GIB};
use crate::diskstats::derive;
use crate::options::PeerDeviceOptions;
use crate::plant::{DiskSpec, LinkSpec, LoadProfile, Plant, ResyncSpec, VolumeSpec};
use crate::pressure::fetch::{record, Fetched};
use crate::pressure::{combine, pressure, PeerReport, PressureReport, VolumePressure};
use crate::throttle::backing::replicated_write_kib;
use crate::throttle::{Controller, KibPerSec, Observation};

/// The scenario: a 200 MiB/s disk on the Primary/SyncSource `a` with
/// 100 MiB/s of application writes, a 2 GiB/s disk on the SyncTarget `b`.
pub fn source_bound() -> Scenario {
    let mut s = super::scenario::builtin("steady").unwrap_or_else(fallback);
    s.name = "source-bound".to_owned();
    s.description = "Primary = SyncSource, its 200 MiB/s disk the bottleneck (100 MiB/s ingest + resync reads); SyncTarget disk 2 GiB/s; 20 GiB".to_owned();
    s.volumes = vec![VolumeCase {
        load: LoadProfile::Constant {
            write_mib_s: 100.0,
            read_mib_s: 0.0,
        },
        out_of_sync_kib: 20.0 * GIB,
    }];
    s
}

/// Only used if the built-in "steady" disappeared (it cannot: a constant).
fn fallback() -> Scenario {
    Scenario {
        name: String::new(),
        description: String::new(),
        disk: super::scenario::standard_disk(),
        link: LinkSpec {
            bandwidth_mib_s: 1150.0,
            rtt_ms: 0.2,
        },
        volumes: Vec::new(),
        target_p99: Duration::from_millis(30),
        seed: 1,
        limit: Duration::from_secs(6 * 3600),
    }
}

/// The SyncTarget's fast disk.
fn target_disk(s: &Scenario) -> DiskSpec {
    DiskSpec {
        capacity_mib_s: 2048.0,
        capacity_iops: 200_000.0,
        service_ms: 0.2,
        ..s.disk
    }
}

/// [`Scenario::build`] with the fast disk on the target.
fn build(s: &Scenario, options: PeerDeviceOptions) -> Result<Built, BenchError> {
    let err = plant_err(s);
    let mut plant = Plant::new(s.seed);
    let a = plant.add_node("a", s.disk).map_err(&err)?;
    let b = plant.add_node("b", target_disk(s)).map_err(&err)?;
    plant.add_link(a, b, s.link).map_err(&err)?;
    let mut volumes = Vec::new();
    let mut resyncs = Vec::new();
    for (i, case) in s.volumes.iter().enumerate() {
        let mut spec = VolumeSpec::new(&format!("r{i}/0"), a, vec![b]);
        spec.load = case.load.clone();
        spec.write_io_kib = 64.0;
        let v = plant.add_volume(spec).map_err(&err)?;
        let mut r = ResyncSpec::new(v, a, b, case.out_of_sync_kib);
        r.target_options = options;
        r.source_options = options;
        resyncs.push(plant.start_resync(r).map_err(&err)?);
        volumes.push(v);
    }
    Ok(Built {
        plant,
        volumes,
        resyncs,
        target: b,
    })
}

/// Runs the SyncTarget's agent; `with_pressure` feeds it the Primary's
/// pressure of the previous interval.
pub fn run_target_agent(s: &Scenario, with_pressure: bool) -> Result<RunMetrics, BenchError> {
    let policy = law_policy(s);
    let target_ms = policy.latency_target.as_secs_f64() * 1000.0;
    let mut b = build(s, constant_options(policy.min_rate.get(), 0))?;
    let volume = *b.volumes.first().ok_or_else(|| BenchError::Signal {
        scenario: s.name.clone(),
        reason: "no volume".to_owned(),
    })?;
    let err = plant_err(s);
    let interval = Duration::from_secs(1);
    let read_backing = |b: &Built| -> Result<_, BenchError> {
        read_stat(&b.plant.backing_stat_text(b.target).map_err(&err)?, s)
    };
    let read_device = |b: &Built| -> Result<_, BenchError> {
        read_stat(&b.plant.device_stat_text(volume).map_err(&err)?, s)
    };
    let signal = |e: crate::diskstats::DeltaError| BenchError::Signal {
        scenario: s.name.clone(),
        reason: e.to_string(),
    };
    let (mut backing, mut device) = (read_backing(&b)?, read_device(&b)?);
    let mut controller = Controller::new();
    let mut set_rate = policy.min_rate.as_f64();
    let mut samples = Vec::new();
    // The fetcher's view of the Primary; the clock is the plant's.
    let epoch = Instant::now();
    let mut peer = PeerReport::default();
    let mut published: Option<PressureReport> = None;
    let nodes = vec!["a".to_owned()];
    let limit = s.limit.as_secs_f64();
    while b.plant.now_s() < limit {
        let windows = b.plant.step(interval);
        for w in &windows {
            samples.push(sample(w, set_rate));
        }
        let done = done_times(&b, s)?;
        if done.iter().all(Option::is_some) {
            break;
        }
        let now = epoch + Duration::from_secs_f64(b.plant.now_s().max(0.0));
        // Fetched now: what the Primary published an interval ago.
        if let Some(report) = published.take() {
            record(&mut peer, Fetched::Ok(report), now);
        }
        let (backing_now, device_now) = (read_backing(&b)?, read_device(&b)?);
        let back = derive(&backing, &backing_now, interval).map_err(signal)?;
        let primary = derive(&device, &device_now, interval).map_err(signal)?;
        backing = backing_now;
        device = device_now;
        published = Some(PressureReport {
            node: "a".to_owned(),
            window_ms: 1000,
            resources: vec![VolumePressure {
                resource: "r0".to_owned(),
                volume: 0,
                write_latency_ms: primary.write_latency_ms,
                queue_depth: primary.queue_depth,
                foreground_kib_per_sec: (primary.write_bytes_per_sec + primary.read_bytes_per_sec)
                    / 1024.0,
                target_ms,
                pressure: pressure(primary.write_latency_ms, target_ms),
            }],
        });
        let status = b.plant.resync_status(b.resyncs[0]).map_err(&err)?;
        let achieved = windows
            .last()
            .map(|w| w.resyncs.iter().map(|r| r.rate_kib_s).sum::<f64>());
        // A Secondary SyncTarget: its DRBD device is idle.
        let local = Observation {
            elapsed: interval,
            app_write_latency_ms: None,
            app_write_latency_p99_ms: None,
            app_queue_depth: Some(0.0),
            foreground_kib_per_sec: Some(0.0),
            backing_write_latency_ms: back.write_latency_ms,
            backing_write_kib_per_sec: Some(back.write_bytes_per_sec / 1024.0),
            replicated_write_kib_per_sec: replicated_write_kib(Some(&back), achieved),
            rs_in_flight_kib: None,
            pending: None,
            out_of_sync_kib: Some(status.left_kib.max(0.0) as u64),
            resync_kib_per_sec: achieved,
            uptodate_replicas: 1,
            reduced_redundancy_for: Duration::from_secs_f64(b.plant.now_s().max(0.0)),
            configured_c_max_rate: KibPerSec::new(C_MAX_RATE_DEFAULT),
            network_headroom_kib_per_sec: None,
        };
        let obs = if with_pressure {
            let peers = [("a".to_owned(), peer.clone())].into();
            let stale = Duration::from_secs(5);
            combine(local, ("r0", 0), &nodes, &peers, now, stale, target_ms).0
        } else {
            local
        };
        let decision = controller.step(&policy, &obs);
        b.plant
            .set_target_options(b.resyncs[0], constant_options(decision.rate.get(), 0))
            .map_err(&err)?;
        set_rate = decision.rate.as_f64();
    }
    let done = done_times(&b, s)?;
    Ok(compute(
        &samples,
        &done,
        limit,
        s.target_p99.as_secs_f64() * 1000.0,
    ))
}

/// The comparison's results (`--json` prints this).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PressureReportBench {
    pub name: String,
    pub description: String,
    pub target_p99_ms: f64,
    #[serde(rename = "agent-local")]
    pub agent_local: RunMetrics,
    #[serde(rename = "agent-pressure")]
    pub agent_pressure: RunMetrics,
    /// c-max-rate 100 MiB/s, for reference.
    pub unthrottled: RunMetrics,
}

/// Runs the comparison on [`source_bound`].
pub fn run() -> Result<PressureReportBench, BenchError> {
    let s = source_bound();
    let unthrottled = {
        // Not `run_constant`: that builds equal disks; the reference runs
        // on the agents' plant.
        let mut b = build(&s, constant_options(C_MAX_RATE_DEFAULT, 0))?;
        let mut samples = Vec::new();
        let limit = s.limit.as_secs_f64();
        while b.plant.now_s() < limit {
            for w in b.plant.step(Duration::from_secs(60)) {
                samples.push(sample(&w, C_MAX_RATE_DEFAULT as f64));
            }
            if done_times(&b, &s)?.iter().all(Option::is_some) {
                break;
            }
        }
        let done = done_times(&b, &s)?;
        compute(&samples, &done, limit, s.target_p99.as_secs_f64() * 1000.0)
    };
    Ok(PressureReportBench {
        name: s.name.clone(),
        description: s.description.clone(),
        target_p99_ms: s.target_p99.as_secs_f64() * 1000.0,
        agent_local: run_target_agent(&s, false)?,
        agent_pressure: run_target_agent(&s, true)?,
        unthrottled,
    })
}

/// The text table.
pub fn render(r: &PressureReportBench) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario {}: {} (SLO: window p99 write latency on the Primary <= {} ms)",
        r.name, r.description, r.target_p99_ms
    );
    let _ = writeln!(
        out,
        "  {:<15} {:>8} {:>8} {:>9} {:>9} {:>8}",
        "strategy", "p50 ms", "p99 ms", "SLO s", "resync s", "dir/min"
    );
    for (name, m) in [
        ("agent-local", &r.agent_local),
        ("agent-pressure", &r.agent_pressure),
        ("unthrottled", &r.unthrottled),
    ] {
        let resync = if m.completed {
            format!("{:.0}", m.resync_seconds)
        } else {
            format!(">{:.0}", m.resync_seconds)
        };
        let _ = writeln!(
            out,
            "  {:<15} {:>8.2} {:>8.2} {:>9} {:>9} {:>8.2}",
            name,
            m.p50_latency_ms,
            m.p99_latency_ms,
            m.slo_violation_seconds,
            resync,
            m.direction_changes_per_minute
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The point of the comparison, on the deterministic model: the local
    /// signals miss the source's disk, the pressure does not.
    #[test]
    fn pressure_keeps_the_primary_within_its_slo_where_local_signals_do_not() {
        let r = run().unwrap();
        assert!(
            r.agent_local.completed && r.agent_pressure.completed,
            "{r:?}"
        );
        assert!(
            r.agent_local.slo_violation_seconds
                > 10.0 * r.agent_pressure.slo_violation_seconds.max(1.0),
            "{r:?}"
        );
        assert!(r.agent_pressure.p99_latency_ms <= r.target_p99_ms, "{r:?}");
        assert!(r.agent_local.p99_latency_ms > r.target_p99_ms, "{r:?}");
        // Throttled, not stopped: within 2× the unthrottled resync time.
        assert!(
            r.agent_pressure.resync_seconds < 2.0 * r.unthrottled.resync_seconds,
            "{r:?}"
        );
        let table = render(&r);
        assert!(table.contains("agent-pressure") && table.contains("agent-local"));
    }
}
