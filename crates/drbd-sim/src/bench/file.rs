//! Scenario files for `bench throttle --scenario FILE`: the built-ins'
//! knobs in TOML. [`parse`] is pure (traces come through a reader
//! function); [`load`] reads the file and its traces.
//!
//! ```toml
//! name = "small"                 # default: the file name without .toml
//! description = "…"
//! latency-target = "30ms"        # the SLO (window p99) and the agent's target
//! seed = 42
//! limit = "6h"                   # a run stops here
//! [disk]                         # default: the built-ins' disk
//! capacity-mib-s = 200.0
//! capacity-iops = 20000.0
//! service-ms = 1.0
//! queue-limit = 256.0
//! noise = 0.1
//! [link]                         # default: 10 GbE
//! bandwidth-mib-s = 1150.0
//! rtt-ms = 0.2
//! [[volume]]                     # one or more; each is resynced from a to b
//! out-of-sync-gib = 40.0
//! count = 1                      # this volume this many times (resyncs)
//! load = "constant"              # constant | steps | bursts | diurnal | trace
//! write-mib-s = 100.0            # constant (and read-mib-s)
//! # steps = [[0, 40], [300, 140]]          steps: [start s, write MiB/s]
//! # period = "120s", duty, level-mib-s     bursts
//! # period = "30m", min-mib-s, max-mib-s   diurnal
//! # trace = "load.csv"                     trace, relative to this file
//! ```
//!
//! Errors name the file, line, column and key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::scenario::{standard_disk, Scenario, VolumeCase, GIB};
use crate::config::{key_at, line_col, parse_duration};
use crate::plant::{parse_trace, LinkSpec, LoadProfile};
use crate::throttle::TARGET_RANGE;

/// Most resyncs one file may ask for (all volumes' `count` summed).
pub const MAX_RESYNCS: u32 = 64;
/// Longest `limit`.
pub const MAX_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// A scenario file that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioFileError {
    #[error("{}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{}:{line}:{column}: {}{message}", file.display(), key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        key: Option<String>,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    name: Option<String>,
    description: Option<String>,
    latency_target: Option<Spanned<String>>,
    seed: Option<u64>,
    limit: Option<Spanned<String>>,
    disk: Option<RawDisk>,
    link: Option<RawLink>,
    #[serde(rename = "volume", default)]
    volumes: Vec<RawVolume>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDisk {
    capacity_mib_s: Option<Spanned<f64>>,
    capacity_iops: Option<Spanned<f64>>,
    service_ms: Option<Spanned<f64>>,
    queue_limit: Option<Spanned<f64>>,
    noise: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLink {
    bandwidth_mib_s: Option<Spanned<f64>>,
    rtt_ms: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawVolume {
    out_of_sync_gib: Spanned<f64>,
    count: Option<Spanned<u32>>,
    load: Spanned<String>,
    write_mib_s: Option<Spanned<f64>>,
    read_mib_s: Option<Spanned<f64>>,
    steps: Option<Spanned<Vec<(f64, f64)>>>,
    period: Option<Spanned<String>>,
    duty: Option<Spanned<f64>>,
    level_mib_s: Option<Spanned<f64>>,
    min_mib_s: Option<Spanned<f64>>,
    max_mib_s: Option<Spanned<f64>>,
    trace: Option<Spanned<String>>,
}

/// Builds errors pointing into one file.
struct At<'a> {
    file: &'a Path,
    text: &'a str,
}

impl At<'_> {
    fn err(&self, offset: usize, key: &str, message: impl Into<String>) -> ScenarioFileError {
        let (line, column) = line_col(self.text, offset);
        ScenarioFileError::Invalid {
            file: self.file.to_owned(),
            line,
            column,
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    fn duration(&self, value: &Spanned<String>, key: &str) -> Result<Duration, ScenarioFileError> {
        parse_duration(value.get_ref())
            .map_err(|e| self.err(value.span().start, key, e.to_string()))
    }

    /// A finite number > 0 (or ≥ 0 when `zero_ok`).
    fn number(
        &self,
        value: &Spanned<f64>,
        key: &str,
        zero_ok: bool,
    ) -> Result<f64, ScenarioFileError> {
        let v = *value.get_ref();
        let ok = v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0));
        if ok {
            Ok(v)
        } else {
            let want = if zero_ok { "≥ 0" } else { "> 0" };
            Err(self.err(
                value.span().start,
                key,
                format!("{v} is not a number {want}"),
            ))
        }
    }
}

