//! The Prometheus exporter: the replication model, the events2 stream
//! counters and a few facts rendered as the text exposition format with the
//! `prometheus` crate's data model and text encoder.
//!
//! - `drbd` — drbd-reactor's metric set, same names, labels, units.
//! - `extra` — what drbd-reactor lacks (replication state, resync progress...).
//! - `agent` — `drbd_agent_*` and `drbd_version`.
//! - `throttle` — `drbd_agent_throttle_*`, from the resync throttle's status.
//! - `version` — parsing `drbdadm --version`.
//! - `layout` — the DRBD part's families in output order; per-resource
//!   families render one header-less chunk per resource.
//! - `exposition` — a scrape's text as references to cached chunks.
//! - `schedule` — when the background refresher renders (before scrapes).
//! - [`Exporter`] — keeps every resource's chunks, re-renders only the
//!   resources that changed since the last scrape, and adds the agent part
//!   and the standard `process_*` metrics on every scrape.
//!
//! Series of destroyed objects disappear with their resource's re-render.
//! Families come out sorted by name.

mod agent;
mod api;
mod drbd;
mod exporter;
mod exposition;
mod extra;
mod family;
mod gzip;
mod layout;
mod linstor;
mod network;
mod objects;
mod pressure;
mod schedule;
mod throttle;
mod version;

use std::collections::BTreeMap;

use crate::linstor::LinstorStatus;
use crate::runtime::StreamStats;
use crate::state::Model;
use crate::throttle::ThrottleStatus;

pub use agent::AgentInput;
pub use exporter::{Exporter, Facts, Fresh, CONTENT_TYPE};
pub use exposition::{Chunks, DrbdPart, Exposition, Pieces, PlainExposition, CHUNK_BYTES};
pub use family::EnumSeries;
pub use gzip::accepts_gzip;
pub use layout::Totals;
pub use version::{parse_drbdadm_version, DrbdVersions, VersionError};

/// Why a render failed (a bug rather than bad input: every value is valid).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metric family {family}: {got} label values for {expected} labels")]
    LabelCount {
        family: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("encoding metrics: {0}")]
    Encode(#[from] prometheus::Error),
    #[error("compressing metrics: {0}")]
    Compress(String),
    #[error("metrics render task failed: {0}")]
    Task(String),
}

/// What the DRBD part is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct DrbdInput<'a> {
    pub model: &'a Model,
    /// Helper calls by helper name.
    pub helper_calls: &'a BTreeMap<String, u64>,
    /// Helper responses by helper name and exit code.
    pub helper_responses: &'a BTreeMap<String, BTreeMap<u32, u64>>,
}

impl<'a> DrbdInput<'a> {
    /// The model with the helper counters of the stream.
    pub fn new(model: &'a Model, stats: &'a StreamStats) -> Self {
        Self {
            model,
            helper_calls: &stats.helper_calls,
            helper_responses: &stats.helper_responses,
        }
    }
}

/// The DRBD part (`drbd_connection_*` … `drbd_resource_*`), sorted by name,
/// rendered from scratch (the exporter renders the same text incrementally).
pub fn render_drbd(input: &DrbdInput<'_>) -> Result<String, MetricsError> {
    render_drbd_in(input, EnumSeries::default())
}

/// [`render_drbd`] with enums, flag sets and counters by cause in `form`.
pub fn render_drbd_in(input: &DrbdInput<'_>, form: EnumSeries) -> Result<String, MetricsError> {
    let resources = input.model.resources();
    let totals = Totals {
        resources: resources.len(),
        helper_calls: input.helper_calls.clone(),
        helper_responses: input.helper_responses.clone(),
    };
    layout::Layout::with_enum_series(form)?.render_full(resources.values(), &totals)
}

/// The `drbd_agent_*` families, sorted by name.
pub fn render_agent(input: &AgentInput<'_>) -> Result<String, MetricsError> {
    let mut out = String::new();
    family::write_sorted(&mut out, agent::defs(), input)?;
    Ok(out)
}

/// The `drbd_agent_*` families and, with a throttle status, the
/// `drbd_agent_throttle_*` ones, and with a LINSTOR status the
/// `drbd_agent_linstor_*` ones, merged in name order.
pub fn render_agent_head(
    input: &AgentInput<'_>,
    throttle: Option<&ThrottleStatus>,
    linstor: Option<&LinstorStatus>,
) -> Result<String, MetricsError> {
    render_agent_head_with(input, throttle, linstor, None)
}

/// [`render_agent_head`] plus, with a network status, the replication
/// network's families (`drbd_agent_path_*`, `drbd_agent_interface_*`,
/// `drbd_agent_connection_losses_total`, `drbd_agent_network_*`).
pub fn render_agent_head_with(
    input: &AgentInput<'_>,
    throttle: Option<&ThrottleStatus>,
    linstor: Option<&LinstorStatus>,
    network: Option<&crate::netlink::NetworkStatus>,
) -> Result<String, MetricsError> {
    render_agent_head_all(input, throttle, linstor, network, None)
}

