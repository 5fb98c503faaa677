//! The supervised `drbdsetup events2` stream: spawn, read, apply, poll,
//! reconcile, restart with backoff, kill on shutdown.

use std::fmt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::watch;
use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tracing::{debug, error, info, warn};

use super::lines::{Line, LineReader};
use super::lost::{LostBudget, LOST_DUMPS_PER_WINDOW, LOST_WINDOW};
use super::reconcile::{compare, model_from_dump};
use super::runner::{run_command, CommandError, DEFAULT_COMMAND_TIMEOUT};
use crate::backoff::{Backoff, BackoffPolicy};
use crate::config::DrbdConfig;
use crate::events2::{parse_line, Body};
use crate::runtime::CancellationToken;
use crate::runtime::{DrbdState, Shared};
use crate::state::Change;

/// The arguments of the long-running stream.
pub const EVENTS2_ARGS: [&str; 6] = [
    "events2",
    "--timestamps",
    "--statistics",
    "--full",
    "--poll",
    "all",
];

/// The arguments of the reconcile dump.
pub const DUMP_ARGS: [&str; 5] = ["events2", "--now", "--statistics", "--full", "all"];

/// A stream without its initial dump after a reconcile interval counts as
/// hung only once it has run at least this long.
const HUNG_AFTER: Duration = Duration::from_secs(2);

/// Differences logged per drift.
const DIFFERENCES_LOGGED: usize = 5;

/// How the supervisor runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorOptions {
    pub drbdsetup: PathBuf,
    /// `n` is written to the child's stdin this often.
    pub poll_interval: Duration,
    /// A fresh dump is compared with the model this often.
    pub reconcile_interval: Duration,
    /// Delay before a difference is checked again before it counts as drift.
    pub recheck_delay: Duration,
    pub backoff: BackoffPolicy,
    /// Longer lines are dropped and counted as parse errors.
    pub max_line_len: usize,
    /// Timeout of the reconcile dump.
    pub command_timeout: Duration,
    /// How long a child that closed its stdout may take to exit before it is killed.
    pub exit_grace: Duration,
}

impl SupervisorOptions {
    /// Options from the `[drbd]` configuration with the built-in limits.
    pub fn from_config(drbd: &DrbdConfig) -> Self {
        Self {
            drbdsetup: drbd.drbdsetup.clone(),
            poll_interval: drbd.statistics_poll_interval,
            reconcile_interval: drbd.reconcile_interval,
            recheck_delay: drbd.reconcile_interval.min(Duration::from_secs(2)),
            backoff: BackoffPolicy::default(),
            max_line_len: 64 * 1024,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            exit_grace: Duration::from_secs(5),
        }
    }
}

/// Why one run of the stream ended.
#[derive(Debug)]
pub enum StreamEnd {
    /// drbdsetup could not be started.
    SpawnFailed(String),
    /// The child closed its output and exited (`exit code 20`, `signal 9`).
    Exited(String),
    /// Reading its output failed.
    ReadError(String),
    /// `- skipped N` came more often than [`LOST_DUMPS_PER_WINDOW`] times
    /// within [`LOST_WINDOW`] (each one is otherwise answered by a dump).
    LostTooOften(u64),
    /// The `--now` dump after lost events failed or was incomplete.
    LostDumpFailed(LostDumpError),
    /// A reconcile dump disagreed with the model (twice in a row).
    Drift,
    /// No initial dump within one reconcile interval.
    Hung,
    /// The daemon is stopping.
    Shutdown,
    /// A reload switched the drbdsetup program: restart with the new one.
    ToolChanged,
}

impl fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SpawnFailed(e) => write!(f, "start failed: {e}"),
            Self::Exited(status) => write!(f, "exited: {status}"),
            Self::ReadError(e) => write!(f, "read error: {e}"),
            Self::LostTooOften(n) => write!(
                f,
                "killed: events lost too often ({n} lost, more than {LOST_DUMPS_PER_WINDOW} times in {}s)",
                LOST_WINDOW.as_secs()
            ),
            Self::LostDumpFailed(e) => write!(f, "killed: dump after lost events failed: {e}"),
            Self::Drift => f.write_str("killed: drift"),
            Self::Hung => f.write_str("killed: no initial dump"),
            Self::Shutdown => f.write_str("killed: shutdown"),
            Self::ToolChanged => f.write_str("killed: drbdsetup changed"),
        }
    }
}

/// What one line did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOutcome {
    Applied,
    Error,
    /// `- skipped N`: the model must be re-read (a `--now` dump).
    EventsLost(u64),
}

