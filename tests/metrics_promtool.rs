//! `promtool check metrics` (Debian package `prometheus`) on the full
//! exposition: the only findings allowed are drbd-reactor's two legacy
//! counter names. A missing promtool is a failure, not a skip:
//! `scripts/test-all` installs it.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use drbd_agent::drbd::{apply_line, Line, Shared};
use drbd_agent::metrics::{DrbdVersions, Exporter, Facts};

const STORY: &str = include_str!("data/events2/resync-3node.statistics.txt");

/// The findings drbd-reactor's own names draw; nothing else may appear.
const LEGACY: [&str; 2] = [
    "drbd_peerdevice_received_bytes counter metrics should have \"_total\" suffix",
    "drbd_peerdevice_sent_bytes counter metrics should have \"_total\" suffix",
];

fn promtool() -> std::path::PathBuf {
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|path| path.is_file())
    });
    from_path.unwrap_or_else(|| {
        panic!("promtool not found: install Debian's `prometheus` package (scripts/test-all does)")
    })
}

/// promtool's findings on `text`, sorted.
fn check(text: &str) -> Vec<String> {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let mut findings: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&output.stderr).lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    findings.sort();
    // promtool exits non-zero on lint findings; a parse error also says so
    // in its output, which then differs from the expected findings.
    findings
}

async fn exposition(lines: &[&str]) -> String {
    let shared = Arc::new(Shared::new());
    {
        let mut state = shared.state.write().await;
        for line in lines {
            apply_line(&mut state, &Line::Text((*line).to_owned()));
        }
        state.stats.child_running = true;
        state.stats.last_line_at = Some(chrono::Utc::now());
    }
    let exporter = Exporter::new(Facts {
        version: "0.1.0".to_owned(),
        git_commit: "0123abc".to_owned(),
    });
    exporter.set_drbd_versions(Some(DrbdVersions {
        kmod: Some("9.2.16".to_owned()),
        utils: "9.34.0".to_owned(),
    }));
    exporter.render(&shared).await.unwrap()
}

fn expected() -> Vec<String> {
    LEGACY.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn full_story_draws_only_the_legacy_findings() {
    let text = exposition(&STORY.lines().collect::<Vec<_>>()).await;
    assert!(text.contains("drbd_helper_responses_total"));
    assert_eq!(check(&text), expected(), "{text}");
}

#[tokio::test]
async fn running_resync_draws_only_the_legacy_findings() {
    let end = STORY
        .lines()
        .position(|l| l.contains("done:17.48"))
        .unwrap();
    let mut lines: Vec<&str> = STORY.lines().take(end + 1).collect();
    lines.push("change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 resync-suspended:user,gremlins");
    let text = exposition(&lines).await;
    assert!(text.contains("drbd_peerdevice_resync_eta_seconds"));
    assert!(text.contains("drbd_peerdevice_resync_rate_bytes_per_second"));
    assert!(text.contains("drbd_agent_last_event_age_seconds"));
    assert_eq!(check(&text), expected(), "{text}");
}

#[tokio::test]
async fn escaped_label_values_are_valid_exposition() {
    let name = r#"we"ird\name"#;
    let lines = [
        format!("exists resource name:{name} role:Primary suspended:no force-io-failures:no"),
        format!("exists connection name:{name} peer-node-id:1 conn-name:p\"1 connection:Connected role:Secondary congested:no ap-in-flight:0 rs-in-flight:0"),
        format!("exists peer-device name:{name} peer-node-id:1 conn-name:p\"1 volume:0 replication:Established peer-disk:UpToDate received:0 sent:0 out-of-sync:0"),
        "exists -".to_owned(),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let text = exposition(&refs).await;
    assert!(text.contains(r#"name="we\"ird\\name""#), "{text}");
    assert_eq!(check(&text), expected(), "{text}");
}

#[test]
fn promtool_rejects_broken_exposition() {
    // The check can fail: an unescaped quote in a label value is reported.
    let findings = check("# TYPE x gauge\nx{a=\"b\"c\"} 1\n");
    assert_ne!(findings, Vec::<String>::new());
    assert_ne!(findings, expected());
}
