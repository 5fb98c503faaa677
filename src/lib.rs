//! drbd-agent: a node-local daemon for DRBD storage nodes.
//!
//! Data flow (see README "Architecture"):
//! `drbdsetup events2` lines → [`events2::parse_line`] → [`state::Model::apply`] →
//! status API / metrics / throttle / LINSTOR reporter.
//!
//! The parser, the model and the formatter are pure; processes, sockets, files
//! and clocks live in [`drbd`], [`api`] and [`daemon`].
#![forbid(unsafe_code)]

// The pure core lives in its own crate (crates/drbd-model); its modules
// keep their paths here, `drbd_agent::events2` as before (diskstats adds
// the stat-file reader).
pub use drbd_model::{events2, state, units};

pub mod api;
pub mod assets;
pub(crate) mod backoff;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod diskstats;
pub mod drbd;
pub mod fuzz;
pub mod linstor;
pub mod metrics;
pub(crate) mod netlink;
pub mod pressure;
pub mod runtime;
pub mod service;
pub mod throttle;
pub mod top;
