//! `/v1/status` JSON → the table `drbd-agent status` prints. Pure; missing
//! fields print as `-`, so older or newer agents still render.

use serde_json::Value;

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
    let rows = rows(status.get("resources").unwrap_or(&Value::Null));
    if rows.is_empty() {
        out.push_str("no resources\n");
        return out;
    }
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = HEADER.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn empty_and_odd_documents() {
        assert!(render_status(&json!({"agent": {}, "resources": {}})).contains("no resources"));
        assert!(render_status(&json!(null)).contains("node -"));
        assert_eq!(format_eta(3700), "1h01m");
        assert_eq!(format_eta(5), "5s");
    }
}
