//! Starting the pressure tasks with the daemon.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::api::Limits;
use crate::config::Config;
use crate::runtime::CancellationToken;
use crate::runtime::Shared;
use crate::throttle::ThrottleConfig;

use super::api::{self, Access, PressureApi};
use super::config::{read_token, PressureAuth, TokenError};
use super::fetch::{plain_client, request_timeout, run_fetcher, PeerAuth, SharedPeers};
use super::sampler::{run_sampler, SharedReport};
use super::tls::{self, TlsError};
use super::PressureInput;

/// Why the pressure tasks cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("token: {0}")]
    Token(#[from] TokenError),
    #[error("mutual TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The started pressure tasks: what the throttle reads and how the route
/// is served.
#[derive(Debug)]
pub struct Started {
    pub input: PressureInput,
    /// `auth = "token"`: the route to merge into the API router.
    pub router: Option<axum::Router>,
    /// `auth = "mtls"`: the TLS listener's task (ends after `stop`).
    pub server: Option<JoinHandle<()>>,
}

/// Reads the token (or the TLS files, binding the TLS listener) and spawns
/// the sampler and the fetcher (`None` when `[pressure]` is disabled). Must
/// be called inside a tokio runtime.
pub fn start(
    config: &Config,
    shared: Arc<Shared>,
    throttle: watch::Receiver<ThrottleConfig>,
    remote: crate::linstor::policy::SharedRemotePolicies,
    stop: CancellationToken,
) -> Result<Option<Started>, StartError> {
    let pressure = &config.pressure;
    if !pressure.enabled {
        return Ok(None);
    }
    let timeout = request_timeout(pressure);
    let report = SharedReport::default();
    // Everything that can fail comes before any task is spawned.
    let (client, auth, router, server) = match (pressure.auth, &pressure.mtls) {
        (PressureAuth::Mtls, Some(files)) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(files)?);
            let client = tls::client(files, timeout)?;
            let listener = tls::bind(pressure.port)?;
            let router = api::router(PressureApi {
                report: report.clone(),
                access: Access::VerifiedClientCertificate,
            });
            info!(addr = ?listener.local_addr().ok(), "pressure: mutual TLS listening");
            let server = tls::serve(listener, router, acceptor, Limits::default(), stop.clone());
            (client, PeerAuth::Mtls, None, Some(server))
        }
        _ => {
            let Some(token_file) = pressure.token_file.as_ref() else {
                // Validation requires a token-file or the TLS files.
                return Ok(None);
            };
            let token: Arc<str> = read_token(token_file)?.into();
            let router = api::router(PressureApi {
                report: report.clone(),
                access: Access::Token(token.clone()),
            });
            let (client, auth) = match &pressure.token_ca_file {
                Some(ca_file) => (
                    super::fetch::token_tls_client(ca_file, timeout)?,
                    PeerAuth::TokenTls(token),
                ),
                None if pressure.allow_plain_http_token => {
                    (plain_client(timeout)?, PeerAuth::Token(token))
                }
                None => {
                    warn!("pressure: auth = \"token\" without ca-file: the token would cross plain HTTP, peers are not asked (set ca-file, or allow-plain-http-token = true)");
                    (plain_client(timeout)?, PeerAuth::TokenRefused)
                }
            };
            (client, auth, Some(router), None)
        }
    };
    let peers = SharedPeers::default();
    info!(port = pressure.port, auth = ?pressure.auth, interval = ?pressure.interval, stale_after = ?pressure.stale_after, overrides = pressure.peers.len(), "pressure: publishing and fetching");
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
        client,
        auth,
        shared,
        peers.clone(),
        stop,
    ));
    Ok(Some(Started {
        input: PressureInput {
            peers,
            stale_after: pressure.stale_after,
            report,
        },
        router,
        server,
    }))
}
