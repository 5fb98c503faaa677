//! The pure link/address table: what the kernel said last about each
//! interface and address, and the history of the events that matter for
//! cause attribution (carrier lost, link down, address removed).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use serde::Serialize;

/// Kernel statistics of a link (from `IFLA_STATS64`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
}

/// One link as the kernel reported it (`RTM_NEWLINK`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Link {
    pub index: u32,
    pub name: String,
    /// `IFF_UP`: administratively up.
    pub admin_up: bool,
    /// `IFLA_CARRIER`.
    pub carrier: bool,
    /// `IFLA_OPERSTATE` as `ip link` prints it, lower case (`up`, `down`,
    /// `lowerlayerdown`, `unknown`, ...).
    pub oper_state: String,
    pub mtu: Option<u32>,
    /// `IFLA_LINK`: the lower device of a VLAN (or a veth's peer, in
    /// another namespace maybe).
    pub lower: Option<u32>,
    /// `IFLA_MASTER`: the bond or bridge this link is enslaved to.
    pub master: Option<u32>,
    pub stats: Option<LinkStats>,
}

impl Link {
    /// Up and with carrier: can carry traffic. `unknown` operational state
    /// (loopback, some virtual devices) counts as up when admin up with
    /// carrier, as the kernel itself treats it.
    pub(crate) fn carries(&self) -> bool {
        self.admin_up && self.carrier && matches!(self.oper_state.as_str(), "up" | "unknown")
    }
}

/// A network event kept for cause attribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NetEvent {
    /// The link stopped carrying (carrier lost, set down, or deleted).
    LinkDown { interface: String, at: Instant },
    /// An address was removed from an interface.
    AddressRemoved {
        address: IpAddr,
        interface: String,
        at: Instant,
    },
}

impl NetEvent {
    pub(crate) fn at(&self) -> Instant {
        match self {
            NetEvent::LinkDown { at, .. } | NetEvent::AddressRemoved { at, .. } => *at,
        }
    }
}

/// How many events the history keeps (the oldest are dropped first).
const HISTORY: usize = 256;

/// Links by index and addresses with the index of their interface.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    links: BTreeMap<u32, Link>,
    addresses: BTreeMap<IpAddr, u32>,
    history: Vec<NetEvent>,
}

impl Table {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A new or changed link. Records a [`NetEvent::LinkDown`] when a link
    /// that carried stops carrying.
    pub(crate) fn upsert_link(&mut self, link: Link, at: Instant) {
        if let Some(old) = self.links.get(&link.index) {
            if old.carries() && !link.carries() {
                self.record(NetEvent::LinkDown {
                    interface: link.name.clone(),
                    at,
                });
            }
        }
        self.links.insert(link.index, link);
    }

    /// A deleted link (counts as down if it carried); its addresses go too.
    pub(crate) fn remove_link(&mut self, index: u32, at: Instant) {
        if let Some(old) = self.links.remove(&index) {
            if old.carries() {
                self.record(NetEvent::LinkDown {
                    interface: old.name.clone(),
                    at,
                });
            }
        }
        self.addresses.retain(|_, i| *i != index);
    }

    pub(crate) fn add_address(&mut self, address: IpAddr, index: u32) {
        self.addresses.insert(address, index);
    }

    /// A removed address (recorded when it was known).
    pub(crate) fn remove_address(&mut self, address: IpAddr, at: Instant) {
        if let Some(index) = self.addresses.remove(&address) {
            let interface = self.name_of(index);
            self.record(NetEvent::AddressRemoved {
                address,
                interface,
                at,
            });
        }
    }

