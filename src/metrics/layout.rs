//! The DRBD part as families in output order, each either rendered per
//! resource (one header-less chunk per resource, cached by the exporter) or
//! from totals (the resource count, the helper counters).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::family::{header, Def, FamilyWriter};
use super::gzip::{Deflater, Part};
use super::{drbd, extra, MetricsError};
use crate::drbd::StreamStats;
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
}

impl std::fmt::Debug for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layout")
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

impl Layout {
    pub fn new() -> Result<Self, MetricsError> {
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
        })
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
        self.render_resource_with(resource, &mut Deflater::new())
    }

    /// [`render_resource`](Self::render_resource) with a reused compressor.
    pub fn render_resource_with(
        &self,
        resource: &Resource,
        deflater: &mut Deflater,
    ) -> Result<Rendered, MetricsError> {
        self.render_resource_since(resource, None, deflater)
    }

    /// Renders a resource that was rendered as `previous` before: families
    /// whose lines are unchanged (same length, CRC-32 and 64-bit hash) keep
    /// their deflated piece and only the others are compressed. A state
    /// change touches a few of the ~30 families, and compressing (mostly
    /// resetting the compressor) is the bulk of a render.
    pub fn render_resource_since(
        &self,
        resource: &Resource,
        previous: Option<&Rendered>,
        deflater: &mut Deflater,
    ) -> Result<Rendered, MetricsError> {
        let families = self.resource_defs.len();
        let previous = previous.filter(|p| p.crcs.len() == families);
        let mut text = String::new();
        let mut ends = Vec::with_capacity(families);
        for def in &self.resource_defs {
            let mut writer = FamilyWriter::headerless(&def.spec, &mut text);
            (def.fill)(resource, &mut writer)?;
            writer.finish()?;
            ends.push(offset(text.len()));
        }
        let mut deflated =
            Vec::with_capacity(previous.map_or(text.len() / 4, |p| p.deflated.len()));
        let mut deflated_ends = Vec::with_capacity(families);
        let mut crcs = Vec::with_capacity(families);
        let mut hashes = Vec::with_capacity(families);
        let mut start = 0;
        for (family, &end) in ends.iter().enumerate() {
            let piece = text.as_bytes().get(start..end as usize).unwrap_or_default();
            let crc = crc32fast::hash(piece);
            let hash = hash64(piece);
            let unchanged = previous.filter(|p| {
                p.chunk_len(family) == piece.len()
                    && p.crc(family) == crc
                    && p.hashes.get(family) == Some(&hash)
            });
            match unchanged {
                Some(p) => deflated.extend_from_slice(p.deflated_chunk(family)),
                None => deflater.append(piece, &mut deflated)?,
            }
            deflated_ends.push(offset(deflated.len()));
            crcs.push(crc);
            hashes.push(hash);
            start = end as usize;
        }
        // Only the deflated pieces are kept (a quarter of the text); plain
        // scrapes inflate them.
        deflated.shrink_to_fit();
        Ok(Rendered {
            ends: ends.into_boxed_slice(),
            deflated: Bytes::from(deflated),
            deflated_ends: deflated_ends.into_boxed_slice(),
            crcs: crcs.into_boxed_slice(),
            hashes: hashes.into_boxed_slice(),
        })
    }

    /// Totals family `index`, with its header (nothing without series).
    pub fn render_totals(&self, index: usize, totals: &Totals) -> Result<Bytes, MetricsError> {
        let def = &self.totals_defs[index];
        let mut text = String::new();
        let mut writer = FamilyWriter::new(&def.spec, &mut text);
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
                    let mut writer = FamilyWriter::new(&def.spec, &mut out);
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

/// One resource's series: every per-resource family's lines as an
/// independent raw-deflate piece, all in one buffer (one allocation per
/// resource rather than one per family), with their CRC-32s and text
/// lengths. The text itself is not kept (see `exposition.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// End of each family's lines in the text (which is not kept).
    ends: Box<[u32]>,
    /// Each family's lines as an independent raw-deflate piece (see `gzip`).
    deflated: Bytes,
    /// End of each family's piece in `deflated`.
    deflated_ends: Box<[u32]>,
    /// CRC-32 of each family's lines.
    crcs: Box<[u32]>,
    /// A 64-bit hash of each family's lines (with the CRC, what tells an
    /// unchanged family on the next render).
    hashes: Box<[u64]>,
}

impl Rendered {
    /// Length of the lines of family `index`.
    pub fn chunk_len(&self, index: usize) -> usize {
        let (start, end) = self.range(index);
        end - start
    }

    /// The lines of family `index` as a raw-deflate piece.
    pub fn deflated_chunk(&self, index: usize) -> &[u8] {
        let (start, end) = range(&self.deflated_ends, self.deflated.len(), index);
        &self.deflated[start..end]
    }

    /// The same as a `Bytes` sharing this buffer (no copy).
    pub fn deflated_chunk_bytes(&self, index: usize) -> Bytes {
        let (start, end) = range(&self.deflated_ends, self.deflated.len(), index);
        self.deflated.slice(start..end)
    }

    /// CRC-32 of the lines of family `index`.
    pub fn crc(&self, index: usize) -> u32 {
        self.crcs.get(index).copied().unwrap_or(0)
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.deflated.len()
            + (self.ends.len() + self.deflated_ends.len() + self.crcs.len())
                * std::mem::size_of::<u32>()
            + self.hashes.len() * std::mem::size_of::<u64>()
    }

    /// Bytes held by the deflated pieces.
    pub fn deflated_size(&self) -> usize {
        self.deflated.len()
    }

    fn range(&self, index: usize) -> (usize, usize) {
        range(&self.ends, usize::MAX, index)
    }
}

/// A 64-bit hash of a family's lines (SipHash with fixed keys).
fn hash64(text: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(text);
    hasher.finish()
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
