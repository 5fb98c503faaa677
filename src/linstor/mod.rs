//! LINSTOR: report what the controller does not know to its key-value
//! store, and (later) take resync policy from its properties.
//!
//! - `controllers` — where the controllers are (config, `LS_CONTROLLERS`,
//!   `linstor-client.conf`).
//! - `apicallrc` — decoding the controller's answers to writes.
//! - `report` — the key-value layout and the batch of changes (pure).
//! - `policy` — throttle settings from `Aux/drbd-agent/...` properties of
//!   resource groups and definitions, and their precedence (pure).
//!
//! Work in progress (issue 5): the HTTP client, failover, the report loop,
//! policy from `Aux/drbd-agent/...` properties. Nothing here runs yet.

pub mod apicallrc;
pub mod controllers;
pub mod policy;
pub mod report;
