//! Joins the link table with the DRBD model: which interface carries each
//! path, traffic rates, and connection losses with their cause. Pure: the
//! driver feeds it the table's changes, connection views and the time.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

use super::cause::{attribute, Cause, PathsSeen, ATTRIBUTION_WINDOW};
use super::path::{map_endpoint, parse_endpoint, Unmapped};
use super::table::{LinkStats, Table};

/// What the tracker needs of one DRBD connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnView {
    pub name: String,
    pub conn_name: String,
    pub peer_node_id: Option<u32>,
    pub connected: bool,
    /// The `local:` addresses of its paths.
    pub locals: Vec<String>,
}

/// One path and the interface carrying it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStatus {
    pub name: String,
    pub conn_name: String,
    pub peer_node_id: Option<u32>,
    pub local: String,
    pub interface: Option<String>,
    /// Up with carrier (false while unmapped).
    pub up: bool,
    pub lower: Vec<String>,
    /// Why no interface is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmapped: Option<Unmapped>,
}

/// An interface carrying at least one path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InterfaceStatus {
    pub index: u32,
    pub oper_state: String,
    pub admin_up: bool,
    pub carrier: bool,
    pub mtu: Option<u32>,
    pub stats: Option<LinkStats>,
    /// Received plus sent, bytes/s, between the last two statistics reads.
    pub traffic_bytes_per_second: Option<f64>,
    /// Link speed (bytes/s) where the kernel knows it.
    pub speed_bytes_per_second: Option<f64>,
    /// Traffic over speed (the larger direction over the link speed).
    pub utilisation: Option<f64>,
}

/// The last loss of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LossStatus {
    pub cause: Cause,
    pub interface: Option<String>,
    pub at: DateTime<Utc>,
}

/// Losses of one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionNet {
    pub name: String,
    pub conn_name: String,
    pub peer_node_id: Option<u32>,
    pub last_loss: Option<LossStatus>,
    /// Losses by cause (`link-down`, `address-removed`, `unknown`).
    pub losses: BTreeMap<Cause, u64>,
}

/// The watcher's own health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WatcherStatus {
    /// A netlink socket is open and the table was dumped.
    pub running: bool,
    pub dumps: u64,
    /// Receive-buffer overruns (each followed by a new dump).
    pub overruns: u64,
    pub last_error: Option<String>,
}

/// `/v1/status` `network` and the source of the `drbd_agent_path_*`,
/// `drbd_agent_interface_*` and `drbd_agent_connection_losses_total`
/// families.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NetworkStatus {
    pub watcher: WatcherStatus,
    pub paths: Vec<PathStatus>,
    pub interfaces: BTreeMap<String, InterfaceStatus>,
    /// By `RESOURCE/CONN_NAME`.
    pub connections: BTreeMap<String, ConnectionNet>,
}

/// Per connection memory between observations.
#[derive(Debug, Clone, Default)]
struct Memory {
    connected: bool,
    seen: PathsSeen,
}

/// The previous statistics read of an interface.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    stats: LinkStats,
}

/// The tracker's state.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    memory: BTreeMap<String, Memory>,
    samples: BTreeMap<u32, Sample>,
    rates: BTreeMap<u32, (f64, f64)>,
    status: NetworkStatus,
}

impl Tracker {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records the links' statistics read at `at` for the traffic rates.
    pub(crate) fn sample_stats(&mut self, table: &Table, at: Instant) {
        for link in table.links() {
            let Some(stats) = link.stats else { continue };
            if let Some(prev) = self.samples.get(&link.index) {
                let dt = at.saturating_duration_since(prev.at).as_secs_f64();
                if dt > 0.0 {
                    let rx = stats.rx_bytes.saturating_sub(prev.stats.rx_bytes) as f64 / dt;
                    let tx = stats.tx_bytes.saturating_sub(prev.stats.tx_bytes) as f64 / dt;
                    self.rates.insert(link.index, (rx, tx));
                }
            }
            self.samples.insert(link.index, Sample { at, stats });
        }
        self.samples.retain(|i, _| table.link(*i).is_some());
        self.rates.retain(|i, _| table.link(*i).is_some());
    }

