//! End-to-end /metrics benchmark: `drbd-sim serve --scenario scale:N` with an
//! agent following node alpha. For each N it measures, while events flow:
//! scrape latency (median, p99 over 100 scrapes), exposition size, the
//! agent's RSS, its CPU seconds per 1,000 events, and the delay from a state
//! change on the events2 stream to the changed value on /metrics.
//!
//! Scrapes come as Prometheus sends them (`Accept-Encoding: gzip`) and as
//! plain text; the series per family of the exposition are printed.
//!
//! With `--static-dump` it measures instead, as issue 15 compared the agent
//! with drbd-reactor, the same dump served while nothing changes: the dump
//! of `scale:N` printed by a stand-in `drbdsetup events2`, plain and gzip
//! scrapes by a client that reuses its buffer, and the same plain body sent
//! by a trivial server writing one prebuilt buffer (the floor for that body
//! on this machine, in the same run).
//!
//! Run: `cargo bench --bench metrics_e2e` (optionally `-- 1000 5000`, and
//! `--enum-series all` for the one-hot form). `METRICS_E2E_AGENT=PATH` runs
//! another drbd-agent binary, e.g. the packaged one (`packaging/build`,
//! target/packaged/drbd-agent: LTO, what the packages ship).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AGENT: &str = env!("CARGO_BIN_EXE_drbd-agent");

