//! The view-model of `drbd-agent top`: built from `/v1/status` documents,
//! pure (no terminal, no HTTP). Recent events are derived here by diffing
//! each document with the one before (no addition to the API): state
//! changes of resources, devices, connections and peer devices, and helper
//! calls (a helper's `calls` counter that went up).

use std::collections::{BTreeMap, VecDeque};

use serde_json::Value;

/// Events kept for the log.
pub const MAX_EVENTS: usize = 50;
/// Latency samples kept per throttled peer device (one per refresh).
pub const MAX_SAMPLES: usize = 60;

/// One peer device (or a device with no peer) as a row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    pub resource: String,
    pub role: String,
    pub volume: String,
    pub disk: String,
    /// The peer's name; `-` for a device without connections.
    pub peer: String,
    pub peer_node_id: Option<u64>,
    pub connection: String,
    pub peer_role: String,
    pub replication: String,
    pub peer_disk: String,
    pub resync: Option<Resync>,
}

impl Row {
    /// `resource/peer-node-id/volume`: the throttle's key of this row.
    pub fn throttle_key(&self) -> Option<String> {
        self.peer_node_id
            .map(|id| format!("{}/{id}/{}", self.resource, self.volume))
    }
}

/// A running resync's progress.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resync {
    /// Percent done.
    pub done: f64,
    /// Over the last interval, MiB/s.
    pub rate_mib_s: Option<f64>,
    pub eta_s: Option<u64>,
    pub out_of_sync_kib: Option<u64>,
}

/// One throttled peer device.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ThrottlePeer {
    /// `resource/peer-node-id/volume`.
    pub key: String,
    pub resource: String,
    /// The peer's name (from the connection), else its node id.
    pub peer: String,
    pub volume: String,
    /// The c-max-rate the agent set, KiB/s.
    pub setpoint_kib: Option<u64>,
    pub floor: String,
    pub ceiling: String,
    pub state: String,
    pub latency_ms: Option<f64>,
    pub target_ms: Option<f64>,
    /// Where the latency signal comes from (`local`, `pressure`, ...).
    pub signal: String,
    pub model: String,
}

/// The throttle as a whole.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Throttle {
    pub enabled: bool,
    pub mode: String,
    pub peers: Vec<ThrottlePeer>,
    pub last_error: Option<String>,
    pub pressure: String,
}

/// One status document, flattened for display.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct View {
    pub node: String,
    pub version: String,
    pub drbd_reachable: bool,
    pub rows: Vec<Row>,
    pub throttle: Throttle,
    pub linstor: String,
}

/// A line of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `HH:MM:SS`, local time of the refresh that saw it.
    pub time: String,
    /// `resource[/peer[/volume]]`.
    pub what: String,
    pub text: String,
}

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    }
}

fn entries(value: &Value) -> Vec<(&String, &Value)> {
    value
        .as_object()
        .map(|map| map.iter().collect())
        .unwrap_or_default()
}

fn resync(peer_device: &Value) -> Option<Resync> {
    let done = peer_device.get("done").and_then(Value::as_f64)?;
    let stats = peer_device.get("stats");
    let stat = |key: &str| stats.and_then(|s| s.get(key));
    Some(Resync {
        done,
        rate_mib_s: stat("dbdt1").and_then(Value::as_f64),
        eta_s: stat("eta").and_then(Value::as_u64),
        out_of_sync_kib: stat("out_of_sync").and_then(Value::as_u64),
    })
}

fn rows(document: &Value) -> Vec<Row> {
    let mut rows = Vec::new();
    for (name, resource) in entries(&document["resources"]) {
        let role = text(resource, "role");
        let devices = entries(&resource["devices"]);
        let connections = entries(&resource["connections"]);
        for (volume, device) in &devices {
            let base = Row {
                resource: name.clone(),
                role: role.clone(),
                volume: (*volume).clone(),
                disk: text(device, "disk"),
                ..Row::default()
            };
            let mut any = false;
            for (peer, connection) in &connections {
                let Some(peer_device) = connection["peer_devices"].get(volume.as_str()) else {
                    continue;
                };
                any = true;
                rows.push(Row {
                    peer: (*peer).clone(),
                    peer_node_id: connection["peer_node_id"].as_u64(),
                    connection: text(connection, "connection"),
                    peer_role: text(connection, "peer_role"),
                    replication: text(peer_device, "replication"),
                    peer_disk: text(peer_device, "peer_disk"),
                    resync: resync(peer_device),
                    ..base.clone()
                });
            }
            if !any {
                rows.push(Row {
                    peer: "-".to_owned(),
                    connection: "-".to_owned(),
                    peer_role: "-".to_owned(),
                    replication: "-".to_owned(),
                    peer_disk: "-".to_owned(),
                    ..base
                });
            }
        }
    }
    rows
}

