//! How long to wait before trying the controllers again: capped exponential
//! backoff with "equal jitter" (half fixed, half random), so that many
//! agents that lost the same controller do not come back in step. Pure.

use std::time::Duration;

/// The wait after `failures` consecutive failures (1 = the first):
/// `min(cap, base * 2^(failures-1))`, of which the upper half is scaled by
/// `jitter` (clamped to `0..=1`, NaN taken as 0).
pub fn backoff(failures: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(32);
    let full = base
        .checked_mul(1u32 << exponent.min(31))
        .unwrap_or(cap)
        .min(cap);
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    let half = full / 2;
    half + half.mul_f64(jitter)
}

/// The base and cap used for a report interval: the base is the interval
/// (at most one second), the cap eight intervals within one second and
/// one minute.
pub fn limits(report_interval: Duration) -> (Duration, Duration) {
    let base = report_interval.min(Duration::from_secs(1));
    let cap = (report_interval * 8).clamp(Duration::from_secs(1), Duration::from_secs(60));
    (base, cap.max(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn doubles_then_caps() {
        let cap = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n, S, cap, 1.0).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX, S, cap, 1.0), cap);
        assert_eq!(backoff(0, S, cap, 1.0), S);
    }

    #[test]
    fn jitter_keeps_at_least_half() {
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(3, S, cap, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(3, S, cap, 0.5), Duration::from_secs(3));
        assert_eq!(backoff(3, S, cap, 7.0), Duration::from_secs(4));
        assert_eq!(backoff(3, S, cap, -1.0), Duration::from_secs(2));
        assert_eq!(backoff(3, S, cap, f64::NAN), Duration::from_secs(2));
    }

    #[test]
    fn limits_follow_the_interval() {
        assert_eq!(
            limits(Duration::from_secs(15)),
            (S, Duration::from_secs(60))
        );
        assert_eq!(
            limits(Duration::from_millis(100)),
            (Duration::from_millis(100), S)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_above_the_cap_nor_below_half(n: u32, base_ms in 1u64..10_000, cap_ms in 1u64..100_000, j: f64) {
            let base = Duration::from_millis(base_ms);
            let cap = Duration::from_millis(cap_ms);
            let wait = backoff(n, base, cap, j);
            proptest::prop_assert!(wait <= cap);
            proptest::prop_assert!(wait >= base.min(cap) / 2);
        }
    }
}
