//! The agent's own series (`drbd_agent_*`) and `drbd_version`: small, and
//! rendered on every scrape (the age of the last event changes with time).

use chrono::{DateTime, Utc};

use super::family::{Def, Kind, Spec};
use super::version::DrbdVersions;
use crate::runtime::StreamStats;

/// What the agent part is rendered from.
#[derive(Debug, Clone)]
pub struct AgentInput<'a> {
    pub version: &'a str,
    pub git_commit: &'a str,
    /// The events2 child runs and its initial dump is complete.
    pub drbd_up: bool,
    pub stats: &'a StreamStats,
    pub now: DateTime<Utc>,
    pub reloads_succeeded: u64,
    pub reloads_failed: u64,
}

/// Seconds from `at` to `now`, never negative (the wall clock may step).
fn seconds_since(at: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    (now - at).num_milliseconds().max(0) as f64 / 1000.0
}

const fn counter(name: &'static str, help: &'static str) -> Spec {
    Spec {
        name,
        help,
        kind: Kind::Counter,
        labels: &[],
    }
}

/// A counter family from one `StreamStats` field.
macro_rules! stat {
    ($name:literal, $help:literal, $field:ident) => {
        Def {
            spec: counter($name, $help),
            fill: |input, w| w.add_u64(&[], input.stats.$field),
        }
    };
}

/// The `drbd_agent_*` families.
pub(super) fn defs<'a>() -> Vec<Def<AgentInput<'a>>> {
    vec![
        Def {
            spec: Spec {
                name: "drbd_agent_build_info",
                help: "Version and git commit of the running drbd-agent (always 1).",
                kind: Kind::Gauge,
                labels: &["version", "git_commit"],
            },
            fill: |input, w| w.add(&[input.version, input.git_commit], 1.0),
        },
        Def {
            spec: Spec {
                name: "drbd_agent_drbd_up",
                help: "1 while drbdsetup events2 runs and its initial dump is complete.",
                kind: Kind::Gauge,
                labels: &[],
            },
            fill: |input, w| w.add_bool(&[], input.drbd_up),
        },
        Def {
            spec: Spec {
                name: "drbd_agent_model_stale",
                help: "1 while the DRBD series are kept from before a stream restart or lost events, until a complete newer dump replaces them.",
                kind: Kind::Gauge,
                labels: &[],
            },
            fill: |input, w| w.add_bool(&[], input.stats.stale_since.is_some()),
        },
        Def {
            spec: Spec {
                name: "drbd_agent_model_stale_seconds",
                help: "Seconds the DRBD series have been stale; absent while they are not.",
                kind: Kind::Gauge,
                labels: &[],
            },
            fill: |input, w| match input.stats.stale_since {
                Some(at) => w.add(&[], seconds_since(at, input.now)),
                None => Ok(()),
            },
        },
        Def {
            spec: Spec {
                name: "drbd_agent_config_reloads_total",
                help: "Configuration reloads by result.",
                kind: Kind::Counter,
                labels: &["result"],
            },
            fill: |input, w| {
                w.add_u64(&["failure"], input.reloads_failed)?;
                w.add_u64(&["success"], input.reloads_succeeded)
            },
        },
        Def {
            spec: Spec {
                name: "drbd_agent_last_event_age_seconds",
                help: "Seconds since the last events2 line was read; absent before the first.",
                kind: Kind::Gauge,
                labels: &[],
            },
            fill: |input, w| match input.stats.last_line_at {
                Some(at) => w.add(&[], seconds_since(at, input.now)),
                None => Ok(()),
            },
        },
        stat!(
            "drbd_agent_events_total",
            "events2 lines parsed and applied.",
            events
        ),
        stat!(
            "drbd_agent_parse_errors_total",
            "events2 lines that could not be parsed (also too long or not UTF-8).",
            parse_errors
        ),
        stat!(
            "drbd_agent_unknown_keys_total",
            "events2 fields with keys this version does not know.",
            unknown_keys
        ),
        stat!(
            "drbd_agent_unknown_values_total",
            "events2 fields with known keys and values this version does not know.",
            unknown_values
        ),
        stat!(
            "drbd_agent_events2_restarts_total",
            "Restarts of the drbdsetup events2 child.",
            child_restarts
        ),
        stat!(
            "drbd_agent_events2_spawn_errors_total",
            "Times drbdsetup events2 could not be started.",
            spawn_errors
        ),
        stat!(
            "drbd_agent_events_lost_total",
            "Times events2 reported lost events (`- skipped`).",
            events_lost
        ),
        stat!(
            "drbd_agent_lost_event_dumps_total",
            "`events2 --now` dumps taken and applied after lost events (the stream goes on).",
            lost_event_dumps
        ),
        stat!(
            "drbd_agent_model_rebuilds_total",
            "Complete initial dumps of a restarted events2 stream swapped in for the stale model.",
            model_rebuilds
        ),
        stat!(
            "drbd_agent_drifts_total",
            "Times a reconcile dump disagreed with the live model.",
            drifts
        ),
        stat!(
            "drbd_agent_reconcile_errors_total",
            "Times a reconcile dump could not be taken.",
            reconcile_errors
        ),
    ]
}

/// `drbd_version{kmod,utils}` (drbd-reactor's); `kmod` is empty while no
/// module is loaded. Absent until `drbdadm --version` answered.
pub(super) fn version_defs<'a>() -> Vec<Def<Option<&'a DrbdVersions>>> {
    vec![Def {
        spec: Spec {
            name: "drbd_version",
            help: "Versions of the DRBD kernel module (empty if not loaded) and drbd-utils (always 1).",
            kind: Kind::Gauge,
            labels: &["kmod", "utils"],
        },
        fill: |versions, w| match versions {
            Some(v) => w.add(&[v.kmod.as_deref().unwrap_or(""), &v.utils], 1.0),
            None => Ok(()),
        },
    }]
}
