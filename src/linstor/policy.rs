//! Throttle policy from the controller: `Aux/drbd-agent/...` properties on
//! resource groups and resource definitions, read from
//! `GET /v1/resource-groups` and `GET /v1/resource-definitions` (never
//! written: a property change makes every satellite re-run `drbdadm adjust`).
//!
//! | property | value | meaning |
//! |---|---|---|
//! | `Aux/drbd-agent/throttle` | `on`, `off`, `observe` | whether (and how) the agent throttles the resource |
//! | `Aux/drbd-agent/latency-target` | duration, e.g. `5ms` | the write latency target |
//! | `Aux/drbd-agent/min-rate` | rate, e.g. `1MiB/s` | the floor |
//! | `Aux/drbd-agent/max-rate` | rate, e.g. `200MiB/s` | the ceiling (the configured c-max-rate still caps it) |
//!
//! Precedence per key: resource definition > resource group > the local
//! `[[throttle.policy]]` entry > `[throttle]`. An invalid value is reported
//! (with where it was found) and ignored: the next layer's value applies,
//! other keys and other resources are unaffected. Pure: JSON in, policies
//! and problems out.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::config::{parse_duration, DurationError};
use crate::throttle::{parse_rate, KibPerSec, Mode, RateError, TARGET_RANGE};

/// The property namespace the agent reads.
pub const NAMESPACE: &str = "Aux/drbd-agent/";

/// Where a policy value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// `[throttle]` (or its built-in default).
    Default,
    /// A local `[[throttle.policy]]` entry.
    LocalPolicy,
    /// A `[[throttle.window]]` that is open now (latency target only).
    Window,
    ResourceGroup,
    ResourceDefinition,
}

/// `Aux/drbd-agent/throttle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Switch {
    On,
    Off,
    Observe,
}

impl Switch {
    /// Whether the agent throttles at all, and in which mode.
    pub fn enabled_mode(self) -> (bool, Option<Mode>) {
        match self {
            Self::On => (true, None),
            Self::Off => (false, None),
            Self::Observe => (true, Some(Mode::Observe)),
        }
    }
}

/// The controller's settings for one object (a group or a definition);
/// `None` = not set there.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct PolicyProps {
    pub throttle: Option<Switch>,
    pub latency_target: Option<Duration>,
    pub min_rate: Option<KibPerSec>,
    pub max_rate: Option<KibPerSec>,
}

/// One resource's layers, resource definition over resource group.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct RemotePolicy {
    pub definition: PolicyProps,
    pub group: PolicyProps,
}

impl RemotePolicy {
    /// The value of one key, and from which layer.
    pub fn pick<T: Copy>(&self, key: impl Fn(&PolicyProps) -> Option<T>) -> Option<(T, Origin)> {
        key(&self.definition)
            .map(|v| (v, Origin::ResourceDefinition))
            .or_else(|| key(&self.group).map(|v| (v, Origin::ResourceGroup)))
    }
}

/// A value that was ignored, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyProblem {
    /// `resource-definition r0` or `resource-group rg1`.
    pub object: String,
    /// The full property key.
    pub key: String,
    pub value: String,
    pub reason: String,
}

impl std::fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} = {:?} ignored: {}",
            self.object, self.key, self.value, self.reason
        )
    }
}

/// Reads the `Aux/drbd-agent/` keys of one object's props. Other keys are
/// not ours; unknown keys inside our namespace are reported.
pub fn parse_props(
    object: &str,
    props: &BTreeMap<String, String>,
) -> (PolicyProps, Vec<PolicyProblem>) {
    let mut out = PolicyProps::default();
    let mut problems = Vec::new();
    for (key, value) in props {
        let Some(name) = key.strip_prefix(NAMESPACE) else {
            continue;
        };
        let problem = |reason: PropertyError| PolicyProblem {
            object: object.to_owned(),
            key: key.clone(),
            value: value.clone(),
            reason: reason.to_string(),
        };
        let text = value.trim();
        let result = match name {
            "throttle" => parse_switch(text).map(|s| out.throttle = Some(s)),
            "latency-target" => parse_target(text).map(|d| out.latency_target = Some(d)),
            "min-rate" => parse_rate(text)
                .map(|r| out.min_rate = Some(r))
                .map_err(PropertyError::from),
            "max-rate" => parse_rate(text)
                .map(|r| out.max_rate = Some(r))
                .map_err(PropertyError::from),
            _ => Err(PropertyError::UnknownKey),
        };
        if let Err(reason) = result {
            problems.push(problem(reason));
        }
    }
    // Floor over ceiling: both are suspect; keep neither from this object.
    if let (Some(min), Some(max)) = (out.min_rate, out.max_rate) {
        if min > max {
            problems.push(PolicyProblem {
                object: object.to_owned(),
                key: format!("{NAMESPACE}min-rate"),
                value: min.to_string(),
                reason: format!("above {NAMESPACE}max-rate {max}; both ignored"),
            });
            out.min_rate = None;
            out.max_rate = None;
        }
    }
    (out, problems)
}

