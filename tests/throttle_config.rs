//! `[throttle]` configuration: TOML in, validated policy out.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use chrono::NaiveDate;
use drbd_agent::throttle::{parse_days, parse_time_of_day, KibPerSec, Mode, ThrottleConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    throttle: ThrottleConfig,
}

fn load(text: &str) -> Result<ThrottleConfig, String> {
    toml::from_str::<File>(text)
        .map(|f| f.throttle)
        .map_err(|e| e.to_string())
}

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(h, min, 0)
        .unwrap()
}

const FULL: &str = r#"
[throttle]
enabled = true
mode = "observe"
latency-target = "5ms"
interval = "1s"
min-rate = "250KiB/s"
max-rate = "40MiB/s"
floor-doubling = "15m"

[[throttle.policy]]
resource = "pvc-db-*"
latency-target = "2ms"
min-rate = "1M"

[[throttle.policy]]
resource = "scratch-??"
enabled = false

[[throttle.policy]]
resource = "*"
max-rate = "80MiB/s"

[[throttle.window]]
days = ["mon-fri"]
start = "08:00"
end = "18:00"
latency-target = "3ms"

[[throttle.window]]
resource = "pvc-*"
days = ["sat", "sun"]
start = "22:00"
end = "02:00"
latency-target = "1ms"
"#;

#[test]
fn full_example_loads_validates_and_resolves() {
    let config = load(FULL).unwrap();
    config.validate().unwrap();
    assert!(config.enabled);
    assert_eq!(config.mode, Mode::Observe);
    assert_eq!(config.max_rate, KibPerSec::new(40 * 1024).unwrap());

    // 2024-06-05 is a Wednesday.
    let wed_noon = at(2024, 6, 5, 12, 0);
    let db = config.policy_for("pvc-db-orders", wed_noon);
    assert!(db.enabled);
    assert_eq!(db.policy_index, Some(0));
    assert_eq!(
        db.law.latency_target,
        Duration::from_millis(2),
        "policy 2ms beats window 3ms"
    );
    assert_eq!(db.law.min_rate.get(), 1024);
    assert_eq!(db.law.max_rate.get(), 40 * 1024);
    assert_eq!(db.law.floor_doubling, Duration::from_secs(900));
    assert_eq!(db.law.floor_cap.get(), 10 * 1024, "a quarter of max-rate");
    assert_eq!(db.open_windows, vec![0]);

    let other = config.policy_for("web", wed_noon);
    assert_eq!(other.policy_index, Some(2));
    assert_eq!(other.law.max_rate.get(), 80 * 1024);
    assert_eq!(
        other.law.latency_target,
        Duration::from_millis(3),
        "window applies"
    );
    let evening = config.policy_for("web", at(2024, 6, 5, 18, 0));
    assert_eq!(
        evening.law.latency_target,
        Duration::from_millis(5),
        "end is exclusive"
    );
    assert!(evening.open_windows.is_empty());

    assert!(!config.policy_for("scratch-01", wed_noon).enabled);
    assert!(config.policy_for("scratch-001", wed_noon).enabled);

    // The overnight weekend window: Saturday 23:00, and Sunday→Monday 01:00.
    let sat_late = config.policy_for("pvc-x", at(2024, 6, 8, 23, 0));
    assert_eq!(sat_late.law.latency_target, Duration::from_millis(1));
    let mon_early = config.policy_for("pvc-x", at(2024, 6, 10, 1, 0));
    assert_eq!(mon_early.law.latency_target, Duration::from_millis(1));
    let fri_late = config.policy_for("pvc-x", at(2024, 6, 7, 23, 0));
    assert_eq!(fri_late.law.latency_target, Duration::from_millis(5));
    let mon_late = config.policy_for("pvc-x", at(2024, 6, 10, 23, 0));
    assert_eq!(mon_late.law.latency_target, Duration::from_millis(5));
}

