//! Cross-node pressure: the Primary's write latency steers the SyncTarget's
//! resync throttle.
//!
//! DRBD paces a resync on the SyncTarget, but with protocol C the latency the
//! application feels is the Primary's (usually the SyncSource, another
//! node). So every agent publishes, for each volume of each resource where
//! its node is Primary, the measured write latency of the DRBD device, its
//! queue depth, the latency target in force and the *pressure* =
//! latency / target (> 1: over target) — `GET /v1/pressure`, one small
//! [`PressureReport`] with every resource, behind a bearer token or mutual
//! TLS ([`tls`]).
//!
//! The agent throttling a SyncTarget fetches the reports of the nodes it
//! syncs from and of the Primary ([`fetch`]), once per interval per peer,
//! and [`combine`]s them with its own signals: a fresh remote pressure,
//! scaled to the local target, becomes the law's application latency. A
//! peer that cannot be reached, answers garbage or a stale report leaves
//! the local signals in charge, and [`Signal`] says why.
//!
//! Staleness is measured by the receiver's monotonic clock only (the time a
//! report was received); the sender's clock is never compared with ours.
//!
//! This module is pure; [`sampler`], [`fetch`] and [`api`] are the edges.

pub mod api;
pub mod config;
pub mod fetch;
pub mod sampler;
pub mod table;
pub mod tls;
pub mod wire;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::throttle::Observation;

pub use config::{
    MtlsFiles, PressureAuth, PressureConfig, RawPressure, DEFAULT_INTERVAL, DEFAULT_STALE_AFTER,
};

/// Largest report body accepted from a peer.
pub const MAX_REPORT_BYTES: usize = 256 * 1024;

/// What one node publishes: every volume of every resource it is Primary of.
/// Unknown fields are ignored (agents of other versions may add some).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PressureReport {
    /// The publishing node's name.
    pub node: String,
    /// The length of the sampling window the figures cover, ms.
    pub window_ms: u64,
    pub resources: Vec<VolumePressure>,
}

/// One Primary volume's figures over the last window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumePressure {
    pub resource: String,
    pub volume: u32,
    /// Mean write latency of the DRBD device, ms (`None`: no write completed).
    pub write_latency_ms: Option<f64>,
    /// Mean number of requests in flight on the DRBD device.
    pub queue_depth: f64,
    /// Application throughput (reads + writes), KiB/s.
    pub foreground_kib_per_sec: f64,
    /// The latency target in force for the resource on that node, ms.
    pub target_ms: f64,
    /// `write_latency_ms / target_ms`; `None` without writes.
    pub pressure: Option<f64>,
}

/// latency / target; `None` without a latency or with a target ≤ 0.
pub fn pressure(latency_ms: Option<f64>, target_ms: f64) -> Option<f64> {
    let latency = latency_ms.filter(|l| l.is_finite() && *l >= 0.0)?;
    (target_ms.is_finite() && target_ms > 0.0).then(|| latency / target_ms)
}

/// A peer's report with a figure out of range (not finite, negative, a
/// target of zero).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resource {resource}/{volume}: figures out of range")]
pub struct BadReport {
    pub resource: String,
    pub volume: u32,
}

impl PressureReport {
    /// Checks a report received from a peer: finite, non-negative figures,
    /// a pressure consistent with latency and target. Garbage is refused.
    pub fn check(&self) -> Result<(), BadReport> {
        for v in &self.resources {
            let finite = |x: f64| x.is_finite() && x >= 0.0;
            let fine = v.write_latency_ms.is_none_or(finite)
                && v.pressure.is_none_or(finite)
                && finite(v.queue_depth)
                && finite(v.foreground_kib_per_sec)
                && finite(v.target_ms)
                && v.target_ms > 0.0;
            if !fine {
                return Err(BadReport {
                    resource: v.resource.clone(),
                    volume: v.volume,
                });
            }
        }
        Ok(())
    }

