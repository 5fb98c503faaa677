//! Scenario files: the simulated cluster (nodes, resources, volumes) and a
//! timeline of events. TOML, strictly checked: every error names the file,
//! the line and the key.
//!
//! ```toml
//! [[node]]
//! name = "alpha"
//! node-id = 0
//! address = "10.0.0.1"        # optional, default 10.0.0.<node-id + 1>
//!
//! [[resource]]
//! name = "r0"
//! port = 7000                 # optional, default 7000
//! nodes = ["alpha", "bravo"]  # optional, default all nodes
//! primary = "alpha"           # optional
//! write-rate = "20M"          # foreground writes on the primary, KiB/s per volume
//! resync-capacity = "70M"     # what network and disks allow a resync, KiB/s
//! options = { c-max-rate = "100M", c-plan-ahead = 20 }   # configured peer-device options
//! [[resource.volume]]
//! volume = 0
//! minor = 1000
//! size = "10G"                # KiB, suffixes k M G T
//! backing-disk = "/dev/vg0/r0"
//! backing-device = "dm-0"     # block device name of the backing disk (stat file)
//!
//! [[event]]
//! at = "5s"
//! action = "disconnect"       # reconnect promote demote destroy fault repeat
//! nodes = ["alpha", "bravo"]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

use super::options::{PeerDeviceOptions, SPECS};

/// Built-in scenarios by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("resync-3node", include_str!("scenarios/resync-3node.toml")),
    ("demo", include_str!("scenarios/demo.toml")),
];

/// A scenario that could not be read.
#[derive(Debug, Error)]
pub enum ScenarioError {
    #[error("{file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    #[error("unknown scenario '{0}' (not a file; built-in: resync-3node, demo)")]
    Unknown(String),
}

/// A checked scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub nodes: Vec<NodeSpec>,
    pub resources: Vec<ResourceSpec>,
    /// Events sorted by time (stable for equal times).
    pub timeline: Vec<TimedEvent>,
    /// With a `repeat` event: the timeline starts over at this time.
    pub repeat_at: Option<Duration>,
}