    /// Maps every path, detects losses (Connected → anything else) and
    /// attributes them; `speed` gives an interface's speed in bytes/s.
    pub(crate) fn observe(
        &mut self,
        table: &Table,
        conns: &[ConnView],
        now: Instant,
        wall: DateTime<Utc>,
        speed: impl Fn(&str) -> Option<f64>,
    ) {
        let mut paths = Vec::new();
        let mut interfaces = BTreeMap::new();
        for conn in conns {
            let key = format!("{}/{}", conn.name, conn.conn_name);
            let mut seen = PathsSeen::default();
            for local in &conn.locals {
                let mut status = PathStatus {
                    name: conn.name.clone(),
                    conn_name: conn.conn_name.clone(),
                    peer_node_id: conn.peer_node_id,
                    local: local.clone(),
                    interface: None,
                    up: false,
                    lower: Vec::new(),
                    unmapped: None,
                };
                match parse_endpoint(local) {
                    Ok(endpoint) => {
                        seen.addresses.push(endpoint.ip);
                        match map_endpoint(table, &endpoint) {
                            Ok(carrier) => {
                                seen.interfaces.push(carrier.interface.clone());
                                seen.interfaces.extend(carrier.lower.iter().cloned());
                                if let Some(link) = table.link(carrier.index) {
                                    let rate = self.rates.get(&carrier.index).copied();
                                    let speed = speed(&link.name);
                                    interfaces.insert(
                                        link.name.clone(),
                                        InterfaceStatus {
                                            index: link.index,
                                            oper_state: link.oper_state.clone(),
                                            admin_up: link.admin_up,
                                            carrier: link.carrier,
                                            mtu: link.mtu,
                                            stats: link.stats,
                                            traffic_bytes_per_second: rate.map(|(r, t)| r + t),
                                            speed_bytes_per_second: speed,
                                            utilisation: utilisation(rate, speed),
                                        },
                                    );
                                }
                                status.interface = Some(carrier.interface);
                                status.up = carrier.up;
                                status.lower = carrier.lower;
                            }
                            Err(why) => status.unmapped = Some(why),
                        }
                    }
                    Err(error) => {
                        warn!(resource = %conn.name, peer = %conn.conn_name, %error, "cannot read a path address");
                        status.unmapped = Some(Unmapped::BadAddress);
                    }
                }
                paths.push(status);
            }
            let memory = self.memory.entry(key.clone()).or_default();
            let lost = memory.connected && !conn.connected;
            if conn.connected {
                // Remember what the paths ran over while connected: a
                // removed address no longer maps after the loss.
                memory.seen = seen;
            } else {
                for i in seen.interfaces {
                    if !memory.seen.interfaces.contains(&i) {
                        memory.seen.interfaces.push(i);
                    }
                }
            }
            memory.connected = conn.connected;
            let entry = self
                .status
                .connections
                .entry(key)
                .or_insert_with(|| ConnectionNet {
                    name: conn.name.clone(),
                    conn_name: conn.conn_name.clone(),
                    ..ConnectionNet::default()
                });
            entry.peer_node_id = conn.peer_node_id;
            if lost {
                let verdict = attribute(table.history(), &memory.seen, now, ATTRIBUTION_WINDOW);
                info!(
                    resource = %conn.name,
                    peer = %conn.conn_name,
                    interface = verdict.interface.as_deref().unwrap_or("-"),
                    cause = verdict.cause.as_str(),
                    "connection lost"
                );
                *entry.losses.entry(verdict.cause).or_insert(0) += 1;
                entry.last_loss = Some(LossStatus {
                    cause: verdict.cause,
                    interface: verdict.interface,
                    at: wall,
                });
            }
        }
        // Connections gone from the model (which is never blanked, only
        // replaced by a complete newer one) take their series with them.
        let present: std::collections::BTreeSet<String> = conns
            .iter()
            .map(|c| format!("{}/{}", c.name, c.conn_name))
            .collect();
        self.status
            .connections
            .retain(|key, _| present.contains(key));
        self.memory.retain(|key, _| present.contains(key));
        self.status.paths = paths;
        self.status.interfaces = interfaces;
    }

