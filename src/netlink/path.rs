//! DRBD path addresses (`ipv4:10.0.0.1:7000`, `ipv6:[fd00::1]:7000`,
//! `ipv6:[fe80::1%eth0]:7000`) and the interface that carries them.

use std::net::IpAddr;

use serde::Serialize;

use super::table::Table;

/// Why a path address could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AddressError {
    #[error("path address '{0}': no address family prefix (ipv4:/ipv6:)")]
    NoFamily(String),
    #[error("path address '{0}': address family not supported (only ipv4, ipv6)")]
    Family(String),
    #[error("path address '{0}': cannot read the IP address")]
    Ip(String),
}

/// A path's local endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub ip: IpAddr,
    /// The IPv6 scope (`%eth0` or `%2`), as written.
    pub scope: Option<String>,
}

/// Reads `ipv4:A.B.C.D:PORT` or `ipv6:[ADDR%SCOPE]:PORT` (port optional).
pub(crate) fn parse_endpoint(text: &str) -> Result<Endpoint, AddressError> {
    let (family, rest) = text
        .split_once(':')
        .ok_or_else(|| AddressError::NoFamily(text.to_owned()))?;
    match family {
        "ipv4" => {
            let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
            let ip = host
                .parse::<std::net::Ipv4Addr>()
                .map_err(|_| AddressError::Ip(text.to_owned()))?;
            Ok(Endpoint {
                ip: IpAddr::V4(ip),
                scope: None,
            })
        }
        "ipv6" => {
            let host = match rest.strip_prefix('[') {
                Some(inner) => inner
                    .split_once(']')
                    .map(|(h, _)| h)
                    .ok_or_else(|| AddressError::Ip(text.to_owned()))?,
                None => rest,
            };
            let (addr, scope) = match host.split_once('%') {
                Some((a, s)) if !s.is_empty() => (a, Some(s.to_owned())),
                Some(_) => return Err(AddressError::Ip(text.to_owned())),
                None => (host, None),
            };
            let ip = addr
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| AddressError::Ip(text.to_owned()))?;
            Ok(Endpoint {
                ip: IpAddr::V6(ip),
                scope,
            })
        }
        _ => Err(AddressError::Family(text.to_owned())),
    }
}

/// The interface carrying a path, as the status API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Carrier {
    pub interface: String,
    pub index: u32,
    /// Up with carrier.
    pub up: bool,
    /// The devices below it, where the kernel names them (VLAN lower
    /// device, bond/bridge ports), outermost first.
    pub lower: Vec<String>,
}

/// Why a path has no interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unmapped {
    /// The address is on no interface of this namespace.
    NoInterface,
    /// The address could not be read.
    BadAddress,
}

/// Maps `endpoint` to the interface holding its address. A link-local IPv6
/// address with a scope only counts when the holder matches the scope.
pub(crate) fn map_endpoint(table: &Table, endpoint: &Endpoint) -> Result<Carrier, Unmapped> {
    let index = table.holder(&endpoint.ip).ok_or(Unmapped::NoInterface)?;
    if let Some(scope) = &endpoint.scope {
        let matches = table.link(index).is_some_and(|l| &l.name == scope)
            || scope.parse::<u32>().ok() == Some(index);
        if !matches {
            return Err(Unmapped::NoInterface);
        }
    }
    let link = table.link(index);
    Ok(Carrier {
        interface: table.name_of(index),
        index,
        up: link.is_some_and(|l| l.carries()),
        lower: lower_devices(table, index),
    })
}

