//! One scrape's exposition, held as references to the cached per-resource
//! chunks instead of one assembled copy.
//!
//! The cache keeps each chunk only as an independent raw-deflate piece
//! (see `gzip.rs`): a gzip body is the pieces copied into frames between a
//! gzip header and trailer, with no compression at scrape time; a text body
//! inflates them as it is sent. Keeping the text as well cost 17 MiB more at
//! 1,000 resources (RSS above the 32 MiB aim), and scrapers send
//! `Accept-Encoding: gzip`. The measurements below are from before, when
//! the text was cached and sent as is.
//!
//! The DRBD part of 1,000 resources is about 17 MiB in some 31,000 pieces
//! (one per family and resource). It is sent as [`Exposition::into_chunks`]:
//! the pieces copied into frames of [`CHUNK_BYTES`] while the body is
//! written. Measured with `cargo bench --bench metrics_render` (1,000
//! resources, 2 cores at load average 6, so absolute times are inflated;
//! HTTP = request to last byte on loopback, after a one-resource change):
//!
//! | body                          | build/walk | HTTP GET | held per scrape |
//! |-------------------------------|-----------:|---------:|----------------:|
//! | one contiguous copy           |    ~10 ms  |   18 ms  | 17 MiB          |
//! | 256 KiB frames (chosen)       |     ~7 ms  |   20 ms  | 256 KiB         |
//! | 64 KiB frames                 |     ~7 ms  |   26 ms  | 64 KiB          |
//! | every piece a frame (no copy) |     ~1 ms  |   78 ms  | ~1 MiB handles  |
//!
//! Frames answer about as fast as one copy end to end (the transfer
//! dominates) without a second 17 MiB buffer: the cache alone is about half
//! the 32 MiB RSS budget, and each of 50 concurrent scrapers would hold its
//! own copy. Zero-copy pieces lose: hyper writes at most 16 buffers per
//! `writev`, ~550 bytes each, so some 2,000 system calls per scrape.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use flate2::{Decompress, FlushDecompress};

use super::gzip::{Crc, Part, HEADER, TRAILER_LEN};
use super::layout::{Layout, Rendered, Slot};

/// The size of the body frames [`Exposition::into_chunks`] yields.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// The DRBD part for one model generation: the families' headers and totals
/// and every resource's cached chunks, in name order.
#[derive(Debug)]
pub struct DrbdPart {
    layout: Arc<Layout>,
    resources: Vec<Arc<Rendered>>,
    /// The rendered totals families, by totals index.
    totals: Vec<Part>,
    /// Per per-resource family, the length of all its series lines.
    family_lens: Vec<usize>,
    len: usize,
    /// CRC-32 of the whole part.
    crc: Crc,
    /// Length of all deflated pieces.
    deflated_len: usize,
    /// Per block of [`BLOCK`] resources, per per-resource family: the CRC,
    /// text and deflated length of the block's chunks.
    blocks: Vec<Vec<Sum>>,
}

/// Resources per block of [`DrbdPart`]'s sums. `cargo bench --bench
/// metrics_render`, scrape after one change at 1,000 resources: 32 → 0.58 ms,
/// 8 → 0.91 ms (the fold over all blocks costs more than recomputing one).
const BLOCK: usize = 32;

/// The CRC and lengths of consecutive chunks of one family.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    crc: Crc,
    deflated: usize,
}

/// Per family, the sums of `block`'s chunks.
fn block_sums(block: &[Arc<Rendered>], families: usize) -> Vec<Sum> {
    let mut sums = vec![Sum::default(); families];
    for rendered in block {
        for (family, sum) in sums.iter_mut().enumerate() {
            sum.crc
                .push(rendered.crc(family), rendered.chunk_len(family) as u64);
            sum.deflated += rendered.deflated_chunk(family).len();
        }
    }
    sums
}

