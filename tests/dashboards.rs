//! The shipped Grafana dashboard and Prometheus alerting rules
//! (contrib/monitoring/): every metric they query exists in the agent's
//! output, their PromQL parses (`promtool check rules`), and the rules'
//! unit tests (`promtool test rules`, series in, alerts out) pass and cover
//! every alert.
//!
//! Where a queried name is checked:
//! - against a live `/metrics` of the agent following the demo scenario
//!   (node bravo, throttle enabled in enforce mode), collected over the
//!   scenario's disconnects, reconnects and resyncs: every `drbd_*` name;
//! - against `drbd_agent::metrics::linstor_family_names()`: the
//!   `drbd_agent_linstor_*` names, rendered only with `[linstor] enabled`
//!   and a controller (the demo has none);
//! - nowhere: `up`, which Prometheus itself writes for every scrape target.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod common;
}
use support::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{http_get, parse_exposition, program, run_bounded, Cluster, Sample};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const DEMO: &str = include_str!("../crates/drbd-sim/src/scenarios/demo.toml");
/// Series Prometheus adds itself for every target.
const PROMETHEUS_OWN: [&str; 1] = ["up"];
/// Long enough for the demo's reconnects and their resyncs (it loops
/// every 90 s; db's throttled resync takes about a minute).
const COLLECT_BOUND: Duration = Duration::from_secs(150);

fn monitoring(name: &str) -> PathBuf {
    Path::new(ROOT).join("contrib/monitoring").join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(monitoring(name))
        .unwrap_or_else(|e| panic!("contrib/monitoring/{name}: {e}"))
}

/// A metric selector as queried: the name and the label names of its
/// matchers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Selector {
    name: String,
    labels: Vec<String>,
}

/// Keywords followed by a parenthesised label list.
const LABEL_LIST_KEYWORDS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Other words that are not metric names: binary operators, modifiers and
/// the aggregation operators (which may be followed by `by (...)` rather
/// than by their parenthesis).
const KEYWORDS: [&str; 21] = [
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Skips a quoted string starting at `i` (the quote); returns the index
/// after the closing quote.
fn skip_string(chars: &[char], i: usize) -> usize {
    let quote = chars[i];
    let mut j = i + 1;
    while j < chars.len() && chars[j] != quote {
        if chars[j] == '\\' && quote != '`' {
            j += 1;
        }
        j += 1;
    }
    j + 1
}

/// Index after the bracket matching the one at `i`, skipping strings.
fn skip_group(chars: &[char], i: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    let mut j = i;
    while j < chars.len() {
        match chars[j] {
            '"' | '\'' | '`' => {
                j = skip_string(chars, j);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    j
}

/// The label names matched inside `{...}` (the text between the braces).
fn matcher_labels(inner: &str) -> Vec<String> {
    let chars: Vec<char> = inner.chars().collect();
    let mut labels = Vec::new();
    let mut i = 0;
    let mut expect_label = true;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
            continue;
        }
        if c == ',' {
            expect_label = true;
        } else if expect_label && (c.is_ascii_alphabetic() || c == '_') {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            labels.push(chars[start..i].iter().collect());
            expect_label = false;
            continue;
        }
        i += 1;
    }
    labels
}

/// The metric selectors of a PromQL expression (Grafana variables allowed).
fn selectors(expr: &str) -> Vec<Selector> {
    let chars: Vec<char> = expr.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_string(&chars, i),
            '{' => i = skip_group(&chars, i, '{', '}'),
            '[' => i = skip_group(&chars, i, '[', ']'),
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '$' | '0'..='9' | '.' => {
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let followed_by = chars.get(next).copied();
                if LABEL_LIST_KEYWORDS.contains(&word.as_str()) {
                    if followed_by == Some('(') {
                        i = skip_group(&chars, next, '(', ')');
                    }
                } else if KEYWORDS.contains(&word.as_str()) || followed_by == Some('(') {
                    // A keyword, a function or an aggregation operator.
                } else {
                    let labels = if followed_by == Some('{') {
                        let end = skip_group(&chars, next, '{', '}');
                        let inner: String = chars[next + 1..end - 1].iter().collect();
                        i = end;
                        matcher_labels(&inner)
                    } else {
                        Vec::new()
                    };
                    found.push(Selector { name: word, labels });
                }
            }
            _ => i += 1,
        }
    }
    found
}

