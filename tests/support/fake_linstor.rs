//! A fake LINSTOR controller for tests: axum on 127.0.0.1 (plain HTTP or
//! HTTPS that requires a client certificate), serving the endpoints the
//! agent uses with the real JSON shapes, recording every request, and
//! failing on demand. `stop` drops the listener and every connection
//! (connections are then refused); `start_on` brings it back on the same
//! port.
// Each test uses a part of the helpers.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A failure to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// 500 with an ApiCallRc error list on every `/v1/` request.
    Error500,
    /// 401 with `WWW-Authenticate: Bearer` unless the right token is sent.
    RequireToken,
    /// Answers only after this long (longer than the client's timeout).
    Hang(Duration),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: Option<Value>,
    pub authorization: Option<String>,
}

/// What the controller holds.
#[derive(Debug)]
pub struct Inner {
    pub nodes: BTreeSet<String>,
    /// instance → props.
    pub kv: BTreeMap<String, BTreeMap<String, String>>,
    pub fault: Fault,
    pub token: String,
    /// `GET /v1/resource-groups` and `/v1/resource-definitions` answers.
    pub groups: Value,
    pub definitions: Value,
}

pub type Controller = Arc<Mutex<Inner>>;

type Log = Arc<Mutex<Vec<Recorded>>>;

/// A running (or stopped) fake controller.
pub struct Fake {
    pub state: Controller,
    /// This server's requests (several servers may share one `state`,
    /// as controllers share one database).
    log: Log,
    pub addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    server: Option<JoinHandle<()>>,
}

pub const ERROR_BODY: &str = r#"[{"ret_code":-4611686018427387903,"message":"Database error","cause":"The database is locked","correction":"Retry later.","error_report_ids":["5F3A-00000-000001"]}]"#;

impl Fake {
    /// Starts on a free port, knowing `nodes`.
    pub async fn start(nodes: &[&str], tls: Option<TlsAcceptor>) -> Fake {
        let state = Arc::new(Mutex::new(Inner {
            nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
            kv: BTreeMap::new(),
            fault: Fault::None,
            token: "s3cret".to_owned(),
            groups: json!([]),
            definitions: json!([]),
        }));
        Self::start_sharing(state, tls).await
    }

    /// Another controller on the same database.
    pub async fn start_sharing(state: Controller, tls: Option<TlsAcceptor>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut fake = Fake {
            state,
            log: Log::default(),
            addr,
            tls,
            server: None,
        };
        fake.serve(listener);
        fake
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = router(self.state.clone(), self.log.clone());
        let tls = self.tls.clone();
        self.server = Some(tokio::spawn(serve_loop(listener, app, tls)));
    }

    /// Closes the listener and every open connection.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    /// Serves again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await.expect("rebind");
        self.serve(listener);
    }

    pub fn set_fault(&self, fault: Fault) {
        self.state.lock().unwrap().fault = fault;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    pub fn puts(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "PUT")
            .collect()
    }

    pub fn kv(&self, instance: &str) -> BTreeMap<String, String> {
        self.state
            .lock()
            .unwrap()
            .kv
            .get(instance)
            .cloned()
            .unwrap_or_default()
    }
}

/// Accepts connections; each is served in a task owned by this one, so
/// aborting it closes them all.
async fn serve_loop(listener: TcpListener, app: Router, tls: Option<TlsAcceptor>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let tls = tls.clone();
        connections.spawn(async move {
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
            }
        });
    }
}

fn router(state: Controller, log: Log) -> Router {
    Router::new()
        .route("/v1/controller/version", get(version))
        .route("/v1/nodes/{node}", get(node))
        .route("/v1/key-value-store/{instance}", get(kv_get).put(kv_put))
        .route("/v1/resource-groups", get(resource_groups))
        .route("/v1/resource-definitions", get(resource_definitions))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), log),
            record,
        ))
        .with_state(state)
}

fn api_error(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_owned(),
    )
        .into_response()
}

/// Records the request, then plays the fault.
async fn record(
    State((state, log)): State<(Controller, Log)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let fault = {
        let inner = state.lock().unwrap();
        log.lock().unwrap().push(Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            body: serde_json::from_slice(&bytes).ok(),
            authorization: authorization.clone(),
        });
        let token_ok = authorization.as_deref() == Some(&format!("Bearer {}", inner.token));
        match inner.fault {
            Fault::RequireToken if token_ok => Fault::None,
            other => other,
        }
    };
    match fault {
        Fault::None => {}
        Fault::Error500 => return api_error(StatusCode::INTERNAL_SERVER_ERROR, ERROR_BODY),
        Fault::RequireToken => {
            return (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    "Bearer realm=\"linstor-controller\"",
                )],
                "",
            )
                .into_response()
        }
        Fault::Hang(how_long) => tokio::time::sleep(how_long).await,
    }
    let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    next.run(request).await
}