/// Peer names by (resource, peer node id).
fn peer_names(document: &Value) -> BTreeMap<(String, u64), String> {
    let mut names = BTreeMap::new();
    for (name, resource) in entries(&document["resources"]) {
        for (peer, connection) in entries(&resource["connections"]) {
            if let Some(id) = connection["peer_node_id"].as_u64() {
                names.insert((name.clone(), id), peer.clone());
            }
        }
    }
    names
}

fn throttle(document: &Value) -> Throttle {
    let t = &document["throttle"];
    let names = peer_names(document);
    let peers = entries(&t["peers"])
        .into_iter()
        .map(|(key, peer)| {
            let resource = text(peer, "resource");
            let id = peer["peer_node_id"].as_u64();
            let decision = &peer["decision"];
            ThrottlePeer {
                key: key.clone(),
                peer: id
                    .and_then(|id| names.get(&(resource.clone(), id)).cloned())
                    .unwrap_or_else(|| id.map_or_else(|| "-".to_owned(), |id| format!("#{id}"))),
                resource,
                volume: text(peer, "volume"),
                setpoint_kib: peer["rate_set_kib"].as_u64(),
                floor: text(decision, "floor"),
                ceiling: text(decision, "ceiling"),
                state: text(decision, "state"),
                latency_ms: decision["latency_ms"].as_f64(),
                target_ms: peer["latency_target_ms"].as_f64(),
                signal: text(&peer["signal"], "source"),
                model: if peer["model"]["in_use"] == true {
                    "model".to_owned()
                } else {
                    format!("feedback:{}", text(&peer["model"], "fallback"))
                },
            }
        })
        .collect();
    let pressure = match &t["pressure"] {
        Value::Null => "none".to_owned(),
        Value::Object(p) => p
            .iter()
            .filter(|(_, v)| v.is_string() || v.is_number() || v.is_boolean())
            .take(3)
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    Throttle {
        enabled: t["enabled"] == true,
        mode: text(t, "mode"),
        peers,
        last_error: t["last_error"].as_str().map(str::to_owned),
        pressure,
    }
}

fn linstor(document: &Value) -> String {
    let l = &document["linstor"];
    if l.is_null() {
        return "-".to_owned();
    }
    if l["enabled"] != true {
        return "disabled".to_owned();
    }
    let controller = l["controller"].as_str().unwrap_or("-");
    if l["connected"] == true {
        format!("connected {controller}")
    } else {
        match l["last_error"].as_str() {
            Some(error) => format!("not connected: {error}"),
            None => "not connected".to_owned(),
        }
    }
}

impl View {
    /// The view of one `/v1/status` document.
    pub fn from_status(document: &Value) -> View {
        let agent = &document["agent"];
        View {
            node: text(agent, "node_name"),
            version: text(agent, "version"),
            drbd_reachable: agent["drbd_reachable"] == true,
            rows: rows(document),
            throttle: throttle(document),
            linstor: linstor(document),
        }
    }
}

/// Every helper's call count in a document, by (object, helper).
fn helper_calls(document: &Value) -> BTreeMap<(String, String), u64> {
    fn add(out: &mut BTreeMap<(String, String), u64>, at: String, object: &Value) {
        for (helper, h) in entries(&object["helpers"]) {
            if let Some(calls) = h["calls"].as_u64() {
                out.insert((at.clone(), helper.clone()), calls);
            }
        }
    }
    let mut out = BTreeMap::new();
    for (name, resource) in entries(&document["resources"]) {
        add(&mut out, name.clone(), resource);
        for (volume, device) in entries(&resource["devices"]) {
            add(&mut out, format!("{name}/{volume}"), device);
        }
        for (peer, connection) in entries(&resource["connections"]) {
            add(&mut out, format!("{name}/{peer}"), connection);
            for (volume, pd) in entries(&connection["peer_devices"]) {
                add(&mut out, format!("{name}/{peer}/{volume}"), pd);
            }
        }
    }
    out
}

/// The state changes between two views, and the helper calls between two
/// documents.
pub fn diff(
    before: &View,
    after: &View,
    calls_before: &BTreeMap<(String, String), u64>,
    calls_after: &BTreeMap<(String, String), u64>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let key = |r: &Row| (r.resource.clone(), r.peer.clone(), r.volume.clone());
    let old: BTreeMap<_, _> = before.rows.iter().map(|r| (key(r), r)).collect();
    let mut roles_seen = BTreeMap::new();
    let mut disks_seen = BTreeMap::new();
    for row in &after.rows {
        let what = if row.peer == "-" {
            format!("{}/{}", row.resource, row.volume)
        } else {
            format!("{}/{}/{}", row.resource, row.peer, row.volume)
        };
        let Some(was) = old.get(&key(row)) else {
            if !before.rows.iter().any(|r| r.resource == row.resource) {
                roles_seen.insert(row.resource.clone(), ());
                out.push((row.resource.clone(), "appeared".to_owned()));
            }
            continue;
        };
        if was.role != row.role && roles_seen.insert(row.resource.clone(), ()).is_none() {
            out.push((
                row.resource.clone(),
                format!("role {} → {}", was.role, row.role),
            ));
        }
        // The local disk is the same on every peer row: one event.
        let device = format!("{}/{}", row.resource, row.volume);
        if was.disk != row.disk && disks_seen.insert(device.clone(), ()).is_none() {
            out.push((device, format!("disk {} → {}", was.disk, row.disk)));
        }
        for (label, a, b) in [
            ("connection", &was.connection, &row.connection),
            ("peer role", &was.peer_role, &row.peer_role),
            ("replication", &was.replication, &row.replication),
            ("peer disk", &was.peer_disk, &row.peer_disk),
        ] {
            if a != b {
                out.push((what.clone(), format!("{label} {a} → {b}")));
            }
        }
    }
    for row in &before.rows {
        if !after.rows.iter().any(|r| r.resource == row.resource)
            && roles_seen.insert(row.resource.clone(), ()).is_none()
        {
            out.push((row.resource.clone(), "gone".to_owned()));
        }
    }
    for ((at, helper), &calls) in calls_after {
        let was = calls_before.get(&(at.clone(), helper.clone())).copied();
        if was.is_some_and(|was| calls > was) || (was.is_none() && !calls_before.is_empty()) {
            out.push((at.clone(), format!("helper {helper}")));
        }
    }
    out
}

/// Whether the agent answered the last look.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// No answer yet.
    Connecting,
    Up,
    /// The last look failed (why); the view shows the last good document.
    Lost(String),
}

