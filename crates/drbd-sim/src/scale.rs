//! Generated scenarios for load tests: `scale:N[:P[:V[:R]]]`.
//!
//! N resources, each with P peers (default 2) and V volumes (default 1);
//! node `alpha` (node-id 0) has every resource, the peers rotate over the
//! other nodes (at least three nodes in all). Names are UUID-shaped
//! (`pvc-00000000-5ca1-4000-8000-000000000000`), minors start at 1000.
//!
//! The timeline never ends (it repeats every [`CYCLE_S`] seconds) and runs
//! R actions per second (default N/150, at least 1; about 150 lines/s of
//! `events2` on alpha for N = 1000), spread evenly: mostly
//! link cycles on one resource (disconnect, reconnect 2 s later with a
//! resync of 32–256 MiB at 16 MiB/s that pushes progress), some on a link
//! between two peers, and primaries that move and come back. Every tenth
//! resource writes continuously on its primary (moving counters and stat
//! files); the rest are idle, like most volumes of a real cluster.
//!
//! Pure: the scenario is generated as TOML text and checked by the same
//! code as a scenario file.

use std::fmt::Write as _;

/// Length of one timeline cycle (the `repeat`), seconds.
pub const CYCLE_S: u32 = 60;
/// Actions start within the first this many seconds of a cycle, so that
/// their follow-ups (reconnect +2 s, role return +11 s) end before it.
const START_WINDOW_S: u32 = 48;
/// Prefix of the built-in name.
pub const PREFIX: &str = "scale:";
/// One line for `drbd-sim scenarios` and --help.
pub const SYNTAX: &str = "scale:N[:P[:V[:R]]]  generated: N resources x P peers (default 2) x V volumes \
(default 1), never-ending timeline of R actions/s (default N/150, min 1) on node alpha and its peers";

const NATO: [&str; 26] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
];

/// The shape of a generated scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleSpec {
    pub resources: u32,
    pub peers: u32,
    pub volumes: u32,
    /// Timeline actions per second.
    pub rate: u32,
}

impl ScaleSpec {
    /// Number of nodes: alpha plus enough for the peers, at least three.
    pub fn nodes(&self) -> u32 {
        (self.peers + 1).max(3)
    }
}

/// Why a `scale:` name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{name}': {reason} (syntax: scale:N[:P[:V[:R]]])")]
pub struct ScaleNameError {
    pub name: String,
    pub reason: ScaleFieldError,
}

/// What is wrong with the fields of a `scale:` name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleFieldError {
    #[error("too many fields")]
    TooManyFields,
    #[error("resources missing")]
    NoResources,
    #[error("{what} '{text}' is not a number")]
    NotANumber { what: &'static str, text: String },
    #[error("{what} {value} is out of range [1..{max}]")]
    OutOfRange {
        what: &'static str,
        value: u32,
        max: u32,
    },
    #[error("resources x volumes must not exceed 1000000")]
    TooManyDevices,
}

/// `Some` if `name` is a `scale:` name (then parsed or why not).
pub fn parse_name(name: &str) -> Option<Result<ScaleSpec, ScaleNameError>> {
    let rest = name.strip_prefix(PREFIX)?;
    Some(parse_fields(rest).map_err(|reason| ScaleNameError {
        name: name.to_owned(),
        reason,
    }))
}

fn parse_fields(rest: &str) -> Result<ScaleSpec, ScaleFieldError> {
    let fields: Vec<&str> = rest.split(':').collect();
    if fields.len() > 4 {
        return Err(ScaleFieldError::TooManyFields);
    }
    let number =
        |index: usize, what: &'static str, max: u32| -> Result<Option<u32>, ScaleFieldError> {
            let Some(text) = fields.get(index) else {
                return Ok(None);
            };
            let value: u32 = text.parse().map_err(|_| ScaleFieldError::NotANumber {
                what,
                text: (*text).to_owned(),
            })?;
            if value == 0 || value > max {
                return Err(ScaleFieldError::OutOfRange { what, value, max });
            }
            Ok(Some(value))
        };
    let resources = number(0, "resources", 100_000)?.ok_or(ScaleFieldError::NoResources)?;
    let peers = number(1, "peers", 30)?.unwrap_or(2);
    let volumes = number(2, "volumes", 16)?.unwrap_or(1);
    let rate = number(3, "rate", 10_000)?.unwrap_or((resources / 150).max(1));
    // Minors 1000.. must stay below 2^20.
    if u64::from(resources) * u64::from(volumes) > 1_000_000 {
        return Err(ScaleFieldError::TooManyDevices);
    }
    Ok(ScaleSpec {
        resources,
        peers,
        volumes,
        rate,
    })
}

