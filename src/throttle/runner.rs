//! The throttle loop: every interval, for each peer device this node is
//! SyncTarget of, sample `/sys/block/drbd<minor>/stat`, step a controller,
//! and (mode enforce) set the rate through the [`Actuator`], recording the
//! options in force in the journal first and putting them back when the
//! resync ends, throttling is disabled, or the agent stops.
//!
//! Where this node is SyncSource, only c-min-rate is set (to 0), journaled
//! and given back the same way (`runner_sources.rs`).
//!
//! Failures leave the peer device on the safe side: no further write to it
//! in that interval, and journaled options are restored when it is no
//! longer a SyncTarget.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use serde::Serialize;
use tokio::sync::{watch, RwLock};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error, info, warn};

use crate::diskstats::{derive, read_stat_file, DiskStat, StatFileError};
use crate::runtime::CancellationToken;
use crate::runtime::Shared;

use super::actuator::Actuator;
use super::backing::{Backing, BackingSampler};
use super::journal::{Journal, JournalStore, Loaded};
use super::law::{Controller, Decision};
use super::law_model::ModelReport;
use super::options::{is_ours, PeerKey};
use super::policy::{Mode, PolicyOrigins, ThrottleConfig};
use super::rate::KibPerSec;
use super::sources::sync_sources;
use super::targets::{observation, sync_targets, to_restore, Target};
use crate::linstor::policy::{snapshot, SharedRemotePolicies};

#[path = "runner_sources.rs"]
mod runner_sources;

/// What the API and metrics can read about the throttle.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThrottleStatus {
    pub enabled: bool,
    pub mode: Option<Mode>,
    /// By `resource/peer-node-id/volume`.
    pub peers: BTreeMap<String, PeerStatus>,
    /// Times the options read back were not the agent's (e.g. `drbdadm adjust`).
    pub reverts: u64,
    /// Failed commands, unreadable stat files, bad samples.
    pub failures: u64,
    /// Peer devices given back their recorded options.
    pub restores: u64,
    /// Corrupt or foreign journals set aside, journal write failures.
    pub journal_errors: u64,
    pub last_error: Option<String>,
    /// SyncSource peer devices, by `resource/peer-node-id/volume`.
    pub sources: BTreeMap<String, SourceStatus>,
    /// Cross-node pressure (`None`: `[pressure]` disabled).
    pub pressure: Option<crate::pressure::PressureStatus>,
}

/// One SyncSource peer device (only c-min-rate is touched there).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceStatus {
    pub resource: String,
    pub peer_node_id: u32,
    pub volume: u32,
    /// Whether the agent's `--c-min-rate=0` is in force.
    pub c_min_rate_zeroed: bool,
    pub reverts: u64,
    pub failures: u64,
}

/// One SyncTarget peer device.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PeerStatus {
    pub resource: String,
    pub peer_node_id: u32,
    pub volume: u32,
    /// The c-max-rate the agent set last, KiB/s (`None`: not in charge).
    pub rate_set_kib: Option<u64>,
    pub decision: Option<Decision>,
    pub latency_target_ms: f64,
    /// The policy in force and where each setting came from.
    pub policy: Option<PeerPolicy>,
    pub reverts: u64,
    pub failures: u64,
    /// Which signal steered it last (a peer's pressure or the local ones).
    pub signal: Option<crate::pressure::Signal>,
    /// The queue model after the last step (fit, set point, or why the
    /// feedback law decided instead).
    pub model: Option<ModelReport>,
}

/// The policy in force for one peer device (the target is in
/// [`PeerStatus::latency_target_ms`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PeerPolicy {
    pub mode: Mode,
    pub min_rate_kib: u64,
    pub max_rate_kib: u64,
    pub origins: PolicyOrigins,
}

