//! How timeline actions and their follow-ups change the cluster's truth,
//! how time moves the counters, and how changes become per-node batches.

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
                    self.catch_up(&name);
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
                    self.touch(&name);
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
                self.catch_up(&resource);
                if let Some(truth) = self.resources.get_mut(&resource) {
                    match node {
                        Some(node) => {
                            truth.present.remove(&node);
                        }
                        None => truth.present.clear(),
                    }
                }
                self.touch(&resource);
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
                let driven = self.plant.is_some();
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
                            rate: 0,
                            driven,
                        });
                    }
                }
                self.touch(&name);
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
        self.refresh_rates(name);
    }

    /// Finishes or reports progress of one running resync; true if it did.
    pub(super) fn progress_due(&mut self, _out: &mut [NodeBatch]) -> bool {
        let clock = self.clock;
        let due: Vec<String> = self
            .resync_due
            .iter()
            .filter(|(_, at)| **at <= clock)
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            let pushed = self.progress_one(&name);
            // Either way its due time moves on (caught up: a rounding
            // remainder is due again a little later).
            self.touch(&name);
            if pushed {
                return true;
            }
        }
        false
    }

    fn progress_one(&mut self, name: &str) -> bool {
        self.catch_up(name);
        let clock = self.clock;
        let Some(truth) = self.resources.get_mut(name) else {
            return false;
        };
        for pv in truth.volumes.values_mut() {
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
                let rate = rs.rate.max(1);
                rs.eta = Eta::Seconds((rs.remaining_kib / rate as f64).round() as u64);
                rs.last_push = clock;
                return true;
            }
        }
        false
    }

    /// Turns every node's state change since the last publish into batches
    /// (only resources touched since then can have changed).
    pub(super) fn publish(&mut self, out: &mut Vec<NodeBatch>) {
        if self.dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut self.dirty);
        for node in self.node_names() {
            for name in &dirty {
                let fresh = self
                    .resources
                    .get(name)
                    .and_then(|truth| view::resource(self, truth, &node));
                let published = self.published.entry(node.clone()).or_default();
                let item = match (published.get(name), fresh) {
                    (None, None) => continue,
                    (Some(old), Some(new)) => {
                        if view::strip(old) == view::strip(&new) {
                            continue;
                        }
                        let settled = view::settle(old, new);
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
                            new: Some(new),
                        }
                    }
                    (Some(_), None) => Item::Batch {
                        old: published.remove(name),
                        new: None,
                    },
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
        let selected: Box<dyn Iterator<Item = &super::cluster::ResourceTruth>> = match only {
            Some(name) => Box::new(self.resources.get(name).into_iter()),
            None => Box::new(self.resources.values()),
        };
        selected
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
        self.catch_up(name);
        self.change_link(name, p, link);
        self.touch(name);
    }

    fn change_link(&mut self, name: &str, p: &Pair, link: Link) {
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
        self.catch_up(name);
        if let Some(truth) = self.resources.get_mut(name) {
            truth.roles.insert(node.to_owned(), role);
        }
        self.touch(name);
    }

    fn set_open(&mut self, name: &str, node: &str, open: bool) {
        self.catch_up(name);
        if let Some(truth) = self.resources.get_mut(name) {
            truth.open.insert(node.to_owned(), open);
        }
        self.touch(name);
    }
}