/// What `top` shows: the last view, the event log and the latency history.
#[derive(Debug, Clone)]
pub struct Model {
    pub url: String,
    pub view: Option<View>,
    pub link: Link,
    /// Time of the last good document, `HH:MM:SS`.
    pub updated: Option<String>,
    pub events: VecDeque<Event>,
    /// Latency samples (ms) per throttle key, oldest first.
    pub latency: BTreeMap<String, VecDeque<f64>>,
    calls: BTreeMap<(String, String), u64>,
}

impl Model {
    pub fn new(url: &str) -> Model {
        Model {
            url: url.to_owned(),
            view: None,
            link: Link::Connecting,
            updated: None,
            events: VecDeque::new(),
            latency: BTreeMap::new(),
            calls: BTreeMap::new(),
        }
    }

    fn push_event(&mut self, time: &str, what: String, text: String) {
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(Event {
            time: time.to_owned(),
            what,
            text,
        });
    }

    /// A new document seen at `time` (`HH:MM:SS`).
    pub fn update(&mut self, document: &Value, time: &str) {
        let view = View::from_status(document);
        let calls = helper_calls(document);
        if let Link::Lost(_) = self.link {
            self.push_event(time, "agent".to_owned(), "reconnected".to_owned());
        }
        if let Some(before) = &self.view {
            for (what, text) in diff(before, &view, &self.calls, &calls) {
                self.push_event(time, what, text);
            }
        }
        for peer in &view.throttle.peers {
            if let Some(latency) = peer.latency_ms {
                let samples = self.latency.entry(peer.key.clone()).or_default();
                if samples.len() == MAX_SAMPLES {
                    samples.pop_front();
                }
                samples.push_back(latency);
            }
        }
        self.calls = calls;
        self.view = Some(view);
        self.link = Link::Up;
        self.updated = Some(time.to_owned());
    }

