//! `[linstor]`: reporting to the LINSTOR controller's key-value store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::throttle_merge::find_key;
use super::{line_col, ConfigError};

/// Where the satellite writes the bearer token (API 1.28).
pub const DEFAULT_BEARER_TOKEN_FILE: &str = "/var/lib/linstor.d/auth.json";

/// The default key-value store instance.
pub const DEFAULT_INSTANCE: &str = "drbd-agent";

/// The validated `[linstor]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinstorConfig {
    pub enabled: bool,
    /// As written (`linstor://h`, `linstor+ssl://h`, `h:port`, ...); empty =
    /// `LS_CONTROLLERS`, then `/etc/linstor/linstor-client.conf`, then localhost.
    pub controllers: Vec<String>,
    /// PEM CA to trust for HTTPS controllers (besides the built-in roots).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (controllers with a truststore require one).
    pub client_certificate: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key: Option<PathBuf>,
    /// `{"token": "..."}`; `None` = the default file, when it exists.
    pub bearer_token_file: Option<PathBuf>,
    /// Whole request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// At most one write per interval.
    pub report_interval: Duration,
    /// How often throttle policies are read from the controller.
    pub policy_interval: Duration,
    /// The key-value store instance.
    pub instance: String,
    /// `allow-plain-http-token`: send the bearer token to `http://`
    /// controllers too (by default it goes over TLS only, and a request to
    /// a plain-HTTP controller with a token is refused).
    pub allow_plain_http_token: bool,
}

impl Default for LinstorConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            controllers: Vec::new(),
            ca_file: None,
            client_certificate: None,
            client_key: None,
            bearer_token_file: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            report_interval: Duration::from_secs(15),
            policy_interval: Duration::from_secs(60),
            instance: DEFAULT_INSTANCE.to_owned(),
            allow_plain_http_token: false,
        }
    }
}

impl LinstorConfig {
    /// The token file to read: the configured one, else the default one
    /// when `exists` says it is there.
    pub fn token_file(&self, exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
        if let Some(file) = &self.bearer_token_file {
            return Some(file.clone());
        }
        let default = Path::new(DEFAULT_BEARER_TOKEN_FILE);
        exists(default).then(|| default.to_owned())
    }
}

/// Checks across keys, once merged: certificate and key go together.
pub(super) fn check(
    config: &LinstorConfig,
    sources: &[(PathBuf, String)],
) -> Result<(), ConfigError> {
    let missing = match (&config.client_certificate, &config.client_key) {
        (Some(_), None) => Some(("linstor.client-certificate", "client-key")),
        (None, Some(_)) => Some(("linstor.client-key", "client-certificate")),
        _ => None,
    };
    let Some((key, other)) = missing else {
        return Ok(());
    };
    let message = format!("needs `{other}` too (a client certificate and its key go together)");
    let found = sources
        .iter()
        .rev()
        .find_map(|(path, text)| find_key(text, key).map(|line| (path, text, line)));
    Err(match found {
        Some((path, text, line)) => {
            let offset: usize = text.lines().take(line - 1).map(|l| l.len() + 1).sum();
            let (line, column) = line_col(text, offset);
            ConfigError::Invalid {
                file: path.clone(),
                line,
                column,
                key: Some(key.to_owned()),
                message,
            }
        }
        None => ConfigError::Invalid {
            file: sources.last().map(|(p, _)| p.clone()).unwrap_or_default(),
            line: 1,
            column: 1,
            key: Some(key.to_owned()),
            message,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_sources(&[(PathBuf::from("agent.toml"), text.to_owned())])
    }

    #[test]
    fn defaults() {
        let config = load("").unwrap();
        assert_eq!(config.linstor, LinstorConfig::default());
        assert!(!config.linstor.enabled);
        assert_eq!(config.linstor.report_interval, Duration::from_secs(15));
        assert_eq!(config.linstor.instance, "drbd-agent");
        assert_eq!(
            config.linstor.token_file(|_| true),
            Some(PathBuf::from(DEFAULT_BEARER_TOKEN_FILE))
        );
        assert_eq!(config.linstor.token_file(|_| false), None);
    }

    #[test]
    fn a_full_section() {
        let config = load(
            "[linstor]\nenabled = true\ncontrollers = [\"linstor+ssl://a\", \"b:3370\"]\nca-file = \"/ca.pem\"\nclient-certificate = \"/c.pem\"\nclient-key = \"/k.pem\"\nbearer-token-file = \"/t.json\"\ntimeout = \"5s\"\nconnect-timeout = \"1s\"\nreport-interval = \"30s\"\ninstance = \"agents\"\n",
        )
        .unwrap();
        let l = &config.linstor;
        assert!(l.enabled);
        assert_eq!(l.controllers, ["linstor+ssl://a", "b:3370"]);
        assert_eq!(l.client_key.as_deref(), Some(Path::new("/k.pem")));
        assert_eq!(l.timeout, Duration::from_secs(5));
        assert_eq!(l.report_interval, Duration::from_secs(30));
        assert_eq!(l.instance, "agents");
        assert_eq!(l.token_file(|_| false), Some(PathBuf::from("/t.json")));
    }

    #[test]
    fn bad_values_are_located() {
        let error = load("[linstor]\nenabled = true\ncontrollers = [\"ftp://x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("agent.toml:3:"), "{error}");
        assert!(error.contains("linstor.controllers"), "{error}");
        assert!(error.contains("unknown scheme"), "{error}");
        let error = load("[linstor]\nreport-interval = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("agent.toml:2:"), "{error}");
        let error = load("[linstor]\nkv-instance = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field"), "{error}");
        let error = load("[linstor]\ninstance = \"a/b\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("instance"), "{error}");
    }

    #[test]
    fn certificate_needs_its_key() {
        let error = load("[linstor]\nenabled = true\nclient-certificate = \"/c.pem\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "agent.toml:3:1: key `linstor.client-certificate`: needs `client-key` too (a client certificate and its key go together)"
        );
    }
}
