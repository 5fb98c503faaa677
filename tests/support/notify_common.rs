//! Helpers of the systemd tests: a fake `NOTIFY_SOCKET` (a datagram socket
//! in a temp dir, as systemd would bind), the simulator with a drbdsetup
//! shim, and an agent started with a given environment.
// Each test uses a part of the helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::common::{free_port, sim, Proc, AGENT};

/// Generous bound for anything the tests wait for.
pub const BOUND: Duration = Duration::from_secs(40);

/// The service manager's end of the notification protocol.
pub struct NotifySocket {
    pub path: PathBuf,
    socket: UnixDatagram,
    /// Every datagram received so far, in order.
    pub received: Vec<String>,
}

impl NotifySocket {
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        NotifySocket {
            path,
            socket,
            received: Vec::new(),
        }
    }

    /// Receives one datagram if one comes within 100 ms.
    pub fn recv(&mut self) -> Option<String> {
        let mut buf = vec![0u8; 8192];
        match self.socket.recv(&mut buf) {
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.received.push(text.clone());
                Some(text)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("notify socket: {e}"),
        }
    }

    /// Receives until a datagram satisfies `want` (returned); panics with
    /// everything received after [`BOUND`]. `check` runs between reads
    /// (e.g. that the agent still runs).
    pub fn wait_for(
        &mut self,
        what: &str,
        mut check: impl FnMut(),
        want: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(datagram) = self.recv() {
                if want(&datagram) {
                    return datagram;
                }
            }
            check();
            assert!(
                Instant::now() < deadline,
                "no {what} within {BOUND:?}; received: {:?}",
                self.received
            );
        }
    }

    /// Everything that arrives within `window`.
    pub fn drain_for(&mut self, window: Duration) -> Vec<String> {
        let until = Instant::now() + window;
        let mut out = Vec::new();
        while Instant::now() < until {
            if let Some(datagram) = self.recv() {
                out.push(datagram);
            }
        }
        out
    }
}

/// The assignments of a datagram (`KEY=value` lines).
pub fn lines(datagram: &str) -> Vec<&str> {
    datagram.lines().collect()
}

/// `drbd-sim serve --scenario demo` in `root/sim`, waited for; and
/// `root/sim-bin/{drbdsetup,drbdadm}` shims running the simulator as node
/// alpha, the drbdsetup one sleeping `delay` before `events2` so that a
/// premature READY would be seen.
pub fn start_sim(root: &Path, delay: &str) -> (Proc, PathBuf) {
    let sim_dir = root.join("sim");
    std::fs::create_dir(&sim_dir).expect("sim dir");
    let bin = root.join("sim-bin");
    std::fs::create_dir(&bin).expect("sim bin dir");
    for tool in ["drbdsetup", "drbdadm"] {
        let pause = if tool == "drbdsetup" {
            format!("if [ \"$1\" = events2 ]; then sleep {delay}; fi\n")
        } else {
            String::new()
        };
        let shim = bin.join(tool);
        std::fs::write(
            &shim,
            format!(
                "#!/bin/sh\n{pause}DRBD_SIM_DIR='{}' DRBD_SIM_NODE=alpha exec '{}' {tool} \"$@\"\n",
                sim_dir.display(),
                sim()
            ),
        )
        .expect("write shim");
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let mut command = Command::new(sim());
    command
        .args(["serve", "--scenario", "demo", "--dir"])
        .arg(&sim_dir)
        .env_remove("RUST_LOG");
    let mut sim = Proc::spawn("drbd-sim", command, root.join("sim.log"));
    let socket = sim_dir.join("sim.sock");
    let deadline = Instant::now() + BOUND;
    while !socket.exists() {
        sim.assert_running();
        assert!(Instant::now() < deadline, "the simulator did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (sim, bin)
}

/// An agent configuration: DRBD tools, API port, state and sysfs in `root`.
pub fn config_text(root: &Path, drbdsetup: &Path, drbdadm: &Path, port: u16) -> String {
    format!(
        "node-name = \"alpha\"\n\
         [drbd]\n\
         drbdsetup = \"{}\"\n\
         drbdadm = \"{}\"\n\
         sysfs-root = \"{}\"\n\
         [api]\n\
         listen = [\"127.0.0.1:{port}\"]\n\
         [state]\n\
         directory = \"{}\"\n",
        drbdsetup.display(),
        drbdadm.display(),
        root.join("sim").join("alpha").join("sys").display(),
        root.join("state").display(),
    )
}

/// `drbd-agent run --config root/agent.toml` (written from `config`) with
/// `NOTIFY_SOCKET` and the extra environment; log in `root/agent.log`.
pub fn start_agent(
    root: &Path,
    config: &str,
    notify: &Path,
    env: &[(&str, &str)],
) -> (Proc, SocketAddr) {
    let path = root.join("agent.toml");
    std::fs::write(&path, config).expect("write config");
    let port: u16 = config
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|port| port.parse().ok())
        .expect("port in config");
    let mut command = Command::new(AGENT);
    command
        .arg("run")
        .arg("--config")
        .arg(&path)
        .env_remove("RUST_LOG")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("JOURNAL_STREAM")
        .env("NOTIFY_SOCKET", notify);
    for (key, value) in env {
        command.env(key, value);
    }
    let agent = Proc::spawn("drbd-agent", command, root.join("agent.log"));
    let addr = format!("127.0.0.1:{port}").parse().expect("address");
    (agent, addr)
}

/// A port for the agent's API.
pub fn port() -> u16 {
    free_port()
}

/// Sends `signal` (`HUP`, `TERM`) to the process.
pub fn signal(proc: &Proc, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(proc.child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// The agent's log so far.
pub fn log(root: &Path) -> String {
    std::fs::read_to_string(root.join("agent.log")).unwrap_or_default()
}
