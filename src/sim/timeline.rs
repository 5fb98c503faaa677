//! How timeline actions and their follow-ups change the cluster's truth,
//! how time moves the counters, and how changes become per-node batches.

use std::collections::BTreeMap;

use crate::events2::{Eta, Role};

use super::cluster::{
    pair, Cluster, HelperEvent, Item, Link, NodeBatch, Pair, Resync, ResyncPhase, Step,
};
use super::scenario::{Action, Fault};
use super::view;

/// Less than this many KiB left counts as done (float rounding).
const DONE_EPSILON_KIB: f64 = 1.0;

impl Cluster {
    pub(super) fn run_action(&mut self, action: Action, out: &mut Vec<NodeBatch>) {
        tracing::debug!(?action, at = ?self.clock, "timeline action");
        match action {
            Action::Disconnect { resource, nodes } => {
                let p = pair(&nodes[0], &nodes[1]);
                for name in self.matching(resource.as_deref(), &p) {
                    self.set_link(&name, &p, Link::NetworkFailure);
                }
                self.publish(out);
                for name in self.matching(resource.as_deref(), &p) {
                    for (node, peer) in [(&p.0, &p.1), (&p.1, &p.0)] {
                        let peer_id = self.scenario.node_id(peer).unwrap_or_default();
                        out.push(NodeBatch {
                            node: node.clone(),
                            item: Item::Helper(HelperEvent {
                                resource: name.clone(),
                                peer: Some((peer_id, peer.clone())),
                                volume: None,
                                helper: "disconnected".into(),
                                status: 0,
                            }),
                        });
                    }
                    self.schedule(200, Step::Link(name.clone(), p.clone(), Link::Unconnected));
                    self.schedule(
                        400,
                        Step::Link(name, p.clone(), Link::Connecting { path_up: false }),
                    );
                }
            }
            Action::Reconnect {
                resource,
                nodes,
                out_of_sync,
                source,
            } => {
                let p = pair(&nodes[0], &nodes[1]);
                for name in self.matching(resource.as_deref(), &p) {
                    let source = source
                        .clone()
                        .unwrap_or_else(|| self.default_source(&name, &nodes));
                    if let Some(truth) = self.resources.get_mut(&name) {
                        truth
                            .links
                            .insert(p.clone(), Link::Connecting { path_up: true });
                        if let Some(kib) = out_of_sync {
                            for ((q, _), pv) in truth.volumes.iter_mut() {
                                if *q == p {
                                    pv.out_of_sync = kib as f64;
                                }
                            }
                        }
                    }
                    self.schedule(300, Step::Link(name.clone(), p.clone(), Link::Connected));
                    self.schedule(600, Step::StartResync(name.clone(), p.clone(), source));
                    self.schedule(900, Step::RunResync(name, p.clone()));
                }
            }
            Action::Promote { node, resource } => {
                self.set_role(&resource, &node, Role::Primary);
                self.schedule(100, Step::Open(resource, node, true));
            }
            Action::Demote { node, resource } => {
                self.set_open(&resource, &node, false);
                self.schedule(100, Step::Role(resource, node, Role::Secondary));
            }
            Action::Destroy { resource, node } => {
                if let Some(truth) = self.resources.get_mut(&resource) {
                    match node {
                        Some(node) => {
                            truth.present.remove(&node);
                        }
                        None => truth.present.clear(),
                    }
                }
            }
            Action::Fault { node, fault } => {
                let faults = self.faults.entry(node.clone()).or_default();
                match fault {
                    Fault::CommandFail { count } => faults.fail_next += count,
                    Fault::ModuleMissing { duration } => {
                        faults.module_missing_until = Some(self.clock + duration);
                        out.push(NodeBatch {
                            node,
                            item: Item::Fault(Fault::ModuleMissing { duration }),
                        });
                    }
                    other => out.push(NodeBatch {
                        node,
                        item: Item::Fault(other),
                    }),
                }
            }
        }
    }

    pub(super) fn run_step(&mut self, step: Step, out: &mut Vec<NodeBatch>) {
        match step {
            Step::Link(name, p, link) => self.set_link(&name, &p, link),
            Step::StartResync(name, p, source) => {
                let target = if source == p.0 {
                    p.1.clone()
                } else {
                    p.0.clone()
                };
                let clock = self.clock;
                let Some(truth) = self.resources.get_mut(&name) else {
                    return;
                };
                truth.handshake.remove(&p);
                if truth.links.get(&p) != Some(&Link::Connected) {
                    return;
                }
                for ((q, _), pv) in truth.volumes.iter_mut() {
                    if *q == p && pv.out_of_sync >= DONE_EPSILON_KIB && pv.resync.is_none() {
                        let total = pv.out_of_sync.round() as u64;
                        pv.resync = Some(Resync {
                            source: source.clone(),
                            target: target.clone(),
                            phase: ResyncPhase::WaitBitmap,
                            total_kib: total,
                            remaining_kib: pv.out_of_sync,
                            shown_done: 0.0,
                            shown_remaining: total,
                            last_push: clock,
                            dbdt1: 0.0,
                            eta: Eta::Unknown,
                        });
                    }
                }
            }
            Step::RunResync(name, p) => self.run_resync(&name, &p, out),
            Step::Role(name, node, role) => self.set_role(&name, &node, role),
            Step::Open(name, node, open) => self.set_open(&name, &node, open),
        }
    }

