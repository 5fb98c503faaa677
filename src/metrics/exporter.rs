//! The `/metrics` renderer with its cache.
//!
//! The DRBD part is the large one (about 125 series per resource). The
//! exporter keeps every resource's series as deflated pieces (one per
//! family) and, on a refresh after model changes, copies only the resources
//! changed since the generation it saw last (see
//! [`DrbdState::changed_since`]) under the read lock, re-renders them
//! without the lock (compressing only the families whose lines changed),
//! drops the resources that are gone, and references the cached pieces
//! family by family (see `exposition.rs`).
//!
//! Refreshes run in the background ([`Exporter::keep_fresh`]) timed by the
//! scrapes seen (`schedule.rs`), so a scrape usually finds the part ready
//! and renders only the agent part, `drbd_version` and `process_*`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use prometheus::process_collector::ProcessCollector;
use prometheus::{Registry, TextEncoder};
use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;
use tracing::warn;

use super::exposition::{DrbdPart, Exposition, PlainExposition};
use super::family::EnumSeries;
use super::gzip::{Deflater, Part};
use super::layout::{Layout, Rendered, Slot, Totals};
use super::schedule::{Refresh, ScrapeClock};
use super::MetricsError;
use super::{render_agent_head_parts, render_network, render_version, AgentInput, DrbdVersions};
use crate::linstor::SharedLinstorStatus;
use crate::runtime::CancellationToken;
use crate::runtime::{ChangedSince, DrbdState, Shared, StreamStats};
use crate::state::Resource;
use crate::throttle::SharedThrottleStatus;

/// Up to this many changed resources are rendered on the async worker (one
/// whose change touched a few families takes ~30 µs); more go to a
/// blocking thread.
const INLINE_RENDERS: usize = 8;

/// [`Exporter::keep_fresh`] pauses this many times as long as a refresh
/// took before the next one: at most a fifth of a core goes to rendering.
const PAUSE_FACTOR: u32 = 4;

/// The shortest pause between background refreshes: changes arriving
/// within it share one refresh (at most 200 a second).
const MIN_PAUSE: Duration = Duration::from_millis(5);

/// How long a scrape waits for a refresh in flight before it serves the
/// part published last.
const SCRAPE_WAIT: Duration = Duration::from_millis(50);

/// The longest pause between background refreshes.
const MAX_PAUSE: Duration = Duration::from_millis(50);

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
    /// The form of the layout built on first use.
    enum_series: EnumSeries,
    layout: Option<Arc<Layout>>,
    /// The model generation `part` was built for.
    seen: Option<u64>,
    /// Every resource's series lines, by name.
    resources: BTreeMap<String, Arc<Rendered>>,
    part: Option<Arc<DrbdPart>>,
    /// The compressor renders reuse (allocating one zeroes ~300 KiB).
    deflater: Option<Deflater>,
}

impl Cache {
    fn layout(&mut self) -> Result<Arc<Layout>, MetricsError> {
        if let Some(layout) = &self.layout {
            return Ok(layout.clone());
        }
        let layout = Arc::new(Layout::with_enum_series(self.enum_series)?);
        self.layout = Some(layout.clone());
        Ok(layout)
    }