impl DrbdPart {
    /// The part for `resources` (in name order). Blocks of resources
    /// unchanged since `previous` (the same cached renders at the same
    /// positions) reuse its sums, so a scrape after a few changes combines
    /// about one CRC per block and family rather than one per piece.
    pub fn new(
        layout: Arc<Layout>,
        resources: Vec<Arc<Rendered>>,
        totals: Vec<Part>,
        previous: Option<&DrbdPart>,
    ) -> Self {
        let families = layout.resource_families();
        let previous = previous.filter(|p| Arc::ptr_eq(&p.layout, &layout));
        let blocks: Vec<Vec<Sum>> = resources
            .chunks(BLOCK)
            .enumerate()
            .map(|(index, block)| {
                previous
                    .and_then(|p| p.reusable_block(index, block))
                    .unwrap_or_else(|| block_sums(block, families))
            })
            .collect();
        let mut family_lens = vec![0; families];
        for block in &blocks {
            for (len, sum) in family_lens.iter_mut().zip(block) {
                *len += usize::try_from(sum.crc.len).unwrap_or(usize::MAX);
            }
        }
        let mut part = Self {
            layout,
            resources,
            totals,
            family_lens,
            len: 0,
            crc: Crc::default(),
            deflated_len: 0,
            blocks,
        };
        part.len = (0..part.layout.slots().len())
            .map(|slot| part.slot_len(slot))
            .sum();
        let mut crc = Crc::default();
        let mut deflated_len = 0;
        for (slot, kind) in part.layout.slots().iter().enumerate() {
            if part.slot_len(slot) == 0 {
                continue;
            }
            let head = match *kind {
                Slot::PerResource(family) => part.layout.header(family),
                Slot::Totals(index) => match part.totals.get(index) {
                    Some(totals) => totals,
                    None => continue,
                },
            };
            crc.push(head.crc, head.text.len() as u64);
            deflated_len += head.deflated.len();
            if let Slot::PerResource(family) = *kind {
                for sum in part.blocks.iter().filter_map(|block| block.get(family)) {
                    crc.append(sum.crc);
                    deflated_len += sum.deflated;
                }
            }
        }
        part.crc = crc;
        part.deflated_len = deflated_len;
        part
    }

    /// The sums of block `index` if it holds exactly the renders of `block`.
    fn reusable_block(&self, index: usize, block: &[Arc<Rendered>]) -> Option<Vec<Sum>> {
        let start = index * BLOCK;
        let end = (start + BLOCK).min(self.resources.len());
        let old = self.resources.get(start..end)?;
        let same =
            old.len() == block.len() && old.iter().zip(block).all(|(a, b)| Arc::ptr_eq(a, b));
        same.then(|| self.blocks.get(index).cloned()).flatten()
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was rendered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn slot_len(&self, slot: usize) -> usize {
        match self.layout.slots().get(slot) {
            Some(Slot::PerResource(family)) => match self.family_lens[*family] {
                0 => 0,
                lines => self.layout.header(*family).text.len() + lines,
            },
            Some(Slot::Totals(index)) => self.totals.get(*index).map_or(0, |t| t.text.len()),
            None => 0,
        }
    }

    /// The piece at `step` of `slot`: step 0 is the header (or the totals
    /// family), step `k` the chunk of the `k`-th resource.
    fn piece(&self, slot: usize, step: usize) -> Option<Piece<'_>> {
        match *self.layout.slots().get(slot)? {
            Slot::PerResource(family) if step == 0 => {
                Some(Piece::Whole(self.layout.header(family)))
            }
            Slot::PerResource(family) => {
                let rendered = self.resources.get(step - 1)?;
                Some(Piece::Chunk(rendered, family))
            }
            Slot::Totals(index) if step == 0 => self.totals.get(index).map(Piece::Whole),
            Slot::Totals(_) => None,
        }
    }

    /// Number of steps of `slot` (0 when the family has no series).
    fn steps(&self, slot: usize) -> usize {
        match self.layout.slots().get(slot) {
            _ if self.slot_len(slot) == 0 => 0,
            Some(Slot::PerResource(_)) => 1 + self.resources.len(),
            Some(Slot::Totals(_)) => 1,
            None => 0,
        }
    }
}

