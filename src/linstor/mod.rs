//! LINSTOR: report what the controller does not know to its key-value
//! store, and take resync policy from its properties.
//!
//! - `controllers` — where the controllers are (config, `LS_CONTROLLERS`,
//!   `linstor-client.conf`).
//! - `apicallrc` — decoding the controller's answers to writes.
//! - `report` — the key-value layout and the batch of changes (pure).
//! - `policy` — throttle settings from `Aux/drbd-agent/...` properties of
//!   resource groups and definitions, and their precedence (pure).
//! - `backoff` — the wait between attempts while no controller answers (pure).
//! - `client` — REST over HTTP/HTTPS, failover between controllers.
//! - `status` — what `/v1/status` and the metrics show.
//! - `runner` — the report loop.
//! - `policy_fetch` — the policy refresh (reads resource groups and
//!   definitions every `policy-interval`).

pub mod apicallrc;
pub mod client;
pub mod controllers;
pub mod policy;
pub mod policy_fetch;
pub mod report;
pub mod runner;
pub mod status;

pub use client::{Client, RequestError, SetupError};
pub use runner::{run, ReporterOptions};
pub use status::{LinstorStatus, NodeCheck, SharedLinstorStatus};
