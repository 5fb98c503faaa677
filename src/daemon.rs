//! Wiring of the daemon: the events2 supervisor, the resync throttle and the
//! API servers, started together and stopped together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::api::{self, ApiError, ApiState, Limits};
use crate::config::{restart_needed, Config, ConfigError};
use crate::drbd::{
    run_command, supervise, wait_shutdown, DrbdTools, Shared, SupervisorOptions,
    DEFAULT_COMMAND_TIMEOUT,
};
use crate::metrics::{parse_drbdadm_version, Exporter, Facts};
use crate::throttle::{Actuator, SharedThrottleStatus, ThrottleConfig, ThrottleOptions, Throttler};

/// How often `drbdadm --version` is asked again while no module is loaded.
const VERSION_RETRY: Duration = Duration::from_secs(60);

/// The throttle reads the options back every this many intervals.
const READBACK_EVERY: u32 = 5;

/// How long stopping may take before the tasks are abandoned.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Listen(#[from] ApiError),
    #[error("cannot read a listener's address: {0}")]
    LocalAddr(std::io::Error),
    #[error("[pressure] token: {0}")]
    Pressure(#[from] crate::pressure::config::TokenError),
}

/// A started daemon.
#[derive(Debug)]
pub struct Daemon {
    /// The addresses the API listens on (after fallbacks; real ports for `:0`).
    pub api_addrs: Vec<SocketAddr>,
    pub shared: Arc<Shared>,
    /// Renders `/metrics`.
    pub exporter: Arc<Exporter>,
    /// The resync throttle's state (rates set, reverts, failures).
    pub throttle: SharedThrottleStatus,
    /// The configuration in force (the throttle part live, the rest as started).
    config: Config,
    /// New `[throttle]` sections for the throttle loop.
    throttle_config: watch::Sender<ThrottleConfig>,
    stop: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
    throttler: JoinHandle<()>,
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
        let drbdsetup = options.drbdsetup.clone();
        let supervisor = tokio::spawn(supervise(options, shared.clone(), stopped.clone()));
        let throttle = SharedThrottleStatus::default();
        let (throttle_config, throttle_configs) = watch::channel(config.throttle.clone());
        let pressure = match crate::pressure::wire::start(
            config,
            shared.clone(),
            throttle_configs.clone(),
            stopped.clone(),
        ) {
            Ok(p) => p,
            Err(e) => {
                // Stops the supervisor already started.
                let _ = stop.send(true);
                return Err(e.into());
            }
        };
        let mut throttler = Throttler::new(
            ThrottleOptions {
                node_name: config.node_name.clone(),
                config: config.throttle.clone(),
                sysfs_root: config.drbd.sysfs_root.clone(),
                state_directory: config.state.directory.clone(),
                readback_every: READBACK_EVERY,
            },
            Actuator::new(DrbdTools::new(drbdsetup, config.drbd.drbdadm.clone())),
            throttle.clone(),
        );
        if let Some(p) = &pressure {
            throttler = throttler.with_pressure(p.input.clone());
        }
        let throttler = tokio::spawn(throttler.run_reloadable(
            shared.clone(),
            stopped.clone(),
            Some(throttle_configs),
        ));
        let exporter =
            Arc::new(Exporter::new(Facts::of_this_build()).with_throttle(throttle.clone()));
        tokio::spawn(exporter.clone().keep_fresh(shared.clone(), stopped.clone()));
        tokio::spawn(probe_drbd_versions(
            config.drbd.drbdadm.clone(),
            exporter.clone(),
            stopped.clone(),
        ));
        let router = api::router_with_metrics(
            ApiState {
                node_name: config.node_name.clone(),
                shared: shared.clone(),
                throttle: throttle.clone(),
            },
            exporter.clone(),
        );
        let router = match pressure {
            Some(p) => router.merge(p.router),
            None => router,
        };
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
            throttle,
            config: config.clone(),
            throttle_config,
            stop,
            supervisor,
            throttler,
            servers,
        })
    }

    /// A reload read `new` (valid): counts a successful reload, hands the
    /// `[throttle]` section to the throttle loop, and logs each changed key
    /// that needs a restart (those keep their old values). Returns them.
    pub fn reload(&mut self, new: Config) -> Vec<&'static str> {
        let restart = restart_needed(&self.config, &new);
        for key in &restart {
            warn!(key = %key, "configuration changed, needs a restart to take effect");
        }
        let throttle_changed = new.throttle != self.config.throttle;
        if throttle_changed {
            // Fails only if the throttle loop has ended (shutting down).
            if self.throttle_config.send(new.throttle.clone()).is_err() {
                warn!("throttle loop gone, new [throttle] not applied");
            }
        }
        info!(files = ?new.sources, throttle_changed, restart_needed = restart.len(), "configuration reloaded");
        self.config.throttle = new.throttle;
        self.config.sources = new.sources;
        self.exporter.record_reload(true);
        restart
    }

    /// A reload could not read a valid configuration: counts a failed
    /// reload; the configuration in force stays.
    pub fn reload_failed(&self, error: &ConfigError) {
        error!(error = %error, "configuration reload failed, keeping the running configuration");
        self.exporter.record_reload(false);
    }

    /// Stops the supervisor (killing the events2 child) and the servers, and
    /// waits for them.
    pub async fn shutdown(self) {
        info!("shutting down");
        // Fails only if every receiver is gone, i.e. all tasks already ended.
        let _ = self.stop.send(true);
        let wait = async {
            // The throttle restores the journaled options before it ends.
            if let Err(e) = self.throttler.await {
                error!(error = %e, "throttle loop failed");
            }
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
