//! Single-step behaviour of the control law.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use drbd_agent::throttle::{
    bounds, ControlState, Controller, KibPerSec, LawPolicy, Observation, Reason, Statistic,
};

fn k(v: u64) -> KibPerSec {
    KibPerSec::new(v).unwrap()
}

fn policy() -> LawPolicy {
    LawPolicy {
        latency_target: Duration::from_millis(5),
        statistic: Statistic::Mean,
        min_rate: k(250),
        max_rate: k(102_400),
        floor_doubling: Duration::from_secs(600),
        floor_cap: k(25_600),
    }
}

fn obs(latency: f64, foreground: f64) -> Observation {
    Observation {
        elapsed: Duration::from_secs(1),
        app_write_latency_ms: Some(latency),
        foreground_kib_per_sec: Some(foreground),
        uptodate_replicas: 2,
        ..Observation::default()
    }
}

#[test]
fn starts_at_the_floor_and_grows_by_at_most_a_quarter() {
    // The feedback law (the fallback when the model has no fit).
    let mut c = Controller::feedback_only();
    let d = c.step(&policy(), &obs(1.0, 10_000.0));
    assert_eq!(d.rate, k(250 + 250 / 4 + 1), "{d:?}"); // 312.5 rounds up
    assert_eq!(d.state, ControlState::Increasing);
    assert!(matches!(d.reason, Reason::Headroom { .. }));
}

#[test]
fn holds_inside_the_band() {
    // The set point sits at least 15% under the 5 ms target (4.25 ms), with
    // a ±10% band around it.
    let mut c = Controller::starting_at(k(10_000));
    for _ in 0..10 {
        let d = c.step(&policy(), &obs(4.3, 10_000.0));
        assert_eq!(d.rate, k(10_000));
        assert_eq!(d.state, ControlState::Holding);
    }
}

#[test]
fn one_miss_is_not_enough_for_a_cut_but_a_sustained_one_is() {
    let mut c = Controller::starting_at(k(10_000));
    for _ in 0..5 {
        c.step(&policy(), &obs(4.3, 10_000.0));
    }
    let d = c.step(&policy(), &obs(5.5, 10_000.0));
    assert_eq!(d.rate, k(10_000), "{d:?}");
    assert!(matches!(d.reason, Reason::Unconfirmed { .. }));
    let mut cut = None;
    for _ in 0..4 {
        let d = c.step(&policy(), &obs(5.5, 10_000.0));
        if d.state == ControlState::BackingOff {
            cut = Some(d.rate);
            break;
        }
    }
    let cut = cut.expect("a sustained 10% excess over the target is cut");
    assert!(cut < k(10_000) && cut >= k(5_000), "{cut}");
}

#[test]
fn a_far_miss_cuts_in_proportion_at_once() {
    let mut c = Controller::starting_at(k(10_000));
    c.step(&policy(), &obs(4.3, 10_000.0));
    let d = c.step(&policy(), &obs(50.0, 10_000.0));
    assert_eq!(d.rate, k(1_000), "10× the target: a tenth of the rate");
    assert!(matches!(d.reason, Reason::HardMiss { .. }));
    let mut c = Controller::starting_at(k(10_000));
    let d = c.step(&policy(), &obs(10.0, 10_000.0));
    assert_eq!(d.rate, k(5_000), "2× the target: halved");
}

#[test]
fn foreground_rise_is_yielded_one_for_one_before_the_latency_shows_it() {
    let mut c = Controller::starting_at(k(50_000));
    for _ in 0..5 {
        c.step(&policy(), &obs(4.3, 20_000.0));
    }
    let d = c.step(&policy(), &obs(4.4, 50_000.0));
    assert_eq!(d.rate, k(20_000));
    assert_eq!(d.state, ControlState::BackingOff);
    assert!(matches!(d.reason, Reason::ForegroundRise { .. }));
    // The same level next interval is not a new rise.
    let d = c.step(&policy(), &obs(4.4, 50_000.0));
    assert_eq!(d.rate, k(20_000), "{d:?}");
}

#[test]
fn queue_depth_jump_cuts_before_latency() {
    let mut c = Controller::starting_at(k(40_000));
    let mut o = obs(4.8, 20_000.0);
    o.app_queue_depth = Some(2.0);
    c.step(&policy(), &o);
    o.app_queue_depth = Some(5.0);
    let d = c.step(&policy(), &o);
    assert_eq!(d.rate, k(30_000));
    assert!(matches!(d.reason, Reason::QueueRise { .. }));
}

#[test]
fn idle_goes_to_the_ceiling_quickly() {
    let mut c = Controller::new();
    let idle = Observation {
        elapsed: Duration::from_secs(1),
        foreground_kib_per_sec: Some(0.0),
        ..Observation::default()
    };
    assert_eq!(c.step(&policy(), &idle).rate, k(25_600));
    let d = c.step(&policy(), &idle);
    assert_eq!(d.rate, k(102_400));
    assert_eq!(d.state, ControlState::AtCeiling);
}

