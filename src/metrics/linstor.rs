//! The LINSTOR client's series (`drbd_agent_linstor_*`), rendered on every
//! scrape from its [`LinstorStatus`] and merged into the agent part.

use super::family::{Def, Kind, Spec};
use crate::linstor::LinstorStatus;

/// The `drbd_agent_linstor_*` families.
pub(super) fn defs() -> Vec<Def<LinstorStatus>> {
    vec![
        Def {
            spec: Spec {
                name: "drbd_agent_linstor_up",
                help: "1 while a LINSTOR controller answers and node-name is a LINSTOR node.",
                kind: Kind::Gauge,
                labels: &[],
            },
            fill: |status, w| w.add_bool(&[], status.up()),
        },
        Def {
            spec: Spec {
                name: "drbd_agent_linstor_requests_total",
                help: "Requests to the LINSTOR controller by endpoint and result (ok, network, http_<status>, rejected, bad_answer).",
                kind: Kind::Counter,
                labels: &["endpoint", "result"],
            },
            fill: |status, w| {
                for (endpoint, results) in &status.requests {
                    for (result, count) in results {
                        w.add_u64(&[endpoint, result], *count)?;
                    }
                }
                Ok(())
            },
        },
        Def {
            spec: Spec {
                name: "drbd_agent_linstor_last_report_timestamp_seconds",
                help: "When the last report was written to the key-value store (absent before the first).",
                kind: Kind::Gauge,
                labels: &[],
            },
            fill: |status, w| match status.last_report_unix_seconds {
                Some(t) => w.add(&[], t as f64),
                None => Ok(()),
            },
        },
        Def {
            spec: Spec {
                name: "drbd_agent_linstor_controller_info",
                help: "The LINSTOR controller in use (value 1).",
                kind: Kind::Gauge,
                labels: &["url"],
            },
            fill: |status, w| match &status.controller {
                Some(url) => w.add(&[url], 1.0),
                None => Ok(()),
            },
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::family::render_each;

    #[test]
    fn renders_the_status() {
        let mut status = LinstorStatus {
            enabled: true,
            connected: true,
            controller: Some("http://c:3370".into()),
            node_check: crate::linstor::NodeCheck::Ok,
            last_report_unix_seconds: Some(1_700_000_000),
            ..LinstorStatus::default()
        };
        status.count("key_value_store", "ok");
        status.count("nodes", "http_404");
        let text: String = render_each(defs(), &status)
            .unwrap()
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert!(text.contains("drbd_agent_linstor_up 1\n"), "{text}");
        assert!(
            text.contains(
                "drbd_agent_linstor_requests_total{endpoint=\"nodes\",result=\"http_404\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("drbd_agent_linstor_last_report_timestamp_seconds 1700000000\n"),
            "{text}"
        );
        assert!(
            text.contains("drbd_agent_linstor_controller_info{url=\"http://c:3370\"} 1\n"),
            "{text}"
        );
    }
}
