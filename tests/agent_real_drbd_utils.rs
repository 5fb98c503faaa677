//! `drbd-agent run` with the real drbd-utils on a machine without the DRBD
//! kernel module: it says so, reports `drbd_agent_drbd_up 0`, keeps serving
//! and retrying, and tells systemd READY anyway. A reload that switches
//! `[drbd] drbdsetup` to the simulator's shim brings DRBD up without a
//! restart. `scripts/test-all` installs drbd-utils; a missing drbdsetup is
//! a failure here, not a skip.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod common;
    pub mod notify_common;
}
use support::{common, notify_common};

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{http_get, poll, sample_value};
use notify_common::{
    config_text, lines, log, port, signal, start_agent, start_sim, NotifySocket, BOUND,
};

fn real_tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} not found: install Debian's drbd-utils (scripts/test-all does)");
}

fn metric(addr: std::net::SocketAddr, series: &str) -> Option<f64> {
    let (code, body) = http_get(addr, "/metrics").ok()?;
    (code == 200).then_some(())?;
    sample_value(&body, series)
}

#[test]
fn no_module_then_reload_to_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut notify = NotifySocket::bind(root);
    let config = config_text(root, &real_tool("drbdsetup"), &real_tool("drbdadm"), port());
    let (mut agent, addr) = start_agent(root, &config, &notify.path, &[]);

    // DRBD is known unavailable: READY anyway, and the status says why.
    let ready = notify.wait_for(
        "READY=1",
        || agent.assert_running(),
        |d| lines(d).contains(&"READY=1"),
    );
    assert!(
        ready.contains("STATUS=drbd: unavailable (exited: exit code 20)")
            || notify
                .received
                .iter()
                .any(|d| d.contains("drbd: unavailable")),
        "{:?}",
        notify.received
    );
    // It keeps serving and retries events2 (with backoff: 1 s, 2 s, ...).
    let restarts = poll(
        BOUND,
        Duration::from_millis(100),
        "two events2 restarts",
        || {
            agent.assert_running();
            metric(addr, "drbd_agent_events2_restarts_total").filter(|n| *n >= 2.0)
        },
    );
    assert!(restarts >= 2.0);
    assert_eq!(metric(addr, "drbd_agent_drbd_up"), Some(0.0));
    let text = log(root);
    assert!(
        text.contains("DRBD kernel module not loaded"),
        "no clear message in:\n{text}"
    );

    // Switch drbdsetup/drbdadm to the simulator and reload: DRBD comes up.
    let (_sim, bin) = start_sim(root, "0");
    let switched = config_text(
        root,
        &bin.join("drbdsetup"),
        &bin.join("drbdadm"),
        addr.port(),
    );
    std::fs::write(root.join("agent.toml"), switched).unwrap();
    signal(&agent, "HUP");
    notify.wait_for(
        "RELOADING=1",
        || agent.assert_running(),
        |d| lines(d).contains(&"RELOADING=1"),
    );
    notify.wait_for(
        "READY=1 after the reload",
        || agent.assert_running(),
        |d| lines(d).contains(&"READY=1"),
    );
    poll(
        BOUND,
        Duration::from_millis(100),
        "drbd_agent_drbd_up 1",
        || {
            agent.assert_running();
            metric(addr, "drbd_agent_drbd_up").filter(|up| *up == 1.0)
        },
    );
    notify.wait_for(
        "a status with DRBD up",
        || agent.assert_running(),
        |d| d.contains("STATUS=drbd: up;"),
    );
    let text = log(root);
    assert!(text.contains("DRBD tools changed"), "{text}");
    assert!(!text.contains("needs a restart"), "{text}");
    assert_eq!(
        metric(addr, "drbd_agent_config_reloads_total{result=\"success\"}"),
        Some(1.0)
    );

    signal(&agent, "TERM");
    notify.wait_for("STOPPING=1", || {}, |d| lines(d).contains(&"STOPPING=1"));
    let status = poll(
        BOUND,
        Duration::from_millis(50),
        "the agent to exit",
        || agent.child.try_wait().expect("wait"),
    );
    assert!(status.success(), "{status}; log:\n{}", log(root));
}
