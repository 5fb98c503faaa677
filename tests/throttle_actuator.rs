//! The throttle loop against a fake `drbdsetup` (records its argv, answers
//! `show --json` from a file, fails on demand) and a tempdir sysfs.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use drbd_agent::drbd::Shared;
use drbd_agent::runtime::CancellationToken;
use drbd_agent::throttle::{sync_targets, Mode, Target, ThrottleConfig, Throttler};
use tokio::time::Instant;

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod fake_drbdsetup;
}
use fake_drbdsetup::{model, noon, show, FakeDrbdsetup};
use support::fake_drbdsetup;

const LINES: &str = "exists resource name:r0 role:Secondary suspended:no
exists device name:r0 volume:0 minor:7 disk:Inconsistent client:no
exists connection name:r0 peer-node-id:1 conn-name:beta connection:Connected role:Primary
exists peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:SyncTarget peer-disk:UpToDate out-of-sync:409600 dbdt1:1.00
exists -";

const ENDED: &str =
    "change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:Established";

/// The fake with the configured options and an empty sysfs for drbd7.
fn fixture() -> FakeDrbdsetup {
    let f = FakeDrbdsetup::new(&show("102400k", "250k"));
    fs::create_dir_all(f.path("sys/block/drbd7")).unwrap();
    f
}

fn enabled(mode: Mode) -> ThrottleConfig {
    ThrottleConfig {
        enabled: true,
        mode,
        ..ThrottleConfig::default()
    }
}

/// Writes drbd7's stat file: `writes` completed, `ms` spent writing.
fn stat(f: &FakeDrbdsetup, writes: u64, ms: u64) {
    let line = format!("0 0 0 0 {writes} 0 {} {ms} 0 {ms} {ms}\n", writes * 8);
    fs::write(f.path("sys/block/drbd7/stat"), line).unwrap();
}

fn targets(lines: &str) -> Vec<Target> {
    sync_targets(&model(lines))
}

const RESTORE: &str = "peer-device-options r0 1 0 --c-max-rate=102400k --c-min-rate=250k";

/// Two ticks one second apart with light, fast writes: the agent takes charge.
async fn take_charge(f: &FakeDrbdsetup, t: &mut Throttler, t0: Instant) {
    stat(f, 1000, 1000);
    t.tick(targets(LINES), t0, noon()).await;
    assert!(f.sets().is_empty(), "one sample gives no decision");
    stat(f, 1100, 1100);
    t.tick(targets(LINES), t0 + Duration::from_secs(1), noon())
        .await;
}

#[tokio::test]
async fn throttles_reasserts_and_restores_when_the_resync_ends() {
    let f = fixture();
    let mut t = f.throttler(enabled(Mode::Enforce));
    let t0 = Instant::now();
    take_charge(&f, &mut t, t0).await;
    let sets = f.sets();
    assert_eq!(sets.len(), 1, "{sets:?}");
    let set = &sets[0];
    assert!(
        set.starts_with("peer-device-options r0 1 0 --c-max-rate=")
            && set.ends_with("k --c-min-rate=0"),
        "{set}"
    );
    assert!(!set.contains("--c-max-rate=0k") && !set.contains("set-defaults"));
    assert!(f.argv().iter().any(|a| a == "show --json r0"));
    let journal = fs::read_to_string(f.journal()).unwrap();
    assert!(journal.contains("\"c_max_rate_kib\": 102400"), "{journal}");
    assert!(journal.contains("\"node\": \"alpha\""), "{journal}");
    let rate: u64 = set
        .split("--c-max-rate=")
        .nth(1)
        .and_then(|s| s.split('k').next())
        .unwrap()
        .parse()
        .unwrap();
    {
        let status = f.status.read().await;
        let peer = &status.peers["r0/1/0"];
        assert_eq!(peer.rate_set_kib, Some(rate));
        assert!(peer.decision.is_some());
        assert_eq!(status.reverts, 0);
    }

    // `drbdadm adjust` put the configured value back: noticed, re-applied.
    stat(&f, 1200, 1200);
    t.tick(targets(LINES), t0 + Duration::from_secs(2), noon())
        .await;
    assert_eq!(f.status.read().await.reverts, 1);
    assert_eq!(f.status.read().await.peers["r0/1/0"].reverts, 1);
    assert_eq!(f.sets().len(), 2, "{:?}", f.sets());

    // Read back as set: no revert (the rate may still move, not counted).
    let current = f.status.read().await.peers["r0/1/0"].rate_set_kib.unwrap();
    fs::write(f.path("show.json"), show(&format!("{current}k"), "0k")).unwrap();
    stat(&f, 1300, 1300);
    t.tick(targets(LINES), t0 + Duration::from_secs(3), noon())
        .await;
    assert_eq!(f.status.read().await.reverts, 1);

    // The resync ended: the recorded options go back, the journal goes.
    t.tick(
        targets(&format!("{LINES}\n{ENDED}")),
        t0 + Duration::from_secs(4),
        noon(),
    )
    .await;
    assert_eq!(f.sets().last().map(String::as_str), Some(RESTORE));
    assert!(!f.journal().exists());
    let status = f.status.read().await;
    assert_eq!(status.restores, 1);
    assert!(status.peers.is_empty());
}

