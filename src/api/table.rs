//! `/v1/status` JSON → the table `drbd-agent status` prints (resources,
//! then the resync throttle's counters and followed peer devices). Pure;
//! missing fields print as `-`, so older or newer agents still render.

use serde_json::Value;

use crate::throttle::KibPerSec;

const HEADER: [&str; 10] = [
    "RESOURCE",
    "ROLE",
    "VOLUME",
    "DISK",
    "PEER",
    "CONNECTION",
    "PEER-ROLE",
    "REPLICATION",
    "PEER-DISK",
    "RESYNC",
];

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_owned(),
        _ => "-".to_owned(),
    }
}

fn entries(value: &Value, key: &str) -> Vec<(String, Value)> {
    match value.get(key) {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => Vec::new(),
    }
}

/// `37.8% ETA 1m05s`, `12.0%`, or `-` when no resync runs.
fn resync(peer_device: &Value) -> String {
    let Some(done) = peer_device.get("done").and_then(Value::as_f64) else {
        return "-".to_owned();
    };
    let eta = peer_device
        .get("stats")
        .and_then(|s| s.get("eta"))
        .and_then(Value::as_u64);
    match eta {
        Some(seconds) => format!("{done:.1}% ETA {}", format_eta(seconds)),
        None => format!("{done:.1}%"),
    }
}

