//! `drbd-sim serve`: runs the cluster in real time, answers front-end
//! requests on `DIR/sim.sock` and keeps `DIR/<node>/sys/block/*/stat` (and `DIR/sys/block` for the first node) fresh.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast;

use crate::events2::format;

use super::cluster::{Cluster, CommandError, NodeBatch};
use super::command::{self, Command, Events2Args, EXIT_KERNEL, EXIT_USAGE};
use super::events2_client::{Client, Next};
use super::protocol::{Reply, Request, EXIT_NO_MODULE, SOCKET_NAME};
use super::scenario::Scenario;
use super::show;

/// How often the clock steps the cluster.
const TICK: Duration = Duration::from_millis(100);
/// How many items a slow events2 client may fall behind before it sees an
/// overrun (exit 20), like a full netlink socket buffer.
const BACKLOG: usize = 4096;
/// How often changed stat files are written on a large cluster (thousands
/// of files).
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// A cluster with at most this many disks writes its stat files every
/// tick: the kernel's stat files are live, and a reader sampling once a
/// second would otherwise see zero or two updates in one interval (its
/// throughput off by ±100 %).
const LIVE_STAT_FILES: usize = 256;
/// The initial dump goes out in chunks of about this many bytes.
const DUMP_CHUNK: usize = 256 * 1024;

/// The kernel and drbd-utils versions the simulator claims.
pub const ADM_VERSION: &str = "DRBDADM_BUILDTAG=GIT-hash:\\ drbd-sim\\ build\n\
DRBDADM_API_VERSION=2\n\
DRBD_KERNEL_VERSION_CODE=0x09020c\n\
DRBD_KERNEL_VERSION=9.2.12\n\
DRBDADM_VERSION_CODE=0x091e00\n\
DRBDADM_VERSION=9.30.0\n";

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

struct Shared {
    cluster: Mutex<Cluster>,
    events: broadcast::Sender<Arc<NodeBatch>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Cluster> {
        // A panic while holding the lock would be a bug elsewhere; the
        // cluster is still usable, so recover the guard.
        self.cluster
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Which nodes get stat files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StatFiles {
    /// Every node: `DIR/<node>/sys/block` (the first node's is `DIR/sys/block`).
    #[default]
    All,
    /// Only the first node: `DIR/sys/block` (and `DIR/<first>/sys`).
    First,
    /// None.
    None,
}

/// Runs until SIGINT/SIGTERM, with stat files for every node.
pub async fn serve(scenario: Scenario, dir: &Path) -> Result<(), ServerError> {
    serve_with(scenario, dir, StatFiles::All).await
}

/// Runs until SIGINT/SIGTERM.
pub async fn serve_with(
    scenario: Scenario,
    dir: &Path,
    stat_files: StatFiles,
) -> Result<(), ServerError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ServerError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    super::devlinks::make_dev_links(dir, &super::devlinks::dev_links(&scenario, stat_files));
    let socket = dir.join(SOCKET_NAME);
    if socket.exists() {
        std::fs::remove_file(&socket).map_err(io(&socket))?;
    }
    // Bind under a temporary name and rename once listening: the socket's
    // name appearing is the "ready" signal clients wait for, and between
    // bind(2) and listen(2) a connect would be refused.
    let binding = dir.join(format!(".{SOCKET_NAME}.{}", std::process::id()));
    if binding.exists() {
        std::fs::remove_file(&binding).map_err(io(&binding))?;
    }
    let listener = UnixListener::bind(&binding).map_err(io(&binding))?;
    std::fs::rename(&binding, &socket).map_err(io(&socket))?;
    let (events, _) = broadcast::channel(BACKLOG);
    let shared = Arc::new(Shared {
        cluster: Mutex::new(Cluster::new(scenario)),
        events,
    });
    tracing::info!(socket = %socket.display(), "simulator listening");
    let clock = tokio::spawn(run_clock(shared.clone(), dir.to_path_buf(), stat_files));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io(dir))?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(handle(shared.clone(), stream));
                }
                Err(error) => tracing::warn!(%error, "accept failed"),
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    clock.abort();
    let _ = std::fs::remove_file(&socket);
    tracing::info!("simulator stopped");
    Ok(())
}

async fn run_clock(shared: Arc<Shared>, dir: PathBuf, stat_files: StatFiles) {
    let start = Instant::now();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_stats: Option<Instant> = None;
    let mut every = STATS_INTERVAL;
    let mirror_first = !link_first_node(&shared, &dir);
    let first = shared.lock().node_names().into_iter().next();
    let mut written = Vec::new();
    let writer = StatWriter::start(dir);
    loop {
        interval.tick().await;
        let batches = shared.lock().step(start.elapsed());
        for batch in batches {
            // No receivers is fine: nobody runs events2 right now.
            let _ = shared.events.send(Arc::new(batch));
        }
        let due = last_stats.is_none_or(|t| t.elapsed() >= every);
        // A writer still busy (creating thousands of files at the start)
        // delays the next batch instead of the clock.
        if due && stat_files != StatFiles::None && writer.idle() {
            last_stats = Some(Instant::now());
            let mut files = {
                let mut cluster = shared.lock();
                cluster.sync_counters();
                cluster.changed_stat_files(&mut written, mirror_first)
            };
            if stat_files == StatFiles::First {
                files.retain(|(path, _)| {
                    path.starts_with("sys/")
                        || first.as_deref().is_some_and(|f| {
                            path.strip_prefix(f).is_some_and(|p| p.starts_with('/'))
                        })
                });
            }
            every = if written.len() <= LIVE_STAT_FILES {
                TICK
            } else {
                STATS_INTERVAL
            };
            writer.send(files);
        }
    }
}

