//! Shared helpers of the end-to-end metrics tests: a `drbd-sim serve` plus
//! `drbd-agent run` pair (node alpha) built from a scenario text, child
//! processes that are killed on every path, bounded polling, promtool and an
//! exposition checker.
// Each test uses a part of the helpers.
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::bins::{sim, AGENT};

/// promtool's only allowed findings: drbd-reactor's two legacy counter names.
pub const LEGACY_FINDINGS: [&str; 2] = [
    "drbd_peerdevice_received_bytes counter metrics should have \"_total\" suffix",
    "drbd_peerdevice_sent_bytes counter metrics should have \"_total\" suffix",
];

/// A port that was free a moment ago on 127.0.0.1 and `[::]`, chosen below
/// Linux's ephemeral range (32768–60999), so that no socket another test
/// binds to port 0 or connects from can take it before the agent binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(2_654_435_761);
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(7_919)) % 12_000) as u16;
        // One at a time: a dual-stack `[::]` bind conflicts with 127.0.0.1.
        let v4 = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        let v6 = v4
            && (std::net::TcpListener::bind(("::", port)).is_ok()
                || !std::path::Path::new("/proc/net/if_inet6").exists());
        if v6 {
            return port;
        }
    }
    panic!("no free port in 20000-31999")
}

