//! The exporter's incremental DRBD part: after any sequence of changes, the
//! cached-and-re-rendered text equals a render from scratch; only changed
//! resources are re-rendered; destroyed resources vanish; a flush re-renders
//! everything; the body frames add up to the text.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::sync::Arc;

use drbd_agent::drbd::{apply_line, Line, Shared};
use drbd_agent::metrics::{
    render_drbd, render_drbd_in, DrbdInput, EnumSeries, Exporter, Facts, CHUNK_BYTES,
};
use proptest::prelude::*;

const FIXTURES: [&str; 4] = [
    include_str!("data/events2/resync-3node.statistics.txt"),
    include_str!("data/events2/resync-3node.txt"),
    include_str!("data/events2/captured-drbdtop-tests.txt"),
    include_str!("data/events2/captured-centreon-now-statistics.txt"),
];
const STORY: &str = FIXTURES[0];
const NAMES: [&str; 4] = ["r0", "r1", "pvc-a\\\"q", "s9"];

fn facts() -> Facts {
    Facts {
        version: "1.2.3".to_owned(),
        git_commit: "abc123".to_owned(),
    }
}

fn fixture_lines() -> Vec<&'static str> {
    FIXTURES
        .iter()
        .flat_map(|text| text.lines())
        .filter(|line| !line.trim().is_empty())
        .collect()
}