/// A piece of an exposition, as text or deflated.
enum Piece<'a> {
    Whole(&'a Part),
    Chunk(&'a Rendered, usize),
    /// gzip framing (only in gzip bodies).
    Raw(&'a [u8]),
}

impl Piece<'_> {
    /// The piece as raw deflate (gzip framing as is).
    fn deflated(&self) -> &[u8] {
        match self {
            Self::Whole(part) => &part.deflated,
            Self::Chunk(rendered, family) => rendered.deflated_chunk(*family),
            Self::Raw(bytes) => bytes,
        }
    }

    /// The same as a `Bytes` sharing the cache's buffer where it can.
    fn deflated_bytes(&self) -> Bytes {
        match self {
            Self::Whole(part) => part.deflated.clone(),
            Self::Chunk(rendered, family) => rendered.deflated_chunk_bytes(*family),
            Self::Raw(bytes) => Bytes::copy_from_slice(bytes),
        }
    }
}

/// One scrape's exposition: the agent part, the DRBD part, `drbd_version`
/// with `process_*`.
#[derive(Debug, Clone)]
pub struct Exposition {
    head: Part,
    drbd: Arc<DrbdPart>,
    tail: Part,
    /// The last block and trailer of the gzip body.
    trailer: [u8; TRAILER_LEN],
}

impl Exposition {
    pub fn new(head: Part, drbd: Arc<DrbdPart>, tail: Part) -> Self {
        let mut crc = Crc::default();
        crc.push(head.crc, head.text.len() as u64);
        crc.append(drbd.crc);
        crc.push(tail.crc, tail.text.len() as u64);
        let trailer = crc.trailer();
        Self {
            head,
            drbd,
            tail,
            trailer,
        }
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.head.text.len() + self.drbd.len() + self.tail.text.len()
    }

    /// Length of the gzip body in bytes.
    pub fn gzip_len(&self) -> usize {
        HEADER.len()
            + self.head.deflated.len()
            + self.drbd.deflated_len
            + self.tail.deflated.len()
            + TRAILER_LEN
    }

    /// The gzip body in one contiguous buffer (a copy).
    pub fn to_gzip_bytes(&self) -> Bytes {
        self.collect(true)
    }

    /// The gzip body in frames of about [`CHUNK_BYTES`].
    pub fn into_gzip_chunks(self) -> Chunks {
        Chunks {
            exposition: self,
            cursor: Cursor::gzip(),
            target: CHUNK_BYTES,
            inflate: None,
        }
    }

    fn collect(&self, gzip: bool) -> Bytes {
        if !gzip {
            let mut out = BytesMut::with_capacity(self.len());
            for frame in self.clone().into_chunks() {
                out.extend_from_slice(&frame);
            }
            return out.freeze();
        }
        let mut out = BytesMut::with_capacity(self.gzip_len());
        let mut cursor = Cursor::gzip();
        while let Some(piece) = cursor.next_piece(self) {
            out.extend_from_slice(piece.deflated());
        }
        out.freeze()
    }

    /// True when nothing was rendered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole text in one contiguous buffer (a copy).
    pub fn to_bytes(&self) -> Bytes {
        self.collect(false)
    }

    /// The whole text (a copy).
    pub fn to_text(&self) -> String {
        // Every piece was rendered from a `String` and pieces end at line ends.
        String::from_utf8_lossy(&self.to_bytes()).into_owned()
    }

    /// The body in frames of about [`CHUNK_BYTES`] (see the module doc).
    pub fn into_chunks(self) -> Chunks {
        self.into_chunks_of(CHUNK_BYTES)
    }

    /// The body in frames of about `target` bytes (at least 1).
    pub fn into_chunks_of(self, target: usize) -> Chunks {
        Chunks {
            exposition: self,
            cursor: Cursor::default(),
            target: target.max(1),
            inflate: Some(Inflate::default()),
        }
    }

    /// Every piece as its own frame, without copying (for comparison).
    pub fn into_pieces(self) -> Pieces {
        Pieces {
            exposition: self,
            cursor: Cursor::default(),
            decompress: Decompress::new(false),
        }
    }
}

/// A position in an exposition's text or gzip body.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    stage: Stage,
    slot: usize,
    step: usize,
    gzip: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Stage {
    GzipHeader,
    #[default]
    Head,
    Drbd,
    Tail,
    GzipTrailer,
    Done,
}

impl Cursor {
    fn gzip() -> Self {
        Self {
            stage: Stage::GzipHeader,
            gzip: true,
            ..Self::default()
        }
    }

    /// The next non-empty piece, advancing past it.
    fn next_piece<'e>(&mut self, exposition: &'e Exposition) -> Option<Piece<'e>> {
        loop {
            match self.stage {
                Stage::GzipHeader => {
                    self.stage = Stage::Head;
                    return Some(Piece::Raw(&HEADER));
                }
                Stage::Head => {
                    self.stage = Stage::Drbd;
                    if !exposition.head.text.is_empty() {
                        return Some(Piece::Whole(&exposition.head));
                    }
                }
                Stage::Drbd => {
                    let drbd = &exposition.drbd;
                    if self.slot >= drbd.layout.slots().len() {
                        self.stage = Stage::Tail;
                        continue;
                    }
                    if self.step >= drbd.steps(self.slot) {
                        self.slot += 1;
                        self.step = 0;
                        continue;
                    }
                    let step = self.step;
                    self.step += 1;
                    match drbd.piece(self.slot, step) {
                        Some(piece) if !piece.deflated().is_empty() => return Some(piece),
                        _ => {}
                    }
                }
                Stage::Tail => {
                    self.stage = match self.gzip {
                        true => Stage::GzipTrailer,
                        false => Stage::Done,
                    };
                    if !exposition.tail.text.is_empty() {
                        return Some(Piece::Whole(&exposition.tail));
                    }
                }
                Stage::GzipTrailer => {
                    self.stage = Stage::Done;
                    return Some(Piece::Raw(&exposition.trailer));
                }
                Stage::Done => return None,
            }
        }
    }
}

