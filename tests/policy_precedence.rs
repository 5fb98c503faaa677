//! Throttle policy precedence, per key: LINSTOR resource definition >
//! resource group > local `[[throttle.policy]]` > `[throttle]`; invalid
//! controller values fall through to the next layer.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use chrono::NaiveDate;
use drbd_agent::linstor::policy::{from_responses, Origin};
use drbd_agent::throttle::{KibPerSec, Mode, ThrottleConfig};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct File {
    throttle: ThrottleConfig,
}

const LOCAL: &str = r#"
[throttle]
enabled = true
latency-target = "5ms"
min-rate = "250KiB/s"
max-rate = "40MiB/s"

[[throttle.policy]]
resource = "db-*"
latency-target = "2ms"
min-rate = "1MiB/s"

[[throttle.policy]]
resource = "scratch"
enabled = false

[[throttle.window]]
resource = "late"
start = "00:00"
end = "23:59"
latency-target = "1ms"
"#;

fn local() -> ThrottleConfig {
    toml::from_str::<File>(LOCAL).unwrap().throttle
}

fn noon() -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 6, 5)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
}

fn k(kib: u64) -> KibPerSec {
    KibPerSec::new(kib).unwrap()
}

fn remote() -> drbd_agent::linstor::policy::RemotePolicies {
    let groups = json!([
        {"name": "rg-db", "props": {
            "Aux/drbd-agent/latency-target": "3ms",
            "Aux/drbd-agent/max-rate": "100MiB/s",
            "Aux/drbd-agent/min-rate": "nonsense"
        }},
        {"name": "rg-quiet", "props": {"Aux/drbd-agent/throttle": "observe"}}
    ]);
    let definitions = json!([
        {"name": "db-orders", "resource_group_name": "rg-db",
         "props": {"Aux/drbd-agent/latency-target": "4ms"}},
        {"name": "db-users", "resource_group_name": "rg-db"},
        {"name": "scratch", "resource_group_name": "rg-quiet",
         "props": {"Aux/drbd-agent/throttle": "on"}},
        {"name": "web", "resource_group_name": "rg-quiet"},
        {"name": "late", "props": {"Aux/drbd-agent/latency-target": "8ms"}},
        {"name": "off", "props": {"Aux/drbd-agent/throttle": "off", "Aux/drbd-agent/max-rate": "0"}}
    ]);
    from_responses(&groups, &definitions).unwrap()
}

#[test]
fn definition_over_group_over_local_over_defaults() {
    let config = local();
    let remote = remote();
    let p = config.policy_with("db-orders", noon(), remote.get("db-orders"));
    assert_eq!(p.law.latency_target, Duration::from_millis(4));
    assert_eq!(p.origins.latency_target, Origin::ResourceDefinition);
    assert_eq!(p.law.max_rate, k(100 * 1024));
    assert_eq!(p.origins.max_rate, Origin::ResourceGroup);
    // The group's min-rate is invalid: the local entry's applies.
    assert_eq!(p.law.min_rate, k(1024));
    assert_eq!(p.origins.min_rate, Origin::LocalPolicy);

    let p = config.policy_with("db-users", noon(), remote.get("db-users"));
    assert_eq!(p.law.latency_target, Duration::from_millis(3));
    assert_eq!(p.origins.latency_target, Origin::ResourceGroup);

    // Not known to the controller: local entry, then defaults.
    let p = config.policy_with("db-new", noon(), remote.get("db-new"));
    assert_eq!(p.law.latency_target, Duration::from_millis(2));
    assert_eq!(p.origins.latency_target, Origin::LocalPolicy);
    assert_eq!(p.law.max_rate, k(40 * 1024));
    assert_eq!(p.origins.max_rate, Origin::Default);
    assert_eq!(p, config.policy_for("db-new", noon()));
}

#[test]
fn the_throttle_switch() {
    let config = local();
    let remote = remote();
    // Off locally, on in the definition: the definition wins; the group's
    // observe is beneath it.
    let p = config.policy_with("scratch", noon(), remote.get("scratch"));
    assert!(p.enabled);
    assert_eq!(p.origins.enabled, Origin::ResourceDefinition);
    assert_eq!(p.mode, Mode::Enforce);
    // The group says observe.
    let p = config.policy_with("web", noon(), remote.get("web"));
    assert!(p.enabled);
    assert_eq!(p.mode, Mode::Observe);
    assert_eq!(p.origins.mode, Origin::ResourceGroup);
    // Off in the definition (its bad max-rate is ignored, not fatal).
    let p = config.policy_with("off", noon(), remote.get("off"));
    assert!(!p.enabled);
    assert!(remote
        .problems
        .iter()
        .any(|e| e.object == "resource-definition off" && e.key.ends_with("max-rate")));
    // `[throttle] enabled = false` on this node beats the controller.
    let mut disabled = local();
    disabled.enabled = false;
    let p = disabled.policy_with("scratch", noon(), remote.get("scratch"));
    assert!(!p.enabled);
    assert_eq!(p.origins.enabled, Origin::Default);
}

#[test]
fn an_open_window_still_tightens_the_target() {
    let config = local();
    let remote = remote();
    let p = config.policy_with("late", noon(), remote.get("late"));
    assert_eq!(p.law.latency_target, Duration::from_millis(1));
    assert_eq!(p.origins.latency_target, Origin::Window);
}
