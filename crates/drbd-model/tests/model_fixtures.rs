//! Real lines of the real tools (copied into tests/data) parse into the model
//! the tests expect.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use drbd_model::events2::{
    parse_line, ConnectionState, DiskState, Eta, ReplicationState, Role, Tristate, YesNo,
};
use drbd_model::state::{Change, Model, ObjectRef};

fn data(path: &str) -> String {
    let full = format!("{}/../../tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Applies lines, asserting each parses with no unknown keys or values.
fn apply_all(model: &mut Model, text: &str) -> Vec<Change> {
    let mut changes = Vec::new();
    for line in text.lines() {
        let event = parse_line(line).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(event.unknown_keys(), 0, "{line}");
        assert_eq!(event.unknown_values(), 0, "{line}");
        changes.extend(model.apply(&event));
    }
    changes
}

/// The command blocks of a drbd-utils `.test` file: (command, output lines).
fn test_blocks(text: &str) -> Vec<(String, Vec<String>)> {
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(command) = line.strip_prefix("$ ") {
            blocks.push((command.to_owned(), Vec::new()));
        } else if let Some((_, lines)) = blocks.last_mut() {
            lines.push(line.to_owned());
        }
    }
    // The last line of each block is the exit code.
    for (_, lines) in &mut blocks {
        assert_eq!(lines.pop().as_deref(), Some("0"));
    }
    blocks
}

#[test]
fn every_events2_fixture_block_parses_and_applies() {
    let dir = format!(
        "{}/../../tests/data/drbd-utils-tests",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("fixture dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.starts_with("events2-") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        for (command, lines) in test_blocks(&text) {
            // --diff prints old->new pairs and --color escape codes: neither is
            // what the agent runs; TIME is a sed placeholder for timestamps.
            if command.contains("--diff") || command.contains("--color") || command.contains("TIME")
            {
                continue;
            }
            let mut model = Model::new();
            for line in &lines {
                let event = parse_line(line).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(
                    event.unknown_keys() + event.unknown_values(),
                    0,
                    "{name}: {line}"
                );
                model.apply(&event);
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} blocks checked");
}

fn fixture_lines(name: &str, command_contains: &str) -> String {
    let text = data(&format!("drbd-utils-tests/{name}"));
    let (_, lines) = test_blocks(&text)
        .into_iter()
        .find(|(command, _)| command.contains(command_contains))
        .expect("block");
    lines.join("\n")
}

#[test]
fn create_then_destroy_leaves_nothing() {
    let mut model = Model::new();
    let changes = apply_all(
        &mut model,
        &fixture_lines("events2-all-create-destroy.test", "events2;"),
    );
    assert!(model.initial_dump_done());
    assert!(model.resources().is_empty());
    let destroyed: Vec<_> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Destroyed { object } => Some(object.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(destroyed.len(), 5, "{destroyed:?}");
    assert_eq!(
        destroyed.last(),
        Some(&ObjectRef::Resource {
            resource: "some-resource".into()
        })
    );
}

#[test]
fn sync_fixture_with_statistics() {
    let mut model = Model::new();
    apply_all(
        &mut model,
        &fixture_lines("events2-sync.test", "--statistics"),
    );
    let resource = model.resource("some-resource").expect("resource");
    assert_eq!(resource.may_promote, Some(YesNo::Yes));
    assert_eq!(resource.promotion_score, Some(10101));
    let device = &resource.devices[&0];
    assert_eq!(device.backing_dev.as_deref(), Some("/dev/sda"));
    assert_eq!(device.disk, Some(DiskState::UpToDate));
    // Statistics given once and not repeated on the change line are kept.
    assert_eq!(device.stats.size, Some(5));
    assert_eq!(device.stats.upper_pending, Some(60));
    let connection = &resource.connections["some-peer"];
    assert_eq!(connection.peer_node_id, Some(1));
    assert_eq!(connection.connection, Some(ConnectionState::Connected));
    assert_eq!(connection.peer_role, Some(Role::Secondary));
    assert_eq!(connection.ap_in_flight, Some(10));
    let peer_device = &connection.peer_devices[&0];
    assert_eq!(peer_device.replication, Some(ReplicationState::SyncSource));
    assert_eq!(peer_device.done, Some(37.5));
    assert_eq!(peer_device.stats.out_of_sync, Some(2500));
    assert_eq!(peer_device.stats.dbdt1, Some(0.24));
    assert_eq!(peer_device.stats.eta, Some(Eta::Seconds(10)));
    assert_eq!(connection.paths[0].established, Some(YesNo::Yes));
}

#[test]
fn resync_3node_story_as_alpha_sees_it() {
    let mut model = Model::new();
    let changes = apply_all(&mut model, &data("events2/resync-3node.statistics.txt"));
    assert!(model.initial_dump_done());
    let r0 = model.resource("r0").expect("r0");
    assert_eq!(r0.role, Some(Role::Primary));
    assert_eq!(r0.devices[&0].open, Some(Tristate::Yes));
    assert_eq!(r0.devices[&0].stats.written, Some(1572864));
    let bravo = &r0.connections["bravo"];
    let pd = &bravo.peer_devices[&0];
    assert_eq!(pd.replication, Some(ReplicationState::Established));
    assert_eq!(pd.peer_disk, Some(DiskState::UpToDate));
    // The finished resync leaves no progress behind.
    assert_eq!(pd.done, None);
    assert_eq!(pd.stats.dbdt1, None);
    assert_eq!(pd.stats.eta, None);
    assert_eq!(pd.stats.out_of_sync, Some(0));
    assert_eq!(r0.connections["charlie"].peer_role, Some(Role::Secondary));
    // Helpers: the last call and response per object, exit code decoded.
    let helper = &bravo.helpers["disconnected"];
    assert_eq!(helper.calls, 1);
    assert_eq!(helper.last_response.as_ref().map(|r| r.exit_code), Some(0));
    assert!(pd.helpers.contains_key("before-resync-source"));
    assert!(changes.contains(&Change::InitialDumpComplete));
}

#[test]
fn resync_progress_is_tracked_line_by_line() {
    let mut model = Model::new();
    let text = data("events2/resync-3node.statistics.txt");
    let mut seen = Vec::new();
    for line in text.lines() {
        model.apply(&parse_line(line).expect("parses"));
        let pd = model
            .resource("r0")
            .and_then(|r| r.connections.get("bravo"))
            .and_then(|c| c.peer_devices.get(&0));
        if let Some(pd) = pd.filter(|pd| pd.done.is_some()) {
            let done = pd.done.unwrap_or_default();
            seen.push((done, pd.stats.eta));
        }
    }
    // Lines about other objects leave the progress as it was.
    seen.dedup();
    assert_eq!(
        seen,
        vec![
            (0.0, Some(Eta::Unknown)),
            (17.48, Some(Eta::Seconds(14))),
            (37.79, Some(Eta::Seconds(9))),
            (58.5, Some(Eta::Seconds(6))),
            (79.59, Some(Eta::Seconds(3))),
        ]
    );
}

#[test]
fn old_captures_create_parents_implicitly() {
    let mut model = Model::new();
    let changes = apply_all(&mut model, &data("events2/captured-drbdtop-tests.txt"));
    // test0 never had a resource line: the device line created it.
    let test0 = model.resource("test0").expect("test0");
    assert!(!test0.announced);
    assert!(test0.devices[&0].announced);
    assert_eq!(test0.devices[&0].backing_dev, None);
    assert_eq!(test0.devices[&0].open, None);
    // A peer device without peer-node-id, before any connection line.
    let peer = &test0.connections["peer"];
    assert!(!peer.announced);
    assert_eq!(peer.peer_node_id, None);
    assert_eq!(peer.peer_devices[&0].stats.out_of_sync, Some(205655500));
    let pvc = model
        .resource("pvc-0a2826c9-7108-11e9-8f74-0026b954ca4c")
        .expect("pvc");
    assert!(pvc.announced);
    assert_eq!(pvc.may_promote, None);
    assert!(model.initial_dump_done());
    assert!(changes.iter().any(|c| matches!(
        c,
        Change::Created {
            object: ObjectRef::Connection { .. }
        }
    )));
    // The last timestamp seen is kept, with its offset.
    assert_eq!(
        model.last_event_at().map(|t| t.to_rfc3339()),
        Some("2019-05-07T13:50:23.974032-07:00".to_owned())
    );
}

#[test]
fn centreon_capture_without_newer_keys() {
    let mut model = Model::new();
    apply_all(
        &mut model,
        &data("events2/captured-centreon-now-statistics.txt"),
    );
    let counts = model.counts();
    assert_eq!(
        (
            counts.resources,
            counts.devices,
            counts.connections,
            counts.peer_devices
        ),
        (1, 1, 2, 2)
    );
    let r = model.resource("drbd1").expect("drbd1");
    assert_eq!(r.force_io_failures, None);
    assert_eq!(r.connections["central-2004"].peer_role, Some(Role::Primary));
}

#[test]
fn field_less_and_partial_change_lines_keep_previous_values() {
    let mut model = Model::new();
    apply_all(
        &mut model,
        "exists peer-device name:r0 peer-node-id:1 conn-name:b volume:0 replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no received:1 sent:2 out-of-sync:0 pending:0 unacked:0\nexists -",
    );
    let changes = apply_all(
        &mut model,
        "change peer-device name:r0 peer-node-id:1 conn-name:b volume:0",
    );
    assert!(changes.is_empty(), "{changes:?}");
    apply_all(
        &mut model,
        "change peer-device name:r0 peer-node-id:1 conn-name:b volume:0 sent:9",
    );
    let pd = &model.resource("r0").expect("r0").connections["b"].peer_devices[&0];
    assert_eq!(pd.replication, Some(ReplicationState::Established));
    assert_eq!(pd.peer_disk, Some(DiskState::UpToDate));
    assert_eq!(pd.stats.sent, Some(9));
    assert_eq!(pd.stats.received, Some(1));
}

#[test]
fn rename_moves_the_resource_with_everything_below() {
    let mut model = Model::new();
    apply_all(
        &mut model,
        "exists resource name:old role:Secondary\nexists device name:old volume:0 minor:5 disk:UpToDate\nexists -\nrename resource name:old new_name:new",
    );
    assert!(model.resource("old").is_none());
    let new = model.resource("new").expect("new");
    assert_eq!(new.name, "new");
    assert_eq!(new.devices[&0].minor, Some(5));
}

#[test]
fn flush_forgets_everything_until_the_next_dump() {
    let mut model = Model::new();
    apply_all(&mut model, &data("events2/resync-3node.txt"));
    model.flush();
    assert!(!model.initial_dump_done());
    assert!(model.resources().is_empty());
    apply_all(
        &mut model,
        "exists resource name:other role:Secondary\nexists -",
    );
    assert_eq!(model.resources().keys().collect::<Vec<_>>(), vec!["other"]);
}

#[test]
fn unknown_values_do_not_cost_the_line_in_the_model() {
    let mut model = Model::new();
    let event = parse_line("exists device name:r0 volume:0 minor:1 backing_dev:/dev/sdb disk:Quantum client:no open:no quorum:yes future-key:42").expect("parses");
    assert_eq!(event.unknown_values(), 1);
    assert_eq!(event.unknown_keys(), 1);
    model.apply(&event);
    let device = &model.resource("r0").expect("r0").devices[&0];
    assert_eq!(device.disk, Some(DiskState::Other("Quantum".into())));
    assert_eq!(device.quorum, Some(YesNo::Yes));
    assert_eq!(
        device.unknown.get("future-key").map(String::as_str),
        Some("42")
    );
}

#[test]
fn destroy_of_unknown_objects_is_harmless_and_destroy_order_is_any() {
    let mut model = Model::new();
    let changes = apply_all(
        &mut model,
        "destroy peer-device name:x conn-name:c volume:0\ndestroy resource name:x",
    );
    assert!(changes.is_empty());
    // Destroying the resource first removes its children with it.
    apply_all(
        &mut model,
        "create resource name:r role:Secondary\ncreate connection name:r peer-node-id:1 conn-name:p connection:Connected role:Secondary\ncreate peer-device name:r peer-node-id:1 conn-name:p volume:0 replication:Established\ndestroy resource name:r\ndestroy peer-device name:r peer-node-id:1 conn-name:p volume:0",
    );
    assert!(model.resources().is_empty());
}

#[test]
fn helper_response_exit_code_is_status_shifted() {
    let mut model = Model::new();
    let changes = apply_all(
        &mut model,
        "create resource name:r role:Secondary\ncall helper name:r peer-node-id:1 conn-name:p helper:fence-peer\nresponse helper name:r peer-node-id:1 conn-name:p helper:fence-peer status:1792",
    );
    assert!(changes.contains(&Change::HelperResponded {
        object: ObjectRef::Resource {
            resource: "r".into()
        },
        helper: "fence-peer".into(),
        status: 1792,
        exit_code: 7,
    }));
    let record = &model.resource("r").expect("r").helpers["fence-peer"];
    assert_eq!(record.last_response.as_ref().map(|r| r.exit_code), Some(7));
}