/// Parses one line and applies it to the model, updating the counters. Pure.
pub fn apply_line(state: &mut DrbdState, line: &Line) -> LineOutcome {
    let text = match line {
        Line::Text(text) => text,
        Line::TooLong { len } => {
            return parse_failure(state, format!("line of {len} bytes is too long"));
        }
        Line::NotUtf8 => return parse_failure(state, "line is not UTF-8".to_owned()),
    };
    let event = match parse_line(text) {
        Ok(event) => event,
        Err(e) => return parse_failure(state, e.to_string()),
    };
    let stats = &mut state.stats;
    stats.events += 1;
    stats.unknown_keys += event.unknown_keys() as u64;
    stats.unknown_values += event.unknown_values() as u64;
    if let Body::Skipped(count) = event.body {
        stats.events_lost += 1;
        return LineOutcome::EventsLost(count);
    }
    let changes = state.apply_event(&event);
    for change in changes {
        match change {
            Change::InitialDumpComplete => info!("events2 initial dump complete"),
            Change::EventsLost { count } => return LineOutcome::EventsLost(count),
            Change::HelperCalled { helper, .. } => {
                *state.stats.helper_calls.entry(helper).or_default() += 1;
            }
            Change::HelperResponded {
                helper, exit_code, ..
            } => {
                *state
                    .stats
                    .helper_responses
                    .entry(helper)
                    .or_default()
                    .entry(exit_code)
                    .or_default() += 1;
            }
            _ => {}
        }
    }
    LineOutcome::Applied
}

fn parse_failure(state: &mut DrbdState, message: String) -> LineOutcome {
    let stats = &mut state.stats;
    stats.parse_errors += 1;
    // Log the 1st, 2nd, 4th, 8th… error so a flood of garbage cannot flood the log.
    if stats.parse_errors.is_power_of_two() {
        warn!(error = %message, total = stats.parse_errors, "events2 line not understood");
    }
    stats.last_parse_error = Some(message);
    LineOutcome::Error
}

/// Runs the events2 stream until `shutdown`, restarting it with backoff.
/// When a run ends the model is kept, marked stale, until the next run's
/// initial dump replaces it (see [`DrbdState::stream_ended`]).
pub async fn supervise(
    options: SupervisorOptions,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    // The sender stays here: the program never changes.
    let (_program, programs) = watch::channel(options.drbdsetup.clone());
    supervise_following(options, shared, shutdown, programs).await;
}

/// [`supervise`], taking the drbdsetup program from `programs`: when it
/// changes (a configuration reload), the running stream is stopped and
/// started again at once with the new program, with a fresh backoff.
pub async fn supervise_following(
    mut options: SupervisorOptions,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    mut programs: watch::Receiver<PathBuf>,
) {
    let _alive = shared.alive_guard();
    let mut backoff = Backoff::new(options.backoff);
    let mut lost = LostBudget::default();
    let mut first = true;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        if !first {
            shared.state.write().await.stats.child_restarts += 1;
        }
        first = false;
        let started = Instant::now();
        options.drbdsetup = programs.borrow_and_update().clone();
        let end = run_stream(&options, &shared, &shutdown, &mut programs, &mut lost).await;
        let dump_was_done = {
            let mut state = shared.state.write().await;
            let done = state.stream_dump_done();
            state.stream_ended(&end.to_string(), chrono::Utc::now());
            if state.is_stale() {
                info!(reason = %end, resources = state.model.resources().len(), "serving the last model, marked stale, until the next initial dump");
            }
            state.stats.child_running = false;
            state.stats.child_pid = None;
            state.stats.last_exit = Some(end.to_string());
            done
        };
        shared.model_changed.notify_one();
        if matches!(end, StreamEnd::Shutdown) {
            info!("events2 stopped for shutdown");
            break;
        }
        if matches!(end, StreamEnd::ToolChanged) {
            info!(drbdsetup = %programs.borrow().display(), "drbdsetup changed, restarting events2");
            backoff.reset();
            continue;
        }
        if dump_was_done && started.elapsed() >= backoff.policy().stable_after {
            backoff.reset();
        }
        log_unavailable(&end);
        let delay = backoff.next_delay();
        warn!(reason = %end, restart_in_ms = delay.as_millis() as u64, "events2 stream ended");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => break,
            Ok(()) = programs.changed() => {
                info!(drbdsetup = %programs.borrow().display(), "drbdsetup changed, starting events2");
                backoff.reset();
            }
        }
    }
}

fn spawn_child(options: &SupervisorOptions) -> std::io::Result<Child> {
    Command::new(&options.drbdsetup)
        .args(EVENTS2_ARGS)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Never leave the child behind, even if this task is dropped.
        .kill_on_drop(true)
        .spawn()
}

