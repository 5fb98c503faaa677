//! The events2 supervisor against fake drbdsetup scripts (tests/fake/).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use drbd_agent::drbd::{supervise, BackoffPolicy, DrbdState, Shared, SupervisorOptions};
use drbd_agent::events2::{ConnectionState, DiskState, ReplicationState, Role};
use drbd_agent::runtime::CancellationToken;
use tokio::task::JoinHandle;

const FIXTURE: &str = "tests/data/events2/resync-3node.statistics.txt";
const BOUND: Duration = Duration::from_secs(20);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> String {
    fs::read_to_string(repo().join(FIXTURE)).unwrap()
}

/// The fixture up to and including `exists -`.
fn fixture_dump() -> String {
    let text = fixture();
    let end = text.find("exists -\n").unwrap() + "exists -\n".len();
    text[..end].to_owned()
}

struct Fake {
    dir: tempfile::TempDir,
    program: PathBuf,
}

impl Fake {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("drbdsetup");
        let script = format!(
            "#!/bin/sh\nFAKE_DIR='{}' exec '{}' \"$@\"\n",
            dir.path().display(),
            repo().join("tests/fake/drbdsetup-events2.sh").display()
        );
        fs::write(&program, script).unwrap();
        fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
        Fake { dir, program }
    }

    fn write(&self, name: &str, text: &str) {
        fs::write(self.dir.path().join(name), text).unwrap();
    }

    fn lines(&self, name: &str) -> Vec<String> {
        fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn pids(&self) -> Vec<u32> {
        self.lines("pids")
            .iter()
            .map(|p| p.parse().unwrap())
            .collect()
    }
}

fn options(program: &Path) -> SupervisorOptions {
    SupervisorOptions {
        drbdsetup: program.to_owned(),
        poll_interval: Duration::from_secs(3600),
        reconcile_interval: Duration::from_secs(3600),
        recheck_delay: Duration::from_millis(20),
        backoff: BackoffPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(40),
            stable_after: Duration::from_secs(3600),
        },
        max_line_len: 1024,
        command_timeout: Duration::from_secs(10),
        exit_grace: Duration::from_secs(5),
    }
}