    /// The figures for one volume.
    pub fn volume(&self, resource: &str, volume: u32) -> Option<&VolumePressure> {
        self.resources
            .iter()
            .find(|v| v.resource == resource && v.volume == volume)
    }
}

/// What the fetcher knows about one peer's agent.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PeerReport {
    /// Where it was asked.
    pub address: Option<String>,
    /// The last good report and how long before the throttle's `now` it
    /// was received (set by [`PeerReport::age`]); `received` is kept as
    /// the receiver's monotonic instant.
    #[serde(skip)]
    pub received: Option<tokio::time::Instant>,
    pub report: Option<PressureReport>,
    /// Why the last fetch failed (`None` after a good one).
    pub last_error: Option<String>,
    /// Fetches by result (`ok`, `unreachable`, `timeout`, `unauthorized`,
    /// `bad-status`, `garbage`, `no-address`, `plain-http-token-refused`).
    pub fetches: BTreeMap<&'static str, u64>,
}

impl PeerReport {
    /// How old the last good report is at `now` (receiver's clock).
    pub fn age(&self, now: tokio::time::Instant) -> Option<Duration> {
        self.received.map(|at| now.saturating_duration_since(at))
    }

    /// Whether the last fetch succeeded.
    pub fn up(&self) -> bool {
        self.received.is_some() && self.last_error.is_none()
    }
}

/// Which signal steered one SyncTarget peer device in an interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum Signal {
    /// A peer's pressure, scaled to the local target.
    Peer { node: String, pressure: f64 },
    /// The local signals, and why.
    Local { reason: LocalReason },
}

/// Why the local signals steer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "why", rename_all = "kebab-case")]
pub enum LocalReason {
    /// Pressure fetching is off.
    Disabled,
    /// No Primary or SyncSource node known for the resource.
    NoPeer,
    /// No good report yet; the last error.
    Unreachable { node: String, error: String },
    /// The last good report is older than `stale-after`.
    Stale { node: String, age_ms: u64 },
    /// The peer reports no writes (or not this volume).
    NoFigures { node: String },
}

/// Combines `obs` (local signals) for `(resource, volume)` with the reports of `nodes` (the
/// SyncSource and the Primary of the volume): the freshest report with the
/// highest pressure wins; its pressure × `local_target_ms` becomes the
/// application latency, its queue depth and foreground throughput fill
/// those signals (the local device of a Secondary is idle). Without a fresh
/// figure `obs` is returned unchanged with the reason.
pub fn combine(
    mut obs: Observation,
    (resource, volume): (&str, u32),
    nodes: &[String],
    peers: &BTreeMap<String, PeerReport>,
    now: tokio::time::Instant,
    stale_after: Duration,
    local_target_ms: f64,
) -> (Observation, Signal) {
    let mut reason = LocalReason::NoPeer;
    let mut best: Option<(&str, &VolumePressure, f64)> = None;
    for node in nodes {
        let Some(peer) = peers.get(node) else {
            reason = LocalReason::Unreachable {
                node: node.clone(),
                error: "not fetched yet".to_owned(),
            };
            continue;
        };
        let (Some(age), Some(report)) = (peer.age(now), &peer.report) else {
            reason = LocalReason::Unreachable {
                node: node.clone(),
                error: peer
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "not fetched yet".to_owned()),
            };
            continue;
        };
        if age > stale_after {
            reason = LocalReason::Stale {
                node: node.clone(),
                age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
            };
            continue;
        }
        let Some(figures) = report.volume(resource, volume) else {
            reason = LocalReason::NoFigures { node: node.clone() };
            continue;
        };
        let Some(p) = figures.pressure else {
            reason = LocalReason::NoFigures { node: node.clone() };
            continue;
        };
        if best.is_none_or(|(_, _, b)| p > b) {
            best = Some((node, figures, p));
        }
    }
    match best {
        Some((node, figures, p)) => {
            obs.app_write_latency_ms = Some(p * local_target_ms);
            obs.app_write_latency_p99_ms = None;
            obs.app_queue_depth = Some(figures.queue_depth);
            obs.foreground_kib_per_sec = Some(
                obs.foreground_kib_per_sec
                    .unwrap_or(0.0)
                    .max(figures.foreground_kib_per_sec),
            );
            (
                obs,
                Signal::Peer {
                    node: node.to_owned(),
                    pressure: p,
                },
            )
        }
        None => (obs, Signal::Local { reason }),
    }
}

