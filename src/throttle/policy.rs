//! The `[throttle]` configuration: types (serde), pure validation, and
//! [`ThrottleConfig::policy_for`], the policy in force for one resource at
//! one local time.

use std::fmt;
use std::time::Duration;

use chrono::{Datelike, NaiveDateTime, Timelike, Weekday};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::glob::glob_match;
use super::law::{LawPolicy, Statistic};
use super::rate::KibPerSec;
use crate::config::HumanDuration;
use crate::linstor::policy::{Origin, PolicyProps, RemotePolicy};

/// `enforce` sets the rate; `observe` computes and reports it only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    Enforce,
    Observe,
}

/// `[throttle]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ThrottleConfig {
    pub enabled: bool,
    pub mode: Mode,
    pub latency_target: HumanDuration,
    pub latency_statistic: Statistic,
    pub interval: HumanDuration,
    pub min_rate: KibPerSec,
    pub max_rate: KibPerSec,
    /// The floor doubles every this long at reduced redundancy.
    pub floor_doubling: HumanDuration,
    /// The floor rises up to this (default: a quarter of max-rate).
    pub floor_cap: Option<KibPerSec>,
    /// `[[throttle.policy]]`, first match wins.
    #[serde(rename = "policy")]
    pub policies: Vec<PolicyEntry>,
    /// `[[throttle.window]]`, every active match applies (strictest target).
    #[serde(rename = "window")]
    pub windows: Vec<Window>,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            mode: Mode::Enforce,
            latency_target: HumanDuration(Duration::from_millis(5)),
            latency_statistic: Statistic::Mean,
            interval: HumanDuration(Duration::from_secs(1)),
            min_rate: KibPerSec::new(250).unwrap_or(KibPerSec::MIN),
            max_rate: KibPerSec::new(102_400).unwrap_or(KibPerSec::MAX),
            floor_doubling: HumanDuration(Duration::from_secs(600)),
            floor_cap: None,
            policies: Vec::new(),
            windows: Vec::new(),
        }
    }
}

/// `[[throttle.policy]]`: overrides for resources whose name matches.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PolicyEntry {
    /// A glob over resource names (`*`, `?`).
    pub resource: String,
    /// `false` = the agent leaves these resources alone.
    pub enabled: Option<bool>,
    pub latency_target: Option<HumanDuration>,
    pub min_rate: Option<KibPerSec>,
    pub max_rate: Option<KibPerSec>,
}

/// `[[throttle.window]]`: a declared ingest window with a stricter target.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Window {
    /// A glob over resource names; default all.
    #[serde(default = "all_resources")]
    pub resource: String,
    /// Days the window starts on; default every day.
    #[serde(default)]
    pub days: Days,
    pub start: TimeOfDay,
    /// Before `start` = the window runs past midnight.
    pub end: TimeOfDay,
    pub latency_target: HumanDuration,
}

fn all_resources() -> String {
    "*".to_owned()
}

/// A set of weekdays, written `["mon", "wed"]`, `["mon-fri"]` or `["*"]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days(u8);

impl Default for Days {
    fn default() -> Self {
        Days(0x7f)
    }
}

impl Days {
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Why a `days` list or a time of day was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("unknown day {0:?} (mon … sun, a range like mon-fri, or *)")]
    UnknownDay(String),
    #[error("days is empty (leave it out for every day)")]
    NoDays,
    #[error("time {0:?} is not HH:MM or HH:MM:SS (00:00 to 24:00)")]
    BadTime(String),
}

fn day_index(name: &str) -> Result<u32, ScheduleError> {
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let lower = name.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .zip(FULL)
        .position(|(short, full)| lower == *short || lower == full)
        .map(|i| i as u32)
        .ok_or_else(|| ScheduleError::UnknownDay(name.to_owned()))
}

/// Parses day names and ranges (`sat-mon` wraps over the week end).
pub fn parse_days<S: AsRef<str>>(items: &[S]) -> Result<Days, ScheduleError> {
    if items.is_empty() {
        return Err(ScheduleError::NoDays);
    }
    let mut mask = 0u8;
    for item in items {
        let item = item.as_ref().trim();
        if item == "*" {
            mask = 0x7f;
            continue;
        }
        match item.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day_index(from)?, day_index(to)?);
                let mut d = from;
                loop {
                    mask |= 1 << d;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => mask |= 1 << day_index(item)?,
        }
    }
    Ok(Days(mask))
}

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(deserializer)?;
        parse_days(&items).map_err(de::Error::custom)
    }
}

