//! The `/metrics` renderer with its cache.
//!
//! The DRBD part is the large one (about 125 series per resource). The
//! exporter keeps every resource's series lines (one buffer per resource)
//! and, on a scrape after model changes, copies only the resources changed
//! since the generation it saw last (see [`DrbdState::changed_since`]) under
//! the read lock, re-renders them without the lock, drops the resources that
//! are gone, and references the cached chunks family by family (see
//! `exposition.rs`). The agent part, `drbd_version` and `process_*` are small
//! and rendered per scrape.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use prometheus::process_collector::ProcessCollector;
use prometheus::{Registry, TextEncoder};
use tokio::sync::Mutex;
use tracing::warn;

use super::exposition::{DrbdPart, Exposition};
use super::gzip::{Deflater, Part};
use super::layout::{Layout, Rendered, Slot, Totals};
use super::MetricsError;
use super::{render_agent, render_version, AgentInput, DrbdVersions};
use crate::drbd::{ChangedSince, DrbdState, Shared};
use crate::state::Resource;

/// Up to this many changed resources are rendered on the async worker (one
/// takes ~0.1 ms); more go to a blocking thread.
const INLINE_RENDERS: usize = 2;

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

/// The cached DRBD part.
#[derive(Debug, Default)]
struct Cache {
    layout: Option<Arc<Layout>>,
    /// The model generation `part` was built for.
    seen: Option<u64>,
    /// Every resource's series lines, by name.
    resources: BTreeMap<String, Arc<Rendered>>,
    part: Option<Arc<DrbdPart>>,
}

impl Cache {
    fn layout(&mut self) -> Result<Arc<Layout>, MetricsError> {
        if let Some(layout) = &self.layout {
            return Ok(layout.clone());
        }
        let layout = Arc::new(Layout::new()?);
        self.layout = Some(layout.clone());
        Ok(layout)
    }

    /// Under the read lock: forgets gone resources and copies the ones to
    /// render (changed since `seen`, or not cached yet).
    fn take_changes(&mut self, state: &DrbdState) -> Vec<Resource> {
        let model = state.model.resources();
        let mut names: BTreeSet<&str> = BTreeSet::new();
        match state.changed_since(self.seen) {
            ChangedSince::Nothing => {}
            ChangedSince::Everything => {
                self.resources.clear();
            }
            ChangedSince::Resources(changed) => names.extend(changed),
        }
        // One merge walk over both sorted key sets: drop what is gone, add
        // what is not cached (everything after a flush, a model edited
        // without `touch`).
        let (gone, missing) = differences(self.resources.keys(), model.keys());
        for name in gone {
            self.resources.remove(&name);
        }
        names.extend(missing.into_iter().map(String::as_str));
        names
            .into_iter()
            .filter_map(|name| model.get(name).cloned())
            .collect()
    }
}

/// Keys only in `cached` (gone) and keys only in `model` (missing), both
/// sorted ascending.
fn differences<'m, 'c>(
    cached: impl Iterator<Item = &'c String>,
    model: impl Iterator<Item = &'m String>,
) -> (Vec<String>, Vec<&'m String>) {
    let mut gone = Vec::new();
    let mut missing = Vec::new();
    let mut cached = cached.peekable();
    let mut model = model.peekable();
    loop {
        match (cached.peek(), model.peek()) {
            (None, None) => break,
            (Some(c), Some(m)) if c == m => {
                cached.next();
                model.next();
            }
            (Some(c), Some(m)) if c < m => {
                gone.push((*c).clone());
                cached.next();
            }
            (Some(c), None) => {
                gone.push((*c).clone());
                cached.next();
            }
            (_, Some(m)) => {
                missing.push(*m);
                model.next();
            }
        }
    }
    (gone, missing)
}

