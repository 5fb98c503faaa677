//! Change tracking in `DrbdState`: which resources changed since a
//! generation, for the incremental metrics render.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use drbd_agent::drbd::{apply_line, ChangedSince, DrbdState, Line};

fn apply(state: &mut DrbdState, line: &str) {
    apply_line(state, &Line::Text(line.to_owned()));
}

fn with_two() -> DrbdState {
    let mut state = DrbdState::default();
    for line in [
        "exists resource name:r0 role:Secondary",
        "exists device name:r0 volume:0 minor:1000 disk:UpToDate",
        "exists resource name:r1 role:Secondary",
        "exists connection name:r1 peer-node-id:1 conn-name:bravo connection:Connected",
        "exists -",
    ] {
        apply(&mut state, line);
    }
    state
}

fn names(changed: ChangedSince<'_>) -> Vec<String> {
    match changed {
        ChangedSince::Resources(names) => names.into_iter().map(str::to_owned).collect(),
        other => panic!("expected a list, got {other:?}"),
    }
}

#[test]
fn a_reader_that_never_looked_sees_everything() {
    let state = with_two();
    assert_eq!(state.changed_since(None), ChangedSince::Everything);
    assert_eq!(
        state.changed_since(Some(state.generation)),
        ChangedSince::Nothing
    );
    // A generation from the future (another state): everything.
    assert_eq!(
        state.changed_since(Some(state.generation + 1)),
        ChangedSince::Everything
    );
}

#[test]
fn changes_name_their_resource_only() {
    let mut state = with_two();
    let seen = state.generation;
    apply(&mut state, "change device name:r0 volume:0 disk:Outdated");
    assert_eq!(names(state.changed_since(Some(seen))), ["r0"]);
    let seen2 = state.generation;
    apply(
        &mut state,
        "change connection name:r1 peer-node-id:1 conn-name:bravo connection:Connecting",
    );
    assert_eq!(names(state.changed_since(Some(seen2))), ["r1"]);
    assert_eq!(names(state.changed_since(Some(seen))), ["r0", "r1"]);
    // The same value again changes nothing.
    let seen3 = state.generation;
    apply(&mut state, "change device name:r0 volume:0 disk:Outdated");
    assert_eq!(state.changed_since(Some(seen3)), ChangedSince::Nothing);
}

#[test]
fn child_destroy_marks_the_resource_resource_destroy_removes_it() {
    let mut state = with_two();
    let seen = state.generation;
    apply(
        &mut state,
        "destroy connection name:r1 peer-node-id:1 conn-name:bravo",
    );
    assert_eq!(names(state.changed_since(Some(seen))), ["r1"]);
    let seen = state.generation;
    apply(&mut state, "destroy device name:r0 volume:0");
    apply(&mut state, "destroy resource name:r0");
    // Gone resources are not listed (readers compare with the model) but
    // the generation moved.
    assert!(state.generation > seen);
    assert!(names(state.changed_since(Some(seen))).is_empty());
    assert!(state.model.resource("r0").is_none());
}

#[test]
fn rename_marks_the_new_name_and_forgets_the_old() {
    let mut state = with_two();
    let seen = state.generation;
    apply(&mut state, "rename resource name:r0 new_name:r9");
    assert_eq!(names(state.changed_since(Some(seen))), ["r9"]);
    // Nothing is kept for r0 any more: an old reader sees only r1 and r9.
    assert_eq!(names(state.changed_since(Some(0))), ["r1", "r9"]);
}

#[test]
fn flush_means_everything_and_forgets_the_names() {
    let mut state = with_two();
    let seen = state.generation;
    state.flush();
    assert_eq!(state.changed_since(Some(seen)), ChangedSince::Everything);
    let after = state.generation;
    assert_eq!(state.changed_since(Some(after)), ChangedSince::Nothing);
    apply(&mut state, "exists resource name:r5 role:Primary");
    assert_eq!(names(state.changed_since(Some(after))), ["r5"]);
    assert_eq!(state.changed_since(Some(seen)), ChangedSince::Everything);
}

#[test]
fn tracking_never_outgrows_the_model() {
    let mut state = DrbdState::default();
    for round in 0..50 {
        let name = format!("r{round}");
        apply(
            &mut state,
            &format!("create resource name:{name} role:Secondary"),
        );
        apply(
            &mut state,
            &format!("create device name:{name} volume:0 minor:{round}"),
        );
        apply(
            &mut state,
            &format!("rename resource name:{name} new_name:{name}x"),
        );
        if round % 2 == 0 {
            apply(&mut state, &format!("destroy resource name:{name}x"));
        }
    }
    // Only the 25 resources still in the model are tracked.
    assert_eq!(state.model.resources().len(), 25);
    assert_eq!(names(state.changed_since(Some(0))).len(), 25);
}
