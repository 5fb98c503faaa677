//! Where the LINSTOR controllers are: `[linstor] controllers`, else
//! `LS_CONTROLLERS`, else `[global] controllers=` in
//! `/etc/linstor/linstor-client.conf` — the conventions of LINSTOR's own
//! clients. Pure: the caller reads the environment and the file.
//!
//! Accepted forms, as the `linstor` client accepts them: `host`,
//! `host:port`, `[v6addr]:port`, `linstor://host` (HTTP, port 3370),
//! `linstor+ssl://host` (HTTPS, port 3371), `http://…`, `https://…`.

use std::fmt;

/// The controller's plain HTTP port.
pub const HTTP_PORT: u16 = 3370;
/// The controller's HTTPS port.
pub const HTTPS_PORT: u16 = 3371;

/// One controller's base URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Controller {
    pub https: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl Controller {
    /// `http(s)://host:port` (IPv6 in brackets), without a trailing slash.
    pub fn base_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base_url())
    }
}

/// A controller address that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControllerError {
    #[error("controller '{0}': empty host")]
    EmptyHost(String),
    #[error(
        "controller '{0}': unknown scheme (use linstor://, linstor+ssl://, http:// or https://)"
    )]
    Scheme(String),
    #[error("controller '{0}': invalid port")]
    Port(String),
    #[error("controller '{0}': a path is not allowed")]
    Path(String),
}

/// Parses one address.
pub fn parse_controller(text: &str) -> Result<Controller, ControllerError> {
    let original = text.trim();
    let (https, rest) = match original.split_once("://") {
        None => (false, original),
        Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
            "linstor" | "http" => (false, rest),
            "linstor+ssl" | "https" => (true, rest),
            _ => return Err(ControllerError::Scheme(original.to_owned())),
        },
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(ControllerError::Path(original.to_owned()));
    }
    let default_port = if https { HTTPS_PORT } else { HTTP_PORT };
    let port_of = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| ControllerError::Port(original.to_owned()))
    };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| ControllerError::EmptyHost(original.to_owned()))?;
        let port = match after.strip_prefix(':') {
            Some(p) => port_of(p)?,
            None if after.is_empty() => default_port,
            None => return Err(ControllerError::Port(original.to_owned())),
        };
        (host, port)
    } else if rest.matches(':').count() > 1 {
        // A bare IPv6 address without a port.
        (rest, default_port)
    } else {
        match rest.split_once(':') {
            Some((host, p)) => (host, port_of(p)?),
            None => (rest, default_port),
        }
    };
    if host.is_empty() {
        return Err(ControllerError::EmptyHost(original.to_owned()));
    }
    Ok(Controller {
        https,
        host: host.to_owned(),
        port,
    })
}

/// Parses a comma (or whitespace) separated list, as `LS_CONTROLLERS` and
/// `controllers=` hold. Duplicates are dropped, order kept.
pub fn parse_list(text: &str) -> Result<Vec<Controller>, ControllerError> {
    let mut out: Vec<Controller> = Vec::new();
    for item in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        let controller = parse_controller(item)?;
        if !out.contains(&controller) {
            out.push(controller);
        }
    }
    Ok(out)
}

/// The `controllers=` value of the `[global]` section of
/// `linstor-client.conf` (INI; `#` and `;` start comments).
pub fn client_conf_controllers(text: &str) -> Option<String> {
    let mut in_global = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_global = section.trim().eq_ignore_ascii_case("global");
            continue;
        }
        if !in_global {
            continue;
        }
        if let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) {
            if key.trim().eq_ignore_ascii_case("controllers") {
                return Some(value.trim().to_owned());
            }
        }
    }
    None
}

/// Where the list came from (for logs and status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Config,
    Environment,
    ClientConf,
    Default,
}

