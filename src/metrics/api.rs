//! The API's refusals (`drbd_agent_api_refused_total{reason}`), rendered on
//! every scrape from the counters of its connection loop and gate.

use super::family::{Def, Kind, Spec};
use crate::api::ApiCounters;

/// The API families.
pub(super) fn defs() -> Vec<Def<ApiCounters>> {
    vec![Def {
        spec: Spec {
            name: "drbd_agent_api_refused_total",
            help: "API connections and requests refused or cut, by reason (unauthorized, status-not-local, tls-handshake, per-client-cap, write-timeout).",
            kind: Kind::Counter,
            labels: &["reason"],
        },
        fill: |counters, w| {
            for (reason, count) in counters.snapshot() {
                w.add_u64(&[reason], count)?;
            }
            Ok(())
        },
    }]
}
