//! DRBD's own resync pacing, after the kernel's `drbd_rs_number_requests`,
//! `drbd_rs_controller` (drbd_sender.c) and `drbd_rs_c_min_rate_throttle`
//! (drbd_receiver.c), rewritten for a 100 ms virtual tick.
//!
//! [`Pacer`] runs on the SyncTarget once per tick:
//! - `c-plan-ahead` = 0: a fixed `resync-rate` (KiB/s) per tick; c-max-rate
//!   does not apply (as in the kernel).
//! - `c-plan-ahead` > 0: a plan of `c-plan-ahead` ticks. It aims at
//!   `c-fill-target` sectors in flight, or — when that is 0 — at the sectors
//!   that came in this tick × `c-delay-target`; at the very start (nothing
//!   in flight, nothing came in) it aims at `resync-rate` worth of the whole
//!   plan. The missing amount is spread evenly over the plan; this tick asks
//!   for what came in plus the plan's head, never less than 0 and never more
//!   than `c-max-rate` (0 = unlimited) worth of a tick.
//! - requests are whole 4 KiB bitmap blocks; at most `max-buffers` blocks
//!   in flight.
//!
//! [`MinRate`] is the activity throttle one side keeps: if the backing disk
//! did more than 64 sectors (32 KiB) of I/O that was not resync since the
//! last look, and the resync rate since the sync mark before the latest one
//! (3–6 s ago) is above `c-min-rate`, the side slows down. The kernel checks
//! before every request; on a busy disk every check sees fresh foreign I/O,
//! so within a tick requests pass only until the recent rate reaches
//! c-min-rate ([`Gate::Budget`]). Slowed down, the SyncTarget sends nothing
//! that tick and the SyncSource serves one request (its receiver sleeps
//! 100 ms per request). Waiting for the activity log (`ap_actlog_cnt`) is
//! not modelled.
//!
//! Answers quicker than the tick: the kernel reschedules itself as soon as
//! every request is answered and scales what came in to the 100 ms
//! interval; [`Pacer::tick`] takes that as a `speedup` (0.1 s / response
//! time, 1..=10), which is why an unthrottled resync on a fast LAN reaches
//! c-max-rate within a few ticks instead of creeping up by
//! fill-target / plan-ahead per tick.

use crate::options::PeerDeviceOptions;

/// Ticks per second of the kernel's resync timer (RS_MAKE_REQS_INTV = 100 ms).
pub const TICKS_PER_SECOND: u64 = 10;
/// Sectors in one bitmap block (4 KiB).
const SECTORS_PER_BLOCK: i64 = 8;
/// Sectors of foreign I/O that make a disk count as busy.
const BUSY_SECTORS: f64 = 64.0;
/// Sync marks: one every 3 s, 8 of them.
const MARK_STEP_TICKS: u64 = 3 * TICKS_PER_SECOND;
const MARKS: usize = 8;

/// The SyncTarget's request pacing for one peer device.
#[derive(Debug, Clone, PartialEq)]
pub struct Pacer {
    options: PeerDeviceOptions,
    /// Planned corrections, sectors; `plan.len()` = c-plan-ahead.
    plan: Vec<i64>,
    head: usize,
    plan_total: i64,
    /// Sectors requested and not yet come in.
    in_flight: i64,
    /// max-buffers of the connection (4 KiB pages).
    max_buffers: i64,
}

impl Pacer {
    /// A fresh controller; `max_buffers` as in net options (default 2048).
    pub fn new(options: PeerDeviceOptions, max_buffers: u64) -> Self {
        let mut pacer = Self {
            options,
            plan: Vec::new(),
            head: 0,
            plan_total: 0,
            in_flight: 0,
            max_buffers: i64::try_from(max_buffers).unwrap_or(i64::MAX),
        };
        pacer.reset_plan();
        pacer
    }

    pub fn options(&self) -> &PeerDeviceOptions {
        &self.options
    }

    /// New options at run time; a changed c-plan-ahead starts a new plan.
    pub fn set_options(&mut self, options: PeerDeviceOptions) {
        let replan = options.c_plan_ahead != self.options.c_plan_ahead;
        self.options = options;
        if replan {
            self.reset_plan();
        }
    }

    fn reset_plan(&mut self) {
        let steps = usize::try_from(self.options.c_plan_ahead)
            .unwrap_or(usize::MAX)
            .min(300);
        self.plan = vec![0; steps];
        self.head = 0;
        self.plan_total = 0;
    }

    /// Sectors requested and not yet answered.
    pub fn in_flight_sectors(&self) -> i64 {
        self.in_flight
    }

