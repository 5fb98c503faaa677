//! How often lost events (`- skipped N`) may be answered with a `--now`
//! dump before the stream is restarted instead. Pure: the caller passes the
//! time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Lost-event dumps allowed within [`LOST_WINDOW`]; one more restarts the
/// stream. A stream that keeps overflowing its netlink buffer is better
/// started afresh than patched every few seconds.
pub const LOST_DUMPS_PER_WINDOW: usize = 5;

/// The window of [`LOST_DUMPS_PER_WINDOW`].
pub const LOST_WINDOW: Duration = Duration::from_secs(60);

/// The times of recent lost-event dumps.
#[derive(Debug, Clone)]
pub struct LostBudget {
    limit: usize,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl Default for LostBudget {
    fn default() -> Self {
        Self::new(LOST_DUMPS_PER_WINDOW, LOST_WINDOW)
    }
}

impl LostBudget {
    /// At most `limit` dumps within any `window`.
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit,
            window,
            recent: VecDeque::with_capacity(limit + 1),
        }
    }

    /// Events were lost at `now`: true = answer with a dump (and count it),
    /// false = too many within the window, restart the stream.
    pub fn allow(&mut self, now: Instant) -> bool {
        while let Some(first) = self.recent.front() {
            if now.saturating_duration_since(*first) >= self.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() >= self.limit {
            return false;
        }
        self.recent.push_back(now);
        true
    }

    /// Dumps counted within the window ending at the last call.
    pub fn used(&self) -> usize {
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_limit_holds_within_a_window_and_frees_up_after_it() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut budget = LostBudget::new(3, Duration::from_secs(60));
        assert!(budget.allow(at(0)));
        assert!(budget.allow(at(10)));
        assert!(budget.allow(at(20)));
        assert!(!budget.allow(at(30)), "fourth within 60 s");
        assert_eq!(budget.used(), 3);
        assert!(budget.allow(at(60)), "the first left the window");
        assert!(!budget.allow(at(61)));
        assert!(budget.allow(at(200)));
        assert_eq!(budget.used(), 1);
    }

    #[test]
    fn a_zero_limit_never_allows() {
        let mut budget = LostBudget::new(0, Duration::from_secs(1));
        assert!(!budget.allow(Instant::now()));
    }

    #[test]
    fn one_skip_per_stream_is_always_answered_by_a_dump() {
        let start = Instant::now();
        let mut budget = LostBudget::default();
        for i in 0..100 {
            assert!(budget.allow(start + Duration::from_secs(15 * i)));
        }
    }

    proptest! {
        /// Whatever the arrival times, no window holds more allowed dumps
        /// than the limit, and a refusal only happens when it is full.
        #[test]
        fn never_more_than_the_limit_in_any_window(
            gaps in proptest::collection::vec(0u64..30_000, 1..200),
            limit in 1usize..8,
        ) {
            let window = Duration::from_secs(10);
            let start = Instant::now();
            let mut budget = LostBudget::new(limit, window);
            let mut now = start;
            let mut allowed: Vec<Instant> = Vec::new();
            for gap in gaps {
                now += Duration::from_millis(gap);
                let in_window = allowed.iter().filter(|t| now.duration_since(**t) < window).count();
                let ok = budget.allow(now);
                prop_assert_eq!(ok, in_window < limit);
                if ok {
                    allowed.push(now);
                }
            }
        }
    }
}
