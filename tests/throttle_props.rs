//! Properties of the throttle: decisions stay in [floor, ceiling] and are
//! never 0 whatever the input; the same inputs give the same outputs;
//! parsers and allocate() never panic.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use drbd_agent::throttle::{
    allocate, bounds, glob_match, parse_rate, Claim, Controller, KibPerSec, LawPolicy, Observation,
    Statistic,
};
use proptest::prelude::*;

fn any_f64() -> impl Strategy<Value = Option<f64>> {
    proptest::option::of(prop_oneof![
        0.0..100.0f64,
        0.0..1e7f64,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
        Just(0.0),
    ])
}

fn any_obs() -> impl Strategy<Value = Observation> {
    (
        (
            0u64..5_000,
            any_f64(),
            any_f64(),
            any_f64(),
            any_f64(),
            any_f64(),
        ),
        (
            proptest::option::of(any::<u64>()),
            any_f64(),
            0u32..4,
            0u64..1_000_000,
            proptest::option::of(1u64..10_000_000),
            any_f64(),
        ),
    )
        .prop_map(
            |((ms, lat, p99, qd, fg, backing), (oos, dbdt1, up, reduced, cmax, replicated))| {
                Observation {
                    elapsed: Duration::from_millis(ms),
                    app_write_latency_ms: lat,
                    app_write_latency_p99_ms: p99,
                    app_queue_depth: qd,
                    foreground_kib_per_sec: fg,
                    backing_write_latency_ms: backing,
                    replicated_write_kib_per_sec: replicated,
                    rs_in_flight_kib: None,
                    pending: None,
                    out_of_sync_kib: oos,
                    resync_kib_per_sec: dbdt1,
                    uptodate_replicas: up,
                    reduced_redundancy_for: Duration::from_secs(reduced),
                    configured_c_max_rate: cmax.and_then(KibPerSec::new),
                    network_headroom_kib_per_sec: None,
                    backing_write_kib_per_sec: backing.map(|b| b * 100.0),
                }
            },
        )
}

fn any_policy() -> impl Strategy<Value = LawPolicy> {
    (
        1u64..10_000,
        any::<bool>(),
        1u64..1_000_000,
        1u64..5_000_000,
        0u64..100_000,
        1u64..5_000_000,
    )
        .prop_map(|(target, p99, min, max, doubling, cap)| LawPolicy {
            latency_target: Duration::from_millis(target),
            statistic: if p99 { Statistic::P99 } else { Statistic::Mean },
            min_rate: KibPerSec::new(min).unwrap(),
            max_rate: KibPerSec::new(max).unwrap(),
            floor_doubling: Duration::from_secs(doubling),
            floor_cap: KibPerSec::new(cap).unwrap(),
        })
}

proptest! {
    #[test]
    fn decisions_stay_within_floor_and_ceiling(
        policy in any_policy(),
        observations in proptest::collection::vec(any_obs(), 1..40),
        start in proptest::option::of(1u64..10_000_000),
    ) {
        let mut controller = match start.and_then(KibPerSec::new) {
            Some(rate) => Controller::starting_at(rate),
            None => Controller::new(),
        };
        for obs in &observations {
            let d = controller.step(&policy, obs);
            prop_assert_eq!((d.floor, d.ceiling), bounds(&policy, obs));
            prop_assert!(d.rate.get() >= 1);
            prop_assert!(d.floor <= d.ceiling);
            prop_assert!(d.rate >= d.floor && d.rate <= d.ceiling, "{:?}", d);
            prop_assert!(d.ceiling <= policy.max_rate);
            prop_assert!(d.floor >= policy.min_rate.min(d.ceiling));
        }
    }

    #[test]
    fn same_inputs_same_outputs(
        policy in any_policy(),
        observations in proptest::collection::vec(any_obs(), 1..40),
    ) {
        let run = |mut c: Controller, obs: &[Observation]| {
            obs.iter().map(|o| c.step(&policy, o)).collect::<Vec<_>>()
        };
        let first = run(Controller::new(), &observations);
        let second = run(Controller::new(), &observations);
        prop_assert_eq!(&first, &second);
        // A copy of the state taken midway replays the rest identically.
        let half = observations.len() / 2;
        let mut c = Controller::new();
        for o in &observations[..half] {
            c.step(&policy, o);
        }
        let resumed = run(c.clone(), &observations[half..]);
        prop_assert_eq!(&resumed[..], &first[half..]);
    }

    #[test]
    fn allocate_respects_floors_ceilings_and_budget(
        budget in 1u64..1_000_000,
        claims in proptest::collection::vec((0u32..4, any::<u64>(), 1u64..10_000, 1u64..100_000), 0..8),
    ) {
        let claims: Vec<Claim> = claims.into_iter().map(|(up, oos, floor, ceil)| Claim {
            uptodate_replicas: up,
            out_of_sync_kib: oos,
            floor: KibPerSec::new(floor).unwrap(),
            ceiling: KibPerSec::new(ceil).unwrap(),
        }).collect();
        let a = allocate(KibPerSec::new(budget).unwrap(), &claims);
        prop_assert_eq!(a.shares.len(), claims.len());
        let floors: u64 = claims.iter().map(|c| c.floor.min(c.ceiling).get()).sum();
        let ceilings: u64 = claims.iter().map(|c| c.ceiling.get()).sum();
        let sum: u64 = a.shares.iter().map(|s| s.get()).sum();
        for (s, c) in a.shares.iter().zip(&claims) {
            prop_assert!(*s >= c.floor.min(c.ceiling) && *s <= c.ceiling);
        }
        prop_assert_eq!(a.over_budget, floors > budget);
        if !claims.is_empty() {
            prop_assert_eq!(sum, budget.min(ceilings).max(floors));
        }
    }

    #[test]
    fn parsers_never_panic(text in ".{0,40}", pattern in "[a-c*?]{0,8}", name in "[a-c]{0,10}") {
        if let Ok(rate) = parse_rate(&text) {
            prop_assert!(rate.get() >= 1);
            prop_assert_eq!(parse_rate(&rate.to_string()), Ok(rate));
        }
        // `*` alone matches everything; a pattern matches itself once its
        // wildcards are replaced by letters.
        prop_assert!(glob_match("*", &name));
        let literal: String = pattern.chars().map(|c| if c == '*' || c == '?' { 'a' } else { c }).collect();
        prop_assert!(glob_match(&pattern, &literal));
        let _ = glob_match(&pattern, &name);
    }
}
