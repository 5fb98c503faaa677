//! What a reload can apply: only `[throttle]` changes live; the keys that
//! need a restart are named so the operator can be told. Pure.

use super::Config;

/// The keys (dotted, as written in the file) whose new values only take
/// effect after a restart, in file order. `[throttle]` is not among them.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let checks: [(&'static str, bool); 10] = [
        ("node-name", old.node_name != new.node_name),
        ("log-level", old.log_level != new.log_level),
        ("drbd.drbdsetup", old.drbd.drbdsetup != new.drbd.drbdsetup),
        ("drbd.drbdadm", old.drbd.drbdadm != new.drbd.drbdadm),
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
        (
            "state.directory",
            old.state.directory != new.state.directory,
        ),
        ("pressure", old.pressure != new.pressure),
    ];
    checks
        .into_iter()
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
                "drbd.drbdsetup",
                "drbd.sysfs-root",
                "api.listen",
                "state.directory"
            ]
        );
    }
}