/// A child process killed (and reaped) when dropped; on a panicking thread
/// the tail of its log is printed to help find out why.
pub struct Proc {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `command` with stdout and stderr into `log`.
    pub fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name, child, log }
    }

    /// Panics (with the log) if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}); log:\n{}",
                self.name,
                log_tail(&self.log)
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- {} log (tail) ----\n{}",
                self.name,
                log_tail(&self.log)
            );
        }
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The simulator and an agent playing one node (alpha unless started with
/// [`Cluster::start_node`]), both killed on drop (agent first: fields drop
/// in declaration order).
pub struct Cluster {
    pub agent: Proc,
    pub sim: Proc,
    /// Where the agent's API listens.
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    /// The node the agent plays.
    pub node: String,
    /// The simulator's directory (`DRBD_SIM_DIR`).
    pub sim_dir: PathBuf,
    poll_interval: String,
    /// Agents started so far (names their config and log files).
    starts: u32,
}

impl Cluster {
    /// Starts `drbd-sim serve` with `scenario` (TOML text), waits for its
    /// socket, then `drbd-agent run` with drbdsetup/drbdadm symlinked to the
    /// simulator and the given statistics poll interval; waits (bounded)
    /// until `/metrics` reports DRBD up.
    pub fn start(scenario: &str, poll_interval: &str) -> Cluster {
        Self::start_node(scenario, "alpha", poll_interval, "")
    }

    /// [`start`](Self::start) with the agent playing `node`
    /// (`sysfs-root = DIR/sim/<node>/sys`), `extra_config` appended to its
    /// configuration (whole sections, e.g. `[throttle]`).
    pub fn start_node(
        scenario: &str,
        node: &str,
        poll_interval: &str,
        extra_config: &str,
    ) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path();
        std::fs::write(path.join("scenario.toml"), scenario).expect("write scenario");
        let sim_dir = path.join("sim");
        std::fs::create_dir(&sim_dir).expect("sim dir");
        let bin = path.join("bin");
        std::fs::create_dir(&bin).expect("bin dir");
        for tool in ["drbdsetup", "drbdadm"] {
            std::os::unix::fs::symlink(sim(), bin.join(tool)).expect("symlink");
        }

        let mut sim_command = Command::new(sim());
        sim_command
            .arg("serve")
            .arg("--scenario")
            .arg(path.join("scenario.toml"))
            .arg("--dir")
            .arg(&sim_dir)
            .env_remove("RUST_LOG");
        let mut sim = Proc::spawn("drbd-sim", sim_command, path.join("sim.log"));
        let socket = sim_dir.join("sim.sock");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            sim.assert_running();
            assert!(Instant::now() < deadline, "the simulator did not start");
            std::thread::sleep(Duration::from_millis(20));
        }

        let node = node.to_owned();
        let poll_interval = poll_interval.to_owned();
        let (agent, addr) = spawn_agent(path, &sim_dir, &node, &poll_interval, extra_config, 0);
        let mut cluster = Cluster {
            agent,
            sim,
            addr,
            dir,
            node,
            sim_dir,
            poll_interval,
            starts: 1,
        };
        cluster.wait_drbd_up();
        cluster
    }

    /// Kills the agent with SIGKILL (no clean-up of its own) and reaps it.
    pub fn kill_agent(&mut self) {
        let _ = self.agent.child.kill();
        let _ = self.agent.child.wait();
    }

    /// Sends the agent SIGTERM and waits (bounded) for it to exit.
    pub fn terminate_agent(&mut self) -> std::process::ExitStatus {
        let pid = self.agent.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        poll(
            Duration::from_secs(30),
            Duration::from_millis(50),
            "the agent to exit after SIGTERM",
            || self.agent.child.try_wait().expect("wait for the agent"),
        )
    }

    /// Starts a new agent (the old one is killed if still running) for the
    /// same node, simulator and temp root, with `extra_config`, on a new
    /// port; waits until it reports DRBD up.
    pub fn restart_agent(&mut self, extra_config: &str) {
        self.kill_agent();
        let (agent, addr) = spawn_agent(
            self.dir.path(),
            &self.sim_dir,
            &self.node,
            &self.poll_interval,
            extra_config,
            self.starts,
        );
        self.starts += 1;
        self.agent = agent;
        self.addr = addr;
        self.wait_drbd_up();
    }

    /// Runs the simulator's `tool` (drbdsetup or drbdadm) as the agent's
    /// node, bounded in time: (exit code, stdout, stderr).
    pub fn tool(&self, tool: &str, args: &[&str]) -> (i32, String, String) {
        let mut command = Command::new(sim());
        command
            .arg(tool)
            .args(args)
            .env("DRBD_SIM_DIR", &self.sim_dir)
            .env("DRBD_SIM_NODE", &self.node)
            .env_remove("RUST_LOG");
        run_bounded(command, Duration::from_secs(20))
    }

    /// `GET /v1/status` as JSON, if the agent answers.
    pub fn status(&self) -> Option<serde_json::Value> {
        match http_get(self.addr, "/v1/status") {
            Ok((200, body)) => serde_json::from_str(&body).ok(),
            _ => None,
        }
    }

    fn wait_drbd_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.agent.assert_running();
            self.sim.assert_running();
            if let Ok((200, body)) = http_get(self.addr, "/metrics") {
                if sample_value(&body, "drbd_agent_drbd_up") == Some(1.0)
                    && body.contains("drbd_resource_role{")
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the agent never reported DRBD up on /metrics"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Cluster {
    /// Starts one more agent on the same simulator, playing `node` (its own
    /// node view: `DRBD_SIM_NODE`, `sysfs-root = DIR/sim/<node>/sys`) on a
    /// port of its own, with `extra_config`; waits until it reports DRBD
    /// up. The caller owns it (killed on drop).
    pub fn start_peer_agent(&mut self, node: &str, extra_config: &str) -> (Proc, SocketAddr) {
        let (mut agent, addr) = spawn_agent(
            self.dir.path(),
            &self.sim_dir,
            node,
            &self.poll_interval,
            extra_config,
            self.starts,
        );
        self.starts += 1;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            agent.assert_running();
            self.sim.assert_running();
            if let Ok((200, body)) = http_get(addr, "/metrics") {
                if sample_value(&body, "drbd_agent_drbd_up") == Some(1.0)
                    && body.contains("drbd_resource_role{")
                {
                    return (agent, addr);
                }
            }
            assert!(
                Instant::now() < deadline,
                "the {node} agent never reported DRBD up on /metrics"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `GET path` with extra request header lines (each ending in `\r\n`).
pub fn http_get_with(
    addr: SocketAddr,
    path: &str,
    headers: &str,
) -> std::io::Result<(u16, String)> {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n");
    raw_request(addr, request.as_bytes())
}

/// Writes the agent's configuration (`agent-N.toml`) and starts it with
/// its log in `agent-N.log` (`agent.toml`/`agent.log` for the first).
fn spawn_agent(
    root: &Path,
    sim_dir: &Path,
    node: &str,
    poll_interval: &str,
    extra_config: &str,
    index: u32,
) -> (Proc, SocketAddr) {
    let bin = root.join("bin");
    let suffix = if index == 0 {
        String::new()
    } else {
        format!("-{index}")
    };
    let port = free_port();
    let config = root.join(format!("agent{suffix}.toml"));
    std::fs::write(
        &config,
        format!(
            "node-name = \"{node}\"\n\
             [drbd]\n\
             drbdsetup = \"{}\"\n\
             drbdadm = \"{}\"\n\
             statistics-poll-interval = \"{poll_interval}\"\n\
             sysfs-root = \"{}\"\n\
             [api]\n\
             listen = [\"127.0.0.1:{port}\"]\n\
             {extra_config}",
            bin.join("drbdsetup").display(),
            bin.join("drbdadm").display(),
            sim_dir.join(node).join("sys").display(),
        ),
    )
    .expect("write agent config");
    let mut agent_command = Command::new(AGENT);
    agent_command
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env_remove("RUST_LOG")
        .env("DRBD_SIM_DIR", sim_dir)
        .env("DRBD_SIM_NODE", node);
    let agent = Proc::spawn(
        "drbd-agent",
        agent_command,
        root.join(format!("agent{suffix}.log")),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    (agent, addr)
}

/// Runs `command` with piped output; kills it and panics after `bound`.
pub fn run_bounded(mut command: Command, bound: Duration) -> (i32, String, String) {
    use std::io::Read;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a command");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + bound;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for a command") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("command did not finish within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (
        status.code().unwrap_or(-1),
        out_thread.join().unwrap_or_default(),
        err_thread.join().unwrap_or_default(),
    )
}

/// A blocking `GET path` with `Connection: close`: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    raw_request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// Sends `request` as is and reads the answer to the end: (status, body).
/// Handles `Content-Length` and chunked bodies.
pub fn raw_request(addr: SocketAddr, request: &[u8]) -> std::io::Result<(u16, String)> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(request)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    parse_response(&answer)
        .ok_or_else(|| std::io::Error::other(String::from_utf8_lossy(&answer).into_owned()))
}

/// (status, body) of a complete HTTP/1.1 response.
pub fn parse_response(answer: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Some((status, body))
}

fn dechunk(mut text: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = text.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        text = rest.get(size + 2..)?;
    }
}

/// The value of the first sample line that starts with `series` followed
/// by a space (`name` or `name{labels}` exactly as rendered).
pub fn sample_value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// Polls `probe` every `every` until it returns `Some`; panics with `what`
/// after `bound`.
pub fn poll<T>(
    bound: Duration,
    every: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}

/// A program from PATH; a missing one is a test failure.
pub fn program(name: &str, hint: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
        })
        .unwrap_or_else(|| panic!("{name} not found: {hint}"))
}