/// A thread that writes stat files, so that file I/O never stalls the clock.
struct StatWriter {
    busy: Arc<std::sync::atomic::AtomicBool>,
    files: std::sync::mpsc::Sender<Vec<(String, String)>>,
}

impl StatWriter {
    fn start(dir: PathBuf) -> Self {
        let busy = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (files, batches) = std::sync::mpsc::channel::<Vec<(String, String)>>();
        let flag = busy.clone();
        // Ends when the clock (the sender) goes away.
        std::thread::spawn(move || {
            while let Ok(batch) = batches.recv() {
                write_stats(&dir, batch);
                flag.store(false, std::sync::atomic::Ordering::Release);
            }
        });
        Self { busy, files }
    }

    fn idle(&self) -> bool {
        !self.busy.load(std::sync::atomic::Ordering::Acquire)
    }

    fn send(&self, batch: Vec<(String, String)>) {
        if batch.is_empty() {
            return;
        }
        self.busy.store(true, std::sync::atomic::Ordering::Release);
        if self.files.send(batch).is_err() {
            tracing::warn!("stat file writer stopped");
        }
    }
}

/// The first node's stat files live in `DIR/sys/block`; `DIR/<first>/sys`
/// is a symbolic link to it. False if the link cannot be made (then the
/// files are written twice).
fn link_first_node(shared: &Shared, dir: &Path) -> bool {
    let Some(first) = shared.lock().node_names().into_iter().next() else {
        return false;
    };
    let link = dir.join(&first).join("sys");
    if std::fs::read_link(&link).is_ok_and(|target| target == Path::new("../sys")) {
        return true;
    }
    let made = std::fs::create_dir_all(dir.join("sys"))
        .and_then(|()| std::fs::create_dir_all(dir.join(&first)))
        .and_then(|()| std::os::unix::fs::symlink("../sys", &link));
    if let Err(error) = &made {
        tracing::warn!(path = %link.display(), %error, "no link to the first node's stat files; writing copies");
    }
    made.is_ok()
}

/// Writes stat files. An existing file is overwritten in place with one
/// write at offset 0 (its text only grows: fixed-width counters), which
/// keeps the inode — creating a file per update is what costs on ext4. A
/// new file is written to a temporary name and renamed, so a reader never
/// sees half a file.
fn write_stats(dir: &Path, files: Vec<(String, String)>) {
    use std::os::unix::fs::FileExt;
    for (relative, text) in files {
        let path = dir.join(&relative);
        let in_place = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|file| file.write_all_at(text.as_bytes(), 0));
        if in_place.is_ok() {
            continue;
        }
        let create = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &text)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(error) = create() {
            tracing::warn!(path = %path.display(), %error, "stat file not written");
        }
    }
}

async fn send(writer: &mut OwnedWriteHalf, reply: Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_string(&reply).map_err(std::io::Error::other)?;
    line.push('\n');
    writer.write_all(line.as_bytes()).await?;
    writer.flush().await
}

async fn finish(writer: &mut OwnedWriteHalf, stderr: &str, code: i32) -> std::io::Result<()> {
    if !stderr.is_empty() {
        let mut text = stderr.to_owned();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        send(writer, Reply::Stderr(text)).await?;
    }
    send(writer, Reply::Exit(code)).await
}

async fn handle(shared: Arc<Shared>, stream: UnixStream) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    let result = match reader.read_line(&mut line).await {
        Ok(0) => return,
        Ok(_) => match serde_json::from_str::<Request>(&line) {
            Ok(request) => run(&shared, request, reader, &mut writer).await,
            Err(error) => finish(&mut writer, &format!("drbd-sim: bad request: {error}"), 20).await,
        },
        Err(error) => {
            tracing::debug!(%error, "request not read");
            return;
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "client went away");
    }
}

fn kernel_error(error: &CommandError) -> i32 {
    match error {
        CommandError::ModuleMissing | CommandError::UnknownNode(_) => EXIT_NO_MODULE,
        _ => EXIT_KERNEL,
    }
}

