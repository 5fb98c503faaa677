//! The scenario keys that put the plant model behind `drbd-sim serve`:
//! a node's `disk = { ... }`, `[[link]]` and a resource's `load = { ... }`.
//!
//! ```toml
//! [[node]]
//! name = "alpha"
//! node-id = 0
//! disk = { capacity-mib-s = "200MiB/s", capacity-iops = "20k", service-ms = "1ms",
//!          queue-limit = 256, noise = 0.1 }       # every key optional
//!
//! [[link]]
//! nodes = ["alpha", "bravo"]
//! bandwidth = "1150MiB/s"                          # optional
//! rtt = "0.2ms"                                    # optional
//!
//! [[resource]]
//! load = { profile = "constant", write = "100MiB/s", read = "0MiB/s" }
//! # load = { profile = "steps", steps = [{ at = "0s", write = "40MiB/s" }, { at = "5m", write = "140MiB/s" }] }
//! # load = { profile = "bursts", period = "120s", duty = 0.5, level = "140MiB/s" }
//! # load = { profile = "diurnal", min = "20MiB/s", max = "140MiB/s", period = "30m" }
//! # load = { trace = "ingest.csv" }               # relative to the scenario file
//! ```
//!
//! Rates: a number (MiB/s) or a rate of drbd-model's `units` grammar
//! (`KiB/s`, `MiB/s`, `GiB/s`, `K`, `M`, `G`). Times: a number (ms) or a
//! `units` duration (`us`, `ms`, `s`, …). Counts: a number or text with
//! `k`/`M`. Periods and step times: a `units` duration or a number of
//! seconds. Errors are plain messages; the caller adds file:line.

use std::collections::BTreeMap;
use std::path::Path;

use toml::Value;

use drbd_model::units;

use super::plant::{parse_trace, DiskSpec, LinkSpec, LoadError, LoadProfile, PlantError};
use super::scenario::parse_duration;

/// What the plant needs beyond the cluster: per node disks, links and
/// per resource loads (only what the scenario names; the rest defaults).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlantConfig {
    /// Node name → its backing disk.
    pub disks: BTreeMap<String, DiskSpec>,
    /// (node, node, link), the names sorted.
    pub links: Vec<(String, String, LinkSpec)>,
    /// Resource name → the Primary's foreground load (every volume).
    pub loads: BTreeMap<String, LoadProfile>,
}

