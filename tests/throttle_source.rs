//! The throttle loop's SyncSource side against a fake `drbdsetup` (records
//! its argv, answers `show --json` from a file, fails on demand): only
//! `--c-min-rate=0` is set, journaled first, given back on resync end,
//! disabling, shutdown and after a crash.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use drbd_agent::drbd::Shared;
use drbd_agent::events2::parse_line;
use drbd_agent::runtime::CancellationToken;
use drbd_agent::state::Model;
use drbd_agent::throttle::{sync_sources, Mode, PeerKey, PolicyEntry, ThrottleConfig, Throttler};
use tokio::sync::watch;
use tokio::time::Instant;

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod fake_drbdsetup;
}
use fake_drbdsetup::{model, noon, show, FakeDrbdsetup};
use support::fake_drbdsetup;

const LINES: &str = "exists resource name:r0 role:Primary suspended:no
exists device name:r0 volume:0 minor:7 disk:UpToDate client:no
exists connection name:r0 peer-node-id:1 conn-name:beta connection:Connected role:Secondary
exists peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:SyncSource peer-disk:Inconsistent out-of-sync:409600
exists -";

const ENDED: &str =
    "change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:Established";

const SET: &str = "peer-device-options r0 1 0 --c-min-rate=0";
const RESTORE: &str = "peer-device-options r0 1 0 --c-min-rate=250k";

fn fixture() -> FakeDrbdsetup {
    FakeDrbdsetup::new(&show("40M", "250k"))
}

fn enforce() -> ThrottleConfig {
    ThrottleConfig {
        enabled: true,
        mode: Mode::Enforce,
        ..ThrottleConfig::default()
    }
}

fn sources(lines: &str) -> Vec<PeerKey> {
    sync_sources(&model(lines))
}

async fn tick(t: &mut Throttler, lines: &str) {
    t.tick_all(Vec::new(), sources(lines), Instant::now(), noon())
        .await;
}

#[tokio::test]
async fn zeroes_c_min_rate_reasserts_and_restores_when_the_resync_ends() {
    let f = fixture();
    let mut t = f.throttler(enforce());
    tick(&mut t, LINES).await;
    assert_eq!(f.sets(), vec![SET.to_owned()]);
    let journal = fs::read_to_string(f.journal()).unwrap();
    assert!(journal.contains("\"sources\""), "{journal}");
    assert!(journal.contains("\"c_min_rate_kib\": 250"), "{journal}");
    assert!(journal.contains("\"entries\": []"), "{journal}");
    assert!(f.status.read().await.sources["r0/1/0"].c_min_rate_zeroed);

    // Read back as set: nothing more.
    fs::write(f.path("show.json"), show("40M", "0k")).unwrap();
    tick(&mut t, LINES).await;
    assert_eq!(f.sets().len(), 1, "{:?}", f.sets());

    // `drbdadm adjust` put 250k back: noticed, re-applied, still c-min-rate only.
    fs::write(f.path("show.json"), show("40M", "250k")).unwrap();
    tick(&mut t, LINES).await;
    assert_eq!(f.sets(), vec![SET.to_owned(), SET.to_owned()]);
    assert_eq!(f.status.read().await.reverts, 1);
    assert_eq!(f.status.read().await.sources["r0/1/0"].reverts, 1);

    // The resync ended: c-min-rate goes back, the journal goes.
    tick(&mut t, &format!("{LINES}\n{ENDED}")).await;
    assert_eq!(f.sets().last().map(String::as_str), Some(RESTORE));
    assert!(!f.journal().exists());
    assert!(f.sets().iter().all(|s| !s.contains("c-max-rate")));
    let status = f.status.read().await;
    assert_eq!(status.restores, 1);
    assert!(status.sources.is_empty());
}

#[tokio::test]
async fn observe_mode_and_disabled_policies_touch_nothing() {
    let f = fixture();
    let mut t = f.throttler(ThrottleConfig {
        mode: Mode::Observe,
        ..enforce()
    });
    tick(&mut t, LINES).await;
    let mut config = enforce();
    config.policies.push(PolicyEntry {
        resource: "r*".into(),
        enabled: Some(false),
        latency_target: None,
        min_rate: None,
        max_rate: None,
    });
    t.set_config(config);
    tick(&mut t, LINES).await;
    t.set_config(ThrottleConfig::default());
    tick(&mut t, LINES).await;
    assert!(f.sets().is_empty(), "{:?}", f.sets());
    assert!(!f.journal().exists());
}

