//! What the agent writes to LINSTOR's key-value store, as a pure function
//! of the model and the throttle status, and the batch that brings the
//! store from what was sent last to what should be there now.
//!
//! Layout (instance `[linstor] instance`, default `drbd-agent`), one
//! namespace per node so that agents never overwrite each other:
//!
//! ```text
//! <node>/heartbeat-unix-seconds                  time of the report
//! <node>/agent-version                           drbd-agent version
//! <node>/model                                   current, stale (kept from before a
//!                                                stream restart or lost events) or
//!                                                reading (before the first dump)
//! <node>/model-stale-since-unix-seconds          while stale
//! <node>/<resource>/<peer>/connection-state      Connected, Connecting...
//! <node>/<resource>/<peer>/volume-<v>/replication-state     Established, SyncTarget...
//! <node>/<resource>/<peer>/volume-<v>/out-of-sync-bytes
//! <node>/<resource>/<peer>/volume-<v>/resync-done-percent    while resyncing
//! <node>/<resource>/<peer>/volume-<v>/resync-rate-bytes-per-second   (dbdt1)
//! <node>/<resource>/<peer>/volume-<v>/resync-eta-seconds     when known
//! <node>/<resource>/<peer>/volume-<v>/resync-suspended       reasons, when suspended
//! <node>/<resource>/<peer>/volume-<v>/throttle-rate-bytes-per-second  the agent's c-max-rate
//! <node>/<resource>/<peer>/volume-<v>/throttle-latency-target-seconds
//! <node>/<resource>/<peer>/volume-<v>/throttle-latency-seconds        observed
//! <node>/<resource>/<peer>/volume-<v>/throttle-state
//! ```
//!
//! `<peer>` is the connection name (the peer's node name). Values are plain
//! decimal numbers or DRBD's words. Keys that no longer apply (a resource
//! gone, a resync ended) are deleted — but only from a model that mirrors
//! DRBD: while it is stale or not yet read, [`hold`] keeps every key sent
//! before, so objects merely not yet re-read are not deleted.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::events2::{Eta, ReplicationState};
use crate::state::Model;
use crate::throttle::ThrottleStatus;

/// The report's keys and values.
pub type Report = BTreeMap<String, String>;

/// What one request to `PUT /v1/key-value-store/{instance}` carries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Batch {
    pub override_props: BTreeMap<String, String>,
    pub delete_props: Vec<String>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.override_props.is_empty() && self.delete_props.is_empty()
    }
}

/// What the agent knows besides the model.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    pub node: &'a str,
    pub model: &'a Model,
    pub throttle: Option<&'a ThrottleStatus>,
    pub now_unix_seconds: i64,
    pub agent_version: &'a str,
}

/// Number formatting: integers as integers, others with up to 6 decimals.
fn number(value: f64) -> Option<String> {
    if !value.is_finite() {
        return None;
    }
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        return Some(format!("{value:.0}"));
    }
    let text = format!("{value:.6}");
    Some(text.trim_end_matches('0').trim_end_matches('.').to_owned())
}

/// The report for the current state.
pub fn report(input: &ReportInput<'_>) -> Report {
    let node = input.node;
    let mut out = Report::new();
    out.insert(
        format!("{node}/heartbeat-unix-seconds"),
        input.now_unix_seconds.to_string(),
    );
    out.insert(
        format!("{node}/agent-version"),
        input.agent_version.to_owned(),
    );
    for (name, resource) in input.model.resources() {
        for connection in resource.connections.values() {
            let peer = &connection.conn_name;
            let base = format!("{node}/{name}/{peer}");
            if let Some(state) = &connection.connection {
                out.insert(format!("{base}/connection-state"), state.to_string());
            }
            for (volume, pd) in &connection.peer_devices {
                let vbase = format!("{base}/volume-{volume}");
                let mut put = |key: &str, value: Option<String>| {
                    if let Some(value) = value {
                        out.insert(format!("{vbase}/{key}"), value);
                    }
                };
                put(
                    "replication-state",
                    pd.replication.as_ref().map(ToString::to_string),
                );
                put(
                    "out-of-sync-bytes",
                    pd.stats.out_of_sync.map(|kib| (kib * 1024).to_string()),
                );
                let resyncing = pd
                    .replication
                    .as_ref()
                    .is_some_and(ReplicationState::is_resync);
                if resyncing {
                    put("resync-done-percent", pd.done.and_then(number));
                    put(
                        "resync-rate-bytes-per-second",
                        pd.stats.dbdt1.and_then(|mib| number(mib * 1024.0 * 1024.0)),
                    );
                    put(
                        "resync-eta-seconds",
                        match pd.stats.eta {
                            Some(Eta::Seconds(s)) => Some(s.to_string()),
                            _ => None,
                        },
                    );
                }
                put(
                    "resync-suspended",
                    pd.resync_suspended
                        .as_ref()
                        .map(ToString::to_string)
                        .filter(|s| !s.is_empty() && s != "no"),
                );
                let Some(peer_node_id) = connection.peer_node_id else {
                    continue;
                };
                let followed = input.throttle.and_then(|t| {
                    t.peers.values().find(|p| {
                        p.resource == *name && p.peer_node_id == peer_node_id && p.volume == *volume
                    })
                });
                if let Some(followed) = followed {
                    put(
                        "throttle-rate-bytes-per-second",
                        followed.rate_set_kib.map(|kib| (kib * 1024).to_string()),
                    );
                    put(
                        "throttle-latency-target-seconds",
                        number(followed.latency_target_ms / 1000.0),
                    );
                    let decision = followed.decision.as_ref();
                    put(
                        "throttle-latency-seconds",
                        decision
                            .and_then(|d| d.latency_ms)
                            .and_then(|ms| number(ms / 1000.0)),
                    );
                    put("throttle-state", decision.map(|d| d.state.to_string()));
                }
            }
        }
    }
    out
}

