//! Wiring of the daemon: the events2 supervisor and the API servers, started
//! together and stopped together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::api::{self, ApiError, ApiState, Limits};
use crate::config::Config;
use crate::drbd::{
    run_command, supervise, wait_shutdown, Shared, SupervisorOptions, DEFAULT_COMMAND_TIMEOUT,
};
use crate::metrics::{parse_drbdadm_version, Exporter, Facts};

/// How often `drbdadm --version` is asked again while no module is loaded.
const VERSION_RETRY: Duration = Duration::from_secs(60);

/// How long stopping may take before the tasks are abandoned.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Listen(#[from] ApiError),
    #[error("cannot read a listener's address: {0}")]
    LocalAddr(std::io::Error),
}

/// A started daemon.
#[derive(Debug)]
pub struct Daemon {
    /// The addresses the API listens on (after fallbacks; real ports for `:0`).
    pub api_addrs: Vec<SocketAddr>,
    pub shared: Arc<Shared>,
    /// Renders `/metrics`.
    pub exporter: Arc<Exporter>,
    stop: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
    servers: Vec<JoinHandle<()>>,
}

impl Daemon {
    /// Binds the API addresses, then starts the supervisor and the servers.
    /// Must be called inside a tokio runtime.
    pub async fn start(config: &Config) -> Result<Self, DaemonError> {
        Self::start_with(config, SupervisorOptions::from_config(&config.drbd)).await
    }

    /// [`start`](Self::start) with explicit supervisor options (tests).
    pub async fn start_with(
        config: &Config,
        options: SupervisorOptions,
    ) -> Result<Self, DaemonError> {
        let listeners = api::bind(&config.api.listen).await?;
        let api_addrs = listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<Result<Vec<_>, _>>()
            .map_err(DaemonError::LocalAddr)?;
        let shared = Arc::new(Shared::new());
        let (stop, stopped) = watch::channel(false);
        info!(
            node = %config.node_name,
            drbdsetup = %options.drbdsetup.display(),
            "starting"
        );
        let supervisor = tokio::spawn(supervise(options, shared.clone(), stopped.clone()));
        let exporter = Arc::new(Exporter::new(Facts::of_this_build()));
        tokio::spawn(probe_drbd_versions(
            config.drbd.drbdadm.clone(),
            exporter.clone(),
            stopped.clone(),
        ));
        let router = api::router_with_metrics(
            ApiState {
                node_name: config.node_name.clone(),
                shared: shared.clone(),
            },
            exporter.clone(),
        );
        let servers = listeners
            .into_iter()
            .zip(&api_addrs)
            .map(|(listener, addr)| {
                info!(%addr, "API listening");
                api::serve(listener, router.clone(), Limits::default(), stopped.clone())
            })
            .collect();
        Ok(Self {
            api_addrs,
            shared,
            exporter,
            stop,
            supervisor,
            servers,
        })
    }

    /// Stops the supervisor (killing the events2 child) and the servers, and
    /// waits for them.
    pub async fn shutdown(self) {
        info!("shutting down");
        // Fails only if every receiver is gone, i.e. all tasks already ended.
        let _ = self.stop.send(true);
        let wait = async {
            match self.supervisor.await {
                Ok(()) => {}
                Err(e) => error!(error = %e, "events2 supervisor failed"),
            }
            for server in self.servers {
                if let Err(e) = server.await {
                    error!(error = %e, "API server failed");
                }
            }
        };
        if tokio::time::timeout(STOP_TIMEOUT, wait).await.is_err() {
            warn!("shutdown timed out");
        }
        info!("stopped");
    }
}

/// Asks `drbdadm --version` for `drbd_version{kmod,utils}`; again every
/// [`VERSION_RETRY`] while it fails or no module is loaded (it may be loaded
/// later).
async fn probe_drbd_versions(
    drbdadm: PathBuf,
    exporter: Arc<Exporter>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match run_command(&drbdadm, &["--version"], DEFAULT_COMMAND_TIMEOUT).await {
            Ok(output) => match parse_drbdadm_version(&output.stdout) {
                Ok(versions) => {
                    let loaded = versions.kmod.is_some();
                    info!(kmod = ?versions.kmod, utils = %versions.utils, "DRBD versions");
                    exporter.set_drbd_versions(Some(versions));
                    if loaded {
                        return;
                    }
                }
                Err(e) => warn!(error = %e, "cannot read DRBD versions"),
            },
            Err(e) => warn!(error = %e, "cannot read DRBD versions"),
        }
        tokio::select! {
            _ = tokio::time::sleep(VERSION_RETRY) => {}
            _ = wait_shutdown(&mut stop) => return,
        }
    }
}
