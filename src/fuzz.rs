//! A fuzz campaign for every parser of outside input, on the stable
//! toolchain: structured generators (inputs shaped like the real thing) and
//! mutations of a corpus (bit flips, cuts, repeats, splices, dictionary
//! tokens), each input run under `catch_unwind`. An input whose outcome has
//! a new *signature* (the parser's result kind and error class — a cheap
//! stand-in for coverage) joins the corpus, so later mutations start from
//! the shapes that reach further.
//!
//! `cargo run --release --example fuzz -- --cases 10000000` runs it; the
//! corpus is kept in `tests/data/fuzz/<target>/` and `tests/fuzz_corpus.rs`
//! replays it in CI.

use std::collections::{BTreeMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

/// One fuzz target.
pub struct Target {
    pub name: &'static str,
    /// Runs the parser (and what the agent does next with its result) on
    /// `input`; returns the outcome's signature. Must not panic.
    pub run: fn(&[u8]) -> String,
    /// A structured input.
    pub generate: fn(&mut Rng) -> Vec<u8>,
    /// Tokens the mutator inserts.
    pub dictionary: &'static [&'static str],
}

/// A small, fast, seedable generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    /// One of `items` (not empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// A reference to one of `items` (not empty).
    pub fn pick_ref<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A number as text, often at an edge.
    pub fn number(&mut self) -> String {
        match self.below(8) {
            0 => "0".to_owned(),
            1 => "-1".to_owned(),
            2 => u64::MAX.to_string(),
            3 => "18446744073709551616".to_owned(),
            4 => format!("{}.{}", self.below(1000), self.below(1000)),
            5 => "1e308".to_owned(),
            6 => "NaN".to_owned(),
            _ => self.below(100_000).to_string(),
        }
    }

    /// A short word, sometimes with odd characters.
    pub fn word(&mut self) -> String {
        const ODD: [&str; 10] = ["", ":", "\"", "\\", " ", "\u{0}", "é", "\u{202e}", "{", "%"];
        let mut out = String::new();
        for _ in 0..1 + self.below(8) {
            if self.chance(12) {
                out.push_str(self.pick(&ODD));
            } else {
                out.push((b'a' + self.below(26) as u8) as char);
            }
        }
        out
    }
}

/// Mutates `input` in place (a few edits).
pub fn mutate(input: &mut Vec<u8>, rng: &mut Rng, dictionary: &[&str], other: &[u8]) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(9) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = rng.next_u64() as u8;
            }
            2 if len > 0 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(16)).min(len);
                input.drain(from..to);
            }
            3 if len > 0 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(32)).min(len);
                let piece = input[from..to].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, piece);
            }
            4 if !dictionary.is_empty() => {
                let token = rng.pick(dictionary).as_bytes().to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, token);
            }
            5 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => input.truncate(rng.below(len)),
            7 => {
                let at = rng.below(len + 1);
                let edge: &[u8] = rng.pick(&[
                    b"\xff",
                    b"\x00",
                    b"\xc3",
                    b"\r\n",
                    b"\n",
                    b"99999999999999999999",
                    b"-",
                ]);
                input.splice(at..at, edge.iter().copied());
            }
            _ => {
                let at = rng.below(len + 1);
                input.insert(at, rng.next_u64() as u8);
            }
        }
    }
    // Keep inputs to the sizes the agent reads at most (and the run fast).
    input.truncate(64 * 1024);
}

/// What one campaign found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub target: &'static str,
    pub inputs: u64,
    /// Inputs that panicked (each a crash to fix), as found.
    pub crashes: Vec<(Vec<u8>, String)>,
    pub corpus_before: usize,
    pub corpus_after: usize,
    /// Distinct outcome signatures seen.
    pub signatures: usize,
    pub elapsed: Duration,
}

/// Runs `target` on `input`, turning a panic into `Err(message)`.
pub fn run_guarded(target: &Target, input: &[u8]) -> Result<String, String> {
    catch_unwind(AssertUnwindSafe(|| (target.run)(input))).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panic".to_owned())
    })
}

/// The corpus files of `target` under `root` (sorted by name).
pub fn corpus(root: &Path, target: &str) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let directory = root.join(target);
    let mut entries = Vec::new();
    if !directory.exists() {
        return Ok(entries);
    }
    for entry in std::fs::read_dir(&directory)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            entries.push((
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path())?,
            ));
        }
    }
    entries.sort();
    Ok(entries)
}

/// How many inputs with new signatures are kept per target.
pub const CORPUS_LIMIT: usize = 96;

/// Runs `cases` inputs against `target`, starting from the corpus in
/// `root` (new interesting inputs are written there when `save`).
pub fn campaign(
    target: &Target,
    cases: u64,
    seed: u64,
    root: &Path,
    save: bool,
) -> std::io::Result<Report> {
    let started = Instant::now();
    let mut rng = Rng::new(seed ^ fnv(target.name.as_bytes()));
    let mut pool: Vec<Vec<u8>> = corpus(root, target.name)?
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect();
    let corpus_before = pool.len();
    let mut signatures: HashSet<String> = HashSet::new();
    let mut report = Report {
        target: target.name,
        corpus_before,
        ..Report::default()
    };
    for input in &pool {
        if let Ok(signature) = run_guarded(target, input) {
            signatures.insert(signature);
        }
    }
    let mut added: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut crash_messages: HashSet<String> = HashSet::new();
    for case in 0..cases {
        let input = if pool.is_empty() || rng.chance(4) {
            (target.generate)(&mut rng)
        } else {
            let mut input = rng.pick_ref(&pool).clone();
            let other = rng.pick_ref(&pool).clone();
            mutate(&mut input, &mut rng, target.dictionary, &other);
            input
        };
        report.inputs = case + 1;
        match run_guarded(target, &input) {
            Ok(signature) => {
                if pool.len() < corpus_before + CORPUS_LIMIT && signatures.insert(signature) {
                    added.insert(format!("{:016x}", fnv(&input)), input.clone());
                    pool.push(input);
                }
            }
            Err(message) => {
                if crash_messages.insert(message.clone()) {
                    report.crashes.push((input, message));
                }
            }
        }
    }
    if save {
        let directory = root.join(target.name);
        std::fs::create_dir_all(&directory)?;
        for (name, bytes) in &added {
            std::fs::write(directory.join(name), bytes)?;
        }
        for (input, _) in &report.crashes {
            std::fs::write(directory.join(format!("crash-{:016x}", fnv(input))), input)?;
        }
    }
    report.corpus_after = pool.len();
    report.signatures = signatures.len();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// FNV-1a, for file names and per-target seeds.
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A signature from a result: `ok`, or `err:` and the error's first words
/// (digits dropped so that values do not make every error new).
fn signature<T, E: std::fmt::Display>(result: &Result<T, E>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(e) => {
            // Up to the first quoted part: the input's own words would make
            // every error look new.
            let text: String = e
                .to_string()
                .chars()
                .take_while(|c| !matches!(c, '"' | '\'' | '`' | '{'))
                .filter(|c| !c.is_ascii_digit())
                .take(48)
                .collect();
            format!("err:{text}")
        }
    }
}

mod targets;

pub use targets::targets;
