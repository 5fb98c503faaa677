//! The DRBD simulator behind `drbd-sim`: a scenario-driven cluster that
//! stands in for the kernel module and drbd-utils on machines without DRBD.
//!
//! Pure parts: [`scenario`] (TOML + validation), [`cluster`] with
//! [`timeline`] and [`view`] (state and time), [`disk`] (I/O counters),
//! [`options`] (peer-device options). I/O at the edges: [`server`] (the
//! `serve` process), [`frontend`] (`drbdsetup`/`drbdadm` stand-ins), [`cli`].

pub mod cli;
pub mod cluster;
pub mod command;
mod counters;
mod devlinks;
pub mod disk;
pub mod events2_client;
pub mod frontend;
pub mod options;
pub mod plant;
pub mod plant_bridge;
pub mod protocol;
pub mod scale;
pub mod scenario;
mod scenario_check;
pub mod scenario_plant;
pub mod server;
pub mod show;
pub mod story;
mod timeline;
pub mod view;

#[cfg(test)]
mod cluster_tests;
