//! The resync throttle end to end: the real `drbd-agent run` on the
//! SyncTarget node (bravo) against `drbd-sim serve`, in real time, with
//! `[throttle] enabled`, mode enforce and a 500 ms interval. The agent's
//! rate is read back through the simulator's `drbdsetup show --json`, its
//! state from `/v1/status` and the journal from `[state] directory`.
//!
//! Every wait is bounded; no assertion is about speed. The latency the
//! application sees while throttled is checked against the plant model in
//! `tests/throttle_latency.rs`.

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
use std::time::Duration;

use common::{http_get, poll, Cluster};
use serde_json::Value;

/// Bravo becomes SyncTarget at 3 s with 240 MiB out of sync.
const SCENARIO: &str = include_str!("data/sim/throttle.toml");
/// The scenario's configured options, KiB/s (not DRBD's defaults).
const SCENARIO_C_MAX: u64 = 90 * 1024;
const SCENARIO_C_MIN: u64 = 2 * 1024;
/// The agent's `[throttle] min-rate` and `max-rate`, KiB/s.
const MIN_RATE: u64 = 1024;
const MAX_RATE: u64 = 8 * 1024;
/// The peer device bravo is SyncTarget of: r0, alpha (node id 0), volume 0.
const PEER: &str = "r0/0/0";
const JOURNAL: &str = "throttle-journal.json";
const CORRUPT: &str = "throttle-journal.json.corrupt";

/// Most waits end after this long.
const BOUND: Duration = Duration::from_secs(60);
/// The whole throttled resync (about 30 s at 8 MiB/s) ends within this.
const RESYNC_BOUND: Duration = Duration::from_secs(120);
const EVERY: Duration = Duration::from_millis(100);

fn agent_config(state: &Path, enabled: bool) -> String {
    format!(
        "[state]\n\
         directory = \"{}\"\n\
         [throttle]\n\
         enabled = {enabled}\n\
         mode = \"enforce\"\n\
         interval = \"500ms\"\n\
         min-rate = \"1MiB/s\"\n\
         max-rate = \"8MiB/s\"\n",
        state.display()
    )
}

/// The simulator plus an agent on bravo with throttling enabled.
fn start(state: &Path) -> Cluster {
    Cluster::start_node(SCENARIO, "bravo", "1s", &agent_config(state, true))
}

/// A `show --json` size (`"92160k"`) in KiB.
fn kib(value: &Value) -> u64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a size: {value}"));
    text.strip_suffix('k')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a size in KiB: {text:?}"))
}

/// (c-max-rate, c-min-rate) in force on bravo for r0/alpha/0, as the
/// simulator's `drbdsetup show --json` prints them.
fn options(cluster: &Cluster) -> (u64, u64) {
    let (code, stdout, stderr) = cluster.tool("drbdsetup", &["show", "--json", "r0"]);
    assert_eq!(code, 0, "show --json failed: {stderr}");
    let show: Value = serde_json::from_str(&stdout).expect("show --json is JSON");
    let connection = show[0]["connections"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["_peer_node_id"] == 0))
        .unwrap_or_else(|| panic!("no connection to alpha in {stdout}"));
    let disk = &connection["volumes"][0]["disk"];
    (kib(&disk["c-max-rate"]), kib(&disk["c-min-rate"]))
}

/// `/v1/status` `throttle` (panics if either process died).
fn throttle(cluster: &mut Cluster) -> Option<Value> {
    cluster.agent.assert_running();
    cluster.sim.assert_running();
    cluster.status().map(|s| s["throttle"].clone())
}

fn count(throttle: &Value, field: &str) -> u64 {
    throttle[field]
        .as_u64()
        .unwrap_or_else(|| panic!("throttle.{field} is not a count: {throttle}"))
}

/// Whether the agent's model has bravo as SyncTarget of r0.
fn resyncing(cluster: &Cluster) -> Option<bool> {
    let status = cluster.status()?;
    let connections = status["resources"]["r0"]["connections"].as_object()?;
    Some(connections.values().any(|c| {
        c["peer_devices"].as_object().is_some_and(|pds| {
            pds.values().any(|pd| {
                matches!(
                    pd["replication"].as_str(),
                    Some("SyncTarget" | "PausedSyncT")
                )
            })
        })
    }))
}

