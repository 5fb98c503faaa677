//! `[pressure]`: publishing this node's pressure and fetching the peers'.
//!
//! ```toml
//! [pressure]
//! enabled = true
//! port = 9943                 # where the peers' agents serve their API
//! token-file = "/etc/drbd-agent/pressure.token"
//! interval = "1s"             # one request per peer per interval
//! stale-after = "5s"          # older reports are ignored (receiver's clock)
//! [pressure.peers]            # agents not on the DRBD path's address
//! bravo = "10.1.0.2:9943"
//! ```
//!
//! The token crosses only TLS: with `ca-file` set in token mode the peers'
//! API (`[api] web-config` with `tls_server_config`) is asked over
//! `https://`, verified against that CA. Without it the fetch over plain
//! HTTP is refused (counted as `plain-http-token-refused`), unless
//! `allow-plain-http-token = true`.
//!
//! Or with mutual TLS instead of the token (`port` is then the port of the
//! agents' own TLS listener for `/v1/pressure`, 9944 by default):
//!
//! ```toml
//! [pressure]
//! enabled = true
//! auth = "mtls"
//! ca-file = "/etc/drbd-agent/pressure-ca.pem"
//! certificate = "/etc/drbd-agent/pressure.pem"
//! key = "/etc/drbd-agent/pressure.key"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::config::HumanDuration;

/// Default fetch interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Default age after which a peer's report is ignored.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(5);
/// The peers' API port by default (token authentication).
pub const DEFAULT_PORT: u16 = crate::config::DEFAULT_API_PORT;
/// The port of the agents' TLS listener by default (`auth = "mtls"`).
pub const DEFAULT_MTLS_PORT: u16 = 9944;

/// How peers authenticate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PressureAuth {
    /// A shared bearer token over plain HTTP on the agent's API.
    #[default]
    Token,
    /// Mutual TLS on a listener of its own: both sides present a
    /// certificate signed by `ca-file`.
    Mtls,
}

/// This agent's TLS material for `auth = "mtls"` (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtlsFiles {
    /// The CA that signs every agent's certificate (the only trusted root).
    pub ca_file: PathBuf,
    /// This agent's certificate (chain), as server and as client.
    pub certificate: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// The validated `[pressure]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PressureConfig {
    pub enabled: bool,
    /// The port of the peers' agents (with the host of the DRBD path);
    /// with mTLS also the port this agent's TLS listener binds.
    pub port: u16,
    pub auth: PressureAuth,
    /// The shared bearer token (first line of the file); `auth = "token"`.
    pub token_file: Option<PathBuf>,
    /// The TLS files; `Some` when `auth = "mtls"` and enabled.
    pub mtls: Option<MtlsFiles>,
    pub interval: Duration,
    pub stale_after: Duration,
    /// Node name → `host:port` of its agent.
    pub peers: BTreeMap<String, String>,
    /// `auth = "token"` with `ca-file`: the peers' API speaks HTTPS,
    /// verified against this CA (the token then crosses TLS only).
    pub token_ca_file: Option<PathBuf>,
    /// `allow-plain-http-token`: send the token over plain HTTP.
    pub allow_plain_http_token: bool,
}

impl Default for PressureConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            port: DEFAULT_PORT,
            auth: PressureAuth::Token,
            token_file: None,
            mtls: None,
            interval: DEFAULT_INTERVAL,
            stale_after: DEFAULT_STALE_AFTER,
            peers: BTreeMap::new(),
            token_ca_file: None,
            allow_plain_http_token: false,
        }
    }
}

/// `[pressure]` as written in one file (keys optional, unknown keys
/// rejected, values checked while deserializing so errors carry a position).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawPressure {
    enabled: Option<bool>,
    port: Option<u16>,
    auth: Option<PressureAuth>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    certificate: Option<PathBuf>,
    key: Option<PathBuf>,
    interval: Option<HumanDuration>,
    stale_after: Option<HumanDuration>,
    allow_plain_http_token: Option<bool>,
    #[serde(default)]
    peers: BTreeMap<String, PeerAddress>,
}

/// A `host:port` with a non-empty host and a valid port.
#[derive(Debug, Clone)]
struct PeerAddress(String);

impl<'de> Deserialize<'de> for PeerAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        check_peer_address(&text).map_err(de::Error::custom)?;
        Ok(PeerAddress(text))
    }
}

/// A peer address that is not `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("peer address {0:?} must be HOST:PORT, e.g. \"10.0.0.2:9943\"")]
pub struct BadPeerAddress(String);

/// Checks `host:port` (`[v6]:port` for IPv6).
pub fn check_peer_address(text: &str) -> Result<(), BadPeerAddress> {
    let bad = || BadPeerAddress(text.to_owned());
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(bad());
    }
    Ok(())
}

