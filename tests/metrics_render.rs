//! The DRBD part of the exposition, rendered from models built by applying
//! events2 fixture lines: names, label names and order, values, escaping,
//! destroyed objects.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::collections::BTreeMap;

use drbd_agent::drbd::{apply_line, DrbdState, Line, StreamStats};
use drbd_agent::events2::parse_line;
use drbd_agent::metrics::{render_drbd, render_drbd_in, DrbdInput, EnumSeries};
use drbd_agent::state::Model;

const STORY: &str = include_str!("data/events2/resync-3node.statistics.txt");

/// drbd-reactor's families: name, type, label names in its order.
const REACTOR: &[(&str, &str, &[&str])] = &[
    ("drbd_resource_resources", "gauge", &[]),
    (
        "drbd_resource_role",
        "gauge",
        &["name", "drbd_resource_role"],
    ),
    ("drbd_resource_suspended", "gauge", &["name"]),
    ("drbd_resource_maypromote", "gauge", &["name"]),
    ("drbd_resource_promotionscore", "gauge", &["name"]),
    ("drbd_resource_forceiofailures", "gauge", &["name"]),
    (
        "drbd_connection_state",
        "gauge",
        &["name", "conn_name", "peer_node_id", "drbd_connection_state"],
    ),
    ("drbd_connection_congested", "gauge", CONN),
    ("drbd_connection_apinflight_bytes", "gauge", CONN),
    ("drbd_connection_rsinflight_bytes", "gauge", CONN),
    ("drbd_peerdevice_outofsync_bytes", "gauge", PD),
    ("drbd_peerdevice_sent_bytes", "counter", PD),
    ("drbd_peerdevice_received_bytes", "counter", PD),
    (
        "drbd_device_state",
        "gauge",
        &["name", "volume", "minor", "drbd_device_state"],
    ),
    ("drbd_device_client", "gauge", DEV),
    ("drbd_device_unintentionaldiskless", "gauge", DEV),
    ("drbd_device_quorum", "gauge", DEV),
    ("drbd_device_open", "gauge", DEV),
    ("drbd_device_size_bytes", "gauge", DEV),
    ("drbd_device_read_bytes_total", "counter", DEV),
    ("drbd_device_written_bytes_total", "counter", DEV),
    ("drbd_device_alwrites_total", "counter", DEV),
    ("drbd_device_bmwrites_total", "counter", DEV),
    ("drbd_device_upperpending", "gauge", DEV),
    ("drbd_device_lowerpending", "gauge", DEV),
    ("drbd_device_alsuspended", "gauge", DEV),
];
const CONN: &[&str] = &["name", "conn_name", "peer_node_id"];
const PD: &[&str] = &["name", "conn_name", "peer_node_id", "volume"];
const DEV: &[&str] = &["name", "volume", "minor"];

/// A model from events2 lines.
fn model_of(lines: &[&str]) -> Model {
    let mut model = Model::new();
    for line in lines {
        let event = parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        model.apply(&event);
    }
    model
}

/// The story up to and including the first line containing `marker`.
fn story_until(marker: &str) -> Vec<&'static str> {
    let end = STORY
        .lines()
        .position(|line| line.contains(marker))
        .unwrap_or_else(|| panic!("{marker} not in the story"));
    STORY.lines().take(end + 1).collect()
}

fn full_story() -> Vec<&'static str> {
    STORY.lines().collect()
}

/// The one-hot form (`[metrics] enum-series = "all"`), which most tests
/// here check value by value.
fn render(model: &Model) -> String {
    render_drbd_in(
        &DrbdInput::new(model, &StreamStats::default()),
        EnumSeries::All,
    )
    .unwrap()
}

/// The default form (`enum-series = "current"`).
fn render_current(model: &Model) -> String {
    render_drbd(&DrbdInput::new(model, &StreamStats::default())).unwrap()
}

