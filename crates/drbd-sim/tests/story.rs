//! The scripted `resync-3node` story renders exactly as drbdsetup printed it.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use drbd_model::events2::parse_line;
use drbd_model::state::Model;
use drbd_sim::story::{render, story, StoryError, StoryOptions, STORIES};

const PLAIN: &str = include_str!("../../../tests/data/events2/resync-3node.txt");
const STATISTICS: &str = include_str!("../../../tests/data/events2/resync-3node.statistics.txt");

fn rendered(statistics: u8, full: bool, timestamps: bool) -> String {
    render(
        "resync-3node",
        StoryOptions {
            timestamps,
            statistics,
            full,
        },
    )
    .expect("known story")
}

#[test]
fn plain_output_matches_drbdsetup() {
    assert_eq!(rendered(0, false, false), PLAIN);
}

#[test]
fn statistics_output_matches_drbdsetup() {
    assert_eq!(rendered(1, false, false), STATISTICS);
}

/// Applies every line (each must parse) and returns the model.
fn rebuild(text: &str, with_timestamps: bool) -> Model {
    let mut model = Model::new();
    let mut last = None;
    for (number, line) in text.lines().enumerate() {
        let event = parse_line(line).unwrap_or_else(|e| panic!("line {}: {e}", number + 1));
        assert_eq!(event.timestamp.is_some(), with_timestamps, "{line}");
        assert_eq!(event.unknown_keys() + event.unknown_values(), 0, "{line}");
        if let Some(at) = event.timestamp {
            assert!(last.is_none_or(|l| l <= at), "time runs backwards: {line}");
            last = Some(at);
        }
        model.apply(&event);
    }
    assert!(model.initial_dump_done());
    model
}

/// The story's final state as a model built from lines holds it (helper
/// records are not part of the state).
fn final_resource(model: &Model) -> drbd_model::state::Resource {
    let mut resource = model.resource("r0").expect("r0 in the model").clone();
    resource.helpers.clear();
    for connection in resource.connections.values_mut() {
        connection.helpers.clear();
        for peer_device in connection.peer_devices.values_mut() {
            peer_device.helpers.clear();
        }
    }
    resource
}

#[test]
fn full_output_parses_and_rebuilds_the_final_state() {
    let text = rendered(0, true, false);
    assert_ne!(text, STATISTICS, "--full prints more than --statistics");
    let model = rebuild(&text, false);
    let expected = story("resync-3node").expect("known story");
    assert_eq!(
        Some(&final_resource(&model)),
        expected.final_state(),
        "--full"
    );
    assert_eq!(
        final_resource(&model),
        final_resource(&rebuild(STATISTICS, false))
    );
}

#[test]
fn timestamped_output_parses_and_rebuilds_the_final_state() {
    for statistics in [0, 1, 2] {
        let text = rendered(statistics, false, true);
        let plain = rendered(statistics, false, false);
        assert_eq!(text.lines().count(), plain.lines().count());
        let model = rebuild(&text, true);
        assert_eq!(
            final_resource(&model),
            final_resource(&rebuild(&plain, false))
        );
        if statistics > 0 {
            let expected = story("resync-3node").expect("known story");
            assert_eq!(Some(&final_resource(&model)), expected.final_state());
        }
    }
}

#[test]
fn two_statistics_levels_print_the_resync_details() {
    let text = rendered(2, false, false);
    let progress: Vec<&str> = text.lines().filter(|l| l.contains("done:17.48")).collect();
    assert_eq!(progress.len(), 1);
    for key in [
        "rs-total:2097152",
        "rs-db1-sectors:366592",
        "dbdt1:59.67",
        "eta:14",
    ] {
        assert!(progress[0].contains(key), "{key} in {}", progress[0]);
    }
}

#[test]
fn unknown_story_is_a_typed_error_naming_the_known_ones() {
    let error = render("no-such-story", StoryOptions::default()).unwrap_err();
    assert_eq!(
        error,
        StoryError::Unknown {
            name: "no-such-story".into(),
            known: STORIES.to_vec(),
        }
    );
    assert!(error.to_string().contains("resync-3node"));
}

/// The command line a user runs prints the same bytes and exits 0.
#[test]
fn drbd_sim_story_command_prints_the_fixtures() {
    for (flags, fixture) in [
        (&[][..], "resync-3node.txt"),
        (&["--statistics"][..], "resync-3node.statistics.txt"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_drbd-sim"))
            .args(["story", "resync-3node"])
            .args(flags)
            .output()
            .expect("run drbd-sim");
        assert!(output.status.success(), "{output:?}");
        let expected = std::fs::read(format!(
            "{}/../../tests/data/events2/{fixture}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        assert!(
            output.stdout == expected,
            "drbd-sim story {flags:?} differs from {fixture}"
        );
    }
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_drbd-sim"))
        .args(["story", "no-such-story"])
        .output()
        .expect("run drbd-sim");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("resync-3node"));
}