/// The queries of the dashboard: every panel target's `expr` (also inside
/// collapsed rows) and the selector argument of each template variable's
/// `label_values(selector, label)`.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    fn panels(list: &serde_json::Value, out: &mut Vec<String>) {
        for panel in list.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(expr.to_owned());
                }
            }
            panels(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        let query = variable["query"]["query"]
            .as_str()
            .or_else(|| variable["query"].as_str())
            .unwrap_or_else(|| panic!("template variable without a query: {variable}"));
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("template query is not label_values(...): {query}"));
        let selector = inner
            .rsplit_once(',')
            .map_or(inner, |(selector, _label)| selector);
        out.push(selector.trim().to_owned());
    }
    out
}

/// The `expr:` of every rule (each on one line) with the alert's name.
fn rule_exprs(rules: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut alert = String::new();
    for line in rules.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert:") {
            alert = name.trim().to_owned();
        } else if let Some(expr) = line.strip_prefix("expr:") {
            let expr = expr.trim();
            assert!(
                !expr.is_empty() && !expr.starts_with(['|', '>']),
                "{alert}: write the expr on one line (this test reads one-line exprs only)"
            );
            out.push((alert.clone(), expr.to_owned()));
        }
    }
    out
}

/// Family name → label names seen on its samples.
fn sample_labels(body: &str, into: &mut BTreeMap<String, BTreeSet<String>>) {
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = into.entry(line[..end].to_owned()).or_default();
        if line[end..].starts_with('{') {
            let close = line.rfind('}').unwrap_or(line.len());
            labels.extend(matcher_labels(&line[end + 1..close]));
        }
    }
}

#[test]
fn selector_extraction_finds_names_and_matchers_only() {
    let found = selectors(
        r#"sum by (instance, name) (rate(a_total{x="1",y=~"$node"}[5m])) / on(instance) group_left(z) b
           unless c offset 15m > bool 2 and time() - d{e!="f,g"}"#,
    );
    let expected = [
        ("a_total", vec!["x", "y"]),
        ("b", vec![]),
        ("c", vec![]),
        ("d", vec!["e"]),
    ];
    assert_eq!(
        found,
        expected
            .iter()
            .map(|(name, labels)| Selector {
                name: (*name).to_owned(),
                labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            })
            .collect::<Vec<_>>()
    );
}

#[test]
fn every_queried_metric_exists_in_the_agents_output() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("drbd-agent-dashboard.json")).expect("dashboard is JSON");
    let mut queried: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut queries = dashboard_queries(&dashboard);
    queries.extend(
        rule_exprs(&read("drbd-agent.rules.yml"))
            .into_iter()
            .map(|(_, e)| e),
    );
    assert!(queries.len() > 30, "too few queries found: {queries:#?}");
    for query in &queries {
        let found = selectors(query);
        assert!(!found.is_empty(), "no metric in {query}");
        for selector in found {
            queried
                .entry(selector.name)
                .or_default()
                .extend(selector.labels);
        }
    }

    let linstor = drbd_agent::metrics::linstor_family_names();
    let live_needed: BTreeSet<&str> = queried
        .keys()
        .map(String::as_str)
        .filter(|name| !PROMETHEUS_OWN.contains(name) && !linstor.contains(name))
        .collect();
    for name in queried.keys() {
        if name.starts_with("drbd_agent_linstor_") {
            assert!(
                linstor.contains(&name.as_str()),
                "{name} is not a LINSTOR family the exporter renders: {linstor:?}"
            );
        }
    }

    // As `drbd-agent demo` runs it: alpha, db's Primary SyncTarget.
    let throttle = "[throttle]\nenabled = true\nmode = \"enforce\"\ninterval = \"1s\"\n\
                    latency-target = \"5ms\"\nmin-rate = \"1MiB/s\"\nmax-rate = \"100MiB/s\"\n";
    let cluster = Cluster::start_node(DEMO, "alpha", "1s", throttle);
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let deadline = Instant::now() + COLLECT_BOUND;
    loop {
        if let Ok((200, body)) = http_get(cluster.addr, "/metrics") {
            sample_labels(&body, &mut seen);
        }
        let missing: Vec<&&str> = live_needed
            .iter()
            .filter(|n| !seen.contains_key(**n))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queried by the dashboard or the rules but never in the demo's /metrics: {missing:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The label names the queries match on exist on those series
    // (`instance` and `job` are Prometheus' target labels).
    for name in &live_needed {
        let have = &seen[*name];
        for label in &queried[*name] {
            assert!(
                have.contains(label) || label == "instance" || label == "job",
                "{name} has no label {label:?} (has {have:?})"
            );
        }
    }
    out_of_sync_drains_on_in_sync_peers(&cluster);
}

