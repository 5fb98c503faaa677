//! The REST client: HTTP or HTTPS (rustls) to one of several controllers,
//! sticking to the one that answers; on a network error every controller
//! is asked at once (`GET /v1/controller/version`) and the first that
//! answers is used from then on, the request retried once there.
//!
//! Only two kinds of request exist: `GET` of any path and `PUT` to
//! `/v1/key-value-store/{instance}`; nothing else can be sent.

use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::apicallrc::{self, ApiCallRc, Severity};
use super::controllers::Controller;
use super::report::Batch;
use super::status::{endpoint_label, SharedLinstorStatus};
use crate::config::LinstorConfig;

/// The client cannot be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// A request that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// No answer (refused, timed out, TLS handshake failed...).
    #[error("{url}: {message}")]
    Network { url: String, message: String },
    /// An HTTP error status; `rcs` is the ApiCallRc list, when the body is one.
    #[error("{url}: HTTP {status}{}", describe(rcs, www_authenticate.as_deref()))]
    Status {
        url: String,
        status: u16,
        rcs: Vec<ApiCallRc>,
        www_authenticate: Option<String>,
    },
    /// A 2xx answer whose ApiCallRc list holds an error.
    #[error("{url}: rejected{}", describe(rcs, None))]
    Rejected { url: String, rcs: Vec<ApiCallRc> },
    /// A 2xx answer that is not what the API documents.
    #[error("{url}: unexpected answer: {message}")]
    Decode { url: String, message: String },
    /// Not sent: a bearer token is configured and the controller speaks
    /// plain HTTP (`linstor://`, `http://`).
    #[error("{url}: not sent: the bearer token goes over TLS only (use linstor+ssl:// or https://, or set [linstor] allow-plain-http-token = true)")]
    PlainHttpToken { url: String },
    /// The answer's body is larger than [`MAX_RESPONSE_BYTES`].
    #[error("{url}: answer larger than {limit} bytes, not read")]
    TooLarge { url: String, limit: usize },
}

/// The most of a controller's answer that is read (then: an error).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

fn describe(rcs: &[ApiCallRc], www_authenticate: Option<&str>) -> String {
    let mut out = String::new();
    for rc in rcs {
        out.push_str(": ");
        out.push_str(&rc.to_string());
    }
    if let Some(challenge) = www_authenticate {
        out.push_str(&format!(
            " (WWW-Authenticate: {challenge}; check bearer-token-file)"
        ));
    }
    out
}

impl RequestError {
    pub fn is_network(&self) -> bool {
        matches!(self, RequestError::Network { .. })
    }

    /// The HTTP status, for an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            RequestError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The `result` label of `drbd_agent_linstor_requests_total`.
    fn result_label(&self) -> String {
        match self {
            RequestError::Network { .. } => "network".to_owned(),
            RequestError::Status { status, .. } => format!("http_{status}"),
            RequestError::Rejected { .. } => "rejected".to_owned(),
            RequestError::Decode { .. } => "bad_answer".to_owned(),
            RequestError::PlainHttpToken { .. } => "plain_http_token_refused".to_owned(),
            RequestError::TooLarge { .. } => "too_large".to_owned(),
        }
    }
}

/// Reads a bearer token file: `{"token": "..."}` as the satellite writes
/// it (a bare token is accepted too).
pub fn read_token(path: &Path) -> Result<String, SetupError> {
    let text = std::fs::read_to_string(path).map_err(|error| SetupError::Read {
        path: path.to_owned(),
        error,
    })?;
    parse_token(&text).ok_or_else(|| SetupError::Invalid {
        path: path.to_owned(),
        message: "no token (expected {\"token\": \"...\"})".to_owned(),
    })
}

/// The token of a token file's text.
pub fn parse_token(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct File {
        token: String,
    }
    let trimmed = text.trim();
    let token = match serde_json::from_str::<File>(trimmed) {
        Ok(file) => file.token,
        Err(_) if !trimmed.starts_with('{') => trimmed.to_owned(),
        Err(_) => return None,
    };
    let token = token.trim().to_owned();
    (!token.is_empty() && !token.chars().any(char::is_whitespace)).then_some(token)
}

