//! The daemon serves /metrics with `drbd_version` from `drbdadm --version`
//! and the model fed by its events2 child (both fake scripts here).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use drbd_agent::config::{ApiConfig, Config, DrbdConfig};
use drbd_agent::daemon::Daemon;

const BOUND: Duration = Duration::from_secs(20);

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn daemon_metrics_with_drbd_version() {
    let dir = tempfile::tempdir().unwrap();
    let story = dir.path().join("story.txt");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/events2/resync-3node.statistics.txt"),
        &story,
    )
    .unwrap();
    // events2: the story, then answer polls until stdin closes.
    let drbdsetup = script(
        dir.path(),
        "drbdsetup",
        &format!(
            "case \"$*\" in *--now*) cat '{0}'; exit 0;; esac\ncat '{0}'\nwhile read -r line; do :; done\n",
            story.display()
        ),
    );
    let drbdadm = script(
        dir.path(),
        "drbdadm",
        "printf 'DRBDADM_API_VERSION=2\\nDRBD_KERNEL_VERSION_CODE=0x090210\\nDRBD_KERNEL_VERSION=9.2.16\\nDRBDADM_VERSION=9.34.0\\n'\n",
    );
    let config = Config {
        node_name: "alpha".to_owned(),
        log_level: None,
        drbd: DrbdConfig {
            drbdsetup,
            drbdadm,
            statistics_poll_interval: Duration::from_secs(1),
            reconcile_interval: Duration::from_secs(300),
            sysfs_root: PathBuf::from("/sys"),
        },
        api: ApiConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            ..ApiConfig::default()
        },
        state: Default::default(),
        throttle: Default::default(),
        linstor: Default::default(),
        pressure: Default::default(),
        metrics: Default::default(),
        sources: Vec::new(),
    };
    let daemon = Daemon::start(&config).await.unwrap();
    let url = format!("http://{}/metrics", daemon.api_addrs[0]);
    let client = reqwest::Client::new();
    let text = tokio::time::timeout(BOUND, async {
        loop {
            let text = client.get(&url).send().await.unwrap().text().await.unwrap();
            // Up after the initial dump; the rest of the story follows.
            if text.contains("drbd_version{")
                && text.contains("drbd_agent_drbd_up 1")
                && text.contains("drbd_agent_events_total 34\n")
            {
                break text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("daemon never reported DRBD up with versions");
    assert!(text.contains("drbd_version{kmod=\"9.2.16\",utils=\"9.34.0\"} 1\n"));
    assert!(text.contains("drbd_resource_role{name=\"r0\",drbd_resource_role=\"Primary\"} 1\n"));
    assert!(text.contains("drbd_agent_events_total 34\n"), "{text}");
    assert!(text.contains("drbd_agent_last_event_age_seconds "));
    // The daemon's exporter follows the throttle (disabled by default).
    assert!(text.contains("drbd_agent_throttle_enabled 0\n"), "{text}");
    assert!(text.contains("drbd_agent_throttle_actuation_failures_total 0\n"));
    daemon.shutdown().await;
}
