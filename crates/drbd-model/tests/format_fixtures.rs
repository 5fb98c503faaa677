//! Re-formats drbd-utils' own expected events2 outputs: each expected line is
//! applied to a model as one batch, the batch is printed again with
//! `format::batch` and the result must equal the fixture byte for byte.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use drbd_model::events2::format::{
    batch, end_of_dump, helper_event, BatchKind, FormatOptions, HelperLine,
};
use drbd_model::events2::{parse_line, Action, Body, Field, ObjectKind};
use drbd_model::state::Model;

const FIXTURES: &[(&str, &str)] = &[
    (
        "events2-all-create-change",
        include_str!("../../../tests/data/drbd-utils-tests/events2-all-create-change.test"),
    ),
    (
        "events2-all-create-destroy",
        include_str!("../../../tests/data/drbd-utils-tests/events2-all-create-destroy.test"),
    ),
    (
        "events2-all-create-helper",
        include_str!("../../../tests/data/drbd-utils-tests/events2-all-create-helper.test"),
    ),
    (
        "events2-change-before-exists",
        include_str!("../../../tests/data/drbd-utils-tests/events2-change-before-exists.test"),
    ),
    (
        "events2-create-before-exists",
        include_str!("../../../tests/data/drbd-utils-tests/events2-create-before-exists.test"),
    ),
    (
        "events2-destroy-before-exists",
        include_str!("../../../tests/data/drbd-utils-tests/events2-destroy-before-exists.test"),
    ),
    (
        "events2-device-create-destroy",
        include_str!("../../../tests/data/drbd-utils-tests/events2-device-create-destroy.test"),
    ),
    (
        "events2-exists-before-create",
        include_str!("../../../tests/data/drbd-utils-tests/events2-exists-before-create.test"),
    ),
    (
        "events2-first-out-of-order",
        include_str!("../../../tests/data/drbd-utils-tests/events2-first-out-of-order.test"),
    ),
    (
        "events2-may-promote-peer-data",
        include_str!("../../../tests/data/drbd-utils-tests/events2-may-promote-peer-data.test"),
    ),
    (
        "events2-may-promote-peer-role",
        include_str!("../../../tests/data/drbd-utils-tests/events2-may-promote-peer-role.test"),
    ),
    (
        "events2-may-promote-quorum",
        include_str!("../../../tests/data/drbd-utils-tests/events2-may-promote-quorum.test"),
    ),
    (
        "events2-no-resources",
        include_str!("../../../tests/data/drbd-utils-tests/events2-no-resources.test"),
    ),
    (
        "events2-out-of-order",
        include_str!("../../../tests/data/drbd-utils-tests/events2-out-of-order.test"),
    ),
    (
        "events2-promotion-score-devices",
        include_str!("../../../tests/data/drbd-utils-tests/events2-promotion-score-devices.test"),
    ),
    (
        "events2-promotion-score-inconsistent",
        include_str!(
            "../../../tests/data/drbd-utils-tests/events2-promotion-score-inconsistent.test"
        ),
    ),
    (
        "events2-resource-create-destroy",
        include_str!("../../../tests/data/drbd-utils-tests/events2-resource-create-destroy.test"),
    ),
    (
        "events2-resource-exists",
        include_str!("../../../tests/data/drbd-utils-tests/events2-resource-exists.test"),
    ),
    (
        "events2-sync",
        include_str!("../../../tests/data/drbd-utils-tests/events2-sync.test"),
    ),
];

/// The `TIME ` the fixtures' sed substitutes for the timestamps.
const TIME: &str = "TIME ";

struct Block {
    command: String,
    lines: Vec<String>,
}

/// Splits a `.test` file into its `$ command` blocks (output without the
/// final exit-code line).
fn blocks(text: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for line in text.lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            blocks.push(Block {
                command: command.to_owned(),
                lines: Vec::new(),
            });
        } else if let Some(block) = blocks.last_mut() {
            block.lines.push(line.to_owned());
        }
    }
    for block in &mut blocks {
        let exit = block.lines.pop().expect("block has an exit code line");
        assert!(exit.parse::<u32>().is_ok(), "exit code line: {exit}");
    }
    blocks
}

/// Applies every line of a block as one batch and prints it again.
fn reformat(lines: &[String], options: &FormatOptions, prefix: &str) -> String {
    let mut model = Model::new();
    let mut kind = BatchKind::InitialDump;
    let mut out = String::new();
    for line in lines {
        let body = line.strip_prefix(prefix).expect("prefix on every line");
        let event = parse_line(body).unwrap_or_else(|e| panic!("{body}: {e}"));
        let object = match &event.body {
            Body::InitialDumpDone => {
                model.apply(&event);
                end_of_dump(prefix, &mut out);
                kind = BatchKind::Live;
                continue;
            }
            Body::Object(object) => object,
            Body::Skipped(_) => panic!("no skipped lines in the fixtures"),
        };
        if object.object == ObjectKind::Helper {
            let helper = object.fields.iter().find_map(|f| match f {
                Field::Helper(h) => Some(*h),
                _ => None,
            });
            let status = object.fields.iter().find_map(|f| match f {
                Field::Status(s) => Some(*s),
                _ => None,
            });
            let helper_line = HelperLine {
                response: object.action == Action::Response,
                resource: object.id.name,
                peer_node_id: object.id.peer_node_id,
                conn_name: object.id.conn_name,
                addresses: object.id.local.zip(object.id.peer),
                volume: object.id.volume,
                minor: object.id.minor,
                helper: helper.expect("helper name"),
                status,
            };
            helper_event(prefix, &helper_line, &mut out);
            model.apply(&event);
            continue;
        }
        let name = object.id.name.to_owned();
        let old = model.resource(&name).cloned();
        model.apply(&event);
        let new = model.resource(&name).cloned();
        batch(old.as_ref(), new.as_ref(), kind, options, prefix, &mut out);
    }
    out
}

#[test]
fn drbd_utils_fixtures_reformat_exactly() {
    let mut checked = 0;
    for (name, text) in FIXTURES {
        for block in blocks(text) {
            if block.command.contains("--diff") || block.command.contains("--color") {
                continue;
            }
            let options = FormatOptions {
                statistics: u8::from(block.command.contains("--statistics")),
                full: block.command.contains("--full"),
            };
            let prefix = if block.command.contains("--timestamps") {
                TIME
            } else {
                ""
            };
            let expected: String = block.lines.iter().map(|l| format!("{l}\n")).collect();
            let actual = reformat(&block.lines, &options, prefix);
            assert_eq!(actual, expected, "{name}: {}", block.command);
            checked += 1;
        }
    }
    // 19 files; all-create-change has 4 plain blocks, helper and sync 2 each.
    assert_eq!(checked, 24);
}

#[test]
fn block_splitter_sees_commands_and_drops_exit_codes() {
    let blocks = blocks("$ a; echo $?\nexists -\n0\n$ b; echo $?\nx\ny\n0\n");
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].lines, vec!["exists -"]);
    assert_eq!(blocks[1].command, "b; echo $?");
    assert_eq!(blocks[1].lines, vec!["x", "y"]);
}