/// Seconds after midnight, `"HH:MM"` or `"HH:MM:SS"`; `"24:00"` is the end
/// of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(u32);

impl TimeOfDay {
    pub fn seconds(self) -> u32 {
        self.0
    }
}

/// Parses `HH:MM[:SS]` (00:00 to 24:00).
pub fn parse_time_of_day(text: &str) -> Result<TimeOfDay, ScheduleError> {
    let bad = || ScheduleError::BadTime(text.to_owned());
    let parts: Vec<&str> = text.trim().split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(bad());
    }
    let mut values = [0u32; 3];
    for (slot, part) in values.iter_mut().zip(&parts) {
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        *slot = part.parse().map_err(|_| bad())?;
    }
    let [h, m, s] = values;
    let seconds = h * 3600 + m * 60 + s;
    if m > 59 || s > 59 || seconds > 24 * 3600 {
        return Err(bad());
    }
    Ok(TimeOfDay(seconds))
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_time_of_day(&text).map_err(de::Error::custom)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 3600, self.0 / 60 % 60)?;
        if self.0 % 60 != 0 {
            write!(f, ":{:02}", self.0 % 60)?;
        }
        Ok(())
    }
}

impl Window {
    /// Whether the window is open at `now` (local time).
    pub fn is_open(&self, now: NaiveDateTime) -> bool {
        let t = now.num_seconds_from_midnight();
        let today = now.weekday();
        let (start, end) = (self.start.0, self.end.0);
        if start < end {
            self.days.contains(today) && t >= start && t < end
        } else {
            // Past midnight: open from start today, or until end for a
            // window that started yesterday.
            (self.days.contains(today) && t >= start)
                || (self.days.contains(today.pred()) && t < end)
        }
    }
}

/// A configuration value out of range; `key` is the dotted key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ThrottleConfigError {
    pub key: String,
    pub message: String,
}

fn err(key: String, message: String) -> ThrottleConfigError {
    ThrottleConfigError { key, message }
}

/// Latency targets the agent accepts.
pub const TARGET_RANGE: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(10));
/// Loop intervals the agent accepts (the kernel ticks at 100 ms).
pub const INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_millis(200), Duration::from_secs(60));

fn check_target(key: String, target: Duration) -> Result<(), ThrottleConfigError> {
    if target < TARGET_RANGE.0 || target > TARGET_RANGE.1 {
        return Err(err(
            key,
            format!("{} ms is out of range (1ms to 10s)", target.as_millis()),
        ));
    }
    Ok(())
}

/// The policy for one resource at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectivePolicy {
    /// `false`: the agent leaves the resource alone.
    pub enabled: bool,
    pub mode: Mode,
    pub interval: Duration,
    pub law: LawPolicy,
    /// Index of the `[[throttle.policy]]` entry that matched.
    pub policy_index: Option<usize>,
    /// Indexes of the open `[[throttle.window]]`s that matched.
    pub open_windows: Vec<usize>,
    /// Where each setting came from.
    pub origins: PolicyOrigins,
}

/// Where each setting of an [`EffectivePolicy`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PolicyOrigins {
    pub enabled: Origin,
    pub mode: Origin,
    pub latency_target: Origin,
    pub min_rate: Origin,
    pub max_rate: Origin,
}

impl ThrottleConfig {
    /// Checks ranges and consistency; the first problem found, with its key.
    pub fn validate(&self) -> Result<(), ThrottleConfigError> {
        check_target("throttle.latency-target".into(), self.latency_target.0)?;
        let interval = self.interval.0;
        if interval < INTERVAL_RANGE.0 || interval > INTERVAL_RANGE.1 {
            return Err(err(
                "throttle.interval".into(),
                format!("{} ms is out of range (200ms to 60s)", interval.as_millis()),
            ));
        }
        if self.min_rate > self.max_rate {
            return Err(err(
                "throttle.min-rate".into(),
                format!("{} is above max-rate {}", self.min_rate, self.max_rate),
            ));
        }
        if let Some(cap) = self.floor_cap {
            if cap < self.min_rate {
                return Err(err(
                    "throttle.floor-cap".into(),
                    format!("{cap} is below min-rate {}", self.min_rate),
                ));
            }
        }
        for (i, p) in self.policies.iter().enumerate() {
            let key = |k: &str| format!("throttle.policy[{i}].{k}");
            if p.resource.trim().is_empty() {
                return Err(err(key("resource"), "empty pattern".into()));
            }
            if let Some(t) = p.latency_target {
                check_target(key("latency-target"), t.0)?;
            }
            let min = p.min_rate.unwrap_or(self.min_rate);
            let max = p.max_rate.unwrap_or(self.max_rate);
            if min > max {
                return Err(err(
                    key("min-rate"),
                    format!("{min} is above the max-rate {max} in force for it"),
                ));
            }
        }
        for (i, w) in self.windows.iter().enumerate() {
            let key = |k: &str| format!("throttle.window[{i}].{k}");
            if w.resource.trim().is_empty() {
                return Err(err(key("resource"), "empty pattern".into()));
            }
            if w.start == w.end {
                return Err(err(
                    key("end"),
                    format!("equal to start {} (a window needs a length)", w.start),
                ));
            }
            check_target(key("latency-target"), w.latency_target.0)?;
        }
        Ok(())
    }