    /// One tick: `sect_in` sectors of resync data came in since the last
    /// tick. Returns the sectors the SyncTarget may request now (a multiple
    /// of 8); call [`Pacer::sent`] with what was actually requested.
    ///
    /// `speedup` (1..=10) stands for the kernel rescheduling itself as soon
    /// as every request is answered: with answers back after a tenth of the
    /// tick it runs ten times and scales what came in to the 100 ms interval.
    /// The plant passes 0.1 s / response time when nothing is queued at the
    /// source, else 1.
    pub fn tick(&mut self, sect_in: i64, speedup: f64) -> i64 {
        let sect_in = sect_in.max(0);
        self.in_flight = (self.in_flight - sect_in).max(0);
        let blocks = if self.plan.is_empty() {
            // Fixed rate: resync-rate KiB/s for one tick, in 4 KiB blocks.
            let kib = rate_per_tick(self.options.resync_rate);
            kib / 4
        } else {
            let scaled = (sect_in as f64 * speedup.clamp(1.0, 10.0)).round() as i64;
            self.controller(scaled) / SECTORS_PER_BLOCK
        };
        // At most max-buffers blocks in flight at a time; with answers back
        // `speedup` times a tick, that many windows fit in one tick.
        let window =
            (self.max_buffers as f64 * speedup.clamp(1.0, 10.0)).min(i64::MAX as f64 / 2.0);
        let room = window as i64 - self.in_flight / SECTORS_PER_BLOCK;
        blocks.min(room).max(0) * SECTORS_PER_BLOCK
    }

    /// Records `sectors` requested this tick.
    pub fn sent(&mut self, sectors: i64) {
        self.in_flight += sectors.max(0);
    }

    /// The plan-ahead window controller; sectors to request this tick.
    fn controller(&mut self, sect_in: i64) -> i64 {
        let steps = self.plan.len() as i64;
        let o = &self.options;
        let want = if self.in_flight + sect_in == 0 {
            rate_per_tick(o.resync_rate) * 2 * steps
        } else if o.c_fill_target > 0 {
            i64::try_from(o.c_fill_target).unwrap_or(i64::MAX)
        } else {
            sect_in * i64::try_from(o.c_delay_target).unwrap_or(0)
        };
        let correction = want - self.in_flight - self.plan_total;
        let per_step = correction / steps;
        for slot in &mut self.plan {
            *slot += per_step;
        }
        self.plan_total += per_step * steps;
        let now = std::mem::take(&mut self.plan[self.head]);
        self.head = (self.head + 1) % self.plan.len();
        self.plan_total -= now;
        let wanted = (sect_in + now).max(0);
        if o.c_max_rate == 0 {
            wanted
        } else {
            wanted.min(rate_per_tick(o.c_max_rate) * 2)
        }
    }
}

/// KiB per 100 ms tick for a rate in KiB/s.
fn rate_per_tick(kib_s: u64) -> i64 {
    i64::try_from(kib_s / TICKS_PER_SECOND).unwrap_or(i64::MAX / 4)
}

/// One side's c-min-rate activity throttle and the resync's sync marks.
#[derive(Debug, Clone, PartialEq)]
pub struct MinRate {
    /// Foreign (non-resync) sectors of the backing disk at the last look.
    last_events: f64,
    /// (tick, KiB left) every 3 s; `last` is the newest.
    marks: [(u64, f64); MARKS],
    last: usize,
}

impl MinRate {
    /// Starts with every mark at the resync's start.
    pub fn new(now_tick: u64, left_kib: f64, foreign_sectors: f64) -> Self {
        Self {
            last_events: foreign_sectors,
            marks: [(now_tick, left_kib); MARKS],
            last: 0,
        }
    }

    /// Takes a new sync mark when 3 s have passed since the newest.
    pub fn advance_marks(&mut self, now_tick: u64, left_kib: f64) {
        if now_tick >= self.marks[self.last].0 + MARK_STEP_TICKS {
            self.last = (self.last + 1) % MARKS;
            self.marks[self.last] = (now_tick, left_kib);
        }
    }

    /// The resync rate, KiB/s, since the mark before the newest one.
    pub fn recent_rate(&self, now_tick: u64, left_kib: f64) -> f64 {
        let (at, left_then) = self.marks[(self.last + MARKS - 1) % MARKS];
        let seconds = (now_tick.saturating_sub(at) / TICKS_PER_SECOND).max(1);
        (left_then - left_kib).max(0.0) / seconds as f64
    }

    /// Whether to slow down now (`c_min_rate` KiB/s, 0 = never), given the
    /// backing disk's cumulative foreign sectors.
    pub fn should_slow_down(
        &mut self,
        c_min_rate: u64,
        now_tick: u64,
        left_kib: f64,
        foreign_sectors: f64,
    ) -> bool {
        self.gate(c_min_rate, now_tick, left_kib, foreign_sectors) == Gate::Closed
    }

