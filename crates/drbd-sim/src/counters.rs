//! Counters move lazily: each resource remembers how far its counters
//! (I/O, resync progress, out-of-sync) have been advanced and is caught
//! up to the clock only when it changes state, when it is viewed, or — for
//! resources whose counters move on their own (a writing primary, a running
//! resync) — at the end of every step. A step costs what changes in it,
//! not the size of the cluster.

use std::time::Duration;

use crate::events2::Role;

use super::cluster::{pair, Cluster, Link, ResourceTruth, ResyncPhase, PROGRESS_INTERVAL};
use super::disk::DiskStats;

impl Cluster {
    /// Brings one resource's counters (and its disks) to the clock.
    pub(super) fn catch_up(&mut self, name: &str) {
        let clock = self.clock;
        let Some(truth) = self.resources.get(name) else {
            return;
        };
        let Some(dt) = clock
            .checked_sub(truth.advanced_to)
            .filter(|d| !d.is_zero())
        else {
            return;
        };
        let Some(truth) = self.resources.get_mut(name) else {
            return;
        };
        truth.advanced_to = clock;
        truth.generation += 1;
        let io = advance_truth(truth, dt.as_secs_f64());
        if self.plant.is_some() {
            // The plant writes the stat counters.
            return;
        }
        for index in &truth.disk_ids {
            let Some(((node, dev), disk)) = self.disks.get_mut(*index) else {
                continue;
            };
            let (read, write) = io
                .iter()
                .find(|((n, d), _)| n == node && d == dev)
                .map(|(_, rw)| *rw)
                .unwrap_or_default();
            disk.account(dt, read, write);
        }
    }

    /// Brings the counters of every resource to the clock (the resources
    /// whose counters move on their own; the others are current). Steps
    /// do it every [`super::cluster::SWEEP_INTERVAL`]; call it before
    /// reading views or stat files that must be exact.
    pub fn sync_counters(&mut self) {
        self.last_sweep = self.clock;
        let names: Vec<String> = self.active.iter().cloned().collect();
        for name in names {
            self.catch_up(&name);
        }
    }

    /// Catches up every resource (before the options that set resync rates change).
    pub(super) fn catch_up_resyncs(&mut self) {
        let names: Vec<String> = self.resyncing.iter().cloned().collect();
        for name in names {
            self.catch_up(&name);
        }
    }

    /// Re-reads the resync rates of a resource from the options (after
    /// they changed or a resync started running).
    pub(super) fn refresh_rates(&mut self, name: &str) {
        let Some(truth) = self.resources.get(name) else {
            return;
        };
        let rates: Vec<((super::cluster::Pair, u32), u64)> = truth
            .volumes
            .iter()
            .filter_map(|((p, vol), pv)| {
                let rs = pv.resync.as_ref()?;
                Some(((p.clone(), *vol), self.resync_rate(truth, p, *vol, rs)))
            })
            .collect();
        if let Some(truth) = self.resources.get_mut(name) {
            for (key, rate) in rates {
                if let Some(rs) = truth
                    .volumes
                    .get_mut(&key)
                    .and_then(|pv| pv.resync.as_mut())
                {
                    rs.rate = rate;
                }
            }
        }
        self.touch(name);
    }

    /// Records that a resource's state changed: it is re-published, and
    /// its membership in the moving/resyncing sets follows its state.
    pub(super) fn touch(&mut self, name: &str) {
        let Some(truth) = self.resources.get_mut(name) else {
            return;
        };
        truth.generation += 1;
        let truth = &*truth;
        let resyncing = truth.volumes.values().any(|pv| pv.resync.is_some());
        let running = truth.volumes.values().any(|pv| {
            pv.resync
                .as_ref()
                .is_some_and(|r| r.phase == ResyncPhase::Running)
        });
        let writing = truth.spec.write_rate > 0
            && truth
                .roles
                .iter()
                .any(|(n, r)| *r == Role::Primary && truth.present.contains(n));
        let due = truth
            .volumes
            .values()
            .filter_map(|pv| pv.resync.as_ref())
            .filter(|rs| rs.phase == ResyncPhase::Running)
            .map(|rs| {
                let left = resync_left(rs.remaining_kib, rs.rate).max(Duration::from_millis(1));
                (rs.last_push + PROGRESS_INTERVAL).min(truth.advanced_to + left)
            })
            .min();
        match due {
            Some(due) => {
                self.resync_due.insert(name.to_owned(), due);
            }
            None => {
                self.resync_due.remove(name);
            }
        }
        set_member(&mut self.resyncing, name, resyncing);
        set_member(&mut self.active, name, running || writing);
        if !self.dirty.contains(name) {
            self.dirty.insert(name.to_owned());
        }
    }