fn read(path: &Path) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|error| SetupError::Read {
        path: path.to_owned(),
        error,
    })
}

/// The client.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    controllers: Vec<Controller>,
    active: usize,
    token: Option<String>,
    token_file: Option<PathBuf>,
    /// `[linstor] allow-plain-http-token`.
    allow_plain_http_token: bool,
    status: SharedLinstorStatus,
}

impl Client {
    /// Builds the client (reads the CA, the client certificate and key and
    /// the token file). `controllers` must not be empty.
    pub fn new(
        config: &LinstorConfig,
        controllers: Vec<Controller>,
        token_file: Option<PathBuf>,
        status: SharedLinstorStatus,
    ) -> Result<Self, SetupError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("drbd-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            let pem = read(path)?;
            let certificate =
                reqwest::Certificate::from_pem(&pem).map_err(|e| SetupError::Invalid {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            builder = builder.add_root_certificate(certificate);
        }
        if let (Some(cert), Some(key)) = (&config.client_certificate, &config.client_key) {
            let mut pem = read(cert)?;
            pem.push(b'\n');
            pem.extend(read(key)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| SetupError::Invalid {
                path: cert.clone(),
                message: format!("client certificate or key: {e}"),
            })?;
            builder = builder.identity(identity);
        }
        let token = token_file.as_deref().map(read_token).transpose()?;
        let http = builder
            .build()
            .map_err(|e| SetupError::Build(e.to_string()))?;
        if controllers.is_empty() {
            return Err(SetupError::Build("no controller".to_owned()));
        }
        Ok(Self {
            http,
            controllers,
            active: 0,
            token,
            token_file,
            allow_plain_http_token: config.allow_plain_http_token,
            status,
        })
    }

    /// The controller in use.
    pub fn active(&self) -> &Controller {
        // `new` refuses an empty list and `active` is always an index into it.
        &self.controllers[self.active]
    }

    pub fn controllers(&self) -> &[Controller] {
        &self.controllers
    }

    /// `GET path`, decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&mut self, path: &str) -> Result<T, RequestError> {
        let (url, body) = self.request(Method::GET, path, None).await?;
        serde_json::from_slice(&body).map_err(|e| RequestError::Decode {
            url,
            message: e.to_string(),
        })
    }

    /// `PUT /v1/key-value-store/{instance}` with `batch`; the warnings and
    /// infos of the answer are returned (an error entry is an error).
    pub async fn put_kv(
        &mut self,
        instance: &str,
        batch: &Batch,
    ) -> Result<Vec<ApiCallRc>, RequestError> {
        let path = format!("/v1/key-value-store/{instance}");
        let json = serde_json::to_vec(batch).map_err(|e| RequestError::Decode {
            url: path.clone(),
            message: e.to_string(),
        })?;
        let (url, body) = self.request(Method::PUT, &path, Some(json)).await?;
        let rcs = apicallrc::parse_list(&body).unwrap_or_default();
        if apicallrc::worst(&rcs) == Severity::Error {
            self.count(&path, "rejected").await;
            return Err(RequestError::Rejected { url, rcs });
        }
        Ok(rcs)
    }

    async fn count(&self, path: &str, result: &str) {
        self.status
            .write()
            .await
            .count(endpoint_label(path), result);
    }

    /// Sends to the active controller; on a network error finds one that
    /// answers and retries once there. A 401 re-reads the token file.
    async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(String, Vec<u8>), RequestError> {
        let first = self.send(self.active, &method, path, body.clone()).await;
        let result = match first {
            Err(e) if e.is_network() && self.controllers.len() > 1 => {
                self.count(path, "network").await;
                warn!(controller = %self.active(), error = %e, "controller not answering, trying the others");
                match self.find_answering().await {
                    Some(index) => {
                        if index != self.active {
                            info!(from = %self.active(), to = %self.controllers[index], "switching controller");
                            self.active = index;
                        }
                        self.send(self.active, &method, path, body).await
                    }
                    None => return Err(e),
                }
            }
            other => other,
        };
        match &result {
            Ok(_) => self.count(path, "ok").await,
            Err(e) => {
                self.count(path, &e.result_label()).await;
                if e.status() == Some(401) {
                    self.reload_token();
                }
            }
        }
        result
    }

