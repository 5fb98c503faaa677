//! One scrape's exposition, held as references to the cached per-resource
//! chunks instead of one assembled copy.
//!
//! The cache keeps each chunk twice: as text and as an independent
//! raw-deflate piece (see `gzip.rs`). A gzip body is the pieces copied into
//! frames between a gzip header and trailer, with no compression at scrape
//! time; a text body is the text chunks copied into frames (and, since
//! 2026-12-03, the agent part and the tail are not compressed for it:
//! [`PlainExposition`]). Nothing is rendered or compressed on the request
//! path while nothing changed.
//!
//! (From issue 15 until the series budget, only the deflated pieces were
//! kept and a plain scrape inflated them: the text of 133,000 series cost
//! 17 MiB more at 1,000 resources. With one series per current state the
//! text of 1,000 resources is about 6 MiB, and a plain scrape that inflated
//! it took ~10 ms instead of ~2 ms.)
//!
//! The DRBD part of 1,000 resources is some 31,000 pieces (one per family
//! and resource). It is sent as [`Exposition::into_chunks`]: the pieces
//! copied into frames of [`CHUNK_BYTES`] while the body is written.
//! Measured with `cargo bench --bench metrics_render` (1,000 resources of
//! the one-hot form, 2 cores at load average 6, so absolute times are
//! inflated; HTTP = request to last byte on loopback, after a one-resource
//! change):
//!
//! | body                          | build/walk | HTTP GET | held per scrape |
//! |-------------------------------|-----------:|---------:|----------------:|
//! | one contiguous copy           |    ~10 ms  |   18 ms  | 17 MiB          |
//! | 256 KiB frames (chosen)       |     ~7 ms  |   20 ms  | 256 KiB         |
//! | 64 KiB frames                 |     ~7 ms  |   26 ms  | 64 KiB          |
//! | every piece a frame (no copy) |     ~1 ms  |   78 ms  | ~1 MiB handles  |
//!
//! Frames answer about as fast as one copy made per scrape (the copy from
//! ~31,000 pieces costs about what it saves) without a second copy of the
//! body per scraper. Zero-copy pieces lose: hyper writes at most 16 buffers
//! per `writev`, ~550 bytes each, so some 2,000 system calls per scrape.
//!
//! Two ways to a faster plain body were measured on 2026-12-03 (`cargo
//! bench --bench metrics_e2e -- 1000 --static-dump`: the same 5.25 MB body
//! from a server writing one prebuilt buffer takes 2.5–2.7 ms here, these
//! frames 5.5–6.9 ms) and not kept: the DRBD part's text assembled once per
//! part and sent as is (3.8 ms while nothing changes, but it holds the 5 MB
//! beside the per-resource chunks: RSS 29.5 → 32.7 MiB, over issue 15's
//! 32 MiB, and under a flowing stream each plain scrape assembles it anew:
//! no faster), and keeping only that text with the per-resource chunks as
//! views into it (no extra memory, 3.5–4.4 ms plain under change, but every
//! rebuild then copies and maps 5 MB: gzip p50 3.5 → 7.5 ms, 60 % more CPU
//! per event).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::gzip::{Crc, Deflater, Part, HEADER, TRAILER_LEN};
use super::layout::{Layout, Rendered, Slot};
use super::MetricsError;

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
    /// Per block of [`BLOCK`] resources, per per-resource family: the
    /// block's lines of that family as one deflated piece, with their CRC.
    blocks: Vec<Arc<[BlockPiece]>>,
}

/// Resources per block: a gzip body holds one deflated piece per block and
/// family. Larger blocks compress better (similar lines together) and cost
/// more to compress again after a change in one of their resources. The
/// gzip body of 1,000 resources × 2 peers (current form, 5.3 MB of text), by
/// resources per block: 1 → 3.2 MB (a piece of 1–2 lines barely
/// compresses), 4 → 1.1 MB, 8 → 0.68 MB, 16 → 0.48 MB, 32 → 0.38 MB; with
/// 32 the agent spent 5 times the CPU per event of 8 compressing blocks
/// again (`cargo bench --bench metrics_e2e`).
const BLOCK: usize = 8;

/// One block's lines of one family.
#[derive(Debug, Clone, Default)]
struct BlockPiece {
    crc: Crc,
    /// A 64-bit hash of the lines (with the CRC and length, what tells
    /// unchanged lines on the next build).
    hash: u64,
    deflated: Bytes,
}

/// A 64-bit hash of a piece's lines (SipHash with fixed keys).
fn hash64(text: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(text);
    hasher.finish()
}