/// Waits until the agent is in charge: its status shows the rate it set
/// and `show --json` shows that rate with c-min-rate 0. Returns the rate.
fn wait_in_charge(cluster: &mut Cluster) -> u64 {
    poll(BOUND, EVERY, "the agent to take charge of r0/0/0", || {
        let t = throttle(cluster)?;
        let rate = t["peers"][PEER]["rate_set_kib"].as_u64()?;
        (options(cluster) == (rate, 0)).then_some(rate)
    })
}

/// The journal's only entry: (node, c_max_rate_kib, c_min_rate_kib).
fn journal_entry(state: &Path) -> (String, u64, u64) {
    let text = std::fs::read_to_string(state.join(JOURNAL)).expect("the journal exists");
    let journal: Value = serde_json::from_str(&text).expect("the journal is JSON");
    let entries = journal["entries"].as_array().expect("journal entries");
    assert_eq!(entries.len(), 1, "{text}");
    let e = &entries[0];
    assert_eq!(
        (&e["resource"], &e["peer_node_id"], &e["volume"]),
        (&Value::from("r0"), &Value::from(0), &Value::from(0)),
        "{text}"
    );
    (
        journal["node"].as_str().unwrap_or_default().to_owned(),
        e["c_max_rate_kib"].as_u64().expect("c_max_rate_kib"),
        e["c_min_rate_kib"].as_u64().expect("c_min_rate_kib"),
    )
}

fn assert_agent_rate(rate: u64) {
    assert!(
        (MIN_RATE..=MAX_RATE).contains(&rate),
        "rate {rate} KiB/s outside [min-rate, max-rate]"
    );
    assert_ne!(rate, SCENARIO_C_MAX);
}

#[test]
fn throttling_happens_and_ends_with_the_resync() {
    let state = tempfile::tempdir().expect("state dir");
    let mut cluster = start(state.path());
    let rate = wait_in_charge(&mut cluster);
    assert_agent_rate(rate);
    assert_eq!(resyncing(&cluster), Some(true));
    assert_eq!(
        journal_entry(state.path()),
        ("bravo".to_owned(), SCENARIO_C_MAX, SCENARIO_C_MIN),
        "the journal holds the options in force before the agent"
    );
    let t = throttle(&mut cluster).expect("status");
    assert_eq!(t["enabled"], true, "{t}");
    assert_eq!(t["mode"], "enforce", "{t}");
    assert_eq!(t["peers"][PEER]["resource"], "r0", "{t}");
    assert!(t["peers"][PEER]["decision"].is_object(), "{t}");

    let t = poll(RESYNC_BOUND, EVERY, "the resync to end", || {
        let t = throttle(&mut cluster)?;
        (!resyncing(&cluster)? && count(&t, "restores") >= 1).then_some(t)
    });
    assert_eq!(count(&t, "restores"), 1, "{t}");
    assert_eq!(t["peers"].as_object().map(|p| p.len()), Some(0), "{t}");
    assert_eq!(count(&t, "failures"), 0, "{t}");
    assert_eq!(count(&t, "journal_errors"), 0, "{t}");
    assert_eq!(options(&cluster), (SCENARIO_C_MAX, SCENARIO_C_MIN));
    assert!(
        !state.path().join(JOURNAL).exists(),
        "the journal is removed once everything is restored"
    );
}