    fn run_resync(&mut self, name: &str, p: &Pair, out: &mut Vec<NodeBatch>) {
        let clock = self.clock;
        let Some(truth) = self.resources.get(name) else {
            return;
        };
        let mut helpers = Vec::new();
        for ((q, vol), pv) in &truth.volumes {
            let Some(rs) = pv
                .resync
                .as_ref()
                .filter(|r| r.phase == ResyncPhase::WaitBitmap)
            else {
                continue;
            };
            if q != p {
                continue;
            }
            let minor = truth
                .spec
                .volumes
                .iter()
                .find(|v| v.volume == *vol)
                .map(|v| v.minor)
                .unwrap_or_default();
            for (node, peer, helper) in [
                (&rs.source, &rs.target, "before-resync-source"),
                (&rs.target, &rs.source, "before-resync-target"),
            ] {
                let peer_id = self.scenario.node_id(peer).unwrap_or_default();
                helpers.push(NodeBatch {
                    node: node.clone(),
                    item: Item::Helper(HelperEvent {
                        resource: name.to_owned(),
                        peer: Some((peer_id, peer.clone())),
                        volume: Some((*vol, minor)),
                        helper: helper.into(),
                        status: 0,
                    }),
                });
            }
        }
        out.extend(helpers);
        if let Some(truth) = self.resources.get_mut(name) {
            for ((q, _), pv) in truth.volumes.iter_mut() {
                if q != p {
                    continue;
                }
                if let Some(rs) = pv.resync.as_mut() {
                    rs.phase = ResyncPhase::Running;
                    rs.last_push = clock;
                }
            }
        }
    }

    /// Finishes or reports progress of one running resync; true if it did.
    pub(super) fn progress_due(&mut self, _out: &mut [NodeBatch]) -> bool {
        let clock = self.clock;
        let mut rates = BTreeMap::new();
        for (name, truth) in &self.resources {
            for ((p, vol), pv) in &truth.volumes {
                if let Some(rs) = &pv.resync {
                    rates.insert(
                        (name.clone(), p.clone(), *vol),
                        self.resync_rate(truth, p, *vol, rs),
                    );
                }
            }
        }
        for (name, truth) in self.resources.iter_mut() {
            for ((p, vol), pv) in truth.volumes.iter_mut() {
                let Some(rs) = pv
                    .resync
                    .as_mut()
                    .filter(|r| r.phase == ResyncPhase::Running)
                else {
                    continue;
                };
                if rs.remaining_kib < DONE_EPSILON_KIB {
                    pv.resync = None;
                    pv.out_of_sync = 0.0;
                    return true;
                }
                if rs.last_push + super::cluster::PROGRESS_INTERVAL <= clock {
                    let elapsed = (clock - rs.last_push).as_secs_f64().max(0.001);
                    let moved = rs.shown_remaining as f64 - rs.remaining_kib;
                    rs.dbdt1 = moved.max(0.0) / elapsed / 1024.0;
                    rs.shown_remaining = rs.remaining_kib.round() as u64;
                    let total = rs.total_kib.max(1) as f64;
                    rs.shown_done = ((total - rs.remaining_kib) / total * 100.0).clamp(0.0, 100.0);
                    let rate = rates
                        .get(&(name.clone(), p.clone(), *vol))
                        .copied()
                        .unwrap_or(1)
                        .max(1);
                    rs.eta = Eta::Seconds((rs.remaining_kib / rate as f64).round() as u64);
                    rs.last_push = clock;
                    return true;
                }
            }
        }
        false
    }

