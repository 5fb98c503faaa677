//! The report loop: a thin driver around `report` — connect (controller
//! version, node check, what the store holds from this node), then every
//! `report-interval` one `PUT` of the keys that changed. While no
//! controller answers, nothing is queued: the next successful write
//! carries the latest state (one catch-up write), so memory stays bounded
//! by one report.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use tracing::{error, info, warn};

use super::client::{Client, RequestError};
use super::controllers::{self, Controller};
use super::policy::SharedRemotePolicies;
use super::policy_fetch;
use super::report::{self, Report, ReportInput};
use super::status::{NodeCheck, SharedLinstorStatus};
use crate::backoff::delay;
use crate::config::LinstorConfig;
use crate::runtime::CancellationToken;
use crate::runtime::Shared;
use crate::throttle::SharedThrottleStatus;

/// Where LINSTOR's own client keeps its configuration.
pub const CLIENT_CONF: &str = "/etc/linstor/linstor-client.conf";

/// `GET /v1/controller/version`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ControllerVersion {
    pub version: String,
    pub git_hash: String,
    pub rest_api_version: String,
}

/// One entry of `GET /v1/key-value-store/{instance}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct KeyValueStore {
    name: String,
    props: BTreeMap<String, String>,
}

/// Everything the loop needs.
#[derive(Debug, Clone)]
pub struct ReporterOptions {
    pub node_name: String,
    pub config: LinstorConfig,
    /// Where the throttle policies read from the controller go.
    pub policies: SharedRemotePolicies,
}

/// The controllers from the configuration, `LS_CONTROLLERS` and the client
/// configuration file.
pub fn resolve_controllers(
    config: &LinstorConfig,
) -> Result<Vec<Controller>, controllers::ControllerError> {
    let env = std::env::var("LS_CONTROLLERS").ok();
    let conf = std::fs::read_to_string(CLIENT_CONF).ok();
    let (list, source) =
        controllers::resolve(&config.controllers, env.as_deref(), conf.as_deref())?;
    info!(?source, controllers = ?list.iter().map(Controller::base_url).collect::<Vec<_>>(), "LINSTOR controllers");
    if config.client_certificate.is_none() {
        for controller in list.iter().filter(|c| c.https) {
            warn!(controller = %controller, "HTTPS controller but no client-certificate: a controller with a truststore refuses the connection");
        }
    }
    Ok(list)
}