    /// Under the read lock: forgets gone resources and copies the ones to
    /// render (changed since `seen`, or not cached yet), each with its
    /// previous render.
    fn take_changes(&mut self, state: &DrbdState) -> Vec<ToRender> {
        let model = state.model.resources();
        let mut names: BTreeSet<&str> = BTreeSet::new();
        match state.changed_since(self.seen) {
            ChangedSince::Nothing => {}
            // Every resource is rendered again; the cached renders stay
            // as the base their unchanged families are taken from.
            ChangedSince::Everything => names.extend(model.keys().map(String::as_str)),
            ChangedSince::Resources(changed) => {
                for name in changed {
                    if model.contains_key(name) {
                        names.insert(name);
                    } else {
                        self.resources.remove(name);
                    }
                }
            }
        }
        let cached_after = self.resources.len()
            + names
                .iter()
                .filter(|name| !self.resources.contains_key(**name))
                .count();
        if cached_after != model.len() {
            // One merge walk over both sorted key sets: drop what is gone,
            // add what is not cached (everything after a flush, a model
            // edited without `touch`).
            let (gone, missing) = differences(self.resources.keys(), model.keys());
            for name in gone {
                self.resources.remove(&name);
            }
            names.extend(missing.into_iter().map(String::as_str));
        }
        names
            .into_iter()
            .filter_map(|name| {
                let resource = model.get(name)?.clone();
                Some((resource, self.resources.get(name).cloned()))
            })
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

/// A resource to render and its previous render.
type ToRender = (Resource, Option<Arc<Rendered>>);

/// Renders resources, on a blocking thread when there are many. A render
/// equal to the cached one keeps the cached `Arc`, and with it the
/// compressed pieces of its block (`DrbdPart::new`).
async fn render_resources(
    layout: &Arc<Layout>,
    resources: Vec<ToRender>,
) -> Result<Vec<(String, Arc<Rendered>)>, MetricsError> {
    fn render_all(
        layout: &Layout,
        resources: Vec<ToRender>,
    ) -> Result<Vec<(String, Arc<Rendered>)>, MetricsError> {
        resources
            .into_iter()
            .map(|(resource, previous)| {
                let fresh = layout.render_resource(&resource)?;
                let rendered = match previous {
                    Some(old) if *old == fresh => old,
                    _ => Arc::new(fresh),
                };
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

/// The DRBD part brought up to date, with what was read along with it.
#[derive(Debug, Clone)]
pub struct Fresh {
    pub drbd: Arc<DrbdPart>,
    pub stats: StreamStats,
    pub drbd_up: bool,
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
    /// The DRBD part of the last refresh and its model generation.
    published: RwLock<Option<(u64, Arc<DrbdPart>)>>,
    /// The scrapes seen, for [`Exporter::keep_fresh`].
    scrapes: std::sync::Mutex<ScrapeClock>,
    /// The tail's compressor (allocating one zeroes ~300 KiB).
    tail_deflater: std::sync::Mutex<Deflater>,
    /// The resync throttle's status, rendered into the agent part.
    throttle: Option<SharedThrottleStatus>,
    /// The LINSTOR client's status, rendered into the agent part.
    linstor: Option<SharedLinstorStatus>,
    /// The network watcher's status, rendered into the agent part.
    network: Option<crate::netlink::SharedNetwork>,
    /// The API's refusal counters, rendered into the agent part.
    api: Option<std::sync::Arc<crate::api::ApiCounters>>,
    /// `[metrics] enum-series`.
    enum_series: EnumSeries,
    /// The network's families as rendered last, with the status they were
    /// rendered from: the per-path series (thousands on a large node) change
    /// far less often than they are scraped.
    network_rendered: std::sync::Mutex<Option<NetworkRendered>>,
}

/// The network's families rendered from a status.
#[derive(Debug)]
struct NetworkRendered {
    status: Arc<crate::netlink::NetworkStatus>,
    families: Vec<(&'static str, String)>,
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
            published: RwLock::new(None),
            scrapes: std::sync::Mutex::new(ScrapeClock::new()),
            tail_deflater: std::sync::Mutex::new(Deflater::new()),
            throttle: None,
            linstor: None,
            network: None,
            api: None,
            enum_series: EnumSeries::default(),
            network_rendered: std::sync::Mutex::new(None),
        }
    }

    /// The network's families for `status`: the cached render while the
    /// status is the one it was made from (the watcher replaces the `Arc` on
    /// every change: no comparison of thousands of paths per scrape).
    fn network_families(
        &self,
        status: Arc<crate::netlink::NetworkStatus>,
    ) -> Result<Vec<(&'static str, String)>, MetricsError> {
        // A poisoned lock only means a holder panicked; the cache is rebuilt.
        let mut cached = self
            .network_rendered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(rendered) = cached.as_ref().filter(|r| Arc::ptr_eq(&r.status, &status)) {
            return Ok(rendered.families.clone());
        }
        let families = render_network(&status, self.enum_series)?;
        *cached = Some(NetworkRendered {
            status,
            families: families.clone(),
        });
        Ok(families)
    }

    /// Exports state enums, flag sets and counters by cause in `form`
    /// (`[metrics] enum-series`; default [`EnumSeries::Current`]).
    pub fn with_enum_series(mut self, form: EnumSeries) -> Self {
        self.enum_series = form;
        self.cache = Mutex::new(Cache {
            enum_series: form,
            ..Cache::default()
        });
        self
    }

    /// Renders `drbd_agent_api_refused_total` from `counters` on every
    /// scrape (without it the family is absent).
    pub fn with_api(mut self, counters: std::sync::Arc<crate::api::ApiCounters>) -> Self {
        self.api = Some(counters);
        self
    }

    /// Renders the `drbd_agent_throttle_*` families from `status` on every
    /// scrape (without it they are absent).
    pub fn with_throttle(mut self, status: SharedThrottleStatus) -> Self {
        self.throttle = Some(status);
        self
    }

    /// Renders the `drbd_agent_linstor_*` families from `status` on every
    /// scrape (without it they are absent).
    pub fn with_linstor(mut self, status: SharedLinstorStatus) -> Self {
        self.linstor = Some(status);
        self
    }

    /// Renders the replication network's families from `status` on every
    /// scrape (without it they are absent).
    pub fn with_network(mut self, status: crate::netlink::SharedNetwork) -> Self {
        self.network = Some(status);
        self
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

    /// Brings the cached DRBD part up to the model's current generation:
    /// re-renders the resources changed since the last refresh and
    /// publishes the result. Cheap when nothing changed.
    pub async fn refresh(&self, shared: &Shared) -> Result<Fresh, MetricsError> {
        // One refresh at a time; a caller that waited finds little to do.
        let cache = self.cache.lock().await;
        self.refresh_locked(cache, shared).await
    }

    async fn refresh_locked(
        &self,
        mut cache: MutexGuard<'_, Cache>,
        shared: &Shared,
    ) -> Result<Fresh, MetricsError> {
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
                let many = todo.len() > INLINE_RENDERS;
                let rendered = render_resources(&layout, todo).await?;
                for (name, rendered) in rendered {
                    cache.resources.insert(name, rendered);
                }
                let previous = cache.part.take();
                let resources: Vec<Arc<Rendered>> = cache.resources.values().cloned().collect();
                let part = Arc::new(
                    build_part(
                        layout.clone(),
                        resources,
                        totals,
                        previous,
                        &mut cache.deflater,
                        many,
                    )
                    .await?,
                );
                cache.part = Some(part.clone());
                cache.seen = Some(generation);
                part
            }
        };
        // A poisoned lock only means a writer panicked; the slot is still usable.
        *self
            .published
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((generation, drbd.clone()));
        Ok(Fresh {
            drbd,
            stats,
            drbd_up,
        })
    }

    /// The part published last, with its generation.
    fn published(&self) -> Option<(u64, Arc<DrbdPart>)> {
        self.published
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The DRBD part for a scrape: the published one when it is current;
    /// else brought up to date here (usually the few resources changed
    /// since the last background refresh, after the one in flight if any);
    /// but when a long refresh holds the cache for more than
    /// [`SCRAPE_WAIT`], the published one (at most that refresh behind).
    async fn part_for_scrape(&self, shared: &Shared) -> Result<Fresh, MetricsError> {
        let published = self.published();
        {
            let state = shared.state.read().await;
            if let Some((_, drbd)) = published
                .as_ref()
                .filter(|(generation, _)| *generation == state.generation)
            {
                return Ok(Fresh {
                    drbd: drbd.clone(),
                    stats: state.stats.clone(),
                    drbd_up: state.drbd_reachable(),
                });
            }
        }
        let cache = tokio::time::timeout(SCRAPE_WAIT, self.cache.lock()).await;
        match (cache, published) {
            (Ok(cache), _) => self.refresh_locked(cache, shared).await,
            (Err(_), Some((_, drbd))) => {
                let state = shared.state.read().await;
                Ok(Fresh {
                    drbd,
                    stats: state.stats.clone(),
                    drbd_up: state.drbd_reachable(),
                })
            }
            (Err(_), None) => self.refresh(shared).await,
        }
    }

    fn scrape_clock(&self) -> std::sync::MutexGuard<'_, ScrapeClock> {
        // A poisoned lock only means a holder panicked; the clock is still usable.
        self.scrapes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps the DRBD part fresh for the next scrape until `stop` turns
    /// true. After a model change (see [`Shared::model_changed`]) it waits
    /// until shortly before the next expected scrape (see
    /// [`schedule`](super::schedule)), so a resource that changes often is
    /// rendered about once per scrape interval, and then refreshes. While a
    /// scrape is due it refreshes on every change, pausing
    /// [`PAUSE_FACTOR`] times as long as a refresh took (at least
    /// [`MIN_PAUSE`], at most [`MAX_PAUSE`]) so a busy stream costs a
    /// bounded share of a core.
    pub async fn keep_fresh(self: Arc<Self>, shared: Arc<Shared>, stop: CancellationToken) {
        'changes: loop {
            tokio::select! {
                _ = shared.model_changed.notified() => {}
                _ = stop.cancelled() => return,
            }
            loop {
                let decision = self.scrape_clock().refresh(Instant::now().into_std());
                match decision {
                    Refresh::Now => break,
                    // The next scrape renders what changed.
                    Refresh::OnScrape => continue 'changes,
                    Refresh::At(start) => tokio::select! {
                        _ = tokio::time::sleep_until(start.into()) => {}
                        _ = stop.cancelled() => return,
                    },
                }
            }
            let started = Instant::now();
            if let Err(error) = self.refresh(&shared).await {
                warn!(%error, "cannot refresh the metrics cache");
            }
            let pause = (started.elapsed() * PAUSE_FACTOR).clamp(MIN_PAUSE, MAX_PAUSE);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// The full exposition: `drbd_agent_*` (with `drbd_agent_throttle_*`
    /// when a throttle status is set), the DRBD part, `drbd_version`,
    /// `process_*`, in both encodings. The DRBD part shows every change
    /// applied before the scrape, unless a background refresh is rendering
    /// the latest ones right then (see `part_for_scrape`).
    pub async fn exposition(&self, shared: &Shared) -> Result<Exposition, MetricsError> {
        let (head, drbd, tail) = self.parts(shared).await?;
        let (head, tail) = {
            // A poisoned lock only means a holder panicked; reset per piece anyway.
            let mut deflater = self
                .tail_deflater
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            (
                Part::new(Bytes::from(head), &mut deflater)?,
                Part::new(Bytes::from(tail), &mut deflater)?,
            )
        };
        Ok(Exposition::new(head, drbd, tail))
    }

    /// [`Exporter::exposition`] as text only: the agent part and the tail
    /// are not compressed.
    pub async fn plain_exposition(&self, shared: &Shared) -> Result<PlainExposition, MetricsError> {
        let (head, drbd, tail) = self.parts(shared).await?;
        Ok(PlainExposition::new(
            Bytes::from(head),
            drbd,
            Bytes::from(tail),
        ))
    }

    /// The agent part, the DRBD part and the tail of a scrape.
    async fn parts(
        &self,
        shared: &Shared,
    ) -> Result<(String, Arc<DrbdPart>, String), MetricsError> {
        self.scrape_clock().scraped(Instant::now().into_std());
        let Fresh {
            drbd,
            stats,
            drbd_up,
        } = self.part_for_scrape(shared).await?;
        // Read after the model's lock is released: the two are never held together.
        let throttle = match &self.throttle {
            Some(status) => Some(status.read().await),
            None => None,
        };
        let linstor = match &self.linstor {
            Some(status) => Some(status.read().await),
            None => None,
        };
        let network = match &self.network {
            Some(status) => {
                let current = status.read().await.clone();
                Some(self.network_families(current)?)
            }
            None => None,
        };
        let head = render_agent_head_parts(
            &AgentInput {
                version: &self.facts.version,
                git_commit: &self.facts.git_commit,
                drbd_up,
                stats: &stats,
                now: chrono::Utc::now(),
                reloads_succeeded: self.reloads_succeeded.load(Ordering::Relaxed),
                reloads_failed: self.reloads_failed.load(Ordering::Relaxed),
            },
            throttle.as_deref(),
            linstor.as_deref(),
            network,
            self.api.as_deref(),
        )?;
        drop(throttle);
        drop(linstor);
        let mut tail = render_version(self.drbd_versions().as_ref())?;
        TextEncoder::new().encode_utf8(&self.process.gather(), &mut tail)?;
        Ok((head, drbd, tail))
    }

    /// Bytes held by the per-resource cache (for benchmarks and tests).
    pub async fn cached_bytes(&self) -> usize {
        let cache = self.cache.lock().await;
        cache.resources.values().map(|r| r.size()).sum()
    }

    /// Bytes of the deflated pieces of the DRBD part built last (one per
    /// block of resources and family).
    pub async fn cached_deflated_bytes(&self) -> usize {
        let cache = self.cache.lock().await;
        cache.part.as_ref().map_or(0, |part| part.deflated_len())
    }
}

/// The DRBD part from the cached chunks and freshly rendered totals,
/// compressing the blocks that changed (on a blocking thread when `many`
/// resources were rendered: after a restart or a reconcile, all of them).
async fn build_part(
    layout: Arc<Layout>,
    resources: Vec<Arc<Rendered>>,
    totals: Totals,
    previous: Option<Arc<DrbdPart>>,
    deflater: &mut Option<Deflater>,
    many: bool,
) -> Result<DrbdPart, MetricsError> {
    fn build(
        layout: Arc<Layout>,
        resources: Vec<Arc<Rendered>>,
        totals: &Totals,
        previous: Option<&DrbdPart>,
        deflater: &mut Deflater,
    ) -> Result<DrbdPart, MetricsError> {
        let mut rendered_totals = Vec::new();
        for slot in layout.slots() {
            if let Slot::Totals(index) = *slot {
                if rendered_totals.len() <= index {
                    rendered_totals.resize(index + 1, Part::default());
                }
                let text = layout.render_totals(index, totals)?;
                rendered_totals[index] = Part::new(text, deflater)?;
            }
        }
        DrbdPart::new(layout, resources, rendered_totals, previous, deflater)
    }
    let mut owned = deflater.take().unwrap_or_default();
    if !many {
        let result = build(layout, resources, &totals, previous.as_deref(), &mut owned);
        *deflater = Some(owned);
        return result;
    }
    let (result, owned) = tokio::task::spawn_blocking(move || {
        let result = build(layout, resources, &totals, previous.as_deref(), &mut owned);
        (result, owned)
    })
    .await
    .map_err(|e| MetricsError::Task(e.to_string()))?;
    *deflater = Some(owned);
    result
}