/// The status, shared with readers.
pub type SharedThrottleStatus = Arc<RwLock<ThrottleStatus>>;

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct ThrottleOptions {
    pub node_name: String,
    pub config: ThrottleConfig,
    pub sysfs_root: PathBuf,
    pub state_directory: PathBuf,
    /// Read the options back every this many intervals (≥ 1).
    pub readback_every: u32,
}

/// Per peer device memory.
#[derive(Debug)]
struct PeerState {
    controller: Controller,
    sample: Option<(DiskStat, Instant)>,
    backing: BackingSampler,
    since: Instant,
    rate_set: Option<KibPerSec>,
}

/// The loop's state.
#[derive(Debug)]
pub struct Throttler {
    options: ThrottleOptions,
    actuator: Actuator,
    store: JournalStore,
    journal: Journal,
    peers: BTreeMap<PeerKey, PeerState>,
    /// SyncSource peer devices with c-min-rate set to 0 by the agent.
    sources_set: BTreeSet<PeerKey>,
    status: ThrottleStatus,
    shared_status: SharedThrottleStatus,
    ticks: u64,
    /// Policies from the LINSTOR controller (empty without one).
    remote: SharedRemotePolicies,
    /// The network watcher's status: the replication interface's headroom
    /// caps the resync (see `Observation::network_headroom_kib_per_sec`).
    network: Option<crate::netlink::SharedNetwork>,
    /// The peers' pressure (`None`: `[pressure]` disabled).
    pressure: Option<crate::pressure::PressureInput>,
}

impl Throttler {
    pub fn new(
        options: ThrottleOptions,
        actuator: Actuator,
        shared_status: SharedThrottleStatus,
    ) -> Self {
        let store = JournalStore::new(&options.state_directory);
        let journal = Journal::new(&options.node_name);
        let status = ThrottleStatus {
            enabled: options.config.enabled,
            mode: options.config.enabled.then_some(options.config.mode),
            ..ThrottleStatus::default()
        };
        Self {
            options,
            actuator,
            store,
            journal,
            peers: BTreeMap::new(),
            sources_set: BTreeSet::new(),
            status,
            shared_status,
            ticks: 0,
            remote: SharedRemotePolicies::default(),
            network: None,
            pressure: None,
        }
    }

    /// Takes per-resource policies from `remote` (the LINSTOR controller's
    /// `Aux/drbd-agent/...` properties) over the local configuration.
    pub fn with_remote_policies(mut self, remote: SharedRemotePolicies) -> Self {
        self.remote = remote;
        self
    }

    /// Caps each resync by its replication interface's headroom.
    pub fn with_network(mut self, network: crate::netlink::SharedNetwork) -> Self {
        self.network = Some(network);
        self
    }

    /// Lets the peers' pressure steer (see [`crate::pressure`]).
    pub fn with_pressure(mut self, input: crate::pressure::PressureInput) -> Self {
        self.pressure = Some(input);
        self
    }

    fn fail(&mut self, key: Option<&PeerKey>, message: String) {
        self.status.failures += 1;
        if let Some(peer) = key.and_then(|k| self.status.peers.get_mut(&k.to_string())) {
            peer.failures += 1;
        }
        self.status.last_error = Some(message);
    }

    async fn publish(&self) {
        *self.shared_status.write().await = self.status.clone();
    }

    fn save_journal(&mut self) -> bool {
        match self.store.save(&self.journal) {
            Ok(()) => true,
            Err(e) => {
                error!(error = %e, "cannot write the throttle journal");
                self.status.journal_errors += 1;
                self.status.last_error = Some(e.to_string());
                false
            }
        }
    }