#[test]
fn sigkill_mid_resync_is_repaired_at_the_next_start() {
    let state = tempfile::tempdir().expect("state dir");
    let mut cluster = start(state.path());
    let rate = wait_in_charge(&mut cluster);
    assert_agent_rate(rate);

    cluster.kill_agent();
    assert_eq!(
        options(&cluster),
        (rate, 0),
        "a killed agent leaves its rate in force"
    );
    assert_eq!(
        journal_entry(state.path()),
        ("bravo".to_owned(), SCENARIO_C_MAX, SCENARIO_C_MIN)
    );

    // Enabled again: the journal is restored first, then the agent takes
    // charge anew and records the scenario's options, not its own rate.
    cluster.restart_agent(&agent_config(state.path(), true));
    let again = wait_in_charge(&mut cluster);
    assert_agent_rate(again);
    let t = throttle(&mut cluster).expect("status");
    assert_eq!(count(&t, "restores"), 1, "{t}");
    assert_eq!(count(&t, "journal_errors"), 0, "{t}");
    assert_eq!(
        journal_entry(state.path()),
        ("bravo".to_owned(), SCENARIO_C_MAX, SCENARIO_C_MIN),
        "the restart recorded the options restored from the journal"
    );

    // Disabled: the journal is restored and nothing is throttled.
    cluster.kill_agent();
    assert_eq!(options(&cluster), (again, 0));
    cluster.restart_agent(&agent_config(state.path(), false));
    let t = poll(BOUND, EVERY, "the journal to be restored", || {
        let t = throttle(&mut cluster)?;
        (count(&t, "restores") >= 1).then_some(t)
    });
    assert_eq!(t["enabled"], false, "{t}");
    assert_eq!(count(&t, "restores"), 1, "{t}");
    assert_eq!(count(&t, "journal_errors"), 0, "{t}");
    assert_eq!(options(&cluster), (SCENARIO_C_MAX, SCENARIO_C_MIN));
    assert!(!state.path().join(JOURNAL).exists());
    // A few intervals later, still nothing taken in charge.
    std::thread::sleep(Duration::from_millis(1500));
    let t = throttle(&mut cluster).expect("status");
    assert_eq!(t["peers"].as_object().map(|p| p.len()), Some(0), "{t}");
    assert_eq!(options(&cluster), (SCENARIO_C_MAX, SCENARIO_C_MIN));
    assert!(!state.path().join(JOURNAL).exists());
}

#[test]
fn drbdadm_adjust_is_noticed_and_undone_and_sigterm_restores() {
    let state = tempfile::tempdir().expect("state dir");
    let mut cluster = start(state.path());
    let rate = wait_in_charge(&mut cluster);
    assert_agent_rate(rate);
    let t = throttle(&mut cluster).expect("status");
    assert_eq!(count(&t, "reverts"), 0, "{t}");

    // The agent reads the options back every 5 intervals; a rate change in
    // between overwrites an adjust without noticing it (harmless: its rate
    // is in force again), so adjust again until a read-back catches one.
    let mut adjusts = 0;
    let t = poll(
        BOUND,
        Duration::from_millis(500),
        "a revert to be counted",
        || {
            let t = throttle(&mut cluster)?;
            if count(&t, "reverts") >= 1 {
                return Some(t);
            }
            let rate = t["peers"][PEER]["rate_set_kib"].as_u64()?;
            if adjusts == 0 || options(&cluster) == (rate, 0) {
                let (code, _, stderr) = cluster.tool("drbdadm", &["adjust", "r0"]);
                assert_eq!(code, 0, "drbdadm adjust failed: {stderr}");
                adjusts += 1;
            }
            None
        },
    );
    assert!(
        t["peers"][PEER]["reverts"].as_u64() >= Some(1),
        "the peer device counts the revert: {t}"
    );
    let again = wait_in_charge(&mut cluster);
    assert_agent_rate(again);
    assert_eq!(
        journal_entry(state.path()),
        ("bravo".to_owned(), SCENARIO_C_MAX, SCENARIO_C_MIN),
        "the journal still holds the options from before the agent"
    );

    // SIGTERM mid-resync: the options are given back before the exit.
    assert_eq!(resyncing(&cluster), Some(true));
    let exit = cluster.terminate_agent();
    assert!(exit.success(), "the agent exited with {exit}");
    assert_eq!(options(&cluster), (SCENARIO_C_MAX, SCENARIO_C_MIN));
    assert!(!state.path().join(JOURNAL).exists());
}

