//! Capped exponential backoff, for everything that retries: the events2
//! child's restarts ([`Backoff`], no jitter) and the LINSTOR reporter's
//! retries ([`delay`] with "equal jitter": half fixed, half random, so that
//! many agents that lost the same controller do not come back in step).
//! Pure: the caller brings the randomness and the clock.

use std::time::Duration;

/// The wait after `failures` consecutive failures (1 = the first):
/// `min(cap, base * 2^(failures-1))`, of which the upper half is scaled by
/// `jitter` (clamped to `0..=1`, NaN taken as 0; 1 = no jitter).
pub(crate) fn delay(failures: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(31);
    let full = base.checked_mul(1u32 << exponent).unwrap_or(cap).min(cap);
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    let fixed = full / 2;
    let spread = full - fixed;
    fixed
        + if jitter >= 1.0 {
            spread
        } else {
            spread.mul_f64(jitter)
        }
}

/// How restarts are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The first delay.
    pub initial: Duration,
    /// Delays double up to this.
    pub max: Duration,
    /// A run at least this long (with a complete initial dump) resets the delay.
    pub stable_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
        }
    }
}

/// The delay sequence `initial, 2·initial, … max, max, …` ([`delay`]
/// without jitter).
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    failures: u32,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            failures: 0,
        }
    }

    /// The delay to wait now; the following one doubles.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        delay(self.failures, self.policy.initial, self.policy.max, 1.0)
    }

    /// Back to the initial delay (after a stable run).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn policy(&self) -> &BackoffPolicy {
        &self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn doubles_then_caps() {
        let cap = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=9).map(|n| delay(n, S, cap, 1.0).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(delay(u32::MAX, S, cap, 1.0), cap);
        assert_eq!(delay(0, S, cap, 1.0), S);
    }

    #[test]
    fn jitter_keeps_at_least_half() {
        let cap = Duration::from_secs(60);
        assert_eq!(delay(3, S, cap, 0.0), Duration::from_secs(2));
        assert_eq!(delay(3, S, cap, 0.5), Duration::from_secs(3));
        assert_eq!(delay(3, S, cap, 7.0), Duration::from_secs(4));
        assert_eq!(delay(3, S, cap, -1.0), Duration::from_secs(2));
        assert_eq!(delay(3, S, cap, f64::NAN), Duration::from_secs(2));
        // No jitter is the whole delay, to the nanosecond.
        let odd = Duration::from_nanos(1_000_000_001);
        assert_eq!(delay(1, odd, cap, 1.0), odd);
    }

    #[test]
    fn doubles_caps_and_resets() {
        let mut backoff = Backoff::new(BackoffPolicy::default());
        let delays: Vec<u64> = (0..9).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_secs(1));
    }

    #[test]
    fn many_failures_stay_at_the_cap() {
        let mut backoff = Backoff::new(BackoffPolicy {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(5),
            stable_after: S,
        });
        for _ in 0..100 {
            backoff.next_delay();
        }
        assert_eq!(backoff.next_delay(), Duration::from_secs(5));
    }

    proptest::proptest! {
        #[test]
        fn never_above_the_cap_nor_below_half(n: u32, base_ms in 1u64..10_000, cap_ms in 1u64..100_000, j: f64) {
            let base = Duration::from_millis(base_ms);
            let cap = Duration::from_millis(cap_ms);
            let wait = delay(n, base, cap, j);
            proptest::prop_assert!(wait <= cap);
            proptest::prop_assert!(wait >= base.min(cap) / 2);
        }
    }
}