/// The keys of `disk = { ... }` (DiskSpec's fields).
pub const DISK_KEYS: &[&str] = &[
    "capacity-mib-s",
    "capacity-iops",
    "service-ms",
    "queue-limit",
    "noise",
];

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Why a plant key of a scenario was refused; the scenario checker adds
/// the file and line.
#[derive(Debug, thiserror::Error)]
pub enum PlantKeyError {
    #[error("{key}: '{text}' does not start with a number")]
    NoNumber { key: String, text: String },
    #[error("{key}: {value} must be a finite number >= 0")]
    Negative { key: String, value: f64 },
    #[error("{key}: {source}")]
    Rate {
        key: String,
        source: units::RateError,
    },
    #[error("{key}: {source}")]
    Duration {
        key: String,
        source: units::DurationError,
    },
    #[error("{key}: '{text}': unit must be k or M")]
    CountUnit { key: String, text: String },
    #[error("{key}: expected {expected}")]
    Type { key: String, expected: &'static str },
    #[error("{what}: unknown key '{key}' (expected {allowed})")]
    UnknownKey {
        what: &'static str,
        key: String,
        allowed: String,
    },
    #[error("load: profile '{profile}' needs '{key}'")]
    Needs { profile: String, key: String },
    #[error("load: {0}")]
    Load(&'static str),
    #[error("load: step {0} is not {{ at, write }}")]
    Step(usize),
    #[error("load: unknown profile '{0}' (constant, steps, bursts, diurnal, or trace = FILE)")]
    Profile(String),
    #[error("load: trace {}: {source}", path.display())]
    TraceRead {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("load: {}: {source}", path.display())]
    Trace {
        path: std::path::PathBuf,
        source: LoadError,
    },
    #[error(transparent)]
    Spec(#[from] PlantError),
    #[error(transparent)]
    Profiles(#[from] LoadError),
}

/// Splits `"12.5MiB/s"` into 12.5 and `"MiB/s"` (the `units` grammar).
fn split_unit<'a>(key: &str, text: &'a str) -> Result<(f64, &'a str), PlantKeyError> {
    units::split(text).ok_or_else(|| PlantKeyError::NoNumber {
        key: key.to_owned(),
        text: text.trim().to_owned(),
    })
}

fn finite_non_negative(key: &str, value: f64) -> Result<f64, PlantKeyError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(PlantKeyError::Negative {
            key: key.to_owned(),
            value,
        })
    }
}

fn wrong_type(key: &str, expected: &'static str) -> PlantKeyError {
    PlantKeyError::Type {
        key: key.to_owned(),
        expected,
    }
}

/// A rate in MiB/s: a number or a bare number text (MiB/s), else a rate in
/// the `units` grammar (`"200MiB/s"`, `"512K"`, `"1.5G"`).
pub fn rate_mib_s(key: &str, v: &Value) -> Result<f64, PlantKeyError> {
    let mib = match (number(v), v) {
        (Some(n), _) => n,
        (None, Value::String(s)) => match split_unit(key, s)? {
            (value, "") => value,
            _ => {
                units::rate_kib_s(s).map_err(|source| PlantKeyError::Rate {
                    key: key.to_owned(),
                    source,
                })? / 1024.0
            }
        },
        _ => return Err(wrong_type(key, "a rate like \"200MiB/s\"")),
    };
    finite_non_negative(key, mib)
}

fn duration(key: &str, text: &str) -> Result<std::time::Duration, PlantKeyError> {
    parse_duration(text).map_err(|source| PlantKeyError::Duration {
        key: key.to_owned(),
        source,
    })
}

/// A short time in ms: a number or a bare number text (ms), else a
/// duration in the `units` grammar (`"0.5ms"`, `"250us"`).
pub fn time_ms(key: &str, v: &Value) -> Result<f64, PlantKeyError> {
    let ms = match (number(v), v) {
        (Some(n), _) => n,
        (None, Value::String(s)) => match split_unit(key, s)? {
            (value, "") => value,
            _ => duration(key, s)?.as_secs_f64() * 1000.0,
        },
        _ => return Err(wrong_type(key, "a time like \"0.5ms\"")),
    };
    finite_non_negative(key, ms)
}

/// A plain count (`20000`, `"20k"`).
fn count(key: &str, v: &Value) -> Result<f64, PlantKeyError> {
    let n = match (number(v), v) {
        (Some(n), _) => n,
        (None, Value::String(s)) => {
            let (value, unit) = split_unit(key, s)?;
            match unit {
                "" => value,
                "k" => value * 1e3,
                "M" => value * 1e6,
                _ => {
                    return Err(PlantKeyError::CountUnit {
                        key: key.to_owned(),
                        text: s.clone(),
                    })
                }
            }
        }
        _ => return Err(wrong_type(key, "a number")),
    };
    finite_non_negative(key, n)
}

/// A period or a point in time, seconds.
fn seconds(key: &str, v: &Value) -> Result<f64, PlantKeyError> {
    match (number(v), v) {
        (Some(n), _) => finite_non_negative(key, n),
        (None, Value::String(s)) => duration(key, s).map(|d| d.as_secs_f64()),
        _ => Err(wrong_type(key, "a duration like \"30s\"")),
    }
}

/// Refuses keys of `table` not in `allowed`.
fn only(what: &'static str, table: &toml::Table, allowed: &[&str]) -> Result<(), PlantKeyError> {
    match table.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(PlantKeyError::UnknownKey {
            what,
            key: key.clone(),
            allowed: allowed.join(", "),
        }),
        None => Ok(()),
    }
}

