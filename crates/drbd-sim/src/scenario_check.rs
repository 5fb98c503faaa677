//! Checking a scenario: the raw TOML shapes and the rules that turn them
//! into a [`Scenario`], with file:line errors.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use toml::Spanned;

use super::options::{PeerDeviceOptions, SPECS};
use super::plant::DiskSpec;
use super::scenario::{
    parse_duration, parse_kib, Action, Fault, NodeSpec, ResourceSpec, Scenario, ScenarioError,
    TimedEvent, VolumeSpec,
};
use super::scenario_plant::{self, PlantConfig};

// ---- raw TOML shapes ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    #[serde(default)]
    description: Option<String>,
    #[serde(default, rename = "node")]
    nodes: Vec<Spanned<RawNode>>,
    #[serde(default, rename = "resource")]
    resources: Vec<Spanned<RawResource>>,
    #[serde(default, rename = "event")]
    events: Vec<Spanned<RawEvent>>,
    #[serde(default, rename = "link")]
    links: Vec<Spanned<RawLink>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    nodes: Spanned<Vec<String>>,
    bandwidth: Option<toml::Value>,
    rtt: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNode {
    name: String,
    node_id: u32,
    address: Option<String>,
    disk: Option<Spanned<toml::Table>>,
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
    load: Option<Spanned<toml::Table>>,
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

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

pub(super) struct Checker<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
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

    pub(super) fn check(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        let _ = raw.description;
        let nodes = self.check_nodes(&raw.nodes)?;
        let names: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        let mut resources: Vec<ResourceSpec> = Vec::new();
        let mut minors = BTreeSet::new();
        let mut backing_index = 0usize;
        let mut resource_names: BTreeSet<String> = BTreeSet::new();
        for raw_res in &raw.resources {
            let res = self.check_resource(raw_res, &names, &mut minors, &mut backing_index)?;
            if !resource_names.insert(res.name.clone()) {
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
            match self.check_event(event, span, &names, &resource_names)? {
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
        let plant = self.check_plant(&raw, &names)?;
        let scenario = Scenario {
            nodes,
            resources,
            timeline,
            repeat_at,
            plant,
        };
        if scenario.plant.is_some() {
            super::plant_bridge::check(&scenario)
                .map_err(|e| self.err(0..0, format!("plant: {e}")))?;
        }
        Ok(scenario)
    }

    /// The plant keys (`disk`, `[[link]]`, `load`); None without any.
    fn check_plant(
        &self,
        raw: &RawScenario,
        names: &BTreeSet<&str>,
    ) -> Result<Option<PlantConfig>, ScenarioError> {
        let mut config = PlantConfig::default();
        let mut any = false;
        for node in &raw.nodes {
            if let Some(table) = &node.get_ref().disk {
                any = true;
                let spec = scenario_plant::disk(table.get_ref(), DiskSpec::default())
                    .map_err(|e| self.err(table.span(), e.to_string()))?;
                config.disks.insert(node.get_ref().name.clone(), spec);
            }
        }
        for link in &raw.links {
            any = true;
            let l = link.get_ref();
            let (a, b) = match l.nodes.get_ref().as_slice() {
                [a, b] if a != b && names.contains(a.as_str()) && names.contains(b.as_str()) => {
                    if a < b {
                        (a.clone(), b.clone())
                    } else {
                        (b.clone(), a.clone())
                    }
                }
                _ => {
                    return Err(self.err(
                        l.nodes.span(),
                        "nodes: a link needs two different known node names".into(),
                    ))
                }
            };
            if config.links.iter().any(|(x, y, _)| *x == a && *y == b) {
                return Err(self.err(
                    link.span(),
                    format!("link: '{a}' and '{b}' are linked twice"),
                ));
            }
            let spec = scenario_plant::link(l.bandwidth.as_ref(), l.rtt.as_ref())
                .map_err(|m| self.err(link.span(), format!("link: {m}")))?;
            config.links.push((a, b, spec));
        }
        let base_dir = std::path::Path::new(self.file)
            .parent()
            .unwrap_or(std::path::Path::new(""));
        for res in &raw.resources {
            if let Some(table) = &res.get_ref().load {
                any = true;
                let profile = scenario_plant::load(table.get_ref(), base_dir)
                    .map_err(|e| self.err(table.span(), e.to_string()))?;
                config.loads.insert(res.get_ref().name.clone(), profile);
            }
        }
        Ok(any.then_some(config))
    }

    fn check_nodes(&self, raw: &[Spanned<RawNode>]) -> Result<Vec<NodeSpec>, ScenarioError> {
        if raw.is_empty() {
            return Err(self.err(0..0, "node: a scenario needs at least one [[node]]".into()));
        }
        let mut nodes: Vec<NodeSpec> = Vec::new();
        for spanned in raw {
            let node = spanned.get_ref();
            if node.name.is_empty() || node.name.contains(|c: char| c.is_whitespace() || c == ':') {
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
                format!(
                    "volume: resource '{}' needs a [[resource.volume]]",
                    raw.name
                ),
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
        resources: &BTreeSet<String>,
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
            Some(r) if resources.contains(r.get_ref()) => Some(r.get_ref().clone()),
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
