//! `drbdsetup show --json` and `drbdsetup status --json` for one node.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::cluster::{Cluster, CommandError};

/// Pretty JSON with drbdsetup's four-space indent.
pub fn pretty(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing a Value into a Vec cannot fail.
    if value.serialize(&mut serializer).is_err() {
        return value.to_string();
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Names of the resources `target` (a name or `all`) selects on `node`.
fn selected(cluster: &Cluster, node: &str, target: &str) -> Result<Vec<String>, CommandError> {
    cluster.check_module(node)?;
    let names: Vec<String> = cluster
        .resources
        .values()
        .filter(|t| t.present.contains(node))
        .map(|t| t.spec.name.clone())
        .filter(|n| target == "all" || n == target)
        .collect();
    if names.is_empty() && target != "all" {
        return Err(CommandError::UnknownResource(target.to_owned()));
    }
    Ok(names)
}

/// `drbdsetup show --json RES|all`.
pub fn show_json(cluster: &Cluster, node: &str, target: &str) -> Result<Value, CommandError> {
    let names = selected(cluster, node, target)?;
    let me = cluster
        .scenario
        .node(node)
        .ok_or_else(|| CommandError::UnknownNode(node.to_owned()))?;
    let views = cluster.views(node);
    let mut list = Vec::new();
    for name in names {
        let Some(truth) = cluster.resources.get(&name) else {
            continue;
        };
        let spec = &truth.spec;
        let volumes: Vec<Value> = spec
            .volumes
            .iter()
            .map(|v| {
                json!({
                    "volume_nr": v.volume,
                    "device_minor": v.minor,
                    "backing-disk": v.backing_disk,
                    "meta-disk": "internal",
                    "disk": {}
                })
            })
            .collect();
        let mut connections = Vec::new();
        for peer in spec.nodes.iter().filter(|p| *p != node) {
            let Some(peer_spec) = cluster.scenario.node(peer) else {
                continue;
            };
            let cstate = views
                .get(&name)
                .and_then(|r| r.connections.get(peer))
                .and_then(|c| c.connection.as_ref())
                .map(|c| c.to_string())
                .unwrap_or_else(|| "StandAlone".into());
            let peer_volumes: Vec<Value> = spec
                .volumes
                .iter()
                .map(|v| {
                    let options = cluster
                        .peer_device_options(node, &name, peer_spec.node_id, v.volume)
                        .unwrap_or(spec.options);
                    let disk: Map<String, Value> = options
                        .show_pairs()
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), Value::String(v)))
                        .collect();
                    json!({ "volume_nr": v.volume, "disk": disk })
                })
                .collect();
            connections.push(json!({
                "paths": [{
                    "_this_host": format!("ipv4 {}:{}", me.address, spec.port),
                    "_remote_host": format!("ipv4 {}:{}", peer_spec.address, spec.port),
                }],
                "_cstate": cstate,
                "net": { "_name": peer },
                "volumes": peer_volumes,
                "_peer_node_id": peer_spec.node_id,
            }));
        }
        list.push(json!({
            "resource": name,
            "options": { "auto-promote": true },
            "_this_host": { "node-id": me.node_id, "volumes": volumes },
            "connections": connections,
        }));
    }
    Ok(Value::Array(list))
}

