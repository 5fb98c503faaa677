//! The throttle journal: the options in force before the agent changed a
//! peer device, so they can be put back (resync end, shutdown, throttling
//! disabled, start-up after a crash).
//!
//! [`Journal::parse`] and [`Journal::to_json`] are pure; [`JournalStore`]
//! does the file I/O: atomic writes (temp file, fsync, rename, fsync of the
//! directory), a corrupt or foreign journal renamed aside to `.corrupt`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::options::{PeerKey, PeerOptions};

/// The journal's file name under `[state] directory`.
pub const JOURNAL_FILE: &str = "throttle-journal.json";
/// The format version written and accepted.
pub(super) const JOURNAL_VERSION: u32 = 1;
/// Largest journal read (a corrupt giant file is not loaded).
const MAX_JOURNAL_BYTES: u64 = 16 * 1024 * 1024;

/// The recorded options of the peer devices the agent is in charge of.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Journal {
    pub node: String,
    pub entries: BTreeMap<PeerKey, PeerOptions>,
    /// SyncSource peer devices: the c-min-rate (KiB/s) in force before the
    /// agent set it to 0 (c-max-rate is not touched there).
    pub sources: BTreeMap<PeerKey, u64>,
}

impl Journal {
    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.sources.is_empty()
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalFile {
    version: u32,
    node: String,
    entries: Vec<JournalEntry>,
    /// Absent when empty, so such a journal reads as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sources: Vec<SourceEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceEntry {
    resource: String,
    peer_node_id: u32,
    volume: u32,
    c_min_rate_kib: u64,
}

/// A resource name DRBD would not accept (empty, blanks, control characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resource name {0:?} is not valid")]
struct InvalidResource(String);

fn check_resource(name: &str) -> Result<(), InvalidResource> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidResource(name.to_owned()));
    }
    Ok(())
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalEntry {
    resource: String,
    peer_node_id: u32,
    volume: u32,
    c_max_rate_kib: u64,
    c_min_rate_kib: u64,
}

/// Why a journal cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("journal is not valid: {0}")]
    Syntax(String),
    #[error("journal version {found} is not supported (expected {JOURNAL_VERSION})")]
    Version { found: u32 },
    #[error("journal belongs to node {found:?}, this node is {expected:?}")]
    OtherNode { found: String, expected: String },
    #[error("journal entry {index}: {message}")]
    Entry { index: usize, message: String },
    #[error("journal source entry {index}: {message}")]
    Source { index: usize, message: String },
}

impl Journal {
    pub fn new(node: &str) -> Self {
        Self {
            node: node.to_owned(),
            entries: BTreeMap::new(),
            sources: BTreeMap::new(),
        }
    }

    /// Parses and checks a journal written for `node`.
    pub fn parse(text: &str, node: &str) -> Result<Self, JournalError> {
        let file: JournalFile =
            serde_json::from_str(text).map_err(|e| JournalError::Syntax(e.to_string()))?;
        if file.version != JOURNAL_VERSION {
            return Err(JournalError::Version {
                found: file.version,
            });
        }
        if file.node != node {
            return Err(JournalError::OtherNode {
                found: file.node,
                expected: node.to_owned(),
            });
        }
        let mut entries = BTreeMap::new();
        for (index, e) in file.entries.into_iter().enumerate() {
            let bad = |message: String| JournalError::Entry { index, message };
            check_resource(&e.resource).map_err(|e| bad(e.to_string()))?;
            let limit = super::rate::KibPerSec::MAX.get();
            if e.c_max_rate_kib > limit || e.c_min_rate_kib > limit {
                return Err(bad(format!("rate above {limit} KiB/s")));
            }
            let key = PeerKey {
                resource: e.resource,
                peer_node_id: e.peer_node_id,
                volume: e.volume,
            };
            let options = PeerOptions {
                c_max_rate: e.c_max_rate_kib,
                c_min_rate: e.c_min_rate_kib,
            };
            if entries.insert(key.clone(), options).is_some() {
                return Err(bad(format!("{key} is recorded twice")));
            }
        }
        let mut sources = BTreeMap::new();
        for (index, e) in file.sources.into_iter().enumerate() {
            let bad = |message: String| JournalError::Source { index, message };
            check_resource(&e.resource).map_err(|e| bad(e.to_string()))?;
            let limit = super::rate::KibPerSec::MAX.get();
            if e.c_min_rate_kib > limit {
                return Err(bad(format!("rate above {limit} KiB/s")));
            }
            let key = PeerKey {
                resource: e.resource,
                peer_node_id: e.peer_node_id,
                volume: e.volume,
            };
            if sources.insert(key.clone(), e.c_min_rate_kib).is_some() {
                return Err(bad(format!("{key} is recorded twice")));
            }
        }
        Ok(Self {
            node: node.to_owned(),
            entries,
            sources,
        })
    }

