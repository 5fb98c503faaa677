//! The LINSTOR report loop against a fake controller (tests/support/fake_linstor.rs):
//! reports, node check, failover, long outages, error answers, bearer
//! tokens, HTTPS with client certificates; every request checked against
//! the controller's OpenAPI schemas (tests/data/linstor/openapi-subset.json).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod fake_linstor;
}
use support::fake_linstor;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drbd_agent::config::LinstorConfig;
use drbd_agent::drbd::Shared;
use drbd_agent::events2::parse_line;
use drbd_agent::linstor::policy::{snapshot, Origin, SharedRemotePolicies, Switch};
use drbd_agent::linstor::report::{self, ReportInput};
use drbd_agent::linstor::{self, NodeCheck, ReporterOptions, SharedLinstorStatus};
use drbd_agent::runtime::CancellationToken;
use drbd_agent::throttle::SharedThrottleStatus;
use fake_linstor::{Fake, Fault, Recorded};
use serde_json::Value;
use tokio::task::JoinHandle;

const SYNCING: &[&str] = &[
    "exists resource name:r0 role:Secondary suspended:no",
    "exists connection name:r0 peer-node-id:1 conn-name:bravo connection:Connected role:Primary",
    "exists device name:r0 volume:0 minor:0 disk:Inconsistent client:no",
    "exists peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 replication:SyncTarget peer-disk:UpToDate resync-suspended:no done:12.50 out-of-sync:1024 dbdt1:2.00 eta:30",
    "exists -",
];

const SYNCED: &str = "change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 replication:Established peer-disk:UpToDate resync-suspended:no out-of-sync:0";

