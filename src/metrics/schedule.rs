//! When the background refresher renders: shortly before the next scrape.
//!
//! Rendering a changed resource costs about 0.1 ms. Rendering on every
//! change keeps scrapes fast but costs CPU in proportion to the event rate;
//! rendering at scrape time costs CPU in proportion to the scrape rate but
//! makes the scrape wait. [`ScrapeClock`] learns the scrape interval from
//! the scrapes it sees and tells the refresher to stay idle until
//! [`LEAD`] before the next expected scrape, then to render changes as they
//! come. A resource that changes many times between two scrapes is then
//! rendered about once, and the scrape finds the part ready. Pure: times go
//! in as arguments.

use std::time::{Duration, Instant};

/// How long before an expected scrape the refresher starts rendering.
pub(super) const LEAD: Duration = Duration::from_secs(1);

/// Gaps shorter than this are concurrent scrapers, not an interval.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Gaps remembered to estimate the interval.
const GAPS: usize = 8;

/// Scrapes missed in a row after which the scraper counts as gone.
const MISSED: u32 = 2;

/// What the refresher should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresh {
    /// Render now: a scrape is due soon or the interval is unknown.
    Now,
    /// Nothing due before this instant.
    At(Instant),
    /// No scraper seen recently: render only when a scrape asks.
    OnScrape,
}

/// The scrapes seen lately.
#[derive(Debug, Clone, Default)]
pub(super) struct ScrapeClock {
    last: Option<Instant>,
    /// The latest gaps of at least [`MIN_INTERVAL`], newest last.
    gaps: Vec<Duration>,
}

impl ScrapeClock {
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// Records a scrape at `at`.
    pub(super) fn scraped(&mut self, at: Instant) {
        if let Some(last) = self.last {
            let gap = at.saturating_duration_since(last);
            if gap < MIN_INTERVAL {
                return;
            }
            if self.gaps.len() == GAPS {
                self.gaps.remove(0);
            }
            self.gaps.push(gap);
        }
        self.last = Some(at);
    }

    /// The scrape interval: the shortest recent gap (two Prometheus servers
    /// scraping the same target interleave their scrapes).
    pub(super) fn interval(&self) -> Option<Duration> {
        self.gaps.iter().min().copied()
    }

    /// What to do about a change at `now`.
    pub(super) fn refresh(&self, now: Instant) -> Refresh {
        let (Some(last), Some(interval)) = (self.last, self.interval()) else {
            return Refresh::Now;
        };
        if interval <= LEAD {
            return Refresh::Now;
        }
        let since = now.saturating_duration_since(last);
        if since > interval * MISSED + LEAD {
            return Refresh::OnScrape;
        }
        // The next expected scrape: the first multiple of the interval after
        // the last scrape that is not overdue by more than LEAD (a scrape
        // that is a little late is still waited for; a missed one keeps the
        // phase).
        let periods = since.saturating_sub(LEAD).as_nanos() / interval.as_nanos() + 1;
        let next = last + interval * u32::try_from(periods).unwrap_or(u32::MAX);
        match next.checked_sub(LEAD) {
            Some(start) if start > now => Refresh::At(start),
            _ => Refresh::Now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn without_scrapes_or_an_interval_it_renders_now() {
        let t0 = Instant::now();
        let mut clock = ScrapeClock::new();
        assert_eq!(clock.refresh(t0), Refresh::Now);
        clock.scraped(t0);
        assert_eq!(clock.refresh(t0 + secs(3.0)), Refresh::Now);
    }

    #[test]
    fn waits_until_a_second_before_the_next_scrape() {
        let t0 = Instant::now();
        let mut clock = ScrapeClock::new();
        clock.scraped(t0);
        clock.scraped(t0 + secs(15.0));
        assert_eq!(clock.interval(), Some(secs(15.0)));
        assert_eq!(clock.refresh(t0 + secs(16.0)), Refresh::At(t0 + secs(29.0)));
        assert_eq!(clock.refresh(t0 + secs(29.5)), Refresh::Now);
        // A late scrape: still rendering until it comes.
        assert_eq!(clock.refresh(t0 + secs(30.5)), Refresh::Now);
    }

    #[test]
    fn a_missed_scrape_keeps_the_phase() {
        let t0 = Instant::now();
        let mut clock = ScrapeClock::new();
        clock.scraped(t0);
        clock.scraped(t0 + secs(10.0));
        assert_eq!(clock.refresh(t0 + secs(22.0)), Refresh::At(t0 + secs(29.0)));
    }

    #[test]
    fn a_gone_scraper_leaves_rendering_to_the_next_scrape() {
        let t0 = Instant::now();
        let mut clock = ScrapeClock::new();
        clock.scraped(t0);
        clock.scraped(t0 + secs(10.0));
        assert_eq!(clock.refresh(t0 + secs(31.5)), Refresh::OnScrape);
        clock.scraped(t0 + secs(40.0));
        assert_eq!(clock.refresh(t0 + secs(40.5)), Refresh::At(t0 + secs(49.0)));
    }

    #[test]
    fn fast_scrapers_keep_it_rendering() {
        let t0 = Instant::now();
        let mut clock = ScrapeClock::new();
        clock.scraped(t0);
        clock.scraped(t0 + secs(0.5));
        assert_eq!(clock.refresh(t0 + secs(0.6)), Refresh::Now);
    }

    #[test]
    fn concurrent_scrapes_are_not_an_interval_and_two_servers_interleave() {
        let t0 = Instant::now();
        let mut clock = ScrapeClock::new();
        clock.scraped(t0);
        clock.scraped(t0 + Duration::from_millis(1));
        assert_eq!(clock.interval(), None);
        // Two servers at 15 s, 6 s apart: gaps 6, 9, 6, 9...
        for k in 1..5 {
            let base = t0 + secs(15.0 * f64::from(k));
            clock.scraped(base - secs(9.0));
            clock.scraped(base);
        }
        assert_eq!(clock.interval(), Some(secs(6.0)));
    }

    proptest::proptest! {
        #[test]
        fn never_defers_past_the_next_expected_scrape(
            gaps in proptest::collection::vec(0u64..60_000, 0..12),
            after in 0u64..200_000,
        ) {
            let t0 = Instant::now();
            let mut clock = ScrapeClock::new();
            let mut at = t0;
            clock.scraped(at);
            for gap in &gaps {
                at += Duration::from_millis(*gap);
                clock.scraped(at);
            }
            let now = at + Duration::from_millis(after);
            match clock.refresh(now) {
                Refresh::Now | Refresh::OnScrape => {}
                Refresh::At(start) => {
                    let interval = clock.interval().unwrap();
                    proptest::prop_assert!(start > now);
                    proptest::prop_assert!(start + LEAD <= now + interval);
                }
            }
        }
    }
}
