//! `GET /v1/pressure`: this node's [`PressureReport`](super::PressureReport),
//! for peers presenting the shared bearer token; anything else is 401 with
//! no data. With mutual TLS the route is served only on the TLS listener
//! ([`super::tls`]), whose handshake already required a valid client
//! certificate.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::sampler::SharedReport;

/// What the handler reads.
#[derive(Debug, Clone)]
pub struct PressureApi {
    pub report: SharedReport,
    pub access: Access,
}

/// Who may read the report.
#[derive(Debug, Clone)]
pub enum Access {
    /// Requests carrying `Authorization: Bearer <token>`.
    Token(Arc<str>),
    /// Every request: the router is served only behind the TLS handshake
    /// that verified the client's certificate.
    VerifiedClientCertificate,
}

/// A router with `/v1/pressure` only (to be merged into the API router).
pub fn router(api: PressureApi) -> Router {
    Router::new()
        .route("/v1/pressure", get(pressure))
        .with_state(Arc::new(api))
}

/// Whether `headers` carry `Authorization: Bearer <token>`. Compares every
/// byte whatever the first difference.
pub fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, byte) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ byte);
    }
    diff == 0 && !token.is_empty()
}

async fn pressure(State(api): State<Arc<PressureApi>>, headers: HeaderMap) -> Response {
    let allowed = match &api.access {
        Access::Token(token) => authorized(&headers, token),
        Access::VerifiedClientCertificate => true,
    };
    if !allowed {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "unauthorized\n",
        )
            .into_response();
    }
    let report = api.report.read().await.clone();
    Json(report).into_response()
}