/// Node name of node-id `id`.
pub fn node_name(id: u32) -> String {
    NATO.get(id as usize)
        .map(|n| (*n).to_owned())
        .unwrap_or_else(|| format!("node{id}"))
}

/// Resource name of index `i`.
pub fn resource_name(i: u32) -> String {
    format!("pvc-{i:08x}-5ca1-4000-8000-{i:012x}")
}

/// Node-ids of resource `i`: alpha (0) first, then its peers.
fn members(spec: &ScaleSpec, i: u32) -> Vec<u32> {
    let others = spec.nodes() - 1;
    let mut ids = vec![0];
    for k in 0..spec.peers {
        ids.push(1 + (i + k) % others);
    }
    ids
}

/// The scenario as TOML text.
pub fn toml(spec: &ScaleSpec) -> String {
    let mut out = String::with_capacity(spec.resources as usize * 400 + 4096);
    let _ = writeln!(
        out,
        "description = \"generated {PREFIX}{}:{}:{}:{}\"",
        spec.resources, spec.peers, spec.volumes, spec.rate
    );
    for id in 0..spec.nodes() {
        let _ = writeln!(
            out,
            "\n[[node]]\nname = \"{}\"\nnode-id = {id}",
            node_name(id)
        );
    }
    for i in 0..spec.resources {
        resource(&mut out, spec, i);
    }
    timeline(&mut out, spec);
    out
}

fn resource(out: &mut String, spec: &ScaleSpec, i: u32) {
    let ids = members(spec, i);
    let nodes: Vec<String> = ids
        .iter()
        .map(|id| format!("\"{}\"", node_name(*id)))
        .collect();
    let primary = node_name(ids[i as usize % ids.len()]);
    let write_rate = if i % 10 == 0 { "2M" } else { "0" };
    let _ = writeln!(
        out,
        "\n[[resource]]\nname = \"{}\"\nport = {}\nnodes = [{}]\nprimary = \"{primary}\"\n\
         write-rate = \"{write_rate}\"\nresync-capacity = \"16M\"",
        resource_name(i),
        7000 + i % 50_000,
        nodes.join(", "),
    );
    for v in 0..spec.volumes {
        let _ = writeln!(
            out,
            "[[resource.volume]]\nvolume = {v}\nminor = {}\nsize = \"10G\"\nbacking-device = \"dm-{}\"",
            1000 + i * spec.volumes + v,
            i * spec.volumes + v,
        );
    }
}

fn event(out: &mut String, at_ms: u64, body: &str) {
    let _ = writeln!(out, "\n[[event]]\nat = \"{at_ms}ms\"\n{body}");
}

fn timeline(out: &mut String, spec: &ScaleSpec) {
    let slots = u64::from(spec.rate) * u64::from(START_WINDOW_S);
    let step_ms = 1000.0 / f64::from(spec.rate);
    for slot in 0..slots {
        let at = (slot as f64 * step_ms).round() as u64;
        // Resources in a stride that visits all of them before repeating.
        let i = ((slot * 7919) % u64::from(spec.resources)) as u32;
        let name = resource_name(i);
        let ids = members(spec, i);
        match slot % 10 {
            // A primary moves to another node and comes back.
            4 | 9 => {
                let primary = node_name(ids[i as usize % ids.len()]);
                let other = node_name(ids[(i as usize + 1) % ids.len()]);
                for (delay, action, node) in [
                    (0, "demote", &primary),
                    (1000, "promote", &other),
                    (10_000, "demote", &other),
                    (11_000, "promote", &primary),
                ] {
                    event(
                        out,
                        at + delay,
                        &format!("action = \"{action}\"\nnode = \"{node}\"\nresource = \"{name}\""),
                    );
                }
            }
            // A link between two peers (not alpha's) fails.
            7 if ids.len() > 2 => link_cycle(out, at, &name, &ids[1], &ids[2], slot),
            // One of alpha's links fails.
            _ => {
                let peer = ids[1 + (slot as usize / 10) % (ids.len() - 1)];
                link_cycle(out, at, &name, &0, &peer, slot);
            }
        }
    }
    let _ = writeln!(out, "\n[[event]]\nat = \"{CYCLE_S}s\"\naction = \"repeat\"");
}