async fn resource_groups(State(state): State<Controller>) -> Response {
    axum::Json(state.lock().unwrap().groups.clone()).into_response()
}

async fn resource_definitions(State(state): State<Controller>) -> Response {
    axum::Json(state.lock().unwrap().definitions.clone()).into_response()
}

async fn version() -> Response {
    axum::Json(json!({
        "version": "1.28.0",
        "git_hash": "3e9306a9c1d5a8d0e0c0b6b2f1e1a4c3d2b1a0f9",
        "build_time": "2024-06-11T08:21:47+00:00",
        "rest_api_version": "1.28.0"
    }))
    .into_response()
}

async fn node(State(state): State<Controller>, Path(name): Path<String>) -> Response {
    if !state.lock().unwrap().nodes.contains(&name) {
        return api_error(
            StatusCode::NOT_FOUND,
            &json!([{
                "ret_code": -4611686018427387604i64,
                "message": format!("Node '{name}' not found."),
                "cause": format!("The specified node '{name}' could not be found in the database"),
                "correction": format!("Create a node with the name '{name}' first."),
                "obj_refs": {"Node": name},
                "created_at": "2024-06-11T08:30:00.123+00:00"
            }])
            .to_string(),
        );
    }
    axum::Json(json!({
        "name": name,
        "type": "SATELLITE",
        "props": {"CurStltConnName": "default", "NodeUname": name},
        "flags": [],
        "net_interfaces": [{
            "name": "default",
            "address": "10.0.0.1",
            "satellite_port": 3366,
            "satellite_encryption_type": "PLAIN",
            "is_active": true,
            "uuid": "0f5b2b8e-6d43-4c1f-9d55-0d0c6e1f4a11"
        }],
        "connection_status": "ONLINE",
        "uuid": "8c7d5d6e-3b1f-4f0a-9a3e-5b6c7d8e9f00",
        "storage_providers": ["DISKLESS", "LVM", "LVM_THIN"],
        "resource_layers": ["DRBD", "STORAGE"]
    }))
    .into_response()
}

async fn kv_get(State(state): State<Controller>, Path(instance): Path<String>) -> Response {
    let inner = state.lock().unwrap();
    let list: Vec<Value> = inner
        .kv
        .get(&instance)
        .map(|props| vec![json!({"name": instance, "props": props})])
        .unwrap_or_default();
    axum::Json(Value::Array(list)).into_response()
}

async fn kv_put(
    State(state): State<Controller>,
    Path(instance): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            r#"[{"ret_code":-4611686018427387904,"message":"Invalid JSON"}]"#,
        );
    };
    let mut inner = state.lock().unwrap();
    let store = inner.kv.entry(instance.clone()).or_default();
    if let Some(Value::Array(keys)) = body.get("delete_props") {
        for key in keys.iter().filter_map(Value::as_str) {
            store.remove(key);
        }
    }
    if let Some(Value::Object(props)) = body.get("override_props") {
        for (key, value) in props {
            if let Some(value) = value.as_str() {
                store.insert(key.clone(), value.to_owned());
            }
        }
    }
    axum::Json(json!([{
        "ret_code": 0x0400_0000_0000_0001i64,
        "message": format!("Successfully updated key value store '{instance}'"),
        "obj_refs": {"KeyValueStore": instance},
        "created_at": "2024-06-11T08:30:00.123+00:00"
    }]))
    .into_response()
}

async fn fallback(method: Method, uri: Uri, _headers: HeaderMap) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        &json!([{"ret_code": -4611686018427387904i64, "message": format!("{method} {uri}: not served by the fake")}]).to_string(),
    )
}

/// Test PKI: a CA, a server certificate for 127.0.0.1/localhost, a client
/// certificate; PEM files written to `dir`.
pub struct Pki {
    pub ca_pem: std::path::PathBuf,
    pub client_cert_pem: std::path::PathBuf,
    pub client_key_pem: std::path::PathBuf,
    pub acceptor: TlsAcceptor,
}

pub fn pki(dir: &std::path::Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use tokio_rustls::rustls;

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["alpha".to_owned()])
        .unwrap()
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .unwrap();
    Pki {
        ca_pem: write("ca.pem", ca.pem()),
        client_cert_pem: write("client.pem", client.pem()),
        client_key_pem: write("client.key", client_key.serialize_pem()),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    }
}
