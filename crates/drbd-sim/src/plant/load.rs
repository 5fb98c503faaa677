//! Foreground ingest: how many MiB/s the application writes (and reads) at
//! a given plant time.
//!
//! Profiles: constant, steps, on/off bursts, a diurnal ramp and a trace.
//! A trace is text with one row per line, `time, write MiB/s, read MiB/s`
//! (commas, semicolons or blanks between fields; `#` comments, blank lines
//! and one header line are skipped); each row's rates hold until the next
//! row, the last row's for ever; before the first row the load is 0.

use thiserror::Error;

/// Application rates at one moment, MiB/s.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rates {
    pub write_mib_s: f64,
    pub read_mib_s: f64,
}

/// One row of a trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceRow {
    pub at_s: f64,
    pub write_mib_s: f64,
    pub read_mib_s: f64,
}

/// A foreground load over plant time (seconds since the plant started).
#[derive(Debug, Clone, PartialEq)]
pub enum LoadProfile {
    /// The same rates all the time.
    Constant { write_mib_s: f64, read_mib_s: f64 },
    /// Write rate of the last step whose start (s) has passed; 0 before the first.
    Steps(Vec<(f64, f64)>),
    /// `level` MiB/s for the first `duty` share of every `period_s`, else 0.
    Bursts {
        period_s: f64,
        duty: f64,
        level_mib_s: f64,
    },
    /// From `min` up to `max` and back over each `period_s` (raised cosine).
    Diurnal {
        min_mib_s: f64,
        max_mib_s: f64,
        period_s: f64,
    },
    /// Rows of a trace file, times increasing.
    Trace(Vec<TraceRow>),
}

impl Default for LoadProfile {
    fn default() -> Self {
        Self::Constant {
            write_mib_s: 0.0,
            read_mib_s: 0.0,
        }
    }
}

/// A trace or profile that makes no sense.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LoadError {
    #[error("trace line {line}: {reason}")]
    Trace { line: usize, reason: String },
    #[error("trace has no rows")]
    EmptyTrace,
    #[error("load profile: {0}")]
    Profile(String),
}

impl LoadProfile {
    /// The rates at plant time `t_s`.
    pub fn at(&self, t_s: f64) -> Rates {
        match self {
            Self::Constant {
                write_mib_s,
                read_mib_s,
            } => Rates {
                write_mib_s: *write_mib_s,
                read_mib_s: *read_mib_s,
            },
            Self::Steps(steps) => Rates {
                write_mib_s: steps
                    .iter()
                    .take_while(|(at, _)| *at <= t_s)
                    .last()
                    .map_or(0.0, |(_, v)| *v),
                read_mib_s: 0.0,
            },
            Self::Bursts {
                period_s,
                duty,
                level_mib_s,
            } => {
                let phase = (t_s / period_s).fract();
                let on = phase < *duty;
                Rates {
                    write_mib_s: if on { *level_mib_s } else { 0.0 },
                    read_mib_s: 0.0,
                }
            }
            Self::Diurnal {
                min_mib_s,
                max_mib_s,
                period_s,
            } => {
                let swing = (1.0 - (std::f64::consts::TAU * t_s / period_s).cos()) / 2.0;
                Rates {
                    write_mib_s: min_mib_s + (max_mib_s - min_mib_s) * swing,
                    read_mib_s: 0.0,
                }
            }
            Self::Trace(rows) => {
                let n = rows.partition_point(|r| r.at_s <= t_s);
                match n.checked_sub(1).and_then(|i| rows.get(i)) {
                    Some(r) => Rates {
                        write_mib_s: r.write_mib_s,
                        read_mib_s: r.read_mib_s,
                    },
                    None => Rates::default(),
                }
            }
        }
    }

    /// Rejects negative or non-finite rates, empty or unordered step lists,
    /// periods ≤ 0 and duties outside 0..=1.
    pub fn validate(&self) -> Result<(), LoadError> {
        let rate = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(LoadError::Profile(format!("{name} {v} is not a rate >= 0")))
            }
        };
        let period = |v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(LoadError::Profile(format!("period {v} is not > 0")))
            }
        };
        match self {
            Self::Constant {
                write_mib_s,
                read_mib_s,
            } => {
                rate("write", *write_mib_s)?;
                rate("read", *read_mib_s)
            }
            Self::Steps(steps) => {
                if steps.is_empty() {
                    return Err(LoadError::Profile("steps: no steps".into()));
                }
                let mut last = f64::NEG_INFINITY;
                for (i, (at, v)) in steps.iter().enumerate() {
                    if !at.is_finite() || *at <= last {
                        return Err(LoadError::Profile(format!(
                            "steps: step {} starts at {at}, not after {last}",
                            i + 1
                        )));
                    }
                    last = *at;
                    rate("step", *v)?;
                }
                Ok(())
            }
            Self::Bursts {
                period_s,
                duty,
                level_mib_s,
            } => {
                period(*period_s)?;
                rate("level", *level_mib_s)?;
                if duty.is_finite() && (0.0..=1.0).contains(duty) {
                    Ok(())
                } else {
                    Err(LoadError::Profile(format!("duty {duty} is not in 0..=1")))
                }
            }
            Self::Diurnal {
                min_mib_s,
                max_mib_s,
                period_s,
            } => {
                period(*period_s)?;
                rate("min", *min_mib_s)?;
                rate("max", *max_mib_s)?;
                if max_mib_s < min_mib_s {
                    return Err(LoadError::Profile(format!(
                        "diurnal max {max_mib_s} is below min {min_mib_s}"
                    )));
                }
                Ok(())
            }
            Self::Trace(rows) => {
                if rows.is_empty() {
                    return Err(LoadError::EmptyTrace);
                }
                Ok(())
            }
        }
    }
}

/// Parses a trace (see the module docs); errors name the 1-based line.
pub fn parse_trace(text: &str) -> Result<LoadProfile, LoadError> {
    let mut rows: Vec<TraceRow> = Vec::new();
    let mut header_allowed = true;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let fields: Vec<&str> = content
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .collect();
        let first_is_text = fields.first().is_some_and(|f| f.parse::<f64>().is_err());
        if header_allowed && first_is_text {
            header_allowed = false;
            continue;
        }
        header_allowed = false;
        let bad = |reason: String| LoadError::Trace { line, reason };
        if fields.len() != 3 {
            return Err(bad(format!(
                "expected 3 fields (time, write MiB/s, read MiB/s), found {}",
                fields.len()
            )));
        }
        let mut values = [0.0; 3];
        for (slot, (name, field)) in values
            .iter_mut()
            .zip(["time", "write MiB/s", "read MiB/s"].iter().zip(&fields))
        {
            let v: f64 = field
                .parse()
                .map_err(|_| bad(format!("{name} '{field}' is not a number")))?;
            if !v.is_finite() || v < 0.0 {
                return Err(bad(format!(
                    "{name} '{field}' must be a finite number >= 0"
                )));
            }
            *slot = v;
        }
        if let Some(prev) = rows.last() {
            if values[0] <= prev.at_s {
                return Err(bad(format!(
                    "time {} is not after the previous row's {}",
                    values[0], prev.at_s
                )));
            }
        }
        rows.push(TraceRow {
            at_s: values[0],
            write_mib_s: values[1],
            read_mib_s: values[2],
        });
    }
    if rows.is_empty() {
        return Err(LoadError::EmptyTrace);
    }
    Ok(LoadProfile::Trace(rows))
}