/// `line` with its resource name replaced by `name`.
fn renamed(line: &str, name: &str) -> String {
    line.split(' ')
        .map(|word| match word.strip_prefix("name:") {
            Some(_) => format!("name:{name}"),
            None => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn apply(shared: &Shared, line: &str) {
    let mut state = shared.state.write().await;
    apply_line(&mut state, &Line::Text(line.to_owned()));
}

/// The DRBD part of a full exposition: without `drbd_agent_*`,
/// `drbd_version` and `process_*`.
fn drbd_part(text: &str) -> String {
    text.split_inclusive('\n')
        .filter(|line| {
            let name = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
                .unwrap_or(line);
            !(name.starts_with("drbd_agent_")
                || name.starts_with("drbd_version")
                || name.starts_with("process_"))
        })
        .collect()
}

/// The DRBD part as the exporter serves it and as a fresh render makes it.
async fn both(exporter: &Exporter, shared: &Shared) -> (String, String) {
    both_in(exporter, shared, EnumSeries::default()).await
}

/// [`both`] for an exporter of enums in `form`.
async fn both_in(exporter: &Exporter, shared: &Shared, form: EnumSeries) -> (String, String) {
    let served = drbd_part(&exporter.render(shared).await.unwrap());
    let state = shared.state.read().await;
    let fresh = match form {
        EnumSeries::Current => render_drbd(&DrbdInput::new(&state.model, &state.stats)),
        other => render_drbd_in(&DrbdInput::new(&state.model, &state.stats), other),
    }
    .unwrap();
    (served, fresh)
}

/// A render from scratch of the DRBD part in `form`.
async fn fresh_now(shared: &Shared, form: EnumSeries) -> String {
    let state = shared.state.read().await;
    match form {
        EnumSeries::Current => render_drbd(&DrbdInput::new(&state.model, &state.stats)),
        other => render_drbd_in(&DrbdInput::new(&state.model, &state.stats), other),
    }
    .unwrap()
}

#[derive(Debug, Clone)]
enum Step {
    /// A fixture line applied to one of `NAMES`.
    Line(usize, usize),
    DestroyResource(usize),
    DestroyConnection(usize),
    DestroyPeerDevice(usize),
    DestroyDevice(usize),
    Rename(usize, usize),
    Flush,
}

impl Step {
    fn lines(&self, fixtures: &[&str]) -> Vec<String> {
        let name = |i: usize| NAMES[i % NAMES.len()];
        match *self {
            Step::Line(line, n) => vec![renamed(fixtures[line % fixtures.len()], name(n))],
            Step::DestroyResource(n) => vec![format!("destroy resource name:{}", name(n))],
            Step::DestroyConnection(n) => vec![format!(
                "destroy connection name:{} peer-node-id:1 conn-name:bravo",
                name(n)
            )],
            Step::DestroyPeerDevice(n) => vec![format!(
                "destroy peer-device name:{} peer-node-id:2 conn-name:charlie volume:0",
                name(n)
            )],
            Step::DestroyDevice(n) => vec![format!("destroy device name:{} volume:0", name(n))],
            Step::Rename(from, to) => vec![format!(
                "rename resource name:{} new_name:{}",
                name(from),
                name(to)
            )],
            Step::Flush => Vec::new(),
        }
    }
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0..1000usize, 0..4usize).prop_map(|(l, n)| Step::Line(l, n)),
        1 => (0..4usize).prop_map(Step::DestroyResource),
        1 => (0..4usize).prop_map(Step::DestroyConnection),
        1 => (0..4usize).prop_map(Step::DestroyPeerDevice),
        1 => (0..4usize).prop_map(Step::DestroyDevice),
        1 => (0..4usize, 0..4usize).prop_map(|(f, t)| Step::Rename(f, t)),
        1 => Just(Step::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// After every step (or every few steps, so changes pile up between
    /// scrapes) the served DRBD part equals a render from scratch.
    #[test]
    fn incremental_equals_full_render(
        steps in prop::collection::vec((step(), any::<bool>()), 1..40),
        one_hot in any::<bool>(),
    ) {
        let fixtures = fixture_lines();
        let runtime = runtime();
        let shared = Shared::new();
        let form = if one_hot { EnumSeries::All } else { EnumSeries::Current };
        let exporter = Exporter::new(facts()).with_enum_series(form);
        runtime.block_on(async {
            for (index, (step, scrape)) in steps.iter().enumerate() {
                if let Step::Flush = step {
                    shared.state.write().await.flush();
                }
                for line in step.lines(&fixtures) {
                    apply(&shared, &line).await;
                }
                if *scrape || index + 1 == steps.len() {
                    let (served, fresh) = both_in(&exporter, &shared, form).await;
                    prop_assert_eq!(served, fresh, "after step {} {:?}", index, step);
                    // A plain scrape's body (no agent part or tail compressed)
                    // is the same DRBD part.
                    let plain = exporter.plain_exposition(&shared).await.unwrap();
                    prop_assert_eq!(plain.len(), plain.clone().into_frames().map(|f| f.len()).sum::<usize>());
                    let body: Vec<u8> = plain.into_frames().flat_map(|f| f.to_vec()).collect();
                    prop_assert_eq!(drbd_part(&String::from_utf8(body).unwrap()), fresh_now(&shared, form).await);
                }
            }
            Ok(())
        })?;
    }
}

#[test]
fn only_changed_resources_are_rendered_again() {
    runtime().block_on(async {
        let shared = Shared::new();
        for name in ["r0", "r1"] {
            for line in STORY.lines() {
                apply(&shared, &renamed(line, name)).await;
            }
        }
        let exporter = Exporter::new(facts());
        let (served, fresh) = both(&exporter, &shared).await;
        assert_eq!(served, fresh);
        let r0_score = "drbd_resource_promotionscore{name=\"r0\"} 10103\n";
        assert!(served.contains(r0_score), "{served}");

        // r0 edited behind the tracking's back (no touch, no generation),
        // then a tracked change of r1: only r1 is rendered again, so r0's
        // stale line stays while r1's new one appears.
        {
            let mut state = shared.state.write().await;
            let event =
                drbd_agent::events2::parse_line("change resource name:r0 promotion_score:1")
                    .unwrap();
            state.model.apply(&event);
            apply_line(
                &mut state,
                &Line::Text("change resource name:r1 promotion_score:7".to_owned()),
            );
        }
        let (served, fresh) = both(&exporter, &shared).await;
        assert!(served.contains(r0_score));
        assert!(fresh.contains("drbd_resource_promotionscore{name=\"r0\"} 1\n"));
        assert!(served.contains("drbd_resource_promotionscore{name=\"r1\"} 7\n"));

        // Touching r0 makes it current again.
        {
            let mut state = shared.state.write().await;
            state.generation += 1;
            state.touch("r0");
        }
        let (served, fresh) = both(&exporter, &shared).await;
        assert_eq!(served, fresh);
    });
}

#[test]
fn destroyed_and_renamed_resources_vanish() {
    runtime().block_on(async {
        let shared = Shared::new();
        for name in ["r0", "r1", "r2"] {
            for line in STORY.lines() {
                apply(&shared, &renamed(line, name)).await;
            }
        }
        let exporter = Exporter::new(facts());
        let text = exporter.render(&shared).await.unwrap();
        assert!(text.contains("name=\"r1\""));
        let full_cache = exporter.cached_bytes().await;

        apply(&shared, "destroy resource name:r1").await;
        apply(&shared, "rename resource name:r2 new_name:r7").await;
        let (served, fresh) = both(&exporter, &shared).await;
        assert_eq!(served, fresh);
        assert!(!served.contains("name=\"r1\""));
        assert!(!served.contains("name=\"r2\""));
        assert!(served.contains("name=\"r7\""));
        assert!(served.contains("drbd_resource_resources 2\n"));
        // The cache shrank by one resource.
        let cache = exporter.cached_bytes().await;
        assert!(cache < full_cache * 3 / 4, "{cache} of {full_cache}");

        // Every resource gone: no per-resource family, not even a header.
        apply(&shared, "destroy resource name:r0").await;
        apply(&shared, "destroy resource name:r7").await;
        let (served, fresh) = both(&exporter, &shared).await;
        assert_eq!(served, fresh);
        assert!(!served.contains("drbd_connection_state"));
        assert!(served.contains("drbd_resource_resources 0\n"));
        assert_eq!(exporter.cached_bytes().await, 0);
    });
}

#[test]
fn flush_renders_everything_again() {
    runtime().block_on(async {
        let shared = Shared::new();
        for line in STORY.lines() {
            apply(&shared, line).await;
        }
        let exporter = Exporter::new(facts());
        let before = drbd_part(&exporter.render(&shared).await.unwrap());
        assert!(before.contains("name=\"r0\""));

        // Edited behind the tracking's back, then flushed and dumped again:
        // nothing of the old renders survives.
        {
            let mut state = shared.state.write().await;
            let event =
                drbd_agent::events2::parse_line("change resource name:r0 promotion_score:1")
                    .unwrap();
            state.model.apply(&event);
            state.flush();
        }
        let (served, fresh) = both(&exporter, &shared).await;
        assert_eq!(served, fresh);
        assert!(!served.contains("name=\"r0\""));
        for line in STORY.lines().take(9) {
            apply(&shared, line).await;
        }
        let (served, fresh) = both(&exporter, &shared).await;
        assert_eq!(served, fresh);
        assert!(served.contains("drbd_resource_promotionscore{name=\"r0\"} 10103\n"));
    });
}

#[test]
fn body_frames_add_up_to_the_text() {
    runtime().block_on(async {
        let shared = Arc::new(Shared::new());
        for r in 0..300 {
            for line in STORY.lines() {
                apply(&shared, &renamed(line, &format!("res-{r:04}"))).await;
            }
        }
        let exporter = Exporter::new(facts());
        let exposition = exporter.exposition(&shared).await.unwrap();
        let text = exposition.to_text();
        assert_eq!(text.len(), exposition.len());
        assert!(text.len() > 4 * CHUNK_BYTES, "{}", text.len());

        let chunks: Vec<_> = exposition.clone().into_chunks().collect();
        assert!(chunks.iter().all(|c| !c.is_empty()));
        assert!(chunks.iter().all(|c| c.len() <= CHUNK_BYTES * 3 / 2));
        assert!(chunks.len() >= text.len() / (CHUNK_BYTES * 3 / 2));
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(String::from_utf8(joined).unwrap(), text);

        let pieces: Vec<_> = exposition.clone().into_pieces().collect();
        assert!(pieces.len() > chunks.len());
        let joined: Vec<u8> = pieces.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(String::from_utf8(joined).unwrap(), text);
        assert_eq!(&exposition.to_bytes()[..], text.as_bytes());
    });
}

#[test]
fn names_that_need_escaping_are_cached_escaped() {
    runtime().block_on(async {
        let shared = Shared::new();
        let name = NAMES[2];
        for line in STORY.lines() {
            apply(&shared, &renamed(line, name)).await;
        }
        let exporter = Exporter::new(facts());
        let (served, fresh) = both(&exporter, &shared).await;
        assert_eq!(served, fresh);
        assert!(
            served.contains("drbd_resource_promotionscore{name=\"pvc-a\\\\\\\"q\"} 10103\n"),
            "{served}"
        );
    });
}
