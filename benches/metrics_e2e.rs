//! End-to-end /metrics benchmark: `drbd-sim serve --scenario scale:N` with an
//! agent following node alpha. For each N it measures, while events flow:
//! scrape latency (median, p99 over 100 scrapes), exposition size, the
//! agent's RSS, its CPU seconds per 1,000 events, and the delay from a state
//! change on the events2 stream to the changed value on /metrics.
//!
//! Run: `cargo bench --bench metrics_e2e` (optionally `-- 1000 5000`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SIM: &str = env!("CARGO_BIN_EXE_drbd-sim");
const AGENT: &str = env!("CARGO_BIN_EXE_drbd-agent");

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
    let (body, gzip) = get_wire(port, path)?;
    decode(body, gzip)
}

/// The body as received (dechunked) and whether it is gzip.
fn get_wire(port: u16, path: &str) -> std::io::Result<(Vec<u8>, bool)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
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
    Ok((body, head.contains("content-encoding: gzip")))
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

fn run(resources: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let bin = root.join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    for tool in ["drbdsetup", "drbdadm"] {
        std::os::unix::fs::symlink(SIM, bin.join(tool)).expect("symlink");
    }
    let _sim = Proc(
        Command::new(SIM)
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

    let port = free_port();
    let config = root.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "node-name = \"alpha\"\nlog-level = \"warn\"\n[drbd]\ndrbdsetup = \"{}\"\ndrbdadm = \"{}\"\nstatistics-poll-interval = \"2s\"\n[api]\nlisten = [\"127.0.0.1:{port}\"]\n",
            bin.join("drbdsetup").display(),
            bin.join("drbdadm").display()
        ),
    )
    .expect("config");
    let agent = Proc(
        Command::new(AGENT)
            .args(["run", "--config"])
            .arg(&config)
            .env("DRBD_SIM_DIR", root)
            .env("DRBD_SIM_NODE", "alpha")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start drbd-agent"),
    );
    let pid = agent.0.id();
    wait_for("the agent's initial dump", Duration::from_secs(120), || {
        get(port, "/metrics")
            .map(|b| String::from_utf8_lossy(&b).contains("drbd_agent_drbd_up 1"))
            .unwrap_or(false)
    });
    std::thread::sleep(Duration::from_secs(2));

    // CPU per 1,000 events, measured without scrapes.
    let events = |port| {
        get(port, "/metrics")
            .ok()
            .and_then(|b| metric(&String::from_utf8_lossy(&b), "drbd_agent_events_total"))
            .unwrap_or(0.0)
    };
    let (cpu0, _) = cpu_and_rss(pid);
    let events0 = events(port);
    let (cpu_mid, _) = cpu_and_rss(pid);
    std::thread::sleep(Duration::from_secs(10));
    let (cpu1, _) = cpu_and_rss(pid);
    let events1 = events(port);
    // The scrape between the CPU readings is excluded from the window.
    let cpu_window = (cpu1 - cpu_mid).max(0.0);
    let event_count = (events1 - events0).max(0.0);
    let _ = cpu0;

    // 100 scrapes at ~10/s while events flow.
    let mut latencies = Vec::new();
    let mut size = 0;
    let mut wire = 0;
    let mut gzipped = false;
    for _ in 0..100 {
        let start = Instant::now();
        let (body, gzip) = get_wire(port, "/metrics").expect("scrape");
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        wire = body.len();
        gzipped = gzip;
        size = decode(body, gzip).expect("a valid gzip body").len();
        std::thread::sleep(Duration::from_millis(100));
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let (_, rss) = cpu_and_rss(pid);

    // Event-to-metric delay: watch alpha's events2 stream; on a replication
    // change, poll /metrics until the new state shows.
    let delays = event_to_metric(root, port, 10);

    println!(
        "scale:{resources}: scrape median {:.2} ms p99 {:.2} ms | exposition {:.1} MiB, sent {:.2} MiB{} | agent RSS {:.1} MiB | \
         CPU {:.3} s per 1,000 events ({} events in 10 s) | event-to-metric median {:.1} ms max {:.1} ms ({} samples)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        size as f64 / (1024.0 * 1024.0),
        wire as f64 / (1024.0 * 1024.0),
        if gzipped { " gzip" } else { "" },
        rss as f64 / 1024.0,
        if event_count > 0.0 { cpu_window / event_count * 1000.0 } else { f64::NAN },
        event_count,
        percentile(&delays, 0.5),
        delays.last().copied().unwrap_or(f64::NAN),
        delays.len(),
    );
}

fn event_to_metric(root: &Path, port: u16, samples: usize) -> Vec<f64> {
    let mut watcher = Proc(
        Command::new(SIM)
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
    let mut lines = BufReader::new(stdout).lines();
    let mut delays = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while delays.len() < samples && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        let seen = Instant::now();
        if !line.starts_with("change peer-device") {
            continue;
        }
        let Some(expected) = expected_series(&line) else {
            continue;
        };
        loop {
            let body = get(port, "/metrics").unwrap_or_default();
            if String::from_utf8_lossy(&body).contains(&expected) {
                delays.push(seen.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            if seen.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
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
    for resources in sizes {
        run(resources);
    }
}
