//! The DRBD part as families in output order, each either rendered per
//! resource (one header-less chunk per resource, cached by the exporter) or
//! from totals (the resource count, the helper counters).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::family::{header, Def, EnumSeries, FamilyWriter};
use super::gzip::{Deflater, Part};
use super::{drbd, extra, MetricsError};
use crate::runtime::StreamStats;
use crate::state::Resource;

/// What the families about all resources together are rendered from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub resources: usize,
    /// Helper calls by helper name.
    pub helper_calls: BTreeMap<String, u64>,
    /// Helper responses by helper name and exit code.
    pub helper_responses: BTreeMap<String, BTreeMap<u32, u64>>,
}

impl Totals {
    /// The resource count with the helper counters of the stream.
    pub fn new(resources: usize, stats: &StreamStats) -> Self {
        Self {
            resources,
            helper_calls: stats.helper_calls.clone(),
            helper_responses: stats.helper_responses.clone(),
        }
    }
}

/// One family of the DRBD part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Index into [`Layout::resource_defs`].
    PerResource(usize),
    /// Index into [`Layout::totals_defs`].
    Totals(usize),
}

/// The families of the DRBD part in output order (sorted by name).
pub struct Layout {
    resource_defs: Vec<Def<Resource>>,
    totals_defs: Vec<Def<Totals>>,
    /// `# HELP` and `# TYPE` of each per-resource family.
    headers: Vec<Part>,
    slots: Vec<Slot>,
    /// How enums and flag sets are exported.
    enum_series: EnumSeries,
}

impl std::fmt::Debug for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layout")
            .field("slots", &self.slots)
            .field("enum_series", &self.enum_series)
            .finish_non_exhaustive()
    }
}

impl Layout {
    /// The layout with enums in the default form ([`EnumSeries::Current`]).
    pub fn new() -> Result<Self, MetricsError> {
        Self::with_enum_series(EnumSeries::default())
    }

    /// The layout with enums, flag sets and counters by cause in `form`.
    pub fn with_enum_series(enum_series: EnumSeries) -> Result<Self, MetricsError> {
        let mut resource_defs = drbd::resource_defs();
        resource_defs.extend(drbd::connection_defs());
        resource_defs.extend(drbd::peer_device_defs());
        resource_defs.extend(drbd::device_defs());
        resource_defs.extend(extra::defs());
        let mut totals_defs = drbd::totals_defs();
        totals_defs.extend(extra::totals_defs());
        let mut deflater = Deflater::new();
        let headers = resource_defs
            .iter()
            .map(|def| Part::new(Bytes::from(header(&def.spec)?), &mut deflater))
            .collect::<Result<Vec<_>, _>>()?;
        let mut named: Vec<(&'static str, Slot)> = resource_defs
            .iter()
            .enumerate()
            .map(|(i, def)| (def.spec.name, Slot::PerResource(i)))
            .chain(
                totals_defs
                    .iter()
                    .enumerate()
                    .map(|(i, def)| (def.spec.name, Slot::Totals(i))),
            )
            .collect();
        named.sort_by_key(|(name, _)| *name);
        Ok(Self {
            resource_defs,
            totals_defs,
            headers,
            slots: named.into_iter().map(|(_, slot)| slot).collect(),
            enum_series,
        })
    }

    /// How enums are exported.
    pub fn enum_series(&self) -> EnumSeries {
        self.enum_series
    }

    /// The families in output order.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The number of per-resource families.
    pub fn resource_families(&self) -> usize {
        self.resource_defs.len()
    }

    /// The header of per-resource family `index`.
    pub fn header(&self, index: usize) -> &Part {
        &self.headers[index]
    }

    /// The family names in output order.
    pub fn names(&self) -> Vec<&'static str> {
        self.slots
            .iter()
            .map(|slot| match *slot {
                Slot::PerResource(i) => self.resource_defs[i].spec.name,
                Slot::Totals(i) => self.totals_defs[i].spec.name,
            })
            .collect()
    }

