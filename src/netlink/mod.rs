//! Replication-network awareness: the links and addresses of this network
//! namespace (rtnetlink), the interface carrying each DRBD path, traffic
//! rates, and the cause of connection losses.
//!
//! - `table` — pure link/address table with the event history.
//! - `path` — path address parsing and address → interface mapping.
//! - `cause` — pure cause attribution.
//! - `tracker` — joins table and DRBD model into [`NetworkStatus`].
//! - `convert` — netlink messages to table types; `watch` — the driver.

pub(crate) mod cause;
pub(crate) mod convert;
pub(crate) mod path;
pub(crate) mod table;
pub(crate) mod tracker;
mod watch;

pub(crate) use cause::Cause;
pub(crate) use tracker::{InterfaceStatus, NetworkStatus};
pub(crate) use watch::{watch_network, SharedNetwork};