    /// The policy in force for `resource` at local time `now`: the global
    /// values, overridden by the first matching `[[throttle.policy]]`, the
    /// target lowered to the strictest open matching window.
    pub fn policy_for(&self, resource: &str, now: NaiveDateTime) -> EffectivePolicy {
        self.policy_with(resource, now, None)
    }

    /// [`policy_for`](Self::policy_for) with the controller's settings for
    /// the resource: per key, resource definition > resource group > the
    /// matching `[[throttle.policy]]` entry > `[throttle]`; an open window
    /// still tightens the target. `[throttle] enabled = false` wins over
    /// everything (the operator's switch on this node).
    pub fn policy_with(
        &self,
        resource: &str,
        now: NaiveDateTime,
        remote: Option<&RemotePolicy>,
    ) -> EffectivePolicy {
        let matched = self
            .policies
            .iter()
            .position(|p| glob_match(&p.resource, resource));
        let entry = matched.and_then(|i| self.policies.get(i));
        // One key through the layers: controller, local entry, default.
        fn layered<T: Copy>(
            remote: Option<(T, Origin)>,
            local: Option<T>,
            default: T,
        ) -> (T, Origin) {
            remote
                .or(local.map(|v| (v, Origin::LocalPolicy)))
                .unwrap_or((default, Origin::Default))
        }
        let pick = |key: fn(&PolicyProps) -> Option<_>| remote.and_then(|r| r.pick(key));
        let (mut target, mut target_origin) = layered(
            remote.and_then(|r| r.pick(|p| p.latency_target)),
            entry.and_then(|p| p.latency_target).map(|d| d.0),
            self.latency_target.0,
        );
        let open_windows: Vec<usize> = self
            .windows
            .iter()
            .enumerate()
            .filter(|(_, w)| glob_match(&w.resource, resource) && w.is_open(now))
            .map(|(i, _)| i)
            .collect();
        for &i in &open_windows {
            if let Some(w) = self.windows.get(i) {
                if w.latency_target.0 < target {
                    target = w.latency_target.0;
                    target_origin = Origin::Window;
                }
            }
        }
        let (min_rate, min_origin) = layered(
            pick(|p| p.min_rate),
            entry.and_then(|p| p.min_rate),
            self.min_rate,
        );
        let (max_rate, max_origin) = layered(
            pick(|p| p.max_rate),
            entry.and_then(|p| p.max_rate),
            self.max_rate,
        );
        let switch = remote.and_then(|r| r.pick(|p| p.throttle));
        let (enabled, enabled_origin) = match switch {
            Some((s, origin)) => (s.enabled_mode().0, origin),
            None => layered(None, entry.and_then(|p| p.enabled), true),
        };
        let (mode, mode_origin) = match switch.and_then(|(s, o)| s.enabled_mode().1.map(|m| (m, o)))
        {
            Some(found) => found,
            None => (self.mode, Origin::Default),
        };
        let quarter = KibPerSec::new(max_rate.get() / 4).unwrap_or(KibPerSec::MIN);
        let floor_cap = self
            .floor_cap
            .unwrap_or(quarter)
            .max(min_rate)
            .min(max_rate);
        EffectivePolicy {
            enabled: self.enabled && enabled,
            mode,
            interval: self.interval.0,
            law: LawPolicy {
                latency_target: target,
                statistic: self.latency_statistic,
                min_rate: min_rate.min(max_rate),
                max_rate,
                floor_doubling: self.floor_doubling.0,
                floor_cap,
            },
            policy_index: matched,
            open_windows,
            origins: PolicyOrigins {
                enabled: if self.enabled {
                    enabled_origin
                } else {
                    Origin::Default
                },
                mode: mode_origin,
                latency_target: target_origin,
                min_rate: min_origin,
                max_rate: max_origin,
            },
        }
    }
}
