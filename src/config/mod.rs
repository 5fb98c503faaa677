//! The agent's configuration: `agent.toml` plus `conf.d/*.toml` snippets.
//!
//! [`Config::from_sources`] is pure: it takes file names and texts, so tests
//! need no files. [`load`] reads the files. Every file is checked on its own
//! (unknown keys and bad values are reported with file, line and key), then
//! the files are merged key by key, later files overriding earlier ones.

mod duration;
mod linstor;
mod load;
mod location;
mod raw;
mod reload;
mod schema;
mod throttle_merge;

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use duration::{format_duration, parse_duration, DurationError, HumanDuration};
pub use linstor::{LinstorConfig, DEFAULT_BEARER_TOKEN_FILE, DEFAULT_INSTANCE};
pub use load::{conf_d_files, load, DEFAULT_CONFIG_PATH};
pub use location::{key_at, line_col};
pub use reload::restart_needed;
pub use schema::{schema, Schema};

/// The default configuration file as shipped (`config/agent.toml`): every
/// key commented out with its default and meaning.
pub const DEFAULT_CONFIG_TEXT: &str = include_str!("../../config/agent.toml");

use raw::RawConfig;

use crate::throttle::ThrottleConfig;

/// The default API port.
pub const DEFAULT_API_PORT: u16 = 9943;

/// The validated, merged configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// This node's name (default: the host name).
    pub node_name: String,
    /// A tracing filter (`info`, `drbd_agent=debug`); `None` = RUST_LOG or `info`.
    pub log_level: Option<String>,
    pub drbd: DrbdConfig,
    pub api: ApiConfig,
    pub state: StateConfig,
    /// `[throttle]` (validated; merged key by key across files).
    pub throttle: ThrottleConfig,
    /// `[linstor]`: reporting to the controller's key-value store.
    pub linstor: LinstorConfig,
    /// `[pressure]`: cross-node pressure (validated; merged key by key).
    pub pressure: crate::pressure::PressureConfig,
    /// `[metrics]`: the form of /metrics.
    pub metrics: MetricsConfig,
    /// The files the configuration was read from, in merge order.
    pub sources: Vec<PathBuf>,
}

/// `[drbd]`: how DRBD is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrbdConfig {
    /// Path or name on PATH.
    pub drbdsetup: PathBuf,
    /// Path or name on PATH.
    pub drbdadm: PathBuf,
    /// How often `n` is written to events2's stdin to refresh the counters.
    pub statistics_poll_interval: Duration,
    /// How often the live model is compared with a fresh `events2 --now` dump.
    pub reconcile_interval: Duration,
    pub sysfs_root: PathBuf,
}

/// `[api]`: the status API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Addresses to serve on. The default `[::]:9943` falls back to
    /// `0.0.0.0:9943` when the kernel has no IPv6.
    pub listen: Vec<SocketAddr>,
    /// `web-config`: TLS and basic-auth users in the Prometheus exporters'
    /// `web-config.yml` format (`None`: plain HTTP, no authentication).
    pub web_config: Option<PathBuf>,
    /// `status`: `"same"` (as `/metrics`) or `"local"` (loopback only).
    pub status: crate::api::StatusAccess,
}

/// `[metrics]`: the form of /metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `enum-series`: `"current"` (one series for the state that holds,
    /// flags that hold, counters by cause from their first occurrence) or
    /// `"all"` (one series per possible value, 0 for the others).
    pub enum_series: crate::metrics::EnumSeries,
}

/// `[state]`: where the agent keeps what must survive a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// Holds `throttle-journal.json`.
    pub directory: PathBuf,
}

/// The default `[state] directory`.
pub const DEFAULT_STATE_DIRECTORY: &str = "/var/lib/drbd-agent";

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            directory: PathBuf::from(DEFAULT_STATE_DIRECTORY),
        }
    }
}

impl Default for DrbdConfig {
    fn default() -> Self {
        Self {
            drbdsetup: PathBuf::from("drbdsetup"),
            drbdadm: PathBuf::from("drbdadm"),
            statistics_poll_interval: Duration::from_secs(10),
            reconcile_interval: Duration::from_secs(300),
            sysfs_root: PathBuf::from("/sys"),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::UNSPECIFIED,
                DEFAULT_API_PORT,
                0,
                0,
            ))],
            web_config: None,
            status: crate::api::StatusAccess::Same,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file's text is not valid TOML or not a valid configuration.
    #[error("{}:{line}:{column}: {}{message}", file.display(), key_prefix(key))]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        /// The dotted key at the error, when it can be told.
        key: Option<String>,
        message: String,
    },
    /// A file or directory cannot be read (the I/O error is part of the message).
    #[error("{}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
}

