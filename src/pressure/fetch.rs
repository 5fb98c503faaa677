//! The fetching side: once per interval, one `GET /v1/pressure` per peer
//! node that matters (the nodes this node syncs from, and the Primaries),
//! all resources in one answer, bounded by a timeout; results land in a
//! shared map read by the throttle loop.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{info, warn};

use crate::runtime::CancellationToken;
use crate::runtime::Shared;
use crate::state::Model;
use crate::throttle::sync_targets;

use super::{path_host, PeerReport, PressureConfig, PressureReport, MAX_REPORT_BYTES};

/// What the fetcher knows, by node name.
pub type SharedPeers = Arc<RwLock<BTreeMap<String, PeerReport>>>;

/// Longest a single request may take (shorter if the interval is shorter).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(2);

/// The nodes to ask and their agents' addresses (`host:port`), from the
/// SyncTarget peer devices of `model`: an override from `[pressure.peers]`,
/// else the host of the connection's first path `peer:` address and `port`.
/// `None`: no address known.
pub fn peers_to_ask(
    model: &Model,
    overrides: &BTreeMap<String, String>,
    port: u16,
) -> BTreeMap<String, Option<String>> {
    let nodes: BTreeSet<String> = sync_targets(model)
        .into_iter()
        .flat_map(|t| t.pressure_nodes)
        .collect();
    nodes
        .into_iter()
        .map(|node| {
            let address = overrides.get(&node).cloned().or_else(|| {
                model
                    .resources()
                    .values()
                    .filter_map(|r| r.connections.get(&node))
                    .flat_map(|c| c.paths.iter())
                    .find_map(|p| path_host(&p.peer))
                    .map(|host| format!("{host}:{port}"))
            });
            (node, address)
        })
        .collect()
}

/// The `result` of a fetch not made because the token would cross plain HTTP.
pub const PLAIN_HTTP_TOKEN_REFUSED: &str = "plain-http-token-refused";

/// The outcome of one fetch, as counted.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    Ok(PressureReport),
    Failed { result: &'static str, error: String },
}

/// How the fetcher authenticates to the peers.
#[derive(Debug, Clone)]
pub enum PeerAuth {
    /// `http://` with the shared bearer token (`allow-plain-http-token`).
    Token(Arc<str>),
    /// `https://` with the shared bearer token (`ca-file` in token mode).
    TokenTls(Arc<str>),
    /// A token over plain HTTP, not allowed: nothing is sent.
    TokenRefused,
    /// `https://` with the client built by [`super::tls::client`] (which
    /// holds this agent's certificate and trusts the CA only).
    Mtls,
}

/// Asks one peer's agent over plain HTTP with the bearer token.
pub async fn fetch_one(
    client: &reqwest::Client,
    node: &str,
    address: &str,
    token: &str,
) -> Fetched {
    fetch_with(client, node, address, &PeerAuth::Token(token.into())).await
}

/// Asks one peer's agent the way `auth` says.
pub async fn fetch_with(
    client: &reqwest::Client,
    node: &str,
    address: &str,
    auth: &PeerAuth,
) -> Fetched {
    let fail = |result: &'static str, error: String| Fetched::Failed { result, error };
    let (url, request) = match auth {
        PeerAuth::Token(token) => {
            let url = format!("http://{address}/v1/pressure");
            let request = client.get(&url).bearer_auth(token);
            (url, request)
        }
        PeerAuth::TokenTls(token) => {
            let url = format!("https://{address}/v1/pressure");
            let request = client.get(&url).bearer_auth(token);
            (url, request)
        }
        PeerAuth::Mtls => {
            let url = format!("https://{address}/v1/pressure");
            let request = client.get(&url);
            (url, request)
        }
        PeerAuth::TokenRefused => {
            return fail(
                PLAIN_HTTP_TOKEN_REFUSED,
                format!(
                    "http://{address}/v1/pressure: not asked: the token goes over TLS only \
                     (set [pressure] ca-file for https://, or allow-plain-http-token = true)"
                ),
            )
        }
    };
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return fail("timeout", with_causes(&e)),
        Err(e) => return fail("unreachable", with_causes(&e)),
    };
    match response.status().as_u16() {
        200 => {}
        401 | 403 => return fail("unauthorized", format!("{url}: {}", response.status())),
        _ => return fail("bad-status", format!("{url}: {}", response.status())),
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_REPORT_BYTES as u64)
    {
        return fail("garbage", format!("{url}: report too large"));
    }
    let body = match response.bytes().await {
        Ok(b) if b.len() <= MAX_REPORT_BYTES => b,
        Ok(_) => return fail("garbage", format!("{url}: report too large")),
        Err(e) if e.is_timeout() => return fail("timeout", with_causes(&e)),
        Err(e) => return fail("unreachable", with_causes(&e)),
    };
    let report: PressureReport = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return fail("garbage", format!("{url}: {e}")),
    };
    if let Err(e) = report.check() {
        return fail("garbage", format!("{url}: {e}"));
    }
    if report.node != node {
        return fail(
            "garbage",
            format!(
                "{url}: answered as node {:?}, expected {node:?}",
                report.node
            ),
        );
    }
    Fetched::Ok(report)
}

