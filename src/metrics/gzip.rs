//! gzip bodies assembled from cached raw-deflate pieces, so that a scrape
//! compresses only the small per-scrape parts.
//!
//! Every cached piece of text (one family of one resource, a family header)
//! is compressed on its own: a raw deflate stream reset before the piece and
//! ended with a sync flush, i.e. non-final blocks ending on a byte boundary
//! and referring to no earlier bytes. Such pieces concatenate into one
//! valid deflate stream in any order. A body is then the gzip header, the
//! pieces in exposition order, a final empty block, and the trailer: the
//! CRC-32 of the whole text (the pieces' CRCs combined in order) and its
//! length mod 2^32 (RFC 1952).

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};

use super::MetricsError;

/// The deflate level of the cached pieces. Measured on a 550-byte piece
/// (one family of one resource) with flate2's zlib-rs backend, compressor
/// reset per piece: level 1 2.7 µs and 151 bytes, levels 2-6 6.7-7.1 µs and
/// 140-142 bytes (miniz_oxide: 23 µs at any level, the reset dominates).
/// Changed resources are compressed at scrape time, so speed wins.
const LEVEL: u32 = 1;

/// The gzip member header: deflate, no flags, no time, OS unknown.
pub(super) const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A final, empty block with fixed codes: BFINAL=1, BTYPE=01, end-of-block.
const LAST_BLOCK: [u8; 2] = [0x03, 0x00];

/// Bytes after the pieces: the last block and the trailer.
pub(super) const TRAILER_LEN: usize = LAST_BLOCK.len() + 8;

/// A raw deflate compressor reused for many independent pieces.
pub struct Deflater {
    compress: Compress,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater").finish_non_exhaustive()
    }
}

impl Default for Deflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Deflater {
    pub fn new() -> Self {
        Self {
            compress: Compress::new(Compression::new(LEVEL), false),
        }
    }

    /// Appends `text` to `out` as an independent, byte-aligned, non-final
    /// deflate piece (nothing for empty text).
    pub fn append(&mut self, text: &[u8], out: &mut Vec<u8>) -> Result<(), MetricsError> {
        if text.is_empty() {
            return Ok(());
        }
        self.compress.reset();
        out.reserve(text.len() / 4 + 64);
        loop {
            let consumed = usize::try_from(self.compress.total_in()).unwrap_or(usize::MAX);
            let rest = text.get(consumed..).unwrap_or_default();
            self.compress
                .compress_vec(rest, out, FlushCompress::Sync)
                .map_err(|e| MetricsError::Compress(e.to_string()))?;
            let done =
                usize::try_from(self.compress.total_in()).unwrap_or(usize::MAX) >= text.len();
            // The flush is complete once it left output space unused.
            if done && out.len() < out.capacity() {
                return Ok(());
            }
            out.reserve(out.capacity().max(256));
        }
    }

    /// `text` as one piece.
    pub fn piece(&mut self, text: &[u8]) -> Result<Bytes, MetricsError> {
        let mut out = Vec::new();
        self.append(text, &mut out)?;
        // `Bytes` would keep the spare capacity of the grown vector.
        out.shrink_to_fit();
        Ok(Bytes::from(out))
    }
}

/// A piece of text with its deflated form and CRC-32.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Part {
    pub text: Bytes,
    pub deflated: Bytes,
    pub crc: u32,
}

impl Part {
    pub fn new(text: Bytes, deflater: &mut Deflater) -> Result<Self, MetricsError> {
        Ok(Self {
            deflated: deflater.piece(&text)?,
            crc: crc32fast::hash(&text),
            text,
        })
    }
}

/// The CRC-32 and length of a text built piece by piece.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Crc {
    pub crc: u32,
    pub len: u64,
}

impl Crc {
    /// Extends the text by a piece of `len` bytes with CRC `crc`.
    pub(super) fn push(&mut self, crc: u32, len: u64) {
        if len == 0 {
            return;
        }
        self.crc = crc32_combine(self.crc, crc, len);
        self.len += len;
    }

    /// Extends the text by another built text.
    pub(super) fn append(&mut self, other: Crc) {
        self.push(other.crc, other.len);
    }

    /// The last block and the gzip trailer for this text.
    pub(super) fn trailer(&self) -> [u8; TRAILER_LEN] {
        let mut out = [0; TRAILER_LEN];
        out[..2].copy_from_slice(&LAST_BLOCK);
        out[2..6].copy_from_slice(&self.crc.to_le_bytes());
        // ISIZE is the length modulo 2^32: truncation is the format.
        out[6..].copy_from_slice(&(self.len as u32).to_le_bytes());
        out
    }
}

/// The CRC-32 polynomial, reflected (as gzip and zlib use it).
const POLY: u32 = 0xedb8_8320;

