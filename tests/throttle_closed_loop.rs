//! The control law against a toy plant: an M/M/1 disk whose mean write
//! latency is S / (1 − ρ), ρ = (app + resync) / capacity, with seeded noise.
//! One loop iteration = one interval: the plant runs with the rate decided
//! at the end of the previous interval, then the controller sees what it did.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use drbd_agent::throttle::{
    allocate, Claim, ControlState, Controller, Decision, KibPerSec, LawPolicy, Observation,
    Statistic,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CAPACITY: f64 = 102_400.0; // KiB/s
const SERVICE_MS: f64 = 1.0;
const TARGET_MS: f64 = 5.0;
const REQUEST_KIB: f64 = 64.0;

fn k(v: u64) -> KibPerSec {
    KibPerSec::new(v).unwrap()
}

fn policy() -> LawPolicy {
    LawPolicy {
        latency_target: Duration::from_millis(TARGET_MS as u64),
        statistic: Statistic::Mean,
        min_rate: k(250),
        max_rate: k(102_400),
        floor_doubling: Duration::from_secs(3600),
        floor_cap: k(25_600),
    }
}

/// The best constant resync rate that meets the target (mean latency).
fn oracle(app: f64) -> f64 {
    (CAPACITY * (1.0 - SERVICE_MS / TARGET_MS) - app).max(0.0)
}

struct Plant {
    rng: StdRng,
    /// Relative amplitude of the latency noise (uniform, ±).
    noise: f64,
}

struct Sample {
    /// Latency without noise (the "truth" for judging).
    true_latency: f64,
    obs: Observation,
}

impl Plant {
    fn new(seed: u64, noise: f64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            noise,
        }
    }

    fn interval(&mut self, app: f64, resync: f64, t: u64) -> Sample {
        let rho = ((app + resync) / CAPACITY).min(0.99);
        let true_latency = SERVICE_MS / (1.0 - rho);
        let factor = 1.0 + self.noise * (2.0 * self.rng.random::<f64>() - 1.0);
        let latency = true_latency * factor;
        let app_iops = app / REQUEST_KIB;
        let obs = Observation {
            elapsed: Duration::from_secs(1),
            app_write_latency_ms: (app > 0.0).then_some(latency),
            app_queue_depth: Some(app_iops * latency / 1000.0),
            foreground_kib_per_sec: Some(app),
            backing_write_latency_ms: Some(latency),
            out_of_sync_kib: Some(100 << 20),
            resync_kib_per_sec: Some(resync),
            uptodate_replicas: 2,
            reduced_redundancy_for: Duration::from_secs(t),
            ..Observation::default()
        };
        Sample { true_latency, obs }
    }
}