/// How far the model can be trusted, for [`hold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFreshness {
    /// It mirrors DRBD.
    Current,
    /// Kept from before a stream restart or lost events, since then (Unix seconds).
    Stale { since_unix_seconds: i64 },
    /// No complete dump was read yet.
    Reading,
}

/// Marks `wanted` with the model's freshness and, unless it is current,
/// keeps every key of `sent` that `wanted` lacks: nothing is deleted on
/// the word of a model that does not mirror DRBD.
pub fn hold(sent: &Report, wanted: &mut Report, node: &str, freshness: ModelFreshness) {
    let word = match freshness {
        ModelFreshness::Current => "current",
        ModelFreshness::Stale { .. } => "stale",
        ModelFreshness::Reading => "reading",
    };
    wanted.insert(format!("{node}/model"), word.to_owned());
    if let ModelFreshness::Stale { since_unix_seconds } = freshness {
        wanted.insert(
            format!("{node}/model-stale-since-unix-seconds"),
            since_unix_seconds.to_string(),
        );
    }
    if freshness == ModelFreshness::Current {
        return;
    }
    let stale_since = format!("{node}/model-stale-since-unix-seconds");
    for (key, value) in sent {
        if *key != stale_since && !wanted.contains_key(key) {
            wanted.insert(key.clone(), value.clone());
        }
    }
}

/// The batch that turns `sent` (what the store holds from us) into
/// `wanted`: changed or new keys, and keys to delete. Unchanged keys are
/// not sent.
pub fn diff(sent: &Report, wanted: &Report) -> Batch {
    let override_props = wanted
        .iter()
        .filter(|(key, value)| sent.get(*key) != Some(*value))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let delete_props = sent
        .keys()
        .filter(|key| !wanted.contains_key(*key))
        .cloned()
        .collect();
    Batch {
        override_props,
        delete_props,
    }
}