async fn run_stream(
    options: &SupervisorOptions,
    shared: &Shared,
    shutdown: &CancellationToken,
    programs: &mut watch::Receiver<PathBuf>,
    lost: &mut LostBudget,
) -> StreamEnd {
    let mut child = match spawn_child(options) {
        Ok(child) => child,
        Err(e) => {
            let e = CommandError::from_spawn(&options.drbdsetup, e);
            error!(error = %e, "cannot start drbdsetup events2");
            let mut state = shared.state.write().await;
            state.stats.spawn_errors += 1;
            state.stats.last_spawn_error = Some(e.to_string());
            return StreamEnd::SpawnFailed(e.to_string());
        }
    };
    let pid = child.id();
    {
        let mut state = shared.state.write().await;
        state.stats.child_running = true;
        state.stats.child_pid = pid;
    }
    info!(pid, "events2 started");
    let (Some(stdout), Some(stderr), Some(mut stdin)) =
        (child.stdout.take(), child.stderr.take(), child.stdin.take())
    else {
        // Cannot happen: all three were requested as pipes.
        stop_child(&mut child).await;
        return StreamEnd::ReadError("child pipes missing".to_owned());
    };
    let stderr_task = tokio::spawn(log_stderr(stderr, options.max_line_len));
    let mut lines = LineReader::new(BufReader::new(stdout), options.max_line_len);
    let mut poll = interval_at(
        Instant::now() + options.poll_interval,
        options.poll_interval,
    );
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut reconcile = interval_at(
        Instant::now() + options.reconcile_interval,
        options.reconcile_interval,
    );
    reconcile.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut suspect = false;
    let started = Instant::now();
    // The `--now` dump answering lost events, while it runs; `more_lost`:
    // events were lost again meanwhile (another dump follows).
    let mut lost_dump = None;
    let mut more_lost = false;
    let mut lost_count = 0u64;

    let end = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break StreamEnd::Shutdown,
            Ok(()) = programs.changed() => break StreamEnd::ToolChanged,
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    let mut state = shared.state.write().await;
                    state.stats.last_line_at = Some(chrono::Utc::now());
                    let generation = state.generation;
                    let outcome = apply_line(&mut state, &line);
                    if state.generation != generation {
                        shared.model_changed.notify_one();
                    }
                    if let LineOutcome::EventsLost(count) = outcome {
                        lost_count += count;
                        state.events_lost(count, chrono::Utc::now());
                        drop(state);
                        if !lost.allow(std::time::Instant::now()) {
                            warn!(count, lost_total = lost_count, "events2 lost events too often, restarting the stream");
                            break StreamEnd::LostTooOften(lost_count);
                        }
                        if lost_dump.is_some() {
                            more_lost = true;
                            warn!(count, "events2 lost events again, another dump follows");
                        } else {
                            warn!(count, "events2 lost events, re-reading the state with a dump; the stream goes on");
                            lost_dump = Some(Box::pin(run_command(&options.drbdsetup, &DUMP_ARGS, options.command_timeout)));
                        }
                    }
                }
                Ok(None) => break StreamEnd::Exited(String::new()),
                Err(e) => break StreamEnd::ReadError(e.to_string()),
            },
            _ = poll.tick() => {
                let write = tokio::time::timeout(Duration::from_secs(1), stdin.write_all(b"n\n"));
                match write.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => debug!(error = %e, "cannot poll events2"),
                    Err(_) => debug!("events2 does not read its stdin"),
                }
            },
            output = async { match lost_dump.as_mut() { Some(dump) => dump.await, None => std::future::pending().await } }, if lost_dump.is_some() => {
                lost_dump = None;
                match adopt_lost_dump(shared, output, more_lost).await {
                    Ok(()) if more_lost => {
                        more_lost = false;
                        lost_dump = Some(Box::pin(run_command(&options.drbdsetup, &DUMP_ARGS, options.command_timeout)));
                    }
                    Ok(()) => {}
                    Err(e) => break StreamEnd::LostDumpFailed(e),
                }
            },
            _ = reconcile.tick(), if lost_dump.is_none() => match reconcile_step(options, shared, &mut suspect, started.elapsed()).await {
                Verdict::Agrees => {}
                Verdict::Recheck => reconcile.reset_after(options.recheck_delay),
                Verdict::Drift => break StreamEnd::Drift,
                Verdict::Hung => break StreamEnd::Hung,
            },
        }
    };
    drop(stdin);
    let end = match end {
        StreamEnd::Exited(_) => {
            let status = match tokio::time::timeout(options.exit_grace, child.wait()).await {
                Ok(Ok(status)) => describe_status(status),
                Ok(Err(e)) => format!("wait failed: {e}"),
                Err(_) => {
                    stop_child(&mut child).await;
                    "closed its output but did not exit; killed".to_owned()
                }
            };
            warn!(pid, status = %status, "events2 exited");
            StreamEnd::Exited(status)
        }
        other => {
            stop_child(&mut child).await;
            other
        }
    };
    if tokio::time::timeout(Duration::from_secs(1), stderr_task)
        .await
        .is_err()
    {
        debug!("stderr reader did not finish");
    }
    end
}

