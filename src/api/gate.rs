//! Who may see what on the API port: the web config in force (TLS and
//! basic-auth users, reloadable), and `[api] status = "local"`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::deadline::{ApiCounters, ClientAddr};
use super::web_config::{parse_basic_authorization, WebConfig, WebConfigError};

/// Who may read `/v1/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusAccess {
    /// As `/metrics` and `/healthz` (the web config's TLS and users).
    #[default]
    Same,
    /// Loopback clients only (and the web config as well).
    Local,
}

/// Paths with an authentication of their own (`[pressure] auth = "token"`).
const OWN_AUTH_PATHS: [&str; 1] = ["/v1/pressure"];

/// Successful (user, password, hash) checks remembered, so a scrape does not
/// cost a bcrypt computation each time.
const VERIFIED_CACHE: usize = 64;

/// A hash whose check costs what a real one costs, for unknown users (so a
/// wrong user name takes as long as a wrong password); made once.
fn unknown_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| bcrypt::hash("no such user", 10).unwrap_or_default())
}

/// The API's gate.
#[derive(Debug)]
pub struct WebGate {
    current: RwLock<Arc<WebConfig>>,
    status: StatusAccess,
    /// Digests of (user, password, hash) that were checked good.
    verified: Mutex<VecDeque<[u8; 32]>>,
    /// bcrypt checks at once (each takes tens of milliseconds of CPU).
    checking: Semaphore,
    /// Refusals by reason (shared with the connection loop and `/metrics`).
    pub counters: Arc<ApiCounters>,
}

impl WebGate {
    pub fn new(config: WebConfig, status: StatusAccess) -> Self {
        Self {
            current: RwLock::new(Arc::new(config)),
            status,
            verified: Mutex::new(VecDeque::new()),
            checking: Semaphore::new(2),
            counters: Arc::new(ApiCounters::default()),
        }
    }

    /// Reads `path` (`None`: no web config); the gate as configured.
    pub fn load(path: Option<&Path>, status: StatusAccess) -> Result<Self, WebConfigError> {
        let config = match path {
            Some(path) => WebConfig::load(path)?,
            None => WebConfig::default(),
        };
        Ok(Self::new(config, status))
    }

    /// The web config in force.
    pub fn config(&self) -> Arc<WebConfig> {
        // A poisoned lock only means a writer panicked; the value is whole.
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads `path` again; a bad file keeps the one in force (the error is
    /// returned for the caller to log and count).
    pub fn reload(&self, path: Option<&Path>) -> Result<(), WebConfigError> {
        let config = match path {
            Some(path) => WebConfig::load(path)?,
            None => WebConfig::default(),
        };
        info!(
            file = ?config.source,
            tls = config.tls.is_some(),
            users = config.users.len(),
            "web config loaded"
        );
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(())
    }

    /// The connection's transport: TLS when the web config in force has
    /// `tls_server_config` (handshake bounded by `handshake_timeout`), the
    /// TCP stream otherwise. `None`: the handshake failed.
    pub async fn prepare(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        handshake_timeout: Duration,
    ) -> Option<MaybeTls> {
        let Some(tls) = self.config().tls.clone() else {
            return Some(MaybeTls::Plain(stream));
        };
        let acceptor = TlsAcceptor::from(tls);
        match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => Some(MaybeTls::Tls(Box::new(stream))),
            Ok(Err(e)) => {
                ApiCounters::count(&self.counters.tls_handshake);
                debug!(%peer, error = %e, "API: TLS handshake failed");
                None
            }
            Err(_) => {
                ApiCounters::count(&self.counters.tls_handshake);
                debug!(%peer, "API: TLS handshake timed out");
                None
            }
        }
    }

    /// Whether `authorization` names a user of `config` with the right
    /// password.
    async fn authorized(&self, config: &WebConfig, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) =
            authorization.and_then(|value| parse_basic_authorization(value.as_bytes()))
        else {
            return false;
        };
        let known = config.users.get(&user);
        let hash = match known {
            Some(hash) => hash.clone(),
            None => unknown_user_hash().to_owned(),
        };
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{user}\0{password}\0{hash}").as_bytes(),
        );
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        if known.is_some()
            && self
                .verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&key)
        {
            return true;
        }
        let Ok(_slot) = self.checking.acquire().await else {
            return false;
        };
        let good = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        if good && known.is_some() {
            let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if verified.len() >= VERIFIED_CACHE {
                verified.pop_front();
            }
            verified.push_back(key);
            return true;
        }
        false
    }
}

