//! The `/metrics` renderer with its cache.
//!
//! The DRBD part is the large one (tens of series per resource); it is
//! rendered from a copy of the model taken under the read lock, on a
//! blocking thread, and kept until the model's generation changes. The agent
//! part, `drbd_version` and `process_*` are small and rendered per scrape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use bytes::Bytes;
use prometheus::process_collector::ProcessCollector;
use prometheus::{Registry, TextEncoder};
use tokio::sync::Mutex;
use tracing::warn;

use super::MetricsError;
use super::{render_agent, render_drbd, render_version, AgentInput, DrbdInput, DrbdVersions};
use crate::drbd::Shared;

/// The content type of the text exposition format.
///
/// OpenMetrics is not offered: the `prometheus` crate (0.14) has no
/// OpenMetrics encoder, and writing one by hand is what this module avoids.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Facts about this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub version: String,
    pub git_commit: String,
}

impl Facts {
    /// The crate version and the commit from `DRBD_AGENT_GIT_COMMIT` at
    /// build time (`unknown` without it).
    pub fn of_this_build() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            git_commit: option_env!("DRBD_AGENT_GIT_COMMIT")
                .unwrap_or("unknown")
                .to_owned(),
        }
    }
}

/// The rendered DRBD part for one model generation.
#[derive(Debug)]
struct Cached {
    generation: u64,
    text: Bytes,
}

/// One scrape's exposition in parts, so the large cached DRBD part is sent
/// without being copied.
#[derive(Debug, Clone)]
pub struct Exposition {
    parts: [Bytes; 3],
}

impl Exposition {
    /// The parts in order (UTF-8 text each).
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// True when nothing was rendered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole text (a copy).
    pub fn to_text(&self) -> String {
        let mut text = String::with_capacity(self.len());
        for part in &self.parts {
            // Every part was rendered from a `String`.
            text.push_str(&String::from_utf8_lossy(part));
        }
        text
    }
}

/// Renders `/metrics`.
#[derive(Debug)]
pub struct Exporter {
    facts: Facts,
    drbd_versions: RwLock<Option<DrbdVersions>>,
    reloads_succeeded: AtomicU64,
    reloads_failed: AtomicU64,
    process: Registry,
    cache: Mutex<Option<Cached>>,
}

impl Exporter {
    /// An exporter with the standard `process_*` metrics of this process.
    pub fn new(facts: Facts) -> Self {
        let process = Registry::new();
        if let Err(e) = process.register(Box::new(ProcessCollector::for_self())) {
            warn!(error = %e, "process metrics unavailable");
        }
        Self {
            facts,
            drbd_versions: RwLock::new(None),
            reloads_succeeded: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            process,
            cache: Mutex::new(None),
        }
    }

    /// Sets the versions `drbd_version` reports (from `drbdadm --version`).
    pub fn set_drbd_versions(&self, versions: Option<DrbdVersions>) {
        // A poisoned lock only means a writer panicked; the value is still usable.
        let mut slot = self
            .drbd_versions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = versions;
    }

    /// The versions set last.
    pub fn drbd_versions(&self) -> Option<DrbdVersions> {
        self.drbd_versions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Counts a configuration reload.
    pub fn record_reload(&self, succeeded: bool) {
        let counter = if succeeded {
            &self.reloads_succeeded
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The full exposition as one string (a copy; see [`exposition`](Self::exposition)).
    pub async fn render(&self, shared: &Shared) -> Result<String, MetricsError> {
        Ok(self.exposition(shared).await?.to_text())
    }

    /// The full exposition: `drbd_agent_*`, the DRBD part (cached per model
    /// generation), `drbd_version`, `process_*`.
    pub async fn exposition(&self, shared: &Shared) -> Result<Exposition, MetricsError> {
        // One render at a time; concurrent scrapers then share its result.
        let mut cache = self.cache.lock().await;
        let state = shared.state.read().await;
        let stats = state.stats.clone();
        let drbd_up = state.drbd_reachable();
        let generation = state.generation;
        let cached = cache
            .as_ref()
            .filter(|c| c.generation == generation)
            .map(|c| c.text.clone());
        let drbd_text = match cached {
            Some(text) => text,
            None => {
                // Copy under the lock, render without it.
                let model = state.model.clone();
                drop(state);
                let helpers = stats.clone();
                let text = tokio::task::spawn_blocking(move || {
                    render_drbd(&DrbdInput::new(&model, &helpers))
                })
                .await
                .map_err(|e| MetricsError::Task(e.to_string()))??;
                let text = Bytes::from(text);
                *cache = Some(Cached {
                    generation,
                    text: text.clone(),
                });
                text
            }
        };
        drop(cache);
        let head = render_agent(&AgentInput {
            version: &self.facts.version,
            git_commit: &self.facts.git_commit,
            drbd_up,
            stats: &stats,
            now: chrono::Utc::now(),
            reloads_succeeded: self.reloads_succeeded.load(Ordering::Relaxed),
            reloads_failed: self.reloads_failed.load(Ordering::Relaxed),
        })?;
        let mut tail = render_version(self.drbd_versions().as_ref())?;
        TextEncoder::new().encode_utf8(&self.process.gather(), &mut tail)?;
        Ok(Exposition {
            parts: [Bytes::from(head), drbd_text, Bytes::from(tail)],
        })
    }
}
