//! The DRBD simulator behind `drbd-sim`: a scenario-driven cluster that
//! stands in for the kernel module and drbd-utils on machines without DRBD,
//! and the benchmarks that run the daemon's throttle law against its plant
//! ([`bench`], `drbd-agent bench`, which runs `drbd-sim bench`).
//!
//! Pure parts: [`scenario`] (TOML + validation), [`cluster`] with
//! [`timeline`] and [`view`] (state and time), [`disk`] (I/O counters),
//! [`options`] (peer-device options). I/O at the edges: [`server`] (the
//! `serve` process), [`frontend`] (`drbdsetup`/`drbdadm` stand-ins), [`cli`].

#![forbid(unsafe_code)]

// The simulator prints and reads what drbd-model defines; the benchmarks
// drive the daemon's throttle law, configuration grammar and pressure
// combination (drbd-agent's library) on the plant.
use drbd_agent::{config, pressure, throttle};
use drbd_model::{diskstats, events2, state};

pub mod bench;
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
