//! The HTTP API: `GET /v1/status`, `GET /healthz`, `GET /metrics` (and,
//! with `[pressure]`, `GET /v1/pressure`, merged in by the daemon from
//! [`crate::pressure::api`]); other methods on those paths are 405,
//! everything else is 404.
//!
//! [`router`] builds the axum router; [`serve`] runs it on listeners with
//! hyper's HTTP/1 server (header read timeout, bounded header size, a
//! connection limit, a per-client-address share of it and a write timeout);
//! [`serve_gated`] adds TLS from the `[api] web-config` file
//! ([`web_config`]) and [`guard`] its basic authentication and
//! `status = "local"`; [`render_status`] turns a status document into the
//! table `drbd-agent status` prints.

mod deadline;
mod gate;
mod serve;
mod table;
pub mod web_config;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use crate::linstor::{LinstorStatus, SharedLinstorStatus};
use crate::metrics::{accepts_gzip, Exporter, Facts, CONTENT_TYPE};
use crate::netlink::{NetworkStatus, SharedNetwork};
use crate::runtime::{Shared, StreamStats};
use crate::state::Resource;
use crate::throttle::{SharedThrottleStatus, ThrottleStatus};

pub use deadline::{ApiCounters, ClientAddr, ClientConnections, WriteDeadline};
pub use gate::{guard, log_reload_failure, MaybeTls, StatusAccess, WebGate};
pub use serve::{
    bind, fallback_addr, is_no_ipv6_error, serve, serve_gated, serve_prepared, ApiError, Limits,
};
pub use table::render_status;
pub use web_config::{WebConfig, WebConfigError};

/// Largest request body accepted (no endpoint takes one today).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers read.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub node_name: String,
    pub shared: Arc<Shared>,
    /// The resync throttle's state, shown in `/v1/status`.
    pub throttle: SharedThrottleStatus,
    /// The LINSTOR client's status (`None`: shown as disabled).
    pub linstor: Option<SharedLinstorStatus>,
}

/// The `agent` part of `/v1/status`: facts about the agent plus every
/// events2 stream counter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentStatus {
    pub version: &'static str,
    pub node_name: String,
    pub supervisor_alive: bool,
    pub drbd_reachable: bool,
    pub initial_dump_done: bool,
    /// The resources shown may be behind DRBD (kept from before a stream
    /// restart or lost events; `stale_since`/`stale_reason` say since when
    /// and why) until a complete newer dump replaces them.
    pub model_stale: bool,
    /// The timestamp of the last events2 line (drbdsetup's clock and offset).
    pub last_event_at: Option<DateTime<FixedOffset>>,
    #[serde(flatten)]
    pub stream: StreamStats,
}

/// The `/v1/status` document.
#[derive(Debug, Clone, Serialize)]
pub struct Status<'a> {
    pub agent: AgentStatus,
    /// The model's resources by name.
    pub resources: &'a BTreeMap<String, Resource>,
    /// Rates set, reverts noticed, failures of the resync throttle.
    pub throttle: ThrottleStatus,
    pub linstor: LinstorStatus,
    /// The replication network (paths → interfaces, losses and causes);
    /// absent unless the router carries an `Extension<SharedNetwork>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkStatus>,
}

/// The router with its limits (body size, 404 for unknown paths) and a
/// metrics exporter of its own (without `drbd_version`, with the throttle
/// families from `state.throttle`).
pub fn router(state: ApiState) -> Router {
    let mut exporter = Exporter::new(Facts::of_this_build()).with_throttle(state.throttle.clone());
    if let Some(linstor) = &state.linstor {
        exporter = exporter.with_linstor(linstor.clone());
    }
    router_with_metrics(state, Arc::new(exporter))
}

/// [`router`] serving `/metrics` from `exporter`.
pub fn router_with_metrics(state: ApiState, exporter: Arc<Exporter>) -> Router {
    let metrics_state = Arc::new(MetricsState {
        shared: state.shared.clone(),
        exporter,
    });
    Router::new()
        .route("/v1/status", get(status))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics).with_state(metrics_state))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(reject_large_bodies))
        .with_state(Arc::new(state))
}

async fn status(
    State(api): State<Arc<ApiState>>,
    network: Option<Extension<SharedNetwork>>,
) -> Response {
    // A copy, taken before the model's lock: the two are never held together.
    let throttle = api.throttle.read().await.clone();
    let linstor = match &api.linstor {
        Some(status) => status.read().await.clone(),
        None => LinstorStatus::default(),
    };
    let network = match network {
        Some(Extension(status)) => Some(NetworkStatus::clone(&**status.read().await)),
        None => None,
    };
    let state = api.shared.state.read().await;
    let agent = AgentStatus {
        version: env!("CARGO_PKG_VERSION"),
        node_name: api.node_name.clone(),
        supervisor_alive: api.shared.supervisor_alive(),
        drbd_reachable: state.drbd_reachable(),
        initial_dump_done: state.model.initial_dump_done(),
        model_stale: state.is_stale(),
        last_event_at: state.model.last_event_at(),
        stream: state.stats.clone(),
    };
    Json(Status {
        agent,
        resources: state.model.resources(),
        throttle,
        linstor,
        network,
    })
    .into_response()
}

async fn healthz(State(api): State<Arc<ApiState>>) -> Response {
    if api.shared.supervisor_alive() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "events2 supervisor not running\n",
        )
            .into_response()
    }
}

/// What `/metrics` reads.
#[derive(Debug)]
struct MetricsState {
    shared: Arc<Shared>,
    exporter: Arc<Exporter>,
}

/// `/metrics`: gzip (assembled from cached deflated pieces) when the request
/// accepts it, plain text otherwise.
async fn metrics(State(metrics): State<Arc<MetricsState>>, headers: HeaderMap) -> Response {
    let gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(accepts_gzip);
    // A gzip body is the cached deflated pieces copied into frames between
    // a header and a trailer; a plain body the cached text (nothing
    // compressed for it).
    let built = if gzip {
        let exposition = metrics.exporter.exposition(&metrics.shared).await;
        exposition.map(|e| (e.gzip_len(), framed(e.into_gzip_chunks())))
    } else {
        let exposition = metrics.exporter.plain_exposition(&metrics.shared).await;
        exposition.map(|e| (e.len(), framed(e.into_frames())))
    };
    match built {
        Ok((length, body)) => {
            let mut response = (
                [
                    (header::CONTENT_TYPE, CONTENT_TYPE.to_owned()),
                    (header::CONTENT_LENGTH, length.to_string()),
                    (header::VARY, "Accept-Encoding".to_owned()),
                ],
                body,
            )
                .into_response();
            if gzip {
                response.headers_mut().insert(
                    header::CONTENT_ENCODING,
                    header::HeaderValue::from_static("gzip"),
                );
            }
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot render metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render metrics\n").into_response()
        }
    }
}

/// A body streaming `frames` (built as they are polled).
fn framed(frames: crate::metrics::Chunks) -> Body {
    Body::from_stream(futures_util::stream::iter(
        frames.map(Ok::<_, std::convert::Infallible>),
    ))
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// 413 for a declared body larger than [`MAX_BODY_BYTES`], before routing.
async fn reject_large_bodies(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > MAX_BODY_BYTES as u64 => {
            (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response()
        }
        _ => next.run(request).await,
    }
}