struct Running {
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

fn start(options: SupervisorOptions) -> Running {
    let shared = Arc::new(Shared::new());
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let task = tokio::spawn(supervise(options, shared.clone(), stopped));
    Running { shared, stop, task }
}

impl Running {
    /// Waits (bounded) until `cond` holds and returns a copy of the state.
    async fn until(&self, what: &str, cond: impl Fn(&DrbdState) -> bool) -> DrbdState {
        let wait = async {
            loop {
                {
                    let state = self.shared.state.read().await;
                    if cond(&state) {
                        return state.clone();
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        match tokio::time::timeout(BOUND, wait).await {
            Ok(state) => state,
            Err(_) => panic!(
                "timed out waiting for {what}; state: {:?}",
                self.shared.state.read().await.stats
            ),
        }
    }

    async fn stop(self) -> Arc<Shared> {
        self.stop.cancel();
        tokio::time::timeout(BOUND, self.task)
            .await
            .expect("supervisor did not stop")
            .unwrap();
        self.shared
    }
}

async fn until_file(fake: &Fake, name: &str, count: usize) {
    let wait = async {
        while fake.lines(name).len() < count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(BOUND, wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {count} lines in {name}"));
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn stream_fills_model_polls_and_leaves_no_orphan() {
    let fake = Fake::new();
    fake.write("run.txt", &fixture());
    let mut opts = options(&fake.program);
    opts.poll_interval = Duration::from_millis(20);
    let running = start(opts);
    until_file(&fake, "polls", 2).await;
    assert!(fake.lines("polls").iter().all(|l| l == "n"));
    let state = running
        .until("the whole fixture", |s| s.stats.events == 34)
        .await;
    assert!(state.drbd_reachable());
    assert_eq!(state.stats.parse_errors, 0);
    assert_eq!(state.stats.child_restarts, 0);
    let r0 = state.model.resource("r0").unwrap();
    assert_eq!(r0.role, Some(Role::Primary));
    assert_eq!(r0.devices[&0].disk, Some(DiskState::UpToDate));
    let bravo = &r0.connections["bravo"];
    assert_eq!(bravo.connection, Some(ConnectionState::Connected));
    assert_eq!(
        bravo.peer_devices[&0].replication,
        Some(ReplicationState::Established)
    );
    assert_eq!(r0.connections["charlie"].peer_role, Some(Role::Secondary));
    let pid = state.stats.child_pid.unwrap();
    assert_eq!(fake.pids(), vec![pid]);
    assert!(process_exists(pid));

    let shared = running.stop().await;
    assert!(!process_exists(pid), "events2 child {pid} left behind");
    assert!(!shared.supervisor_alive());
    let state = shared.state.read().await;
    assert!(!state.stats.child_running);
    assert_eq!(state.stats.last_exit.as_deref(), Some("killed: shutdown"));
    assert!(
        state.model.resource("r0").is_some(),
        "kept (stale) on stop, never blanked"
    );
    assert!(state.is_stale());
    assert_eq!(
        state.stats.stale_reason.as_deref(),
        Some("killed: shutdown")
    );
}

#[tokio::test]
async fn exit_20_keeps_the_model_stale_until_the_next_dump_replaces_it() {
    let fake = Fake::new();
    fake.write("run-1.txt", &fixture());
    fake.write("run-1.exit", "20");
    // The second run starts slowly and sees no resources at all.
    fake.write("run-2.delay", "1");
    fake.write("run-2.txt", "exists -\n");
    let running = start(options(&fake.program));
    let stale = running
        .until("the first run's end", |s| s.stats.child_restarts >= 1)
        .await;
    assert!(
        stale.model.resource("r0").is_some(),
        "r0 stays served between the runs"
    );
    assert!(stale.is_stale());
    assert_eq!(
        stale.stats.stale_reason.as_deref(),
        Some("exited: exit code 20")
    );
    assert!(stale.stats.stale_since.is_some());
    assert!(!stale.drbd_reachable());
    let state = running
        .until("the second run's dump", |s| {
            s.stats.child_restarts >= 1 && s.stream_dump_done()
        })
        .await;
    assert!(
        state.model.resources().is_empty(),
        "r0 is not in the new dump: gone now: {:?}",
        state.model.resources().keys()
    );
    assert!(!state.is_stale());
    assert_eq!(state.stats.stale_since, None);
    assert_eq!(state.stats.model_rebuilds, 1);
    assert_eq!(state.stats.child_restarts, 1);
    assert_eq!(state.stats.events, 35);
    assert_eq!(
        state.stats.last_exit.as_deref(),
        Some("exited: exit code 20")
    );
    assert!(state.drbd_reachable());
    let pids = fake.pids();
    assert_eq!(pids.len(), 2);
    assert!(!process_exists(pids[0]));
    let shared = running.stop().await;
    assert!(!process_exists(pids[1]));
    assert!(!shared.supervisor_alive());
}

#[tokio::test]
async fn garbage_is_counted_not_fatal() {
    let fake = Fake::new();
    let long = "x".repeat(5000);
    let text = format!(
        "this is garbage\n{}exists resource name:r9 role:Secondary newkey:1 suspended:maybe\n{long}\n",
        fixture_dump()
    );
    fake.write("run.txt", &text);
    let running = start(options(&fake.program));
    let state = running
        .until("the too long line", |s| s.stats.parse_errors == 2)
        .await;
    assert_eq!(state.stats.events, 10);
    assert_eq!(state.stats.unknown_keys, 1);
    assert_eq!(state.stats.unknown_values, 1);
    let last = state.stats.last_parse_error.clone().unwrap();
    assert!(last.contains("5000 bytes is too long"), "{last}");
    assert!(state.model.resource("r0").is_some());
    assert!(state.model.resource("r9").is_some());
    assert!(state.drbd_reachable());
    assert_eq!(state.stats.child_restarts, 0);
    running.stop().await;
}

#[tokio::test]
async fn missing_binary_is_retried_and_daemon_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(options(&dir.path().join("no-such-drbdsetup")));
    let state = running
        .until("three failed starts", |s| s.stats.spawn_errors >= 3)
        .await;
    assert!(running.shared.supervisor_alive());
    assert!(state.stats.child_restarts >= 2);
    assert!(!state.drbd_reachable());
    let error = state.stats.last_spawn_error.unwrap();
    assert!(error.contains("not found"), "{error}");
    let shared = running.stop().await;
    assert!(!shared.supervisor_alive());
}

#[tokio::test]
async fn skipped_events_are_answered_by_a_dump_and_the_stream_goes_on() {
    let fake = Fake::new();
    let rest = &fixture()[fixture_dump().len()..];
    fake.write("run.txt", &format!("{}- skipped 5\n{rest}", fixture_dump()));
    // What DRBD holds: the state the whole fixture ends in.
    fake.write(
        "now.txt",
        &fixture_dump().replacen("role:Secondary", "role:Primary", 1),
    );
    let running = start(options(&fake.program));
    let state = running
        .until("the dump after the lost events", |s| {
            s.stats.lost_event_dumps == 1 && s.stats.events >= 35
        })
        .await;
    assert_eq!(state.stats.events_lost, 1);
    assert_eq!(state.stats.child_restarts, 0, "{:?}", state.stats);
    assert!(!state.is_stale(), "{:?}", state.stats);
    assert!(state.drbd_reachable());
    assert_eq!(
        state.model.resource("r0").unwrap().role,
        Some(Role::Primary)
    );
    assert_eq!(fake.lines("dumps").len(), 1);
    assert_eq!(fake.pids().len(), 1, "one stream, never restarted");
    running.stop().await;
}

#[tokio::test]
async fn a_failed_dump_after_lost_events_restarts_without_blanking() {
    let fake = Fake::new();
    // No now.txt: the dump prints nothing (incomplete).
    fake.write("run-1.txt", &format!("{}- skipped 2\n", fixture_dump()));
    fake.write("run-2.delay", "1");
    fake.write("run-2.txt", &fixture());
    let running = start(options(&fake.program));
    let stale = running
        .until("the restart", |s| s.stats.child_restarts == 1)
        .await;
    assert_eq!(
        stale.stats.last_exit.as_deref(),
        Some("killed: dump after lost events failed: incomplete dump (no `exists -`)")
    );
    assert!(stale.is_stale());
    assert!(
        stale.model.resource("r0").is_some(),
        "kept while the new run starts"
    );
    assert_eq!(stale.stats.reconcile_errors, 1);
    let state = running
        .until("the second run's dump", |s| s.drbd_reachable())
        .await;
    assert!(state.model.resource("r0").is_some());
    assert_eq!(state.stats.model_rebuilds, 1);
    running.stop().await;
}

#[tokio::test]
async fn skips_faster_than_the_bound_restart_the_stream_but_never_blank_it() {
    let fake = Fake::new();
    let skips = "- skipped 1\n".repeat(drbd_agent::drbd::LOST_DUMPS_PER_WINDOW + 1);
    fake.write("run.txt", &format!("{}{skips}", fixture_dump()));
    fake.write("now.txt", &fixture_dump());
    let running = start(options(&fake.program));
    running
        .until("the first dump", |s| s.stream_dump_done())
        .await;
    let state = running
        .until("a restart for lost events", |s| {
            s.stats.child_restarts >= 1
                && s.stats
                    .last_exit
                    .as_deref()
                    .is_some_and(|e| e.contains("events lost too often"))
        })
        .await;
    // Every skip counts against the bound, also those that arrive while
    // a dump runs (they ask for another one).
    assert!(state.stats.events_lost > drbd_agent::drbd::LOST_DUMPS_PER_WINDOW as u64);
    assert!(state.stats.lost_event_dumps <= drbd_agent::drbd::LOST_DUMPS_PER_WINDOW as u64);
    // From the first dump on, r0 is served at every look.
    for _ in 0..50 {
        let state = running.shared.state.read().await.clone();
        assert!(state.model.resource("r0").is_some(), "{:?}", state.stats);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.stop().await;
}

#[tokio::test]
async fn drift_restarts_the_stream() {
    let fake = Fake::new();
    fake.write("run.txt", &fixture_dump());
    // DRBD says Primary, the stream said Secondary.
    fake.write(
        "now.txt",
        &fixture_dump().replacen("role:Secondary", "role:Primary", 1),
    );
    let mut opts = options(&fake.program);
    opts.reconcile_interval = Duration::from_millis(50);
    let running = start(opts);
    let state = running
        .until("a drift", |s| {
            s.stats.drifts >= 1 && s.stats.child_restarts >= 1
        })
        .await;
    assert_eq!(state.stats.reconcile_errors, 0);
    assert!(
        fake.lines("dumps").len() >= 2,
        "checked twice before acting"
    );
    running.stop().await;
    for pid in fake.pids() {
        assert!(!process_exists(pid));
    }
}

#[tokio::test]
async fn agreeing_dump_is_no_drift() {
    let fake = Fake::new();
    fake.write("run.txt", &fixture());
    fake.write(
        "now.txt",
        &fixture_dump()
            .replace(
                // Counters differ from the stream's final state: ignored.
                "received:524288",
                "received:1",
            )
            .replacen("role:Secondary", "role:Primary", 1)
            .replacen("role:Primary congested", "role:Secondary congested", 1)
            .replace("open:no", "open:yes"),
    );
    let mut opts = options(&fake.program);
    opts.reconcile_interval = Duration::from_millis(30);
    let running = start(opts);
    until_file(&fake, "dumps", 3).await;
    let state = running.until("the stream", |s| s.stats.events == 34).await;
    assert_eq!(state.stats.drifts, 0, "{:?}", state.stats);
    assert_eq!(state.stats.child_restarts, 0);
    running.stop().await;
}

#[tokio::test]
async fn no_initial_dump_is_a_hung_child() {
    let fake = Fake::new();
    let mut opts = options(&fake.program);
    opts.reconcile_interval = Duration::from_millis(50);
    let running = start(opts);
    let state = running
        .until("a restart", |s| s.stats.child_restarts >= 1)
        .await;
    assert_eq!(
        state.stats.last_exit.as_deref(),
        Some("killed: no initial dump")
    );
    running.stop().await;
    for pid in fake.pids() {
        assert!(!process_exists(pid));
    }
}
