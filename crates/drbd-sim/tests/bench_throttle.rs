//! `bench throttle`: every built-in scenario runs and its resyncs finish
//! under the agent and unthrottled; the JSON has issue 4's shape; the
//! agent beats DRBD's defaults under steady ingest by ≥ 5× (a regression
//! test on deterministic model output, not a timing).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use drbd_sim::bench::run::{constant_options, run_agent, run_constant, C_MAX_RATE_DEFAULT};
use drbd_sim::bench::{builtin, builtins, run_scenario, select, Report, BUILTIN_NAMES};

#[test]
fn every_builtin_completes_under_agent_and_unthrottled() {
    let all = builtins();
    assert_eq!(all.len(), 6);
    for s in &all {
        let agent = run_agent(s).unwrap();
        assert!(agent.completed, "{}: agent {agent:?}", s.name);
        assert!(agent.resync_seconds > 60.0, "{}: {agent:?}", s.name);
        let fast = run_constant(s, constant_options(C_MAX_RATE_DEFAULT, 0)).unwrap();
        assert!(fast.completed, "{}: unthrottled {fast:?}", s.name);
        // Unthrottled is the fastest there is; the agent pays for the SLO.
        assert!(
            fast.resync_seconds <= agent.resync_seconds + 1.0,
            "{}: {fast:?} vs {agent:?}",
            s.name
        );
    }
}

#[test]
fn the_same_scenario_gives_the_same_numbers() {
    let s = builtin("bursts").unwrap();
    assert_eq!(run_agent(&s).unwrap(), run_agent(&s).unwrap());
}

#[test]
fn steady_json_shape_and_five_times_faster_than_drbd_defaults() {
    let s = builtin("steady").unwrap();
    assert!(s.name.contains("steady"));
    let report = Report {
        scenarios: vec![run_scenario(&s).unwrap()],
    };
    let v = serde_json::to_value(&report).unwrap();
    let scenarios = v["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 1);
    assert_eq!(scenarios[0]["name"], "steady");
    let strategies = scenarios[0]["strategies"].as_object().unwrap();
    let keys: Vec<&str> = strategies.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["agent", "unthrottled", "drbd-defaults", "fixed", "oracle"]
    );
    for (name, st) in strategies {
        for key in [
            "p50_latency_ms",
            "p99_latency_ms",
            "slo_violation_seconds",
            "resync_seconds",
            "reduced_redundancy_seconds",
            "direction_changes_per_minute",
            "oracle_ratio",
        ] {
            assert!(st[key].is_number(), "{name}.{key}: {st}");
        }
    }
    let r = &report.scenarios[0].strategies;
    assert!(
        r.drbd_defaults.metrics.resync_seconds >= 5.0 * r.agent.metrics.resync_seconds,
        "{:?} vs {:?}",
        r.drbd_defaults.metrics,
        r.agent.metrics
    );
    // The oracle meets the target; unthrottled does not.
    assert!(drbd_sim::bench::oracle::meets(&r.oracle.metrics));
    assert!(!drbd_sim::bench::oracle::meets(&r.unthrottled.metrics));
    assert!((r.oracle.oracle_ratio - 1.0).abs() < 1e-9);
}

#[test]
fn scenarios_are_chosen_by_name() {
    let names: Vec<String> = vec!["network-bound".into(), "steady".into()];
    let chosen = select(&names).unwrap();
    assert_eq!(chosen[0].name, "network-bound");
    assert_eq!(chosen[1].name, "steady");
    assert_eq!(select(&[]).unwrap().len(), BUILTIN_NAMES.len());
    let err = select(&["nope".to_owned()]).unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn family_is_deterministic_and_every_plant_is_in_the_table() {
    use drbd_sim::bench::family::plants;
    use drbd_sim::bench::family_run::{
        render_family, run_plant, FamilyReport, FamilyRow, FamilyStrategy,
    };
    let all = plants();
    assert!(all.len() >= 12);
    // Both roles, steady and stepped plants, spread parameters.
    assert!(all.iter().any(|p| p.is_step()) && all.iter().any(|p| !p.is_step()));
    let first = &all[0];
    let agent = run_plant(first, FamilyStrategy::Agent).unwrap();
    assert_eq!(agent, run_plant(first, FamilyStrategy::Agent).unwrap());
    let previous = run_plant(first, FamilyStrategy::Previous).unwrap();
    // In virtual time, on a plant it was not tuned on: the model's law
    // resyncs more than the feedback-only law did.
    assert!(
        agent.oracle_ratio > previous.oracle_ratio,
        "{agent:?} vs {previous:?}"
    );
    let report = FamilyReport {
        rows: vec![FamilyRow {
            plant: first.name(),
            target_ms: first.target_ms(),
            oracle_kib_s: first.oracle_kib_s(0.0),
            results: vec![
                (FamilyStrategy::Agent, agent),
                (FamilyStrategy::Previous, previous),
            ],
        }],
    };
    let table = render_family(&report);
    assert!(table.contains(&first.name()), "{table}");
}

#[test]
fn the_seed_sweep_pools_every_plant_and_names_it_in_the_table() {
    use drbd_sim::bench::family::plants;
    use drbd_sim::bench::family_seeds::{render_seeds, run_seeds};
    // A steady and a stepped plant, three seeds each.
    let all = plants();
    let steady = *all.iter().find(|p| !p.is_step()).unwrap();
    let stepped = *all.iter().find(|p| p.is_step()).unwrap();
    let report = run_seeds(&[steady, stepped], 3).unwrap();
    assert_eq!(report.rows.len(), 2);
    let (a, b) = (&report.rows[0], &report.rows[1]);
    assert_eq!(a.seeds, 3);
    assert!(a.step_median_s.is_none() && a.oracle_constant_over_pooled.is_some());
    assert!(b.step_median_s.is_some() && b.oracle_constant_over_pooled.is_none());
    for r in &report.rows {
        assert!(r.over_pooled <= r.over_worst + 1e-12, "{r:?}");
        assert!(r.seeds_over_aim <= r.seeds);
        assert!(r.oracle_ratio_min > 0.0 && r.oracle_ratio_min <= r.oracle_ratio_mean);
        assert!(r.settle_median_s <= r.settle_max_s);
    }
    // Deterministic: the same seeds give the same figures.
    assert_eq!(report, run_seeds(&[steady, stepped], 3).unwrap());
    let table = render_seeds(&report);
    assert!(
        table.contains(&steady.name()) && table.contains(&stepped.name()),
        "{table}"
    );
    assert!(table.contains("orc-c%"), "{table}");
}
