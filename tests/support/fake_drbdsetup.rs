//! A fake `drbdsetup` for the throttle loop's tests: it records its argv,
//! answers `show --json` from a file (`show.json`) and fails on demand (a
//! file named `fail`), all in a temporary directory that also holds the
//! sysfs root (`sys/`) and the state directory (`state/`).
// Each test uses a part of the helpers.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use drbd_agent::drbd::DrbdTools;
use drbd_agent::events2::parse_line;
use drbd_agent::state::Model;
use drbd_agent::throttle::{
    Actuator, SharedThrottleStatus, ThrottleConfig, ThrottleOptions, Throttler,
};

pub struct FakeDrbdsetup {
    pub dir: tempfile::TempDir,
    pub status: SharedThrottleStatus,
}

impl FakeDrbdsetup {
    /// The fake, answering `show --json` with `show_json`.
    pub fn new(show_json: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("drbdsetup");
        let script = format!(
            "#!/bin/sh\nD='{}'\necho \"$*\" >> \"$D/argv\"\nif [ -f \"$D/fail\" ]; then echo failing >&2; exit 10; fi\ncase \"$1\" in show) cat \"$D/show.json\";; esac\nexit 0\n",
            dir.path().display()
        );
        fs::write(&program, script).unwrap();
        fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.path().join("show.json"), show_json).unwrap();
        FakeDrbdsetup {
            dir,
            status: SharedThrottleStatus::default(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A throttle loop on node alpha using the fake (readback every interval).
    pub fn throttler(&self, config: ThrottleConfig) -> Throttler {
        let mut tools = DrbdTools::new(self.path("drbdsetup"), PathBuf::from("/bin/false"));
        tools.timeout = Duration::from_secs(10);
        Throttler::new(
            ThrottleOptions {
                node_name: "alpha".into(),
                config,
                sysfs_root: self.path("sys"),
                state_directory: self.path("state"),
                readback_every: 1,
            },
            Actuator::new(tools),
            self.status.clone(),
        )
    }

    /// Every invocation's arguments, in order.
    pub fn argv(&self) -> Vec<String> {
        fs::read_to_string(self.path("argv"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The `peer-device-options` invocations.
    pub fn sets(&self) -> Vec<String> {
        self.argv()
            .into_iter()
            .filter(|a| a.starts_with("peer-device-options"))
            .collect()
    }

    pub fn journal(&self) -> PathBuf {
        self.path("state/throttle-journal.json")
    }
}

/// `drbdsetup show --json r0` with these options for peer 1, volume 0.
pub fn show(c_max: &str, c_min: &str) -> String {
    format!(
        r#"[{{"resource":"r0","connections":[{{"_peer_node_id":1,"volumes":[{{"volume_nr":0,"disk":{{"c-max-rate":"{c_max}","c-min-rate":"{c_min}"}}}}]}}]}}]"#
    )
}

pub fn model(lines: &str) -> Model {
    let mut m = Model::new();
    for line in lines.lines() {
        m.apply(&parse_line(line).unwrap());
    }
    m
}

/// A Monday noon (outside any test's ingest window).
pub fn noon() -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2025, 1, 6)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
}