    /// The agent did not answer.
    pub fn lost(&mut self, why: String, time: &str) {
        if !matches!(self.link, Link::Lost(_)) {
            self.push_event(time, "agent".to_owned(), format!("lost: {why}"));
        }
        self.link = Link::Lost(why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        serde_json::from_str(include_str!("../../tests/data/top-status.json")).expect("json")
    }

    #[test]
    fn the_view_has_rows_and_the_throttled_peer() {
        let view = View::from_status(&sample());
        assert_eq!(view.node, "alpha");
        let db = view
            .rows
            .iter()
            .find(|r| r.resource == "db")
            .expect("db row");
        assert_eq!(db.replication, "SyncTarget");
        assert_eq!(db.peer, "bravo");
        assert_eq!(db.throttle_key().as_deref(), Some("db/1/0"));
        let resync = db.resync.as_ref().expect("resync");
        assert!((resync.done - 44.63).abs() < 1e-9);
        assert_eq!(resync.eta_s, Some(108));
        assert!(view.throttle.enabled);
        let peer = &view.throttle.peers[0];
        assert_eq!(peer.key, "db/1/0");
        assert_eq!(peer.peer, "bravo");
        assert_eq!(peer.setpoint_kib, Some(10906));
        assert_eq!(peer.ceiling, "100MiB/s");
        assert_eq!(peer.target_ms, Some(5.0));
        assert_eq!(view.linstor, "disabled");
    }

    #[test]
    fn state_changes_and_helper_calls_become_events() {
        let mut model = Model::new("http://x");
        let mut doc = sample();
        model.update(&doc, "10:00:00");
        assert!(model.events.is_empty());
        doc["resources"]["db"]["connections"]["bravo"]["peer_devices"]["0"]["replication"] =
            "Established".into();
        doc["resources"]["db"]["connections"]["bravo"]["helpers"]["disconnected"]["calls"] =
            2.into();
        doc["resources"]["db"]["devices"]["0"]["disk"] = "UpToDate".into();
        model.update(&doc, "10:00:01");
        let texts: Vec<String> = model
            .events
            .iter()
            .map(|e| format!("{} {}", e.what, e.text))
            .collect();
        assert!(
            texts.contains(&"db/bravo/0 replication SyncTarget → Established".to_owned()),
            "{texts:?}"
        );
        assert!(
            texts.contains(&"db/bravo helper disconnected".to_owned()),
            "{texts:?}"
        );
        assert!(
            texts.contains(&"db/0 disk Inconsistent → UpToDate".to_owned()),
            "{texts:?}"
        );
        assert_eq!(model.latency["db/1/0"].len(), 2);
    }

    #[test]
    fn a_lost_agent_is_one_event_and_its_return_another() {
        let mut model = Model::new("http://x");
        model.update(&sample(), "10:00:00");
        model.lost("refused".into(), "10:00:01");
        model.lost("refused".into(), "10:00:02");
        assert_eq!(model.link, Link::Lost("refused".into()));
        model.update(&sample(), "10:00:03");
        assert_eq!(model.link, Link::Up);
        let texts: Vec<&str> = model.events.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["lost: refused", "reconnected"]);
    }

    #[test]
    fn the_event_log_is_bounded() {
        let mut model = Model::new("http://x");
        for i in 0..(MAX_EVENTS + 10) {
            model.lost(format!("{i}"), "t");
            model.update(&sample(), "t");
        }
        assert_eq!(model.events.len(), MAX_EVENTS);
    }
}