/// drbd-sim, built by its own package into the directory drbd-agent is
/// built into (`cargo bench` at the top of the workspace builds both).
fn sim() -> String {
    let path = std::path::Path::new(AGENT).with_file_name("drbd-sim");
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build --release -p drbd-sim`",
        path.display()
    );
    path.display().to_string()
}

/// The agent binary: `METRICS_E2E_AGENT` or the one Cargo built.
fn agent_binary() -> std::ffi::OsString {
    std::env::var_os("METRICS_E2E_AGENT").unwrap_or_else(|| AGENT.into())
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// GET over HTTP/1.1 (Connection: close, Accept-Encoding: gzip as
/// Prometheus sends it); returns the body, decompressed.
fn get(port: u16, path: &str) -> std::io::Result<Vec<u8>> {
    let (body, gzip) = get_wire(port, path, true)?;
    decode(body, gzip)
}

/// The body as received (dechunked) and whether it is gzip; `accept_gzip`
/// sends `Accept-Encoding: gzip`.
fn get_wire(port: u16, path: &str, accept_gzip: bool) -> std::io::Result<(Vec<u8>, bool)> {
    get_timed(port, path, accept_gzip).map(|(body, gzip, _)| (body, gzip))
}

/// [`get_wire`] and the instant the first byte of the response arrived.
fn get_timed(
    port: u16,
    path: &str,
    accept_gzip: bool,
) -> std::io::Result<(Vec<u8>, bool, Instant)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let accept = if accept_gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{accept}Connection: close\r\n\r\n"
    )?;
    // Room for the whole response up front, as a scraper reusing its buffer has.
    let mut response = Vec::with_capacity(8 << 20);
    let mut first = [0u8; 1];
    let n = stream.read(&mut first)?;
    let first_byte = Instant::now();
    response.extend_from_slice(&first[..n]);
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let mut body = response[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Ok((body, head.contains("content-encoding: gzip"), first_byte))
}

fn decode(body: Vec<u8>, gzip: bool) -> std::io::Result<Vec<u8>> {
    if !gzip {
        return Ok(body);
    }
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut text)?;
    Ok(text)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// (utime + stime) seconds and VmRSS KiB of a process.
fn cpu_and_rss(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks / 100.0, rss)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Series per family of an exposition, most first, and the total.
fn series_per_family(text: &str) -> (Vec<(String, usize)>, usize) {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut total = 0;
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let name = line.split(['{', ' ']).next().unwrap_or(line);
        *counts.entry(name).or_default() += 1;
        total += 1;
    }
    let mut counts: Vec<(String, usize)> =
        counts.into_iter().map(|(n, c)| (n.to_owned(), c)).collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    (counts, total)
}

/// `drbd-sim serve --scenario scale:N` in `root`, up once its socket is.
fn start_sim(root: &Path, resources: usize) -> Proc {
    let sim = Proc(
        Command::new(sim())
            .args([
                "serve",
                "--scenario",
                &format!("scale:{resources}"),
                "--dir",
            ])
            .arg(root)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start drbd-sim"),
    );
    wait_for("sim.sock", Duration::from_secs(30), || {
        root.join("sim.sock").exists()
    });
    sim
}

/// The agent following node alpha with `drbdsetup`/`drbdadm` as given,
/// up once its initial dump is complete; its API port.
fn start_agent(
    root: &Path,
    drbdsetup: &Path,
    drbdadm: &Path,
    poll: &str,
    enum_series: &str,
) -> (Proc, u16) {
    let port = free_port();
    let config = root.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "node-name = \"alpha\"\nlog-level = \"warn\"\n[drbd]\ndrbdsetup = \"{}\"\ndrbdadm = \"{}\"\nstatistics-poll-interval = \"{poll}\"\n[api]\nlisten = [\"127.0.0.1:{port}\"]\n[metrics]\nenum-series = \"{enum_series}\"\n",
            drbdsetup.display(),
            drbdadm.display()
        ),
    )
    .expect("config");
    let agent = Proc(
        Command::new(agent_binary())
            .args(["run", "--config"])
            .arg(&config)
            .env("DRBD_SIM_DIR", root)
            .env("DRBD_SIM_NODE", "alpha")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start drbd-agent"),
    );
    wait_for("the agent's initial dump", Duration::from_secs(120), || {
        get(port, "/metrics")
            .map(|b| String::from_utf8_lossy(&b).contains("drbd_agent_drbd_up 1"))
            .unwrap_or(false)
    });
    (agent, port)
}

fn run(resources: usize, enum_series: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let bin = root.join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    for tool in ["drbdsetup", "drbdadm"] {
        std::os::unix::fs::symlink(sim(), bin.join(tool)).expect("symlink");
    }
    let _sim = start_sim(root, resources);
    let (agent, port) = start_agent(
        root,
        &bin.join("drbdsetup"),
        &bin.join("drbdadm"),
        "2s",
        enum_series,
    );
    let pid = agent.0.id();
    std::thread::sleep(Duration::from_secs(2));

    // CPU per 1,000 events without scrapes: the refresher then leaves
    // rendering to the next scrape.
    let events = |port| {
        get(port, "/metrics")
            .ok()
            .and_then(|b| metric(&String::from_utf8_lossy(&b), "drbd_agent_events_total"))
            .unwrap_or(0.0)
    };
    let idle = cpu_per_1000_events(pid, || events(port), Duration::from_secs(10));

    // Series per family, from one plain scrape.
    let plain_body = get_wire(port, "/metrics", false).expect("a plain scrape").0;
    let (families, series) = series_per_family(&String::from_utf8_lossy(&plain_body));

    // 100 scrapes at ~10/s while events flow: the refresher renders every
    // change as it comes. Then the same as plain text.
    let fast = scrape_phase(port, pid, 100, Duration::from_millis(100), true);
    let fast_plain = scrape_phase(port, pid, 100, Duration::from_millis(100), false);
    // Scrapes every 2 s: the refresher renders from 1 s before each one.
    let slow = scrape_phase(port, pid, 15, Duration::from_secs(2), true);
    let (_, rss) = cpu_and_rss(pid);

    // Event-to-metric delay: watch alpha's events2 stream; on a replication
    // change, poll /metrics until the new state shows.
    let delays = event_to_metric(root, port, 20);

    println!(
        "scale:{resources} enum-series {enum_series}: {series} series, exposition {:.1} MiB, sent {:.2} MiB{} | agent RSS {:.1} MiB\n  \
         no scrapes: CPU {:.3} s per 1,000 events ({:.0} events in 10 s)\n  \
         scrapes every 100 ms: median {:.2} ms p99 {:.2} ms, CPU {:.3} s per 1,000 events (scrapes included)\n  \
         plain scrapes every 100 ms: median {:.2} ms p99 {:.2} ms, CPU {:.3} s per 1,000 events (scrapes included)\n  \
         scrapes every 2 s: median {:.2} ms max {:.2} ms, CPU {:.3} s per 1,000 events (scrapes included)\n  \
         event-to-metric (to the first byte of the first scrape showing it): median {:.1} ms max {:.1} ms ({} samples)",
        fast.size as f64 / (1024.0 * 1024.0),
        fast.wire as f64 / (1024.0 * 1024.0),
        if fast.gzip { " gzip" } else { "" },
        rss as f64 / 1024.0,
        idle.0,
        idle.1,
        percentile(&fast.latencies, 0.5),
        percentile(&fast.latencies, 0.99),
        fast.cpu_per_1000,
        percentile(&fast_plain.latencies, 0.5),
        percentile(&fast_plain.latencies, 0.99),
        fast_plain.cpu_per_1000,
        percentile(&slow.latencies, 0.5),
        slow.latencies.last().copied().unwrap_or(f64::NAN),
        slow.cpu_per_1000,
        percentile(&delays, 0.5),
        delays.last().copied().unwrap_or(f64::NAN),
        delays.len(),
    );
    println!("  series per family:");
    for (family, count) in &families {
        println!("    {count:>7}  {family}");
    }
}

/// CPU seconds per 1,000 events over `window` (and the event count), with
/// `events` read before and after outside the window.
fn cpu_per_1000_events(pid: u32, events: impl Fn() -> f64, window: Duration) -> (f64, f64) {
    let events0 = events();
    let (cpu0, _) = cpu_and_rss(pid);
    std::thread::sleep(window);
    let (cpu1, _) = cpu_and_rss(pid);
    let events1 = events();
    let count = (events1 - events0).max(0.0);
    let per_1000 = if count > 0.0 {
        (cpu1 - cpu0).max(0.0) / count * 1000.0
    } else {
        f64::NAN
    };
    (per_1000, count)
}

struct ScrapePhase {
    /// Request to last byte, sorted, ms.
    latencies: Vec<f64>,
    cpu_per_1000: f64,
    size: usize,
    wire: usize,
    gzip: bool,
}

/// `count` scrapes `gap` apart (gzip or plain); the agent's CPU per 1,000
/// events over them.
fn scrape_phase(port: u16, pid: u32, count: usize, gap: Duration, gzip: bool) -> ScrapePhase {
    let accept_gzip = gzip;
    let mut latencies = Vec::new();
    let mut size = 0;
    let mut wire = 0;
    let mut gzip = false;
    let mut events = Vec::new();
    let (cpu0, _) = cpu_and_rss(pid);
    for _ in 0..count {
        let start = Instant::now();
        let (body, gzipped) = get_wire(port, "/metrics", accept_gzip).expect("scrape");
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        wire = body.len();
        gzip = gzipped;
        let text = decode(body, gzipped).expect("a valid gzip body");
        size = text.len();
        events.push(
            metric(&String::from_utf8_lossy(&text), "drbd_agent_events_total").unwrap_or(0.0),
        );
        std::thread::sleep(gap.saturating_sub(start.elapsed()));
    }
    let (cpu1, _) = cpu_and_rss(pid);
    latencies.sort_by(|a, b| a.total_cmp(b));
    let count = events.last().copied().unwrap_or(0.0) - events.first().copied().unwrap_or(0.0);
    ScrapePhase {
        latencies,
        cpu_per_1000: if count > 0.0 {
            (cpu1 - cpu0).max(0.0) / count * 1000.0
        } else {
            f64::NAN
        },
        size,
        wire,
        gzip,
    }
}

fn event_to_metric(root: &Path, port: u16, samples: usize) -> Vec<f64> {
    let mut watcher = Proc(
        Command::new(sim())
            .args(["drbdsetup", "events2", "all"])
            .env("DRBD_SIM_DIR", root)
            .env("DRBD_SIM_NODE", "alpha")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("events2 watcher"),
    );
    let Some(stdout) = watcher.0.stdout.take() else {
        return Vec::new();
    };
    // A thread stamps each line as it arrives, so that lines buffered while
    // the loop below polls are neither late nor measured.
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if sender.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    let mut delays = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut busy_until = Instant::now();
    while delays.len() < samples && Instant::now() < deadline {
        let Ok((seen, line)) = lines.recv_timeout(Duration::from_secs(30)) else {
            break;
        };
        if seen < busy_until || !line.starts_with("change peer-device") {
            continue;
        }
        let Some(expected) = expected_series(&line) else {
            continue;
        };
        while let Ok((body, gzip, first_byte)) = get_timed(port, "/metrics", true) {
            let body = decode(body, gzip).unwrap_or_default();
            // The response was built before its first byte left: the change
            // was on /metrics by then.
            if String::from_utf8_lossy(&body).contains(&expected) {
                delays.push(first_byte.duration_since(seen).as_secs_f64() * 1000.0);
                break;
            }
            if seen.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        busy_until = Instant::now();
    }
    delays.sort_by(|a, b| a.total_cmp(b));
    delays
}

/// The series line a `change peer-device ... replication:X` line must produce.
fn expected_series(line: &str) -> Option<String> {
    let field = |key: &str| {
        line.split(' ')
            .find_map(|t| t.strip_prefix(key).and_then(|v| v.strip_prefix(':')))
    };
    let replication = field("replication")?;
    Some(format!(
        "drbd_peerdevice_replication_state{{name=\"{}\",conn_name=\"{}\",peer_node_id=\"{}\",volume=\"{}\",drbd_replication_state=\"{replication}\"}} 1\n",
        field("name")?,
        field("conn-name")?,
        field("peer-node-id")?,
        field("volume")?,
    ))
}

fn main() {
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs benches without `--bench`: this one
        // starts servers for minutes and proves nothing as a test.
        return;
    }
    if sizes.is_empty() {
        sizes = vec![1000, 5000];
    }
    let args: Vec<String> = std::env::args().collect();
    let enum_series = args
        .iter()
        .position(|a| a == "--enum-series")
        .and_then(|i| args.get(i + 1))
        .map_or("current", String::as_str);
    let static_dump = args.iter().any(|a| a == "--static-dump");
    for resources in sizes {
        if static_dump {
            run_static(resources, enum_series);
        } else {
            run(resources, enum_series);
        }
    }
}

/// One GET with a buffer kept between requests (as a scraper keeps one):
/// request to last byte in ms, and the response (head and body) in `buf`.
fn fetch(port: u16, gzip: bool, buf: &mut Vec<u8>) -> std::io::Result<f64> {
    buf.clear();
    let start = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let accept = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\n{accept}Connection: close\r\n\r\n"
    )?;
    stream.read_to_end(buf)?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

/// `count` fetches `gap` apart: sorted latencies and the last response.
fn fetches(port: u16, gzip: bool, count: usize, gap: Duration) -> (Vec<f64>, Vec<u8>) {
    let mut buf = Vec::with_capacity(32 << 20);
    let mut latencies = Vec::new();
    for _ in 0..count {
        latencies.push(fetch(port, gzip, &mut buf).expect("a scrape"));
        std::thread::sleep(gap);
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    (latencies, buf)
}

/// A server answering `count` requests with `response` as is, on a thread.
fn floor_server(response: Vec<u8>, count: usize) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut byte = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&byte[..n]),
                }
            }
            let _ = stream.write_all(&response);
        }
    });
    port
}

/// The same dump while nothing changes (see the module doc).
fn run_static(resources: usize, enum_series: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let _sim = start_sim(root, resources);
    let dump = Command::new(sim())
        .args(["drbdsetup", "events2", "--now", "--statistics", "all"])
        .env("DRBD_SIM_DIR", root)
        .env("DRBD_SIM_NODE", "alpha")
        .output()
        .expect("a dump");
    assert!(dump.status.success(), "the dump failed");
    let dump_path = root.join("dump.txt");
    std::fs::write(&dump_path, &dump.stdout).expect("dump file");
    // events2 prints the dump (and, without --now, then waits while its
    // parent lives); everything else goes to the simulator.
    let fake = root.join("drbdsetup-static");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nif [ \"$1\" = events2 ]; then\n  cat '{}'\n  for a in \"$@\"; do [ \"$a\" = --now ] && exit 0; done\n  while kill -0 $PPID 2>/dev/null; do sleep 1; done\n  exit 0\nfi\nexec '{}' drbdsetup \"$@\"\n",
            dump_path.display(),
            sim()
        ),
    )
    .expect("stand-in");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("executable");
    let bin = root.join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    std::os::unix::fs::symlink(sim(), bin.join("drbdadm")).expect("symlink");
    let (agent, port) = start_agent(root, &fake, &bin.join("drbdadm"), "1h", enum_series);
    std::thread::sleep(Duration::from_secs(2));
    let gap = Duration::from_millis(100);
    let (plain, response) = fetches(port, false, 100, gap);
    let (gzip, gzipped) = fetches(port, true, 100, gap);
    let (_, rss) = cpu_and_rss(agent.0.id());
    let floor_port = floor_server(response.clone(), 100);
    let (floor, _) = fetches(floor_port, false, 100, gap);
    println!(
        "scale:{resources} enum-series {enum_series}, static dump: response {:.2} MB plain, {:.2} MB gzip | agent RSS {:.1} MiB\n  \
         plain, 100 scrapes 100 ms apart: median {:.2} ms min {:.2} ms p90 {:.2} ms\n  \
         gzip, the same: median {:.2} ms min {:.2} ms p90 {:.2} ms\n  \
         the same plain response from a server writing one prebuilt buffer: median {:.2} ms min {:.2} ms p90 {:.2} ms",
        response.len() as f64 / 1e6,
        gzipped.len() as f64 / 1e6,
        rss as f64 / 1024.0,
        percentile(&plain, 0.5),
        plain[0],
        percentile(&plain, 0.9),
        percentile(&gzip, 0.5),
        gzip[0],
        percentile(&gzip, 0.9),
        percentile(&floor, 0.5),
        floor[0],
        percentile(&floor, 0.9),
    );
}
