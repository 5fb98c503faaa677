//! Cause attribution: why a connection left `Connected`, judged from the
//! network events just before (a pure function of the history).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::table::NetEvent;

/// How long before a connection loss a network event still explains it.
pub(crate) const ATTRIBUTION_WINDOW: Duration = Duration::from_secs(10);

/// Why a connection was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    LinkDown,
    AddressRemoved,
    Unknown,
}

impl Cause {
    pub const ALL: [Cause; 3] = [Cause::LinkDown, Cause::AddressRemoved, Cause::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::LinkDown => "link-down",
            Cause::AddressRemoved => "address-removed",
            Cause::Unknown => "unknown",
        }
    }
}

/// What the connection's paths ran over when it was last connected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PathsSeen {
    /// The interfaces carrying its paths (and their lower devices).
    pub interfaces: Vec<String>,
    /// The local addresses of its paths.
    pub addresses: Vec<IpAddr>,
}

/// The verdict: the cause and the interface it happened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attribution {
    pub cause: Cause,
    pub interface: Option<String>,
}

/// The cause of a loss at `lost_at`, from the network events within
/// `window` before it (or shortly after, events may be read late: up to
/// one second): a carrying interface (or a lower device) that went down
/// comes first; else the removal of one of the paths' own addresses (a
/// link set down also drops its IPv6 addresses, which must not hide the
/// link-down); else unknown. Among events of one kind the latest wins.
pub(crate) fn attribute(
    history: &[NetEvent],
    paths: &PathsSeen,
    lost_at: Instant,
    window: Duration,
) -> Attribution {
    let grace = Duration::from_secs(1);
    let relevant = history.iter().rev().filter(|e| {
        let at = e.at();
        let in_window = match lost_at.checked_duration_since(at) {
            Some(before) => before <= window,
            None => at.duration_since(lost_at) <= grace,
        };
        in_window
            && match e {
                NetEvent::LinkDown { interface, .. } => paths.interfaces.contains(interface),
                NetEvent::AddressRemoved { address, .. } => paths.addresses.contains(address),
            }
    });
    let (downs, removals): (Vec<&NetEvent>, Vec<&NetEvent>) =
        relevant.partition(|e| matches!(e, NetEvent::LinkDown { .. }));
    let chosen = downs
        .into_iter()
        .max_by_key(|e| e.at())
        .or_else(|| removals.into_iter().max_by_key(|e| e.at()));
    match chosen {
        Some(NetEvent::LinkDown { interface, .. }) => Attribution {
            cause: Cause::LinkDown,
            interface: Some(interface.clone()),
        },
        Some(NetEvent::AddressRemoved { interface, .. }) => Attribution {
            cause: Cause::AddressRemoved,
            interface: Some(interface.clone()),
        },
        None => Attribution {
            cause: Cause::Unknown,
            interface: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen() -> PathsSeen {
        PathsSeen {
            interfaces: vec!["eth0".into(), "bond0".into()],
            addresses: vec!["10.0.0.1".parse().unwrap()],
        }
    }

    #[test]
    fn link_down_shortly_before_is_the_cause() {
        let t0 = Instant::now();
        let history = vec![NetEvent::LinkDown {
            interface: "eth0".into(),
            at: t0,
        }];
        let a = attribute(
            &history,
            &seen(),
            t0 + Duration::from_secs(3),
            ATTRIBUTION_WINDOW,
        );
        assert_eq!(a.cause, Cause::LinkDown);
        assert_eq!(a.interface.as_deref(), Some("eth0"));
    }

    #[test]
    fn old_or_foreign_events_do_not_count() {
        let t0 = Instant::now();
        let history = vec![
            NetEvent::LinkDown {
                interface: "eth0".into(),
                at: t0,
            },
            NetEvent::LinkDown {
                interface: "eth9".into(),
                at: t0 + Duration::from_secs(30),
            },
        ];
        let a = attribute(
            &history,
            &seen(),
            t0 + Duration::from_secs(31),
            ATTRIBUTION_WINDOW,
        );
        assert_eq!(a.cause, Cause::Unknown);
        assert_eq!(a.interface, None);
    }

    #[test]
    fn address_removed_counts_by_address_only() {
        let t0 = Instant::now();
        let history = vec![
            NetEvent::AddressRemoved {
                address: "fe80::1".parse().unwrap(),
                interface: "eth0".into(),
                at: t0 + Duration::from_secs(1),
            },
            NetEvent::AddressRemoved {
                address: "10.0.0.1".parse().unwrap(),
                interface: "other".into(),
                at: t0,
            },
        ];
        let a = attribute(
            &history,
            &seen(),
            t0 + Duration::from_secs(2),
            ATTRIBUTION_WINDOW,
        );
        assert_eq!(a.cause, Cause::AddressRemoved);
        assert_eq!(a.interface.as_deref(), Some("other"));
    }

    #[test]
    fn link_down_beats_the_address_removals_it_causes() {
        let t0 = Instant::now();
        let history = vec![
            NetEvent::LinkDown {
                interface: "bond0".into(),
                at: t0,
            },
            NetEvent::AddressRemoved {
                address: "10.0.0.1".parse().unwrap(),
                interface: "bond0".into(),
                at: t0 + Duration::from_secs(1),
            },
        ];
        let a = attribute(
            &history,
            &seen(),
            t0 + Duration::from_secs(2),
            ATTRIBUTION_WINDOW,
        );
        assert_eq!(a.cause, Cause::LinkDown);
        assert_eq!(a.interface.as_deref(), Some("bond0"));
    }

    #[test]
    fn an_event_read_just_after_the_loss_still_counts() {
        let t0 = Instant::now();
        let history = vec![NetEvent::LinkDown {
            interface: "eth0".into(),
            at: t0 + Duration::from_millis(500),
        }];
        assert_eq!(
            attribute(&history, &seen(), t0, ATTRIBUTION_WINDOW).cause,
            Cause::LinkDown
        );
        let late = vec![NetEvent::LinkDown {
            interface: "eth0".into(),
            at: t0 + Duration::from_secs(5),
        }];
        assert_eq!(
            attribute(&late, &seen(), t0, ATTRIBUTION_WINDOW).cause,
            Cause::Unknown
        );
    }

    #[test]
    fn empty_history_is_unknown() {
        let a = attribute(
            &[],
            &PathsSeen::default(),
            Instant::now(),
            ATTRIBUTION_WINDOW,
        );
        assert_eq!(a.cause, Cause::Unknown);
    }
}
