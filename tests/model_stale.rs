//! Lost events and stream restarts never blank what the daemon serves:
//! the real daemon (in process) with a fake `drbdsetup`, read over HTTP as
//! an operator's Prometheus and `drbd-agent status` read it.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drbd_agent::config::{ApiConfig, Config, DrbdConfig};
use drbd_agent::daemon::Daemon;
use serde_json::Value;

const FIXTURE: &str = "tests/data/events2/resync-3node.statistics.txt";
const RESOURCES: usize = 8;

/// The fixture's dump (up to, without, `exists -`) for r0, renamed to `name`.
fn dump_of(name: &str) -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)).unwrap();
    let end = text.find("exists -\n").unwrap();
    text[..end].replace("name:r0 ", &format!("name:{name} "))
}

/// A dump of `names` ending in `exists -`.
fn dump(names: &[String]) -> String {
    let mut out: String = names.iter().map(|n| dump_of(n)).collect();
    out.push_str("exists -\n");
    out
}

fn names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("res{i}")).collect()
}

/// A fake drbdsetup in `dir`: `--now` prints `now.txt`; the Nth stream
/// sleeps `run-N.delay` seconds, prints `run-N.txt` (else `run.txt`), exits
/// with `run-N.exit` if present, else answers polls until stdin closes.
fn fake(dir: &Path) -> PathBuf {
    let path = dir.join("drbdsetup");
    let d = dir.display();
    let body = format!(
        "#!/bin/sh\nD='{d}'\ncase \"$*\" in *--now*) echo dump >> \"$D/dumps\"; cat \"$D/now.txt\"; exit 0;; esac\n\
         n=$(cat \"$D/runs\" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > \"$D/runs\"\n\
         if [ -f \"$D/run-$n.delay\" ]; then sleep \"$(cat \"$D/run-$n.delay\")\"; fi\n\
         if [ -f \"$D/run-$n.txt\" ]; then cat \"$D/run-$n.txt\"; else cat \"$D/run.txt\"; fi\n\
         if [ -f \"$D/run-$n.exit\" ]; then exit \"$(cat \"$D/run-$n.exit\")\"; fi\n\
         while read -r line; do :; done\n"
    );
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn config(drbdsetup: PathBuf) -> Config {
    Config {
        node_name: "alpha".to_owned(),
        log_level: None,
        drbd: DrbdConfig {
            drbdsetup,
            drbdadm: PathBuf::from("/nonexistent/drbdadm"),
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
    }
}

struct Views {
    metrics: String,
    status: Value,
}

async fn look(client: &reqwest::Client, daemon: &Daemon) -> Views {
    let base = format!("http://{}", daemon.api_addrs[0]);
    // Status first, then /metrics.
    let status = client
        .get(format!("{base}/v1/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Views { metrics, status }
}

/// The resources on /metrics (`drbd_resource_role`) and in /v1/status.
fn served(views: &Views) -> (Vec<String>, Vec<String>) {
    let mut on_metrics: Vec<String> = views
        .metrics
        .lines()
        .filter_map(|l| l.strip_prefix("drbd_resource_role{name=\""))
        .filter_map(|l| l.split('"').next())
        .map(str::to_owned)
        .collect();
    on_metrics.sort();
    on_metrics.dedup();
    let in_status = views.status["resources"]
        .as_object()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    (on_metrics, in_status)
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_events_after_every_dump_never_blank_the_served_state() {
    let dir = tempfile::tempdir().unwrap();
    let all = names(RESOURCES);
    // Every stream: the dump, then events lost, then more lines.
    let stream = format!(
        "{}- skipped 3\nchange resource name:res0 role:Secondary\n",
        dump(&all)
    );
    std::fs::write(dir.path().join("run.txt"), &stream).unwrap();
    std::fs::write(dir.path().join("now.txt"), dump(&all)).unwrap();
    let daemon = Daemon::start(&config(fake(dir.path()))).await.unwrap();
    let client = reqwest::Client::new();
    let expected = sorted(all.clone());

    // Within 2 s every resource is served (bound generous only for the
    // daemon's start; the check itself is each look's content).
    let started = Instant::now();
    let first = loop {
        let views = look(&client, &daemon).await;
        let (m, s) = served(&views);
        if m == expected && s == expected {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never served all resources: metrics {m:?}, status {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        first < Duration::from_secs(2),
        "first served after {first:?}"
    );

    // ... and stays for 30 s, at every look.
    let until = Instant::now() + Duration::from_secs(30);
    let mut looks = 0;
    while Instant::now() < until {
        let views = look(&client, &daemon).await;
        let (m, s) = served(&views);
        assert_eq!(m, expected, "metrics after {looks} looks");
        assert_eq!(s, expected, "status after {looks} looks");
        looks += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let views = look(&client, &daemon).await;
    let agent = &views.status["agent"];
    assert_eq!(agent["events_lost"], 1, "{agent}");
    assert_eq!(agent["lost_event_dumps"], 1, "{agent}");
    assert_eq!(agent["child_restarts"], 0, "no restart loop: {agent}");
    assert_eq!(agent["model_stale"], false, "{agent}");
    assert_eq!(agent["initial_dump_done"], true, "{agent}");
    assert_eq!(
        gauge(&views.metrics, "drbd_agent_events_lost_total"),
        Some(1.0)
    );
    assert_eq!(gauge(&views.metrics, "drbd_agent_model_stale"), Some(0.0));
    assert_eq!(gauge(&views.metrics, "drbd_agent_drbd_up"), Some(1.0));
    let runs = std::fs::read_to_string(dir.path().join("runs")).unwrap();
    assert_eq!(runs.trim(), "1", "one stream for the whole test");
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_restart_serves_the_last_state_marked_stale_then_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let all = names(RESOURCES);
    // The first stream exits after its dump; the second starts slowly and
    // no longer has the last resource.
    std::fs::write(dir.path().join("run-1.txt"), dump(&all)).unwrap();
    std::fs::write(dir.path().join("run-1.exit"), "1").unwrap();
    std::fs::write(dir.path().join("run-2.delay"), "4").unwrap();
    let fewer = all[..RESOURCES - 1].to_vec();
    std::fs::write(dir.path().join("run-2.txt"), dump(&fewer)).unwrap();
    std::fs::write(dir.path().join("now.txt"), dump(&fewer)).unwrap();
    let daemon = Daemon::start(&config(fake(dir.path()))).await.unwrap();
    let client = reqwest::Client::new();
    let bound = Instant::now() + Duration::from_secs(30);

    // Stale: the first stream ended, the second has not dumped yet.
    let stale = loop {
        let views = look(&client, &daemon).await;
        // A scrape may serve the part published last while a refresh is
        // in flight (at most that refresh behind): wait for both views.
        if views.status["agent"]["model_stale"] == true
            && gauge(&views.metrics, "drbd_agent_model_stale") == Some(1.0)
        {
            break views;
        }
        assert!(
            Instant::now() < bound,
            "never stale: {}",
            views.status["agent"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (m, s) = served(&stale);
    assert_eq!(
        m,
        sorted(all.clone()),
        "the last state stays on /metrics: {}",
        stale.metrics
    );
    assert_eq!(s, sorted(all.clone()), "and in /v1/status");
    assert_eq!(gauge(&stale.metrics, "drbd_agent_model_stale"), Some(1.0));
    assert_eq!(gauge(&stale.metrics, "drbd_agent_drbd_up"), Some(0.0));
    assert!(gauge(&stale.metrics, "drbd_agent_model_stale_seconds").is_some());
    let agent = &stale.status["agent"];
    assert!(agent["stale_since"].is_string(), "{agent}");
    assert_eq!(agent["stale_reason"], "exited: exit code 1", "{agent}");
    let table = drbd_agent::api::render_status(&stale.status);
    assert!(
        table.contains("STALE: showing the state as of") && table.contains("exit code 1"),
        "{table}"
    );

    // While the second stream is slow, every look still serves everything.
    let mut stale_looks = 0;
    let fresh = loop {
        let views = look(&client, &daemon).await;
        if views.status["agent"]["model_stale"] == false
            && gauge(&views.metrics, "drbd_agent_model_stale") == Some(0.0)
        {
            break views;
        }
        let (m, s) = served(&views);
        if views.status["agent"]["model_stale"] == true {
            assert_eq!(s, sorted(all.clone()), "a stale status shows everything");
        }
        // /metrics was read after the status: the new dump may have come
        // in between; its own stale gauge says which state it shows.
        if gauge(&views.metrics, "drbd_agent_model_stale") == Some(1.0) {
            assert_eq!(m, sorted(all.clone()), "{}", views.metrics);
        }
        stale_looks += 1;
        assert!(Instant::now() < bound, "never fresh again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        stale_looks > 5,
        "the stale period was seen ({stale_looks} looks)"
    );
    // The new dump replaced it at once: the missing resource is gone.
    let (m, s) = served(&fresh);
    assert_eq!(m, sorted(fewer.clone()));
    assert_eq!(s, sorted(fewer.clone()));
    let gone = format!("name=\"{}\"", all[RESOURCES - 1]);
    let left: Vec<&str> = fresh
        .metrics
        .lines()
        .filter(|l| l.contains(&gone) && !l.starts_with("drbd_agent_"))
        .collect();
    assert!(left.is_empty(), "DRBD series of {gone} at once: {left:?}");
    // The network watcher follows the model every 250 ms.
    let network_bound = Instant::now() + Duration::from_secs(5);
    loop {
        let views = look(&client, &daemon).await;
        if !views.metrics.contains(&gone) {
            break;
        }
        assert!(
            Instant::now() < network_bound,
            "network series of {gone} stay"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gauge(&fresh.metrics, "drbd_agent_model_stale"), Some(0.0));
    assert_eq!(
        gauge(&fresh.metrics, "drbd_agent_model_stale_seconds"),
        None
    );
    assert_eq!(
        gauge(&fresh.metrics, "drbd_agent_model_rebuilds_total"),
        Some(1.0)
    );
    assert_eq!(
        gauge(&fresh.metrics, "drbd_agent_events2_restarts_total"),
        Some(1.0)
    );
    assert!(fresh.status["agent"]["stale_since"].is_null());
    assert!(!drbd_agent::api::render_status(&fresh.status).contains("STALE"));
    daemon.shutdown().await;
}
