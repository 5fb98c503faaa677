//! Starting the pressure tasks with the daemon.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::info;

use crate::config::Config;
use crate::drbd::Shared;
use crate::throttle::ThrottleConfig;

use super::api::{self, PressureApi};
use super::config::{read_token, TokenError};
use super::fetch::{run_fetcher, SharedPeers};
use super::sampler::{run_sampler, SharedReport};
use super::PressureInput;

/// The started pressure tasks: what the throttle reads and the route to
/// serve.
#[derive(Debug)]
pub struct Started {
    pub input: PressureInput,
    pub router: axum::Router,
}

/// Reads the token and spawns the sampler and the fetcher (`None` when
/// `[pressure]` is disabled). Must be called inside a tokio runtime.
pub fn start(
    config: &Config,
    shared: Arc<Shared>,
    throttle: watch::Receiver<ThrottleConfig>,
    remote: crate::linstor::policy::SharedRemotePolicies,
    stop: watch::Receiver<bool>,
) -> Result<Option<Started>, TokenError> {
    let pressure = &config.pressure;
    let Some(token_file) = pressure.token_file.as_ref().filter(|_| pressure.enabled) else {
        return Ok(None);
    };
    let token = read_token(token_file)?;
    let report = SharedReport::default();
    let peers = SharedPeers::default();
    info!(port = pressure.port, interval = ?pressure.interval, stale_after = ?pressure.stale_after, overrides = pressure.peers.len(), "pressure: publishing and fetching");
    tokio::spawn(run_sampler(
        config.node_name.clone(),
        config.drbd.sysfs_root.clone(),
        pressure.interval,
        super::sampler::Policies { throttle, remote },
        shared.clone(),
        report.clone(),
        stop.clone(),
    ));
    tokio::spawn(run_fetcher(
        pressure.clone(),
        token.clone(),
        shared,
        peers.clone(),
        stop,
    ));
    Ok(Some(Started {
        input: PressureInput {
            peers,
            stale_after: pressure.stale_after,
            report: report.clone(),
        },
        router: api::router(PressureApi {
            report,
            token: token.into(),
        }),
    }))
}
