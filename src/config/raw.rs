//! The configuration as written in one file: every key optional, unknown keys
//! rejected, values checked while deserializing (so errors carry a position).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::{
    ApiConfig, Config, DrbdConfig, HumanDuration, LinstorConfig, MetricsConfig, StateConfig,
};
use crate::pressure::RawPressure;
use crate::throttle::ThrottleConfig;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawConfig {
    node_name: Option<NodeName>,
    log_level: Option<LogLevel>,
    #[serde(default)]
    drbd: RawDrbd,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    linstor: RawLinstor,
    /// Checked here (positions of bad values); merged as a table in
    /// `throttle_merge`, so the value itself is not read.
    #[serde(default)]
    #[allow(dead_code)]
    throttle: Option<ThrottleConfig>,
    /// `[pressure]`, resolved in `Config::from_sources`.
    #[serde(default)]
    pressure: RawPressure,
    #[serde(default)]
    metrics: RawMetrics,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMetrics {
    enum_series: Option<EnumSeriesValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLinstor {
    enabled: Option<bool>,
    controllers: Option<Vec<ControllerAddr>>,
    ca_file: Option<ProgramPath>,
    client_certificate: Option<ProgramPath>,
    client_key: Option<ProgramPath>,
    bearer_token_file: Option<ProgramPath>,
    timeout: Option<HumanDuration>,
    connect_timeout: Option<HumanDuration>,
    report_interval: Option<HumanDuration>,
    policy_interval: Option<HumanDuration>,
    instance: Option<KvInstance>,
    allow_plain_http_token: Option<bool>,
}

impl RawLinstor {
    fn overridden_by(self, later: RawLinstor) -> RawLinstor {
        RawLinstor {
            enabled: later.enabled.or(self.enabled),
            controllers: later.controllers.or(self.controllers),
            ca_file: later.ca_file.or(self.ca_file),
            client_certificate: later.client_certificate.or(self.client_certificate),
            client_key: later.client_key.or(self.client_key),
            bearer_token_file: later.bearer_token_file.or(self.bearer_token_file),
            timeout: later.timeout.or(self.timeout),
            connect_timeout: later.connect_timeout.or(self.connect_timeout),
            report_interval: later.report_interval.or(self.report_interval),
            policy_interval: later.policy_interval.or(self.policy_interval),
            instance: later.instance.or(self.instance),
            allow_plain_http_token: later.allow_plain_http_token.or(self.allow_plain_http_token),
        }
    }

    fn resolve(self) -> LinstorConfig {
        let d = LinstorConfig::default();
        LinstorConfig {
            enabled: self.enabled.unwrap_or(d.enabled),
            controllers: self.controllers.map_or(d.controllers, |list| {
                list.into_iter().map(|c| c.0).collect()
            }),
            ca_file: self.ca_file.map(|p| p.0),
            client_certificate: self.client_certificate.map(|p| p.0),
            client_key: self.client_key.map(|p| p.0),
            bearer_token_file: self.bearer_token_file.map(|p| p.0),
            timeout: self.timeout.map_or(d.timeout, |t| t.0),
            connect_timeout: self.connect_timeout.map_or(d.connect_timeout, |t| t.0),
            report_interval: self.report_interval.map_or(d.report_interval, |t| t.0),
            policy_interval: self.policy_interval.map_or(d.policy_interval, |t| t.0),
            instance: self.instance.map_or(d.instance, |i| i.0),
            allow_plain_http_token: self
                .allow_plain_http_token
                .unwrap_or(d.allow_plain_http_token),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawState {
    directory: Option<ProgramPath>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDrbd {
    drbdsetup: Option<ProgramPath>,
    drbdadm: Option<ProgramPath>,
    statistics_poll_interval: Option<HumanDuration>,
    reconcile_interval: Option<HumanDuration>,
    sysfs_root: Option<ProgramPath>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawApi {
    listen: Option<ListenAddrs>,
    web_config: Option<ProgramPath>,
    status: Option<StatusAccessValue>,
}

impl RawConfig {
    /// Key-by-key merge: a key set in `later` wins.
    pub(super) fn overridden_by(self, later: RawConfig) -> RawConfig {
        RawConfig {
            node_name: later.node_name.or(self.node_name),
            log_level: later.log_level.or(self.log_level),
            drbd: RawDrbd {
                drbdsetup: later.drbd.drbdsetup.or(self.drbd.drbdsetup),
                drbdadm: later.drbd.drbdadm.or(self.drbd.drbdadm),
                statistics_poll_interval: later
                    .drbd
                    .statistics_poll_interval
                    .or(self.drbd.statistics_poll_interval),
                reconcile_interval: later
                    .drbd
                    .reconcile_interval
                    .or(self.drbd.reconcile_interval),
                sysfs_root: later.drbd.sysfs_root.or(self.drbd.sysfs_root),
            },
            api: RawApi {
                listen: later.api.listen.or(self.api.listen),
                web_config: later.api.web_config.or(self.api.web_config),
                status: later.api.status.or(self.api.status),
            },
            state: RawState {
                directory: later.state.directory.or(self.state.directory),
            },
            linstor: self.linstor.overridden_by(later.linstor),
            // Merged key by key from the tables, see `Config::from_sources`.
            throttle: None,
            pressure: self.pressure.overridden_by(later.pressure),
            metrics: RawMetrics {
                enum_series: later.metrics.enum_series.or(self.metrics.enum_series),
            },
        }
    }

    /// Takes the merged `[pressure]` out (resolved on its own).
    pub(super) fn take_pressure(&mut self) -> RawPressure {
        std::mem::take(&mut self.pressure)
    }

    /// Fills in defaults. `hostname` is only called when `node-name` is unset.
    pub(super) fn resolve(self, hostname: impl FnOnce() -> String) -> Config {
        let drbd_default = DrbdConfig::default();
        Config {
            node_name: self.node_name.map_or_else(hostname, |n| n.0),
            log_level: self.log_level.map(|l| l.0),
            drbd: DrbdConfig {
                drbdsetup: self.drbd.drbdsetup.map_or(drbd_default.drbdsetup, |p| p.0),
                drbdadm: self.drbd.drbdadm.map_or(drbd_default.drbdadm, |p| p.0),
                statistics_poll_interval: self
                    .drbd
                    .statistics_poll_interval
                    .map_or(drbd_default.statistics_poll_interval, |d| d.0),
                reconcile_interval: self
                    .drbd
                    .reconcile_interval
                    .map_or(drbd_default.reconcile_interval, |d| d.0),
                sysfs_root: self
                    .drbd
                    .sysfs_root
                    .map_or(drbd_default.sysfs_root, |p| p.0),
            },
            api: ApiConfig {
                listen: self
                    .api
                    .listen
                    .map_or_else(|| ApiConfig::default().listen, |l| l.0),
                web_config: self.api.web_config.map(|p| p.0),
                status: self.api.status.map_or_else(Default::default, |s| s.0),
            },
            state: StateConfig {
                directory: self
                    .state
                    .directory
                    .map_or_else(|| StateConfig::default().directory, |p| p.0),
            },
            throttle: ThrottleConfig::default(),
            linstor: self.linstor.resolve(),
            pressure: Default::default(),
            metrics: MetricsConfig {
                enum_series: self
                    .metrics
                    .enum_series
                    .map_or_else(Default::default, |e| e.0),
            },
            sources: Vec::new(),
        }
    }
}

/// Defines a newtype deserialized from a string through a checking function.
macro_rules! checked_string {
    ($name:ident, $inner:ty, $expecting:literal, $check:expr) => {
        #[derive(Debug)]
        struct $name($inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, value: &str) -> Result<$name, E> {
                        let check: fn(&str) -> Result<$inner, String> = $check;
                        check(value).map($name).map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(V)
            }
        }
    };
}

checked_string!(NodeName, String, "a node name", |value| {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!(
            "node name {value:?} must be non-empty and contain no white space"
        ))
    } else {
        Ok(value.to_owned())
    }
});

checked_string!(
    ControllerAddr,
    String,
    "a controller address such as \"linstor://ctrl\" or \"linstor+ssl://ctrl\"",
    |value| {
        crate::linstor::controllers::parse_controller(value)
            .map(|_| value.to_owned())
            .map_err(|e| e.to_string())
    }
);

checked_string!(
    StatusAccessValue,
    crate::api::StatusAccess,
    "\"same\" or \"local\"",
    |value| match value {
        "same" => Ok(crate::api::StatusAccess::Same),
        "local" => Ok(crate::api::StatusAccess::Local),
        other => Err(format!(
            "status {other:?}: write \"same\" (as /metrics) or \"local\" (loopback clients only)"
        )),
    }
);

checked_string!(
    EnumSeriesValue,
    crate::metrics::EnumSeries,
    "\"current\" or \"all\"",
    |value| {
        match value {
        "current" => Ok(crate::metrics::EnumSeries::Current),
        "all" => Ok(crate::metrics::EnumSeries::All),
        other => Err(format!(
            "enum-series {other:?}: write \"current\" (one series for the value that holds) or \"all\" (one series per possible value)"
        )),
    }
    }
);

checked_string!(KvInstance, String, "a key-value store name", |value| {
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        Err(format!(
            "instance {value:?} must be non-empty and made of letters, digits, '-', '_' and '.'"
        ))
    } else {
        Ok(value.to_owned())
    }
});

checked_string!(LogLevel, String, "a log filter such as \"info\"", |value| {
    tracing_subscriber::EnvFilter::builder()
        .parse(value)
        .map(|_| value.to_owned())
        .map_err(|e| format!("invalid log level {value:?}: {e}"))
});

checked_string!(ProgramPath, PathBuf, "a path", |value| {
    if value.is_empty() || value.contains('\0') {
        Err(format!("invalid path {value:?}"))
    } else {
        Ok(PathBuf::from(value))
    }
});

/// A non-empty list of socket addresses.
#[derive(Debug)]
struct ListenAddrs(Vec<SocketAddr>);

impl<'de> Deserialize<'de> for ListenAddrs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let addrs = Vec::<ListenAddr>::deserialize(deserializer)?;
        if addrs.is_empty() {
            return Err(de::Error::custom(
                "listen must name at least one address, e.g. [\"[::]:9943\"]",
            ));
        }
        Ok(ListenAddrs(addrs.into_iter().map(|a| a.0).collect()))
    }
}

checked_string!(
    ListenAddr,
    SocketAddr,
    "a socket address such as \"[::]:9943\"",
    |value| {
        value.parse().map_err(|_| {
            format!(
                "invalid socket address {value:?} (write IP:PORT, e.g. \"0.0.0.0:9943\" or \"[::1]:9943\")"
            )
        })
    }
);