    /// Start-up: a journal left by a previous run (crash) is restored
    /// entirely, then cleared; a corrupt or foreign one is set aside.
    pub async fn recover(&mut self) {
        match self.store.load(&self.options.node_name) {
            Ok(Loaded::None) => {}
            Ok(Loaded::Corrupt { error, moved_to }) => {
                error!(
                    error = %error,
                    moved_to = ?moved_to,
                    "throttle journal unusable, set aside; nothing restored from it"
                );
                self.status.journal_errors += 1;
                self.status.last_error = Some(error.to_string());
            }
            Ok(Loaded::Journal(journal)) => {
                info!(
                    entries = journal.entries.len(),
                    "restoring options from a previous run's journal"
                );
                self.journal = journal;
                let keys: Vec<PeerKey> = self.journal.entries.keys().cloned().collect();
                self.restore(&keys).await;
                let sources: Vec<PeerKey> = self.journal.sources.keys().cloned().collect();
                self.restore_sources(&sources).await;
            }
            Err(e) => {
                error!(error = %e, "cannot read the throttle journal");
                self.status.journal_errors += 1;
                self.status.last_error = Some(e.to_string());
            }
        }
        self.publish().await;
    }

    /// Gives `keys` back their journaled options; those that fail stay
    /// journaled (retried next interval).
    async fn restore(&mut self, keys: &[PeerKey]) {
        let mut changed = false;
        for key in keys {
            let Some(recorded) = self.journal.entries.get(key).copied() else {
                continue;
            };
            match self.actuator.restore(key, &recorded).await {
                Ok(()) => {
                    info!(
                        resource = %key.resource, peer = key.peer_node_id, volume = key.volume,
                        c_max_rate_kib = recorded.c_max_rate, c_min_rate_kib = recorded.c_min_rate,
                        "options restored"
                    );
                    self.journal.entries.remove(key);
                    self.status.restores += 1;
                    changed = true;
                    if let Some(state) = self.peers.get_mut(key) {
                        state.rate_set = None;
                    }
                    if let Some(peer) = self.status.peers.get_mut(&key.to_string()) {
                        peer.rate_set_kib = None;
                    }
                }
                Err(e) => {
                    warn!(
                        resource = %key.resource, peer = key.peer_node_id, volume = key.volume,
                        error = %e, "cannot restore options"
                    );
                    self.fail(Some(key), e.to_string());
                }
            }
        }
        if changed {
            self.save_journal();
        }
    }

    /// Restores everything journaled (shutdown, throttling disabled).
    /// Whether any options are journaled (the agent is in charge somewhere).
    fn has_journaled(&self) -> bool {
        !self.journal.entries.is_empty() || !self.journal.sources.is_empty()
    }

    pub async fn restore_all(&mut self) {
        let keys: Vec<PeerKey> = self.journal.entries.keys().cloned().collect();
        self.restore(&keys).await;
        let sources: Vec<PeerKey> = self.journal.sources.keys().cloned().collect();
        self.restore_sources(&sources).await;
        self.publish().await;
    }

    /// Replaces the configuration (a reload); disabling restores at the
    /// next interval.
    pub fn set_config(&mut self, config: ThrottleConfig) {
        self.status.enabled = config.enabled;
        self.status.mode = config.enabled.then_some(config.mode);
        self.options.config = config;
    }

    /// One interval without SyncSource peer devices (any journaled ones
    /// are given back); see [`tick_all`](Self::tick_all).
    pub async fn tick(&mut self, targets: Vec<Target>, now: Instant, local: NaiveDateTime) {
        self.tick_all(targets, Vec::new(), now, local).await;
    }

