//! The pressure lines of `drbd-agent status`: which signal steers each
//! SyncTarget peer device, and each peer agent's state. Pure, from the
//! `/v1/status` JSON's `throttle` object; nothing for an agent without
//! `[pressure]` (or an older one).

use serde_json::Value;

/// The lines (each ending in a newline), empty without pressure data.
pub fn status_lines(throttle: &Value) -> String {
    let mut out = String::new();
    let Some(pressure) = throttle.get("pressure").filter(|p| p.is_object()) else {
        return out;
    };
    if let Some(peers) = throttle.get("peers").and_then(Value::as_object) {
        for (key, peer) in peers {
            let Some(signal) = peer.get("signal").filter(|s| s.is_object()) else {
                continue;
            };
            let line = match signal.get("source").and_then(Value::as_str) {
                Some("peer") => format!(
                    "signal {key}: pressure of {} ({})",
                    str_of(signal, "node"),
                    signal
                        .get("pressure")
                        .and_then(Value::as_f64)
                        .map_or_else(|| "?".to_owned(), |p| format!("{p:.2}")),
                ),
                _ => {
                    let reason = signal.get("reason").unwrap_or(&Value::Null);
                    let node = reason
                        .get("node")
                        .and_then(Value::as_str)
                        .map(|n| format!(", {n}"))
                        .unwrap_or_default();
                    format!("signal {key}: local ({}{node})", str_of(reason, "why"))
                }
            };
            out.push_str(&line);
            out.push('\n');
        }
    }
    if let Some(peers) = pressure.get("peers").and_then(Value::as_object) {
        for (node, p) in peers {
            let up = p.get("up").and_then(Value::as_bool) == Some(true);
            let age = p.get("age_ms").and_then(Value::as_u64).map_or_else(
                || "-".to_owned(),
                |ms| format!("{:.1}s", ms as f64 / 1000.0),
            );
            let mut line = format!(
                "pressure peer {node} at {}: {}  last report {age} ago",
                str_of(p, "address"),
                if up { "up" } else { "down" },
            );
            if let Some(error) = p.get("last_error").and_then(Value::as_str) {
                line.push_str(&format!("  error: {error}"));
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("?").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines() {
        let throttle = json!({
            "peers": {
                "r0/0/0": {"signal": {"source": "peer", "node": "alpha", "pressure": 1.234}},
                "r1/0/0": {"signal": {"source": "local", "reason": {"why": "stale", "node": "alpha", "age_ms": 9000}}},
                "r2/0/0": {"signal": null}
            },
            "pressure": {"published": [], "peers": {
                "alpha": {"address": "10.0.0.1:9943", "up": false, "age_ms": 9000,
                          "last_error": "timed out", "fetches": {"ok": 3}}
            }}
        });
        assert_eq!(
            status_lines(&throttle),
            "signal r0/0/0: pressure of alpha (1.23)\n\
             signal r1/0/0: local (stale, alpha)\n\
             pressure peer alpha at 10.0.0.1:9943: down  last report 9.0s ago  error: timed out\n"
        );
        assert_eq!(status_lines(&json!({"peers": {}})), "");
        assert_eq!(status_lines(&json!({"pressure": null})), "");
    }
}