    /// One resource's series of every per-resource family, without headers.
    pub fn render_resource(&self, resource: &Resource) -> Result<Rendered, MetricsError> {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(self.resource_defs.len());
        for def in &self.resource_defs {
            let mut writer =
                FamilyWriter::headerless(&def.spec, &mut text).with_enum_series(self.enum_series);
            (def.fill)(resource, &mut writer)?;
            writer.finish()?;
            ends.push(offset(text.len()));
        }
        // `Bytes` keeps a vector's spare capacity: up to half of a grown one.
        text.shrink_to_fit();
        Ok(Rendered {
            text: Bytes::from(text.into_bytes()),
            ends: ends.into_boxed_slice(),
        })
    }

    /// Totals family `index`, with its header (nothing without series).
    pub fn render_totals(&self, index: usize, totals: &Totals) -> Result<Bytes, MetricsError> {
        let def = &self.totals_defs[index];
        let mut text = String::new();
        let mut writer = FamilyWriter::new(&def.spec, &mut text).with_enum_series(self.enum_series);
        (def.fill)(totals, &mut writer)?;
        writer.finish()?;
        Ok(Bytes::from(text))
    }

    /// The whole DRBD part in one pass over the resources per family: the
    /// straightforward render the cached one must equal.
    pub fn render_full<'r, I>(&self, resources: I, totals: &Totals) -> Result<String, MetricsError>
    where
        I: Iterator<Item = &'r Resource> + Clone,
    {
        let mut out = String::new();
        for slot in &self.slots {
            match *slot {
                Slot::PerResource(i) => {
                    let def = &self.resource_defs[i];
                    let mut writer =
                        FamilyWriter::new(&def.spec, &mut out).with_enum_series(self.enum_series);
                    for resource in resources.clone() {
                        (def.fill)(resource, &mut writer)?;
                    }
                    writer.finish()?;
                }
                Slot::Totals(i) => {
                    let text = self.render_totals(i, totals)?;
                    out.push_str(&String::from_utf8_lossy(&text));
                }
            }
        }
        Ok(out)
    }
}

/// A text offset as stored in [`Rendered`]. One resource's chunks are far
/// below 4 GiB (a few KiB); saturating keeps a wrong value from wrapping.
fn offset(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// One resource's series: every per-resource family's lines, in one buffer
/// (one allocation per resource rather than one per family). The exporter
/// keeps the text (plain scrapes send it as is) and compresses blocks of
/// resources for gzip scrapes (`exposition.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Every family's lines, in family order.
    text: Bytes,
    /// End of each family's lines in `text`.
    ends: Box<[u32]>,
}

impl Rendered {
    /// Length of the lines of family `index`.
    pub fn chunk_len(&self, index: usize) -> usize {
        self.chunk(index).len()
    }

    /// The lines of family `index`.
    pub fn chunk(&self, index: usize) -> &[u8] {
        let (start, end) = range(&self.ends, self.text.len(), index);
        &self.text[start..end]
    }

    /// The same as a `Bytes` sharing this buffer (no copy).
    pub fn chunk_bytes(&self, index: usize) -> Bytes {
        let (start, end) = range(&self.ends, self.text.len(), index);
        self.text.slice(start..end)
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.text.len() + self.ends.len() * std::mem::size_of::<u32>()
    }
}

/// The range of piece `index` in a buffer of `len` bytes with piece `ends`.
fn range(ends: &[u32], len: usize, index: usize) -> (usize, usize) {
    let start = match index {
        0 => 0,
        _ => ends.get(index - 1).copied().unwrap_or(0),
    };
    let end = ends.get(index).copied().unwrap_or(start);
    // Offsets come from the render and lie within the buffer; clamping keeps
    // slicing from panicking all the same.
    let start = (start as usize).min(len);
    (start, (end as usize).clamp(start, len))
}
