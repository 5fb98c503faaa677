//! The configuration loader: agent.toml + conf.d/*.toml from disk.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use drbd_agent::config::{conf_d_files, load, ConfigError};

#[test]
fn example_file_is_valid() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/config/agent.toml");
    let config = load(&path, true).unwrap();
    assert_eq!(config.node_name, "alpha");
    assert_eq!(config.drbd.reconcile_interval, Duration::from_secs(300));
}

#[test]
fn conf_d_sorted_by_name_and_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("agent.toml");
    fs::write(
        &main,
        "node-name = \"main\"\n[drbd]\nsysfs-root = \"/main\"\n",
    )
    .unwrap();
    let conf_d = dir.path().join("conf.d");
    fs::create_dir(&conf_d).unwrap();
    fs::write(conf_d.join("20-b.toml"), "node-name = \"b\"\n").unwrap();
    fs::write(conf_d.join("10-a.toml"), "node-name = \"a\"\n").unwrap();
    fs::write(conf_d.join("README"), "not toml, ignored").unwrap();
    let files = conf_d_files(&main).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["10-a.toml", "20-b.toml"]);
    let config = load(&main, true).unwrap();
    assert_eq!(config.node_name, "b");
    assert_eq!(config.drbd.sysfs_root, PathBuf::from("/main"));
    assert_eq!(config.sources.len(), 3);
}

#[test]
fn error_names_the_snippet() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("agent.toml");
    fs::write(&main, "").unwrap();
    fs::create_dir(dir.path().join("conf.d")).unwrap();
    let bad = dir.path().join("conf.d/90-bad.toml");
    fs::write(&bad, "[api]\nlisten = [\"nope\"]\n").unwrap();
    let message = load(&main, true).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}:2:", bad.display())),
        "{message}"
    );
    assert!(message.contains("api.listen"), "{message}");
}

#[test]
fn missing_main_file() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("agent.toml");
    assert!(matches!(load(&main, true), Err(ConfigError::Read { .. })));
    // Not required (the default path): defaults.
    let config = load(&main, false).unwrap();
    assert!(config.sources.is_empty());
}