/// Runs until `stop`. Errors are logged and shown in the status; the loop
/// only returns early when the client cannot be built at all.
pub async fn run(
    options: ReporterOptions,
    shared: Arc<Shared>,
    throttle: SharedThrottleStatus,
    status: SharedLinstorStatus,
    stop: CancellationToken,
) {
    status.write().await.enabled = true;
    let client = resolve_controllers(&options.config)
        .map_err(|e| e.to_string())
        .and_then(|list| {
            let token_file = options.config.token_file(Path::exists);
            Client::new(&options.config, list, token_file, status.clone())
                .map_err(|e| e.to_string())
        });
    let mut client = match client {
        Ok(client) => client,
        Err(message) => {
            error!(error = %message, "LINSTOR client not started");
            status.write().await.last_error = Some(message);
            return;
        }
    };
    {
        let mut s = status.write().await;
        s.controllers = client
            .controllers()
            .iter()
            .map(Controller::base_url)
            .collect();
        s.controller = Some(client.active().base_url());
    }
    let interval = options.config.report_interval;
    let (base, cap) = limits(interval);
    let mut reporter = Reporter {
        node: options.node_name.clone(),
        instance: options.config.instance.clone(),
        sent: None,
        failures: 0,
    };
    let mut next_policy = tokio::time::Instant::now();
    loop {
        let wait = match reporter
            .step(&mut client, &shared, &throttle, &status)
            .await
        {
            Ok(()) => {
                reporter.failures = 0;
                // Connected and the node checked: time for the policies?
                let now = tokio::time::Instant::now();
                if now >= next_policy {
                    let retry = match policy_fetch::refresh(&mut client, &options.policies, &status)
                        .await
                    {
                        Ok(()) => options.config.policy_interval,
                        Err(_) => options.config.policy_interval.min(interval),
                    };
                    next_policy = now + retry;
                }
                interval
            }
            Err(()) => {
                reporter.failures = reporter.failures.saturating_add(1);
                delay(reporter.failures, base, cap, rand::random::<f64>())
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// The loop's memory: what the store holds from this node (`None` until
/// read after a (re)connection).
struct Reporter {
    node: String,
    instance: String,
    sent: Option<Report>,
    failures: u32,
}

impl Reporter {
    /// One round: connect if needed, then write the changes. `Err` = wait
    /// with backoff.
    async fn step(
        &mut self,
        client: &mut Client,
        shared: &Shared,
        throttle: &SharedThrottleStatus,
        status: &SharedLinstorStatus,
    ) -> Result<(), ()> {
        if self.sent.is_none() {
            match self.connect(client, status).await {
                Ok(sent) => self.sent = Some(sent),
                Err(e) => {
                    self.failed(client, status, &e).await;
                    return Err(());
                }
            }
        }
        let Some(sent) = self.sent.as_mut() else {
            return Err(());
        };
        let wanted = {
            let state = shared.state.read().await;
            let throttle = throttle.read().await;
            let mut wanted = report::report(&ReportInput {
                node: &self.node,
                model: &state.model,
                throttle: throttle.enabled.then_some(&*throttle),
                now_unix_seconds: chrono::Utc::now().timestamp(),
                agent_version: env!("CARGO_PKG_VERSION"),
            });
            report::hold(sent, &mut wanted, &self.node, freshness(&state));
            wanted
        };
        let batch = report::diff(sent, &wanted);
        if batch.is_empty() {
            return Ok(());
        }
        match client.put_kv(&self.instance, &batch).await {
            Ok(rcs) => {
                for rc in rcs
                    .iter()
                    .filter(|rc| rc.severity() > super::apicallrc::Severity::Info)
                {
                    warn!(code = rc.code(), message = %rc.message, cause = rc.cause.as_deref().unwrap_or(""), correction = rc.correction.as_deref().unwrap_or(""), "controller warning on report");
                }
                report::apply(sent, &batch);
                let mut s = status.write().await;
                s.connected = true;
                s.controller = Some(client.active().base_url());
                s.last_error = None;
                s.last_report_unix_seconds = Some(chrono::Utc::now().timestamp());
                s.reported_keys = sent.len();
                Ok(())
            }
            Err(e) => {
                // Read the store again after reconnecting: the write may or
                // may not have been applied.
                self.sent = None;
                self.failed(client, status, &e).await;
                Err(())
            }
        }
    }

    /// Checks the controller and the node, then reads what the store holds
    /// under this node's namespace.
    async fn connect(
        &mut self,
        client: &mut Client,
        status: &SharedLinstorStatus,
    ) -> Result<Report, RequestError> {
        let version: ControllerVersion = client.get("/v1/controller/version").await?;
        {
            let mut s = status.write().await;
            s.connected = true;
            s.controller = Some(client.active().base_url());
            s.controller_version = Some(version.version.clone());
        }
        info!(controller = %client.active(), version = %version.version, rest_api = %version.rest_api_version, "LINSTOR controller reached");
        let node_path = format!("/v1/nodes/{}", self.node);
        match client.get::<serde_json::Value>(&node_path).await {
            Ok(_) => {
                let mut s = status.write().await;
                if s.node_check != NodeCheck::Ok {
                    info!(node = %self.node, "node is a LINSTOR node");
                }
                s.node_check = NodeCheck::Ok;
                s.node_check_message = None;
            }
            Err(e) => {
                let mut s = status.write().await;
                if e.status() == Some(404) {
                    s.node_check = NodeCheck::NotANode;
                    s.node_check_message = Some(format!(
                        "node {} is not a LINSTOR node (set node-name to the node's LINSTOR name, or add the node: linstor node create {} <ip>)",
                        self.node, self.node
                    ));
                } else {
                    s.node_check = NodeCheck::Failed;
                    s.node_check_message = Some(format!("node check failed: {e}"));
                }
                return Err(e);
            }
        }
        let stores: Vec<KeyValueStore> = client
            .get(&format!("/v1/key-value-store/{}", self.instance))
            .await?;
        let prefix = format!("{}/", self.node);
        let held: Report = stores
            .into_iter()
            .filter(|store| store.name == self.instance || store.name.is_empty())
            .flat_map(|store| store.props)
            .filter(|(key, _)| key.starts_with(&prefix))
            .collect();
        Ok(held)
    }

    async fn failed(&self, client: &Client, status: &SharedLinstorStatus, e: &RequestError) {
        let mut s = status.write().await;
        if e.is_network() {
            s.connected = false;
        }
        s.controller = Some(client.active().base_url());
        let message = match (&s.node_check, &s.node_check_message) {
            (NodeCheck::NotANode, Some(m)) => m.clone(),
            _ => e.to_string(),
        };
        if s.last_error.as_deref() != Some(message.as_str()) || self.failures == 0 {
            warn!(node = %self.node, error = %message, "LINSTOR report failed");
        }
        s.last_error = Some(message);
    }
}

/// How far the model mirrors DRBD, for [`report::hold`].
fn freshness(state: &crate::runtime::DrbdState) -> report::ModelFreshness {
    match state.stats.stale_since {
        Some(since) => report::ModelFreshness::Stale {
            since_unix_seconds: since.timestamp(),
        },
        None if state.stream_dump_done() => report::ModelFreshness::Current,
        None => report::ModelFreshness::Reading,
    }
}
/// The retry backoff's base and cap for a report interval: the base is the
/// interval (at most one second), the cap eight intervals within one
/// second and one minute.
fn limits(report_interval: Duration) -> (Duration, Duration) {
    let base = report_interval.min(Duration::from_secs(1));
    let cap = (report_interval * 8).clamp(Duration::from_secs(1), Duration::from_secs(60));
    (base, cap.max(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_interval() {
        let s = Duration::from_secs(1);
        assert_eq!(
            limits(Duration::from_secs(15)),
            (s, Duration::from_secs(60))
        );
        assert_eq!(
            limits(Duration::from_millis(100)),
            (Duration::from_millis(100), s)
        );
    }
}