    /// The file's text (pretty JSON).
    pub fn to_json(&self) -> String {
        let file = JournalFile {
            version: JOURNAL_VERSION,
            node: self.node.clone(),
            entries: self
                .entries
                .iter()
                .map(|(k, o)| JournalEntry {
                    resource: k.resource.clone(),
                    peer_node_id: k.peer_node_id,
                    volume: k.volume,
                    c_max_rate_kib: o.c_max_rate,
                    c_min_rate_kib: o.c_min_rate,
                })
                .collect(),
            sources: self
                .sources
                .iter()
                .map(|(k, &c_min_rate_kib)| SourceEntry {
                    resource: k.resource.clone(),
                    peer_node_id: k.peer_node_id,
                    volume: k.volume,
                    c_min_rate_kib,
                })
                .collect(),
        };
        // Plain strings and integers: serializing cannot fail.
        serde_json::to_string_pretty(&file).unwrap_or_default()
    }
}

/// What was found at start-up.
#[derive(Debug)]
pub enum Loaded {
    /// No journal: nothing was left throttled.
    None,
    Journal(Journal),
    /// Unusable; renamed to `moved_to` (if the rename worked).
    Corrupt {
        error: JournalError,
        moved_to: Option<PathBuf>,
    },
}

/// A journal file I/O failure.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct JournalIoError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// The journal file under the state directory.
#[derive(Debug, Clone)]
pub struct JournalStore {
    dir: PathBuf,
}

impl JournalStore {
    pub fn new(state_directory: &Path) -> Self {
        Self {
            dir: state_directory.to_owned(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }

    fn io(&self, path: PathBuf) -> impl FnOnce(io::Error) -> JournalIoError {
        move |source| JournalIoError { path, source }
    }

    /// Reads the journal; a corrupt or foreign one is renamed aside.
    pub fn load(&self, node: &str) -> Result<Loaded, JournalIoError> {
        let path = self.path();
        let text = match fs::metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::None),
            Err(e) => return Err(self.io(path)(e)),
            Ok(meta) if meta.len() > MAX_JOURNAL_BYTES => Err(JournalError::Syntax(format!(
                "{} bytes, more than {MAX_JOURNAL_BYTES}",
                meta.len()
            ))),
            Ok(_) => {
                let bytes = fs::read(&path).map_err(self.io(path.clone()))?;
                String::from_utf8(bytes).map_err(|_| JournalError::Syntax("not UTF-8".into()))
            }
        };
        match text.and_then(|t| Journal::parse(&t, node)) {
            Ok(journal) => Ok(Loaded::Journal(journal)),
            Err(error) => {
                let aside = path.with_extension("json.corrupt");
                let moved_to = fs::rename(&path, &aside).ok().map(|()| aside);
                Ok(Loaded::Corrupt { error, moved_to })
            }
        }
    }