/// promtool's findings on `text` (`promtool check metrics`), sorted.
pub fn promtool_findings(text: &str) -> Vec<String> {
    let promtool = program(
        "promtool",
        "install prometheus (scripts/test-all does: apt-get install prometheus)",
    );
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    let mut stdin = child.stdin.take().expect("promtool stdin");
    let input = text.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let output = child.wait_with_output().expect("promtool output");
    let _ = writer.join();
    let mut findings: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&output.stderr).lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    findings.sort();
    findings
}

/// One parsed sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Parses a text-format 0.0.4 exposition strictly: every line is a `# HELP`
/// or `# TYPE` comment or `name{label="value",...} value`, label values
/// escaped (`\\`, `\"`, `\n` only). Names the first bad line.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    if !text.ends_with('\n') {
        return Err("exposition does not end with a newline".into());
    }
    let mut samples = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let bad = |why: &str| format!("line {}: {why}: {line:?}", number + 1);
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            match words.next() {
                Some("HELP") | Some("TYPE") => {
                    let name = words.next().ok_or_else(|| bad("comment without a name"))?;
                    if !is_metric_name(name) {
                        return Err(bad("bad metric name in comment"));
                    }
                }
                _ => {}
            }
            continue;
        }
        samples.push(parse_sample(line).map_err(|why| bad(&why))?);
    }
    Ok(samples)
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    is_metric_name(name) && !name.contains(':')
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or_else(|| "no value".to_owned())?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err("bad metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = inner.find('=').ok_or("label without '='")?;
            let label = &inner[..eq];
            if !is_label_name(label) {
                return Err(format!("bad label name {label:?}"));
            }
            let quoted = inner[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let (value, after) = unescape_label(quoted)?;
            labels.push((label.to_owned(), value));
            inner = after.strip_prefix(',').unwrap_or(after);
            if !inner.starts_with('}') && after.len() == inner.len() {
                return Err("labels not separated by ','".into());
            }
        }
    }
    let mut fields = rest
        .strip_prefix(' ')
        .ok_or("no space before the value")?
        .split(' ');
    let value_text = fields.next().ok_or("no value")?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        other => other.parse().map_err(|_| format!("bad value {other:?}"))?,
    };
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("bad timestamp {timestamp:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The value up to the closing quote, unescaped, and the text after it.
fn unescape_label(text: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                other => return Err(format!("bad escape {other:?} in label value")),
            },
            '\n' => return Err("raw newline in label value".into()),
            c => value.push(c),
        }
    }
    Err("unterminated label value".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_checker_accepts_and_rejects() {
        let good = "# HELP a x\n# TYPE a gauge\na{n=\"q\\\"b\\\\c\",m=\"\"} 1\nb 2.5e3\nc +Inf\n";
        let samples = parse_exposition(good).unwrap();
        assert_eq!(samples[0].labels[0].1, "q\"b\\c");
        assert_eq!(samples[1].value, 2500.0);
        for bad in [
            "a{n=\"q\"b\"} 1\n",
            "a{n=\"x\\q\"} 1\n",
            "a{n=x} 1\n",
            "a 1",
            "a{n=\"x\" m=\"y\"} 1\n",
            "1a 1\n",
            "a one\n",
            "a{n=\"x\"}1\n",
        ] {
            assert!(parse_exposition(bad).is_err(), "{bad:?} accepted");
        }
    }
}
