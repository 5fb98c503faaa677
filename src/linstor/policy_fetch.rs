//! The policy refresh: `GET /v1/resource-groups` and `GET
//! /v1/resource-definitions` every `policy-interval`, parsed by
//! [`super::policy::from_responses`] and published for the throttle loop.
//! Reads only. When the controller cannot be read the last policies stay in
//! force (they are the operator's last word); a body that is not what the
//! spec says is reported and also leaves them in force.

use std::collections::BTreeSet;

use serde_json::Value;
use tracing::{info, warn};

use super::client::{Client, RequestError};
use super::policy::{from_responses, RemotePolicies, SharedRemotePolicies};
use super::status::SharedLinstorStatus;

/// Why a refresh did not change the policies.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Response(#[from] super::policy::PolicyResponseError),
}

/// One refresh. Logs each ignored value once (while it stays wrong).
pub async fn refresh(
    client: &mut Client,
    shared: &SharedRemotePolicies,
    status: &SharedLinstorStatus,
) -> Result<(), RefreshError> {
    let result = fetch(client).await;
    let mut s = status.write().await;
    match result {
        Ok(policies) => {
            let before: BTreeSet<String> = s.policy_problems.iter().cloned().collect();
            let now: Vec<String> = policies.problems.iter().map(ToString::to_string).collect();
            for problem in now.iter().filter(|p| !before.contains(*p)) {
                warn!(problem = %problem, "LINSTOR policy value ignored");
            }
            let with_settings = policies
                .resources
                .values()
                .filter(|p| **p != Default::default())
                .count();
            if s.policy_resources != Some(with_settings) {
                info!(
                    resources = with_settings,
                    "LINSTOR throttle policies in force"
                );
            }
            s.policy_resources = Some(with_settings);
            s.policy_problems = now;
            s.policy_error = None;
            s.policy_refreshed_unix_seconds = Some(chrono::Utc::now().timestamp());
            drop(s);
            let policies = std::sync::Arc::new(policies);
            match shared.write() {
                Ok(mut guard) => *guard = policies,
                Err(poisoned) => *poisoned.into_inner() = policies,
            }
            Ok(())
        }
        Err(e) => {
            if s.policy_error.as_deref() != Some(e.to_string().as_str()) {
                warn!(error = %e, "LINSTOR policies not refreshed; the last ones stay in force");
            }
            s.policy_error = Some(e.to_string());
            Err(e)
        }
    }
}

async fn fetch(client: &mut Client) -> Result<RemotePolicies, RefreshError> {
    let groups: Value = client.get("/v1/resource-groups").await?;
    let definitions: Value = client.get("/v1/resource-definitions").await?;
    Ok(from_responses(&groups, &definitions)?)
}