/// Parses a scenario file's text. `read_trace` reads a trace path (already
/// resolved against the file's directory).
pub fn parse(
    file: &Path,
    text: &str,
    read_trace: impl Fn(&Path) -> std::io::Result<String>,
) -> Result<Scenario, ScenarioFileError> {
    let at = At { file, text };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let (line, column) = line_col(text, offset);
        ScenarioFileError::Invalid {
            file: file.to_owned(),
            line,
            column,
            key: key_at(text, line),
            message: e.message().trim().to_owned(),
        }
    })?;
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let mut disk = standard_disk();
    if let Some(d) = &raw.disk {
        let set = |slot: &mut f64, v: &Option<Spanned<f64>>, key: &str, zero_ok: bool| {
            if let Some(v) = v {
                *slot = at.number(v, key, zero_ok)?;
            }
            Ok::<(), ScenarioFileError>(())
        };
        set(
            &mut disk.capacity_mib_s,
            &d.capacity_mib_s,
            "disk.capacity-mib-s",
            false,
        )?;
        set(
            &mut disk.capacity_iops,
            &d.capacity_iops,
            "disk.capacity-iops",
            false,
        )?;
        set(
            &mut disk.service_ms,
            &d.service_ms,
            "disk.service-ms",
            false,
        )?;
        set(
            &mut disk.queue_limit,
            &d.queue_limit,
            "disk.queue-limit",
            false,
        )?;
        set(&mut disk.noise, &d.noise, "disk.noise", true)?;
    }
    let mut link = LinkSpec::default();
    if let Some(l) = &raw.link {
        if let Some(v) = &l.bandwidth_mib_s {
            link.bandwidth_mib_s = at.number(v, "link.bandwidth-mib-s", false)?;
        }
        if let Some(v) = &l.rtt_ms {
            link.rtt_ms = at.number(v, "link.rtt-ms", true)?;
        }
    }
    let target_p99 = match &raw.latency_target {
        None => Duration::from_millis(30),
        Some(v) => {
            let d = at.duration(v, "latency-target")?;
            if d < TARGET_RANGE.0 || d > TARGET_RANGE.1 {
                return Err(at.err(
                    v.span().start,
                    "latency-target",
                    format!("{} is not within 1ms..10s", v.get_ref()),
                ));
            }
            d
        }
    };
    let limit = match &raw.limit {
        None => Duration::from_secs(6 * 3600),
        Some(v) => {
            let d = at.duration(v, "limit")?;
            if d.is_zero() || d > MAX_LIMIT {
                return Err(at.err(v.span().start, "limit", "must be within 1s..7d"));
            }
            d
        }
    };
    if raw.volumes.is_empty() {
        return Err(ScenarioFileError::Invalid {
            file: file.to_owned(),
            line: 1,
            column: 1,
            key: Some("volume".to_owned()),
            message: "no [[volume]]: at least one resync is needed".to_owned(),
        });
    }
    let mut volumes = Vec::new();
    for (i, v) in raw.volumes.iter().enumerate() {
        let case = volume(&at, i, v, &read_trace)?;
        let count = match &v.count {
            None => 1,
            Some(c) => *c.get_ref(),
        };
        let total = volumes.len() as u32 + count;
        if count == 0 || total > MAX_RESYNCS {
            let offset = v.count.as_ref().map_or(0, |c| c.span().start);
            return Err(at.err(
                offset,
                &format!("volume[{i}].count"),
                format!("{count}: between 1 and {MAX_RESYNCS} resyncs in all"),
            ));
        }
        volumes.extend(std::iter::repeat_n(case, count as usize));
    }
    let description = raw
        .description
        .unwrap_or_else(|| format!("{} resync(s) from file {}", volumes.len(), file.display()));
    Ok(Scenario {
        name: raw.name.unwrap_or(stem),
        description,
        disk,
        link,
        volumes,
        target_p99,
        seed: raw.seed.unwrap_or(42),
        limit,
    })
}

/// The load keys each profile takes.
fn allowed(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "constant" => &["write-mib-s", "read-mib-s"],
        "steps" => &["steps"],
        "bursts" => &["period", "duty", "level-mib-s"],
        "diurnal" => &["period", "min-mib-s", "max-mib-s"],
        "trace" => &["trace"],
        _ => return None,
    })
}