/// drbdsetup's exit code when the DRBD kernel module is not loaded (and
/// cannot be loaded).
const EXIT_NO_MODULE: &str = "exit code 20";

/// Says plainly when DRBD itself is missing, not just the stream.
fn log_unavailable(end: &StreamEnd) {
    if let StreamEnd::Exited(status) = end {
        if status == EXIT_NO_MODULE {
            warn!(
                status = %status,
                "DRBD kernel module not loaded (drbdsetup cannot reach DRBD); serving anyway, retrying"
            );
        }
    }
}

/// Kills the child and reaps it.
async fn stop_child(child: &mut Child) {
    if let Err(e) = child.kill().await {
        warn!(error = %e, "cannot kill events2");
    }
}

fn describe_status(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => format!("terminated by a signal ({status})"),
    }
}

async fn log_stderr(stderr: ChildStderr, max_line_len: usize) {
    let mut lines = LineReader::new(BufReader::new(stderr), max_line_len);
    while let Ok(Some(line)) = lines.next_line().await {
        match line {
            Line::Text(text) if text.is_empty() => {}
            Line::Text(text) => warn!(line = %text, "drbdsetup events2 stderr"),
            other => warn!(line = ?other, "drbdsetup events2 stderr"),
        }
    }
}

/// Why the `--now` dump taken after lost events could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum LostDumpError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("incomplete dump (no `exists -`)")]
    Incomplete,
}

/// Applies the `--now` dump taken after lost events; `Err` says why it
/// could not be (the stream is then restarted).
async fn adopt_lost_dump(
    shared: &Shared,
    output: Result<super::runner::CommandOutput, CommandError>,
    more_lost: bool,
) -> Result<(), LostDumpError> {
    let dump = output.map(|output| model_from_dump(&output.stdout));
    let mut state = shared.state.write().await;
    match dump {
        Ok(dump) if dump.model.initial_dump_done() => {
            state.adopt_dump(dump.model, more_lost);
            let resources = state.model.resources().len();
            drop(state);
            shared.model_changed.notify_one();
            info!(
                resources,
                parse_errors = dump.parse_errors,
                "dump after lost events applied"
            );
            Ok(())
        }
        Ok(dump) => {
            state.stats.reconcile_errors += 1;
            warn!(
                parse_errors = dump.parse_errors,
                "dump after lost events incomplete (no `exists -`)"
            );
            Err(LostDumpError::Incomplete)
        }
        Err(e) => {
            state.stats.reconcile_errors += 1;
            warn!(error = %e, "dump after lost events failed");
            Err(e.into())
        }
    }
}

enum Verdict {
    Agrees,
    Recheck,
    Drift,
    Hung,
}

async fn reconcile_step(
    options: &SupervisorOptions,
    shared: &Shared,
    suspect: &mut bool,
    running_for: Duration,
) -> Verdict {
    if !shared.state.read().await.stream_dump_done() {
        if running_for < HUNG_AFTER {
            // A large node's initial dump can take a while: not yet.
            return Verdict::Agrees;
        }
        warn!("events2 gave no initial dump within the reconcile interval");
        return Verdict::Hung;
    }
    let output = match run_command(&options.drbdsetup, &DUMP_ARGS, options.command_timeout).await {
        Ok(output) => output,
        Err(e) => {
            warn!(error = %e, "reconcile dump failed");
            shared.state.write().await.stats.reconcile_errors += 1;
            return Verdict::Agrees;
        }
    };
    let dump = model_from_dump(&output.stdout);
    if !dump.model.initial_dump_done() {
        warn!(
            parse_errors = dump.parse_errors,
            "reconcile dump incomplete (no `exists -`)"
        );
        shared.state.write().await.stats.reconcile_errors += 1;
        return Verdict::Agrees;
    }
    let mut state = shared.state.write().await;
    let differences = compare(&state.model, &dump.model);
    if differences.is_empty() {
        *suspect = false;
        return Verdict::Agrees;
    }
    if !*suspect {
        // Possibly a change still in flight on the stream: look again soon.
        *suspect = true;
        debug!(
            count = differences.len(),
            "model differs from dump, rechecking"
        );
        return Verdict::Recheck;
    }
    *suspect = false;
    state.stats.drifts += 1;
    let first: Vec<String> = differences
        .iter()
        .take(DIFFERENCES_LOGGED)
        .map(ToString::to_string)
        .collect();
    warn!(
        count = differences.len(),
        first = ?first,
        "model drifted from DRBD, restarting events2"
    );
    Verdict::Drift
}