/// `drbdsetup status --json RES|all` (shape close to drbdsetup's).
pub fn status_json(cluster: &Cluster, node: &str, target: &str) -> Result<Value, CommandError> {
    let names = selected(cluster, node, target)?;
    let node_id = cluster.scenario.node_id(node).unwrap_or_default();
    let views = cluster.views(node);
    let text = |v: Option<String>| v.unwrap_or_else(|| "Unknown".into());
    let mut list = Vec::new();
    for name in names {
        let Some(r) = views.get(&name) else { continue };
        let devices: Vec<Value> = r
            .devices
            .values()
            .map(|d| {
                json!({
                    "volume": d.volume,
                    "minor": d.minor,
                    "disk-state": text(d.disk.as_ref().map(|x| x.to_string())),
                    "client": false,
                    "open": d.open.as_ref().map(|x| x.as_str() == "yes").unwrap_or(false),
                    "quorum": d.quorum.as_ref().map(|x| x.as_str() == "yes").unwrap_or(false),
                    "size": d.stats.size,
                    "read": d.stats.read,
                    "written": d.stats.written,
                    "al-writes": d.stats.al_writes,
                    "bm-writes": d.stats.bm_writes,
                    "upper-pending": 0,
                    "lower-pending": 0,
                })
            })
            .collect();
        let connections: Vec<Value> = r
            .connections
            .values()
            .map(|c| {
                let peer_devices: Vec<Value> = c
                    .peer_devices
                    .values()
                    .map(|pd| {
                        let size = r
                            .devices
                            .get(&pd.volume)
                            .and_then(|d| d.stats.size)
                            .unwrap_or(1)
                            .max(1);
                        let oos = pd.stats.out_of_sync.unwrap_or(0);
                        let mut value = json!({
                            "volume": pd.volume,
                            "replication-state": text(pd.replication.as_ref().map(|x| x.to_string())),
                            "peer-disk-state": text(pd.peer_disk.as_ref().map(|x| x.to_string())),
                            "peer-client": false,
                            "resync-suspended": "no",
                            "received": pd.stats.received,
                            "sent": pd.stats.sent,
                            "out-of-sync": oos,
                            "pending": pd.stats.pending,
                            "unacked": pd.stats.unacked,
                            "has-sync-details": pd.done.is_some(),
                            "has-online-verify-details": false,
                            "percent-in-sync": 100.0 - (oos as f64 * 100.0 / size as f64),
                        });
                        if let (Some(done), Value::Object(map)) = (pd.done, &mut value) {
                            map.insert("percent-resync-done".into(), json!(done));
                        }
                        value
                    })
                    .collect();
                json!({
                    "peer-node-id": c.peer_node_id,
                    "name": c.conn_name,
                    "connection-state": text(c.connection.as_ref().map(|x| x.to_string())),
                    "congested": false,
                    "peer-role": text(c.peer_role.as_ref().map(|x| x.to_string())),
                    "ap-in-flight": c.ap_in_flight,
                    "rs-in-flight": c.rs_in_flight,
                    "peer_devices": peer_devices,
                })
            })
            .collect();
        list.push(json!({
            "name": name,
            "node-id": node_id,
            "role": text(r.role.as_ref().map(|x| x.to_string())),
            "suspended": false,
            "suspended-user": false,
            "suspended-no-data": false,
            "suspended-fencing": false,
            "suspended-quorum": false,
            "force-io-failures": false,
            "write-ordering": "flush",
            "devices": devices,
            "connections": connections,
        }));
    }
    Ok(Value::Array(list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::OptionChange;
    use crate::scenario;

    #[test]
    fn show_has_peer_device_options_with_units() {
        let mut cluster = Cluster::new(scenario::load("resync-3node").unwrap());
        let change = OptionChange::parse(&["--c-max-rate=4M".to_owned()]).unwrap();
        cluster
            .set_peer_device_options("alpha", "r0", 1, 0, &change)
            .unwrap();
        let value = show_json(&cluster, "alpha", "r0").unwrap();
        let res = &value[0];
        assert_eq!(res["resource"], "r0");
        assert_eq!(res["_this_host"]["node-id"], 0);
        assert_eq!(res["_this_host"]["volumes"][0]["device_minor"], 1000);
        let conns = res["connections"].as_array().unwrap();
        let bravo = conns.iter().find(|c| c["_peer_node_id"] == 1).unwrap();
        assert_eq!(bravo["volumes"][0]["disk"]["c-max-rate"], "4096k");
        assert_eq!(bravo["volumes"][0]["disk"]["c-fill-target"], "100s");
        assert_eq!(bravo["volumes"][0]["disk"]["c-plan-ahead"], "20");
        assert_eq!(bravo["_cstate"], "Connected");
        let charlie = conns.iter().find(|c| c["_peer_node_id"] == 2).unwrap();
        assert_eq!(charlie["volumes"][0]["disk"]["c-max-rate"], "102400k");
        assert!(pretty(&value).contains("\n    {\n        \"resource\": \"r0\""));
    }

    #[test]
    fn unknown_resource_is_an_error() {
        let cluster = Cluster::new(scenario::load("resync-3node").unwrap());
        assert_eq!(
            show_json(&cluster, "alpha", "nope"),
            Err(CommandError::UnknownResource("nope".into()))
        );
        assert_eq!(
            show_json(&cluster, "alpha", "all")
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn status_reports_states() {
        let cluster = Cluster::new(scenario::load("resync-3node").unwrap());
        let value = status_json(&cluster, "charlie", "all").unwrap();
        assert_eq!(value[0]["role"], "Primary");
        assert_eq!(value[0]["devices"][0]["disk-state"], "UpToDate");
        assert_eq!(value[0]["connections"][0]["connection-state"], "Connected");
        assert_eq!(
            value[0]["connections"][0]["peer_devices"][0]["replication-state"],
            "Established"
        );
    }
}