/// Renders resources, on a blocking thread when there are many.
async fn render_resources(
    layout: &Arc<Layout>,
    resources: Vec<Resource>,
) -> Result<Vec<(String, Rendered)>, MetricsError> {
    fn render_all(
        layout: &Layout,
        resources: Vec<Resource>,
    ) -> Result<Vec<(String, Rendered)>, MetricsError> {
        let mut deflater = Deflater::new();
        resources
            .into_iter()
            .map(|resource| {
                let rendered = layout.render_resource_with(&resource, &mut deflater)?;
                Ok((resource.name.clone(), rendered))
            })
            .collect()
    }
    if resources.len() <= INLINE_RENDERS {
        return render_all(layout, resources);
    }
    let layout = layout.clone();
    tokio::task::spawn_blocking(move || render_all(&layout, resources))
        .await
        .map_err(|e| MetricsError::Task(e.to_string()))?
}

/// Renders `/metrics`.
#[derive(Debug)]
pub struct Exporter {
    facts: Facts,
    drbd_versions: RwLock<Option<DrbdVersions>>,
    reloads_succeeded: AtomicU64,
    reloads_failed: AtomicU64,
    process: Registry,
    cache: Mutex<Cache>,
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
            cache: Mutex::new(Cache::default()),
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

    /// The full exposition: `drbd_agent_*`, the DRBD part (re-rendered for
    /// the resources that changed since the last scrape), `drbd_version`,
    /// `process_*`.
    pub async fn exposition(&self, shared: &Shared) -> Result<Exposition, MetricsError> {
        // One render at a time; concurrent scrapers then share its result.
        let mut cache = self.cache.lock().await;
        let layout = cache.layout()?;
        let state = shared.state.read().await;
        let stats = state.stats.clone();
        let drbd_up = state.drbd_reachable();
        let generation = state.generation;
        let cached = cache
            .part
            .as_ref()
            .filter(|_| cache.seen == Some(generation))
            .cloned();
        let drbd = match cached {
            Some(part) => {
                drop(state);
                part
            }
            None => {
                // Copy under the lock, render without it.
                let todo = cache.take_changes(&state);
                let totals = Totals::new(state.model.resources().len(), &state.stats);
                drop(state);
                for (name, rendered) in render_resources(&layout, todo).await? {
                    cache.resources.insert(name, Arc::new(rendered));
                }
                let previous = cache.part.take();
                let part = Arc::new(build_part(
                    &layout,
                    &cache.resources,
                    &totals,
                    previous.as_deref(),
                )?);
                cache.part = Some(part.clone());
                cache.seen = Some(generation);
                part
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
        let mut deflater = Deflater::new();
        let head = Part::new(Bytes::from(head), &mut deflater)?;
        let tail = Part::new(Bytes::from(tail), &mut deflater)?;
        Ok(Exposition::new(head, drbd, tail))
    }

    /// Bytes held by the per-resource cache (for benchmarks and tests).
    pub async fn cached_bytes(&self) -> usize {
        let cache = self.cache.lock().await;
        cache.resources.values().map(|r| r.size()).sum()
    }

    /// Bytes of the per-resource cache's deflated pieces (part of
    /// [`cached_bytes`](Self::cached_bytes)).
    pub async fn cached_deflated_bytes(&self) -> usize {
        let cache = self.cache.lock().await;
        cache.resources.values().map(|r| r.deflated_size()).sum()
    }
}

/// The DRBD part from the cached chunks and freshly rendered totals.
fn build_part(
    layout: &Arc<Layout>,
    resources: &BTreeMap<String, Arc<Rendered>>,
    totals: &Totals,
    previous: Option<&DrbdPart>,
) -> Result<DrbdPart, MetricsError> {
    let mut rendered_totals = Vec::new();
    let mut deflater = Deflater::new();
    for slot in layout.slots() {
        if let Slot::Totals(index) = *slot {
            if rendered_totals.len() <= index {
                rendered_totals.resize(index + 1, Part::default());
            }
            let text = layout.render_totals(index, totals)?;
            rendered_totals[index] = Part::new(text, &mut deflater)?;
        }
    }
    Ok(DrbdPart::new(
        layout.clone(),
        resources.values().cloned().collect(),
        rendered_totals,
        previous,
    ))
}