impl Scenario {
    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// A node's node-id.
    pub fn node_id(&self, name: &str) -> Option<u32> {
        self.node(name).map(|n| n.node_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub node_id: u32,
    /// IPv4 address without port.
    pub address: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSpec {
    pub name: String,
    pub port: u16,
    /// Node names that have this resource.
    pub nodes: Vec<String>,
    pub primary: Option<String>,
    /// KiB/s written per volume on the primary.
    pub write_rate: u64,
    /// KiB/s a resync can reach at most.
    pub resync_capacity: u64,
    /// Configured peer-device options (what `drbdadm adjust` restores).
    pub options: PeerDeviceOptions,
    pub volumes: Vec<VolumeSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    pub volume: u32,
    pub minor: u32,
    pub size_kib: u64,
    pub backing_disk: String,
    /// Block device name (under sys/block) of the backing disk.
    pub backing_device: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimedEvent {
    pub at: Duration,
    pub action: Action,
}

/// What happens at a point of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The link between two nodes fails (all or one resource).
    Disconnect {
        resource: Option<String>,
        nodes: [String; 2],
    },
    /// The link comes back; a resync follows when data differs.
    Reconnect {
        resource: Option<String>,
        nodes: [String; 2],
        /// KiB to resync; default: what was written while disconnected.
        out_of_sync: Option<u64>,
        /// The SyncSource; default the primary, else the first node.
        source: Option<String>,
    },
    Promote {
        node: String,
        resource: String,
    },
    Demote {
        node: String,
        resource: String,
    },
    /// The resource goes away (on one node or all).
    Destroy {
        resource: String,
        node: Option<String>,
    },
    /// A fault on one node's drbdsetup/kernel.
    Fault { node: String, fault: Fault },
}

/// Faults that hit the events2 clients and commands of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// events2 exits 20: receive buffer overrun.
    Overrun,
    /// events2 exits 121: module unloaded.
    ModuleUnloaded,
    /// events2 stops printing (stays connected) for a while, or forever.
    Hang { duration: Option<Duration> },
    /// events2 prints a line that is not events2.
    Garbage,
    /// The next `count` peer-device-options calls fail.
    CommandFail { count: u32 },
    /// The module is not loaded for a while: every command exits 20.
    ModuleMissing { duration: Duration },
}

// ---- raw TOML shapes ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    description: Option<String>,
    #[serde(default, rename = "node")]
    nodes: Vec<Spanned<RawNode>>,
    #[serde(default, rename = "resource")]
    resources: Vec<Spanned<RawResource>>,
    #[serde(default, rename = "event")]
    events: Vec<Spanned<RawEvent>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNode {
    name: String,
    node_id: u32,
    address: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Quantity {
    Int(u64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawResource {
    name: String,
    port: Option<u16>,
    nodes: Option<Vec<Spanned<String>>>,
    primary: Option<Spanned<String>>,
    write_rate: Option<Spanned<Quantity>>,
    resync_capacity: Option<Spanned<Quantity>>,
    #[serde(default)]
    options: BTreeMap<Spanned<String>, Spanned<Quantity>>,
    #[serde(default, rename = "volume")]
    volumes: Vec<Spanned<RawVolume>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawVolume {
    volume: u32,
    minor: u32,
    size: Spanned<Quantity>,
    backing_disk: Option<String>,
    backing_device: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEvent {
    at: Spanned<String>,
    action: Spanned<String>,
    resource: Option<Spanned<String>>,
    nodes: Option<Spanned<Vec<String>>>,
    node: Option<Spanned<String>>,
    out_of_sync: Option<Spanned<Quantity>>,
    source: Option<Spanned<String>>,
    fault: Option<Spanned<String>>,
    count: Option<u32>,
    duration: Option<Spanned<String>>,
}

// ---- value parsing (pure, reused by tests) ----

/// `"5s"`, `"500ms"`, `"2m"`, `"1.5s"`, `"1h"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (like 5s, 500ms, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("'{text}': unit must be ms, s, m or h")),
    };
    if !seconds.is_finite() || !(0.0..=1.0e9).contains(&seconds) {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A KiB amount (or KiB/s rate): a plain number, or with k, M, G, T.
pub fn parse_kib(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size (like 1048576, 512M, 10G)"))?;
    let factor: u64 = match unit {
        "" | "k" | "K" => 1,
        "M" => 1 << 10,
        "G" => 1 << 20,
        "T" => 1 << 30,
        _ => return Err(format!("'{text}': unit must be k, M, G or T")),
    };
    value
        .checked_mul(factor)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// Scenario text → checked scenario; `file` names the source in errors.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(|err| {
        let line = err.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        ScenarioError::Invalid {
            file: file.to_owned(),
            line,
            message: err.message().trim().to_owned(),
        }
    })?;
    Checker { file, text }.check(raw)
}

/// Loads a built-in scenario by name, or a file.
pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
    if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
        return parse(&format!("<built-in {name}>"), text);
    }
    let path = std::path::Path::new(name_or_path);
    if !path.exists() {
        return Err(ScenarioError::Unknown(name_or_path.to_owned()));
    }
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        file: name_or_path.to_owned(),
        source,
    })?;
    parse(name_or_path, &text)
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
}

struct Checker<'a> {
    file: &'a str,
    text: &'a str,
}

