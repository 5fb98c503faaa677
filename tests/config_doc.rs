//! `config/agent.toml` (shipped as /etc/drbd-agent/agent.toml) against the
//! code: it loads, it documents exactly the keys the parser accepts (asked
//! from serde, so a new key fails here until it is documented), and the
//! values it shows as defaults are the defaults.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use drbd_agent::assets::config_doc::{parse, uncomment};
use drbd_agent::config::{schema, Config, DEFAULT_CONFIG_TEXT};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/agent.toml");

fn load(text: &str) -> Config {
    Config::from_sources(&[(PathBuf::from("agent.toml"), text.to_owned())])
        .unwrap_or_else(|e| panic!("{e}\n--- text ---\n{text}"))
}

fn defaults() -> Config {
    Config::from_sources(&[]).expect("no sources = defaults")
}

#[test]
fn the_library_embeds_the_shipped_file() {
    let on_disk = std::fs::read_to_string(FILE).expect("config/agent.toml");
    assert_eq!(on_disk, DEFAULT_CONFIG_TEXT);
}

#[test]
fn check_config_accepts_the_shipped_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_drbd-agent"))
        .args(["check-config", "--config", FILE])
        .output()
        .expect("run drbd-agent");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check-config failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("configuration OK"), "{stdout}");
}

#[test]
fn the_shipped_file_as_is_means_the_defaults() {
    let mut loaded = load(DEFAULT_CONFIG_TEXT);
    loaded.sources.clear();
    assert_eq!(loaded, defaults());
}

#[test]
fn every_accepted_key_is_documented_and_nothing_else() {
    let schema = schema();
    assert!(
        schema.keys.len() >= 20,
        "the probe found too little: {schema:?}"
    );
    let sections = parse(DEFAULT_CONFIG_TEXT);
    let mut documented = BTreeSet::new();
    for section in &sections {
        for key in &section.keys {
            let dotted = section.dotted(&key.key);
            assert!(
                documented.insert(dotted.clone()),
                "{dotted} documented twice"
            );
            assert!(
                key.text.iter().any(|line| !line.trim().is_empty()),
                "{dotted} has no comment saying what it means"
            );
        }
    }
    let missing: Vec<_> = schema.keys.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&schema.keys).collect();
    assert!(
        missing.is_empty(),
        "keys the code accepts but config/agent.toml does not document: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "keys config/agent.toml documents but the code rejects: {stale:?}"
    );
    // Tables are written [name], arrays of tables [[name]], as the code reads them.
    for section in sections.iter().filter(|s| !s.name.is_empty()) {
        let known = if section.array {
            &schema.arrays
        } else {
            &schema.tables
        };
        assert!(
            known.contains(&section.name),
            "[{}] (array: {}) is not a table of that kind in the code: {schema:?}",
            section.name,
            section.array
        );
    }
}

#[test]
fn the_values_shown_as_defaults_are_the_defaults() {
    let text = uncomment(DEFAULT_CONFIG_TEXT, true);
    assert!(text.contains("\nstatistics-poll-interval = "), "{text}");
    let mut loaded = load(&text);
    loaded.sources.clear();
    assert_eq!(
        loaded,
        defaults(),
        "a `#key = value` line is not the default"
    );
}

#[test]
fn the_examples_are_valid_too() {
    let text = uncomment(DEFAULT_CONFIG_TEXT, false);
    let loaded = load(&text);
    assert_eq!(loaded.node_name, "alpha");
    assert_eq!(loaded.throttle.policies.len(), 1, "{text}");
    assert_eq!(loaded.throttle.windows.len(), 1, "{text}");
    assert!(loaded.throttle.floor_cap.is_some());
}