/// `a * b mod POLY` for polynomials over GF(2) in reflected bit order
/// (bit 31 is x^0).
fn multiply(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    let mut bit = 1u32 << 31;
    while bit != 0 {
        if a & bit != 0 {
            product ^= b;
        }
        // b * x mod POLY.
        b = (b >> 1) ^ (POLY & 0u32.wrapping_sub(b & 1));
        bit >>= 1;
    }
    product
}

/// `x^(8 * len) mod POLY`: the factor that moves a CRC past `len` bytes.
fn shift_factor(len: u64) -> u32 {
    // SQUARES[k] = x^(2^k) mod POLY; a byte is 8 = 2^3 bits.
    static SQUARES: std::sync::OnceLock<[u32; 64]> = std::sync::OnceLock::new();
    let squares = SQUARES.get_or_init(|| {
        let mut table = [0u32; 64];
        let mut power = 1u32 << 30; // x^1
        for entry in &mut table {
            *entry = power;
            power = multiply(power, power);
        }
        table
    });
    let mut factor = 1u32 << 31; // x^0
    let mut bits = len;
    let mut k = 3;
    while bits != 0 {
        if bits & 1 != 0 {
            factor = multiply(squares[k % 64], factor);
        }
        bits >>= 1;
        k += 1;
    }
    factor
}

/// Lengths below this have their shift factor in a table (16 KiB): pieces
/// are one family of one resource, mostly a few hundred bytes.
const SHIFT_TABLE_LEN: usize = 4096;

/// The CRC-32 of `a ++ b` from the CRC-32 of `a`, that of `b` and `b`'s
/// length (what zlib's `crc32_combine` computes). With the table one
/// combination is a single 32-step multiplication, about four times faster
/// than `crc32fast`'s matrix method; a scrape and a background refresh
/// combine thousands.
pub(super) fn crc32_combine(a: u32, b: u32, len_b: u64) -> u32 {
    static SHIFTS: std::sync::OnceLock<Box<[u32]>> = std::sync::OnceLock::new();
    let shifts = SHIFTS.get_or_init(|| (0..SHIFT_TABLE_LEN as u64).map(shift_factor).collect());
    let factor = usize::try_from(len_b)
        .ok()
        .and_then(|len| shifts.get(len).copied())
        .unwrap_or_else(|| shift_factor(len_b));
    multiply(factor, a) ^ b
}

/// Whether an `Accept-Encoding` value accepts gzip: `gzip` (or `x-gzip`)
/// with a q-value above 0, or else `*` with one.
pub fn accepts_gzip(value: &str) -> bool {
    let mut star = false;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|param| {
                let (key, value) = param.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| value.trim().parse::<f32>().unwrap_or(0.0))
            })
            .next()
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return q > 0.0;
        }
        if coding == "*" {
            star = q > 0.0;
        }
    }
    star
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn pieces_concatenate_into_one_gzip_member() {
        let texts: [&[u8]; 4] = [
            b"a{x=\"1\"} 1\n",
            b"",
            b"b 2\nb 2\nb 2\nb 2\n",
            &[b'z'; 70_000],
        ];
        let mut deflater = Deflater::new();
        let mut body = HEADER.to_vec();
        let mut crc = Crc::default();
        let mut plain = Vec::new();
        for text in texts {
            let part = Part::new(Bytes::copy_from_slice(text), &mut deflater).unwrap();
            assert_eq!(part.deflated.is_empty(), text.is_empty());
            body.extend_from_slice(&part.deflated);
            crc.push(part.crc, text.len() as u64);
            plain.extend_from_slice(text);
        }
        body.extend_from_slice(&crc.trailer());
        assert_eq!(gunzip(&body), plain);
        assert_eq!(crc.crc, crc32fast::hash(&plain));
    }

    fn crc32fast_combine(a: u32, b: u32, len_b: u64) -> u32 {
        let mut hasher = crc32fast::Hasher::new_with_initial(a);
        hasher.combine(&crc32fast::Hasher::new_with_initial_len(b, len_b));
        hasher.finalize()
    }

    #[test]
    fn combine_equals_hashing_the_concatenation() {
        let data: Vec<u8> = (0..9000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for split in [0, 1, 2, 7, 100, 4095, 4096, 4097, 8999, 9000] {
            let (a, b) = data.split_at(split);
            let combined = crc32_combine(crc32fast::hash(a), crc32fast::hash(b), b.len() as u64);
            assert_eq!(combined, crc32fast::hash(&data), "split at {split}");
        }
    }

    proptest::proptest! {
        #[test]
        fn combine_agrees_with_crc32fast(a: u32, b: u32, len in 0u64..1 << 40) {
            proptest::prop_assert_eq!(crc32_combine(a, b, len), crc32fast_combine(a, b, len));
        }
    }

    #[test]
    fn accept_encoding_values() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, GZIP;q=0.5"));
        assert!(accepts_gzip("br, *"));
        assert!(accepts_gzip("x-gzip"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("gzip; q=0.0, *"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip(""));
        assert!(!accepts_gzip("*;q=0"));
    }
}