/// The middleware: `/v1/status` for loopback clients only with
/// `status = "local"`, basic authentication when the web config has users,
/// and the configured response headers.
pub async fn guard(State(gate): State<Arc<WebGate>>, request: Request, next: Next) -> Response {
    let config = gate.config();
    let path = request.uri().path();
    if path == "/v1/status" && gate.status == StatusAccess::Local {
        let local = request
            .extensions()
            .get::<ClientAddr>()
            .is_some_and(ClientAddr::is_loopback);
        if !local {
            ApiCounters::count(&gate.counters.status_not_local);
            return (
                StatusCode::FORBIDDEN,
                "/v1/status is served to loopback clients only ([api] status = \"local\")\n",
            )
                .into_response();
        }
    }
    let own_auth = OWN_AUTH_PATHS.contains(&path);
    if config.needs_basic_auth()
        && !own_auth
        && !gate
            .authorized(&config, request.headers().get(header::AUTHORIZATION))
            .await
    {
        ApiCounters::count(&gate.counters.unauthorized);
        let client = request.extensions().get::<ClientAddr>().map(|c| c.0);
        debug!(?client, path, "API: unauthorized");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"drbd-agent\"")],
            "unauthorized\n",
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    for (name, value) in &config.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// A plain or a TLS connection.
pub enum MaybeTls {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl tokio::io::AsyncRead for MaybeTls {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for MaybeTls {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Logs a web config reload that failed (the old one stays).
pub fn log_reload_failure(error: &WebConfigError) {
    warn!(error = %error, "web config reload failed, keeping the web config in force");
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    fn guarded(gate: Arc<WebGate>) -> Router {
        Router::new()
            .route("/v1/status", get(|| async { "status" }))
            .route("/metrics", get(|| async { "metrics" }))
            .route("/v1/pressure", get(|| async { "pressure" }))
            .layer(axum::middleware::from_fn_with_state(gate, guard))
    }

    async fn status_of(app: &Router, path: &str, client: &str, auth: Option<&str>) -> u16 {
        let mut request = Request::builder().uri(path);
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let mut request = request.body(Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(ClientAddr(client.parse().unwrap()));
        app.clone()
            .oneshot(request)
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn status_local_serves_loopback_clients_only() {
        let gate = Arc::new(WebGate::new(WebConfig::default(), StatusAccess::Local));
        let app = guarded(gate.clone());
        assert_eq!(
            status_of(&app, "/v1/status", "127.0.0.1:5000", None).await,
            200
        );
        assert_eq!(status_of(&app, "/v1/status", "[::1]:5000", None).await, 200);
        assert_eq!(
            status_of(&app, "/v1/status", "192.0.2.7:5000", None).await,
            403
        );
        assert_eq!(
            status_of(&app, "/metrics", "192.0.2.7:5000", None).await,
            200
        );
        assert_eq!(
            gate.counters
                .status_not_local
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        let same = guarded(Arc::new(WebGate::new(
            WebConfig::default(),
            StatusAccess::Same,
        )));
        assert_eq!(
            status_of(&same, "/v1/status", "192.0.2.7:5000", None).await,
            200
        );
    }

    #[tokio::test]
    async fn basic_auth_guards_every_path_but_the_pressure_route() {
        let mut config = WebConfig::default();
        config
            .users
            .insert("alice".into(), bcrypt::hash("pw", 4).unwrap());
        let gate = Arc::new(WebGate::new(config, StatusAccess::Same));
        let app = guarded(gate.clone());
        // "alice:pw", "alice:no".
        let good = Some("Basic YWxpY2U6cHc=");
        let bad = Some("Basic YWxpY2U6bm8=");
        assert_eq!(status_of(&app, "/metrics", "192.0.2.7:1", None).await, 401);
        assert_eq!(status_of(&app, "/metrics", "192.0.2.7:1", bad).await, 401);
        assert_eq!(status_of(&app, "/metrics", "192.0.2.7:1", good).await, 200);
        // Again: from the cache of good checks.
        assert_eq!(
            status_of(&app, "/v1/status", "192.0.2.7:1", good).await,
            200
        );
        // Its own bearer-token check (not here) guards /v1/pressure.
        assert_eq!(
            status_of(&app, "/v1/pressure", "192.0.2.7:1", None).await,
            200
        );
        assert_eq!(
            gate.counters
                .unauthorized
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
    }
}
