//! A configuration reload that switches drbdsetup: the supervisor stops the
//! running events2 child and starts the new program at once.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drbd_agent::drbd::{supervise_following, BackoffPolicy, Shared, SupervisorOptions};
use drbd_agent::runtime::CancellationToken;
use tokio::sync::watch;

/// A drbdsetup that records its start in `<name>.runs`, waits `delay`
/// seconds, prints an initial dump of one resource `<name>-r0` and then
/// keeps running.
fn program(dir: &Path, name: &str, delay: u32) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho started >> '{}'\nsleep {delay}\necho 'exists resource name:{name}-r0 role:Secondary'\necho 'exists -'\nexec sleep 600\n",
            dir.join(format!("{name}.runs")).display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn runs(dir: &Path, name: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("{name}.runs")))
        .unwrap_or_default()
        .lines()
        .count()
}

#[tokio::test]
async fn switching_drbdsetup_restarts_events2_with_the_new_program() {
    let dir = tempfile::tempdir().unwrap();
    let old = program(dir.path(), "old", 0);
    // The new program is slow to dump: meanwhile the old state is served.
    let new = program(dir.path(), "new", 1);
    let options = SupervisorOptions {
        drbdsetup: old.clone(),
        poll_interval: Duration::from_secs(3600),
        reconcile_interval: Duration::from_secs(3600),
        recheck_delay: Duration::from_secs(1),
        // A long backoff: the switch must not wait for it.
        backoff: BackoffPolicy {
            initial: Duration::from_secs(3600),
            max: Duration::from_secs(3600),
            stable_after: Duration::from_secs(3600),
        },
        max_line_len: 1024,
        command_timeout: Duration::from_secs(10),
        exit_grace: Duration::from_secs(5),
    };
    let shared = Arc::new(Shared::new());
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let (switch, programs) = watch::channel(old);
    let task = tokio::spawn(supervise_following(
        options,
        shared.clone(),
        stopped,
        programs,
    ));
    let wait = |what: &'static str, probe: Box<dyn Fn() -> bool + Send>| async move {
        tokio::time::timeout(Duration::from_secs(20), async {
            while !probe() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    };
    let reachable = {
        let shared = shared.clone();
        move || {
            shared
                .state
                .try_read()
                .map(|s| s.drbd_reachable())
                .unwrap_or(false)
        }
    };
    wait("the old program's dump", Box::new(reachable.clone())).await;
    assert_eq!(runs(dir.path(), "new"), 0);

    switch.send(new).unwrap();
    let d = dir.path().to_owned();
    wait("the new program", Box::new(move || runs(&d, "new") == 1)).await;
    {
        let state = shared.state.read().await;
        let names: Vec<&String> = state.model.resources().keys().collect();
        assert_eq!(names, ["old-r0"], "kept while the new program starts");
        assert!(state.is_stale());
        assert_eq!(
            state.stats.stale_reason.as_deref(),
            Some("killed: drbdsetup changed")
        );
    }
    wait("the new program's dump", Box::new(reachable)).await;
    {
        let state = shared.state.read().await;
        let names: Vec<&String> = state.model.resources().keys().collect();
        assert_eq!(names, ["new-r0"], "replaced at the new dump");
        assert!(!state.is_stale());
        assert_eq!(state.stats.child_restarts, 1);
        assert_eq!(
            state.stats.last_exit.as_deref(),
            Some("killed: drbdsetup changed")
        );
    }
    assert_eq!(
        runs(dir.path(), "old"),
        1,
        "the old program was not retried"
    );

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("supervisor stopped")
        .expect("supervisor task");
}