#[test]
fn foreign_or_corrupt_journals_are_set_aside() {
    let state = tempfile::tempdir().expect("state dir");
    let foreign = r#"{"version":1,"node":"alpha","entries":[{"resource":"r0","peer_node_id":0,"volume":0,"c_max_rate_kib":1234,"c_min_rate_kib":7}]}"#;
    std::fs::write(state.path().join(JOURNAL), foreign).expect("write journal");
    let mut cluster = start(state.path());

    let t = poll(BOUND, EVERY, "the foreign journal to be noticed", || {
        let t = throttle(&mut cluster)?;
        (count(&t, "journal_errors") >= 1).then_some(t)
    });
    assert_eq!(count(&t, "journal_errors"), 1, "{t}");
    assert_eq!(count(&t, "restores"), 0, "nothing restored from it: {t}");
    let error = t["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("alpha"), "{t}");
    assert_eq!(
        std::fs::read_to_string(state.path().join(CORRUPT)).expect("set aside"),
        foreign
    );
    // Still running and throttling, from the options really in force.
    let rate = wait_in_charge(&mut cluster);
    assert_agent_rate(rate);
    assert_eq!(
        journal_entry(state.path()),
        ("bravo".to_owned(), SCENARIO_C_MAX, SCENARIO_C_MIN)
    );
    assert_eq!(
        http_get(cluster.addr, "/healthz")
            .map(|(code, _)| code)
            .ok(),
        Some(200)
    );
    let exit = cluster.terminate_agent();
    assert!(exit.success(), "the agent exited with {exit}");
    assert_eq!(options(&cluster), (SCENARIO_C_MAX, SCENARIO_C_MIN));

    let garbage = "{\"version\": 1, \"node\": \"bravo\", \"entr";
    std::fs::write(state.path().join(JOURNAL), garbage).expect("write journal");
    cluster.restart_agent(&agent_config(state.path(), true));
    let t = poll(BOUND, EVERY, "the corrupt journal to be noticed", || {
        let t = throttle(&mut cluster)?;
        (count(&t, "journal_errors") >= 1).then_some(t)
    });
    assert_eq!(count(&t, "journal_errors"), 1, "{t}");
    assert_eq!(count(&t, "restores"), 0, "{t}");
    assert!(
        t["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("not valid")),
        "{t}"
    );
    assert_eq!(
        std::fs::read_to_string(state.path().join(CORRUPT)).expect("set aside"),
        garbage
    );
    wait_in_charge(&mut cluster);
    assert_eq!(
        journal_entry(state.path()),
        ("bravo".to_owned(), SCENARIO_C_MAX, SCENARIO_C_MIN)
    );
    cluster.agent.assert_running();
}

#[test]
fn an_events2_restart_mid_resync_changes_no_peer_device_option() {
    let state = tempfile::tempdir().expect("state dir");
    let mut cluster = start(state.path());
    let rate = wait_in_charge(&mut cluster);
    assert_agent_rate(rate);
    let before = throttle(&mut cluster).expect("status");
    let agent = cluster.status().expect("status")["agent"].clone();
    let pid = agent["child_pid"].as_u64().expect("events2 child pid");
    let restarts = agent["child_restarts"].as_u64().expect("restarts");

    // The events2 child dies: the agent keeps its model (stale), restarts
    // the stream after its backoff and swaps the new dump in.
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let mut stale_seen = false;
    poll(
        BOUND,
        Duration::from_millis(50),
        "the new stream's dump",
        || {
            let status = cluster.status()?;
            let agent = &status["agent"];
            let t = &status["throttle"];
            assert_eq!(count(t, "restores"), count(&before, "restores"), "{t}");
            let again = agent["child_restarts"].as_u64()? > restarts
                && agent["model_stale"] == false
                && agent["drbd_reachable"] == true;
            if again {
                return Some(());
            }
            // At every look until then: the agent's rate held, c-min-rate 0.
            assert_eq!(options(&cluster), (rate, 0), "{agent}");
            assert_eq!(t["peers"][PEER]["rate_set_kib"], rate, "{t}");
            if agent["model_stale"] == true {
                stale_seen = true;
                assert!(status["resources"]["r0"].is_object(), "r0 kept while stale");
            }
            None
        },
    );
    assert!(stale_seen, "the stale period was seen");
    // Resumed: the same journal entry (no restore, no new record), still
    // in charge (never the configured options back).
    for _ in 0..10 {
        let (c_max, c_min) = options(&cluster);
        assert_eq!(c_min, 0);
        assert_ne!(c_max, SCENARIO_C_MAX, "restored and retaken");
        std::thread::sleep(Duration::from_millis(200));
    }
    let t = throttle(&mut cluster).expect("status");
    assert_eq!(count(&t, "restores"), count(&before, "restores"), "{t}");
    assert_eq!(count(&t, "failures"), 0, "{t}");
    assert_eq!(
        journal_entry(state.path()),
        ("bravo".to_owned(), SCENARIO_C_MAX, SCENARIO_C_MIN)
    );
}
