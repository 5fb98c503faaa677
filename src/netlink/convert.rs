//! From netlink-packet-route messages to the table's plain types.

use std::net::IpAddr;

use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};

use super::table::{Link, LinkStats};

/// A link message as a [`Link`]; `None` without a name (never from a
/// well-formed kernel message).
pub(crate) fn link_of(message: &LinkMessage) -> Option<Link> {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        admin_up: message.header.flags.contains(LinkFlags::Up),
        carrier: message.header.flags.contains(LinkFlags::LowerUp),
        oper_state: "unknown".to_owned(),
        mtu: None,
        lower: None,
        master: None,
        stats: None,
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::Carrier(c) => link.carrier = *c != 0,
            LinkAttribute::OperState(state) => {
                link.oper_state = state.to_string().to_ascii_lowercase();
            }
            LinkAttribute::Mtu(mtu) => link.mtu = Some(*mtu),
            LinkAttribute::Link(lower) if *lower != 0 => link.lower = Some(*lower),
            LinkAttribute::Controller(master) if *master != 0 => link.master = Some(*master),
            LinkAttribute::Stats64(s) => {
                link.stats = Some(LinkStats {
                    rx_bytes: s.rx_bytes,
                    tx_bytes: s.tx_bytes,
                    rx_errors: s.rx_errors,
                    tx_errors: s.tx_errors,
                });
            }
            _ => {}
        }
    }
    (!link.name.is_empty()).then_some(link)
}

/// The local address of an address message and its interface index.
pub(crate) fn address_of(message: &AddressMessage) -> Option<(IpAddr, u32)> {
    let mut address = None;
    let mut local = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    // IFA_LOCAL is the local address; IFA_ADDRESS is the peer's on
    // point-to-point links and the local one otherwise (always for IPv6).
    local.or(address).map(|ip| (ip, message.header.index))
}

/// The link speed in bytes/s from sysfs (`/sys/class/net/NAME/speed`, in
/// Mbit/s; unknown or -1 for virtual devices without one).
pub(crate) fn link_speed(name: &str) -> Option<f64> {
    if name.contains('/') || name.starts_with('.') {
        return None;
    }
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/speed")).ok()?;
    let mbit: i64 = text.trim().parse().ok()?;
    (mbit > 0).then(|| mbit as f64 * 1_000_000.0 / 8.0)
}
