//! What a reload can apply: `[throttle]` and the DRBD tools (`[drbd]
//! drbdsetup`, `drbdadm`) change live; the keys that need a restart are
//! named so the operator can be told. Pure.
//!
//! `[api] web-config` is read again on every reload (the file may have
//! changed even if its name did not), see `Daemon::reload`.
//!
//! Every `[linstor]` key needs a restart: the client (TLS identity, token,
//! controllers) and the report loop are built once at start.

use super::Config;

/// The keys (dotted, as written in the file) whose new values only take
/// effect after a restart, in file order. `[throttle]`, `drbd.drbdsetup`
/// and `drbd.drbdadm` are not among them.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let checks: [(&'static str, bool); 10] = [
        ("node-name", old.node_name != new.node_name),
        ("log-level", old.log_level != new.log_level),
        (
            "drbd.statistics-poll-interval",
            old.drbd.statistics_poll_interval != new.drbd.statistics_poll_interval,
        ),
        (
            "drbd.reconcile-interval",
            old.drbd.reconcile_interval != new.drbd.reconcile_interval,
        ),
        (
            "drbd.sysfs-root",
            old.drbd.sysfs_root != new.drbd.sysfs_root,
        ),
        ("api.listen", old.api.listen != new.api.listen),
        ("api.status", old.api.status != new.api.status),
        (
            "state.directory",
            old.state.directory != new.state.directory,
        ),
        ("pressure", old.pressure != new.pressure),
        (
            "metrics.enum-series",
            old.metrics.enum_series != new.metrics.enum_series,
        ),
    ];
    let (a, b) = (&old.linstor, &new.linstor);
    let linstor: [(&'static str, bool); 12] = [
        ("linstor.enabled", a.enabled != b.enabled),
        ("linstor.controllers", a.controllers != b.controllers),
        ("linstor.ca-file", a.ca_file != b.ca_file),
        (
            "linstor.client-certificate",
            a.client_certificate != b.client_certificate,
        ),
        ("linstor.client-key", a.client_key != b.client_key),
        (
            "linstor.bearer-token-file",
            a.bearer_token_file != b.bearer_token_file,
        ),
        ("linstor.timeout", a.timeout != b.timeout),
        (
            "linstor.connect-timeout",
            a.connect_timeout != b.connect_timeout,
        ),
        (
            "linstor.report-interval",
            a.report_interval != b.report_interval,
        ),
        (
            "linstor.policy-interval",
            a.policy_interval != b.policy_interval,
        ),
        ("linstor.instance", a.instance != b.instance),
        (
            "linstor.allow-plain-http-token",
            a.allow_plain_http_token != b.allow_plain_http_token,
        ),
    ];
    checks
        .into_iter()
        .chain(linstor)
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn config(text: &str) -> Config {
        Config::from_sources(&[(PathBuf::from("agent.toml"), text.to_owned())]).unwrap()
    }

    #[test]
    fn throttle_changes_are_live() {
        let old = config("node-name = \"a\"\n");
        let new =
            config("node-name = \"a\"\n[throttle]\nenabled = true\nlatency-target = \"9ms\"\n");
        assert_ne!(old, new);
        assert!(restart_needed(&old, &new).is_empty());
        assert!(restart_needed(&old, &old).is_empty());
    }

    #[test]
    fn drbd_tools_are_live() {
        let old = config("node-name = \"a\"\n");
        let new = config(
            "node-name = \"a\"\n[drbd]\ndrbdsetup = \"/x/drbdsetup\"\ndrbdadm = \"/x/drbdadm\"\n",
        );
        assert_ne!(old, new);
        assert!(restart_needed(&old, &new).is_empty());
    }

    #[test]
    fn the_rest_needs_a_restart() {
        let old = config("node-name = \"a\"\n");
        let new = config(
            "node-name = \"b\"\nlog-level = \"debug\"\n[drbd]\ndrbdsetup = \"/x/drbdsetup\"\nsysfs-root = \"/y\"\n[api]\nlisten = [\"127.0.0.1:1\"]\n[state]\ndirectory = \"/z\"\n",
        );
        assert_eq!(
            restart_needed(&old, &new),
            vec![
                "node-name",
                "log-level",
                "drbd.sysfs-root",
                "api.listen",
                "state.directory"
            ]
        );
        let linstor =
            config("node-name = \"a\"\n[linstor]\nenabled = true\nreport-interval = \"1m\"\n");
        assert_eq!(
            restart_needed(&old, &linstor),
            vec!["linstor.enabled", "linstor.report-interval"]
        );
    }
}