/// The families whose value label names a state: one series per value in
/// the one-hot form, one for the current value otherwise.
const ENUM_FAMILIES: &[&str] = &[
    "drbd_resource_role",
    "drbd_connection_state",
    "drbd_device_state",
    "drbd_peerdevice_replication_state",
    "drbd_peerdevice_peer_disk_state",
    "drbd_peerdevice_resync_suspended",
];

fn family_of(series: &str) -> &str {
    series.split_once('{').map_or(series, |(name, _)| name)
}

/// What the current form must be: the one-hot form's series, where the
/// state families keep only their series of value 1.
fn expected_current(all: &str) -> BTreeMap<String, f64> {
    samples(all)
        .into_iter()
        .filter(|(series, value)| !ENUM_FAMILIES.contains(&family_of(series)) || *value == 1.0)
        .collect()
}

/// Sample lines: the series as printed (name and labels) → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let previous = samples.insert(series.to_owned(), value.parse().unwrap());
        assert!(previous.is_none(), "duplicate series {series}");
    }
    samples
}

fn value(text: &str, series: &str) -> Option<f64> {
    samples(text).get(series).copied()
}

/// Family name → type, from the `# TYPE` lines.
fn types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').unwrap();
            (name.to_owned(), kind.to_owned())
        })
        .collect()
}

/// The label names of a sample line, in order.
fn label_names(series: &str) -> Vec<String> {
    let Some((_, labels)) = series.split_once('{') else {
        return Vec::new();
    };
    labels
        .trim_end_matches('}')
        .split("\",")
        .map(|pair| pair.split_once('=').unwrap().0.to_owned())
        .collect()
}

const BRAVO: &str = r#"name="r0",conn_name="bravo",peer_node_id="1",volume="0""#;

#[test]
fn every_reactor_family_with_its_type_and_label_order() {
    let text = render(&model_of(&full_story()));
    let types = types(&text);
    let samples = samples(&text);
    for (name, kind, labels) in REACTOR {
        assert_eq!(types.get(*name).map(String::as_str), Some(*kind), "{name}");
        let series: Vec<&String> = samples
            .keys()
            .filter(|s| s.split('{').next() == Some(name))
            .collect();
        assert!(!series.is_empty(), "{name} has no series");
        for s in series {
            assert_eq!(label_names(s), *labels, "{s}");
        }
    }
}

#[test]
fn the_reactor_sample_lines_come_out_identical() {
    let text = render(&model_of(&full_story()));
    let samples = samples(&text);
    for line in [
        r#"drbd_resource_role{name="r0",drbd_resource_role="Primary"} 1"#,
        r#"drbd_connection_state{name="r0",conn_name="bravo",peer_node_id="1",drbd_connection_state="Connected"} 1"#,
        r#"drbd_connection_apinflight_bytes{name="r0",conn_name="bravo",peer_node_id="1"} 0"#,
        r#"drbd_device_state{name="r0",volume="0",minor="1000",drbd_device_state="UpToDate"} 1"#,
        r#"drbd_device_size_bytes{name="r0",volume="0",minor="1000"} 10737418240"#,
        r#"drbd_peerdevice_sent_bytes{name="r0",conn_name="bravo",peer_node_id="1",volume="0"} 1610612736"#,
    ] {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert_eq!(samples.get(series), Some(&value.parse().unwrap()), "{line}");
    }
}

#[test]
fn roles_one_series_per_value() {
    let text = render(&model_of(&full_story()));
    let roles: Vec<(String, f64)> = samples(&text)
        .into_iter()
        .filter(|(s, _)| s.starts_with("drbd_resource_role{"))
        .collect();
    assert_eq!(
        roles,
        vec![
            (
                r#"drbd_resource_role{name="r0",drbd_resource_role="Primary"}"#.to_owned(),
                1.0
            ),
            (
                r#"drbd_resource_role{name="r0",drbd_resource_role="Secondary"}"#.to_owned(),
                0.0
            ),
            (
                r#"drbd_resource_role{name="r0",drbd_resource_role="Unknown"}"#.to_owned(),
                0.0
            ),
        ]
    );
    // Before the promotion the node was Secondary.
    let before = render(&model_of(&story_until("exists -")));
    assert_eq!(
        value(
            &before,
            r#"drbd_resource_role{name="r0",drbd_resource_role="Secondary"}"#
        ),
        Some(1.0)
    );
    assert_eq!(value(&before, "drbd_resource_resources"), Some(1.0));
}