struct Agent {
    shared: Arc<Shared>,
    status: SharedLinstorStatus,
    policies: SharedRemotePolicies,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

fn config(controllers: Vec<String>) -> LinstorConfig {
    LinstorConfig {
        enabled: true,
        controllers,
        timeout: Duration::from_millis(700),
        connect_timeout: Duration::from_millis(500),
        report_interval: Duration::from_millis(100),
        policy_interval: Duration::from_millis(200),
        // The fake speaks plain HTTP: the default token file, if the host
        // has one, is sent and ignored by the fake (unless it plays
        // `RequireToken`).
        allow_plain_http_token: true,
        ..LinstorConfig::default()
    }
}

async fn start(config: LinstorConfig, lines: &[&str]) -> Agent {
    let shared = Arc::new(Shared::new());
    feed(&shared, lines).await;
    let status = SharedLinstorStatus::default();
    let policies = SharedRemotePolicies::default();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let task = tokio::spawn(linstor::run(
        ReporterOptions {
            node_name: "alpha".to_owned(),
            config,
            policies: policies.clone(),
        },
        shared.clone(),
        SharedThrottleStatus::default(),
        status.clone(),
        stopped,
    ));
    Agent {
        shared,
        status,
        policies,
        stop,
        task,
    }
}

impl Agent {
    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// The report the agent should have written, without the heartbeat.
    async fn wanted(&self) -> BTreeMap<String, String> {
        let state = self.shared.state.read().await;
        let mut wanted = report::report(&ReportInput {
            node: "alpha",
            model: &state.model,
            throttle: None,
            now_unix_seconds: 0,
            agent_version: env!("CARGO_PKG_VERSION"),
        });
        wanted.remove("alpha/heartbeat-unix-seconds");
        // These tests feed complete models: the report says so.
        wanted.insert("alpha/model".to_owned(), "current".to_owned());
        wanted
    }
}

async fn feed(shared: &Shared, lines: &[&str]) {
    let mut state = shared.state.write().await;
    for line in lines {
        state.model.apply(&parse_line(line).unwrap());
    }
}

/// The store's keys of node alpha, without the heartbeat.
fn reported(fake: &Fake) -> BTreeMap<String, String> {
    fake.kv("drbd-agent")
        .into_iter()
        .filter(|(k, _)| k.starts_with("alpha/") && k != "alpha/heartbeat-unix-seconds")
        .collect()
}

/// Polls `probe` every 20 ms; panics with `what` after 20 s.
async fn until(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !probe().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn until_reported(agent: &Agent, fake: &Fake, what: &str) {
    until(what, async || reported(fake) == agent.wanted().await).await;
}

fn schemas() -> Value {
    serde_json::from_str(include_str!("data/linstor/openapi-subset.json")).unwrap()
}

fn validator(schemas: &Value, name: &str) -> jsonschema::Validator {
    let root = serde_json::json!({
        "definitions": schemas["definitions"],
        "$ref": format!("#/definitions/{name}"),
    });
    jsonschema::validator_for(&root).unwrap()
}

/// Every request: GET, or PUT to the key-value store with a body that is a
/// valid KeyValueStoreModify (and uses only its properties); never the
/// expensive `/v1/view/resources`.
fn check_requests(requests: &[Recorded]) {
    let schemas = schemas();
    let modify = validator(&schemas, "KeyValueStoreModify");
    let known: Vec<&String> = schemas["definitions"]["KeyValueStoreModify"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert!(!requests.is_empty());
    for r in requests {
        assert!(!r.path.starts_with("/v1/view/resources"), "{r:?}");
        match r.method.as_str() {
            "GET" => assert!(r.body.is_none(), "{r:?}"),
            "PUT" => {
                assert!(r.path.starts_with("/v1/key-value-store/"), "{r:?}");
                let body = r.body.as_ref().expect("a JSON body");
                let errors: Vec<String> = modify.iter_errors(body).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{errors:?} in {body}");
                for key in body.as_object().unwrap().keys() {
                    assert!(known.contains(&key), "unknown property {key} in {body}");
                }
            }
            other => panic!("method {other} used: {r:?}"),
        }
    }
}

#[test]
fn the_fake_answers_as_the_spec_says() {
    let schemas = schemas();
    let rc = validator(&schemas, "ApiCallRcList");
    assert!(rc.is_valid(&serde_json::from_str(fake_linstor::ERROR_BODY).unwrap()));
    let version = validator(&schemas, "ControllerVersion");
    assert!(
        version.is_valid(&serde_json::json!({"version": "1.28.0", "rest_api_version": "1.28.0"}))
    );
    // The checker can fail.
    assert!(!rc.is_valid(&serde_json::json!([{"message": "no ret_code"}])));
    let modify = validator(&schemas, "KeyValueStoreModify");
    assert!(!modify.is_valid(&serde_json::json!({"override_props": {"a": 1}})));
    let groups = validator(&schemas, "ResourceGroupList");
    assert!(groups.is_valid(&policy_groups()));
    let definitions = validator(&schemas, "ResourceDefinitionList");
    assert!(definitions.is_valid(&policy_definitions()));
    assert!(!definitions.is_valid(&serde_json::json!([{"name": "r0", "props": {"a": 1}}])));
}

fn policy_groups() -> Value {
    serde_json::json!([
        {"name": "rg-db", "description": "", "uuid": "6a1c3d2e-0000-4000-8000-000000000001",
         "props": {"Aux/drbd-agent/latency-target": "3ms", "Aux/drbd-agent/max-rate": "80MiB/s",
                   "StorPoolName": "thin"}}
    ])
}

fn policy_definitions() -> Value {
    serde_json::json!([
        {"name": "r0", "resource_group_name": "rg-db", "flags": [],
         "uuid": "6a1c3d2e-0000-4000-8000-000000000002",
         "props": {"Aux/drbd-agent/latency-target": "7ms", "DrbdOptions/Resource/quorum": "majority"}},
        {"name": "r1", "resource_group_name": "rg-db",
         "props": {"Aux/drbd-agent/throttle": "maybe"}}
    ])
}

#[tokio::test]
async fn policies_come_from_groups_and_definitions_by_gets_only() {
    let mut fake = Fake::start(&["alpha"], None).await;
    {
        let mut inner = fake.state.lock().unwrap();
        inner.groups = policy_groups();
        inner.definitions = policy_definitions();
    }
    let agent = start(config(vec![fake.url()]), SYNCING).await;
    until("the policies", async || {
        snapshot(&agent.policies).get("r0").is_some()
    })
    .await;
    let policies = snapshot(&agent.policies);
    let r0 = policies.get("r0").unwrap();
    assert_eq!(
        r0.pick(|p| p.latency_target),
        Some((Duration::from_millis(7), Origin::ResourceDefinition))
    );
    assert_eq!(
        r0.pick(|p| p.max_rate).map(|(r, o)| (r.get(), o)),
        Some((80 * 1024, Origin::ResourceGroup))
    );
    // r1's bad switch is reported (status) and ignored; the group's values stand.
    let r1 = policies.get("r1").unwrap();
    assert_eq!(r1.pick(|p| p.throttle), None::<(Switch, Origin)>);
    let status = agent.status.read().await.clone();
    assert_eq!(status.policy_resources, Some(2));
    assert_eq!(
        status.policy_problems.len(),
        1,
        "{:?}",
        status.policy_problems
    );
    assert!(status.policy_problems[0].contains("resource-definition r1"));

    // The controller goes away: the last policies stay in force.
    fake.stop().await;
    until("the refresh to fail", async || {
        agent.status.read().await.policy_error.is_some() || !agent.status.read().await.connected
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(snapshot(&agent.policies).get("r0"), Some(r0));
    // Back with a change: it arrives.
    fake.state.lock().unwrap().definitions = serde_json::json!([
        {"name": "r0", "props": {"Aux/drbd-agent/throttle": "off"}}
    ]);
    fake.restart().await;
    until("the changed policy", async || {
        snapshot(&agent.policies)
            .get("r0")
            .and_then(|p| p.pick(|p| p.throttle))
            == Some((Switch::Off, Origin::ResourceDefinition))
    })
    .await;
    agent.stop().await;
    let requests = fake.requests();
    assert!(requests
        .iter()
        .any(|r| r.path == "/v1/resource-groups" && r.method == "GET"));
    check_requests(&requests);
}

#[tokio::test]
async fn reports_arrive_and_follow_the_state() {
    let fake = Fake::start(&["alpha"], None).await;
    {
        // Left over from an earlier run: deleted; another node's: kept.
        let mut inner = fake.state.lock().unwrap();
        let store = inner.kv.entry("drbd-agent".to_owned()).or_default();
        store.insert(
            "alpha/gone/bravo/connection-state".into(),
            "Connected".into(),
        );
        store.insert("bravo/r0/alpha/connection-state".into(), "Connected".into());
    }
    let agent = start(config(vec![fake.url()]), SYNCING).await;
    until_reported(&agent, &fake, "the first report").await;
    let kv = fake.kv("drbd-agent");
    assert_eq!(
        kv.get("alpha/r0/bravo/volume-0/replication-state")
            .map(String::as_str),
        Some("SyncTarget")
    );
    assert_eq!(
        kv.get("alpha/agent-version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert!(kv.contains_key("alpha/heartbeat-unix-seconds"));
    assert!(!kv.contains_key("alpha/gone/bravo/connection-state"));
    assert!(kv.contains_key("bravo/r0/alpha/connection-state"));

    // The resync ends: its keys go, the state changes.
    feed(&agent.shared, &[SYNCED]).await;
    until_reported(&agent, &fake, "the resync's end").await;
    assert!(!fake
        .kv("drbd-agent")
        .contains_key("alpha/r0/bravo/volume-0/resync-eta-seconds"));

    // Nothing changes: later writes carry the heartbeat only.
    let before = fake.puts().len();
    until("a heartbeat", async || fake.puts().len() > before).await;
    let last = fake.puts().pop().unwrap().body.unwrap();
    let keys: Vec<&String> = last["override_props"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["alpha/heartbeat-unix-seconds"], "{last}");

    // The resource goes: every key under it goes.
    feed(&agent.shared, &["destroy resource name:r0"]).await;
    until("the resource's keys to go", async || {
        !fake
            .kv("drbd-agent")
            .keys()
            .any(|k| k.starts_with("alpha/r0/"))
    })
    .await;

    let status = agent.status.read().await.clone();
    assert!(status.connected && status.up());
    assert_eq!(status.node_check, NodeCheck::Ok);
    assert_eq!(status.controller_version.as_deref(), Some("1.28.0"));
    assert!(status.last_report_unix_seconds.is_some());
    assert!(status.requests["key_value_store"]["ok"] >= 3);
    agent.stop().await;
    check_requests(&fake.requests());
}

#[tokio::test]
async fn an_unknown_node_is_named_and_nothing_is_written() {
    let fake = Fake::start(&["bravo"], None).await;
    let agent = start(config(vec![fake.url()]), SYNCING).await;
    until("the node check", async || {
        agent.status.read().await.node_check == NodeCheck::NotANode
    })
    .await;
    let status = agent.status.read().await.clone();
    assert!(!status.up());
    let error = status.last_error.unwrap_or_default();
    assert!(
        error.contains("node alpha is not a LINSTOR node"),
        "{error}"
    );
    assert!(fake.puts().is_empty());
    assert!(status.requests["nodes"]["http_404"] >= 1);
    // The node is added: the agent notices on its next try.
    fake.state.lock().unwrap().nodes.insert("alpha".into());
    until_reported(&agent, &fake, "the report once the node exists").await;
    assert_eq!(agent.status.read().await.node_check, NodeCheck::Ok);
    agent.stop().await;
    check_requests(&fake.requests());
}

#[tokio::test]
async fn fails_over_to_the_controller_that_answers_and_sticks_to_it() {
    let mut first = Fake::start(&["alpha"], None).await;
    let second = Fake::start_sharing(first.state.clone(), None).await;
    let agent = start(config(vec![first.url(), second.url()]), SYNCING).await;
    until_reported(&agent, &first, "the report to the first controller").await;
    assert!(second.requests().is_empty());

    first.stop().await;
    feed(&agent.shared, &[SYNCED]).await;
    until_reported(&agent, &second, "the report to the second controller").await;
    let status = agent.status.read().await.clone();
    assert_eq!(status.controller.as_deref(), Some(second.url().as_str()));
    assert!(status.connected);

    // The first comes back: the agent stays where it is.
    first.restart().await;
    let puts_before = first.puts().len();
    feed(&agent.shared, &["destroy resource name:r0"]).await;
    until_reported(&agent, &second, "the next report").await;
    assert_eq!(first.puts().len(), puts_before);
    agent.stop().await;
    check_requests(&first.requests());
    check_requests(&second.requests());
}

#[tokio::test]
async fn a_long_outage_ends_with_one_catch_up_write() {
    let mut fake = Fake::start(&["alpha"], None).await;
    let agent = start(config(vec![fake.url()]), SYNCING).await;
    until_reported(&agent, &fake, "the first report").await;
    fake.stop().await;
    until("the outage to be noticed", async || {
        !agent.status.read().await.connected
    })
    .await;
    // Many changes while the controller is away; only the last counts.
    for kib in 1..=200u64 {
        feed(&agent.shared, &[&format!("change peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 out-of-sync:{kib}")]).await;
        if kib % 40 == 0 {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
    until("several failed attempts", async || {
        agent
            .status
            .read()
            .await
            .requests
            .get("controller_version")
            .and_then(|r| r.get("network"))
            .copied()
            .unwrap_or(0)
            >= 3
    })
    .await;
    let puts_before = fake.puts().len();
    fake.restart().await;
    until("the catch-up write", async || {
        fake.puts().len() > puts_before
    })
    .await;
    // The first write after the outage brings the store to the latest state.
    let catch_up = &fake.puts()[puts_before];
    assert_eq!(
        catch_up.body.as_ref().unwrap()["override_props"]
            ["alpha/r0/bravo/volume-0/out-of-sync-bytes"],
        Value::String((200 * 1024).to_string())
    );
    assert_eq!(reported(&fake), agent.wanted().await);
    let status = agent.status.read().await.clone();
    assert_eq!(status.reported_keys, fake.kv("drbd-agent").len());
    assert!(status.connected);
    agent.stop().await;
    check_requests(&fake.requests());
}

#[tokio::test]
async fn error_answers_are_logged_with_cause_and_correction() {
    let fake = Fake::start(&["alpha"], None).await;
    fake.set_fault(Fault::Error500);
    let agent = start(config(vec![fake.url()]), SYNCING).await;
    until("the error", async || {
        agent.status.read().await.last_error.is_some()
    })
    .await;
    let status = agent.status.read().await.clone();
    let error = status.last_error.clone().unwrap();
    assert!(error.contains("HTTP 500"), "{error}");
    assert!(
        error.contains("Database error; cause: The database is locked; correction: Retry later."),
        "{error}"
    );
    assert!(status.requests["controller_version"]["http_500"] >= 1);
    assert!(!status.connected || !status.up());
    fake.set_fault(Fault::None);
    until_reported(&agent, &fake, "the report after the errors").await;
    assert!(agent.status.read().await.last_error.is_none());
    agent.stop().await;
}

#[tokio::test]
async fn a_bearer_token_is_sent_and_reread_after_401() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("auth.json");
    std::fs::write(&token, "{\"token\": \"old\"}").unwrap();
    let fake = Fake::start(&["alpha"], None).await;
    fake.set_fault(Fault::RequireToken);
    let mut config = config(vec![fake.url()]);
    config.bearer_token_file = Some(token.clone());
    let agent = start(config, SYNCING).await;
    until("the 401", async || {
        agent
            .status
            .read()
            .await
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 401"))
    })
    .await;
    let error = agent.status.read().await.last_error.clone().unwrap();
    assert!(
        error.contains("WWW-Authenticate: Bearer realm=\"linstor-controller\""),
        "{error}"
    );
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.authorization.as_deref() == Some("Bearer old")));
    std::fs::write(&token, "{\"token\": \"s3cret\"}").unwrap();
    until_reported(&agent, &fake, "the report with the new token").await;
    agent.stop().await;
    check_requests(&fake.requests());
}

#[tokio::test]
async fn refused_and_hanging_controllers() {
    // Nothing listens there.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let agent = start(config(vec![refused]), SYNCING).await;
    until("the refusal", async || {
        agent.status.read().await.last_error.is_some()
    })
    .await;
    let status = agent.status.read().await.clone();
    assert!(!status.connected);
    assert!(status.requests["controller_version"]["network"] >= 1);
    agent.stop().await;

    let fake = Fake::start(&["alpha"], None).await;
    fake.set_fault(Fault::Hang(Duration::from_secs(3)));
    let agent = start(config(vec![fake.url()]), SYNCING).await;
    until("the timeout", async || {
        agent.status.read().await.last_error.is_some()
    })
    .await;
    assert!(!agent.status.read().await.connected);
    fake.set_fault(Fault::None);
    until_reported(&agent, &fake, "the report after the timeouts").await;
    agent.stop().await;
}

#[tokio::test]
async fn https_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = fake_linstor::pki(dir.path());
    let fake = Fake::start(&["alpha"], Some(pki.acceptor.clone())).await;
    let mut with_cert = config(vec![fake.url()]);
    with_cert.ca_file = Some(pki.ca_pem.clone());
    with_cert.client_certificate = Some(pki.client_cert_pem.clone());
    with_cert.client_key = Some(pki.client_key_pem.clone());
    let agent = start(with_cert.clone(), SYNCING).await;
    until_reported(&agent, &fake, "the report over HTTPS").await;
    agent.stop().await;
    check_requests(&fake.requests());

    // Without a client certificate the controller refuses the handshake.
    let before = fake.requests().len();
    let mut without = with_cert;
    without.client_certificate = None;
    without.client_key = None;
    let agent = start(without, SYNCING).await;
    until("the refused handshake", async || {
        agent.status.read().await.last_error.is_some()
    })
    .await;
    assert!(!agent.status.read().await.connected);
    agent.stop().await;
    assert_eq!(fake.requests().len(), before);
}

#[tokio::test]
async fn a_stale_model_deletes_no_key_until_a_complete_newer_one_replaces_it() {
    let fake = Fake::start(&["alpha"], None).await;
    let agent = start(config(vec![fake.url()]), SYNCING).await;
    until_reported(&agent, &fake, "the first report").await;
    // The stream ends: the model is kept, stale.
    agent
        .shared
        .state
        .write()
        .await
        .stream_ended("exited: exit code 1", chrono::Utc::now());
    until("the stale mark", async || {
        fake.kv("drbd-agent").get("alpha/model").map(String::as_str) == Some("stale")
    })
    .await;
    let kv = fake.kv("drbd-agent");
    assert!(kv.contains_key("alpha/model-stale-since-unix-seconds"));
    assert!(
        kv.contains_key("alpha/r0/bravo/volume-0/replication-state"),
        "kept while stale: {kv:?}"
    );
    // Several reports later, still nothing deleted.
    let before = fake.puts().len();
    until("two more reports", async || fake.puts().len() >= before + 2).await;
    let deletions: Vec<Value> = fake.puts()[before..]
        .iter()
        .filter_map(|p| p.body.clone())
        .filter(|b| b["delete_props"].as_array().is_some_and(|d| !d.is_empty()))
        .collect();
    assert_eq!(
        deletions,
        Vec::<Value>::new(),
        "nothing deleted while stale"
    );
    assert!(fake
        .kv("drbd-agent")
        .contains_key("alpha/r0/bravo/connection-state"));
    // The new stream's dump has no r0: now its keys go, and the mark.
    {
        let mut state = agent.shared.state.write().await;
        state.apply_event(&parse_line("exists -").unwrap());
    }
    until("the resource's keys to go", async || {
        let kv = fake.kv("drbd-agent");
        !kv.keys().any(|k| k.starts_with("alpha/r0/"))
            && kv.get("alpha/model").map(String::as_str) == Some("current")
            && !kv.contains_key("alpha/model-stale-since-unix-seconds")
    })
    .await;
    agent.stop().await;
}
