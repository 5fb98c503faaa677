//! What the LINSTOR client knows about its connection, for `/v1/status`,
//! the status table and the `drbd_agent_linstor_*` metrics.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::RwLock;

/// The result of checking that `node-name` is a LINSTOR node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeCheck {
    /// Not checked yet (controller not reached).
    #[default]
    Unknown,
    Ok,
    /// The controller answered 404: the node does not exist there.
    NotANode,
    /// The controller answered with another error.
    Failed,
}

/// The client's state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LinstorStatus {
    /// `[linstor] enabled`.
    pub enabled: bool,
    /// The controller in use answered the last request.
    pub connected: bool,
    /// The controller in use (base URL).
    pub controller: Option<String>,
    /// Every configured controller, in order.
    pub controllers: Vec<String>,
    /// `version` of `GET /v1/controller/version`.
    pub controller_version: Option<String>,
    pub node_check: NodeCheck,
    /// Why the node check failed, in words.
    pub node_check_message: Option<String>,
    /// The last error, in words (cleared by a successful report).
    pub last_error: Option<String>,
    /// When a report was last written.
    pub last_report_unix_seconds: Option<i64>,
    /// Keys the store holds from this agent (as far as it knows).
    pub reported_keys: usize,
    /// Requests by endpoint and result (`ok`, `network`, `http_<status>`,
    /// `rejected`).
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Resources with `Aux/drbd-agent/...` settings at the last policy
    /// refresh (`None` before the first).
    pub policy_resources: Option<usize>,
    /// Policy values ignored at the last refresh, with where and why.
    pub policy_problems: Vec<String>,
    /// Why the last policy refresh failed (the previous policies stay).
    pub policy_error: Option<String>,
    pub policy_refreshed_unix_seconds: Option<i64>,
}

impl LinstorStatus {
    /// Counts one request.
    pub fn count(&mut self, endpoint: &str, result: &str) {
        *self
            .requests
            .entry(endpoint.to_owned())
            .or_default()
            .entry(result.to_owned())
            .or_default() += 1;
    }

    /// 1 for `drbd_agent_linstor_up`: connected, the node check passed and
    /// the last request succeeded.
    pub fn up(&self) -> bool {
        self.connected && self.node_check == NodeCheck::Ok && self.last_error.is_none()
    }
}

/// Shared between the report loop and the readers.
pub type SharedLinstorStatus = Arc<RwLock<LinstorStatus>>;

/// The `endpoint` label of a request path.
pub fn endpoint_label(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path);
    if path == "/v1/controller/version" {
        "controller_version"
    } else if path.starts_with("/v1/nodes") {
        "nodes"
    } else if path.starts_with("/v1/key-value-store") {
        "key_value_store"
    } else if path.starts_with("/v1/resource-definitions") {
        "resource_definitions"
    } else if path.starts_with("/v1/resource-groups") {
        "resource_groups"
    } else if path == "/health" {
        "health"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_counts() {
        assert_eq!(endpoint_label("/v1/nodes/alpha"), "nodes");
        assert_eq!(
            endpoint_label("/v1/key-value-store/drbd-agent"),
            "key_value_store"
        );
        assert_eq!(
            endpoint_label("/v1/controller/version"),
            "controller_version"
        );
        assert_eq!(
            endpoint_label("/v1/resource-definitions?props=a"),
            "resource_definitions"
        );
        assert_eq!(endpoint_label("/v1/x"), "other");
        let mut status = LinstorStatus::default();
        status.count("nodes", "ok");
        status.count("nodes", "ok");
        status.count("nodes", "http_404");
        assert_eq!(status.requests["nodes"]["ok"], 2);
        assert_eq!(status.requests["nodes"]["http_404"], 1);
        assert!(!status.up());
        status.connected = true;
        status.node_check = NodeCheck::Ok;
        assert!(status.up());
        status.last_error = Some("HTTP 500".into());
        assert!(!status.up());
    }
}