    /// One interval. `now` is the monotonic time of the samples, `local`
    /// the local wall time (for ingest windows). `sources` are the peer
    /// devices this node is SyncSource of (c-min-rate only).
    pub async fn tick_all(
        &mut self,
        targets: Vec<Target>,
        sources: Vec<PeerKey>,
        now: Instant,
        local: NaiveDateTime,
    ) {
        self.ticks += 1;
        self.tick_sources(&sources, local).await;
        let remote = snapshot(&self.remote);
        let config = &self.options.config;
        let policies: Vec<_> = targets
            .iter()
            .map(|t| config.policy_with(&t.key.resource, local, remote.get(&t.key.resource)))
            .collect();
        let keep: BTreeSet<PeerKey> = targets
            .iter()
            .zip(&policies)
            .filter(|(_, p)| config.enabled && p.enabled && p.mode == Mode::Enforce)
            .map(|(t, _)| t.key.clone())
            .collect();
        let gone = to_restore(self.journal.entries.keys(), &keep);
        self.restore(&gone).await;
        let active: BTreeSet<PeerKey> = targets.iter().map(|t| t.key.clone()).collect();
        self.peers.retain(|k, _| active.contains(k));
        self.status.peers.retain(|_, p| {
            active.contains(&PeerKey {
                resource: p.resource.clone(),
                peer_node_id: p.peer_node_id,
                volume: p.volume,
            })
        });
        if let Some(p) = &self.pressure {
            self.status.pressure = Some(p.status(now).await);
        }
        if !self.options.config.enabled {
            self.publish().await;
            return;
        }
        let pressure = match &self.pressure {
            Some(p) => Some((p.peers.read().await.clone(), p.stale_after)),
            None => None,
        };
        for (target, policy) in targets.iter().zip(policies) {
            if !policy.enabled {
                continue;
            }
            let key = &target.key;
            let name = key.to_string();
            let entry = self
                .status
                .peers
                .entry(name.clone())
                .or_insert_with(|| PeerStatus {
                    resource: key.resource.clone(),
                    peer_node_id: key.peer_node_id,
                    volume: key.volume,
                    ..PeerStatus::default()
                });
            entry.latency_target_ms = policy.law.latency_target.as_secs_f64() * 1000.0;
            entry.policy = Some(PeerPolicy {
                mode: policy.mode,
                min_rate_kib: policy.law.min_rate.get(),
                max_rate_kib: policy.law.max_rate.get(),
                origins: policy.origins,
            });
            let state = self.peers.entry(key.clone()).or_insert_with(|| PeerState {
                controller: Controller::new(),
                sample: None,
                backing: BackingSampler::default(),
                since: now,
                rate_set: None,
            });
            let stat = match read_stat(&self.options.sysfs_root, target.minor).await {
                Ok(stat) => stat,
                Err(e) => {
                    state.sample = None;
                    warn!(resource = %key.resource, peer = key.peer_node_id, volume = key.volume, error = %e, "no diskstats sample");
                    self.fail(Some(key), e.to_string());
                    continue;
                }
            };
            let backing = state
                .backing
                .rates(
                    &self.options.sysfs_root,
                    key,
                    target.backing_dev.as_deref(),
                    target.resync_kib_per_sec,
                    now,
                )
                .await;
            if backing == Backing::Hold && state.sample.is_some() {
                // No trustworthy backing sample: keep the rate, widen the
                // DRBD device's window too (its sample stays).
                continue;
            }
            let Some((before, at)) = state.sample.replace((stat, now)) else {
                continue;
            };
            let rates = match derive(&before, &stat, now.saturating_duration_since(at)) {
                Ok(rates) => rates,
                Err(e) => {
                    warn!(resource = %key.resource, peer = key.peer_node_id, volume = key.volume, error = %e, "bad diskstats sample");
                    self.fail(Some(key), e.to_string());
                    continue;
                }
            };
            let mut obs = observation(
                target,
                &rates,
                backing.rates(),
                now.saturating_duration_since(state.since),
                self.journal.entries.get(key),
            );
            if let Some(network) = &self.network {
                obs.network_headroom_kib_per_sec = network.read().await.headroom_kib_per_sec(
                    &key.resource,
                    key.peer_node_id,
                    target.resync_kib_per_sec.unwrap_or(0.0),
                );
            }
            let target_ms = policy.law.latency_target.as_secs_f64() * 1000.0;
            let (obs, signal) =
                crate::pressure::steer(obs, target, pressure.as_ref(), now, target_ms);
            let decision = state.controller.step(&policy.law, &obs);
            debug!(
                resource = %key.resource, peer = key.peer_node_id, volume = key.volume,
                latency_ms = ?obs.app_write_latency_ms,
                backing_latency_ms = ?obs.backing_write_latency_ms,
                foreground_kib = ?obs.foreground_kib_per_sec,
                backing_write_kib = ?obs.backing_write_kib_per_sec,
                replicated_kib = ?obs.replicated_write_kib_per_sec,
                resync_kib = ?obs.resync_kib_per_sec,
                rate_kib = decision.rate.get(),
                reason = %decision.reason,
                "throttle step"
            );
            if let Some(peer) = self.status.peers.get_mut(&name) {
                if peer.signal.as_ref().map(|s| s.kind()) != Some(signal.kind()) {
                    info!(resource = %key.resource, peer = key.peer_node_id, volume = key.volume, signal = ?signal, "throttle signal source");
                }
                peer.decision = Some(decision);
                peer.signal = Some(signal);
                let model = state.controller.model_report();
                if peer.model.map(|m| m.in_use) != Some(model.in_use) {
                    info!(resource = %key.resource, peer = key.peer_node_id, volume = key.volume, in_use = model.in_use, fallback = ?model.fallback, "throttle queue model");
                }
                peer.model = Some(model);
            }
            if policy.mode == Mode::Enforce {
                self.enforce(key, decision.rate).await;
            }
        }
        self.publish().await;
    }