fn format_eta(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

fn rows(resources: &Value) -> Vec<[String; 10]> {
    let mut rows = Vec::new();
    let Value::Object(resources) = resources else {
        return rows;
    };
    for (name, resource) in resources {
        let role = text(resource, "role");
        let devices = entries(resource, "devices");
        let disk_of = |volume: &str| {
            devices
                .iter()
                .find(|(v, _)| v == volume)
                .map_or_else(|| "-".to_owned(), |(_, d)| text(d, "disk"))
        };
        let mut covered = Vec::new();
        for (peer, connection) in entries(resource, "connections") {
            let peer_devices = entries(&connection, "peer_devices");
            let base = |volume: &str| {
                [
                    name.clone(),
                    role.clone(),
                    volume.to_owned(),
                    disk_of(volume),
                    peer.clone(),
                    text(&connection, "connection"),
                    text(&connection, "peer_role"),
                ]
            };
            if peer_devices.is_empty() {
                let [a, b, c, d, e, f, g] = base("-");
                rows.push([a, b, c, d, e, f, g, "-".into(), "-".into(), "-".into()]);
            }
            for (volume, peer_device) in peer_devices {
                covered.push(volume.clone());
                let [a, b, c, d, e, f, g] = base(&volume);
                rows.push([
                    a,
                    b,
                    c,
                    d,
                    e,
                    f,
                    g,
                    text(&peer_device, "replication"),
                    text(&peer_device, "peer_disk"),
                    resync(&peer_device),
                ]);
            }
        }
        // Volumes without any peer (or resources without connections).
        for (volume, device) in &devices {
            if !covered.contains(volume) {
                let mut row: [String; 10] = Default::default();
                row[0] = name.clone();
                row[1] = role.clone();
                row[2] = volume.clone();
                row[3] = text(device, "disk");
                for cell in &mut row[4..] {
                    *cell = "-".into();
                }
                rows.push(row);
            }
        }
        if devices.is_empty()
            && resource
                .get("connections")
                .is_none_or(|c| c.as_object().is_none_or(|m| m.is_empty()))
        {
            let mut row: [String; 10] = Default::default();
            row[0] = name.clone();
            row[1] = role.clone();
            for cell in &mut row[2..] {
                *cell = "-".into();
            }
            rows.push(row);
        }
    }
    rows
}

/// The summary line and the resource table.
pub fn render_status(status: &Value) -> String {
    let agent = status.get("agent").cloned().unwrap_or(Value::Null);
    let mut out = format!(
        "node {}  agent {}  drbd reachable: {}  events: {}  parse errors: {}  restarts: {}  drifts: {}\n",
        text(&agent, "node_name"),
        text(&agent, "version"),
        text(&agent, "drbd_reachable"),
        text(&agent, "events"),
        text(&agent, "parse_errors"),
        text(&agent, "child_restarts"),
        text(&agent, "drifts"),
    );
    if let Some(Value::String(error)) = agent.get("last_parse_error") {
        out.push_str(&format!("last parse error: {error}\n"));
    }
    if let Some(Value::String(since)) = agent.get("stale_since") {
        out.push_str(&format!(
            "STALE: showing the state as of {since}, re-reading DRBD ({})\n",
            text(&agent, "stale_reason")
        ));
    }
    let resources = status.get("resources").unwrap_or(&Value::Null);
    let rows = rows(resources);
    if rows.is_empty() {
        out.push_str("no resources\n");
    } else {
        grid(&mut out, HEADER, &rows);
    }
    if let Some(throttle) = status.get("throttle").filter(|t| t.is_object()) {
        throttle_section(&mut out, throttle, resources);
    }
    if let Some(linstor) = status.get("linstor").filter(|l| l.is_object()) {
        out.push_str(&linstor_line(linstor));
    }
    out
}

/// `linstor: connected to URL (controller 1.28.0), node ok, last report ...`.
fn linstor_line(linstor: &Value) -> String {
    if linstor.get("enabled") != Some(&Value::Bool(true)) {
        // Nothing to say (and the table stays as it was without LINSTOR).
        return String::new();
    }
    let controller = linstor
        .get("controller")
        .and_then(Value::as_str)
        .unwrap_or("-");
    let mut line = if linstor.get("connected") == Some(&Value::Bool(true)) {
        let version = linstor
            .get("controller_version")
            .and_then(Value::as_str)
            .map(|v| format!(" (controller {v})"))
            .unwrap_or_default();
        format!("linstor: connected to {controller}{version}")
    } else {
        format!("linstor: NOT connected (last tried {controller})")
    };
    line.push_str(&format!(", node check: {}", text(linstor, "node_check")));
    if let Some(at) = linstor
        .get("last_report_unix_seconds")
        .and_then(Value::as_i64)
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
    {
        line.push_str(&format!(
            ", last report {}",
            at.format("%Y-%m-%d %H:%M:%SZ")
        ));
    }
    line.push('\n');
    if let Some(error) = linstor.get("last_error").and_then(Value::as_str) {
        line.push_str(&format!("linstor error: {error}\n"));
    }
    line
}

/// Appends `header` and `rows` as left-aligned columns.
fn grid<const N: usize>(out: &mut String, header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = header.map(str::to_owned);
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
}

const THROTTLE_HEADER: [&str; 11] = [
    "RESOURCE", "PEER", "VOLUME", "RATE-SET", "LATENCY", "TARGET", "STATE", "MODEL", "REVERTS",
    "FAILURES", "POLICY",
];

/// The queue model cell: `S=1.00ms,C=350MiB/s` while it steers, the
/// fallback reason while the feedback law decides, `-` before a step.
fn model_cell(peer: &Value) -> String {
    let Some(model) = peer.get("model").filter(|m| !m.is_null()) else {
        return "-".to_owned();
    };
    if model.get("in_use") == Some(&Value::Bool(true)) {
        let fit = model.get("fit").unwrap_or(&Value::Null);
        let service = fit.get("service_ms").and_then(Value::as_f64);
        let capacity = fit.get("capacity_kib_per_sec").and_then(Value::as_f64);
        return match (service, capacity) {
            (Some(s), Some(c)) => format!("S={s:.2}ms,C={:.0}MiB/s", c / 1024.0),
            _ => "in-use".to_owned(),
        };
    }
    match model.get("fallback") {
        Some(Value::String(reason)) => format!("feedback:{reason}"),
        _ => "feedback".to_owned(),
    }
}

/// The policy column: mode, and where the target, floor and ceiling came
/// from (`target:rd min:local max:default`).
fn policy_cell(peer: &Value) -> String {
    let Some(policy) = peer.get("policy").filter(|p| p.is_object()) else {
        return "-".to_owned();
    };
    let short = |origin: &str| -> String {
        let value = policy
            .get("origins")
            .and_then(|o| o.get(origin))
            .and_then(Value::as_str)
            .unwrap_or("-");
        match value {
            "resource-definition" => "rd",
            "resource-group" => "rg",
            "local-policy" => "local",
            other => other,
        }
        .to_owned()
    };
    format!(
        "{}:target={},min={},max={}",
        text(policy, "mode"),
        short("latency_target"),
        short("min_rate"),
        short("max_rate")
    )
}

/// `2.50ms`, or `-` when missing.
fn millis(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_f64)
        .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}ms"))
}

