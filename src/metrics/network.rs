//! The replication network's series, rendered on every scrape from the
//! network watcher's [`NetworkStatus`] and merged into the agent part.
//!
//! - Per path (labels `name`, `conn_name`, `peer_node_id`, `interface`):
//!   `drbd_agent_path_interface_up` (interface `""` while unmapped).
//! - Per interface carrying a path (label `interface`): operational state,
//!   carrier, MTU, kernel byte and error counters, traffic rate, speed and
//!   utilisation (the last three absent while unknown).
//! - Per connection: `drbd_agent_connection_losses_total{cause}`.
//! - The watcher: running, overruns.

use std::collections::BTreeSet;

use super::family::{Def, EnumSeries, FamilyWriter, Kind, Spec};
use super::MetricsError;
use crate::netlink::{Cause, InterfaceStatus, NetworkStatus};

const PATH_LABELS: &[&str] = &["name", "conn_name", "peer_node_id", "interface"];
const IF_LABELS: &[&str] = &["interface"];
const STATE_LABELS: &[&str] = &["interface", "state"];
const LOSS_LABELS: &[&str] = &["name", "conn_name", "peer_node_id", "cause"];

/// The operational states `ip link` knows, lower case.
const OPER_STATES: [&str; 7] = [
    "unknown",
    "notpresent",
    "down",
    "lowerlayerdown",
    "testing",
    "dormant",
    "up",
];

const fn spec(
    name: &'static str,
    help: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
) -> Spec {
    Spec {
        name,
        help,
        kind,
        labels,
    }
}

fn node_id(id: Option<u32>) -> String {
    id.map(|n| n.to_string()).unwrap_or_default()
}

/// One series per interface with the value `value` gives (none for `None`
/// or a value that is not finite).
fn per_interface(
    status: &NetworkStatus,
    w: &mut FamilyWriter<'_>,
    value: impl Fn(&InterfaceStatus) -> Option<f64>,
) -> Result<(), MetricsError> {
    for (name, interface) in &status.interfaces {
        if let Some(v) = value(interface).filter(|v| v.is_finite()) {
            w.add(&[name], v)?;
        }
    }
    Ok(())
}

macro_rules! if_family {
    ($name:literal, $help:literal, $kind:expr, $value:expr) => {
        Def {
            spec: spec($name, $help, $kind, IF_LABELS),
            fill: |status, w| per_interface(status, w, $value),
        }
    };
}

