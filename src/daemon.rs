//! Wiring of the daemon: the events2 supervisor, the resync throttle and the
//! API servers, started together and stopped together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::DropGuard;
use tracing::{error, info, warn};

use crate::api::{self, ApiError, ApiState, Limits, WebGate};
use crate::config::{restart_needed, Config, ConfigError};
use crate::drbd::{
    run_command, supervise_following, DrbdTools, Shared, SupervisorOptions, DEFAULT_COMMAND_TIMEOUT,
};
use crate::linstor::policy::SharedRemotePolicies;
use crate::linstor::{self, ReporterOptions, SharedLinstorStatus};
use crate::metrics::{parse_drbdadm_version, Exporter, Facts};
use crate::netlink::{watch_network, SharedNetwork};
use crate::runtime::CancellationToken;
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
    #[error("[pressure] {0}")]
    Pressure(#[from] crate::pressure::wire::StartError),
    #[error("[api] web-config: {0}")]
    WebConfig(#[from] api::WebConfigError),
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
    /// The LINSTOR client's state (`None`: `[linstor] enabled = false`).
    pub linstor: Option<SharedLinstorStatus>,
    /// The API's TLS and authentication (`[api] web-config`, reloadable).
    pub gate: Arc<WebGate>,
    /// The configuration in force (the throttle part live, the rest as started).
    config: Config,
    /// New `[throttle]` sections for the throttle loop.
    throttle_config: watch::Sender<ThrottleConfig>,
    /// The drbdsetup program of the events2 supervisor (reloadable).
    drbdsetup: watch::Sender<PathBuf>,
    /// drbdsetup and drbdadm for the throttle and the version probe (reloadable).
    tools: watch::Sender<DrbdTools>,
    /// Cancels every task's token when dropped: on [`Daemon::shutdown`],
    /// and as well if the daemon is dropped without it.
    stop: DropGuard,
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
        let gate = Arc::new(WebGate::load(
            config.api.web_config.as_deref(),
            config.api.status,
        )?);
        let listeners = api::bind(&config.api.listen).await?;
        let api_addrs = listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<Result<Vec<_>, _>>()
            .map_err(DaemonError::LocalAddr)?;
        let shared = Arc::new(Shared::new());
        // A start that fails half way (an early return) drops the guard
        // and so stops the tasks already started.
        let stopped = CancellationToken::new();
        let stop = stopped.clone().drop_guard();
        info!(
            node = %config.node_name,
            drbdsetup = %options.drbdsetup.display(),
            "starting"
        );
        let (drbdsetup, programs) = watch::channel(options.drbdsetup.clone());
        let (tools, tool_updates) = watch::channel(DrbdTools::new(
            options.drbdsetup.clone(),
            config.drbd.drbdadm.clone(),
        ));
        let supervisor = tokio::spawn(supervise_following(
            options,
            shared.clone(),
            stopped.clone(),
            programs,
        ));
        let throttle = SharedThrottleStatus::default();
        let network = SharedNetwork::default();
        tokio::spawn(watch_network(
            shared.clone(),
            network.clone(),
            stopped.clone(),
        ));
        // Throttle policies from the LINSTOR controller (empty without one).
        let remote_policies = SharedRemotePolicies::default();
        let (throttle_config, throttle_configs) = watch::channel(config.throttle.clone());
        let pressure = match crate::pressure::wire::start(
            config,
            shared.clone(),
            throttle_configs.clone(),
            remote_policies.clone(),
            stopped.clone(),
        ) {
            Ok(p) => p,
            Err(e) => {
                // Dropping `stop` stops the supervisor already started.
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
            Actuator::following(tool_updates.clone()),
            throttle.clone(),
        )
        .with_network(network.clone())
        .with_remote_policies(remote_policies.clone());
        if let Some(p) = &pressure {
            throttler = throttler.with_pressure(p.input.clone());
        }
        let throttler = tokio::spawn(throttler.run_reloadable(
            shared.clone(),
            stopped.clone(),
            Some(throttle_configs),
        ));
        let linstor_status = SharedLinstorStatus::default();
        let exporter = Exporter::new(Facts::of_this_build())
            .with_throttle(throttle.clone())
            .with_network(network.clone())
            .with_api(gate.counters.clone())
            .with_enum_series(config.metrics.enum_series);
        let exporter = Arc::new(if config.linstor.enabled {
            tokio::spawn(linstor::run(
                ReporterOptions {
                    node_name: config.node_name.clone(),
                    config: config.linstor.clone(),
                    policies: remote_policies.clone(),
                },
                shared.clone(),
                throttle.clone(),
                linstor_status.clone(),
                stopped.clone(),
            ));
            exporter.with_linstor(linstor_status.clone())
        } else {
            exporter
        });
        tokio::spawn(exporter.clone().keep_fresh(shared.clone(), stopped.clone()));
        tokio::spawn(probe_drbd_versions(
            tool_updates,
            exporter.clone(),
            stopped.clone(),
        ));
        let router = api::router_with_metrics(
            ApiState {
                node_name: config.node_name.clone(),
                shared: shared.clone(),
                throttle: throttle.clone(),
                linstor: Some(linstor_status.clone()),
            },
            exporter.clone(),
        )
        .layer(axum::Extension(network));
        let (router, pressure_server) = match pressure {
            Some(p) => match p.router {
                Some(route) => (router.merge(route), p.server),
                None => (router, p.server),
            },
            None => (router, None),
        };
        let router = router.layer(axum::middleware::from_fn_with_state(
            gate.clone(),
            api::guard,
        ));
        let mut servers: Vec<_> = listeners
            .into_iter()
            .zip(&api_addrs)
            .map(|(listener, addr)| {
                info!(%addr, tls = gate.config().tls.is_some(), "API listening");
                api::serve_gated(
                    listener,
                    router.clone(),
                    Limits::default(),
                    stopped.clone(),
                    gate.clone(),
                )
            })
            .collect();
        servers.extend(pressure_server);
        Ok(Self {
            api_addrs,
            shared,
            exporter,
            throttle,
            linstor: config.linstor.enabled.then_some(linstor_status),
            gate,
            config: config.clone(),
            throttle_config,
            drbdsetup,
            tools,
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
        self.switch_tools(&new);
        // The web config file is read again even under the same name (new
        // certificates, new users); a bad one keeps the one in force.
        let web_config_ok = match self.gate.reload(new.api.web_config.as_deref()) {
            Ok(()) => {
                self.config.api.web_config = new.api.web_config.clone();
                true
            }
            Err(e) => {
                api::log_reload_failure(&e);
                false
            }
        };
        info!(files = ?new.sources, throttle_changed, web_config_ok, restart_needed = restart.len(), "configuration reloaded");
        self.config.throttle = new.throttle;
        self.config.sources = new.sources;
        self.exporter.record_reload(web_config_ok);
        restart
    }

    /// A reload switched `[drbd] drbdsetup` or `drbdadm`: the events2
    /// stream restarts with the new drbdsetup, the throttle and the version
    /// probe use the new tools from their next command on.
    fn switch_tools(&mut self, new: &Config) {
        let old = &self.config.drbd;
        if new.drbd.drbdsetup == old.drbdsetup && new.drbd.drbdadm == old.drbdadm {
            return;
        }
        info!(
            drbdsetup = %new.drbd.drbdsetup.display(),
            drbdadm = %new.drbd.drbdadm.display(),
            "DRBD tools changed"
        );
        if new.drbd.drbdsetup != old.drbdsetup {
            self.drbdsetup.send_replace(new.drbd.drbdsetup.clone());
        }
        self.tools.send_replace(DrbdTools::new(
            new.drbd.drbdsetup.clone(),
            new.drbd.drbdadm.clone(),
        ));
        self.config.drbd.drbdsetup = new.drbd.drbdsetup.clone();
        self.config.drbd.drbdadm = new.drbd.drbdadm.clone();
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
        drop(self.stop);
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
/// later), and whenever a reload switches drbdadm.
async fn probe_drbd_versions(
    mut tools: watch::Receiver<DrbdTools>,
    exporter: Arc<Exporter>,
    stop: CancellationToken,
) {
    loop {
        let drbdadm = tools.borrow_and_update().drbdadm.clone();
        let mut loaded = false;
        match run_command(&drbdadm, &["--version"], DEFAULT_COMMAND_TIMEOUT).await {
            Ok(output) => match parse_drbdadm_version(&output.stdout) {
                Ok(versions) => {
                    loaded = versions.kmod.is_some();
                    info!(kmod = ?versions.kmod, utils = %versions.utils, "DRBD versions");
                    exporter.set_drbd_versions(Some(versions));
                }
                Err(e) => warn!(error = %e, "cannot read DRBD versions"),
            },
            Err(e) => warn!(error = %e, "cannot read DRBD versions"),
        }
        // Once loaded, only a new drbdadm is a reason to ask again.
        let retry = async {
            if loaded {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(VERSION_RETRY).await;
        };
        tokio::select! {
            _ = retry => {}
            Ok(()) = tools.changed() => {}
            _ = stop.cancelled() => return,
        }
    }
}