    /// Moves counters and resyncs forward by `dt` at the current rates.
    pub(super) fn advance(&mut self, dt: std::time::Duration) {
        let secs = dt.as_secs_f64();
        if secs <= 0.0 {
            return;
        }
        let mut io: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
        let mut rates = BTreeMap::new();
        for (name, truth) in &self.resources {
            for ((p, vol), pv) in &truth.volumes {
                if let Some(rs) = pv
                    .resync
                    .as_ref()
                    .filter(|r| r.phase == ResyncPhase::Running)
                {
                    rates.insert(
                        (name.clone(), p.clone(), *vol),
                        self.resync_rate(truth, p, *vol, rs),
                    );
                }
            }
        }
        for (name, truth) in self.resources.iter_mut() {
            let primaries: Vec<String> = truth
                .roles
                .iter()
                .filter(|(n, r)| **r == Role::Primary && truth.present.contains(*n))
                .map(|(n, _)| n.clone())
                .collect();
            let write = truth.spec.write_rate as f64 * secs;
            let read = write / 4.0;
            for vol in &truth.spec.volumes {
                let drbd = format!("drbd{}", vol.minor);
                for primary in &primaries {
                    add(&mut io, primary, &drbd, read, write);
                    add(&mut io, primary, &vol.backing_device, read, write);
                    if let Some(dev) = truth.devices.get_mut(&(primary.clone(), vol.volume)) {
                        dev.read_kib += read;
                        dev.written_kib += write;
                    }
                    for peer in &truth.present {
                        if peer == primary {
                            continue;
                        }
                        if truth.links.get(&pair(primary, peer)) == Some(&Link::Connected) {
                            add(&mut io, peer, &vol.backing_device, 0.0, write);
                            if let Some(c) =
                                truth
                                    .peers
                                    .get_mut(&(primary.clone(), peer.clone(), vol.volume))
                            {
                                c.sent_kib += write;
                            }
                            if let Some(c) =
                                truth
                                    .peers
                                    .get_mut(&(peer.clone(), primary.clone(), vol.volume))
                            {
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
                        .filter(|r| r.phase == ResyncPhase::Running)
                    else {
                        continue;
                    };
                    let rate = rates
                        .get(&(name.clone(), p.clone(), *v))
                        .copied()
                        .unwrap_or(0);
                    let moved = (rate as f64 * secs).min(rs.remaining_kib.max(0.0));
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
        }
        for ((node, dev), disk) in self.disks.iter_mut() {
            let (read, write) = io
                .get(&(node.clone(), dev.clone()))
                .copied()
                .unwrap_or_default();
            disk.account(dt, read, write);
        }
    }

    /// Turns every node's state change since the last publish into batches.
    pub(super) fn publish(&mut self, out: &mut Vec<NodeBatch>) {
        for node in self.node_names() {
            let fresh = self.views(&node);
            let published = self.published.entry(node.clone()).or_default();
            let names: Vec<String> = published.keys().chain(fresh.keys()).cloned().collect();
            let mut seen = std::collections::BTreeSet::new();
            for name in names {
                if !seen.insert(name.clone()) {
                    continue;
                }
                let old = published.get(&name);
                let new = fresh.get(&name);
                let item = match (old, new) {
                    (None, None) => continue,
                    (Some(old), Some(new)) => {
                        if view::strip(old) == view::strip(new) {
                            continue;
                        }
                        let settled = view::settle(old, new.clone());
                        let item = Item::Batch {
                            old: Some(old.clone()),
                            new: Some(settled.clone()),
                        };
                        published.insert(name.clone(), settled);
                        item
                    }
                    (None, Some(new)) => {
                        published.insert(name.clone(), new.clone());
                        Item::Batch {
                            old: None,
                            new: Some(new.clone()),
                        }
                    }
                    (Some(old), None) => {
                        let item = Item::Batch {
                            old: Some(old.clone()),
                            new: None,
                        };
                        published.remove(&name);
                        item
                    }
                };
                out.push(NodeBatch {
                    node: node.clone(),
                    item,
                });
            }
        }
    }

    /// Resources that both nodes of `p` have (optionally only `only`).
    fn matching(&self, only: Option<&str>, p: &Pair) -> Vec<String> {
        self.resources
            .values()
            .filter(|t| only.is_none_or(|o| o == t.spec.name))
            .filter(|t| t.present.contains(&p.0) && t.present.contains(&p.1))
            .map(|t| t.spec.name.clone())
            .collect()
    }

    fn default_source(&self, name: &str, nodes: &[String; 2]) -> String {
        let primary = self.resources.get(name).and_then(|t| {
            nodes
                .iter()
                .find(|n| t.roles.get(*n) == Some(&Role::Primary))
                .cloned()
        });
        primary.unwrap_or_else(|| nodes[0].clone())
    }

    fn set_link(&mut self, name: &str, p: &Pair, link: Link) {
        let Some(truth) = self.resources.get_mut(name) else {
            return;
        };
        if !truth.links.contains_key(p) {
            return;
        }
        let was = truth.links.insert(p.clone(), link);
        if link == Link::Connected && was != Some(Link::Connected) {
            // Peer devices start replicating once the resync handshake ran.
            truth.handshake.insert(p.clone());
        }
        if link != Link::Connected {
            truth.handshake.remove(p);
            for ((q, _), pv) in truth.volumes.iter_mut() {
                if q == p {
                    if let Some(rs) = pv.resync.take() {
                        pv.out_of_sync = rs.remaining_kib.max(0.0);
                    }
                }
            }
        }
    }

    fn set_role(&mut self, name: &str, node: &str, role: Role) {
        if let Some(truth) = self.resources.get_mut(name) {
            truth.roles.insert(node.to_owned(), role);
        }
    }

    fn set_open(&mut self, name: &str, node: &str, open: bool) {
        if let Some(truth) = self.resources.get_mut(name) {
            truth.open.insert(node.to_owned(), open);
        }
    }
}

fn add(io: &mut BTreeMap<(String, String), (f64, f64)>, node: &str, dev: &str, r: f64, w: f64) {
    let entry = io.entry((node.to_owned(), dev.to_owned())).or_default();
    entry.0 += r;
    entry.1 += w;
}