/// `error: cause: cause …` — reqwest keeps the useful part (refused, TLS
/// alert, unknown issuer) in the source chain.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Records `fetched` for `node`, received at `now` (the receiver's clock).
pub fn record(peer: &mut PeerReport, fetched: Fetched, now: Instant) {
    match fetched {
        Fetched::Ok(report) => {
            *peer.fetches.entry("ok").or_default() += 1;
            peer.report = Some(report);
            peer.received = Some(now);
            peer.last_error = None;
        }
        Fetched::Failed { result, error } => {
            *peer.fetches.entry(result).or_default() += 1;
            peer.last_error = Some(error);
        }
    }
}

/// The timeout of one request for `config`.
pub fn request_timeout(config: &PressureConfig) -> Duration {
    config.interval.min(MAX_TIMEOUT)
}

/// The plain HTTP client for token authentication.
pub fn plain_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// The HTTPS client for token authentication: trusts `ca_file` only.
pub fn token_tls_client(
    ca_file: &std::path::Path,
    timeout: Duration,
) -> Result<reqwest::Client, super::tls::TlsError> {
    super::tls::ca_only_client(ca_file, timeout)
}

/// Fetches with `client` and `auth` until `stop`.
pub async fn run_fetcher(
    config: PressureConfig,
    client: reqwest::Client,
    auth: PeerAuth,
    shared: Arc<Shared>,
    peers: SharedPeers,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(config.interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => return,
        }
        let wanted = {
            let state = shared.state.read().await;
            peers_to_ask(&state.model, &config.peers, config.port)
        };
        let mut tasks = JoinSet::new();
        for (node, address) in &wanted {
            let Some(address) = address.clone() else {
                continue;
            };
            let (client, node, auth) = (client.clone(), node.clone(), auth.clone());
            tasks.spawn(async move {
                let fetched = fetch_with(&client, &node, &address, &auth).await;
                (node, address, fetched)
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok(result) = joined {
                results.push(result);
            }
        }
        let now = Instant::now();
        let mut map = peers.write().await;
        map.retain(|node, _| wanted.contains_key(node));
        for (node, address) in &wanted {
            if address.is_none() {
                let peer = map.entry(node.clone()).or_default();
                record(
                    peer,
                    Fetched::Failed {
                        result: "no-address",
                        error: "no path address and no [pressure.peers] entry".to_owned(),
                    },
                    now,
                );
            }
        }
        for (node, address, fetched) in results {
            let peer = map.entry(node.clone()).or_default();
            let was_up = peer.up();
            if let Fetched::Failed { result, error } = &fetched {
                if was_up || peer.received.is_none() && peer.fetches.is_empty() {
                    warn!(peer = %node, %address, result, error = %error, "pressure: peer's agent not usable");
                }
            } else if !was_up {
                info!(peer = %node, %address, "pressure: peer's agent answers");
            }
            peer.address = Some(address);
            record(peer, fetched, now);
        }
    }
}
