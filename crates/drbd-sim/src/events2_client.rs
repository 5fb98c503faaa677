//! Formatting for one `drbdsetup events2` client: the initial dump, live
//! items, `--poll` re-dumps. Pure: the server feeds it and writes its text.

use std::collections::BTreeMap;

use crate::events2::format::{self, BatchKind};
use crate::state::Resource;

use super::cluster::{HelperEvent, Item};
use super::command::Events2Args;

/// What the client does after an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Print this text (may be empty) and go on.
    Print(String),
    /// Print to stderr and exit with the code.
    Exit { stderr: String, code: i32 },
    /// Stop printing for a while (None: for ever).
    Hang(Option<std::time::Duration>),
}

/// One client's options and what it printed last.
#[derive(Debug, Clone)]
pub struct Client {
    pub args: Events2Args,
    last: BTreeMap<String, Resource>,
    /// Generation of each resource at the last poll (see
    /// [`crate::cluster::Cluster::views_since`]); live batches drop it.
    polled: BTreeMap<String, u64>,
}

/// A helper `call` and `response` pair.
fn helper_lines(prefix: &str, h: &HelperEvent) -> String {
    let mut out = String::new();
    for response in [false, true] {
        format::helper_line(
            prefix,
            response,
            &h.resource,
            h.peer.as_ref().map(|(id, _)| *id),
            h.peer.as_ref().map(|(_, name)| name.as_str()),
            h.volume.map(|(volume, _)| volume),
            h.volume.map(|(_, minor)| minor),
            &h.helper,
            response.then_some(h.status),
            &mut out,
        );
    }
    out
}

impl Client {
    pub fn new(args: Events2Args) -> Self {
        Self {
            args,
            last: BTreeMap::new(),
            polled: BTreeMap::new(),
        }
    }

    fn wants(&self, resource: &str) -> bool {
        self.args.target == "all" || self.args.target == resource
    }

    /// The initial dump of `state`, ending with `exists -`.
    pub fn dump(&mut self, prefix: &str, state: &BTreeMap<String, Resource>) -> String {
        let mut out = String::new();
        for (name, resource) in state {
            if !self.wants(name) {
                continue;
            }
            format::batch(
                None,
                Some(resource),
                BatchKind::InitialDump,
                &self.args.format,
                prefix,
                &mut out,
            );
            self.last.insert(name.clone(), resource.clone());
        }
        format::end_of_dump(prefix, &mut out);
        out
    }

    /// `--poll`: `n` re-prints the objects that changed since the last print.
    pub fn poll(&mut self, prefix: &str, state: &BTreeMap<String, Resource>) -> String {
        let mut out = String::new();
        let names: std::collections::BTreeSet<String> = self
            .last
            .keys()
            .chain(state.keys())
            .filter(|n| self.wants(n))
            .cloned()
            .collect();
        for name in names {
            let old = self.last.get(&name);
            let new = state.get(&name);
            if old == new {
                continue;
            }
            format::batch(
                old,
                new,
                BatchKind::Live,
                &self.args.format,
                prefix,
                &mut out,
            );
            match new {
                Some(new) => self.last.insert(name, new.clone()),
                None => self.last.remove(&name),
            };
        }
        out
    }

    /// What to ask [`crate::cluster::Cluster::views_since`] for.
    pub fn polled(&self) -> &BTreeMap<String, u64> {
        &self.polled
    }

    /// `--poll` from the views that may have changed since the last poll:
    /// `n` re-prints the objects that differ from what was printed.
    pub fn poll_since(
        &mut self,
        prefix: &str,
        views: Vec<(String, u64, Option<Resource>)>,
    ) -> String {
        let mut out = String::new();
        for (name, generation, new) in views {
            self.polled.insert(name.clone(), generation);
            if !self.wants(&name) {
                continue;
            }
            let old = self.last.get(&name);
            if old == new.as_ref() {
                continue;
            }
            format::batch(
                old,
                new.as_ref(),
                BatchKind::Live,
                &self.args.format,
                prefix,
                &mut out,
            );
            match new {
                Some(new) => self.last.insert(name, new),
                None => self.last.remove(&name),
            };
        }
        out
    }