async fn run(
    shared: &Shared,
    request: Request,
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: &mut OwnedWriteHalf,
) -> std::io::Result<()> {
    let node = match &request.node {
        Some(node) => node.clone(),
        None => shared
            .lock()
            .node_names()
            .into_iter()
            .next()
            .unwrap_or_default(),
    };
    tracing::debug!(node, tool = request.tool, argv = ?request.argv, "request");
    let command = match command::parse(&request.tool, &request.argv) {
        Ok(command) => command,
        Err(error) => return finish(writer, &error.to_string(), EXIT_USAGE).await,
    };
    if command == Command::AdmVersion {
        send(writer, Reply::Stdout(ADM_VERSION.into())).await?;
        return finish(writer, "", 0).await;
    }
    let outcome: Result<String, CommandError> = {
        let mut cluster = shared.lock();
        cluster.sync_counters();
        match cluster.check_module(&node) {
            Err(error) => Err(error),
            Ok(()) => match &command {
                Command::Events2(_) | Command::AdmVersion => Ok(String::new()),
                Command::PeerDeviceOptions {
                    resource,
                    peer_node_id,
                    volume,
                    change,
                } => cluster
                    .set_peer_device_options(&node, resource, *peer_node_id, *volume, change)
                    .map(|()| String::new()),
                Command::Show { target } => {
                    show::show_json(&cluster, &node, target).map(|v| show::pretty(&v) + "\n")
                }
                Command::Status { target } => {
                    show::status_json(&cluster, &node, target).map(|v| show::pretty(&v) + "\n")
                }
                Command::AdmAdjust { target } => {
                    cluster.adjust(&node, target).map(|()| String::new())
                }
            },
        }
    };
    match (outcome, command) {
        (Err(error), _) => finish(writer, &error.to_string(), kernel_error(&error)).await,
        (Ok(_), Command::Events2(args)) => events2(shared, &node, args, reader, writer).await,
        (Ok(text), _) => {
            if !text.is_empty() {
                send(writer, Reply::Stdout(text)).await?;
            }
            finish(writer, "", 0).await
        }
    }
}

fn prefix(args: &Events2Args) -> String {
    if args.timestamps {
        format::timestamp_prefix(chrono::Local::now().fixed_offset())
    } else {
        String::new()
    }
}

async fn events2(
    shared: &Shared,
    node: &str,
    args: Events2Args,
    mut reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: &mut OwnedWriteHalf,
) -> std::io::Result<()> {
    let poll = args.poll;
    let now = args.now;
    let mut client = Client::new(args);
    let (dump, mut events) = {
        let cluster = shared.lock();
        // Subscribing under the lock: nothing between dump and live items is lost.
        (cluster.published(node), shared.events.subscribe())
    };
    let text = client.dump(&prefix(&client.args), &dump);
    drop(dump);
    for chunk in chunks(&text, DUMP_CHUNK) {
        send(writer, Reply::Stdout(chunk.to_owned())).await?;
    }
    if now {
        return finish(writer, "", 0).await;
    }
    let stdin_open = poll;
    let mut line = String::new();
    loop {
        tokio::select! {
            received = events.recv() => {
                let item = match received {
                    Ok(item) => item,
                    Err(broadcast::error::RecvError::Lagged(count)) => {
                        let message = format!("events2: {count} packets droped, socket receive buffer overrun");
                        return finish(writer, &message, 20).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        return finish(writer, "events2: module unloaded", 121).await;
                    }
                };
                if item.node != node {
                    continue;
                }
                match client.item(&prefix(&client.args), &item.item) {
                    Next::Print(text) => {
                        if !text.is_empty() {
                            send(writer, Reply::Stdout(text)).await?;
                        }
                    }
                    Next::Exit { stderr, code } => return finish(writer, &stderr, code).await,
                    Next::Hang(Some(duration)) => tokio::time::sleep(duration).await,
                    Next::Hang(None) => loop {
                        // Silent for ever. An empty chunk prints nothing but
                        // fails once the front-end is gone, which ends this task.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        send(writer, Reply::Stdout(String::new())).await?;
                    },
                }
            }
            read = reader.read_line(&mut line), if stdin_open => {
                match read {
                    Ok(0) | Err(_) => return finish(writer, "", 0).await,
                    Ok(_) => {
                        if line.trim() == "n" {
                            let views = {
                                let mut cluster = shared.lock();
                                cluster.sync_counters();
                                cluster.views_since(node, client.polled())
                            };
                            let text = client.poll_since(&prefix(&client.args), views);
                            if !text.is_empty() {
                                send(writer, Reply::Stdout(text)).await?;
                            }
                        }
                        line.clear();
                    }
                }
            }
        }
    }
}

/// `text` in pieces of about `size` bytes, each ending at a line end.
fn chunks(text: &str, size: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let cut = match rest.get(size..).and_then(|tail| tail.find('\n')) {
            Some(at) => size + at + 1,
            None => rest.len(),
        };
        let (head, tail) = rest.split_at(cut);
        rest = tail;
        Some(head)
    })
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn chunks_end_at_line_ends_and_cover_the_text() {
        let text = "aaaa\nbb\ncccccc\nd\n";
        let parts: Vec<&str> = chunks(text, 3).collect();
        // At least `size` bytes, then up to the next line end.
        assert_eq!(parts, vec!["aaaa\n", "bb\ncccccc\n", "d\n"]);
        assert_eq!(parts.concat(), text);
        assert_eq!(chunks("x", 10).collect::<Vec<_>>(), vec!["x"]);
        assert_eq!(chunks("", 10).count(), 0);
    }
}