/// What the throttle loop reads: the fetcher's map, the staleness limit
/// and (for the status) this node's published report.
#[derive(Debug, Clone)]
pub struct PressureInput {
    pub peers: fetch::SharedPeers,
    pub stale_after: Duration,
    pub report: sampler::SharedReport,
}

/// The pressure part of the throttle status (`/v1/status`, metrics).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PressureStatus {
    /// What this node publishes (volumes it is Primary of).
    pub published: Vec<VolumePressure>,
    /// The peers' agents asked, by node name.
    pub peers: BTreeMap<String, PeerSummary>,
}

/// One peer's agent as seen by the fetcher.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PeerSummary {
    pub address: Option<String>,
    /// The last fetch succeeded.
    pub up: bool,
    /// Age of the last good report (receiver's clock), ms.
    pub age_ms: Option<u64>,
    pub last_error: Option<String>,
    pub fetches: BTreeMap<&'static str, u64>,
}

impl PressureInput {
    /// The status at `now`.
    pub async fn status(&self, now: tokio::time::Instant) -> PressureStatus {
        let published = self.report.read().await.resources.clone();
        let peers = self
            .peers
            .read()
            .await
            .iter()
            .map(|(node, p)| {
                let summary = PeerSummary {
                    address: p.address.clone(),
                    up: p.up(),
                    age_ms: p
                        .age(now)
                        .map(|a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX)),
                    last_error: p.last_error.clone(),
                    fetches: p.fetches.clone(),
                };
                (node.clone(), summary)
            })
            .collect();
        PressureStatus { published, peers }
    }
}

/// [`combine`] for one SyncTarget peer device, with `peers` the snapshot of
/// the fetcher's map and the staleness limit (`None`: pressure disabled).
pub fn steer(
    obs: Observation,
    target: &crate::throttle::Target,
    peers: Option<&(BTreeMap<String, PeerReport>, Duration)>,
    now: tokio::time::Instant,
    local_target_ms: f64,
) -> (Observation, Signal) {
    match peers {
        None => (
            obs,
            Signal::Local {
                reason: LocalReason::Disabled,
            },
        ),
        Some((map, stale_after)) => combine(
            obs,
            (&target.key.resource, target.key.volume),
            &target.pressure_nodes,
            map,
            now,
            *stale_after,
            local_target_ms,
        ),
    }
}

impl Signal {
    /// A short name of the kind of signal, for logs and metrics
    /// (`peer`, `disabled`, `no-peer`, `unreachable`, `stale`, `no-figures`).
    pub fn kind(&self) -> &'static str {
        match self {
            Signal::Peer { .. } => "peer",
            Signal::Local { reason } => match reason {
                LocalReason::Disabled => "disabled",
                LocalReason::NoPeer => "no-peer",
                LocalReason::Unreachable { .. } => "unreachable",
                LocalReason::Stale { .. } => "stale",
                LocalReason::NoFigures { .. } => "no-figures",
            },
        }
    }
}

/// The host part of a DRBD path address (`ipv4:10.0.0.2:7789` → `10.0.0.2`,
/// `ipv6:[fd00::2]:7789` → `[fd00::2]`); `None` for other families.
pub fn path_host(address: &str) -> Option<String> {
    let (family, rest) = address.split_once(':')?;
    let (host, port) = rest.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    match family {
        "ipv4" if host.parse::<std::net::Ipv4Addr>().is_ok() => Some(host.to_owned()),
        "ipv6" => {
            let inner = host.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<std::net::Ipv6Addr>().ok()?;
            Some(host.to_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
