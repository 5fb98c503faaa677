//! Replication-network awareness: the links and addresses of this network
//! namespace (rtnetlink), the interface carrying each DRBD path, traffic
//! rates, and the cause of connection losses.
//!
//! - `table` — pure link/address table with the event history.
//! - `path` — path address parsing and address → interface mapping.
//! - `cause` — pure cause attribution.
//! - `tracker` — joins table and DRBD model into [`NetworkStatus`].
//! - `convert` — netlink messages to table types; `watch` — the driver.

pub mod cause;
pub mod convert;
pub mod path;
pub mod table;
pub mod tracker;
mod watch;

pub use cause::{attribute, Cause};
pub use tracker::{ConnectionNet, InterfaceStatus, NetworkStatus, PathStatus, WatcherStatus};
pub use watch::{watch_network, SharedNetwork, WatchError};