/// Per family, `block`'s chunks as one deflated piece. A family whose lines
/// equal those of the same family in `before` (the previous build's block at
/// this position: same length, CRC-32 and hash) keeps its piece: a change of
/// counters touches a few of the ~30 families, and compressing (mostly
/// resetting the compressor) is the bulk of the cost.
fn block_pieces(
    block: &[Arc<Rendered>],
    families: usize,
    before: Option<&[BlockPiece]>,
    deflater: &mut Deflater,
) -> Result<Arc<[BlockPiece]>, MetricsError> {
    let mut text = Vec::new();
    (0..families)
        .map(|family| {
            text.clear();
            for rendered in block {
                text.extend_from_slice(rendered.chunk(family));
            }
            let crc = Crc {
                crc: crc32fast::hash(&text),
                len: text.len() as u64,
            };
            let hash = hash64(&text);
            let same = before
                .and_then(|pieces| pieces.get(family))
                .filter(|old| old.crc == crc && old.hash == hash);
            let deflated = match same {
                Some(old) => old.deflated.clone(),
                None => deflater.piece(&text)?,
            };
            Ok(BlockPiece {
                crc,
                hash,
                deflated,
            })
        })
        .collect()
}

impl DrbdPart {
    /// The part for `resources` (in name order). Blocks of resources
    /// unchanged since `previous` (the same cached renders at the same
    /// positions) reuse its pieces, so a scrape after a few changes
    /// compresses about one block per changed resource.
    pub fn new(
        layout: Arc<Layout>,
        resources: Vec<Arc<Rendered>>,
        totals: Vec<Part>,
        previous: Option<&DrbdPart>,
        deflater: &mut Deflater,
    ) -> Result<Self, MetricsError> {
        let families = layout.resource_families();
        let previous = previous.filter(|p| Arc::ptr_eq(&p.layout, &layout));
        let blocks: Vec<Arc<[BlockPiece]>> = resources
            .chunks(BLOCK)
            .enumerate()
            .map(
                |(index, block)| match previous.and_then(|p| p.reusable_block(index, block)) {
                    Some(pieces) => Ok(pieces),
                    None => {
                        let before = previous.and_then(|p| p.blocks.get(index));
                        block_pieces(block, families, before.map(|b| &b[..]), deflater)
                    }
                },
            )
            .collect::<Result<_, MetricsError>>()?;
        let mut family_lens = vec![0; families];
        for block in &blocks {
            for (len, piece) in family_lens.iter_mut().zip(block.iter()) {
                *len += usize::try_from(piece.crc.len).unwrap_or(usize::MAX);
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
                for piece in part.blocks.iter().filter_map(|block| block.get(family)) {
                    crc.append(piece.crc);
                    deflated_len += piece.deflated.len();
                }
            }
        }
        part.crc = crc;
        part.deflated_len = deflated_len;
        Ok(part)
    }