#[test]
fn busy_without_a_latency_signal_holds() {
    let mut c = Controller::starting_at(k(5_000));
    let o = Observation {
        elapsed: Duration::from_secs(1),
        foreground_kib_per_sec: Some(10_000.0),
        ..Observation::default()
    };
    let d = c.step(&policy(), &o);
    assert_eq!(d.rate, k(5_000));
    assert_eq!(d.reason, Reason::NoSignal);
    // The backing device stands in when the app is busy.
    let mut o = o;
    o.backing_write_latency_ms = Some(50.0);
    assert_eq!(c.step(&policy(), &o).rate, k(500));
}

#[test]
fn a_secondary_sync_target_follows_its_backing_device() {
    // No application I/O on this node's DRBD device; the Primary's writes
    // arrive on the backing device, whose latency is far over the target.
    let secondary = |replicated: f64| Observation {
        elapsed: Duration::from_secs(1),
        foreground_kib_per_sec: Some(0.0),
        app_queue_depth: Some(0.0),
        backing_write_latency_ms: Some(50.0),
        replicated_write_kib_per_sec: Some(replicated),
        uptodate_replicas: 1,
        ..Observation::default()
    };
    let mut c = Controller::starting_at(k(5_000));
    let d = c.step(&policy(), &secondary(20_000.0));
    assert!(matches!(d.reason, Reason::HardMiss { .. }), "{d:?}");
    assert_eq!(d.rate, k(500));
    // No writes arriving: the backing latency is the resync's own, so the
    // disk counts as idle and the resync may run at full speed.
    let mut c = Controller::starting_at(k(5_000));
    let d = c.step(&policy(), &secondary(0.0));
    assert_eq!(d.reason, Reason::Idle, "{d:?}");
    assert!(d.rate > k(5_000));
}

#[test]
fn no_time_no_change() {
    let mut c = Controller::starting_at(k(5_000));
    let mut o = obs(100.0, 1.0);
    o.elapsed = Duration::ZERO;
    let d = c.step(&policy(), &o);
    assert_eq!(d.rate, k(5_000));
    assert_eq!(d.reason, Reason::NoTimeElapsed);
}

#[test]
fn unused_rate_stops_growing() {
    let mut c = Controller::starting_at(k(10_000)).without_model();
    let mut o = obs(1.0, 10_000.0);
    o.resync_kib_per_sec = Some(1_000.0);
    o.out_of_sync_kib = Some(1 << 30);
    let rates: Vec<u64> = (0..8).map(|_| c.step(&policy(), &o).rate.get()).collect();
    assert!(rates[1] > rates[0], "{rates:?}");
    assert_eq!(rates[6], rates[7], "{rates:?}");
    assert!(matches!(
        c.step(&policy(), &o).reason,
        Reason::RateUnused { .. }
    ));
}

#[test]
fn p99_target_uses_the_p99_or_estimates_it() {
    let mut p = policy();
    p.statistic = Statistic::P99;
    let mut c = Controller::starting_at(k(10_000));
    let mut o = obs(2.0, 10_000.0);
    // 4.6 × 2 ms = 9.2 ms estimated p99: over the 5 ms target.
    let d = c.step(&p, &o);
    assert_eq!(d.latency_ms, Some(2.0 * 4.6));
    o.app_write_latency_p99_ms = Some(3.0);
    assert_eq!(c.step(&p, &o).latency_ms, Some(3.0));
}

#[test]
fn ceiling_is_the_smaller_of_max_rate_and_configured_c_max_rate() {
    let mut o = obs(1.0, 0.0);
    o.configured_c_max_rate = Some(k(4_096));
    assert_eq!(bounds(&policy(), &o), (k(250), k(4_096)));
    o.configured_c_max_rate = Some(k(100));
    assert_eq!(
        bounds(&policy(), &o),
        (k(100), k(100)),
        "floor never above ceiling"
    );
}

#[test]
fn floor_doubles_faster_with_one_replica_left() {
    let mut o = obs(1.0, 0.0);
    o.reduced_redundancy_for = Duration::from_secs(1_200);
    assert_eq!(bounds(&policy(), &o).0, k(1_000));
    o.uptodate_replicas = 1;
    assert_eq!(bounds(&policy(), &o).0, k(4_000));
    o.reduced_redundancy_for = Duration::from_secs(1_000_000);
    assert_eq!(bounds(&policy(), &o).0, k(25_600), "capped");
}

#[test]
fn network_headroom_caps_the_ceiling_but_not_under_min_rate() {
    let mut o = obs(1.0, 10_000.0);
    o.network_headroom_kib_per_sec = Some(10_000.0);
    assert_eq!(bounds(&policy(), &o).1, k(10_000));
    o.network_headroom_kib_per_sec = Some(0.0);
    let (floor, ceiling) = bounds(&policy(), &o);
    assert_eq!(ceiling, policy().min_rate);
    assert_eq!(floor, policy().min_rate);
    o.network_headroom_kib_per_sec = Some(f64::NAN);
    assert_eq!(bounds(&policy(), &o).1, policy().max_rate);
}