/// The controllers to use: the configured list, else `LS_CONTROLLERS`, else
/// the client configuration file, else `localhost`.
pub fn resolve(
    configured: &[String],
    environment: Option<&str>,
    client_conf: Option<&str>,
) -> Result<(Vec<Controller>, Source), ControllerError> {
    if !configured.is_empty() {
        let list = parse_list(&configured.join(","))?;
        return Ok((list, Source::Config));
    }
    if let Some(env) = environment.filter(|e| !e.trim().is_empty()) {
        return Ok((parse_list(env)?, Source::Environment));
    }
    if let Some(value) = client_conf.and_then(client_conf_controllers) {
        let list = parse_list(&value)?;
        if !list.is_empty() {
            return Ok((list, Source::ClientConf));
        }
    }
    Ok((parse_list("localhost")?, Source::Default))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> String {
        parse_controller(text).unwrap().base_url()
    }

    #[test]
    fn forms_of_an_address() {
        assert_eq!(url("ctrl"), "http://ctrl:3370");
        assert_eq!(url("ctrl:4000"), "http://ctrl:4000");
        assert_eq!(url("linstor://ctrl"), "http://ctrl:3370");
        assert_eq!(url("linstor+ssl://ctrl"), "https://ctrl:3371");
        assert_eq!(url("LINSTOR+SSL://ctrl:443/"), "https://ctrl:443");
        assert_eq!(url("https://10.0.0.1"), "https://10.0.0.1:3371");
        assert_eq!(url("[fd00::1]:3370"), "http://[fd00::1]:3370");
        assert_eq!(url("linstor+ssl://[fd00::1]"), "https://[fd00::1]:3371");
        assert_eq!(url("fd00::1"), "http://[fd00::1]:3370");
    }

    #[test]
    fn bad_addresses_are_named() {
        assert_eq!(
            parse_controller("ftp://x"),
            Err(ControllerError::Scheme("ftp://x".into()))
        );
        assert_eq!(
            parse_controller("x:0"),
            Err(ControllerError::Port("x:0".into()))
        );
        assert_eq!(
            parse_controller("x:99999"),
            Err(ControllerError::Port("x:99999".into()))
        );
        assert_eq!(
            parse_controller("linstor://"),
            Err(ControllerError::EmptyHost("linstor://".into()))
        );
        assert_eq!(
            parse_controller("http://x/v1"),
            Err(ControllerError::Path("http://x/v1".into()))
        );
        assert!(parse_controller("x:").is_err());
    }

    #[test]
    fn lists_and_precedence() {
        let list = parse_list("linstor://a, linstor+ssl://b  a").unwrap();
        assert_eq!(
            list.iter().map(Controller::base_url).collect::<Vec<_>>(),
            ["http://a:3370", "https://b:3371"]
        );
        let conf = "# comment\n[other]\ncontrollers = z\n[global]\ncontrollers = c1,c2\n";
        assert_eq!(client_conf_controllers(conf).as_deref(), Some("c1,c2"));
        let (list, source) = resolve(&[], None, Some(conf)).unwrap();
        assert_eq!((list.len(), source), (2, Source::ClientConf));
        let (list, source) = resolve(&[], Some("e1"), Some(conf)).unwrap();
        assert_eq!((list[0].host.as_str(), source), ("e1", Source::Environment));
        let (list, source) = resolve(&["k".into()], Some("e1"), Some(conf)).unwrap();
        assert_eq!((list[0].host.as_str(), source), ("k", Source::Config));
        let (list, source) = resolve(&[], Some("  "), None).unwrap();
        assert_eq!(
            (list[0].base_url(), source),
            ("http://localhost:3370".into(), Source::Default)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,40}") {
            let _ = parse_list(&text);
            let _ = client_conf_controllers(&text);
        }

        #[test]
        fn a_parsed_url_parses_back_to_itself(host in "[a-z][a-z0-9.-]{0,20}", port in 1u16.., https: bool) {
            let c = Controller { https, host, port };
            proptest::prop_assert_eq!(parse_controller(&c.base_url()), Ok(c));
        }
    }
}