    /// One item from the node's kernel.
    pub fn item(&mut self, prefix: &str, item: &Item) -> Next {
        use super::scenario::Fault;
        let mut out = String::new();
        match item {
            Item::Batch { old, new } => {
                let name = old.as_ref().or(new.as_ref()).map(|r| r.name.clone());
                let Some(name) = name.filter(|n| self.wants(n)) else {
                    return Next::Print(out);
                };
                self.polled.remove(&name);
                let before = self.last.get(&name).cloned().or_else(|| old.clone());
                format::batch(
                    before.as_ref(),
                    new.as_ref(),
                    BatchKind::Live,
                    &self.args.format,
                    prefix,
                    &mut out,
                );
                match new {
                    Some(new) => self.last.insert(name, new.clone()),
                    None => self.last.remove(&name),
                };
            }
            Item::Helper(h) => {
                if self.wants(&h.resource) {
                    out = helper_lines(prefix, h);
                }
            }
            Item::Fault(Fault::Overrun) => {
                return Next::Exit {
                    stderr: "events2: 1 packets droped, socket receive buffer overrun\n".into(),
                    code: 20,
                }
            }
            Item::Fault(Fault::ModuleUnloaded | Fault::ModuleMissing { .. }) => {
                return Next::Exit {
                    stderr: "events2: module unloaded\n".into(),
                    code: 121,
                }
            }
            Item::Fault(Fault::Hang { duration }) => return Next::Hang(*duration),
            Item::Fault(Fault::Garbage) => {
                out = format!("{prefix}%%garbage\u{1}line from a confused kernel ===\n");
            }
            Item::Fault(Fault::CommandFail { .. }) => {}
        }
        Next::Print(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Cluster;
    use crate::scenario::{self, Fault};

    fn client(target: &str) -> Client {
        Client::new(Events2Args {
            target: target.into(),
            ..Events2Args::default()
        })
    }

    #[test]
    fn dump_ends_with_exists_dash() {
        let cluster = Cluster::new(scenario::load("resync-3node").unwrap());
        let mut c = client("all");
        let text = c.dump("", &cluster.published("alpha"));
        assert!(text.ends_with("exists -\n"), "{text}");
        assert_eq!(c.last.len(), 1);
        let mut other = client("nope");
        assert_eq!(other.dump("", &cluster.published("alpha")), "exists -\n");
        assert!(other.last.is_empty());
    }

    #[test]
    fn helpers_and_faults() {
        let mut c = client("all");
        let h = HelperEvent {
            resource: "r0".into(),
            peer: Some((1, "bravo".into())),
            volume: Some((0, 1000)),
            helper: "before-resync-source".into(),
            status: 0,
        };
        assert_eq!(
            c.item("", &Item::Helper(h)),
            Next::Print(
                "call helper name:r0 peer-node-id:1 conn-name:bravo volume:0 minor:1000 helper:before-resync-source\n\
                 response helper name:r0 peer-node-id:1 conn-name:bravo volume:0 minor:1000 helper:before-resync-source status:0\n"
                    .into()
            )
        );
        assert!(matches!(
            c.item("", &Item::Fault(Fault::Overrun)),
            Next::Exit { code: 20, .. }
        ));
        assert!(matches!(
            c.item("", &Item::Fault(Fault::ModuleUnloaded)),
            Next::Exit { code: 121, .. }
        ));
        let Next::Print(garbage) = c.item("", &Item::Fault(Fault::Garbage)) else {
            panic!("garbage prints")
        };
        assert!(crate::events2::parse_line(garbage.trim_end()).is_err());
    }

    #[test]
    fn poll_tracks_what_was_printed() {
        let mut cluster = Cluster::new(scenario::load("resync-3node").unwrap());
        let mut c = client("all");
        c.dump("", &cluster.published("charlie"));
        cluster.step(std::time::Duration::from_secs(1));
        c.poll("", &cluster.views("charlie"));
        assert_eq!(c.last, cluster.views("charlie"));
    }

    #[test]
    fn poll_since_rebuilds_only_what_changed() {
        let mut cluster = Cluster::new(scenario::load("scale:50").unwrap());
        let mut c = client("all");
        c.args.format.statistics = 1;
        c.dump("", &cluster.published("alpha"));
        cluster.step(std::time::Duration::from_secs(3));
        cluster.sync_counters();
        let views = cluster.views_since("alpha", c.polled());
        assert_eq!(views.len(), 50);
        let first = c.poll_since("", views);
        // Writing primaries moved their counters since the dump.
        assert!(
            first.contains("change device name:pvc-00000000-"),
            "{first}"
        );
        assert_eq!(c.last, cluster.views("alpha"));
        // Nothing changed: nothing to rebuild, nothing printed.
        assert!(cluster.views_since("alpha", c.polled()).is_empty());
        // Time moves the writers only; the result equals a full re-read.
        cluster.step(std::time::Duration::from_secs(9));
        cluster.sync_counters();
        let views = cluster.views_since("alpha", c.polled());
        assert!(!views.is_empty() && views.len() < 50, "{}", views.len());
        c.poll_since("", views);
        assert_eq!(c.last, cluster.views("alpha"));
    }
}