#[tokio::test]
async fn restores_on_shutdown_through_run() {
    let f = fixture();
    stat(&f, 1000, 1000);
    let shared = Arc::new(Shared::new());
    {
        // What the supervisor does: the child runs and the dump is complete.
        let mut state = shared.state.write().await;
        state.model = model(LINES);
        state.stats.child_running = true;
    }
    let mut throttler = f.throttler(enabled(Mode::Enforce));
    let mut config = ThrottleConfig {
        enabled: true,
        ..ThrottleConfig::default()
    };
    config.interval.0 = Duration::from_millis(200);
    throttler.set_config(config);
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let task = tokio::spawn(throttler.run(shared, stopped));
    // Keep the app writing until the agent has taken charge (bounded).
    let mut writes = 1000;
    for _ in 0..100 {
        writes += 50;
        stat(&f, writes, writes);
        tokio::time::sleep(Duration::from_millis(100)).await;
        if f.journal().exists() && !f.sets().is_empty() {
            break;
        }
    }
    assert!(f.journal().exists(), "the agent never took charge");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.sets().last().map(String::as_str), Some(RESTORE));
    assert!(!f.journal().exists());
}

#[tokio::test]
async fn a_journal_left_by_a_crash_is_restored_at_start() {
    let f = fixture();
    fs::create_dir_all(f.path("state")).unwrap();
    fs::write(
        f.journal(),
        r#"{"version":1,"node":"alpha","entries":[{"resource":"r0","peer_node_id":1,"volume":0,"c_max_rate_kib":102400,"c_min_rate_kib":250}]}"#,
    )
    .unwrap();
    let mut t = f.throttler(enabled(Mode::Enforce));
    t.recover().await;
    assert_eq!(f.sets(), vec![RESTORE.to_owned()]);
    assert!(!f.journal().exists());
    assert_eq!(f.status.read().await.restores, 1);
}

#[tokio::test]
async fn a_failed_restore_at_start_is_kept_and_retried() {
    let f = fixture();
    fs::create_dir_all(f.path("state")).unwrap();
    fs::write(
        f.journal(),
        r#"{"version":1,"node":"alpha","entries":[{"resource":"r0","peer_node_id":1,"volume":0,"c_max_rate_kib":102400,"c_min_rate_kib":250}]}"#,
    )
    .unwrap();
    fs::write(f.path("fail"), "").unwrap();
    let mut t = f.throttler(enabled(Mode::Enforce));
    t.recover().await;
    assert!(f.journal().exists(), "not restored = still journaled");
    assert_eq!(f.status.read().await.failures, 1);
    fs::remove_file(f.path("fail")).unwrap();
    t.tick(Vec::new(), Instant::now(), noon()).await;
    assert_eq!(f.sets().last().map(String::as_str), Some(RESTORE));
    assert!(!f.journal().exists());
}

#[tokio::test]
async fn corrupt_or_foreign_journals_are_set_aside_unused() {
    for text in [
        "{ not json".to_owned(),
        r#"{"version":1,"node":"beta","entries":[{"resource":"r0","peer_node_id":1,"volume":0,"c_max_rate_kib":1,"c_min_rate_kib":0}]}"#.to_owned(),
    ] {
        let f = fixture();
        fs::create_dir_all(f.path("state")).unwrap();
        fs::write(f.journal(), &text).unwrap();
        let mut t = f.throttler(enabled(Mode::Enforce));
        t.recover().await;
        assert!(f.argv().is_empty(), "nothing written from {text}");
        assert!(!f.journal().exists());
        assert_eq!(
            fs::read_to_string(f.path("state/throttle-journal.json.corrupt")).unwrap(),
            text
        );
        let status = f.status.read().await;
        assert_eq!(status.journal_errors, 1);
        assert!(status.last_error.is_some());
    }
}

#[tokio::test]
async fn failures_leave_the_device_alone() {
    let f = fixture();
    fs::write(f.path("fail"), "").unwrap();
    let mut t = f.throttler(enabled(Mode::Enforce));
    take_charge(&f, &mut t, Instant::now()).await;
    // show failed: nothing recorded, nothing set.
    assert!(f.sets().is_empty(), "{:?}", f.sets());
    assert!(!f.journal().exists());
    assert_eq!(f.status.read().await.failures, 1);

    // A stat file that vanished: counted, no command run.
    fs::remove_file(f.path("fail")).unwrap();
    fs::remove_file(f.path("sys/block/drbd7/stat")).unwrap();
    let before = f.argv().len();
    t.tick(targets(LINES), Instant::now(), noon()).await;
    assert_eq!(f.argv().len(), before);
    let status = f.status.read().await;
    assert_eq!(status.failures, 2);
    assert!(
        status.last_error.as_deref().unwrap().contains("drbd7/stat"),
        "{:?}",
        status.last_error
    );
}

#[tokio::test]
async fn observe_mode_changes_nothing() {
    let f = fixture();
    let mut t = f.throttler(enabled(Mode::Observe));
    take_charge(&f, &mut t, Instant::now()).await;
    assert!(f.argv().is_empty(), "{:?}", f.argv());
    assert!(!f.journal().exists());
    let status = f.status.read().await;
    assert!(status.peers["r0/1/0"].decision.is_some());
    assert_eq!(status.peers["r0/1/0"].rate_set_kib, None);
}

#[tokio::test]
async fn disabling_restores() {
    let f = fixture();
    let mut t = f.throttler(enabled(Mode::Enforce));
    let t0 = Instant::now();
    take_charge(&f, &mut t, t0).await;
    assert!(f.journal().exists());
    t.set_config(ThrottleConfig::default());
    t.tick(targets(LINES), t0 + Duration::from_secs(2), noon())
        .await;
    assert_eq!(f.sets().last().map(String::as_str), Some(RESTORE));
    assert!(!f.journal().exists());
}