    pub(crate) fn status(&self) -> &NetworkStatus {
        &self.status
    }

    pub(crate) fn watcher_mut(&mut self) -> &mut WatcherStatus {
        &mut self.status.watcher
    }
}

/// The share of a link's speed replication may fill; the rest is margin.
pub(crate) const NIC_SHARE: f64 = 0.9;

impl NetworkStatus {
    /// What the interface carrying `resource`'s connection to
    /// `peer_node_id` can still carry for its resync, KiB/s:
    /// `NIC_SHARE × speed − (busier direction − the resync's own rate)`,
    /// at least 0; the best of its paths. `None` while no path of the
    /// connection has an interface with a known speed and rate.
    pub fn headroom_kib_per_sec(
        &self,
        resource: &str,
        peer_node_id: u32,
        resync_kib_per_sec: f64,
    ) -> Option<f64> {
        let own = resync_kib_per_sec.max(0.0) * 1024.0;
        self.paths
            .iter()
            .filter(|p| p.name == resource && p.peer_node_id == Some(peer_node_id))
            .filter_map(|p| self.interfaces.get(p.interface.as_deref()?))
            .filter_map(|i| {
                let speed = i.speed_bytes_per_second?;
                let busier = i.utilisation? * speed;
                let other = (busier - own).max(0.0);
                Some(((NIC_SHARE * speed - other).max(0.0)) / 1024.0)
            })
            .filter(|h| h.is_finite())
            .reduce(f64::max)
    }
}