fn key_prefix(key: &Option<String>) -> String {
    key.as_ref()
        .map(|key| format!("key `{key}`: "))
        .unwrap_or_default()
}

impl ConfigError {
    fn from_toml(file: &Path, source: &str, error: &toml::de::Error) -> Self {
        let offset = error.span().map_or(0, |span| span.start);
        let (line, column) = line_col(source, offset);
        Self::Invalid {
            file: file.to_owned(),
            line,
            column,
            key: key_at(source, line),
            message: error.message().trim().to_owned(),
        }
    }
}

impl Config {
    /// Parses and merges `(file name, text)` pairs in order. Later files
    /// override earlier ones key by key. No sources = all defaults.
    pub fn from_sources(sources: &[(PathBuf, String)]) -> Result<Self, ConfigError> {
        let mut merged = RawConfig::default();
        for (path, text) in sources {
            let raw: RawConfig =
                toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
            merged = merged.overridden_by(raw);
        }
        let pressure = merged.take_pressure();
        let mut config = merged.resolve(default_node_name);
        config.pressure = pressure.resolve().map_err(|(key, message)| {
            let found = sources.iter().rev().find_map(|(path, text)| {
                let short = key.trim_start_matches("pressure.");
                let at = |prefix: &str| {
                    text.lines()
                        .position(|l| l.trim_start().starts_with(prefix))
                };
                at(short)
                    .or_else(|| at("[pressure]"))
                    .map(|i| (path, i + 1))
            });
            let (file, line) = found.map(|(p, l)| (p.clone(), l)).unwrap_or_else(|| {
                (
                    sources.last().map(|(p, _)| p.clone()).unwrap_or_default(),
                    1,
                )
            });
            ConfigError::Invalid {
                file,
                line,
                column: 1,
                key: Some(key.to_owned()),
                message,
            }
        })?;
        config.throttle = throttle_merge::resolve_throttle(sources)?;
        linstor::check(&config.linstor, sources)?;
        config.sources = sources.iter().map(|(path, _)| path.clone()).collect();
        Ok(config)
    }

    /// A few lines describing the configuration, for `check-config`.
    pub fn summary(&self) -> String {
        let files = if self.sources.is_empty() {
            "(none: defaults)".to_owned()
        } else {
            self.sources
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let listen = self
            .api
            .listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "configuration OK\n  files: {files}\n  node-name: {}\n  log-level: {}\n  drbdsetup: {}\n  drbdadm: {}\n  statistics-poll-interval: {}\n  reconcile-interval: {}\n  sysfs-root: {}\n  api listen: {listen}\n  state directory: {}\n  throttle: {}\n  linstor: {}\n",
            self.node_name,
            self.log_level.as_deref().unwrap_or("(RUST_LOG or info)"),
            self.drbd.drbdsetup.display(),
            self.drbd.drbdadm.display(),
            format_duration(self.drbd.statistics_poll_interval),
            format_duration(self.drbd.reconcile_interval),
            self.drbd.sysfs_root.display(),
            self.state.directory.display(),
            if self.throttle.enabled {
                format!(
                    "enabled, mode {:?}, latency-target {}, interval {}",
                    self.throttle.mode,
                    format_duration(self.throttle.latency_target.0),
                    format_duration(self.throttle.interval.0)
                )
            } else {
                "disabled".to_owned()
            },
            if self.linstor.enabled {
                format!(
                    "enabled, controllers [{}], instance {}, report-interval {}",
                    self.linstor.controllers.join(", "),
                    self.linstor.instance,
                    format_duration(self.linstor.report_interval)
                )
            } else {
                "disabled".to_owned()
            },
        )
    }
}

/// The host name, or `localhost` if it is not valid UTF-8 or empty.
pub fn default_node_name() -> String {
    let name = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_owned();
    if name.is_empty() {
        "localhost".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests;