/// The connection name of `peer_node_id` in `resource`, else the id.
fn peer_name(resources: &Value, resource: &str, peer_node_id: &Value) -> String {
    let Value::Number(id) = peer_node_id else {
        return "-".to_owned();
    };
    resources
        .get(resource)
        .map(|r| entries(r, "connections"))
        .unwrap_or_default()
        .into_iter()
        .find(|(_, connection)| connection.get("peer_node_id") == Some(peer_node_id))
        .map_or_else(|| id.to_string(), |(name, _)| name)
}

/// The throttle's summary line, its last error and one row per followed
/// peer device.
fn throttle_section(out: &mut String, throttle: &Value, resources: &Value) {
    let mode = match throttle.get("enabled") {
        Some(Value::Bool(true)) => text(throttle, "mode"),
        Some(Value::Bool(false)) => "disabled".to_owned(),
        _ => "-".to_owned(),
    };
    out.push_str(&format!(
        "throttle: {mode}  reverts: {}  failures: {}  restores: {}  journal errors: {}\n",
        text(throttle, "reverts"),
        text(throttle, "failures"),
        text(throttle, "restores"),
        text(throttle, "journal_errors"),
    ));
    if let Some(Value::String(error)) = throttle.get("last_error") {
        out.push_str(&format!("last throttle error: {error}\n"));
    }
    let rows: Vec<[String; 11]> = entries(throttle, "peers")
        .into_iter()
        .map(|(_, peer)| {
            let resource = text(&peer, "resource");
            let decision = peer.get("decision").unwrap_or(&Value::Null);
            let rate = peer
                .get("rate_set_kib")
                .and_then(Value::as_u64)
                .and_then(KibPerSec::new)
                .map_or_else(|| "-".to_owned(), |rate| rate.to_string());
            [
                resource.clone(),
                peer_name(
                    resources,
                    &resource,
                    peer.get("peer_node_id").unwrap_or(&Value::Null),
                ),
                text(&peer, "volume"),
                rate,
                millis(decision.get("latency_ms")),
                millis(peer.get("latency_target_ms")),
                text(decision, "state"),
                model_cell(&peer),
                text(&peer, "reverts"),
                text(&peer, "failures"),
                policy_cell(&peer),
            ]
        })
        .collect();
    if !rows.is_empty() {
        grid(out, THROTTLE_HEADER, &rows);
    }
    out.push_str(&crate::pressure::table::status_lines(throttle));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linstor_line() {
        let disabled = serde_json::json!({"enabled": false});
        assert_eq!(linstor_line(&disabled), "");
        let up = serde_json::json!({"enabled": true, "connected": true, "controller": "http://c:3370", "controller_version": "1.28.0", "node_check": "ok", "last_report_unix_seconds": 0});
        assert_eq!(
            linstor_line(&up),
            "linstor: connected to http://c:3370 (controller 1.28.0), node check: ok, last report 1970-01-01 00:00:00Z\n"
        );
        let down = serde_json::json!({"enabled": true, "connected": true, "controller": "http://c:3370", "node_check": "not-a-node", "last_error": "node x is not a LINSTOR node"});
        assert!(linstor_line(&down).ends_with("linstor error: node x is not a LINSTOR node\n"));
    }
    use serde_json::json;

    #[test]
    fn table_rows() {
        let status = json!({
            "agent": {"node_name": "alpha", "version": "0.1.0", "drbd_reachable": true,
                      "events": 34, "parse_errors": 0, "child_restarts": 1, "drifts": 0},
            "resources": {
                "r0": {
                    "role": "Primary",
                    "devices": {"0": {"disk": "UpToDate"}, "1": {"disk": "Diskless"}},
                    "connections": {
                        "bravo": {"connection": "Connected", "peer_role": "Secondary",
                            "peer_devices": {"0": {"replication": "SyncSource",
                                "peer_disk": "Inconsistent", "done": 37.79,
                                "stats": {"eta": 65}}}},
                        "charlie": {"connection": "Connecting", "peer_devices": {}}
                    }
                },
                "r1": {"role": "Secondary", "devices": {}, "connections": {}}
            }
        });
        let table = render_status(&status);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("node alpha  agent 0.1.0  drbd reachable: yes"));
        assert!(lines[1].starts_with("RESOURCE  ROLE       VOLUME  DISK"));
        let cells = |line: &str| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            cells(lines[2]),
            [
                "r0",
                "Primary",
                "0",
                "UpToDate",
                "bravo",
                "Connected",
                "Secondary",
                "SyncSource",
                "Inconsistent",
                "37.8%",
                "ETA",
                "1m05s"
            ]
        );
        assert_eq!(
            cells(lines[3]),
            [
                "r0",
                "Primary",
                "-",
                "-",
                "charlie",
                "Connecting",
                "-",
                "-",
                "-",
                "-"
            ]
        );
        assert_eq!(
            cells(lines[4]),
            ["r0", "Primary", "1", "Diskless", "-", "-", "-", "-", "-", "-"]
        );
        assert_eq!(cells(lines[5])[..2], ["r1", "Secondary"]);
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn throttle_rows() {
        let status = json!({
            "agent": {},
            "resources": {
                "r0": {"role": "Primary", "devices": {}, "connections": {
                    "bravo": {"peer_node_id": 1, "connection": "Connected"}}}
            },
            "throttle": {
                "enabled": true, "mode": "enforce", "reverts": 2, "failures": 7,
                "restores": 1, "journal_errors": 0, "last_error": "drbdsetup failed",
                "peers": {
                    "r0/1/0": {"resource": "r0", "peer_node_id": 1, "volume": 0,
                        "rate_set_kib": 40960, "latency_target_ms": 10.0,
                        "reverts": 2, "failures": 1,
                        "policy": {"mode": "enforce", "min_rate_kib": 1024, "max_rate_kib": 102400,
                            "origins": {"enabled": "default", "mode": "default",
                                "latency_target": "resource-definition", "min_rate": "local-policy",
                                "max_rate": "default"}},
                        "decision": {"rate": "40MiB/s", "state": "backing-off",
                            "floor": "4MiB/s", "ceiling": "100MiB/s", "latency_ms": 12.345},
                        "model": {"in_use": true, "fallback": null, "bias": 1.0, "setpoint_ms": 9.5,
                            "fit": {"service_ms": 1.0, "capacity_kib_per_sec": 358400.0}}},
                    "r9/2/3": {"resource": "r9", "peer_node_id": 2, "volume": 3,
                        "rate_set_kib": null, "decision": null, "latency_target_ms": 0.5,
                        "reverts": 0, "failures": 0}
                }
            }
        });
        let table = render_status(&status);
        let lines: Vec<&str> = table.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("throttle: "))
            .unwrap();
        assert_eq!(
            lines[at],
            "throttle: enforce  reverts: 2  failures: 7  restores: 1  journal errors: 0"
        );
        assert_eq!(lines[at + 1], "last throttle error: drbdsetup failed");
        fn cells(line: &str) -> Vec<&str> {
            line.split_whitespace().collect()
        }
        assert_eq!(
            cells(lines[at + 2]),
            [
                "RESOURCE", "PEER", "VOLUME", "RATE-SET", "LATENCY", "TARGET", "STATE", "MODEL",
                "REVERTS", "FAILURES", "POLICY"
            ]
        );
        assert_eq!(
            cells(lines[at + 3]),
            [
                "r0",
                "bravo",
                "0",
                "40MiB/s",
                "12.35ms",
                "10.00ms",
                "backing-off",
                "S=1.00ms,C=350MiB/s",
                "2",
                "1",
                "enforce:target=rd,min=local,max=default"
            ]
        );
        // Not in charge, no step yet, peer not in the model: the node id.
        assert_eq!(
            cells(lines[at + 4]),
            ["r9", "2", "3", "-", "-", "0.50ms", "-", "-", "0", "0", "-"]
        );
        assert_eq!(lines.len(), at + 5);
    }

    #[test]
    fn throttle_disabled_or_missing() {
        let disabled = render_status(&json!({
            "agent": {}, "resources": {},
            "throttle": {"enabled": false, "mode": null, "peers": {}, "reverts": 0,
                "failures": 0, "restores": 3, "journal_errors": 1, "last_error": null}
        }));
        let lines: Vec<&str> = disabled.lines().collect();
        assert_eq!(lines[1], "no resources");
        assert_eq!(
            lines[2],
            "throttle: disabled  reverts: 0  failures: 0  restores: 3  journal errors: 1"
        );
        assert_eq!(lines.len(), 3);
        // An older agent without the throttle: no section.
        let old = render_status(&json!({"agent": {}, "resources": {}}));
        assert!(!old.contains("throttle"));
    }

    #[test]
    fn empty_and_odd_documents() {
        assert!(render_status(&json!({"agent": {}, "resources": {}})).contains("no resources"));
        assert!(render_status(&json!(null)).contains("node -"));
        assert_eq!(format_eta(3700), "1h01m");
        assert_eq!(format_eta(5), "5s");
    }
}
