//! drbd-agent: a node-local daemon for DRBD storage nodes.
//!
//! Data flow (see README "Architecture"):
//! `drbdsetup events2` lines → [`events2::parse_line`] → [`state::Model::apply`] →
//! status API / metrics / throttle / LINSTOR reporter.
//!
//! The parser, the model and the formatter are pure; processes, sockets, files
//! and clocks live in [`drbd`], [`api`] and [`daemon`].
#![forbid(unsafe_code)]

pub mod api;
pub mod assets;
pub mod backoff;
pub mod bench;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod diskstats;
pub mod drbd;
pub mod events2;
pub mod fuzz;
pub mod linstor;
pub mod metrics;
pub mod netlink;
pub mod pressure;
pub mod service;
pub mod sim;
pub mod state;
pub mod throttle;
pub mod top;