/// `disk = { ... }` on top of `base`.
pub fn disk(table: &toml::Table, base: DiskSpec) -> Result<DiskSpec, PlantKeyError> {
    only("disk", table, DISK_KEYS)?;
    let mut spec = base;
    for (key, value) in table {
        let key_name = format!("disk.{key}");
        match key.as_str() {
            "capacity-mib-s" => spec.capacity_mib_s = rate_mib_s(&key_name, value)?,
            "capacity-iops" => spec.capacity_iops = count(&key_name, value)?,
            "service-ms" => spec.service_ms = time_ms(&key_name, value)?,
            "queue-limit" => spec.queue_limit = count(&key_name, value)?,
            _ => spec.noise = count(&key_name, value)?,
        }
    }
    spec.validate()?;
    Ok(spec)
}

/// A `[[link]]`'s bandwidth and RTT on top of the defaults.
pub fn link(bandwidth: Option<&Value>, rtt: Option<&Value>) -> Result<LinkSpec, PlantKeyError> {
    let mut spec = LinkSpec::default();
    if let Some(v) = bandwidth {
        spec.bandwidth_mib_s = rate_mib_s("bandwidth", v)?;
    }
    if let Some(v) = rtt {
        spec.rtt_ms = time_ms("rtt", v)?;
    }
    spec.validate()?;
    Ok(spec)
}

fn need<'a>(table: &'a toml::Table, profile: &str, key: &str) -> Result<&'a Value, PlantKeyError> {
    table.get(key).ok_or_else(|| PlantKeyError::Needs {
        profile: profile.to_owned(),
        key: key.to_owned(),
    })
}

