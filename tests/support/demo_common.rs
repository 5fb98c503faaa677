//! A `drbd-agent demo` for a test: started on a free port, its directory
//! read from its first line, stopped (SIGINT, then SIGKILL) when dropped;
//! plain HTTP/1.0 looks at its API.
// Each test uses a part of the helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// `kill -SIG PID`.
pub fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Waits for a child at most `bound`.
pub fn wait_bounded(child: &mut Child, bound: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < bound {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

pub struct Demo {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Demo {
    /// `drbd-agent demo --listen 127.0.0.1:PORT ARGS...`, once it printed
    /// its first line.
    pub fn start(args: &[&str]) -> Demo {
        // demo runs the drbd-sim beside drbd-agent.
        let _ = super::bins::sim();
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_drbd-agent"))
            .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start demo");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = sender.send(first);
            }
            // Keep draining so that the demo never blocks on a full pipe.
            for _ in lines {}
        });
        let first = receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("the demo printed its first line");
        let dir = first
            .split(" in ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .expect("the demo names its directory")
            .into();
        Demo { child, port, dir }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The body of `GET path`, if the agent answered 200.
    pub fn get(&self, path: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let (head, body) = answer.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.0 200")
            .then(|| body.to_owned())
            .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_owned()))
    }

    pub fn status(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.get("/v1/status")?).ok()
    }

    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the demo exited: {status}");
        }
    }

    /// SIGINT; the exit status within 20 s.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        assert!(signal(self.child.id(), "-INT"));
        wait_bounded(&mut self.child, Duration::from_secs(20)).expect("the demo stopped")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "-INT");
            if wait_bounded(&mut self.child, Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Polls `f` every `every` until it gives a value, at most `bound`.
pub fn poll<T>(
    bound: Duration,
    every: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(start.elapsed() < bound, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}

/// The value of a series whose line starts with `family{` and holds every
/// one of `labels` (`name="db"`).
pub fn metric(text: &str, family: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