    /// The pieces of block `index` if it holds exactly the renders of `block`.
    fn reusable_block(&self, index: usize, block: &[Arc<Rendered>]) -> Option<Arc<[BlockPiece]>> {
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

    /// Length of its deflated pieces in bytes.
    pub fn deflated_len(&self) -> usize {
        self.deflated_len
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
    /// family), step `k` the text chunk of the `k`-th resource or, in a gzip
    /// body, the deflated piece of the `k`-th block.
    fn piece(&self, slot: usize, step: usize, gzip: bool) -> Option<Piece<'_>> {
        match *self.layout.slots().get(slot)? {
            Slot::PerResource(family) if step == 0 => {
                Some(Piece::Whole(self.layout.header(family)))
            }
            Slot::PerResource(family) if gzip => {
                let block = self.blocks.get(step - 1)?;
                Some(Piece::Block(&block.get(family)?.deflated))
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
    fn steps(&self, slot: usize, gzip: bool) -> usize {
        match self.layout.slots().get(slot) {
            _ if self.slot_len(slot) == 0 => 0,
            Some(Slot::PerResource(_)) if gzip => 1 + self.blocks.len(),
            Some(Slot::PerResource(_)) => 1 + self.resources.len(),
            Some(Slot::Totals(_)) => 1,
            None => 0,
        }
    }
}

/// A piece of an exposition, as text or deflated.
enum Piece<'a> {
    Whole(&'a Part),
    /// A resource's lines of a family (only in text bodies).
    Chunk(&'a Rendered, usize),
    /// A block's lines of a family, deflated (only in gzip bodies).
    Block(&'a Bytes),
    /// gzip framing (only in gzip bodies).
    Raw(&'a [u8]),
}

impl Piece<'_> {
    /// The piece as text (gzip framing as is).
    fn text(&self) -> &[u8] {
        match self {
            Self::Whole(part) => &part.text,
            Self::Chunk(rendered, family) => rendered.chunk(*family),
            Self::Block(bytes) => bytes,
            Self::Raw(bytes) => bytes,
        }
    }

    /// The same as a `Bytes` sharing the cache's buffer where it can.
    fn text_bytes(&self) -> Bytes {
        match self {
            Self::Whole(part) => part.text.clone(),
            Self::Chunk(rendered, family) => rendered.chunk_bytes(*family),
            Self::Block(bytes) => (*bytes).clone(),
            Self::Raw(bytes) => Bytes::copy_from_slice(bytes),
        }
    }

    /// The piece in the body's encoding.
    fn encoded(&self, gzip: bool) -> &[u8] {
        if gzip {
            self.deflated()
        } else {
            self.text()
        }
    }

    /// The same as a `Bytes` sharing the cache's buffer where it can.
    fn encoded_bytes(&self, gzip: bool) -> Bytes {
        if gzip {
            self.deflated_bytes()
        } else {
            self.text_bytes()
        }
    }

    /// The piece as raw deflate (gzip framing as is).
    fn deflated(&self) -> &[u8] {
        match self {
            Self::Whole(part) => &part.deflated,
            // Text chunks are only in text bodies.
            Self::Chunk(rendered, family) => rendered.chunk(*family),
            Self::Block(bytes) => bytes,
            Self::Raw(bytes) => bytes,
        }
    }

    /// The same as a `Bytes` sharing the cache's buffer where it can.
    fn deflated_bytes(&self) -> Bytes {
        match self {
            Self::Whole(part) => part.deflated.clone(),
            Self::Chunk(rendered, family) => rendered.chunk_bytes(*family),
            Self::Block(bytes) => (*bytes).clone(),
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
            gzip: true,
        }
    }

    fn collect(&self, gzip: bool) -> Bytes {
        let (mut out, mut cursor) = match gzip {
            true => (BytesMut::with_capacity(self.gzip_len()), Cursor::gzip()),
            false => (BytesMut::with_capacity(self.len()), Cursor::default()),
        };
        while let Some(piece) = cursor.next_piece(self) {
            out.extend_from_slice(piece.encoded(gzip));
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
            gzip: false,
        }
    }

    /// Every piece as its own frame, without copying (for comparison).
    pub fn into_pieces(self) -> Pieces {
        Pieces {
            exposition: self,
            cursor: Cursor::default(),
        }
    }
}

/// One scrape's exposition as text only (a plain scrape: the agent part
/// and the tail are not compressed).
#[derive(Debug, Clone)]
pub struct PlainExposition(Exposition);

impl PlainExposition {
    pub fn new(head: Bytes, drbd: Arc<DrbdPart>, tail: Bytes) -> Self {
        let text_only = |text: Bytes| Part {
            text,
            ..Part::default()
        };
        Self(Exposition::new(text_only(head), drbd, text_only(tail)))
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing was rendered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The body in frames of about [`CHUNK_BYTES`] (see the module doc).
    pub fn into_frames(self) -> Chunks {
        self.0.into_chunks()
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
                    if self.step >= drbd.steps(self.slot, self.gzip) {
                        self.slot += 1;
                        self.step = 0;
                        continue;
                    }
                    let step = self.step;
                    self.step += 1;
                    match drbd.piece(self.slot, step, self.gzip) {
                        Some(piece) if !piece.encoded(self.gzip).is_empty() => return Some(piece),
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

/// The body as frames of about [`CHUNK_BYTES`] copied from the cached
/// pieces (gzip or text; pieces at least that large go out without a copy).
#[derive(Debug)]
pub struct Chunks {
    exposition: Exposition,
    cursor: Cursor,
    target: usize,
    gzip: bool,
}

impl Iterator for Chunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let gzip = self.gzip;
        let mut buffer: Option<BytesMut> = None;
        loop {
            let before = self.cursor;
            let Some(piece) = self.cursor.next_piece(&self.exposition) else {
                return buffer.map(BytesMut::freeze);
            };
            let slice = piece.encoded(gzip);
            match buffer.as_mut() {
                None if slice.len() >= self.target => return Some(piece.encoded_bytes(gzip)),
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

/// Every piece's text as its own `Bytes`, sharing the cache's buffers.
#[derive(Debug)]
pub struct Pieces {
    exposition: Exposition,
    cursor: Cursor,
}

impl Iterator for Pieces {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let piece = self.cursor.next_piece(&self.exposition)?;
        Some(piece.text_bytes())
    }
}