/// The lower devices of `index`: its `IFLA_LINK` (VLAN) chain and the links
/// enslaved to any device of that chain (bond/bridge ports). Bounded
/// against loops.
fn lower_devices(table: &Table, index: u32) -> Vec<String> {
    let mut chain = vec![index];
    let mut current = index;
    for _ in 0..8 {
        let Some(lower) = table.link(current).and_then(|l| l.lower) else {
            break;
        };
        // A veth's IFLA_LINK names its peer; a link whose lower is itself,
        // unknown here, or points back is no lower device.
        let Some(lower_link) = table.link(lower) else {
            break;
        };
        if chain.contains(&lower) || lower_link.lower == Some(current) {
            break;
        }
        chain.push(lower);
        current = lower;
    }
    let mut out: Vec<String> = chain[1..].iter().map(|i| table.name_of(*i)).collect();
    for device in &chain {
        out.extend(
            table
                .links()
                .filter(|l| l.master == Some(*device))
                .map(|l| l.name.clone()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::table::link;
    use super::*;

    #[test]
    fn parses_the_events2_forms() {
        assert_eq!(
            parse_endpoint("ipv4:10.0.0.1:7000").unwrap().ip,
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        let e = parse_endpoint("ipv6:[fd00::1]:7000").unwrap();
        assert_eq!(e.ip, "fd00::1".parse::<IpAddr>().unwrap());
        assert_eq!(e.scope, None);
        let e = parse_endpoint("ipv6:[fe80::1%eth0]:7000").unwrap();
        assert_eq!(e.ip, "fe80::1".parse::<IpAddr>().unwrap());
        assert_eq!(e.scope.as_deref(), Some("eth0"));
    }

    #[test]
    fn rejects_bad_addresses_clearly() {
        assert!(matches!(
            parse_endpoint("10.0.0.1:7000"),
            Err(AddressError::Family(_))
        ));
        assert!(matches!(
            parse_endpoint("nothing"),
            Err(AddressError::NoFamily(_))
        ));
        assert!(matches!(
            parse_endpoint("ipv4:10.0.0:7000"),
            Err(AddressError::Ip(_))
        ));
        assert!(matches!(
            parse_endpoint("ipv6:[fd00::1:7000"),
            Err(AddressError::Ip(_))
        ));
        assert!(matches!(
            parse_endpoint("ipv6:[fe80::1%]:7000"),
            Err(AddressError::Ip(_))
        ));
        assert!(matches!(
            parse_endpoint("ssocks:10.0.0.1:7000"),
            Err(AddressError::Family(_))
        ));
    }

    #[test]
    fn maps_vlan_with_lower_device_and_bond_ports() {
        let t0 = Instant::now();
        let mut table = Table::new();
        table.upsert_link(link(2, "eth0", true), t0);
        table.upsert_link(link(3, "eth1", true), t0);
        let mut bond = link(4, "bond0", true);
        bond.lower = None;
        table.upsert_link(bond, t0);
        for port in [2, 3] {
            let mut l = table.link(port).unwrap().clone();
            l.master = Some(4);
            table.upsert_link(l, t0);
        }
        let mut vlan = link(5, "bond0.100", true);
        vlan.lower = Some(4);
        table.upsert_link(vlan, t0);
        table.add_address("10.0.0.1".parse().unwrap(), 5);
        let carrier = map_endpoint(&table, &parse_endpoint("ipv4:10.0.0.1:7000").unwrap()).unwrap();
        assert_eq!(carrier.interface, "bond0.100");
        assert!(carrier.up);
        assert_eq!(carrier.lower, vec!["bond0", "eth0", "eth1"]);
    }

    #[test]
    fn unknown_address_and_wrong_scope_are_unmapped() {
        let t0 = Instant::now();
        let mut table = Table::new();
        table.upsert_link(link(2, "eth0", true), t0);
        table.add_address("fe80::1".parse().unwrap(), 2);
        let ok = map_endpoint(&table, &parse_endpoint("ipv6:[fe80::1%eth0]:7000").unwrap());
        assert_eq!(ok.unwrap().interface, "eth0");
        let by_index = map_endpoint(&table, &parse_endpoint("ipv6:[fe80::1%2]:7000").unwrap());
        assert!(by_index.is_ok());
        let wrong = map_endpoint(&table, &parse_endpoint("ipv6:[fe80::1%eth9]:7000").unwrap());
        assert_eq!(wrong, Err(Unmapped::NoInterface));
        let none = map_endpoint(&table, &parse_endpoint("ipv4:192.0.2.1:7000").unwrap());
        assert_eq!(none, Err(Unmapped::NoInterface));
    }

    #[test]
    fn veth_peer_is_no_lower_device() {
        let t0 = Instant::now();
        let mut table = Table::new();
        let mut a = link(2, "va", true);
        a.lower = Some(3);
        let mut b = link(3, "vb", true);
        b.lower = Some(2);
        table.upsert_link(a, t0);
        table.upsert_link(b, t0);
        table.add_address("10.0.0.1".parse().unwrap(), 2);
        let c = map_endpoint(&table, &parse_endpoint("ipv4:10.0.0.1:7000").unwrap()).unwrap();
        assert!(c.lower.is_empty(), "{:?}", c.lower);
    }
}
