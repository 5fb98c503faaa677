//! The built-in `resync-3node` scenario, stepped in simulated time and
//! printed for alpha, tells the same story as the real drbdsetup fixture
//! (tests/data/events2/resync-3node*.txt): same lines, in the same order,
//! apart from the measured numbers.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use drbd_model::events2::format::FormatOptions;
use drbd_sim::cluster::Cluster;
use drbd_sim::command::Events2Args;
use drbd_sim::events2_client::{Client, Next};
use drbd_sim::scenario;

fn render(node: &str, statistics: u8) -> String {
    let mut cluster = Cluster::new(scenario::load("resync-3node").unwrap());
    let mut client = Client::new(Events2Args {
        target: "all".into(),
        format: FormatOptions {
            statistics,
            full: false,
        },
        ..Events2Args::default()
    });
    let mut text = client.dump("", &cluster.published(node));
    let mut t = Duration::ZERO;
    while t < Duration::from_secs(30) {
        t += Duration::from_millis(100);
        for batch in cluster.step(t) {
            if batch.node != node {
                continue;
            }
            match client.item("", &batch.item) {
                Next::Print(s) => text.push_str(&s),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    text
}

/// Drops values that depend on timing and the fixture's bare peer-device
/// line (a statistics-only notification the simulator does not send).
fn shape(text: &str, keep_stats: bool) -> Vec<String> {
    text.lines()
        .filter(|l| !l.ends_with("conn-name:bravo volume:0") && !l.contains(" unacked:1"))
        .map(|l| {
            l.split(' ')
                .filter(|kv| keep_stats || !is_counter(kv))
                .map(|kv| match kv.split_once(':') {
                    Some((k, _)) if ["done", "dbdt1", "eta"].contains(&k) => format!("{k}:N"),
                    _ => kv.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn is_counter(kv: &str) -> bool {
    let key = kv.split(':').next().unwrap_or("");
    [
        "read",
        "written",
        "received",
        "sent",
        "out-of-sync",
        "pending",
        "unacked",
        "al-writes",
    ]
    .contains(&key)
}

#[test]
fn alpha_tells_the_fixture_story() {
    let fixture = include_str!("../../../tests/data/events2/resync-3node.txt");
    assert_eq!(shape(&render("alpha", 0), true), shape(fixture, true));
}

#[test]
fn alpha_tells_the_fixture_story_with_statistics() {
    let fixture = include_str!("../../../tests/data/events2/resync-3node.statistics.txt");
    assert_eq!(shape(&render("alpha", 1), false), shape(fixture, false));
}

#[test]
fn every_node_prints_parseable_lines() {
    for node in ["alpha", "bravo", "charlie"] {
        let text = render(node, 2);
        assert!(text.contains("exists -\n"));
        for line in text.lines() {
            drbd_model::events2::parse_line(line)
                .unwrap_or_else(|e| panic!("{node}: {line:?}: {e:?}"));
        }
    }
}