fn volume(
    at: &At<'_>,
    i: usize,
    v: &RawVolume,
    read_trace: &impl Fn(&Path) -> std::io::Result<String>,
) -> Result<VolumeCase, ScenarioFileError> {
    let key = |name: &str| format!("volume[{i}].{name}");
    let gib = at.number(&v.out_of_sync_gib, &key("out-of-sync-gib"), false)?;
    let kind = v.load.get_ref().as_str();
    let load_at = v.load.span().start;
    let allowed = allowed(kind).ok_or_else(|| {
        at.err(
            load_at,
            &key("load"),
            format!("unknown load {kind:?} (constant, steps, bursts, diurnal, trace)"),
        )
    })?;
    let floats = [
        ("write-mib-s", &v.write_mib_s),
        ("read-mib-s", &v.read_mib_s),
        ("duty", &v.duty),
        ("level-mib-s", &v.level_mib_s),
        ("min-mib-s", &v.min_mib_s),
        ("max-mib-s", &v.max_mib_s),
    ];
    let mut present: Vec<(&str, usize)> = floats
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|s| (*name, s.span().start)))
        .collect();
    present.extend(v.steps.as_ref().map(|s| ("steps", s.span().start)));
    present.extend(v.period.as_ref().map(|s| ("period", s.span().start)));
    present.extend(v.trace.as_ref().map(|s| ("trace", s.span().start)));
    if let Some((name, offset)) = present.iter().find(|(n, _)| !allowed.contains(n)) {
        return Err(at.err(
            *offset,
            &key(name),
            format!("does not apply to load = {kind:?}"),
        ));
    }
    let need_f = |value: &Option<Spanned<f64>>, name: &str, zero_ok: bool| match value {
        Some(s) => at.number(s, &key(name), zero_ok),
        None => Err(at.err(load_at, &key(name), format!("load = {kind:?} needs {name}"))),
    };
    let period = || match &v.period {
        Some(p) => at.duration(p, &key("period")).map(|d| d.as_secs_f64()),
        None => Err(at.err(
            load_at,
            &key("period"),
            format!("load = {kind:?} needs period"),
        )),
    };
    let load = match kind {
        "constant" => LoadProfile::Constant {
            write_mib_s: v
                .write_mib_s
                .as_ref()
                .map_or(Ok(0.0), |s| at.number(s, &key("write-mib-s"), true))?,
            read_mib_s: v
                .read_mib_s
                .as_ref()
                .map_or(Ok(0.0), |s| at.number(s, &key("read-mib-s"), true))?,
        },
        "steps" => match &v.steps {
            Some(s) => LoadProfile::Steps(s.get_ref().clone()),
            None => return Err(at.err(load_at, &key("steps"), "load = \"steps\" needs steps")),
        },
        "bursts" => LoadProfile::Bursts {
            period_s: period()?,
            duty: need_f(&v.duty, "duty", true)?,
            level_mib_s: need_f(&v.level_mib_s, "level-mib-s", true)?,
        },
        "diurnal" => LoadProfile::Diurnal {
            min_mib_s: need_f(&v.min_mib_s, "min-mib-s", true)?,
            max_mib_s: need_f(&v.max_mib_s, "max-mib-s", true)?,
            period_s: period()?,
        },
        _ => {
            let Some(trace) = &v.trace else {
                return Err(at.err(load_at, &key("trace"), "load = \"trace\" needs trace"));
            };
            let relative = Path::new(trace.get_ref());
            let path = at
                .file
                .parent()
                .map_or_else(|| relative.to_owned(), |dir| dir.join(relative));
            let here = |message: String| at.err(trace.span().start, &key("trace"), message);
            let text = read_trace(&path).map_err(|e| here(format!("{}: {e}", path.display())))?;
            parse_trace(&text).map_err(|e| here(format!("{}: {e}", path.display())))?
        }
    };
    load.validate()
        .map_err(|e| at.err(load_at, &key("load"), e.to_string()))?;
    Ok(VolumeCase {
        load,
        out_of_sync_kib: gib * GIB,
    })
}

/// Reads and parses a scenario file (and its trace files).
pub fn load(path: &Path) -> Result<Scenario, ScenarioFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioFileError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    parse(path, &text, |p| std::fs::read_to_string(p))
}

/// Whether a `--scenario` argument names a file rather than a built-in.
pub fn looks_like_path(name: &str) -> bool {
    name.contains('/') || name.ends_with(".toml")
}

#[cfg(test)]
mod tests;
