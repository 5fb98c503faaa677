//! Shared helpers of the simulator integration tests: a `drbd-sim serve`
//! child that is always killed, and front-end runs bounded in time.
// Each test uses a part of the helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::bins::sim;

/// Every wait in these tests ends after this long.
pub const LIMIT: Duration = Duration::from_secs(30);

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sim")
        .join(name)
}

/// A running `drbd-sim serve`, killed on drop.
pub struct Sim {
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Sim {
    pub fn start(scenario: &str) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(sim())
            .args(["serve", "--scenario", scenario, "--dir"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let sim = Sim { dir, child };
        let socket = sim.dir.path().join("sim.sock");
        let start = Instant::now();
        while !socket.exists() {
            assert!(start.elapsed() < LIMIT, "simulator did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        sim
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `drbd-sim <tool> args…` on `node`, with `stdin` as input; bounded.
    pub fn run(&self, tool: &str, node: &str, args: &[&str], stdin: &str) -> Output {
        run_in(Some(self.path()), tool, node, args, stdin)
    }

    /// Starts a long-running front-end whose stdout lines arrive on a channel.
    pub fn stream(&self, node: &str, args: &[&str]) -> Stream {
        let mut child = Command::new(sim())
            .arg("drbdsetup")
            .args(args)
            .env("DRBD_SIM_DIR", self.path())
            .env("DRBD_SIM_NODE", node)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Stream { child, lines: rx }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A front-end child streaming lines; killed on drop.
pub struct Stream {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Stream {
    /// Lines until one matches `until` (included); panics after LIMIT.
    pub fn read_until(&self, until: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + LIMIT;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = until(&line);
                    lines.push(line);
                    if done {
                        return lines;
                    }
                }
                Err(error) => panic!("no matching line ({error:?}); got {lines:#?}"),
            }
        }
    }

    pub fn send(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin and waits for the exit (bounded); returns (code, stderr).
    pub fn finish(mut self) -> (i32, String) {
        drop(self.child.stdin.take());
        let code = wait_bounded(&mut self.child);
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
        }
        (code, stderr)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a child at most LIMIT; kills it and panics after that.
pub fn wait_bounded(child: &mut Child) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `drbd-sim <tool> args…` with DRBD_SIM_DIR = `dir` (None: unset).
pub fn run_in(dir: Option<&Path>, tool: &str, node: &str, args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(sim());
    command.arg(tool).args(args).env_remove("DRBD_SIM_DIR");
    if let Some(dir) = dir {
        command.env("DRBD_SIM_DIR", dir);
    }
    command.env("DRBD_SIM_NODE", node);
    run_command(command, stdin)
}

/// Runs a prepared command with piped I/O, bounded in time.
pub fn run_command(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let text = stdin.to_owned();
    std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let code = wait_bounded(&mut child);
    Output {
        code,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}

/// Every line parses as events2.
pub fn assert_all_parse(text: &str) {
    for line in text.lines() {
        if let Err(error) = drbd_agent::events2::parse_line(line) {
            panic!("line does not parse: {line:?}: {error:?}");
        }
    }
}