    /// Records the options (first time), reads back, sets the rate.
    async fn enforce(&mut self, key: &PeerKey, rate: KibPerSec) {
        let fields = |k: &PeerKey| (k.resource.clone(), k.peer_node_id, k.volume);
        let (resource, peer, volume) = fields(key);
        if !self.journal.entries.contains_key(key) {
            match self.actuator.read(key).await {
                Ok(options) => {
                    self.journal.entries.insert(key.clone(), options);
                    if !self.save_journal() {
                        // Not recorded = not allowed to change anything.
                        self.journal.entries.remove(key);
                        return;
                    }
                    info!(%resource, peer, volume, c_max_rate_kib = options.c_max_rate, c_min_rate_kib = options.c_min_rate, "options recorded, taking charge");
                }
                Err(e) => {
                    warn!(%resource, peer, volume, error = %e, "cannot read options");
                    self.fail(Some(key), e.to_string());
                    return;
                }
            }
        }
        let set = self.peers.get(key).and_then(|s| s.rate_set);
        let every = u64::from(self.options.readback_every.max(1));
        let mut reapply = false;
        if let Some(set) = set.filter(|_| self.ticks % every == 0) {
            match self.actuator.read(key).await {
                Ok(read) if is_ours(&read, set) => {}
                Ok(read) => {
                    warn!(%resource, peer, volume, c_max_rate_kib = read.c_max_rate, c_min_rate_kib = read.c_min_rate, set_kib = set.get(), "options reset by someone else, re-applying");
                    self.status.reverts += 1;
                    if let Some(p) = self.status.peers.get_mut(&key.to_string()) {
                        p.reverts += 1;
                    }
                    reapply = true;
                }
                Err(e) => {
                    warn!(%resource, peer, volume, error = %e, "cannot read options back");
                    self.fail(Some(key), e.to_string());
                    return;
                }
            }
        }
        if set == Some(rate) && !reapply {
            return;
        }
        let result = self.actuator.set(key, rate).await;
        let ok = result.is_ok();
        if let Err(e) = result {
            warn!(%resource, peer, volume, rate_kib = rate.get(), error = %e, "cannot set the resync rate");
            self.fail(Some(key), e.to_string());
        }
        if let Some(state) = self.peers.get_mut(key) {
            state.rate_set = ok.then_some(rate);
        }
        if let Some(p) = self.status.peers.get_mut(&key.to_string()) {
            p.rate_set_kib = ok.then_some(rate.get());
        }
    }