/// Runs `load(t)` for `steps` intervals; returns per interval (app,
/// resync rate used, true latency, decision).
fn run(
    seed: u64,
    noise: f64,
    steps: u64,
    policy: &LawPolicy,
    load: impl Fn(u64) -> f64,
) -> Vec<(f64, f64, f64, Decision)> {
    let mut plant = Plant::new(seed, noise);
    let mut controller = Controller::new();
    let mut rate = policy.min_rate.as_f64();
    let mut out = Vec::new();
    for t in 0..steps {
        let app = load(t);
        let sample = plant.interval(app, rate, t);
        let decision = controller.step(policy, &sample.obs);
        out.push((app, rate, sample.true_latency, decision));
        rate = decision.rate.as_f64();
    }
    out
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

fn direction_changes(rates: &[f64]) -> usize {
    let mut last = 0i8;
    let mut changes = 0;
    for w in rates.windows(2) {
        let d = if w[1] > w[0] {
            1
        } else if w[1] < w[0] {
            -1
        } else {
            0
        };
        if d != 0 {
            if last != 0 && d != last {
                changes += 1;
            }
            last = d;
        }
    }
    changes
}

#[test]
fn target_reached_and_held_near_the_oracle() {
    for seed in 1..=5 {
        let app = 0.5 * CAPACITY;
        let trace = run(seed, 0.10, 300, &policy(), |_| app);
        let tail = &trace[150..];
        let rate = mean(tail.iter().map(|s| s.1));
        let ratio = rate / oracle(app);
        assert!(
            (0.8..=1.1).contains(&ratio),
            "seed {seed}: resync {rate:.0} KiB/s vs oracle {:.0}: ratio {ratio:.2}",
            oracle(app)
        );
        let latency = mean(tail.iter().map(|s| s.2));
        assert!(
            latency <= TARGET_MS * 1.1,
            "seed {seed}: mean latency {latency:.2}"
        );
        // Reached within the first minute and a half.
        let first = trace.iter().position(|s| s.1 >= 0.8 * oracle(app)).unwrap();
        assert!(
            first <= 90,
            "seed {seed}: reached 80% of the oracle at {first}"
        );
    }
}

#[test]
fn step_load_latency_back_under_target_within_a_few_intervals() {
    let step_at = 120;
    let trace = run(7, 0.05, 240, &policy(), |t| {
        if t < step_at {
            0.2 * CAPACITY
        } else {
            0.7 * CAPACITY
        }
    });
    // Before the step: near the oracle for 20%.
    let before = mean(trace[90..step_at as usize].iter().map(|s| s.1));
    assert!(
        before >= 0.8 * oracle(0.2 * CAPACITY),
        "before the step: {before:.0}"
    );
    // After: at most 3 intervals over the target (+band), then none.
    let after = &trace[step_at as usize..];
    let late_misses = after[3..].iter().filter(|s| s.2 > TARGET_MS * 1.1).count();
    let first_ok = after.iter().position(|s| s.2 <= TARGET_MS * 1.1).unwrap();
    assert!(
        first_ok <= 3,
        "latency back under target after {first_ok} intervals"
    );
    assert_eq!(
        late_misses,
        0,
        "{:?}",
        after.iter().map(|s| s.2).collect::<Vec<_>>()
    );
    // And it still uses what the new load leaves.
    let settled = mean(after[60..].iter().map(|s| s.1));
    assert!(
        settled >= 0.6 * oracle(0.7 * CAPACITY),
        "after the step: {settled:.0} vs oracle {:.0}",
        oracle(0.7 * CAPACITY)
    );
}

#[test]
fn bursts_are_absorbed_by_feed_forward() {
    // 30 s on at 60% of capacity, 30 s off.
    let on = |t: u64| (t / 30) % 2 == 1;
    let trace = run(11, 0.05, 300, &policy(), |t| {
        if on(t) {
            0.6 * CAPACITY
        } else {
            0.0
        }
    });
    let mut misses_after_first = 0;
    for (t, s) in trace.iter().enumerate() {
        let t = t as u64;
        let first_of_burst = on(t) && !on(t.saturating_sub(1));
        if on(t) && !first_of_burst && s.2 > TARGET_MS * 1.1 {
            eprintln!("miss at {t}: {:.2} ms", s.2);
            misses_after_first += 1;
        }
    }
    assert!(
        misses_after_first <= 2,
        "{misses_after_first} missed intervals beyond burst starts"
    );
    // During the off phases the resync runs at full speed soon.
    for start in [60usize, 120, 180, 240] {
        let full = trace[start..start + 30]
            .iter()
            .position(|s| s.3.rate == k(102_400))
            .unwrap();
        assert!(
            full <= 4,
            "off phase at {start}: full speed after {full} intervals"
        );
    }
}

#[test]
fn idle_disk_reaches_full_speed_in_a_few_intervals() {
    let trace = run(3, 0.1, 10, &policy(), |_| 0.0);
    let full = trace.iter().position(|s| s.3.rate == k(102_400)).unwrap();
    assert!(full <= 3, "full speed after {full} intervals");
    assert!(trace[full..]
        .iter()
        .all(|s| s.3.state == ControlState::AtCeiling));
}

#[test]
fn overload_stays_at_the_floor_never_zero() {
    // The application alone needs more than the target allows.
    let trace = run(5, 0.1, 120, &policy(), |_| 0.95 * CAPACITY);
    assert!(trace.iter().all(|s| s.3.rate.get() >= 250));
    let at_floor = trace[10..]
        .iter()
        .filter(|s| s.3.state == ControlState::Floor)
        .count();
    assert!(at_floor >= 105, "at floor {at_floor} of 110");
    // The floor itself rises slowly (doubling per hour here): 250·2^(119/3600).
    let last = trace.last().unwrap().3;
    assert_eq!(last.rate, last.floor);
    assert_eq!(last.floor, k(256));
}

#[test]
fn noise_causes_few_direction_changes() {
    for seed in 20..25 {
        let trace = run(seed, 0.30, 400, &policy(), |_| 0.4 * CAPACITY);
        let rates: Vec<f64> = trace[100..].iter().map(|s| s.3.rate.as_f64()).collect();
        let per_minute = direction_changes(&rates) as f64 / (rates.len() as f64 / 60.0);
        assert!(
            per_minute <= 6.0,
            "seed {seed}: {per_minute:.1} direction changes per minute"
        );
        let rate = mean(trace[100..].iter().map(|s| s.1));
        assert!(
            rate >= 0.7 * oracle(0.4 * CAPACITY),
            "seed {seed}: {rate:.0}"
        );
    }
}

#[test]
fn floor_rises_with_time_at_reduced_redundancy() {
    let mut policy = policy();
    policy.floor_doubling = Duration::from_secs(600);
    // Overloaded: the law alone would sit at min-rate.
    let trace = run(9, 0.1, 3_000, &policy, |_| 0.95 * CAPACITY);
    let rate_at = |t: usize| trace[t].3.rate.get();
    assert_eq!(rate_at(100), 281); // 250·2^(100/600): continuous, no jumps
    assert_eq!(rate_at(1_200), 1_000); // two doublings
    assert_eq!(rate_at(2_400), 4_000); // four
    assert!(trace.iter().all(|s| s.3.rate >= s.3.floor));
    assert!(trace.windows(2).all(|w| w[1].3.floor >= w[0].3.floor));
}

#[test]
fn three_resyncs_on_one_disk_share_by_priority() {
    // One controller for the shared disk (floor and ceiling are the sums),
    // its rate split by allocate().
    let claims = [
        Claim {
            uptodate_replicas: 2,
            out_of_sync_kib: 1 << 20,
            floor: k(250),
            ceiling: k(40_960),
        },
        Claim {
            uptodate_replicas: 1,
            out_of_sync_kib: 8 << 20,
            floor: k(250),
            ceiling: k(40_960),
        },
        Claim {
            uptodate_replicas: 1,
            out_of_sync_kib: 2 << 20,
            floor: k(250),
            ceiling: k(40_960),
        },
    ];
    let mut shared = policy();
    shared.min_rate = k(750);
    shared.max_rate = k(3 * 40_960);
    let app = 0.3 * CAPACITY;
    let mut plant = Plant::new(42, 0.1);
    let mut controller = Controller::new();
    let mut shares = vec![k(250); 3];
    let mut totals = Vec::new();
    for t in 0..300 {
        let total: f64 = shares.iter().map(|s| s.as_f64()).sum();
        let sample = plant.interval(app, total, t);
        let budget = controller.step(&shared, &sample.obs).rate;
        let allocation = allocate(budget, &claims);
        assert_eq!(
            allocation.shares.iter().map(|s| s.get()).sum::<u64>(),
            budget.get(),
            "shares sum to the budget"
        );
        shares = allocation.shares;
        totals.push(total);
    }
    let total = mean(totals[200..].iter().copied());
    let ratio = total / oracle(app);
    assert!(
        (0.8..=1.1).contains(&ratio),
        "total {total:.0} vs oracle: {ratio:.2}"
    );
    // Priority: one replica and least out of sync first, at its ceiling.
    assert_eq!(shares[2], k(40_960));
    assert!(shares[1] > shares[0], "{shares:?}");
    assert_eq!(shares[0], k(250));
}
