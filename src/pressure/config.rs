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
/// The peers' API port by default.
pub const DEFAULT_PORT: u16 = crate::config::DEFAULT_API_PORT;

/// The validated `[pressure]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PressureConfig {
    pub enabled: bool,
    /// The port of the peers' agents (with the host of the DRBD path).
    pub port: u16,
    /// The shared bearer token (first line of the file).
    pub token_file: Option<PathBuf>,
    pub interval: Duration,
    pub stale_after: Duration,
    /// Node name → `host:port` of its agent.
    pub peers: BTreeMap<String, String>,
}

impl Default for PressureConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            port: DEFAULT_PORT,
            token_file: None,
            interval: DEFAULT_INTERVAL,
            stale_after: DEFAULT_STALE_AFTER,
            peers: BTreeMap::new(),
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
    token_file: Option<PathBuf>,
    interval: Option<HumanDuration>,
    stale_after: Option<HumanDuration>,
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

/// Checks `host:port` (`[v6]:port` for IPv6).
pub fn check_peer_address(text: &str) -> Result<(), String> {
    let bad = || format!("peer address {text:?} must be HOST:PORT, e.g. \"10.0.0.2:9943\"");
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
            token_file: later.token_file.or(self.token_file),
            interval: later.interval.or(self.interval),
            stale_after: later.stale_after.or(self.stale_after),
            peers,
        }
    }

    /// Fills in defaults and checks the keys together: (key, message) on
    /// error.
    pub fn resolve(self) -> Result<PressureConfig, (&'static str, String)> {
        let d = PressureConfig::default();
        let config = PressureConfig {
            enabled: self.enabled.unwrap_or(d.enabled),
            port: self.port.unwrap_or(d.port),
            token_file: self.token_file,
            interval: self.interval.map_or(d.interval, |i| i.0),
            stale_after: self.stale_after.map_or(d.stale_after, |i| i.0),
            peers: self.peers.into_iter().map(|(k, v)| (k, v.0)).collect(),
        };
        if config.port == 0 {
            return Err(("pressure.port", "port must not be 0".to_owned()));
        }
        if config.enabled && config.token_file.is_none() {
            return Err((
                "pressure.token-file",
                "pressure is enabled but no token-file is set (peers must authenticate)".to_owned(),
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