    /// Runs until `stop`: recovers the journal, ticks every interval,
    /// restores everything on the way out.
    pub async fn run(self, shared: Arc<Shared>, stop: CancellationToken) {
        self.run_reloadable(shared, stop, None).await;
    }

    /// [`run`](Self::run), taking new `[throttle]` sections from `configs`
    /// (a reload): applied from the next interval; disabled or mode observe
    /// gives back everything journaled at once; a new interval restarts the
    /// ticker.
    pub async fn run_reloadable(
        mut self,
        shared: Arc<Shared>,
        stop: CancellationToken,
        mut configs: Option<watch::Receiver<ThrottleConfig>>,
    ) {
        self.recover().await;
        let mut ticker = ticker(&self.options.config);
        // Since when the model has not mirrored DRBD (before the initial
        // dump; stale after a stream restart or lost events): no step on a
        // model that may be behind, the settings in force are held.
        let mut blind_since: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let seen = {
                        let state = shared.state.read().await;
                        state
                            .drbd_reachable()
                            .then(|| (sync_targets(&state.model), sync_sources(&state.model)))
                    };
                    match seen {
                        Some((targets, sources)) => {
                            blind_since = None;
                            self.tick_all(targets, sources, Instant::now(), chrono::Local::now().naive_local()).await;
                        }
                        None => {
                            let since = *blind_since.get_or_insert_with(Instant::now);
                            if since.elapsed() >= BLIND_LIMIT && self.has_journaled() {
                                warn!(blind_s = since.elapsed().as_secs(), "DRBD state unknown for long: giving back the configured options");
                                self.restore_all().await;
                            }
                        }
                    }
                }
                changed = next_config(&mut configs) => match changed {
                    Some(config) => {
                        let new_interval = config.interval != self.options.config.interval;
                        let stand_down = !config.enabled || config.mode == Mode::Observe;
                        info!(enabled = config.enabled, mode = ?config.mode, "throttle configuration reloaded");
                        self.set_config(config);
                        if stand_down {
                            self.restore_all().await;
                        } else {
                            self.publish().await;
                        }
                        if new_interval {
                            ticker = ticker_after(&self.options.config);
                        }
                    }
                    // The sender is gone: no more reloads.
                    None => configs = None,
                },
                _ = stop.cancelled() => break,
            }
        }
        self.restore_all().await;
    }
}

/// How long the throttle keeps its settings while the model does not mirror
/// DRBD (the events2 stream restarting) before it gives the configured
/// options back.
const BLIND_LIMIT: Duration = Duration::from_secs(30);

fn period(config: &ThrottleConfig) -> Duration {
    config.interval.0.max(Duration::from_millis(10))
}

fn ticker(config: &ThrottleConfig) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(period(config));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// A ticker whose first tick is one period from now.
fn ticker_after(config: &ThrottleConfig) -> tokio::time::Interval {
    let period = period(config);
    let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// The next configuration sent, `None` once the sender is gone; pending
/// forever without a receiver.
async fn next_config(
    configs: &mut Option<watch::Receiver<ThrottleConfig>>,
) -> Option<ThrottleConfig> {
    match configs {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// Why a peer device gave no DRBD-device sample.
#[derive(Debug, thiserror::Error)]
enum SampleError {
    #[error("device minor unknown")]
    NoMinor,
    #[error(transparent)]
    File(#[from] StatFileError),
}

/// Reads and parses `<sysfs>/block/drbd<minor>/stat`.
async fn read_stat(
    sysfs_root: &std::path::Path,
    minor: Option<u32>,
) -> Result<DiskStat, SampleError> {
    let minor = minor.ok_or(SampleError::NoMinor)?;
    Ok(read_stat_file(&sysfs_root.join(format!("block/drbd{minor}/stat"))).await?)
}
