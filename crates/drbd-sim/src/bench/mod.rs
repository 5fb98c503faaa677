//! `drbd-agent bench throttle`: the resync throttle judged against other
//! strategies on the plant ([`crate::plant`]) in virtual time.
//!
//! Pure and deterministic: [`scenario`] defines the built-in scenarios
//! (fixed seeds), [`run`] drives one strategy over a scenario, [`metrics`]
//! judges a run from its 1 s windows, [`oracle`] finds the best constant
//! rate by bisection, and this module puts them side by side
//! ([`run_scenario`], [`Report`], [`render_table`]). Printing is the
//! binary's job.

pub mod family;
pub mod family_run;
pub mod family_seeds;
pub mod file;
pub mod metrics;
pub mod oracle;
pub mod pressure;
pub mod run;
pub mod scenario;

use std::fmt::Write as _;

use serde::Serialize;

pub use metrics::{RunMetrics, Sample};
pub use run::{BenchError, Strategy};
pub use scenario::{builtin, builtins, Scenario, BUILTIN_NAMES};

use run::{constant_options, run_agent, run_constant, C_MAX_RATE_DEFAULT, FIXED_RATE};

/// One strategy's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategyResult {
    #[serde(flatten)]
    pub metrics: RunMetrics,
    /// resync_seconds / the oracle's.
    pub oracle_ratio: f64,
    /// The constant c-max-rate it set (KiB/s per resync); none for the agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c_max_rate_kib_s: Option<u64>,
}

/// The five strategies (JSON keys as in issue 4).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Strategies {
    pub agent: StrategyResult,
    pub unthrottled: StrategyResult,
    #[serde(rename = "drbd-defaults")]
    pub drbd_defaults: StrategyResult,
    pub fixed: StrategyResult,
    pub oracle: StrategyResult,
}

impl Strategies {
    pub fn get(&self, s: Strategy) -> &StrategyResult {
        match s {
            Strategy::Agent => &self.agent,
            Strategy::Unthrottled => &self.unthrottled,
            Strategy::DrbdDefaults => &self.drbd_defaults,
            Strategy::Fixed => &self.fixed,
            Strategy::Oracle => &self.oracle,
        }
    }
}

/// One scenario's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioReport {
    pub name: String,
    pub description: String,
    pub target_p99_ms: f64,
    pub strategies: Strategies,
}

/// The whole benchmark (`--json` prints this).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub scenarios: Vec<ScenarioReport>,
}

fn result(metrics: RunMetrics, oracle_s: f64, rate: Option<u64>) -> StrategyResult {
    let oracle_ratio = if oracle_s > 0.0 {
        metrics.resync_seconds / oracle_s
    } else {
        0.0
    };
    StrategyResult {
        metrics,
        oracle_ratio,
        c_max_rate_kib_s: rate,
    }
}

/// Runs every strategy on one scenario.
pub fn run_scenario(s: &Scenario) -> Result<ScenarioReport, BenchError> {
    let oracle = oracle::search(1024, C_MAX_RATE_DEFAULT, |rate| {
        run_constant(s, constant_options(rate, 0))
    })?;
    let o = oracle.metrics.resync_seconds;
    let agent = run_agent(s)?;
    let unthrottled = run_constant(s, constant_options(C_MAX_RATE_DEFAULT, 0))?;
    let defaults = run_constant(s, constant_options(C_MAX_RATE_DEFAULT, 250))?;
    let fixed = run_constant(s, constant_options(FIXED_RATE, 0))?;
    Ok(ScenarioReport {
        name: s.name.clone(),
        description: s.description.clone(),
        target_p99_ms: s.target_p99.as_secs_f64() * 1000.0,
        strategies: Strategies {
            agent: result(agent, o, None),
            unthrottled: result(unthrottled, o, Some(C_MAX_RATE_DEFAULT)),
            drbd_defaults: result(defaults, o, Some(C_MAX_RATE_DEFAULT)),
            fixed: result(fixed, o, Some(FIXED_RATE)),
            oracle: result(oracle.metrics.clone(), o, Some(oracle.rate_kib_s)),
        },
    })
}

/// The scenarios named, or all built-ins for none. A name that is not a
/// built-in but looks like a path (has a `/` or ends in `.toml`) is read
/// as a scenario file ([`file::load`]).
pub fn select(names: &[String]) -> Result<Vec<Scenario>, BenchError> {
    if names.is_empty() {
        return Ok(builtins());
    }
    names
        .iter()
        .map(|n| match builtin(n) {
            Some(s) => Ok(s),
            None if file::looks_like_path(n) => Ok(file::load(std::path::Path::new(n))?),
            None => Err(BenchError::UnknownScenario(n.clone())),
        })
        .collect()
}

/// Runs the scenarios in order.
pub fn run_all(scenarios: &[Scenario]) -> Result<Report, BenchError> {
    Ok(Report {
        scenarios: scenarios
            .iter()
            .map(run_scenario)
            .collect::<Result<_, _>>()?,
    })
}

fn duration(secs: f64, completed: bool) -> String {
    let text = if secs >= 3600.0 {
        format!("{:.2}h", secs / 3600.0)
    } else {
        format!("{:.1}m", secs / 60.0)
    };
    if completed {
        text
    } else {
        format!(">{text}")
    }
}

/// The side-by-side text table.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    for s in &report.scenarios {
        let _ = writeln!(
            out,
            "scenario {}: {} (SLO: window p99 write latency <= {} ms)",
            s.name, s.description, s.target_p99_ms
        );
        let _ = writeln!(
            out,
            "  {:<14} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7}",
            "strategy",
            "p50 ms",
            "p99 ms",
            "SLO s",
            "SLO s*",
            "resync",
            "reduced",
            "dir/min",
            "/oracle"
        );
        for st in Strategy::ALL {
            let r = s.strategies.get(st);
            let m = &r.metrics;
            let name = match r.c_max_rate_kib_s {
                Some(rate) if st == Strategy::Oracle || st == Strategy::Fixed => {
                    format!("{} {}M", st.as_str(), rate / 1024)
                }
                _ => st.as_str().to_owned(),
            };
            let _ = writeln!(
                out,
                "  {:<14} {:>8.2} {:>8.2} {:>9} {:>9} {:>9} {:>9} {:>8.2} {:>7.2}",
                name,
                m.p50_latency_ms,
                m.p99_latency_ms,
                m.slo_violation_seconds,
                m.slo_violation_seconds_after_steps,
                duration(m.resync_seconds, m.completed),
                duration(m.reduced_redundancy_seconds, m.completed),
                m.direction_changes_per_minute,
                r.oracle_ratio,
            );
        }
        out.push('\n');
    }
    out.push_str(
        "p50/p99: median over the resync's 1 s windows of the window's p50/p99 write latency; \
SLO s: windows with p99 over the target; SLO s*: the same without the first window after a load step; \
resync: until the last resync finished (> = not finished at the limit); reduced: summed over resyncs; \
dir/min: direction changes of the set c-max-rate per minute; /oracle: resync time over the oracle's.\n",
    );
    out
}
