//! The network watcher against the real kernel: a network namespace per
//! test with a veth pair, `drbd-sim` providing paths on the veth addresses,
//! the agent running inside the namespace. Needs root (fails loudly
//! otherwise); namespaces are removed on every path by a guard.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod common;
}
use support::common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{poll, promtool_findings, run_bounded, sample_value, sim, Proc, AGENT};

const SCENARIO: &str = include_str!("data/netlink/two-nodes.toml");
/// The scenario disconnects alpha and bravo at this time.
const DISCONNECT_AT: Duration = Duration::from_secs(12);
/// The network change is made this long before the disconnect (well
/// inside the agent's 10 s attribution window).
const LEAD: Duration = Duration::from_secs(3);
const PORT: u16 = 9943;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS`, panicking with its output on failure.
fn ip(args: &[&str]) {
    let mut command = Command::new("ip");
    command.args(args);
    let (code, out, err) = run_bounded(command, Duration::from_secs(20));
    assert_eq!(code, 0, "ip {args:?} failed: {out}{err}");
}

/// A network namespace with a veth pair (va 10.77.0.1/24, vb 10.77.0.2/24),
/// deleted when dropped.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        let uid = Command::new("id").arg("-u").output().expect("run id -u");
        assert_eq!(
            String::from_utf8_lossy(&uid.stdout).trim(),
            "0",
            "the netlink end-to-end tests need root (network namespaces, veth pairs)"
        );
        let name = format!(
            "drbdnl-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"]);
        ns.ip(&["addr", "add", "10.77.0.1/24", "dev", "va"]);
        ns.ip(&["addr", "add", "10.77.0.2/24", "dev", "vb"]);
        ns.ip(&["link", "set", "va", "up"]);
        ns.ip(&["link", "set", "vb", "up"]);
        ns
    }

    /// `ip -n NS ARGS`.
    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// Runs a program inside the namespace, bounded: (code, stdout).
    fn exec(&self, program: &str, args: &[&str]) -> (i32, String) {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.name, program])
            .args(args);
        let (code, out, _) = run_bounded(command, Duration::from_secs(20));
        (code, out)
    }

    fn status(&self) -> Option<serde_json::Value> {
        let url = format!("http://127.0.0.1:{PORT}");
        let (code, out) = self.exec(AGENT, &["status", "--json", "--url", &url]);
        (code == 0)
            .then(|| serde_json::from_str(&out).ok())
            .flatten()
    }

    fn metrics(&self) -> Option<String> {
        let url = format!("http://127.0.0.1:{PORT}/metrics");
        let (code, out) = self.exec("curl", &["-sf", "-m", "5", &url]);
        (code == 0).then_some(out)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The simulator (outside) and the agent (inside `ns`), killed on drop
/// before the namespace goes (fields drop in order: declare after `ns`).
struct Run {
    agent: Proc,
    _sim: Proc,
    started: Instant,
    _dir: tempfile::TempDir,
}

fn start(ns: &Netns) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    std::fs::write(path.join("scenario.toml"), SCENARIO).expect("write scenario");
    let sim_dir = path.join("sim");
    let bin = path.join("bin");
    std::fs::create_dir(&sim_dir).expect("sim dir");
    std::fs::create_dir(&bin).expect("bin dir");
    for tool in ["drbdsetup", "drbdadm"] {
        std::os::unix::fs::symlink(sim(), bin.join(tool)).expect("symlink");
    }
    let mut sim_command = Command::new(sim());
    sim_command
        .args(["serve", "--scenario"])
        .arg(path.join("scenario.toml"))
        .arg("--dir")
        .arg(&sim_dir)
        .env_remove("RUST_LOG");
    let mut sim = Proc::spawn("drbd-sim", sim_command, path.join("sim.log"));
    let started = Instant::now();
    poll(
        Duration::from_secs(20),
        Duration::from_millis(20),
        "the simulator socket",
        || {
            sim.assert_running();
            sim_dir.join("sim.sock").exists().then_some(())
        },
    );
    let config = path.join("agent.toml");
    std::fs::write(&config, agent_config(&bin, &sim_dir)).expect("write config");
    let mut agent_command = Command::new("ip");
    agent_command
        .args(["netns", "exec", &ns.name, AGENT, "run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("DRBD_SIM_DIR", &sim_dir)
        .env("DRBD_SIM_NODE", "alpha");
    let agent = Proc::spawn("drbd-agent", agent_command, path.join("agent.log"));
    Run {
        agent,
        _sim: sim,
        started,
        _dir: dir,
    }
}

fn agent_config(bin: &Path, sim_dir: &Path) -> String {
    format!(
        "node-name = \"alpha\"\n[drbd]\ndrbdsetup = \"{}\"\ndrbdadm = \"{}\"\n\
         statistics-poll-interval = \"500ms\"\nsysfs-root = \"{}\"\n\
         [api]\nlisten = [\"127.0.0.1:{PORT}\"]\n",
        bin.join("drbdsetup").display(),
        bin.join("drbdadm").display(),
        sim_dir.join("alpha").join("sys").display(),
    )
}

/// The path entry of r0/bravo in `/v1/status`'s `network`.
fn path_of(status: &serde_json::Value) -> Option<serde_json::Value> {
    status["network"]["paths"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == "r0" && p["conn_name"] == "bravo")
        .cloned()
}

fn connection_state(status: &serde_json::Value) -> Option<String> {
    status["resources"]["r0"]["connections"]["bravo"]["connection"]
        .as_str()
        .map(str::to_owned)
}

/// Waits until the agent maps r0/bravo's path to `va` (up), then until
/// shortly before the scripted disconnect; checks r0 is still Connected.
fn wait_mapped_then_lead(ns: &Netns, run: &mut Run) {
    let path = poll(
        Duration::from_secs(40),
        Duration::from_millis(200),
        "the path mapped to va",
        || {
            run.agent.assert_running();
            let status = ns.status()?;
            let path = path_of(&status)?;
            (path["interface"] == "va" && connection_state(&status).as_deref() == Some("Connected"))
                .then_some(path)
        },
    );
    assert_eq!(path["up"], true, "{path}");
    assert_eq!(path["local"], "ipv4:10.77.0.1:7000", "{path}");
    let metrics = ns.metrics().expect("curl /metrics inside the namespace");
    assert_eq!(
        sample_value(
            &metrics,
            "drbd_agent_path_interface_up{name=\"r0\",conn_name=\"bravo\",peer_node_id=\"1\",interface=\"va\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    let findings: Vec<String> = promtool_findings(&metrics)
        .into_iter()
        .filter(|f| !common::LEGACY_FINDINGS.iter().any(|l| f.contains(l)))
        .collect();
    assert!(findings.is_empty(), "promtool: {findings:?}");
    let change_at = run.started + DISCONNECT_AT - LEAD;
    let now = Instant::now();
    assert!(
        now < change_at,
        "the agent took too long to start ({:?} after the simulator); the scripted disconnect would come first",
        now - run.started
    );
    std::thread::sleep(change_at - now);
    let status = ns.status().expect("status before the network change");
    assert_eq!(
        connection_state(&status).as_deref(),
        Some("Connected"),
        "r0/bravo left Connected before the network change"
    );
}

/// Waits for r0/bravo's recorded loss and returns its entry.
fn wait_loss(ns: &Netns, run: &mut Run) -> serde_json::Value {
    poll(
        Duration::from_secs(30),
        Duration::from_millis(200),
        "the connection loss",
        || {
            run.agent.assert_running();
            let status = ns.status()?;
            let connection = status["network"]["connections"]["r0/bravo"].clone();
            (!connection["last_loss"].is_null()).then_some(connection)
        },
    )
}

#[test]
fn link_down_is_blamed_rename_and_delete_followed() {
    let ns = Netns::new();
    let mut run = start(&ns);
    wait_mapped_then_lead(&ns, &mut run);
    ns.ip(&["link", "set", "va", "down"]);
    let connection = wait_loss(&ns, &mut run);
    assert_eq!(
        connection["last_loss"]["cause"], "link-down",
        "{connection}"
    );
    assert_eq!(connection["last_loss"]["interface"], "va", "{connection}");
    let metrics = ns.metrics().expect("metrics after the loss");
    let series = |cause: &str| {
        format!("drbd_agent_connection_losses_total{{name=\"r0\",conn_name=\"bravo\",peer_node_id=\"1\",cause=\"{cause}\"}}")
    };
    assert_eq!(
        sample_value(&metrics, &series("link-down")),
        Some(1.0),
        "{metrics}"
    );
    // A cause's series exists from its first occurrence on.
    assert_eq!(
        sample_value(&metrics, &series("unknown")),
        None,
        "{metrics}"
    );
    assert_eq!(
        sample_value(
            &metrics,
            "drbd_agent_path_interface_up{name=\"r0\",conn_name=\"bravo\",peer_node_id=\"1\",interface=\"va\"}"
        ),
        Some(0.0),
        "{metrics}"
    );
    // Renamed while mapped: the path follows the new name.
    ns.ip(&["link", "set", "va", "name", "repl0"]);
    poll(
        Duration::from_secs(20),
        Duration::from_millis(200),
        "the path mapped to repl0",
        || {
            run.agent.assert_running();
            let path = path_of(&ns.status()?)?;
            (path["interface"] == "repl0").then_some(())
        },
    );
    // Deleted while mapped: the path is unmapped, the agent keeps going.
    ns.ip(&["link", "del", "repl0"]);
    poll(
        Duration::from_secs(20),
        Duration::from_millis(200),
        "the path unmapped",
        || {
            run.agent.assert_running();
            let path = path_of(&ns.status()?)?;
            (path["unmapped"] == "no-interface" && path["interface"].is_null()).then_some(())
        },
    );
    let log = std::fs::read_to_string(&run.agent.log).unwrap_or_default();
    assert!(
        log.lines().any(|l| l.contains("connection lost")
            && l.contains("va")
            && (l.contains("cause=\"link-down\"") || l.contains("cause=link-down"))),
        "no loss log line:\n{log}"
    );
}

#[test]
fn address_removal_is_blamed_and_unmapped() {
    let ns = Netns::new();
    let mut run = start(&ns);
    wait_mapped_then_lead(&ns, &mut run);
    ns.ip(&["addr", "del", "10.77.0.1/24", "dev", "va"]);
    let connection = wait_loss(&ns, &mut run);
    assert_eq!(
        connection["last_loss"]["cause"], "address-removed",
        "{connection}"
    );
    assert_eq!(connection["last_loss"]["interface"], "va", "{connection}");
    let path = path_of(&ns.status().expect("status")).expect("path");
    assert_eq!(path["unmapped"], "no-interface", "{path}");
    assert_eq!(path["up"], false, "{path}");
}
