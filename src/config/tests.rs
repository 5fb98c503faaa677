use super::*;
use crate::throttle::ThrottleConfig;

fn src(name: &str, text: &str) -> (PathBuf, String) {
    (PathBuf::from(name), text.to_owned())
}

fn invalid(result: Result<Config, ConfigError>) -> (PathBuf, usize, Option<String>, String) {
    match result {
        Err(ConfigError::Invalid {
            file,
            line,
            key,
            message,
            ..
        }) => (file, line, key, message),
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[test]
fn defaults() {
    let config = Config::from_sources(&[]).unwrap();
    assert_eq!(config.node_name, default_node_name());
    assert_eq!(config.log_level, None);
    assert_eq!(config.drbd, DrbdConfig::default());
    assert_eq!(config.drbd.drbdsetup, PathBuf::from("drbdsetup"));
    assert_eq!(config.drbd.drbdadm, PathBuf::from("drbdadm"));
    assert_eq!(
        config.drbd.statistics_poll_interval,
        Duration::from_secs(10)
    );
    assert_eq!(config.drbd.reconcile_interval, Duration::from_secs(300));
    assert_eq!(config.drbd.sysfs_root, PathBuf::from("/sys"));
    assert_eq!(
        config.api.listen,
        vec!["[::]:9943".parse::<SocketAddr>().unwrap()]
    );
    // An empty file is also all defaults.
    let empty = Config::from_sources(&[src("a.toml", "")]).unwrap();
    assert_eq!(empty.drbd, config.drbd);
    assert_eq!(empty.sources, vec![PathBuf::from("a.toml")]);
}

#[test]
fn full_file() {
    let text = r#"
node-name = "alpha"
log-level = "drbd_agent=debug,info"

[drbd]
drbdsetup = "/opt/drbd/drbdsetup"
drbdadm = "/opt/drbd/drbdadm"
statistics-poll-interval = "500ms"
reconcile-interval = "2m"
sysfs-root = "/tmp/sys"

[api]
listen = ["127.0.0.1:1234", "[::1]:1234"]
"#;
    let config = Config::from_sources(&[src("agent.toml", text)]).unwrap();
    assert_eq!(config.node_name, "alpha");
    assert_eq!(config.log_level.as_deref(), Some("drbd_agent=debug,info"));
    assert_eq!(config.drbd.drbdsetup, PathBuf::from("/opt/drbd/drbdsetup"));
    assert_eq!(config.drbd.drbdadm, PathBuf::from("/opt/drbd/drbdadm"));
    assert_eq!(
        config.drbd.statistics_poll_interval,
        Duration::from_millis(500)
    );
    assert_eq!(config.drbd.reconcile_interval, Duration::from_secs(120));
    assert_eq!(config.drbd.sysfs_root, PathBuf::from("/tmp/sys"));
    assert_eq!(config.api.listen.len(), 2);
    assert!(config.summary().contains("node-name: alpha"));
    assert!(config.summary().contains("statistics-poll-interval: 500ms"));
}

#[test]
fn later_files_override_key_by_key() {
    let sources = [
        src(
            "agent.toml",
            "node-name = \"a\"\n[drbd]\ndrbdsetup = \"/a/drbdsetup\"\nreconcile-interval = \"1m\"\n",
        ),
        src("conf.d/10-x.toml", "[drbd]\ndrbdsetup = \"/b/drbdsetup\"\n"),
        src("conf.d/20-y.toml", "node-name = \"c\"\n"),
    ];
    let config = Config::from_sources(&sources).unwrap();
    assert_eq!(config.node_name, "c");
    assert_eq!(config.drbd.drbdsetup, PathBuf::from("/b/drbdsetup"));
    // Not repeated in later files: kept from the first.
    assert_eq!(config.drbd.reconcile_interval, Duration::from_secs(60));
    // Order matters.
    let reversed: Vec<_> = sources.iter().rev().cloned().collect();
    let config = Config::from_sources(&reversed).unwrap();
    assert_eq!(config.node_name, "a");
    assert_eq!(config.drbd.drbdsetup, PathBuf::from("/a/drbdsetup"));
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let sources = [
        src("agent.toml", "node-name = \"a\"\n"),
        src(
            "conf.d/50-bad.toml",
            "# comment\n[drbd]\ndrbdsetup = \"x\"\nstatistics-poll = \"10s\"\n",
        ),
    ];
    let result = Config::from_sources(&sources);
    let message = result.as_ref().unwrap_err().to_string();
    let (file, line, key, text) = invalid(result);
    assert_eq!(file, PathBuf::from("conf.d/50-bad.toml"));
    assert_eq!(line, 4);
    assert_eq!(key.as_deref(), Some("drbd.statistics-poll"));
    assert!(text.contains("unknown field `statistics-poll`"), "{text}");
    assert!(
        message.starts_with("conf.d/50-bad.toml:4:1: key `drbd.statistics-poll`: "),
        "{message}"
    );
}

#[test]
fn unknown_top_level_key_and_table() {
    let (_, line, key, text) = invalid(Config::from_sources(&[src(
        "a.toml",
        "\n\nnodename = \"x\"\n",
    )]));
    assert_eq!(line, 3);
    assert_eq!(key.as_deref(), Some("nodename"));
    assert!(text.contains("nodename"), "{text}");

    let (_, line, _, text) = invalid(Config::from_sources(&[src(
        "a.toml",
        "node-name = \"x\"\n[metricz]\nlisten = []\n",
    )]));
    assert_eq!(line, 2);
    assert!(text.contains("metricz"), "{text}");
}

#[test]
fn bad_duration() {
    let (file, line, key, text) = invalid(Config::from_sources(&[src(
        "agent.toml",
        "[drbd]\nreconcile-interval = \"5 minutes\"\n",
    )]));
    assert_eq!(file, PathBuf::from("agent.toml"));
    assert_eq!(line, 2);
    assert_eq!(key.as_deref(), Some("drbd.reconcile-interval"));
    assert!(text.contains("unknown unit"), "{text}");

    let (_, _, _, text) = invalid(Config::from_sources(&[src(
        "agent.toml",
        "[drbd]\nstatistics-poll-interval = 10\n",
    )]));
    assert!(text.contains("duration string"), "{text}");

    let (_, _, _, text) = invalid(Config::from_sources(&[src(
        "agent.toml",
        "[drbd]\nstatistics-poll-interval = \"0s\"\n",
    )]));
    assert!(text.contains("greater than zero"), "{text}");
}

#[test]
fn bad_address() {
    let (_, line, key, text) = invalid(Config::from_sources(&[src(
        "agent.toml",
        "[api]\nlisten = [\n  \"127.0.0.1:9943\",\n  \"localhost:9943\",\n]\n",
    )]));
    assert_eq!(line, 4);
    assert_eq!(key.as_deref(), Some("api.listen"));
    assert!(
        text.contains("invalid socket address \"localhost:9943\""),
        "{text}"
    );

    let (_, line, _, text) = invalid(Config::from_sources(&[src(
        "agent.toml",
        "[api]\nlisten = []\n",
    )]));
    assert_eq!(line, 2);
    assert!(text.contains("at least one address"), "{text}");
}

#[test]
fn bad_scalars() {
    let (_, _, key, text) = invalid(Config::from_sources(&[src(
        "a.toml",
        "node-name = \"two words\"\n",
    )]));
    assert_eq!(key.as_deref(), Some("node-name"));
    assert!(text.contains("white space"), "{text}");

    let (_, _, key, text) = invalid(Config::from_sources(&[src(
        "a.toml",
        "log-level = \"info,=[\"\n",
    )]));
    assert_eq!(key.as_deref(), Some("log-level"));
    assert!(text.contains("invalid log level"), "{text}");

    let (_, line, _, _) = invalid(Config::from_sources(&[src(
        "a.toml",
        "node-name = \"a\"\nthis is not toml\n",
    )]));
    assert_eq!(line, 2);
}

#[test]
fn state_and_throttle_defaults() {
    let config = Config::from_sources(&[]).unwrap();
    assert_eq!(config.state.directory, PathBuf::from("/var/lib/drbd-agent"));
    assert!(!config.throttle.enabled);
    assert_eq!(config.throttle, ThrottleConfig::default());
}

#[test]
fn throttle_merged_key_by_key() {
    let sources = [
        src(
            "agent.toml",
            "[state]\ndirectory = \"/tmp/st\"\n[throttle]\nenabled = true\nlatency-target = \"3ms\"\ninterval = \"500ms\"\n",
        ),
        src(
            "conf.d/10.toml",
            "[throttle]\nmode = \"observe\"\ninterval = \"2s\"\n[[throttle.policy]]\nresource = \"db-*\"\nmin-rate = \"1MiB/s\"\n",
        ),
    ];
    let config = Config::from_sources(&sources).unwrap();
    assert_eq!(config.state.directory, PathBuf::from("/tmp/st"));
    assert!(config.throttle.enabled);
    assert_eq!(config.throttle.mode, crate::throttle::Mode::Observe);
    assert_eq!(config.throttle.latency_target.0, Duration::from_millis(3));
    assert_eq!(config.throttle.interval.0, Duration::from_secs(2));
    assert_eq!(config.throttle.policies.len(), 1);
    assert!(config.summary().contains("state directory: /tmp/st"));
}

#[test]
fn throttle_bad_value_has_position() {
    let (file, line, key, text) = invalid(Config::from_sources(&[src(
        "agent.toml",
        "[throttle]\nenabled = true\nmin-rate = \"0KiB/s\"\n",
    )]));
    assert_eq!(file, PathBuf::from("agent.toml"));
    assert_eq!(line, 3);
    assert_eq!(key.as_deref(), Some("throttle.min-rate"));
    assert!(text.contains("greater than zero"), "{text}");

    let (_, line, key, _) = invalid(Config::from_sources(&[src(
        "agent.toml",
        "[throttle]\nlatency-targett = \"5ms\"\n",
    )]));
    assert_eq!(line, 2);
    assert_eq!(key.as_deref(), Some("throttle.latency-targett"));

    let (_, line, key, _) = invalid(Config::from_sources(&[src(
        "agent.toml",
        "[state]\ndir = \"/x\"\n",
    )]));
    assert_eq!(line, 2);
    assert_eq!(key.as_deref(), Some("state.dir"));
}

#[test]
fn throttle_range_error_names_the_file_that_set_it() {
    let sources = [
        src("agent.toml", "[throttle]\nmax-rate = \"10MiB/s\"\n"),
        src(
            "conf.d/20.toml",
            "# raise the floor\n[throttle]\nenabled = true\nmin-rate = \"20MiB/s\"\n",
        ),
    ];
    let result = Config::from_sources(&sources);
    let message = result.as_ref().unwrap_err().to_string();
    let (file, line, key, text) = invalid(result);
    assert_eq!(file, PathBuf::from("conf.d/20.toml"));
    assert_eq!(line, 4);
    assert_eq!(key.as_deref(), Some("throttle.min-rate"));
    assert!(text.contains("above max-rate"), "{text}");
    assert!(
        message.starts_with("conf.d/20.toml:4:1: key `throttle.min-rate`"),
        "{message}"
    );

    let (file, line, key, _) = invalid(Config::from_sources(&[src(
        "a.toml",
        "[throttle]\n[[throttle.policy]]\nresource = \"x\"\n[[throttle.policy]]\nresource = \"y\"\nlatency-target = \"60s\"\n",
    )]));
    assert_eq!(file, PathBuf::from("a.toml"));
    assert_eq!(line, 6);
    assert_eq!(key.as_deref(), Some("throttle.policy[1].latency-target"));
}

#[test]
fn metrics_enum_series_default_merge_and_bad_value() {
    use crate::metrics::EnumSeries;
    let config = Config::from_sources(&[]).unwrap();
    assert_eq!(config.metrics.enum_series, EnumSeries::Current);

    let sources = [
        src("agent.toml", "[metrics]\nenum-series = \"all\"\n"),
        src("conf.d/10.toml", "[api]\nstatus = \"local\"\n"),
    ];
    let config = Config::from_sources(&sources).unwrap();
    assert_eq!(config.metrics.enum_series, EnumSeries::All);
    let later = [
        src("agent.toml", "[metrics]\nenum-series = \"all\"\n"),
        src("conf.d/10.toml", "[metrics]\nenum-series = \"current\"\n"),
    ];
    let newer = Config::from_sources(&later).unwrap();
    assert_eq!(newer.metrics.enum_series, EnumSeries::Current);
    assert_eq!(
        restart_needed(&config, &newer),
        ["api.status", "metrics.enum-series"]
    );

    let (file, line, key, text) = invalid(Config::from_sources(&[src(
        "agent.toml",
        "node-name = \"a\"\n[metrics]\nenum-series = \"some\"\n",
    )]));
    assert_eq!(file, PathBuf::from("agent.toml"));
    assert_eq!(line, 3);
    assert_eq!(key.as_deref(), Some("metrics.enum-series"));
    assert!(
        text.contains("\"current\"") && text.contains("\"all\""),
        "{text}"
    );

    let (_, _, _, text) = invalid(Config::from_sources(&[src(
        "agent.toml",
        "[metrics]\nseries = \"all\"\n",
    )]));
    assert!(
        text.contains("enum-series"),
        "unknown key lists the known: {text}"
    );
}