/// Why a property value was refused (the reason of a [`PolicyProblem`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum PropertyError {
    #[error("expected on, off or observe")]
    Switch,
    #[error(transparent)]
    Duration(#[from] DurationError),
    #[error("out of range (1ms to 10s)")]
    TargetRange,
    #[error(transparent)]
    Rate(#[from] RateError),
    #[error("unknown key (known: {NAMESPACE}throttle, latency-target, min-rate, max-rate)")]
    UnknownKey,
}

fn parse_switch(text: &str) -> Result<Switch, PropertyError> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "enforce" => Ok(Switch::On),
        "off" | "false" | "no" => Ok(Switch::Off),
        "observe" => Ok(Switch::Observe),
        _ => Err(PropertyError::Switch),
    }
}

fn parse_target(text: &str) -> Result<Duration, PropertyError> {
    let d = parse_duration(text)?;
    if d < TARGET_RANGE.0 || d > TARGET_RANGE.1 {
        return Err(PropertyError::TargetRange);
    }
    Ok(d)
}

/// Everything the controller says, per resource name.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RemotePolicies {
    pub resources: BTreeMap<String, RemotePolicy>,
    /// Values ignored at the last refresh.
    pub problems: Vec<PolicyProblem>,
}

impl RemotePolicies {
    pub fn get(&self, resource: &str) -> Option<&RemotePolicy> {
        self.resources.get(resource)
    }
}

/// The policies in force, shared between the LINSTOR loop (writer) and the
/// throttle loop (reader; one cheap `Arc` clone per interval).
pub type SharedRemotePolicies = std::sync::Arc<std::sync::RwLock<std::sync::Arc<RemotePolicies>>>;

/// A snapshot of `shared` (empty if a writer panicked mid-update: the
/// local configuration then applies).
pub fn snapshot(shared: &SharedRemotePolicies) -> std::sync::Arc<RemotePolicies> {
    match shared.read() {
        Ok(guard) => guard.clone(),
        Err(_) => std::sync::Arc::default(),
    }
}

/// Why a response could not be read at all (then the previous policies stay).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyResponseError {
    #[error("{endpoint}: expected a JSON array, got {found}")]
    NotAnArray {
        endpoint: &'static str,
        found: &'static str,
    },
}

/// Builds the policies from the JSON bodies of `GET /v1/resource-groups`
/// and `GET /v1/resource-definitions`. Entries without a name are skipped
/// (reported); props that are not strings are reported and ignored.
pub fn from_responses(
    groups: &Value,
    definitions: &Value,
) -> Result<RemotePolicies, PolicyResponseError> {
    let groups = as_array("GET /v1/resource-groups", groups)?;
    let definitions = as_array("GET /v1/resource-definitions", definitions)?;
    let mut problems = Vec::new();
    let mut by_group = BTreeMap::new();
    for group in groups {
        let Some(name) = group.get("name").and_then(Value::as_str) else {
            problems.push(nameless("resource-group", group));
            continue;
        };
        let object = format!("resource-group {name}");
        let (props, found) = parse_props(&object, &props_of(&object, group, &mut problems));
        problems.extend(found);
        by_group.insert(name.to_owned(), props);
    }
    let mut resources = BTreeMap::new();
    for definition in definitions {
        let Some(name) = definition.get("name").and_then(Value::as_str) else {
            problems.push(nameless("resource-definition", definition));
            continue;
        };
        let object = format!("resource-definition {name}");
        let (props, found) = parse_props(&object, &props_of(&object, definition, &mut problems));
        problems.extend(found);
        let group = definition
            .get("resource_group_name")
            .and_then(Value::as_str)
            .and_then(|g| by_group.get(g))
            .copied()
            .unwrap_or_default();
        resources.insert(
            name.to_owned(),
            RemotePolicy {
                definition: props,
                group,
            },
        );
    }
    Ok(RemotePolicies {
        resources,
        problems,
    })
}