#[test]
fn unknown_enum_values_add_their_own_series() {
    let mut lines = full_story();
    lines.push("change resource name:r0 role:Tertiary");
    lines.push("change connection name:r0 peer-node-id:1 conn-name:bravo connection:Levitating");
    let text = render(&model_of(&lines));
    assert_eq!(
        value(
            &text,
            r#"drbd_resource_role{name="r0",drbd_resource_role="Tertiary"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"drbd_resource_role{name="r0",drbd_resource_role="Primary"}"#
        ),
        Some(0.0)
    );
    let bravo_states = samples(&text)
        .into_iter()
        .filter(|(s, _)| s.starts_with(r#"drbd_connection_state{name="r0",conn_name="bravo""#))
        .collect::<Vec<_>>();
    assert_eq!(bravo_states.len(), 11, "{bravo_states:?}");
    assert_eq!(bravo_states.iter().filter(|(_, v)| *v == 1.0).count(), 1);
    assert!(bravo_states
        .iter()
        .any(|(s, v)| s.contains(r#"drbd_connection_state="Levitating""#) && *v == 1.0));
}

#[test]
fn device_and_resource_values() {
    let mut lines = full_story();
    lines.push("change resource name:r0 force-io-failures:yes suspended:quorum");
    let text = render(&model_of(&lines));
    let dev = r#"{name="r0",volume="0",minor="1000"}"#;
    assert_eq!(value(&text, &format!("drbd_device_open{dev}")), Some(1.0));
    assert_eq!(value(&text, &format!("drbd_device_quorum{dev}")), Some(1.0));
    assert_eq!(value(&text, &format!("drbd_device_client{dev}")), Some(0.0));
    assert_eq!(
        value(&text, &format!("drbd_device_written_bytes_total{dev}")),
        Some(1572864.0 * 1024.0)
    );
    assert_eq!(
        value(&text, &format!("drbd_device_read_bytes_total{dev}")),
        Some(2112.0 * 1024.0)
    );
    assert_eq!(
        value(&text, &format!("drbd_device_alwrites_total{dev}")),
        Some(37.0)
    );
    assert_eq!(
        value(&text, &format!("drbd_device_unintentionaldiskless{dev}")),
        Some(0.0)
    );
    // drbd-reactor never updates force-io-failures; here it follows DRBD.
    assert_eq!(
        value(&text, r#"drbd_resource_forceiofailures{name="r0"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"drbd_resource_suspended{name="r0"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"drbd_resource_promotionscore{name="r0"}"#),
        Some(10103.0)
    );
}

#[test]
fn unintentional_diskless_only_without_client() {
    let base = [
        "exists resource name:d role:Secondary",
        "exists device name:d volume:0 minor:7 disk:Diskless client:no quorum:yes",
        "exists device name:d volume:1 minor:8 disk:Diskless client:yes quorum:yes",
    ];
    let text = render(&model_of(&base));
    assert_eq!(
        value(
            &text,
            r#"drbd_device_unintentionaldiskless{name="d",volume="0",minor="7"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"drbd_device_unintentionaldiskless{name="d",volume="1",minor="8"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            r#"drbd_device_client{name="d",volume="1",minor="8"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn resync_progress_rate_and_eta() {
    let text = render(&model_of(&story_until("done:17.48")));
    let ratio = value(
        &text,
        &format!("drbd_peerdevice_resync_done_ratio{{{BRAVO}}}"),
    )
    .unwrap();
    assert!((ratio - 0.1748).abs() < 1e-12, "{ratio}");
    assert_eq!(
        value(
            &text,
            &format!("drbd_peerdevice_resync_rate_bytes_per_second{{{BRAVO}}}")
        ),
        Some((59.67_f64 * 1024.0 * 1024.0).round())
    );
    assert_eq!(
        value(
            &text,
            &format!("drbd_peerdevice_resync_eta_seconds{{{BRAVO}}}")
        ),
        Some(14.0)
    );
    assert_eq!(
        value(
            &text,
            &format!("drbd_peerdevice_replication_state{{{BRAVO},drbd_replication_state=\"SyncSource\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            &format!("drbd_peerdevice_replication_state{{{BRAVO},drbd_replication_state=\"Established\"}}")
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            &format!(
                "drbd_peerdevice_peer_disk_state{{{BRAVO},drbd_peer_disk_state=\"Inconsistent\"}}"
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            &format!("drbd_peerdevice_outofsync_bytes{{{BRAVO}}}")
        ),
        Some(865280.0 * 1024.0)
    );
    assert_eq!(
        value(&text, &format!("drbd_peerdevice_pending{{{BRAVO}}}")),
        Some(3.0)
    );
    assert_eq!(
        value(&text, &format!("drbd_peerdevice_unacked{{{BRAVO}}}")),
        Some(0.0)
    );
    // The other peer is not resyncing: no progress series for it.
    assert!(!text.contains(r#"drbd_peerdevice_resync_done_ratio{name="r0",conn_name="charlie""#));
}

#[test]
fn eta_is_absent_while_unknown_never_nan() {
    let text = render(&model_of(&story_until("eta:nan")));
    assert!(
        !text.contains("drbd_peerdevice_resync_eta_seconds"),
        "{text}"
    );
    assert!(!text.contains("NaN"));
    assert_eq!(
        value(
            &text,
            &format!("drbd_peerdevice_resync_done_ratio{{{BRAVO}}}")
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            &format!("drbd_peerdevice_resync_rate_bytes_per_second{{{BRAVO}}}")
        ),
        Some(0.0)
    );
}

#[test]
fn resync_series_end_with_the_resync() {
    let text = render(&model_of(&full_story()));
    for family in [
        "drbd_peerdevice_resync_done_ratio",
        "drbd_peerdevice_resync_eta_seconds",
        "drbd_peerdevice_resync_rate_bytes_per_second",
    ] {
        assert!(!text.contains(family), "{family} after the resync");
    }
    assert_eq!(
        value(
            &text,
            &format!("drbd_peerdevice_outofsync_bytes{{{BRAVO}}}")
        ),
        Some(0.0)
    );
}

#[test]
fn resync_suspended_one_series_per_reason() {
    let mut lines = full_story();
    lines.push(
        "change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 resync-suspended:user,dependency,gremlins",
    );
    let text = render(&model_of(&lines));
    let reason = |r: &str| {
        value(
            &text,
            &format!("drbd_peerdevice_resync_suspended{{{BRAVO},reason=\"{r}\"}}"),
        )
    };
    assert_eq!(reason("user"), Some(1.0));
    assert_eq!(reason("peer"), Some(0.0));
    assert_eq!(reason("dependency"), Some(1.0));
    assert_eq!(reason("max-parallel"), Some(0.0));
    assert_eq!(reason("gremlins"), Some(1.0));
    let charlie = r#"drbd_peerdevice_resync_suspended{name="r0",conn_name="charlie",peer_node_id="2",volume="0",reason="user"}"#;
    assert_eq!(value(&text, charlie), Some(0.0));
}

#[test]
fn paths_with_local_and_peer_addresses() {
    let text = render(&model_of(&story_until("established:no")));
    let bravo = r#"drbd_path_established{name="r0",conn_name="bravo",peer_node_id="1",local="ipv4:10.0.0.1:7000",peer="ipv4:10.0.0.2:7000"}"#;
    let charlie = r#"drbd_path_established{name="r0",conn_name="charlie",peer_node_id="2",local="ipv4:10.0.0.1:7000",peer="ipv4:10.0.0.3:7000"}"#;
    assert_eq!(value(&text, bravo), Some(0.0));
    assert_eq!(value(&text, charlie), Some(1.0));
    assert_eq!(
        value(
            &text,
            r#"drbd_connection_state{name="r0",conn_name="bravo",peer_node_id="1",drbd_connection_state="NetworkFailure"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn helper_calls_and_responses_by_exit_code() {
    let mut state = DrbdState::default();
    let mut lines = full_story();
    lines.push("call helper name:r0 peer-node-id:1 conn-name:bravo helper:fence-peer");
    lines.push(
        "response helper name:r0 peer-node-id:1 conn-name:bravo helper:fence-peer status:1792",
    );
    lines.push("call helper name:r0 peer-node-id:1 conn-name:bravo helper:fence-peer");
    lines.push(
        "response helper name:r0 peer-node-id:1 conn-name:bravo helper:fence-peer status:1792",
    );
    for line in lines {
        apply_line(&mut state, &Line::Text(line.to_owned()));
    }
    let text = render_drbd(&DrbdInput::new(&state.model, &state.stats)).unwrap();
    assert_eq!(types(&text)["drbd_helper_calls_total"], "counter");
    assert_eq!(types(&text)["drbd_helper_responses_total"], "counter");
    assert_eq!(
        value(&text, r#"drbd_helper_calls_total{helper="fence-peer"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(&text, r#"drbd_helper_calls_total{helper="disconnected"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"drbd_helper_responses_total{helper="fence-peer",exit_code="7"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            r#"drbd_helper_responses_total{helper="before-resync-source",exit_code="0"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn destroyed_objects_disappear() {
    let mut lines = full_story();
    lines.push("destroy path name:r0 peer-node-id:1 conn-name:bravo local:ipv4:10.0.0.1:7000 peer:ipv4:10.0.0.2:7000");
    lines.push("destroy peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0");
    lines.push("destroy connection name:r0 peer-node-id:1 conn-name:bravo");
    let text = render(&model_of(&lines));
    assert!(!text.contains(r#"conn_name="bravo""#), "{text}");
    assert!(text.contains(r#"conn_name="charlie""#));

    lines.push("destroy path name:r0 peer-node-id:2 conn-name:charlie local:ipv4:10.0.0.1:7000 peer:ipv4:10.0.0.3:7000");
    lines.push("destroy peer-device name:r0 peer-node-id:2 conn-name:charlie volume:0");
    lines.push("destroy connection name:r0 peer-node-id:2 conn-name:charlie");
    lines.push("destroy device name:r0 volume:0");
    lines.push("destroy resource name:r0");
    let text = render(&model_of(&lines));
    assert_eq!(
        samples(&text).into_iter().collect::<Vec<_>>(),
        vec![("drbd_resource_resources".to_owned(), 0.0)]
    );
}

#[test]
fn an_empty_model_renders_only_the_resource_count() {
    let text = render(&Model::new());
    assert_eq!(
        text,
        "# HELP drbd_resource_resources Number of DRBD resources.\n\
         # TYPE drbd_resource_resources gauge\n\
         drbd_resource_resources 0\n"
    );
}

#[test]
fn label_values_are_escaped() {
    let name = r#"we"ird\name"#;
    let text = render(&model_of(&[&format!(
        "exists resource name:{name} role:Primary suspended:no"
    )]));
    assert!(
        text.contains(r#"drbd_resource_role{name="we\"ird\\name",drbd_resource_role="Primary"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"drbd_resource_suspended{name="we\"ird\\name"} 0"#));
}

#[test]
fn families_are_sorted_unique_and_have_help() {
    let text = render(&model_of(&story_until("done:17.48")));
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
    assert_eq!(helps, names.len());
    // Every family has one header, even those larger than one encoder chunk.
    assert!(names.len() > 30, "{names:?}");
}

#[test]
fn large_families_keep_one_header() {
    // 100 resources × 2 peers: 3,000 replication-state series, several chunks.
    let mut lines = Vec::new();
    for r in 0..100 {
        lines.push(format!("exists resource name:r{r:03} role:Secondary"));
        for (peer, node) in [("b", 1), ("c", 2)] {
            lines.push(format!(
                "exists peer-device name:r{r:03} peer-node-id:{node} conn-name:{peer} volume:0 replication:Established peer-disk:UpToDate"
            ));
        }
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let text = render(&model_of(&refs));
    assert_eq!(
        text.matches("# TYPE drbd_peerdevice_replication_state gauge")
            .count(),
        1
    );
    let series = samples(&text)
        .into_iter()
        .filter(|(s, _)| s.starts_with("drbd_peerdevice_replication_state{"))
        .collect::<Vec<_>>();
    assert_eq!(series.len(), 100 * 2 * 15);
    assert_eq!(series.iter().filter(|(_, v)| *v == 1.0).count(), 200);
}

#[test]
fn generation_moves_with_model_changes_only() {
    let mut state = DrbdState::default();
    for line in full_story() {
        apply_line(&mut state, &Line::Text(line.to_owned()));
    }
    let before = state.generation;
    assert!(before > 0);
    // The same values again: nothing changed.
    apply_line(
        &mut state,
        &Line::Text("change resource name:r0 role:Primary".to_owned()),
    );
    assert_eq!(state.generation, before);
    apply_line(&mut state, &Line::Text("garbage".to_owned()));
    assert_eq!(state.generation, before);
    apply_line(
        &mut state,
        &Line::Text("change resource name:r0 role:Secondary".to_owned()),
    );
    assert_eq!(state.generation, before + 1);
    state.flush();
    assert_eq!(state.generation, before + 2);
    assert!(state.model.resources().is_empty());
}

#[test]
fn current_form_is_the_one_hot_form_without_its_zeros_at_every_step() {
    let story = full_story();
    for end in (1..=story.len()).step_by(7).chain([story.len()]) {
        let model = model_of(&story[..end]);
        let all = render(&model);
        let current = render_current(&model);
        assert_eq!(
            samples(&current),
            expected_current(&all),
            "after {end} lines"
        );
        // Every family keeps its header while it has series; types agree.
        let types_all = types(&all);
        for (family, kind) in types(&current) {
            assert_eq!(types_all.get(&family), Some(&kind), "{family}");
        }
    }
}

#[test]
fn current_form_has_one_series_per_object_and_state_family() {
    let mut lines = full_story();
    lines.push("change resource name:r0 role:Tertiary");
    lines.push("change connection name:r0 peer-node-id:1 conn-name:bravo connection:Levitating");
    lines.push(
        "change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 resync-suspended:user,dependency,gremlins",
    );
    let text = render_current(&model_of(&lines));
    let series = samples(&text);
    let of = |family: &str| -> Vec<(String, f64)> {
        series
            .iter()
            .filter(|(s, _)| family_of(s) == family)
            .map(|(s, v)| (s.clone(), *v))
            .collect()
    };
    assert_eq!(
        of("drbd_resource_role"),
        vec![(
            r#"drbd_resource_role{name="r0",drbd_resource_role="Tertiary"}"#.to_owned(),
            1.0
        )]
    );
    let states = of("drbd_connection_state");
    assert_eq!(states.len(), 2, "one per connection: {states:?}");
    assert!(states
        .iter()
        .any(|(s, _)| s.contains(r#"conn_name="bravo""#) && s.contains("Levitating")));
    assert!(states.iter().all(|(_, v)| *v == 1.0));
    let reasons: Vec<String> = of("drbd_peerdevice_resync_suspended")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        reasons,
        ["dependency", "gremlins", "user"]
            .iter()
            .map(|r| format!("drbd_peerdevice_resync_suspended{{{BRAVO},reason=\"{r}\"}}"))
            .collect::<Vec<_>>()
    );
    // Charlie's resync is not suspended: no series.
    assert!(!text.contains(r#"drbd_peerdevice_resync_suspended{name="r0",conn_name="charlie""#));
    assert_eq!(of("drbd_device_state").len(), 1);
    assert_eq!(of("drbd_peerdevice_replication_state").len(), 2);
    assert_eq!(of("drbd_peerdevice_peer_disk_state").len(), 2);
}