    /// Stat files whose counters changed since `written` (the caller's
    /// memory of what it wrote, one slot per disk): relative path and text.
    /// The first node's disks go to `sys/block/`, and also to
    /// `<node>/sys/block/` when `mirror_first` is set.
    pub fn changed_stat_files(
        &self,
        written: &mut Vec<Option<DiskStats>>,
        mirror_first: bool,
    ) -> Vec<(String, String)> {
        let first = self.scenario.nodes.first().map(|n| n.name.as_str());
        written.resize(self.disks.len(), None);
        let mut files = Vec::new();
        for (((node, dev), disk), slot) in self.disks.iter().zip(written.iter_mut()) {
            if slot.as_ref() == Some(&disk.stats) {
                continue;
            }
            *slot = Some(disk.stats);
            let text = disk.stats.stat_text();
            let is_first = Some(node.as_str()) == first;
            if is_first {
                files.push((format!("sys/block/{dev}/stat"), text.clone()));
            }
            if !is_first || mirror_first {
                files.push((format!("{node}/sys/block/{dev}/stat"), text));
            }
        }
        files
    }
}

fn set_member(set: &mut std::collections::BTreeSet<String>, name: &str, member: bool) {
    if member {
        if !set.contains(name) {
            set.insert(name.to_owned());
        }
    } else {
        set.remove(name);
    }
}

/// KiB read and written per (node, block device) during an advance (a
/// handful of entries).
type Io = Vec<((String, String), (f64, f64))>;

fn add(io: &mut Io, node: &str, dev: &str, r: f64, w: f64) {
    match io.iter_mut().find(|((n, d), _)| n == node && d == dev) {
        Some((_, entry)) => {
            entry.0 += r;
            entry.1 += w;
        }
        None => io.push(((node.to_owned(), dev.to_owned()), (r, w))),
    }
}

/// Moves one resource's counters and resyncs forward by `secs` at the
/// current rates (resync rates by (pair, volume)); returns its disk I/O.
fn advance_truth(truth: &mut ResourceTruth, secs: f64) -> Io {
    let mut io = Io::new();
    let primaries: Vec<String> = truth
        .roles
        .iter()
        .filter(|(n, r)| **r == Role::Primary && truth.present.contains(*n))
        .map(|(n, _)| n.clone())
        .collect();
    let write = truth.spec.write_rate as f64 * secs;
    let read = write / 4.0;
    for vol in &truth.spec.volumes {
        if write > 0.0 {
            let drbd = format!("drbd{}", vol.minor);
            for primary in &primaries {
                add(&mut io, primary, &drbd, read, write);
                add(&mut io, primary, &vol.backing_device, read, write);
                if let Some(dev) = truth.devices.get_mut(&(primary.clone(), vol.volume)) {
                    dev.read_kib += read;
                    dev.written_kib += write;
                }
                for peer in &truth.present {
                    if peer == primary
                        || truth.links.get(&pair(primary, peer)) != Some(&Link::Connected)
                    {
                        continue;
                    }
                    add(&mut io, peer, &vol.backing_device, 0.0, write);
                    let key = (primary.clone(), peer.clone(), vol.volume);
                    if let Some(c) = truth.peers.get_mut(&key) {
                        c.sent_kib += write;
                    }
                    let key = (peer.clone(), primary.clone(), vol.volume);
                    if let Some(c) = truth.peers.get_mut(&key) {
                        c.received_kib += write;
                    }
                }
            }
        }
        for ((p, v), pv) in truth.volumes.iter_mut() {
            if *v != vol.volume {
                continue;
            }
            if !primaries.is_empty() && truth.links.get(p) != Some(&Link::Connected) {
                pv.out_of_sync = (pv.out_of_sync + write).min(vol.size_kib as f64);
            }
            let Some(rs) = pv
                .resync
                .as_mut()
                .filter(|r| r.phase == ResyncPhase::Running && !r.driven)
            else {
                continue;
            };
            let moved = (rs.rate as f64 * secs).min(rs.remaining_kib.max(0.0));
            rs.remaining_kib -= moved;
            add(&mut io, &rs.source, &vol.backing_device, moved, 0.0);
            add(&mut io, &rs.target, &vol.backing_device, 0.0, moved);
            let (src, tgt) = (rs.source.clone(), rs.target.clone());
            if let Some(c) = truth.peers.get_mut(&(src.clone(), tgt.clone(), *v)) {
                c.sent_kib += moved;
            }
            if let Some(c) = truth.peers.get_mut(&(tgt, src, *v)) {
                c.received_kib += moved;
            }
        }
    }
    io
}

/// How long until a running resync of `truth` ends, from its last advance.
pub(super) fn resync_left(remaining_kib: f64, rate: u64) -> Duration {
    let secs = remaining_kib.max(0.0) / rate.max(1) as f64;
    Duration::from_secs_f64(secs.min(1.0e9))
}