/// The network families.
pub(super) fn defs() -> Vec<Def<NetworkStatus>> {
    vec![
        Def {
            spec: spec(
                "drbd_agent_path_interface_up",
                "1 while the interface carrying the DRBD path is up with carrier, else 0 (interface \"\" while no interface holds the path's local address).",
                Kind::Gauge,
                PATH_LABELS,
            ),
            fill: |status, w| {
                let mut seen = BTreeSet::new();
                for path in &status.paths {
                    let node = node_id(path.peer_node_id);
                    let interface = path.interface.clone().unwrap_or_default();
                    let key = (path.name.clone(), path.conn_name.clone(), interface.clone());
                    if seen.insert(key) {
                        w.add_bool(&[&path.name, &path.conn_name, &node, &interface], path.up)?;
                    }
                }
                Ok(())
            },
        },
        Def {
            spec: spec(
                "drbd_agent_interface_oper_state",
                "Operational state of an interface carrying DRBD paths (IFLA_OPERSTATE), 1 for the current state.",
                Kind::Gauge,
                STATE_LABELS,
            ),
            fill: |status, w| {
                let all = w.enum_series() == EnumSeries::All;
                for (name, interface) in &status.interfaces {
                    if all {
                        for state in OPER_STATES {
                            w.add_bool(&[name, state], interface.oper_state == state)?;
                        }
                    }
                    if !all || !OPER_STATES.contains(&interface.oper_state.as_str()) {
                        w.add(&[name, &interface.oper_state], 1.0)?;
                    }
                }
                Ok(())
            },
        },
        if_family!(
            "drbd_agent_interface_carrier",
            "1 while the interface has carrier.",
            Kind::Gauge,
            |i| Some(if i.carrier { 1.0 } else { 0.0 })
        ),
        if_family!(
            "drbd_agent_interface_mtu_bytes",
            "The interface's MTU.",
            Kind::Gauge,
            |i| i.mtu.map(f64::from)
        ),
        if_family!(
            "drbd_agent_interface_receive_bytes_total",
            "Bytes the interface received (kernel link statistics).",
            Kind::Counter,
            |i| i.stats.map(|s| s.rx_bytes as f64)
        ),
        if_family!(
            "drbd_agent_interface_transmit_bytes_total",
            "Bytes the interface sent (kernel link statistics).",
            Kind::Counter,
            |i| i.stats.map(|s| s.tx_bytes as f64)
        ),
        if_family!(
            "drbd_agent_interface_receive_errors_total",
            "Receive errors of the interface (kernel link statistics).",
            Kind::Counter,
            |i| i.stats.map(|s| s.rx_errors as f64)
        ),
        if_family!(
            "drbd_agent_interface_transmit_errors_total",
            "Transmit errors of the interface (kernel link statistics).",
            Kind::Counter,
            |i| i.stats.map(|s| s.tx_errors as f64)
        ),
        if_family!(
            "drbd_agent_interface_traffic_bytes_per_second",
            "Received plus sent bytes/s of an interface carrying DRBD paths, over the last statistics interval.",
            Kind::Gauge,
            |i| i.traffic_bytes_per_second
        ),
        if_family!(
            "drbd_agent_interface_speed_bytes_per_second",
            "Link speed in bytes/s, where the kernel knows it.",
            Kind::Gauge,
            |i| i.speed_bytes_per_second
        ),
        if_family!(
            "drbd_agent_interface_utilisation_ratio",
            "The busier direction's bytes/s over the link speed (absent while the speed is unknown).",
            Kind::Gauge,
            |i| i.utilisation
        ),
        Def {
            spec: spec(
                "drbd_agent_connection_losses_total",
                "Times a connection left Connected, by the cause the agent attributed (link-down, address-removed, unknown).",
                Kind::Counter,
                LOSS_LABELS,
            ),
            fill: |status, w| {
                // `current`: a cause's series from its first occurrence on.
                let from_zero = w.enum_series() == EnumSeries::All;
                for connection in status.connections.values() {
                    let node = node_id(connection.peer_node_id);
                    for cause in Cause::ALL {
                        let n = connection.losses.get(&cause).copied().unwrap_or(0);
                        if n > 0 || from_zero {
                            w.add_u64(&[&connection.name, &connection.conn_name, &node, cause.as_str()], n)?;
                        }
                    }
                }
                Ok(())
            },
        },
        Def {
            spec: spec(
                "drbd_agent_network_watcher_running",
                "1 while the rtnetlink watcher has an open socket and a current dump.",
                Kind::Gauge,
                &[],
            ),
            fill: |status, w| w.add_bool(&[], status.watcher.running),
        },
        Def {
            spec: spec(
                "drbd_agent_network_overruns_total",
                "Netlink receive-buffer overruns (each followed by a full dump).",
                Kind::Counter,
                &[],
            ),
            fill: |status, w| w.add_u64(&[], status.watcher.overruns),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::family::render_each_in;
    use crate::netlink::tracker::{ConnectionNet, PathStatus};

    fn path(interface: Option<&str>, local: &str) -> PathStatus {
        PathStatus {
            name: "r0".into(),
            conn_name: "bravo".into(),
            peer_node_id: Some(1),
            local: local.into(),
            interface: interface.map(str::to_owned),
            up: interface.is_some(),
            lower: Vec::new(),
            unmapped: None,
        }
    }

    fn text(status: &NetworkStatus) -> String {
        text_in(status, EnumSeries::All)
    }

    fn text_in(status: &NetworkStatus, form: EnumSeries) -> String {
        render_each_in(defs(), status, form)
            .unwrap()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    #[test]
    fn paths_on_one_interface_are_one_series_and_unmapped_is_empty_interface() {
        let status = NetworkStatus {
            paths: vec![
                path(Some("eth0"), "ipv4:10.0.0.1:7000"),
                path(Some("eth0"), "ipv4:10.0.0.5:7000"),
                path(None, "ipv4:192.0.2.1:7000"),
            ],
            ..NetworkStatus::default()
        };
        let out = text(&status);
        let series = "drbd_agent_path_interface_up{name=\"r0\",conn_name=\"bravo\",peer_node_id=\"1\",interface=\"eth0\"} 1";
        assert_eq!(out.matches(series).count(), 1, "{out}");
        assert!(out.contains("interface=\"\"} 0"), "{out}");
    }

    #[test]
    fn losses_have_every_cause_and_unknown_oper_states_show() {
        let mut status = NetworkStatus::default();
        let mut c = ConnectionNet {
            name: "r0".into(),
            conn_name: "bravo".into(),
            peer_node_id: Some(1),
            ..ConnectionNet::default()
        };
        c.losses.insert(Cause::LinkDown, 2);
        status.connections.insert("r0/bravo".into(), c);
        status.interfaces.insert(
            "eth0".into(),
            InterfaceStatus {
                index: 2,
                oper_state: "weird".into(),
                admin_up: true,
                carrier: false,
                mtu: Some(9000),
                stats: None,
                traffic_bytes_per_second: Some(f64::NAN),
                speed_bytes_per_second: None,
                utilisation: None,
            },
        );
        let out = text(&status);
        for (cause, n) in [("link-down", 2), ("address-removed", 0), ("unknown", 0)] {
            let line = format!("drbd_agent_connection_losses_total{{name=\"r0\",conn_name=\"bravo\",peer_node_id=\"1\",cause=\"{cause}\"}} {n}");
            assert!(out.contains(&line), "{line} missing:\n{out}");
        }
        assert!(
            out.contains("drbd_agent_interface_oper_state{interface=\"eth0\",state=\"weird\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("drbd_agent_interface_oper_state{interface=\"eth0\",state=\"up\"} 0"),
            "{out}"
        );
        assert!(
            out.contains("drbd_agent_interface_mtu_bytes{interface=\"eth0\"} 9000"),
            "{out}"
        );
        assert!(
            !out.contains("drbd_agent_interface_traffic_bytes_per_second{"),
            "NaN must not be written:\n{out}"
        );

        // `current`: the cause that occurred and the state that holds only.
        let out = text_in(&status, EnumSeries::Current);
        let losses: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("drbd_agent_connection_losses_total{"))
            .collect();
        assert_eq!(
            losses,
            ["drbd_agent_connection_losses_total{name=\"r0\",conn_name=\"bravo\",peer_node_id=\"1\",cause=\"link-down\"} 2"],
            "{out}"
        );
        let states: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("drbd_agent_interface_oper_state{"))
            .collect();
        assert_eq!(
            states,
            ["drbd_agent_interface_oper_state{interface=\"eth0\",state=\"weird\"} 1"],
            "{out}"
        );
    }

    #[test]
    fn current_form_without_losses_has_no_loss_series() {
        let mut status = NetworkStatus::default();
        status.connections.insert(
            "r0/bravo".into(),
            ConnectionNet {
                name: "r0".into(),
                conn_name: "bravo".into(),
                peer_node_id: Some(1),
                ..ConnectionNet::default()
            },
        );
        let current = text_in(&status, EnumSeries::Current);
        assert!(
            !current.contains("drbd_agent_connection_losses_total"),
            "{current}"
        );
        let all = text_in(&status, EnumSeries::All);
        assert_eq!(
            all.matches("drbd_agent_connection_losses_total{").count(),
            Cause::ALL.len(),
            "{all}"
        );
    }
}