/// The body as frames of about [`CHUNK_BYTES`]: gzip frames copied from
/// the cached pieces (pieces at least that large go out without a copy), or
/// text frames inflated from them.
#[derive(Debug)]
pub struct Chunks {
    exposition: Exposition,
    cursor: Cursor,
    target: usize,
    /// Set for text frames.
    inflate: Option<Inflate>,
}

/// Inflating the pieces of an exposition as one raw deflate stream.
struct Inflate {
    decompress: Decompress,
    input: Bytes,
    done: bool,
}

impl Default for Inflate {
    fn default() -> Self {
        Self {
            decompress: Decompress::new(false),
            input: Bytes::new(),
            done: false,
        }
    }
}

impl std::fmt::Debug for Inflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflate").finish_non_exhaustive()
    }
}

/// Inflates `input` into `out`'s spare capacity; returns the input used.
/// The pieces were deflated here, so an error is a bug: it is logged and
/// the text ends there (the client sees a short body).
fn inflate_into(decompress: &mut Decompress, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let before = decompress.total_in();
    match decompress.decompress_vec(input, out, FlushDecompress::Sync) {
        Ok(_) => Some(usize::try_from(decompress.total_in() - before).unwrap_or(input.len())),
        Err(e) => {
            tracing::error!(error = %e, "cannot inflate cached metrics");
            None
        }
    }
}

impl Chunks {
    /// The next text frame of about `target` bytes.
    fn next_text(&mut self) -> Option<Bytes> {
        let inflate = self.inflate.as_mut()?;
        if inflate.done {
            return None;
        }
        let mut out = Vec::with_capacity(self.target);
        while out.len() < out.capacity() {
            if inflate.input.is_empty() {
                match self.cursor.next_piece(&self.exposition) {
                    Some(Piece::Raw(_)) => continue,
                    Some(piece) => inflate.input = piece.deflated_bytes(),
                    None => {
                        // Drain what the inflater still holds.
                        let before = out.len();
                        if inflate_into(&mut inflate.decompress, &[], &mut out).is_none()
                            || out.len() == before
                        {
                            inflate.done = true;
                            break;
                        }
                        continue;
                    }
                }
            }
            let Some(used) = inflate_into(&mut inflate.decompress, &inflate.input, &mut out) else {
                inflate.done = true;
                break;
            };
            inflate.input = inflate.input.slice(used.min(inflate.input.len())..);
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

impl Iterator for Chunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.inflate.is_some() {
            return self.next_text();
        }
        let mut buffer: Option<BytesMut> = None;
        loop {
            let before = self.cursor;
            let Some(piece) = self.cursor.next_piece(&self.exposition) else {
                return buffer.map(BytesMut::freeze);
            };
            let slice = piece.deflated();
            match buffer.as_mut() {
                None if slice.len() >= self.target => return Some(piece.deflated_bytes()),
                None => {
                    let mut fresh = BytesMut::with_capacity(self.target + slice.len());
                    fresh.extend_from_slice(slice);
                    buffer = Some(fresh);
                }
                Some(filled) if filled.len() + slice.len() > self.target + self.target / 2 => {
                    // Keep this piece for the next frame.
                    self.cursor = before;
                    return buffer.map(BytesMut::freeze);
                }
                Some(filled) => filled.extend_from_slice(slice),
            }
            if buffer.as_ref().is_some_and(|b| b.len() >= self.target) {
                return buffer.map(BytesMut::freeze);
            }
        }
    }
}

/// Every piece's text as its own `Bytes`, each inflated on its own (the
/// pieces are independent deflate streams).
pub struct Pieces {
    exposition: Exposition,
    cursor: Cursor,
    decompress: Decompress,
}

impl std::fmt::Debug for Pieces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pieces").finish_non_exhaustive()
    }
}

impl Iterator for Pieces {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let piece = self.cursor.next_piece(&self.exposition)?;
        let input = piece.deflated();
        self.decompress.reset(false);
        let mut out = Vec::with_capacity(input.len() * 6);
        let mut used = 0;
        loop {
            used += inflate_into(
                &mut self.decompress,
                &input[used.min(input.len())..],
                &mut out,
            )?;
            if used >= input.len() && out.len() < out.capacity() {
                return Some(Bytes::from(out));
            }
            out.reserve(out.capacity().max(256));
        }
    }
}