fn link_cycle(out: &mut String, at: u64, name: &str, a: &u32, b: &u32, slot: u64) {
    let nodes = format!("nodes = [\"{}\", \"{}\"]", node_name(*a), node_name(*b));
    event(
        out,
        at,
        &format!("action = \"disconnect\"\nresource = \"{name}\"\n{nodes}"),
    );
    let out_of_sync = 32 << (slot % 4);
    event(
        out,
        at + 2000,
        &format!(
            "action = \"reconnect\"\nresource = \"{name}\"\n{nodes}\nout-of-sync = \"{out_of_sync}M\""
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{self, Action};

    fn load(spec: ScaleSpec) -> scenario::Scenario {
        scenario::parse("<scale>", &toml(&spec)).unwrap()
    }

    #[test]
    fn names_parse_with_defaults_and_errors() {
        assert_eq!(parse_name("demo"), None);
        assert_eq!(
            parse_name("scale:1000"),
            Some(Ok(ScaleSpec {
                resources: 1000,
                peers: 2,
                volumes: 1,
                rate: 6
            }))
        );
        assert_eq!(
            parse_name("scale:5:3:2:7"),
            Some(Ok(ScaleSpec {
                resources: 5,
                peers: 3,
                volumes: 2,
                rate: 7
            }))
        );
        for bad in [
            "scale:",
            "scale:0",
            "scale:x",
            "scale:5:31",
            "scale:1:1:1:1:1",
            "scale:1000000:1:2",
        ] {
            let err = parse_name(bad).unwrap().unwrap_err();
            assert_eq!(err.name, bad);
            let text = err.to_string();
            assert!(text.contains(bad) && text.contains("syntax"), "{text}");
        }
    }

    #[test]
    fn counts_of_resources_peers_volumes_and_minors() {
        let spec = parse_name("scale:50:2:3").unwrap().unwrap();
        let s = load(spec);
        assert_eq!(s.nodes.len(), 3);
        assert_eq!(s.nodes[0].name, "alpha");
        assert_eq!(s.nodes[0].node_id, 0);
        assert_eq!(s.resources.len(), 50);
        let mut minors = Vec::new();
        for r in &s.resources {
            assert!(r.name.starts_with("pvc-"), "{}", r.name);
            assert_eq!(r.nodes.len(), 3);
            assert_eq!(r.nodes[0], "alpha");
            assert_eq!(r.volumes.len(), 3);
            minors.extend(r.volumes.iter().map(|v| v.minor));
        }
        minors.sort_unstable();
        assert_eq!(minors, (1000..1150).collect::<Vec<u32>>());
        assert_eq!(
            s.resources[1].name,
            "pvc-00000001-5ca1-4000-8000-000000000001"
        );
    }

    #[test]
    fn more_peers_than_three_nodes_rotate() {
        let s = load(parse_name("scale:10:1").unwrap().unwrap());
        assert_eq!(s.nodes.len(), 3);
        assert!(s.resources.iter().all(|r| r.nodes.len() == 2));
        assert!(s.resources.iter().any(|r| r.nodes[1] == "bravo"));
        assert!(s.resources.iter().any(|r| r.nodes[1] == "charlie"));
        let s = load(parse_name("scale:10:4").unwrap().unwrap());
        assert_eq!(s.nodes.len(), 5);
        assert!(s.resources.iter().all(|r| r.nodes.len() == 5));
    }

    #[test]
    fn timeline_repeats_and_keeps_the_rate() {
        let s = load(parse_name("scale:1000:2:1:10").unwrap().unwrap());
        assert_eq!(s.repeat_at, Some(std::time::Duration::from_secs(60)));
        let disconnects = s
            .timeline
            .iter()
            .filter(|e| matches!(e.action, Action::Disconnect { .. }))
            .count();
        // 10 actions/s over the 48 s window; 8 of 10 slots are link cycles.
        assert_eq!(disconnects, 480 * 8 / 10);
        let alpha = s
            .timeline
            .iter()
            .filter(
                |e| matches!(&e.action, Action::Disconnect { nodes, .. } if nodes[0] == "alpha"),
            )
            .count();
        assert!(alpha * 10 > disconnects * 7, "{alpha} of {disconnects}");
        assert!(s
            .timeline
            .iter()
            .any(|e| matches!(e.action, Action::Promote { .. })));
        assert!(s
            .timeline
            .iter()
            .all(|e| e.at < std::time::Duration::from_secs(60)));
    }
}