    /// The throttle for this tick. The kernel checks before every request;
    /// on a busy disk each check sees fresh foreign I/O, so within a tick
    /// requests pass only until the recent rate reaches c-min-rate: that
    /// remainder is the [`Gate::Budget`].
    pub fn gate(
        &mut self,
        c_min_rate: u64,
        now_tick: u64,
        left_kib: f64,
        foreign_sectors: f64,
    ) -> Gate {
        if c_min_rate == 0 || foreign_sectors - self.last_events <= BUSY_SECTORS {
            return Gate::Open;
        }
        self.last_events = foreign_sectors;
        let (at, left_then) = self.marks[(self.last + MARKS - 1) % MARKS];
        let seconds = (now_tick.saturating_sub(at) / TICKS_PER_SECOND).max(1);
        let budget = c_min_rate as f64 * seconds as f64 - (left_then - left_kib).max(0.0);
        if budget <= 0.0 {
            Gate::Closed
        } else {
            Gate::Budget(budget)
        }
    }
}

/// What c-min-rate lets through this tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    /// Disk idle (or c-min-rate 0): no limit.
    Open,
    /// Disk busy, recent rate below c-min-rate: at most this many KiB.
    Budget(f64),
    /// Disk busy, recent rate above c-min-rate: slow down.
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(f: impl FnOnce(&mut PeerDeviceOptions)) -> PeerDeviceOptions {
        let mut o = PeerDeviceOptions::default();
        f(&mut o);
        o
    }

    #[test]
    fn fixed_rate_without_plan_ahead() {
        let mut p = Pacer::new(
            opts(|o| {
                o.c_plan_ahead = 0;
                o.resync_rate = 40_960;
            }),
            1_000_000,
        );
        for _ in 0..5 {
            let s = p.tick(8192, 1.0);
            assert_eq!(s, 8192); // 4096 KiB per tick
            p.sent(s);
        }
    }

    #[test]
    fn controller_ramps_slowly_at_100ms_and_fast_with_quick_answers() {
        let run = |speedup: f64, ticks: usize| {
            let mut p = Pacer::new(opts(|o| o.c_max_rate = 10_240), 1_000_000);
            let mut came_in = 0;
            let mut last = 0;
            for _ in 0..ticks {
                last = p.tick(came_in, speedup);
                p.sent(last);
                came_in = last; // all answered within the tick
            }
            last
        };
        // One run a tick: the plan adds fill-target / plan-ahead per tick.
        let slow = run(1.0, 50);
        assert!((200..1000).contains(&slow), "{slow}");
        // Rescheduled on every answer: c-max-rate (1 MiB per tick) at once.
        assert_eq!(run(10.0, 10), 2048);
    }

    #[test]
    fn controller_holds_fill_target_in_flight_when_answers_lag() {
        // The peer serves at most 512 sectors per tick; the rest stays in flight.
        let mut p = Pacer::new(opts(|o| o.c_fill_target = 4096), 1_000_000);
        let mut backlog = 0;
        let mut came_in = 0;
        for _ in 0..600 {
            let s = p.tick(came_in, 1.0);
            p.sent(s);
            backlog += s;
            came_in = backlog.min(512);
            backlog -= came_in;
        }
        let in_flight = p.in_flight_sectors();
        assert!((3000..=5200).contains(&in_flight), "{in_flight}");
    }

    #[test]
    fn changing_plan_ahead_resets_the_plan() {
        let mut p = Pacer::new(PeerDeviceOptions::default(), 2048);
        let s = p.tick(0, 1.0);
        p.sent(s);
        assert!(p.plan_total != 0);
        p.set_options(opts(|o| o.c_plan_ahead = 10));
        assert_eq!(p.plan_total, 0);
        assert_eq!(p.plan.len(), 10);
    }

    #[test]
    fn max_buffers_bound_the_in_flight() {
        let mut p = Pacer::new(opts(|o| o.c_plan_ahead = 0), 16);
        // 250 KiB/s is 25 KiB per tick: 6 whole blocks.
        assert_eq!(p.tick(0, 1.0), 48);
        let mut p = Pacer::new(
            opts(|o| {
                o.c_plan_ahead = 0;
                o.resync_rate = 1_000_000;
            }),
            16,
        );
        assert_eq!(p.tick(0, 1.0), 128);
    }

    #[test]
    fn min_rate_needs_activity_and_a_high_recent_rate() {
        let mut m = MinRate::new(0, 1_000_000.0, 0.0);
        // Idle disk: never slows down.
        assert!(!m.should_slow_down(250, 10, 900_000.0, 10.0));
        // Busy disk, 100 000 KiB in 1 s: slow down.
        assert!(m.should_slow_down(250, 10, 900_000.0, 1000.0));
        // No new foreign I/O since: no.
        assert!(!m.should_slow_down(250, 11, 900_000.0, 1000.0));
        // c-min-rate 0 disables it.
        assert!(!m.should_slow_down(0, 12, 900_000.0, 1e9));
    }

    #[test]
    fn marks_give_a_3_to_6_second_rate() {
        let mut m = MinRate::new(0, 10_000.0, 0.0);
        for t in 1..=70 {
            m.advance_marks(t, 10_000.0 - 100.0 * t as f64);
        }
        // 1000 KiB/s all along (100 KiB per tick).
        let r = m.recent_rate(70, 10_000.0 - 7000.0);
        assert!((r - 1000.0).abs() < 1e-6, "{r}");
    }
}