/// A peer device's key: (resource, peer node id, volume).
fn peer_device(sample: &Sample) -> (String, String, String) {
    let label = |key: &str| {
        sample
            .labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    (label("name"), label("peer_node_id"), label("volume"))
}

/// The "Data to resync" panel's premise: once a resync has ended, every
/// peer device that is Established with an UpToDate peer reports 0
/// out-of-sync bytes (the demo first builds some up by disconnecting).
fn out_of_sync_drains_on_in_sync_peers(cluster: &Cluster) {
    let mut seen_out_of_sync = false;
    let deadline = Instant::now() + COLLECT_BOUND;
    loop {
        if let Ok((200, body)) = http_get(cluster.addr, "/metrics") {
            let samples = parse_exposition(&body).expect("valid exposition");
            let current = |name: &str, label: &str, value: &str| -> BTreeSet<_> {
                samples
                    .iter()
                    .filter(|s| s.name == name && s.value == 1.0)
                    .filter(|s| s.labels.iter().any(|(k, v)| k == label && v == value))
                    .map(peer_device)
                    .collect()
            };
            let established = current(
                "drbd_peerdevice_replication_state",
                "drbd_replication_state",
                "Established",
            );
            let up_to_date = current(
                "drbd_peerdevice_peer_disk_state",
                "drbd_peer_disk_state",
                "UpToDate",
            );
            let out_of_sync: Vec<_> = samples
                .iter()
                .filter(|s| s.name == "drbd_peerdevice_outofsync_bytes")
                .collect();
            seen_out_of_sync |= out_of_sync.iter().any(|s| s.value > 0.0);
            let in_sync: Vec<_> = out_of_sync
                .iter()
                .filter(|s| {
                    let key = peer_device(s);
                    established.contains(&key) && up_to_date.contains(&key)
                })
                .collect();
            if seen_out_of_sync
                && !in_sync.is_empty()
                && in_sync.len() == out_of_sync.len()
                && in_sync.iter().all(|s| s.value == 0.0)
            {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "out-of-sync never drained to 0 on all Established/UpToDate peer devices \
             after having been non-zero"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn promtool(args: &[&str], dir: &Path) -> (i32, String, String) {
    let promtool = program(
        "promtool",
        "install prometheus (scripts/test-all does: apt-get install prometheus)",
    );
    let mut command = Command::new(promtool);
    command.args(args).current_dir(dir);
    run_bounded(command, Duration::from_secs(60))
}

#[test]
fn rules_pass_promtool_check_and_their_unit_tests() {
    let dir = monitoring("");
    let (code, out, err) = promtool(&["check", "rules", "drbd-agent.rules.yml"], &dir);
    assert_eq!(code, 0, "promtool check rules:\n{out}{err}");
    let (code, out, err) = promtool(&["test", "rules", "drbd-agent.rules.test.yml"], &dir);
    assert_eq!(code, 0, "promtool test rules:\n{out}{err}");
    assert!(out.contains("SUCCESS"), "{out}{err}");

    // Every alert has a runbook and is exercised by a test that expects it
    // to fire.
    let rules = read("drbd-agent.rules.yml");
    let tests = read("drbd-agent.rules.test.yml");
    let alerts = rule_exprs(&rules);
    assert!(alerts.len() >= 10, "{alerts:?}");
    for (alert, _) in &alerts {
        let block = rules
            .split("- alert: ")
            .find(|b| b.starts_with(&format!("{alert}\n")))
            .unwrap_or_else(|| panic!("no block for {alert}"));
        assert!(
            block.contains("summary:") && block.contains("description:"),
            "{alert} lacks its runbook annotations"
        );
        let fires = tests.split("alertname: ").skip(1).any(|t| {
            t.starts_with(&format!("{alert}\n"))
                && t.lines().nth(1).is_some_and(|l| l.trim() == "exp_alerts:")
        });
        assert!(fires, "no promtool test expects {alert} to fire");
    }
}

#[test]
fn dashboard_queries_parse() {
    // Grafana's variables replaced by what Grafana would send.
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("drbd-agent-dashboard.json")).expect("dashboard is JSON");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, query) in dashboard_queries(&dashboard).iter().enumerate() {
        let expr = query
            .replace("$__rate_interval", "5m")
            .replace("$node", ".*")
            .replace("$resource", ".*");
        assert!(!expr.contains('$'), "unknown variable in {query}");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&expr).expect("JSON string is YAML")
        ));
    }
    std::fs::write(dir.path().join("dashboard.rules.yml"), &rules).expect("write");
    let (code, out, err) = promtool(&["check", "rules", "dashboard.rules.yml"], dir.path());
    assert_eq!(
        code, 0,
        "a dashboard query does not parse:\n{out}{err}\n{rules}"
    );
}