/// What the store holds after `batch` was applied to `sent`.
pub fn apply(sent: &mut Report, batch: &Batch) {
    for key in &batch.delete_props {
        sent.remove(key);
    }
    for (key, value) in &batch.override_props {
        sent.insert(key.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events2::parse_line;

    fn model(lines: &[&str]) -> Model {
        let mut model = Model::new();
        for line in lines {
            model.apply(&parse_line(line).unwrap());
        }
        model
    }

    fn input<'a>(model: &'a Model, now: i64) -> ReportInput<'a> {
        ReportInput {
            node: "alpha",
            model,
            throttle: None,
            now_unix_seconds: now,
            agent_version: "0.1.0",
        }
    }

    const SYNCING: &[&str] = &[
        "exists resource name:r0 role:Secondary suspended:no",
        "exists connection name:r0 peer-node-id:1 conn-name:bravo connection:Connected role:Primary",
        "exists peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 replication:SyncTarget peer-disk:UpToDate resync-suspended:no done:12.50 out-of-sync:1024 dbdt1:2.00 eta:30",
        "exists -",
    ];

    #[test]
    fn a_resync_in_progress() {
        let model = model(SYNCING);
        let report = report(&input(&model, 1000));
        let get = |k: &str| report.get(k).map(String::as_str);
        assert_eq!(get("alpha/heartbeat-unix-seconds"), Some("1000"));
        assert_eq!(get("alpha/r0/bravo/connection-state"), Some("Connected"));
        assert_eq!(
            get("alpha/r0/bravo/volume-0/replication-state"),
            Some("SyncTarget")
        );
        assert_eq!(
            get("alpha/r0/bravo/volume-0/out-of-sync-bytes"),
            Some("1048576")
        );
        assert_eq!(
            get("alpha/r0/bravo/volume-0/resync-done-percent"),
            Some("12.5")
        );
        assert_eq!(
            get("alpha/r0/bravo/volume-0/resync-rate-bytes-per-second"),
            Some("2097152")
        );
        assert_eq!(
            get("alpha/r0/bravo/volume-0/resync-eta-seconds"),
            Some("30")
        );
        assert_eq!(get("alpha/r0/bravo/volume-0/resync-suspended"), None);
    }

    #[test]
    fn only_changes_are_sent_and_gone_keys_deleted() {
        let before = report(&input(&model(SYNCING), 1000));
        let mut sent = Report::new();
        let first = diff(&sent, &before);
        assert_eq!(first.override_props.len(), before.len());
        apply(&mut sent, &first);
        assert_eq!(sent, before);
        // Nothing changed but the heartbeat.
        let again = report(&input(&model(SYNCING), 1015));
        let batch = diff(&sent, &again);
        assert_eq!(
            batch.override_props.keys().collect::<Vec<_>>(),
            ["alpha/heartbeat-unix-seconds"]
        );
        assert!(batch.delete_props.is_empty());
        // The resync ended: its keys go.
        let done = model(&[
            "exists resource name:r0 role:Secondary suspended:no",
            "exists connection name:r0 peer-node-id:1 conn-name:bravo connection:Connected role:Primary",
            "exists peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 replication:Established peer-disk:UpToDate resync-suspended:no out-of-sync:0",
            "exists -",
        ]);
        let after = report(&input(&done, 1030));
        let batch = diff(&sent, &after);
        assert!(batch
            .delete_props
            .contains(&"alpha/r0/bravo/volume-0/resync-eta-seconds".to_owned()));
        assert_eq!(
            batch
                .override_props
                .get("alpha/r0/bravo/volume-0/replication-state")
                .map(String::as_str),
            Some("Established")
        );
        apply(&mut sent, &batch);
        assert_eq!(sent, after);
        // The resource is gone: everything under it goes.
        let empty = model(&["exists -"]);
        let batch = diff(&sent, &report(&input(&empty, 1045)));
        assert!(batch
            .delete_props
            .iter()
            .all(|k| k.starts_with("alpha/r0/")));
        assert!(!batch.delete_props.is_empty());
    }

    #[test]
    fn a_model_not_mirroring_drbd_deletes_nothing() {
        let sent = report(&input(&model(SYNCING), 1000));
        let empty = Model::new();
        for freshness in [
            ModelFreshness::Reading,
            ModelFreshness::Stale {
                since_unix_seconds: 990,
            },
        ] {
            let mut wanted = report(&input(&empty, 1015));
            hold(&sent, &mut wanted, "alpha", freshness);
            let batch = diff(&sent, &wanted);
            assert_eq!(batch.delete_props, Vec::<String>::new(), "{freshness:?}");
            assert_eq!(
                batch
                    .override_props
                    .get("alpha/heartbeat-unix-seconds")
                    .map(String::as_str),
                Some("1015")
            );
            assert!(batch.override_props.contains_key("alpha/model"));
        }
        // Stale, then current again with r0 gone: now it goes, and so does
        // the stale mark.
        let mut stale = report(&input(&model(SYNCING), 1000));
        hold(
            &sent,
            &mut stale,
            "alpha",
            ModelFreshness::Stale {
                since_unix_seconds: 990,
            },
        );
        assert_eq!(
            stale
                .get("alpha/model-stale-since-unix-seconds")
                .map(String::as_str),
            Some("990")
        );
        let mut current = report(&input(&model(&["exists -"]), 1030));
        hold(&stale, &mut current, "alpha", ModelFreshness::Current);
        let batch = diff(&stale, &current);
        assert!(batch
            .delete_props
            .contains(&"alpha/model-stale-since-unix-seconds".to_owned()));
        assert!(batch
            .delete_props
            .iter()
            .any(|k| k.starts_with("alpha/r0/")));
        assert_eq!(
            current.get("alpha/model").map(String::as_str),
            Some("current")
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(number(3.0).as_deref(), Some("3"));
        assert_eq!(number(0.0305).as_deref(), Some("0.0305"));
        assert_eq!(number(f64::NAN), None);
        assert_eq!(number(f64::INFINITY), None);
    }

    proptest::proptest! {
        #[test]
        fn diff_then_apply_reaches_the_wanted_report(
            sent in proptest::collection::btree_map("[a-c]{1,2}", "[0-9]{1,2}", 0..8),
            wanted in proptest::collection::btree_map("[a-c]{1,2}", "[0-9]{1,2}", 0..8),
        ) {
            let batch = diff(&sent, &wanted);
            let mut store = sent.clone();
            apply(&mut store, &batch);
            proptest::prop_assert_eq!(&store, &wanted);
            for (key, value) in &batch.override_props {
                proptest::prop_assert_ne!(sent.get(key), Some(value));
            }
        }
    }
}
