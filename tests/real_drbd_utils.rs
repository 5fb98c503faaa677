//! The real drbd-utils on a machine without the DRBD kernel module: every
//! command fails with exit 20. The agent must say so, count it, keep retrying
//! and keep serving. `scripts/test-all` installs drbd-utils; a missing
//! drbdsetup is a failure here, not a skip.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use drbd_agent::drbd::{
    supervise, BackoffPolicy, CommandError, DrbdTools, Shared, SupervisorOptions,
};
use drbd_agent::runtime::CancellationToken;

fn real_tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let path = PathBuf::from(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} not found: install Debian's drbd-utils (scripts/test-all does)");
}

#[tokio::test]
async fn drbdsetup_without_the_module_is_a_typed_failure() {
    let tools = DrbdTools::new(real_tool("drbdsetup"), real_tool("drbdadm"));
    let error = tools
        .drbdsetup(&["peer-device-options", "r0", "1", "0", "--c-max-rate=100M"])
        .await
        .expect_err("no DRBD module here");
    match error {
        CommandError::Failed {
            code, ref stderr, ..
        } => {
            assert_eq!(code, Some(20), "{error}");
            assert!(
                stderr.contains("modprobe") || stderr.contains("drbd"),
                "{stderr}"
            );
        }
        other => panic!("unexpected error: {other}"),
    }
    // drbdadm --version works without the module and says kernel version 0.
    let version = tools
        .drbdadm(&["--version"])
        .await
        .expect("drbdadm --version");
    assert!(
        version.stdout.contains("DRBD_KERNEL_VERSION=0"),
        "{}",
        version.stdout
    );
    assert!(
        version.stdout.contains("DRBDADM_VERSION="),
        "{}",
        version.stdout
    );
}

#[tokio::test]
async fn supervisor_keeps_retrying_the_real_events2() {
    let options = SupervisorOptions {
        drbdsetup: real_tool("drbdsetup"),
        poll_interval: Duration::from_secs(3600),
        reconcile_interval: Duration::from_secs(3600),
        recheck_delay: Duration::from_millis(20),
        backoff: BackoffPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            stable_after: Duration::from_secs(3600),
        },
        max_line_len: 1024,
        command_timeout: Duration::from_secs(10),
        exit_grace: Duration::from_secs(5),
    };
    let shared = Arc::new(Shared::new());
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let task = tokio::spawn(supervise(options, shared.clone(), stopped));
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            {
                let state = shared.state.read().await;
                if state.stats.child_restarts >= 2 {
                    return state.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("events2 was restarted twice");
    assert!(!waited.drbd_reachable());
    assert!(waited.model.resources().is_empty());
    let exit = waited.stats.last_exit.clone().unwrap_or_default();
    assert!(exit.contains("20"), "last exit: {exit}");
    assert!(shared.supervisor_alive());
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("supervisor stopped")
        .expect("supervisor task");
}
