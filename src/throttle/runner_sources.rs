//! The throttle loop's SyncSource side: `--c-min-rate=0` on the peer
//! devices this node is SyncSource of (mode enforce, policy enabled), the
//! c-min-rate in force journaled first, given back when the resync ends,
//! throttling is disabled or the agent stops.

use std::collections::BTreeSet;

use chrono::NaiveDateTime;
use tracing::{info, warn};

use super::super::options::PeerKey;
use super::super::policy::Mode;
use super::super::targets::to_restore;
use super::{SourceStatus, Throttler};
use crate::linstor::policy::snapshot;

impl Throttler {
    fn fail_source(&mut self, key: &PeerKey, message: String) {
        self.status.failures += 1;
        if let Some(s) = self.status.sources.get_mut(&key.to_string()) {
            s.failures += 1;
        }
        self.status.last_error = Some(message);
    }

    /// Gives `keys` back their journaled c-min-rate; failures stay
    /// journaled (retried next interval).
    pub(super) async fn restore_sources(&mut self, keys: &[PeerKey]) {
        let mut changed = false;
        for key in keys {
            let Some(c_min_rate) = self.journal.sources.get(key).copied() else {
                continue;
            };
            match self.actuator.restore_source(key, c_min_rate).await {
                Ok(()) => {
                    info!(
                        resource = %key.resource, peer = key.peer_node_id, volume = key.volume,
                        c_min_rate_kib = c_min_rate, "sync source c-min-rate restored"
                    );
                    self.journal.sources.remove(key);
                    self.sources_set.remove(key);
                    self.status.restores += 1;
                    if let Some(s) = self.status.sources.get_mut(&key.to_string()) {
                        s.c_min_rate_zeroed = false;
                    }
                    changed = true;
                }
                Err(e) => {
                    warn!(
                        resource = %key.resource, peer = key.peer_node_id, volume = key.volume,
                        error = %e, "cannot restore sync source c-min-rate"
                    );
                    self.fail_source(key, e.to_string());
                }
            }
        }
        if changed {
            self.save_journal();
        }
    }

    /// The SyncSource part of one interval.
    pub(super) async fn tick_sources(&mut self, sources: &[PeerKey], local: NaiveDateTime) {
        let config = &self.options.config;
        let remote = snapshot(&self.remote);
        let keep: BTreeSet<PeerKey> = sources
            .iter()
            .filter(|k| {
                let policy = config.policy_with(&k.resource, local, remote.get(&k.resource));
                config.enabled && policy.enabled && policy.mode == Mode::Enforce
            })
            .cloned()
            .collect();
        let gone = to_restore(self.journal.sources.keys(), &keep);
        self.restore_sources(&gone).await;
        self.sources_set.retain(|k| keep.contains(k));
        self.status.sources.retain(|_, s| {
            keep.contains(&PeerKey {
                resource: s.resource.clone(),
                peer_node_id: s.peer_node_id,
                volume: s.volume,
            })
        });
        for key in &keep {
            self.status
                .sources
                .entry(key.to_string())
                .or_insert_with(|| SourceStatus {
                    resource: key.resource.clone(),
                    peer_node_id: key.peer_node_id,
                    volume: key.volume,
                    ..SourceStatus::default()
                });
            self.enforce_source(key).await;
        }
    }

    /// Records c-min-rate (first time), reads back, sets it to 0.
    async fn enforce_source(&mut self, key: &PeerKey) {
        let (resource, peer, volume) = (key.resource.clone(), key.peer_node_id, key.volume);
        if !self.journal.sources.contains_key(key) {
            match self.actuator.read(key).await {
                Ok(options) => {
                    self.journal.sources.insert(key.clone(), options.c_min_rate);
                    if !self.save_journal() {
                        // Not recorded = not allowed to change anything.
                        self.journal.sources.remove(key);
                        return;
                    }
                    info!(%resource, peer, volume, c_min_rate_kib = options.c_min_rate, "sync source c-min-rate recorded, taking charge");
                }
                Err(e) => {
                    warn!(%resource, peer, volume, error = %e, "cannot read sync source options");
                    self.fail_source(key, e.to_string());
                    return;
                }
            }
        }
        let every = u64::from(self.options.readback_every.max(1));
        if self.sources_set.contains(key) {
            if self.ticks % every != 0 {
                return;
            }
            match self.actuator.read(key).await {
                Ok(read) if read.c_min_rate == 0 => return,
                Ok(read) => {
                    warn!(%resource, peer, volume, c_min_rate_kib = read.c_min_rate, "sync source c-min-rate reset by someone else, re-applying");
                    self.status.reverts += 1;
                    if let Some(s) = self.status.sources.get_mut(&key.to_string()) {
                        s.reverts += 1;
                    }
                }
                Err(e) => {
                    warn!(%resource, peer, volume, error = %e, "cannot read sync source options back");
                    self.fail_source(key, e.to_string());
                    return;
                }
            }
        }
        let ok = match self.actuator.set_source(key).await {
            Ok(()) => true,
            Err(e) => {
                warn!(%resource, peer, volume, error = %e, "cannot set sync source c-min-rate");
                self.fail_source(key, e.to_string());
                false
            }
        };
        if ok {
            self.sources_set.insert(key.clone());
        } else {
            self.sources_set.remove(key);
        }
        if let Some(s) = self.status.sources.get_mut(&key.to_string()) {
            s.c_min_rate_zeroed = ok;
        }
    }
}