impl Checker<'_> {
    fn err(&self, span: std::ops::Range<usize>, message: String) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.to_owned(),
            line: line_of(self.text, span.start),
            message,
        }
    }

    fn kib(&self, key: &str, value: &Spanned<Quantity>) -> Result<u64, ScenarioError> {
        match value.get_ref() {
            Quantity::Int(v) => Ok(*v),
            Quantity::Text(t) => {
                parse_kib(t).map_err(|m| self.err(value.span(), format!("{key}: {m}")))
            }
        }
    }

    fn check(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        let _ = raw.description;
        let nodes = self.check_nodes(&raw.nodes)?;
        let names: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        let mut resources: Vec<ResourceSpec> = Vec::new();
        let mut minors = BTreeSet::new();
        let mut backing_index = 0usize;
        for raw_res in &raw.resources {
            let res = self.check_resource(raw_res, &names, &mut minors, &mut backing_index)?;
            if resources.iter().any(|r| r.name == res.name) {
                return Err(self.err(
                    raw_res.span(),
                    format!("name: resource '{}' defined twice", res.name),
                ));
            }
            resources.push(res);
        }
        let mut timeline = Vec::new();
        let mut repeat_at = None;
        for raw_event in &raw.events {
            let span = raw_event.span();
            let event = raw_event.get_ref();
            let at = parse_duration(event.at.get_ref())
                .map_err(|m| self.err(event.at.span(), format!("at: {m}")))?;
            if let Some(repeat) = repeat_at {
                if at >= repeat {
                    return Err(self.err(
                        event.at.span(),
                        "at: events at or after the `repeat` event never happen".to_owned(),
                    ));
                }
            }
            match self.check_event(event, span, &names, &resources)? {
                Some(action) => timeline.push(TimedEvent { at, action }),
                None => {
                    if timeline.iter().any(|e: &TimedEvent| e.at >= at) || at.is_zero() {
                        return Err(self.err(
                            event.at.span(),
                            "at: `repeat` must come after every other event".to_owned(),
                        ));
                    }
                    repeat_at = Some(at);
                }
            }
        }
        timeline.sort_by_key(|e| e.at);
        Ok(Scenario {
            nodes,
            resources,
            timeline,
            repeat_at,
        })
    }

    fn check_nodes(&self, raw: &[Spanned<RawNode>]) -> Result<Vec<NodeSpec>, ScenarioError> {
        if raw.is_empty() {
            return Err(self.err(0..0, "node: a scenario needs at least one [[node]]".into()));
        }
        let mut nodes: Vec<NodeSpec> = Vec::new();
        for spanned in raw {
            let node = spanned.get_ref();
            if node.name.is_empty() || node.name.contains(|c: char| c.is_whitespace() || c == ':')
            {
                return Err(self.err(
                    spanned.span(),
                    format!("name: '{}' is not a valid node name", node.name),
                ));
            }
            if node.node_id > 31 {
                return Err(self.err(
                    spanned.span(),
                    format!("node-id: {} out of range [0..31]", node.node_id),
                ));
            }
            if nodes
                .iter()
                .any(|n| n.name == node.name || n.node_id == node.node_id)
            {
                return Err(self.err(
                    spanned.span(),
                    format!("name/node-id: node '{}' is not unique", node.name),
                ));
            }
            let address = match &node.address {
                Some(a) if a.parse::<std::net::Ipv4Addr>().is_ok() => a.clone(),
                Some(a) => {
                    return Err(self.err(
                        spanned.span(),
                        format!("address: '{a}' is not an IPv4 address"),
                    ))
                }
                None => format!("10.0.0.{}", node.node_id + 1),
            };
            nodes.push(NodeSpec {
                name: node.name.clone(),
                node_id: node.node_id,
                address,
            });
        }
        Ok(nodes)
    }

    fn check_resource(
        &self,
        spanned: &Spanned<RawResource>,
        names: &BTreeSet<&str>,
        minors: &mut BTreeSet<u32>,
        backing_index: &mut usize,
    ) -> Result<ResourceSpec, ScenarioError> {
        let raw = spanned.get_ref();
        if raw.name.is_empty() || raw.name.contains(|c: char| c.is_whitespace() || c == ':') {
            return Err(self.err(
                spanned.span(),
                format!("name: '{}' is not a valid resource name", raw.name),
            ));
        }
        let nodes = match &raw.nodes {
            None => names.iter().map(|n| (*n).to_owned()).collect(),
            Some(list) => {
                let mut out: Vec<String> = Vec::new();
                for n in list {
                    if !names.contains(n.get_ref().as_str()) {
                        return Err(
                            self.err(n.span(), format!("nodes: unknown node '{}'", n.get_ref()))
                        );
                    }
                    out.push(n.get_ref().clone());
                }
                out
            }
        };
        if let Some(p) = &raw.primary {
            if !nodes.contains(p.get_ref()) {
                return Err(self.err(
                    p.span(),
                    format!("primary: '{}' does not have this resource", p.get_ref()),
                ));
            }
        }
        let mut options = PeerDeviceOptions::default();
        for (key, value) in &raw.options {
            if !SPECS.iter().any(|s| s.name == key.get_ref()) {
                return Err(self.err(
                    key.span(),
                    format!("options: unknown option '{}'", key.get_ref()),
                ));
            }
            let text = match value.get_ref() {
                Quantity::Int(v) => v.to_string(),
                Quantity::Text(t) => t.clone(),
            };
            options
                .set(key.get_ref(), &text)
                .map_err(|e| self.err(value.span(), format!("options: {e}")))?;
        }
        let mut volumes: Vec<VolumeSpec> = Vec::new();
        for vol in &raw.volumes {
            let v = vol.get_ref();
            if volumes.iter().any(|x| x.volume == v.volume) {
                return Err(self.err(
                    vol.span(),
                    format!("volume: volume {} defined twice", v.volume),
                ));
            }
            if v.minor > 1_048_575 || !minors.insert(v.minor) {
                return Err(self.err(
                    vol.span(),
                    format!("minor: {} is out of range or used twice", v.minor),
                ));
            }
            let size_kib = self.kib("size", &v.size)?;
            if size_kib == 0 {
                return Err(self.err(v.size.span(), "size: must not be 0".into()));
            }
            let device = v.backing_device.clone().unwrap_or_else(|| {
                let name = format!("dm-{backing_index}");
                *backing_index += 1;
                name
            });
            if device.is_empty() || device.contains('/') {
                return Err(self.err(
                    vol.span(),
                    format!("backing-device: '{device}' is not a block device name"),
                ));
            }
            volumes.push(VolumeSpec {
                volume: v.volume,
                minor: v.minor,
                size_kib,
                backing_disk: v
                    .backing_disk
                    .clone()
                    .unwrap_or_else(|| format!("/dev/vg0/{}_{}", raw.name, v.volume)),
                backing_device: device,
            });
        }
        if volumes.is_empty() {
            return Err(self.err(
                spanned.span(),
                format!("volume: resource '{}' needs a [[resource.volume]]", raw.name),
            ));
        }
        Ok(ResourceSpec {
            name: raw.name.clone(),
            port: raw.port.unwrap_or(7000),
            nodes,
            primary: raw.primary.as_ref().map(|p| p.get_ref().clone()),
            write_rate: match &raw.write_rate {
                Some(q) => self.kib("write-rate", q)?,
                None => 0,
            },
            resync_capacity: match &raw.resync_capacity {
                Some(q) => self.kib("resync-capacity", q)?.max(1),
                None => 100 * 1024,
            },
            options,
            volumes,
        })
    }

    /// `Ok(None)` is the `repeat` event.
    fn check_event(
        &self,
        event: &RawEvent,
        span: std::ops::Range<usize>,
        names: &BTreeSet<&str>,
        resources: &[ResourceSpec],
    ) -> Result<Option<Action>, ScenarioError> {
        let action = event.action.get_ref().as_str();
        let allowed: &[&str] = match action {
            "disconnect" => &["resource", "nodes"],
            "reconnect" => &["resource", "nodes", "out-of-sync", "source"],
            "promote" | "demote" => &["resource", "node"],
            "destroy" => &["resource", "node"],
            "fault" => &["node", "fault", "count", "duration"],
            "repeat" => &[],
            other => {
                return Err(self.err(
                    event.action.span(),
                    format!(
                        "action: unknown action '{other}' (disconnect, reconnect, promote, \
                         demote, destroy, fault, repeat)"
                    ),
                ))
            }
        };
        let present = [
            ("resource", event.resource.is_some()),
            ("nodes", event.nodes.is_some()),
            ("node", event.node.is_some()),
            ("out-of-sync", event.out_of_sync.is_some()),
            ("source", event.source.is_some()),
            ("fault", event.fault.is_some()),
            ("count", event.count.is_some()),
            ("duration", event.duration.is_some()),
        ];
        for (key, is_present) in present {
            if is_present && !allowed.contains(&key) {
                return Err(self.err(
                    span.clone(),
                    format!("{key}: not allowed for action '{action}'"),
                ));
            }
        }
        let resource = match &event.resource {
            Some(r) if resources.iter().any(|x| &x.name == r.get_ref()) => {
                Some(r.get_ref().clone())
            }
            Some(r) => {
                return Err(self.err(
                    r.span(),
                    format!("resource: unknown resource '{}'", r.get_ref()),
                ))
            }
            None => None,
        };
        let node = match &event.node {
            Some(n) if names.contains(n.get_ref().as_str()) => Some(n.get_ref().clone()),
            Some(n) => {
                return Err(self.err(n.span(), format!("node: unknown node '{}'", n.get_ref())))
            }
            None => None,
        };
        let need_resource = || {
            resource
                .clone()
                .ok_or_else(|| self.err(span.clone(), format!("resource: '{action}' needs it")))
        };
        let need_node = || {
            node.clone()
                .ok_or_else(|| self.err(span.clone(), format!("node: '{action}' needs it")))
        };
        let pair = || -> Result<[String; 2], ScenarioError> {
            let Some(list) = &event.nodes else {
                return Err(self.err(
                    span.clone(),
                    format!("nodes: '{action}' needs two node names"),
                ));
            };
            match list.get_ref().as_slice() {
                [a, b] if a != b && names.contains(a.as_str()) && names.contains(b.as_str()) => {
                    Ok([a.clone(), b.clone()])
                }
                _ => Err(self.err(
                    list.span(),
                    "nodes: must be two different known node names".into(),
                )),
            }
        };
        Ok(Some(match action {
            "disconnect" => Action::Disconnect {
                resource,
                nodes: pair()?,
            },
            "reconnect" => {
                let nodes = pair()?;
                let source = match &event.source {
                    Some(s) if nodes.contains(s.get_ref()) => Some(s.get_ref().clone()),
                    Some(s) => {
                        return Err(self.err(
                            s.span(),
                            format!("source: '{}' is not one of `nodes`", s.get_ref()),
                        ))
                    }
                    None => None,
                };
                let out_of_sync = match &event.out_of_sync {
                    Some(q) => Some(self.kib("out-of-sync", q)?),
                    None => None,
                };
                Action::Reconnect {
                    resource,
                    nodes,
                    out_of_sync,
                    source,
                }
            }
            "promote" => Action::Promote {
                node: need_node()?,
                resource: need_resource()?,
            },
            "demote" => Action::Demote {
                node: need_node()?,
                resource: need_resource()?,
            },
            "destroy" => Action::Destroy {
                resource: need_resource()?,
                node,
            },
            "fault" => Action::Fault {
                node: need_node()?,
                fault: self.check_fault(event, span.clone())?,
            },
            _ => return Ok(None),
        }))
    }

    fn check_fault(
        &self,
        event: &RawEvent,
        span: std::ops::Range<usize>,
    ) -> Result<Fault, ScenarioError> {
        let Some(kind) = &event.fault else {
            return Err(self.err(span, "fault: 'fault' needs a fault kind".into()));
        };
        let duration = match &event.duration {
            Some(d) => Some(
                parse_duration(d.get_ref())
                    .map_err(|m| self.err(d.span(), format!("duration: {m}")))?,
            ),
            None => None,
        };
        let misplaced = |key: &str| self.err(span.clone(), format!("{key}: not allowed here"));
        let fault = match kind.get_ref().as_str() {
            "overrun" => Fault::Overrun,
            "module-unloaded" => Fault::ModuleUnloaded,
            "garbage" => Fault::Garbage,
            "hang" => Fault::Hang { duration },
            "command-fail" => Fault::CommandFail {
                count: event.count.unwrap_or(1),
            },
            "module-missing" => Fault::ModuleMissing {
                duration: duration.ok_or_else(|| {
                    self.err(span.clone(), "duration: 'module-missing' needs it".into())
                })?,
            },
            other => {
                return Err(self.err(
                    kind.span(),
                    format!(
                        "fault: unknown fault '{other}' (overrun, module-unloaded, hang, \
                         garbage, command-fail, module-missing)"
                    ),
                ))
            }
        };
        if event.count.is_some() && !matches!(fault, Fault::CommandFail { .. }) {
            return Err(misplaced("count"));
        }
        if event.duration.is_some()
            && !matches!(fault, Fault::Hang { .. } | Fault::ModuleMissing { .. })
        {
            return Err(misplaced("duration"));
        }
        Ok(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[[node]]
name = "alpha"
node-id = 0

[[node]]
name = "bravo"
node-id = 1

[[resource]]
name = "r0"
primary = "alpha"
write-rate = "10M"
options = { c-max-rate = "50M" }
[[resource.volume]]
volume = 0
minor = 1000
size = "1G"
"#;

    fn err_of(extra: &str) -> (usize, String) {
        let text = format!("{BASE}{extra}");
        match parse("test.toml", &text) {
            Err(ScenarioError::Invalid { line, message, .. }) => (line, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn builtins_parse() {
        for (name, _) in BUILTIN {
            let scenario = load(name).unwrap();
            assert!(scenario.nodes.len() >= 3, "{name}");
            assert!(!scenario.timeline.is_empty(), "{name}");
        }
        assert!(load("demo").unwrap().repeat_at.is_some());
    }

    #[test]
    fn base_scenario_values() {
        let s = parse("t", BASE).unwrap();
        assert_eq!(s.nodes[1].address, "10.0.0.2");
        let r = &s.resources[0];
        assert_eq!(r.write_rate, 10 * 1024);
        assert_eq!(r.options.c_max_rate, 50 * 1024);
        assert_eq!(r.volumes[0].size_kib, 1 << 20);
        assert_eq!(r.volumes[0].backing_device, "dm-0");
        assert_eq!(r.nodes, vec!["alpha", "bravo"]);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let (line, message) = err_of("\n[[event]]\nat = \"1s\"\naction = \"demote\"\nbogus = 1\n");
        assert_eq!(line, 23);
        assert!(message.contains("bogus"), "{message}");
    }

    #[test]
    fn unknown_key_in_node() {
        let text = "[[node]]\nname = \"a\"\nnode-id = 0\ncolour = \"red\"\n";
        let err = parse("x.toml", text).unwrap_err().to_string();
        assert!(err.starts_with("x.toml:4: "), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn bad_values_name_line_and_key() {
        let (line, message) = err_of("\n[[event]]\nat = \"soon\"\naction = \"demote\"\n");
        assert_eq!(line, 21);
        assert!(message.starts_with("at:"), "{message}");

        let (line, message) =
            err_of("\n[[event]]\nat = \"1s\"\naction = \"promote\"\nnode = \"zulu\"\nresource = \"r0\"\n");
        assert_eq!(line, 23);
        assert!(message.contains("unknown node 'zulu'"), "{message}");

        let (_, message) = err_of("\n[[event]]\nat = \"1s\"\naction = \"explode\"\n");
        assert!(message.contains("unknown action 'explode'"), "{message}");

        let (_, message) =
            err_of("\n[[event]]\nat = \"1s\"\naction = \"disconnect\"\nnodes = [\"alpha\"]\n");
        assert!(message.starts_with("nodes:"), "{message}");

        let (_, message) = err_of(
            "\n[[event]]\nat = \"1s\"\naction = \"fault\"\nnode = \"alpha\"\nfault = \"hang\"\ncount = 2\n",
        );
        assert!(message.starts_with("count:"), "{message}");
    }

    #[test]
    fn bad_option_value_names_line() {
        let text = BASE.replace("\"50M\"", "\"5G\"");
        let err = parse("t.toml", &text).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:14: options: c-max-rate"), "{err}");
    }

    #[test]
    fn bad_size_names_line() {
        let text = BASE.replace("\"1G\"", "\"1Q\"");
        let err = parse("t.toml", &text).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:18: size:"), "{err}");
    }

    #[test]
    fn repeat_must_be_last() {
        let (_, message) = err_of(
            "\n[[event]]\nat = \"5s\"\naction = \"repeat\"\n\n[[event]]\nat = \"6s\"\naction = \"demote\"\nnode = \"alpha\"\nresource = \"r0\"\n",
        );
        assert!(message.contains("repeat"), "{message}");
    }

    #[test]
    fn timeline_is_sorted_and_faults_parse() {
        let s = parse(
            "t",
            &format!(
                "{BASE}\n[[event]]\nat = \"2s\"\naction = \"fault\"\nnode = \"bravo\"\nfault = \"command-fail\"\ncount = 3\n\n[[event]]\nat = \"500ms\"\naction = \"fault\"\nnode = \"alpha\"\nfault = \"module-missing\"\nduration = \"1m\"\n"
            ),
        )
        .unwrap();
        assert_eq!(s.timeline[0].at, Duration::from_millis(500));
        assert_eq!(
            s.timeline[0].action,
            Action::Fault {
                node: "alpha".into(),
                fault: Fault::ModuleMissing {
                    duration: Duration::from_secs(60)
                }
            }
        );
        assert_eq!(
            s.timeline[1].action,
            Action::Fault {
                node: "bravo".into(),
                fault: Fault::CommandFail { count: 3 }
            }
        );
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_kib("2M").unwrap(), 2048);
        assert_eq!(parse_kib("7").unwrap(), 7);
        assert!(parse_kib("1.5G").is_err());
        assert!(parse_kib("99999999999999T").is_err());
    }
}