fn as_array<'a>(
    endpoint: &'static str,
    value: &'a Value,
) -> Result<&'a Vec<Value>, PolicyResponseError> {
    value.as_array().ok_or(PolicyResponseError::NotAnArray {
        endpoint,
        found: kind(value),
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn nameless(kind: &str, value: &Value) -> PolicyProblem {
    // The first 80 characters (not bytes: a cut inside a UTF-8 character
    // panicked; found by the fuzz campaign).
    let text: String = value.to_string().chars().take(80).collect();
    PolicyProblem {
        object: format!("{kind} without a name"),
        key: "name".to_owned(),
        value: text,
        reason: "entry skipped".to_owned(),
    }
}

/// The string-valued props of an object; other values are reported.
fn props_of(
    object: &str,
    value: &Value,
    problems: &mut Vec<PolicyProblem>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(map) = value.get("props").and_then(Value::as_object) else {
        return out;
    };
    for (key, v) in map {
        match v.as_str() {
            Some(s) => {
                out.insert(key.clone(), s.to_owned());
            }
            None if key.starts_with(NAMESPACE) => problems.push(PolicyProblem {
                object: object.to_owned(),
                key: key.clone(),
                value: v.to_string(),
                reason: "not a string".to_owned(),
            }),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_nameless_entry_with_a_long_non_ascii_value_is_cut_between_characters() {
        // `{"props":{"x":"` is 15 bytes, then 64 × 'a': the 'é' spans bytes
        // 79 and 80 (a fuzz campaign crash: the cut went through it).
        let value = format!("{}é and more", "a".repeat(64));
        let definitions = json!([{"props": {"x": value}}]);
        let policies = from_responses(&json!([]), &definitions).unwrap();
        let problem = &policies.problems[0];
        assert_eq!(problem.object, "resource-definition without a name");
        assert_eq!(problem.value.chars().count(), 80);
        assert!(problem.value.ends_with('é'), "{}", problem.value);
    }

    #[test]
    fn reads_our_keys_and_ignores_others() {
        let (p, problems) = parse_props(
            "resource-definition r0",
            &props(&[
                ("Aux/drbd-agent/throttle", "observe"),
                ("Aux/drbd-agent/latency-target", "8ms"),
                ("Aux/drbd-agent/min-rate", "1MiB/s"),
                ("Aux/drbd-agent/max-rate", "200MiB/s"),
                ("DrbdOptions/PeerDevice/c-max-rate", "102400"),
                ("Aux/other-tool/x", "y"),
            ]),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(p.throttle, Some(Switch::Observe));
        assert_eq!(p.latency_target, Some(Duration::from_millis(8)));
        assert_eq!(p.min_rate, KibPerSec::new(1024));
        assert_eq!(p.max_rate, KibPerSec::new(200 * 1024));
    }

    #[test]
    fn bad_values_are_reported_and_ignored_one_by_one() {
        let (p, problems) = parse_props(
            "resource-group rg",
            &props(&[
                ("Aux/drbd-agent/throttle", "sometimes"),
                ("Aux/drbd-agent/latency-target", "0ms"),
                ("Aux/drbd-agent/min-rate", "fast"),
                ("Aux/drbd-agent/max-rate", "40MiB/s"),
                ("Aux/drbd-agent/latency-targte", "5ms"),
            ]),
        );
        assert_eq!(p.max_rate, KibPerSec::new(40 * 1024), "good keys survive");
        assert_eq!(
            (p.throttle, p.latency_target, p.min_rate),
            (None, None, None)
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .all(|t| t.starts_with("resource-group rg: Aux/drbd-agent/")),
            "{text:?}"
        );
        assert!(text
            .iter()
            .any(|t| t.contains("latency-targte") && t.contains("unknown key")));
    }

    #[test]
    fn a_floor_over_the_ceiling_drops_both() {
        let (p, problems) = parse_props(
            "resource-definition r0",
            &props(&[
                ("Aux/drbd-agent/min-rate", "50MiB/s"),
                ("Aux/drbd-agent/max-rate", "10MiB/s"),
            ]),
        );
        assert_eq!((p.min_rate, p.max_rate), (None, None));
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn definitions_inherit_from_their_group() {
        let groups = json!([
            {"name": "rg-fast", "props": {"Aux/drbd-agent/latency-target": "3ms", "Aux/drbd-agent/min-rate": "2MiB/s"}},
            {"name": "rg-bad", "props": {"Aux/drbd-agent/throttle": 1}},
            {"props": {}}
        ]);
        let definitions = json!([
            {"name": "r0", "resource_group_name": "rg-fast", "props": {"Aux/drbd-agent/latency-target": "9ms"}},
            {"name": "r1", "resource_group_name": "rg-fast"},
            {"name": "r2", "resource_group_name": "missing-group", "props": {"Aux/drbd-agent/throttle": "off"}},
            {"name": "r3", "resource_group_name": "rg-bad"}
        ]);
        let policies = from_responses(&groups, &definitions).unwrap();
        let r0 = policies.get("r0").unwrap();
        assert_eq!(
            r0.pick(|p| p.latency_target),
            Some((Duration::from_millis(9), Origin::ResourceDefinition))
        );
        assert_eq!(
            r0.pick(|p| p.min_rate),
            Some((KibPerSec::new(2048).unwrap(), Origin::ResourceGroup))
        );
        let r1 = policies.get("r1").unwrap();
        assert_eq!(
            r1.pick(|p| p.latency_target),
            Some((Duration::from_millis(3), Origin::ResourceGroup))
        );
        assert_eq!(r1.pick(|p| p.max_rate), None);
        let r2 = policies.get("r2").unwrap();
        assert_eq!(
            r2.pick(|p| p.throttle),
            Some((Switch::Off, Origin::ResourceDefinition))
        );
        assert_eq!(policies.get("r3").unwrap().pick(|p| p.throttle), None);
        assert!(policies.get("r9").is_none());
        // The non-string prop and the nameless group are reported.
        assert_eq!(policies.problems.len(), 2, "{:?}", policies.problems);
    }

    #[test]
    fn responses_that_are_not_lists_are_errors() {
        let e = from_responses(&json!({"oops": 1}), &json!([])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "GET /v1/resource-groups: expected a JSON array, got an object"
        );
        assert!(from_responses(&json!([]), &json!(null)).is_err());
    }
}