    fn reload_token(&mut self) {
        let Some(path) = &self.token_file else {
            return;
        };
        match read_token(path) {
            Ok(token) => self.token = Some(token),
            Err(e) => warn!(error = %e, "cannot re-read the bearer token"),
        }
    }

    async fn send(
        &self,
        index: usize,
        method: &Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(String, Vec<u8>), RequestError> {
        let controller = &self.controllers[index];
        let url = format!("{}{path}", controller.base_url());
        let token = self.token_for(controller, &url)?;
        send_to(&self.http, token, method, &url, body).await
    }

    /// The token to send to `controller`: only over TLS, unless
    /// `allow-plain-http-token`; a refusal is an error (logged, counted,
    /// shown as the last error).
    fn token_for(&self, controller: &Controller, url: &str) -> Result<Option<&str>, RequestError> {
        refuse_plain_token(
            self.token.as_deref(),
            controller,
            self.allow_plain_http_token,
            url,
        )
    }

    /// Asks every controller at once; the first that answers (any HTTP
    /// status) wins, the active one preferred when it answers first.
    async fn find_answering(&self) -> Option<usize> {
        let mut probes = JoinSet::new();
        for (index, controller) in self.controllers.iter().enumerate() {
            let http = self.http.clone();
            let url = format!("{}/v1/controller/version", controller.base_url());
            let token = self
                .token_for(controller, &url)
                .map(|token| token.map(str::to_owned));
            probes.spawn(async move {
                let result = match token {
                    Ok(token) => send_to(&http, token.as_deref(), &Method::GET, &url, None).await,
                    Err(refused) => Err(refused),
                };
                (index, result)
            });
        }
        while let Some(joined) = probes.join_next().await {
            let Ok((index, result)) = joined else {
                continue;
            };
            let label = match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => e.result_label(),
            };
            self.count("/v1/controller/version", &label).await;
            if !matches!(
                result,
                Err(RequestError::Network { .. } | RequestError::PlainHttpToken { .. })
            ) {
                probes.abort_all();
                return Some(index);
            }
        }
        None
    }
}

/// `token` if it may go to `controller`, else the refusal (logged).
pub fn refuse_plain_token<'t>(
    token: Option<&'t str>,
    controller: &Controller,
    allow_plain_http_token: bool,
    url: &str,
) -> Result<Option<&'t str>, RequestError> {
    match token {
        Some(_) if !controller.https && !allow_plain_http_token => {
            let error = RequestError::PlainHttpToken {
                url: url.to_owned(),
            };
            warn!(controller = %controller, error = %error, "LINSTOR: bearer token not sent over plain HTTP");
            Err(error)
        }
        other => Ok(other),
    }
}

