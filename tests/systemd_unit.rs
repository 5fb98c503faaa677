//! systemd/drbd-agent.service is a valid unit (`systemd-analyze verify`,
//! no warnings) and hardened (`systemd-analyze security --offline=true`
//! exposure at most 4.0), checked in a staged root: the unit, a stub
//! /usr/sbin/drbd-agent, a stub /bin/kill and stub targets it depends on.
//! `scripts/test-all` installs systemd; a missing systemd-analyze fails here.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const UNIT: &str = "drbd-agent.service";

fn systemd_analyze() -> PathBuf {
    for dir in ["/usr/bin", "/bin"] {
        let path = Path::new(dir).join("systemd-analyze");
        if path.is_file() {
            return path;
        }
    }
    panic!("systemd-analyze not found: install systemd (scripts/test-all does)");
}

fn stub(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A root directory holding what loading the unit needs.
fn staged_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("systemd")
            .join(UNIT),
    )
    .unwrap();
    stub(
        &root.path().join("etc/systemd/system").join(UNIT),
        &unit,
        0o644,
    );
    for exe in ["usr/sbin/drbd-agent", "bin/kill"] {
        stub(&root.path().join(exe), "#!/bin/sh\nexit 0\n", 0o755);
    }
    for target in [
        "sysinit.target",
        "basic.target",
        "shutdown.target",
        "network.target",
        "network-online.target",
        "multi-user.target",
    ] {
        stub(
            &root.path().join("usr/lib/systemd/system").join(target),
            &format!("[Unit]\nDescription=stub {target}\n"),
            0o644,
        );
    }
    root
}

fn analyze(root: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(systemd_analyze())
        .args(args)
        .arg(format!("--root={}", root.display()))
        .arg(UNIT)
        .env("SYSTEMD_LOG_COLOR", "0")
        .env("SYSTEMD_COLORS", "0")
        .output()
        .expect("run systemd-analyze");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn unit_verifies_without_warnings() {
    let root = staged_root();
    let (ok, stdout, stderr) = analyze(root.path(), &["verify", "--man=no"]);
    assert!(ok, "verify failed:\n{stdout}{stderr}");
    assert_eq!(format!("{stdout}{stderr}").trim(), "", "verify warned");
}

#[test]
fn a_broken_unit_does_not_verify() {
    // The check above can fail: a missing binary is reported.
    let root = staged_root();
    std::fs::remove_file(root.path().join("usr/sbin/drbd-agent")).unwrap();
    let (ok, stdout, stderr) = analyze(root.path(), &["verify", "--man=no"]);
    assert!(!ok || !format!("{stdout}{stderr}").trim().is_empty());
}

/// The number after "Overall exposure level for drbd-agent.service:".
fn exposure(report: &str) -> f64 {
    report
        .lines()
        .find_map(|line| line.split_once("Overall exposure level for drbd-agent.service:"))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{report}"))
}

#[test]
fn unit_is_hardened() {
    let root = staged_root();
    let (ok, stdout, stderr) = analyze(root.path(), &["security", "--offline=true"]);
    assert!(ok, "security failed:\n{stdout}{stderr}");
    let level = exposure(&stdout);
    assert!(level <= 4.0, "exposure {level} > 4.0:\n{stdout}");
    // What the agent needs is still granted.
    let unit = std::fs::read_to_string(root.path().join("etc/systemd/system").join(UNIT)).unwrap();
    for needed in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=",
        "Restart=on-failure",
        "After=network-online.target",
        "CapabilityBoundingSet=CAP_NET_ADMIN\n",
        "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6\n",
        "ReadWritePaths=-/var/lib/drbd -/run/drbd\n",
        "StateDirectory=drbd-agent\n",
    ] {
        assert!(unit.contains(needed), "unit lacks {needed:?}");
    }
}

#[test]
fn exposure_line_is_parsed() {
    assert_eq!(
        exposure("x\n→ Overall exposure level for drbd-agent.service: 2.1 OK :-)\n"),
        2.1
    );
}