    /// Replaces links and addresses with a full dump (after start or an
    /// overrun), recording the differences as events: a link that carried
    /// and is gone or no longer carries, an address that is gone.
    pub(crate) fn replace(&mut self, links: Vec<Link>, addresses: Vec<(IpAddr, u32)>, at: Instant) {
        let fresh: BTreeMap<IpAddr, u32> = addresses.into_iter().collect();
        let gone: Vec<IpAddr> = self
            .addresses
            .keys()
            .filter(|a| !fresh.contains_key(a))
            .copied()
            .collect();
        for address in gone {
            self.remove_address(address, at);
        }
        let fresh_links: BTreeMap<u32, Link> = links.into_iter().map(|l| (l.index, l)).collect();
        let gone: Vec<u32> = self
            .links
            .keys()
            .filter(|i| !fresh_links.contains_key(i))
            .copied()
            .collect();
        for index in gone {
            self.remove_link(index, at);
        }
        for link in fresh_links.into_values() {
            self.upsert_link(link, at);
        }
        self.addresses = fresh;
    }

    pub(crate) fn link(&self, index: u32) -> Option<&Link> {
        self.links.get(&index)
    }

    pub(crate) fn links(&self) -> impl Iterator<Item = &Link> {
        self.links.values()
    }

    /// The interface index holding `address`.
    pub(crate) fn holder(&self, address: &IpAddr) -> Option<u32> {
        self.addresses.get(address).copied()
    }

    pub(crate) fn history(&self) -> &[NetEvent] {
        &self.history
    }

    /// The interface's name, or `#INDEX` when the link is unknown.
    pub(crate) fn name_of(&self, index: u32) -> String {
        self.links
            .get(&index)
            .map_or_else(|| format!("#{index}"), |l| l.name.clone())
    }

    fn record(&mut self, event: NetEvent) {
        if self.history.len() >= HISTORY {
            self.history.remove(0);
        }
        self.history.push(event);
    }
}

#[cfg(test)]
pub(crate) fn link(index: u32, name: &str, up: bool) -> Link {
    Link {
        index,
        name: name.to_owned(),
        admin_up: up,
        carrier: up,
        oper_state: if up { "up" } else { "down" }.to_owned(),
        mtu: Some(1500),
        lower: None,
        master: None,
        stats: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carrier_loss_and_removals_are_recorded() {
        let t0 = Instant::now();
        let mut table = Table::new();
        table.upsert_link(link(2, "eth0", true), t0);
        table.add_address("10.0.0.1".parse().unwrap(), 2);
        assert!(table.history().is_empty());
        table.upsert_link(link(2, "eth0", false), t0);
        assert!(
            matches!(&table.history()[0], NetEvent::LinkDown { interface, .. } if interface == "eth0")
        );
        // Down again: no second event.
        table.upsert_link(link(2, "eth0", false), t0);
        assert_eq!(table.history().len(), 1);
        table.remove_address("10.0.0.1".parse().unwrap(), t0);
        assert!(
            matches!(&table.history()[1], NetEvent::AddressRemoved { interface, .. } if interface == "eth0")
        );
        // Unknown address: nothing.
        table.remove_address("10.9.9.9".parse().unwrap(), t0);
        assert_eq!(table.history().len(), 2);
    }

    #[test]
    fn replace_records_what_vanished_during_an_overrun() {
        let t0 = Instant::now();
        let mut table = Table::new();
        table.upsert_link(link(2, "eth0", true), t0);
        table.upsert_link(link(3, "eth1", true), t0);
        table.add_address("10.0.0.1".parse().unwrap(), 2);
        table.replace(vec![link(2, "eth0", true)], vec![], t0);
        assert_eq!(table.history().len(), 2, "{:?}", table.history());
        assert!(table.link(3).is_none());
        assert_eq!(table.holder(&"10.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn deleted_link_takes_its_addresses() {
        let t0 = Instant::now();
        let mut table = Table::new();
        table.upsert_link(link(2, "eth0", true), t0);
        table.add_address("fd00::1".parse().unwrap(), 2);
        table.remove_link(2, t0);
        assert_eq!(table.holder(&"fd00::1".parse().unwrap()), None);
        assert_eq!(table.name_of(2), "#2");
    }
}