/// Reads at most `limit` bytes of `response`'s body; more is an error
/// (checked against Content-Length first, then while reading).
async fn read_bounded(
    mut response: reqwest::Response,
    url: &str,
    limit: usize,
) -> Result<Vec<u8>, RequestError> {
    let too_large = || RequestError::TooLarge {
        url: url.to_owned(),
        limit,
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| RequestError::Network {
        url: url.to_owned(),
        message: error_chain(&e),
    })? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// One request, no retry.
async fn send_to(
    http: &reqwest::Client,
    token: Option<&str>,
    method: &Method,
    url: &str,
    body: Option<Vec<u8>>,
) -> Result<(String, Vec<u8>), RequestError> {
    let network = |e: reqwest::Error| RequestError::Network {
        url: url.to_owned(),
        message: error_chain(&e),
    };
    let mut request = http.request(method.clone(), url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    let response = request.send().await.map_err(network)?;
    let status = response.status();
    let www_authenticate = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = read_bounded(response, url, MAX_RESPONSE_BYTES).await?;
    if status.is_success() {
        return Ok((url.to_owned(), bytes));
    }
    let rcs = apicallrc::parse_list(&bytes).unwrap_or_default();
    for rc in &rcs {
        warn!(url, status = status.as_u16(), severity = %rc.severity(), code = rc.code(), message = %rc.message, cause = rc.cause.as_deref().unwrap_or(""), correction = rc.correction.as_deref().unwrap_or(""), "controller answered with an error");
    }
    Err(RequestError::Status {
        url: url.to_owned(),
        status: status.as_u16(),
        rcs,
        www_authenticate: www_authenticate.filter(|_| status == StatusCode::UNAUTHORIZED),
    })
}

/// An error with its sources ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves one answer per connection: `head` then `body_bytes` of 'x'.
    async fn answering(head: &'static str, body_bytes: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let _ = stream.write_all(head.as_bytes()).await;
                    let chunk = vec![b'x'; 64 * 1024];
                    let mut sent = 0;
                    while sent < body_bytes {
                        let n = chunk.len().min(body_bytes - sent);
                        if stream.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        sent += n;
                    }
                });
            }
        });
        format!("http://{addr}/v1/nodes")
    }

    #[tokio::test]
    async fn answers_are_read_up_to_the_limit() {
        let http = reqwest::Client::new();
        let limit = 1024 * 1024;
        // Declared too large: refused before reading.
        let url = answering("HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n", 0).await;
        let response = http.get(&url).send().await.unwrap();
        let error = read_bounded(response, &url, limit).await.unwrap_err();
        assert!(matches!(error, RequestError::TooLarge { .. }), "{error}");
        assert_eq!(error.result_label(), "too_large");
        // Not declared (read until close): refused once past the limit.
        let url = answering("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", 2 * limit).await;
        let response = http.get(&url).send().await.unwrap();
        let error = read_bounded(response, &url, limit).await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("answer larger than 1048576 bytes"),
            "{error}"
        );
        // Within the limit: the whole body.
        let url = answering("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 1000).await;
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(
            read_bounded(response, &url, limit).await.unwrap().len(),
            1000
        );
    }

    #[test]
    fn a_token_goes_to_https_controllers_only() {
        let plain = Controller {
            https: false,
            host: "ctrl".into(),
            port: 3370,
        };
        let tls = Controller {
            https: true,
            ..plain.clone()
        };
        let url = "http://ctrl:3370/v1/nodes";
        assert!(matches!(
            refuse_plain_token(Some("t"), &plain, false, url),
            Err(RequestError::PlainHttpToken { .. })
        ));
        assert_eq!(
            refuse_plain_token(Some("t"), &tls, false, url).unwrap(),
            Some("t")
        );
        assert_eq!(
            refuse_plain_token(Some("t"), &plain, true, url).unwrap(),
            Some("t")
        );
        assert_eq!(refuse_plain_token(None, &plain, false, url).unwrap(), None);
    }

    #[test]
    fn token_files() {
        assert_eq!(
            parse_token("{\"token\": \"abc\"}\n").as_deref(),
            Some("abc")
        );
        assert_eq!(parse_token("abc\n").as_deref(), Some("abc"));
        assert_eq!(parse_token("{\"other\": 1}"), None);
        assert_eq!(parse_token("{\"token\": \"\"}"), None);
        assert_eq!(parse_token(""), None);
        assert_eq!(parse_token("a b"), None);
    }

    #[test]
    fn errors_name_message_cause_and_correction() {
        let error = RequestError::Status {
            url: "http://c:3370/v1/nodes/x".into(),
            status: 404,
            rcs: apicallrc::parse_list(br#"[{"ret_code":-4611686018427387604,"message":"Node 'x' not found.","cause":"gone","correction":"Create it."}]"#).unwrap_or_default(),
            www_authenticate: None,
        };
        assert_eq!(
            error.to_string(),
            "http://c:3370/v1/nodes/x: HTTP 404: error 300: Node 'x' not found.; cause: gone; correction: Create it."
        );
        assert_eq!(error.result_label(), "http_404");
        let error = RequestError::Status {
            url: "u".into(),
            status: 401,
            rcs: vec![],
            www_authenticate: Some("Bearer realm=\"linstor-controller\"".into()),
        };
        assert!(error.to_string().contains("check bearer-token-file"));
    }
}