    /// Writes `journal` atomically; an empty one removes the file.
    pub fn save(&self, journal: &Journal) -> Result<(), JournalIoError> {
        if journal.is_empty() {
            return self.clear();
        }
        fs::create_dir_all(&self.dir).map_err(self.io(self.dir.clone()))?;
        let path = self.path();
        let temp = self.dir.join(format!(".{JOURNAL_FILE}.tmp"));
        let mut file = fs::File::create(&temp).map_err(self.io(temp.clone()))?;
        file.write_all(journal.to_json().as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(self.io(temp.clone()))?;
        drop(file);
        fs::rename(&temp, &path).map_err(self.io(path.clone()))?;
        self.sync_dir()
    }

    /// Removes the journal (nothing left to restore).
    pub fn clear(&self) -> Result<(), JournalIoError> {
        match fs::remove_file(self.path()) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io(self.path())(e)),
        }
    }

    fn sync_dir(&self) -> Result<(), JournalIoError> {
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(self.io(self.dir.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Journal {
        let mut j = Journal::new("alpha");
        j.entries.insert(
            PeerKey {
                resource: "r0".into(),
                peer_node_id: 1,
                volume: 0,
            },
            PeerOptions {
                c_max_rate: 102_400,
                c_min_rate: 250,
            },
        );
        j
    }

    #[test]
    fn round_trip() {
        let j = sample();
        let text = j.to_json();
        assert!(text.contains("\"node\": \"alpha\""), "{text}");
        assert_eq!(Journal::parse(&text, "alpha"), Ok(j));
    }

    #[test]
    fn round_trip_with_sources() {
        let mut j = sample();
        assert!(!j.to_json().contains("sources"), "absent when empty");
        let key = PeerKey {
            resource: "r1".into(),
            peer_node_id: 2,
            volume: 1,
        };
        j.sources.insert(key.clone(), 250);
        let text = j.to_json();
        assert!(text.contains("\"c_min_rate_kib\": 250"), "{text}");
        let back = Journal::parse(&text, "alpha").unwrap();
        assert_eq!(back.sources.get(&key), Some(&250));
        assert_eq!(back, j);
        let mut only_sources = Journal::new("alpha");
        only_sources.sources.insert(key, 0);
        assert!(!only_sources.is_empty());
        let bad = text.replace("\"r1\"", "\"r 1\"");
        assert!(matches!(
            Journal::parse(&bad, "alpha"),
            Err(JournalError::Source { index: 0, .. })
        ));
    }

    #[test]
    fn rejects_bad_journals() {
        let text = sample().to_json();
        assert!(matches!(
            Journal::parse(&text, "beta"),
            Err(JournalError::OtherNode { .. })
        ));
        assert!(matches!(
            Journal::parse("{", "alpha"),
            Err(JournalError::Syntax(_))
        ));
        assert!(matches!(
            Journal::parse(&text.replace("\"version\": 1", "\"version\": 7"), "alpha"),
            Err(JournalError::Version { found: 7 })
        ));
        assert!(matches!(
            Journal::parse(&text.replace("102400", "-1"), "alpha"),
            Err(JournalError::Syntax(_))
        ));
        assert!(matches!(
            Journal::parse(&text.replace("102400", "99999999"), "alpha"),
            Err(JournalError::Entry { index: 0, .. })
        ));
        assert!(matches!(
            Journal::parse(&text.replace("\"r0\"", "\"\""), "alpha"),
            Err(JournalError::Entry { index: 0, .. })
        ));
        let twice = r#"{"version":1,"node":"alpha","entries":[
            {"resource":"r","peer_node_id":1,"volume":0,"c_max_rate_kib":1,"c_min_rate_kib":0},
            {"resource":"r","peer_node_id":1,"volume":0,"c_max_rate_kib":2,"c_min_rate_kib":0}]}"#;
        assert!(matches!(
            Journal::parse(twice, "alpha"),
            Err(JournalError::Entry { index: 1, .. })
        ));
    }

    #[test]
    fn store_saves_loads_clears_and_sets_corrupt_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = JournalStore::new(&dir.path().join("state"));
        assert!(matches!(store.load("alpha").unwrap(), Loaded::None));
        store.save(&sample()).unwrap();
        match store.load("alpha").unwrap() {
            Loaded::Journal(j) => assert_eq!(j, sample()),
            other => panic!("{other:?}"),
        }
        // Another node's journal is not used, and set aside.
        match store.load("beta").unwrap() {
            Loaded::Corrupt { error, moved_to } => {
                assert!(matches!(error, JournalError::OtherNode { .. }));
                assert!(moved_to.unwrap().ends_with("throttle-journal.json.corrupt"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!store.path().exists());
        store.save(&sample()).unwrap();
        store.save(&Journal::new("alpha")).unwrap();
        assert!(!store.path().exists(), "an empty journal is no file");
        let mut sources_only = Journal::new("alpha");
        sources_only.sources.insert(
            PeerKey {
                resource: "r0".into(),
                peer_node_id: 1,
                volume: 0,
            },
            250,
        );
        store.save(&sources_only).unwrap();
        match store.load("alpha").unwrap() {
            Loaded::Journal(j) => assert_eq!(j, sources_only),
            other => panic!("{other:?}"),
        }
        fs::write(store.path(), "garbage").unwrap();
        assert!(matches!(
            store.load("alpha").unwrap(),
            Loaded::Corrupt { .. }
        ));
        store.clear().unwrap();
    }
}