#[tokio::test]
async fn disabling_restores() {
    let f = fixture();
    let mut t = f.throttler(enforce());
    tick(&mut t, LINES).await;
    assert!(f.journal().exists());
    t.set_config(ThrottleConfig {
        mode: Mode::Observe,
        ..enforce()
    });
    tick(&mut t, LINES).await;
    assert_eq!(f.sets(), vec![SET.to_owned(), RESTORE.to_owned()]);
    assert!(!f.journal().exists());
}

#[tokio::test]
async fn a_failed_read_changes_nothing() {
    let f = fixture();
    fs::write(f.path("fail"), "").unwrap();
    let mut t = f.throttler(enforce());
    tick(&mut t, LINES).await;
    assert!(f.sets().is_empty());
    assert!(!f.journal().exists());
    let status = f.status.read().await;
    assert_eq!(status.failures, 1);
    assert_eq!(status.sources["r0/1/0"].failures, 1);
    assert!(!status.sources["r0/1/0"].c_min_rate_zeroed);
}

#[tokio::test]
async fn a_journal_left_by_a_crash_is_restored_at_start() {
    let f = fixture();
    fs::create_dir_all(f.path("state")).unwrap();
    fs::write(
        f.journal(),
        r#"{"version":1,"node":"alpha","entries":[],"sources":[{"resource":"r0","peer_node_id":1,"volume":0,"c_min_rate_kib":250}]}"#,
    )
    .unwrap();
    let mut t = f.throttler(enforce());
    t.recover().await;
    assert_eq!(f.sets(), vec![RESTORE.to_owned()]);
    assert!(!f.journal().exists());
    assert_eq!(f.status.read().await.restores, 1);
}

#[tokio::test]
async fn restores_on_shutdown_through_run() {
    let f = fixture();
    let shared = Arc::new(Shared::new());
    {
        // What the supervisor does: the child runs and the dump is complete.
        let mut state = shared.state.write().await;
        state.model = {
            let mut m = Model::new();
            for line in LINES.lines() {
                m.apply(&parse_line(line).unwrap());
            }
            m
        };
        state.stats.child_running = true;
    }
    let mut config = enforce();
    config.interval.0 = Duration::from_millis(100);
    let throttler = f.throttler(config);
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let task = tokio::spawn(throttler.run(shared, stopped));
    for _ in 0..200 {
        if f.journal().exists() && !f.sets().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
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

/// Waits (bounded) until the commands run are `want`.
async fn wait_for(f: &FakeDrbdsetup, want: &[&str]) {
    for _ in 0..200 {
        if f.sets() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("wanted {want:?}, have {:?}", f.sets());
}

/// A reload through the loop's config channel: mode observe gives back at
/// once (no interval needed), enforce again takes charge again.
#[tokio::test]
async fn reloaded_configs_apply_while_running() {
    let f = fixture();
    let shared = Arc::new(Shared::new());
    {
        // What the supervisor does: the child runs and the dump is complete.
        let mut state = shared.state.write().await;
        state.model = {
            let mut m = Model::new();
            for line in LINES.lines() {
                m.apply(&parse_line(line).unwrap());
            }
            m
        };
        state.stats.child_running = true;
    }
    let mut config = enforce();
    config.interval.0 = Duration::from_millis(100);
    let (configs, rx) = watch::channel(config.clone());
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let task = tokio::spawn(
        f.throttler(config.clone())
            .run_reloadable(shared, stopped, Some(rx)),
    );
    wait_for(&f, &[SET]).await;
    // A long interval: the restore cannot come from a tick.
    let mut observe = ThrottleConfig {
        mode: Mode::Observe,
        ..config.clone()
    };
    observe.interval.0 = Duration::from_secs(3600);
    configs.send(observe).unwrap();
    wait_for(&f, &[SET, RESTORE]).await;
    assert!(!f.journal().exists());
    {
        let status = f.status.read().await;
        assert_eq!(status.mode, Some(Mode::Observe));
        assert!(status.sources.is_empty() || !status.sources["r0/1/0"].c_min_rate_zeroed);
    }
    configs.send(config).unwrap();
    wait_for(&f, &[SET, RESTORE, SET]).await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.sets(), vec![SET, RESTORE, SET, RESTORE]);
}