impl RawPressure {
    /// Key-by-key merge: a key set in `later` wins; peers merge by name.
    pub fn overridden_by(self, later: RawPressure) -> RawPressure {
        let mut peers = self.peers;
        peers.extend(later.peers);
        RawPressure {
            enabled: later.enabled.or(self.enabled),
            port: later.port.or(self.port),
            auth: later.auth.or(self.auth),
            token_file: later.token_file.or(self.token_file),
            ca_file: later.ca_file.or(self.ca_file),
            certificate: later.certificate.or(self.certificate),
            key: later.key.or(self.key),
            interval: later.interval.or(self.interval),
            stale_after: later.stale_after.or(self.stale_after),
            allow_plain_http_token: later.allow_plain_http_token.or(self.allow_plain_http_token),
            peers,
        }
    }

    /// Fills in defaults and checks the keys together: (key, message) on
    /// error.
    pub fn resolve(self) -> Result<PressureConfig, (&'static str, String)> {
        let d = PressureConfig::default();
        let enabled = self.enabled.unwrap_or(d.enabled);
        let auth = self.auth.unwrap_or_default();
        let default_port = match auth {
            PressureAuth::Token => DEFAULT_PORT,
            PressureAuth::Mtls => DEFAULT_MTLS_PORT,
        };
        let mtls = if enabled && auth == PressureAuth::Mtls {
            let required = |key: &'static str, value: Option<PathBuf>| {
                value.ok_or_else(|| {
                    (
                        key,
                        format!(
                            "auth = \"mtls\" needs {} (PEM)",
                            key.trim_start_matches("pressure.")
                        ),
                    )
                })
            };
            Some(MtlsFiles {
                ca_file: required("pressure.ca-file", self.ca_file.clone())?,
                certificate: required("pressure.certificate", self.certificate.clone())?,
                key: required("pressure.key", self.key.clone())?,
            })
        } else {
            None
        };
        if enabled {
            check_unused_keys(auth, &self)?;
        }
        let config = PressureConfig {
            enabled,
            port: self.port.unwrap_or(default_port),
            auth,
            token_file: self.token_file,
            mtls,
            interval: self.interval.map_or(d.interval, |i| i.0),
            stale_after: self.stale_after.map_or(d.stale_after, |i| i.0),
            peers: self.peers.into_iter().map(|(k, v)| (k, v.0)).collect(),
            token_ca_file: match auth {
                PressureAuth::Token => self.ca_file,
                PressureAuth::Mtls => None,
            },
            allow_plain_http_token: self.allow_plain_http_token.unwrap_or(false),
        };
        if config.port == 0 {
            return Err(("pressure.port", "port must not be 0".to_owned()));
        }
        if config.enabled && auth == PressureAuth::Token && config.token_file.is_none() {
            return Err((
                "pressure.token-file",
                "pressure is enabled but no token-file is set (peers must authenticate; \
                 or set auth = \"mtls\")"
                    .to_owned(),
            ));
        }
        if config.stale_after < config.interval {
            return Err((
                "pressure.stale-after",
                format!(
                    "stale-after ({:?}) must be at least the interval ({:?})",
                    config.stale_after, config.interval
                ),
            ));
        }
        Ok(config)
    }
}

/// Keys set for the other authentication method are refused (they would
/// silently do nothing).
fn check_unused_keys(auth: PressureAuth, raw: &RawPressure) -> Result<(), (&'static str, String)> {
    let unused: &[(&'static str, bool)] = match auth {
        PressureAuth::Token => &[
            ("pressure.certificate", raw.certificate.is_some()),
            ("pressure.key", raw.key.is_some()),
        ],
        PressureAuth::Mtls => &[("pressure.token-file", raw.token_file.is_some())],
    };
    match unused.iter().find(|(_, set)| *set) {
        Some((key, _)) => {
            let (used, other) = match auth {
                PressureAuth::Token => ("\"mtls\"", "\"token\""),
                PressureAuth::Mtls => ("\"token\"", "\"mtls\""),
            };
            Err((
                key,
                format!(
                    "{} is only used with auth = {used}, but auth = {other}",
                    key.trim_start_matches("pressure.")
                ),
            ))
        }
        None => Ok(()),
    }
}

/// Why the token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}: the token must be one line of at least 16 visible characters")]
    Weak { path: String },
}

/// The token: the file's first line, trimmed; at least 16 characters.
pub fn parse_token(path: &std::path::Path, text: &str) -> Result<String, TokenError> {
    let token = text.lines().next().unwrap_or("").trim();
    if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TokenError::Weak {
            path: path.display().to_string(),
        });
    }
    Ok(token.to_owned())
}

/// Reads the token file.
pub fn read_token(path: &std::path::Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|error| TokenError::Read {
        path: path.display().to_string(),
        error,
    })?;
    parse_token(path, &text)
}