/// [`render_agent_head_with`] plus, with the API's counters,
/// `drbd_agent_api_refused_total`.
pub fn render_agent_head_all(
    input: &AgentInput<'_>,
    throttle: Option<&ThrottleStatus>,
    linstor: Option<&LinstorStatus>,
    network: Option<&crate::netlink::NetworkStatus>,
    api: Option<&crate::api::ApiCounters>,
) -> Result<String, MetricsError> {
    render_agent_head_in(
        input,
        throttle,
        linstor,
        network,
        api,
        EnumSeries::default(),
    )
}

/// [`render_agent_head_all`] with enums and counters by cause in `form`
/// (the replication network's families; the throttle's few per-peer
/// families stay one series per value).
pub fn render_agent_head_in(
    input: &AgentInput<'_>,
    throttle: Option<&ThrottleStatus>,
    linstor: Option<&LinstorStatus>,
    network: Option<&crate::netlink::NetworkStatus>,
    api: Option<&crate::api::ApiCounters>,
    form: EnumSeries,
) -> Result<String, MetricsError> {
    let network = match network {
        Some(status) => Some(render_network(status, form)?),
        None => None,
    };
    render_agent_head_parts(input, throttle, linstor, network, api)
}

/// The replication network's families, each rendered on its own with its
/// name, enums in `form` (the exporter keeps them while the network status
/// stays the same).
pub fn render_network(
    status: &crate::netlink::NetworkStatus,
    form: EnumSeries,
) -> Result<Vec<(&'static str, String)>, MetricsError> {
    family::render_each_in(network::defs(), status, form)
}

/// [`render_agent_head_in`] with the network's families already rendered
/// (by [`render_network`]).
pub fn render_agent_head_parts(
    input: &AgentInput<'_>,
    throttle: Option<&ThrottleStatus>,
    linstor: Option<&LinstorStatus>,
    network: Option<Vec<(&'static str, String)>>,
    api: Option<&crate::api::ApiCounters>,
) -> Result<String, MetricsError> {
    if throttle.is_none() && linstor.is_none() && network.is_none() && api.is_none() {
        return render_agent(input);
    }
    let mut families = family::render_each(agent::defs(), input)?;
    if let Some(api) = api {
        families.extend(family::render_each(api::defs(), api)?);
    }
    if let Some(throttle) = throttle {
        families.extend(family::render_each(throttle::defs(), throttle)?);
    }
    if let Some(linstor) = linstor {
        families.extend(family::render_each(linstor::defs(), linstor)?);
    }
    if let Some(network) = network {
        families.extend(network);
    }
    if let Some(throttle) = throttle {
        // Absent while `[pressure]` is off (see `pressure.rs`).
        families.extend(family::render_each(pressure::defs(), throttle)?);
    }
    families.sort_by_key(|(name, _)| *name);
    Ok(families.into_iter().map(|(_, text)| text).collect())
}

/// `drbd_version`, when the versions are known.
pub fn render_version(versions: Option<&DrbdVersions>) -> Result<String, MetricsError> {
    let mut out = String::new();
    family::write_sorted(&mut out, agent::version_defs(), &versions)?;
    Ok(out)
}

/// Every family name a render without a throttle status may produce, in
/// output order (for tests and documentation). The order of the parts is
/// `drbd_agent_*`, the DRBD part, `drbd_version`, then `process_*`. An
/// exporter given a throttle status adds [`throttle_family_names`] to the
/// `drbd_agent_*` part.
pub fn family_names() -> Vec<&'static str> {
    let mut drbd_part: Vec<_> = drbd::resource_defs()
        .into_iter()
        .chain(drbd::connection_defs())
        .chain(drbd::peer_device_defs())
        .chain(drbd::device_defs())
        .chain(extra::defs())
        .map(|def| def.spec.name)
        .chain(drbd::totals_defs().into_iter().map(|def| def.spec.name))
        .chain(extra::totals_defs().into_iter().map(|def| def.spec.name))
        .collect();
    drbd_part.sort_unstable();
    let mut agent_part: Vec<_> = agent::defs().into_iter().map(|d| d.spec.name).collect();
    agent_part.sort_unstable();
    agent_part
        .into_iter()
        .chain(drbd_part)
        .chain(agent::version_defs().into_iter().map(|d| d.spec.name))
        .collect()
}

/// The `drbd_agent_throttle_*` family names, sorted (added to the agent
/// part by an exporter with a throttle status, see
/// [`Exporter::with_throttle`]).
pub fn throttle_family_names() -> Vec<&'static str> {
    let mut names: Vec<_> = throttle::defs().into_iter().map(|d| d.spec.name).collect();
    names.sort_unstable();
    names
}

/// The `drbd_agent_linstor_*` family names, sorted (added to the agent
/// part by an exporter with a LINSTOR status, see
/// [`Exporter::with_linstor`]).
pub fn linstor_family_names() -> Vec<&'static str> {
    let mut names: Vec<_> = linstor::defs().into_iter().map(|d| d.spec.name).collect();
    names.sort_unstable();
    names
}

/// The replication network's family names, sorted (added to the agent part
/// by an exporter with a network status, see [`Exporter::with_network`]).
pub fn network_family_names() -> Vec<&'static str> {
    let mut names: Vec<_> = network::defs().into_iter().map(|d| d.spec.name).collect();
    names.sort_unstable();
    names
}