#[test]
fn defaults() {
    let config = load("[throttle]\n").unwrap();
    config.validate().unwrap();
    assert!(!config.enabled);
    let p = config.policy_for("r0", at(2024, 1, 1, 0, 0));
    assert!(!p.enabled, "disabled unless [throttle] enabled = true");
    assert_eq!(p.mode, Mode::Enforce);
    assert_eq!(p.interval, Duration::from_secs(1));
    assert_eq!(p.law.latency_target, Duration::from_millis(5));
    assert_eq!(p.law.min_rate.get(), 250);
    assert_eq!(p.law.max_rate.get(), 102_400);
    assert_eq!(p.policy_index, None);
}

#[test]
fn bad_values_are_named() {
    let cases = [
        ("[throttle]\nmin-rate = \"0K\"\n", "greater than zero"),
        ("[throttle]\nmax-rate = \"40\"\n", "no unit"),
        ("[throttle]\nmax-rate = \"40MB/s\"\n", "decimal unit"),
        ("[throttle]\nmode = \"auto\"\n", "unknown variant"),
        ("[throttle]\nlatency-target = \"5\"\n", "no unit"),
        ("[throttle]\nbogus = 1\n", "unknown field"),
        (
            "[throttle]\n[[throttle.window]]\ndays = [\"funday\"]\nstart = \"08:00\"\nend = \"09:00\"\nlatency-target = \"1ms\"\n",
            "unknown day",
        ),
        (
            "[throttle]\n[[throttle.window]]\nstart = \"8:00\"\nend = \"09:00\"\nlatency-target = \"1ms\"\n",
            "HH:MM",
        ),
    ];
    for (text, want) in cases {
        let e = load(text).unwrap_err();
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn out_of_range_values_fail_validation_with_their_key() {
    let cases = [
        (
            "min-rate = \"50M\"\nmax-rate = \"40M\"\n",
            "throttle.min-rate",
        ),
        ("latency-target = \"20s\"\n", "throttle.latency-target"),
        ("interval = \"100ms\"\n", "throttle.interval"),
        ("interval = \"2m\"\n", "throttle.interval"),
        ("floor-cap = \"100K\"\n", "throttle.floor-cap"),
        (
            "[[throttle.policy]]\nresource = \"a\"\nmin-rate = \"200M\"\n",
            "throttle.policy[0].min-rate",
        ),
        (
            "[[throttle.policy]]\nresource = \"\"\n",
            "throttle.policy[0].resource",
        ),
        (
            "[[throttle.window]]\nstart = \"08:00\"\nend = \"08:00\"\nlatency-target = \"1ms\"\n",
            "throttle.window[0].end",
        ),
        (
            "[[throttle.window]]\nstart = \"08:00\"\nend = \"09:00\"\nlatency-target = \"11s\"\n",
            "throttle.window[0].latency-target",
        ),
    ];
    for (body, key) in cases {
        let config = load(&format!("[throttle]\n{body}")).unwrap();
        let e = config.validate().unwrap_err();
        assert_eq!(e.key, key, "{body:?}: {e}");
    }
}

#[test]
fn days_and_times() {
    use chrono::Weekday::*;
    let weekend = parse_days(&["sat-mon"]).unwrap();
    assert!(weekend.contains(Sat) && weekend.contains(Sun) && weekend.contains(Mon));
    assert!(!weekend.contains(Tue));
    let some = parse_days(&["Monday", "wed"]).unwrap();
    assert!(some.contains(Mon) && some.contains(Wed) && !some.contains(Tue));
    assert!(parse_days(&["*"]).unwrap().contains(Thu));
    assert!(parse_days::<&str>(&[]).is_err());
    assert!(parse_days(&["mon-xyz"]).is_err());

    assert_eq!(
        parse_time_of_day("08:30").unwrap().seconds(),
        8 * 3600 + 1800
    );
    assert_eq!(parse_time_of_day("24:00").unwrap().seconds(), 86_400);
    assert_eq!(
        parse_time_of_day("23:59:59").unwrap().to_string(),
        "23:59:59"
    );
    for bad in ["24:01", "12:60", "1:00", "12", "12:00:00:00", "ab:cd", ""] {
        assert!(parse_time_of_day(bad).is_err(), "{bad}");
    }
}