/// The busier direction over the link speed (full duplex).
fn utilisation(rate: Option<(f64, f64)>, speed: Option<f64>) -> Option<f64> {
    let (rx, tx) = rate?;
    let speed = speed.filter(|s| *s > 0.0)?;
    Some(rx.max(tx) / speed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::table::link;
    use super::*;

    fn conn(connected: bool) -> ConnView {
        ConnView {
            name: "r0".into(),
            conn_name: "bravo".into(),
            peer_node_id: Some(1),
            connected,
            locals: vec!["ipv4:10.0.0.1:7000".into()],
        }
    }

    #[test]
    fn maps_paths_and_attributes_a_link_down_loss() {
        let t0 = Instant::now();
        let mut table = Table::new();
        table.upsert_link(link(2, "eth0", true), t0);
        table.add_address("10.0.0.1".parse().unwrap(), 2);
        let mut tracker = Tracker::new();
        tracker.observe(&table, &[conn(true)], t0, Utc::now(), |_| None);
        let s = tracker.status();
        assert_eq!(s.paths[0].interface.as_deref(), Some("eth0"));
        assert!(s.paths[0].up);
        assert!(s.interfaces.contains_key("eth0"));
        table.upsert_link(link(2, "eth0", false), t0 + Duration::from_secs(1));
        tracker.observe(
            &table,
            &[conn(false)],
            t0 + Duration::from_secs(2),
            Utc::now(),
            |_| None,
        );
        let c = &tracker.status().connections["r0/bravo"];
        assert_eq!(c.last_loss.as_ref().unwrap().cause, Cause::LinkDown);
        assert_eq!(c.losses[&Cause::LinkDown], 1);
        assert!(!tracker.status().paths[0].up);
        // Still down: no second loss.
        tracker.observe(
            &table,
            &[conn(false)],
            t0 + Duration::from_secs(3),
            Utc::now(),
            |_| None,
        );
        assert_eq!(
            tracker.status().connections["r0/bravo"]
                .losses
                .values()
                .sum::<u64>(),
            1
        );
    }

    #[test]
    fn a_connection_gone_from_the_model_takes_its_counters_along() {
        let t0 = Instant::now();
        let mut table = Table::new();
        table.upsert_link(link(2, "eth0", true), t0);
        table.add_address("10.0.0.1".parse().unwrap(), 2);
        let mut tracker = Tracker::new();
        tracker.observe(&table, &[conn(true)], t0, Utc::now(), |_| None);
        tracker.observe(&table, &[conn(false)], t0, Utc::now(), |_| None);
        assert_eq!(tracker.status().connections["r0/bravo"].losses.len(), 1);
        tracker.observe(&table, &[], t0, Utc::now(), |_| None);
        assert!(tracker.status().connections.is_empty());
        // Back later: a new connection, counted from zero, no loss.
        tracker.observe(&table, &[conn(true)], t0, Utc::now(), |_| None);
        let c = &tracker.status().connections["r0/bravo"];
        assert!(c.losses.is_empty() && c.last_loss.is_none());
    }

    #[test]
    fn removed_address_loss_and_unknown_loss() {
        let t0 = Instant::now();
        let mut table = Table::new();
        table.upsert_link(link(2, "eth0", true), t0);
        table.add_address("10.0.0.1".parse().unwrap(), 2);
        let mut tracker = Tracker::new();
        tracker.observe(&table, &[conn(true)], t0, Utc::now(), |_| None);
        table.remove_address("10.0.0.1".parse().unwrap(), t0);
        tracker.observe(&table, &[conn(false)], t0, Utc::now(), |_| None);
        assert_eq!(
            tracker.status().paths[0].unmapped,
            Some(Unmapped::NoInterface)
        );
        let c = &tracker.status().connections["r0/bravo"];
        assert_eq!(c.last_loss.as_ref().unwrap().cause, Cause::AddressRemoved);
        // Back, then lost without a network event long after.
        table.add_address("10.0.0.1".parse().unwrap(), 2);
        tracker.observe(&table, &[conn(true)], t0, Utc::now(), |_| None);
        tracker.observe(
            &table,
            &[conn(false)],
            t0 + Duration::from_secs(60),
            Utc::now(),
            |_| None,
        );
        let c = &tracker.status().connections["r0/bravo"];
        assert_eq!(c.last_loss.as_ref().unwrap().cause, Cause::Unknown);
        assert_eq!(c.losses.len(), 2);
    }

    #[test]
    fn rates_and_utilisation_from_two_samples() {
        let t0 = Instant::now();
        let mut table = Table::new();
        let mut l = link(2, "eth0", true);
        l.stats = Some(LinkStats::default());
        table.upsert_link(l.clone(), t0);
        table.add_address("10.0.0.1".parse().unwrap(), 2);
        let mut tracker = Tracker::new();
        tracker.sample_stats(&table, t0);
        l.stats = Some(LinkStats {
            rx_bytes: 1000,
            tx_bytes: 3000,
            ..LinkStats::default()
        });
        table.upsert_link(l, t0);
        tracker.sample_stats(&table, t0 + Duration::from_secs(2));
        tracker.observe(&table, &[conn(true)], t0, Utc::now(), |_| Some(10_000.0));
        let i = &tracker.status().interfaces["eth0"];
        assert_eq!(i.traffic_bytes_per_second, Some(2000.0));
        assert_eq!(i.utilisation, Some(0.15));
        // 0.9 × 10000 − (1500 − 1 KiB of own resync) = 8524 B/s.
        let h = tracker.status().headroom_kib_per_sec("r0", 1, 1.0).unwrap();
        assert!((h - 8524.0 / 1024.0).abs() < 1e-9, "{h}");
        assert_eq!(tracker.status().headroom_kib_per_sec("r0", 7, 0.0), None);
    }

    #[test]
    fn bad_addresses_are_reported_not_fatal() {
        let table = Table::new();
        let mut tracker = Tracker::new();
        let mut c = conn(true);
        c.locals = vec!["garbage".into(), "ipv6:[fe80::1%eth0]:7000".into()];
        tracker.observe(&table, &[c], Instant::now(), Utc::now(), |_| None);
        let p = &tracker.status().paths;
        assert_eq!(p[0].unmapped, Some(Unmapped::BadAddress));
        assert_eq!(p[1].unmapped, Some(Unmapped::NoInterface));
    }
}