/// `load = { ... }`; a trace path is taken relative to `base_dir`.
pub fn load(table: &toml::Table, base_dir: &Path) -> Result<LoadProfile, PlantKeyError> {
    if let Some(trace) = table.get("trace") {
        only("load", table, &["trace"])?;
        let Value::String(name) = trace else {
            return Err(PlantKeyError::Load("trace must be a file name"));
        };
        let path = base_dir.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(source) => return Err(PlantKeyError::TraceRead { path, source }),
        };
        return parse_trace(&text).map_err(|source| PlantKeyError::Trace { path, source });
    }
    let profile = match table.get("profile") {
        Some(Value::String(p)) => p.as_str(),
        Some(_) => return Err(PlantKeyError::Load("profile must be text")),
        None => return Err(PlantKeyError::Load("needs `profile` or `trace`")),
    };
    let profile_result = match profile {
        "constant" => {
            only("load", table, &["profile", "write", "read"])?;
            let write = table
                .get("write")
                .map_or(Ok(0.0), |v| rate_mib_s("write", v))?;
            let read = table
                .get("read")
                .map_or(Ok(0.0), |v| rate_mib_s("read", v))?;
            LoadProfile::Constant {
                write_mib_s: write,
                read_mib_s: read,
            }
        }
        "steps" => {
            only("load", table, &["profile", "steps"])?;
            let Value::Array(rows) = need(table, profile, "steps")? else {
                return Err(PlantKeyError::Load("steps must be a list of { at, write }"));
            };
            let mut steps = Vec::new();
            for (i, row) in rows.iter().enumerate() {
                let Value::Table(t) = row else {
                    return Err(PlantKeyError::Step(i + 1));
                };
                only("load.steps", t, &["at", "write"])?;
                let at = seconds("at", need(t, profile, "at")?)?;
                let write = rate_mib_s("write", need(t, profile, "write")?)?;
                steps.push((at, write));
            }
            LoadProfile::Steps(steps)
        }
        "bursts" => {
            only("load", table, &["profile", "period", "duty", "level"])?;
            LoadProfile::Bursts {
                period_s: seconds("period", need(table, profile, "period")?)?,
                duty: count("duty", need(table, profile, "duty")?)?,
                level_mib_s: rate_mib_s("level", need(table, profile, "level")?)?,
            }
        }
        "diurnal" => {
            only("load", table, &["profile", "min", "max", "period"])?;
            LoadProfile::Diurnal {
                min_mib_s: rate_mib_s("min", need(table, profile, "min")?)?,
                max_mib_s: rate_mib_s("max", need(table, profile, "max")?)?,
                period_s: seconds("period", need(table, profile, "period")?)?,
            }
        }
        other => return Err(PlantKeyError::Profile(other.to_owned())),
    };
    profile_result.validate()?;
    Ok(profile_result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn units() {
        assert_eq!(
            rate_mib_s("x", &Value::String("1GiB/s".into())).unwrap(),
            1024.0
        );
        assert_eq!(
            rate_mib_s("x", &Value::String("512KiB/s".into())).unwrap(),
            0.5
        );
        assert_eq!(time_ms("x", &Value::String("250us".into())).unwrap(), 0.25);
        assert!(rate_mib_s("x", &Value::String("5MB".into())).is_err());
        assert!(time_ms("x", &Value::String("-1ms".into())).is_err());
    }

    #[test]
    fn disk_keys_map_onto_the_spec() {
        let d = disk(
            &table("capacity-mib-s = \"100MiB/s\"\ncapacity-iops = \"5k\"\nservice-ms = \"0.5ms\""),
            DiskSpec::default(),
        )
        .unwrap();
        assert_eq!(d.capacity_mib_s, 100.0);
        assert_eq!(d.capacity_iops, 5000.0);
        assert_eq!(d.service_ms, 0.5);
        let err = disk(&table("capacity = 1"), DiskSpec::default()).unwrap_err();
        assert!(
            matches!(&err, PlantKeyError::UnknownKey { what: "disk", key, .. } if key == "capacity"),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(err.contains("unknown key 'capacity'"), "{err}");
        let err = disk(&table("service-ms = 0"), DiskSpec::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("service_ms"), "{err}");
    }

    #[test]
    fn profiles() {
        let dir = Path::new(".");
        let steps = load(
            &table("profile = \"steps\"\nsteps = [{ at = \"0s\", write = 10 }, { at = \"1m\", write = \"20MiB/s\" }]"),
            dir,
        )
        .unwrap();
        assert_eq!(steps, LoadProfile::Steps(vec![(0.0, 10.0), (60.0, 20.0)]));
        let err = load(
            &table("profile = \"bursts\"\nperiod = \"10s\"\nlevel = 5"),
            dir,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("needs 'duty'"), "{err}");
        let err = load(
            &table("profile = \"bursts\"\nperiod = \"10s\"\nlevel = 5\nduty = 2"),
            dir,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("duty"), "{err}");
        let err = load(&table("profile = \"sine\""), dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown profile 'sine'"), "{err}");
        let err = load(&table("profile = \"constant\"\nwrite = 1\nburst = 2"), dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key 'burst'"), "{err}");
    }

    #[test]
    fn trace_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.csv"), "time,w,r\n0,10,0\n5,x,0\n").unwrap();
        let err = load(&table("trace = \"t.csv\""), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.csv: trace line 3"), "{err}");
        let err = load(&table("trace = \"missing.csv\""), dir.path()).unwrap_err();
        assert!(
            matches!(&err, PlantKeyError::TraceRead { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
        let err = err.to_string();
        assert!(err.contains("missing.csv"), "{err}");
        std::fs::write(dir.path().join("ok.csv"), "0,10,0\n5,20,1\n").unwrap();
        assert!(matches!(
            load(&table("trace = \"ok.csv\""), dir.path()),
            Ok(LoadProfile::Trace(rows)) if rows.len() == 2
        ));
    }
}
