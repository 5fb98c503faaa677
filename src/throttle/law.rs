//! The control law: one pure step per interval, observation in, decision out.
//!
//! See the module documentation of [`crate::throttle`] for the design.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

pub use super::law_bounds::bounds;
use super::law_model::{JumpTrigger, ModelLaw, ModelReport, Signals};
use super::rate::KibPerSec;

/// Half-width of the hold band around the target, as a share of it.
pub const BAND: f64 = 0.10;
/// Increase per interval = `GAIN` × headroom (share of the target) …
pub const GAIN: f64 = 0.5;
/// … but at most this share of the current rate.
pub const MAX_UP: f64 = 0.25;
/// Cut on a miss = `BACKOFF_GAIN` × excess (share of the target) …
pub const BACKOFF_GAIN: f64 = 0.5;
/// … at least this …
pub const MIN_CUT: f64 = 0.05;
/// … and at most this.
pub const MAX_CUT: f64 = 0.5;
/// A single sample this many times the target is a real overload, not
/// noise: cut by [`MAX_CUT`] at once.
pub const HARD_MISS: f64 = 2.0;
/// Weight of the newest latency sample in the smoothed latency (EWMA).
pub const SMOOTHING: f64 = 0.3;
/// The set point is `target − MARGIN_PER_SPREAD × spread` (spread = the
/// smoothed absolute deviation of the samples), but at least
/// `MIN_MARGIN × target` and at most `MAX_MARGIN × target` under the target.
pub const MARGIN_PER_SPREAD: f64 = 2.0;
pub const MIN_MARGIN: f64 = 0.15;
pub const MAX_MARGIN: f64 = 0.3;
/// Weight of the newest deviation in the spread (slower than the latency
/// filter, so the set point itself does not jitter).
pub const SPREAD_SMOOTHING: f64 = 0.05;
/// Near the target (within ±`FAR` of it) the rate moves again only after
/// `DWELL` intervals without change, so the smoothed latency has seen the
/// last move; farther out it moves every interval.
pub const DWELL: u32 = 2;
pub const FAR: f64 = 0.25;
/// Foreground load rising by more than this share of its recent level (and
/// by more than [`FF_MIN_SHARE`] of the ceiling) cuts the resync by the rise.
pub const FF_REL: f64 = 0.15;
pub const FF_MIN_SHARE: f64 = 0.02;
/// Smoothing of the foreground level the rise is measured against.
pub const FF_SMOOTHING: f64 = 0.5;
/// App queue depth at least this many times its previous value (and ≥ 1)
/// cuts by [`QUEUE_CUT`] before the latency shows it.
pub const QUEUE_RISE: f64 = 2.0;
pub const QUEUE_CUT: f64 = 0.25;
/// Idle disk: multiply by this per interval, and go to at least
/// `ceiling / IDLE_JUMP_DIVISOR` at once.
pub const IDLE_FACTOR: f64 = 4.0;
pub const IDLE_JUMP_DIVISOR: f64 = 4.0;
/// Below this foreground rate (KiB/s) the application counts as idle.
pub const IDLE_FOREGROUND_KIB: f64 = 1.0;
/// Anti-windup: after this many intervals in which DRBD resynced at less
/// than `1 / UNUSED_RATIO` of the setpoint, the setpoint stops rising.
pub const UNUSED_INTERVALS: u32 = 3;
pub const UNUSED_RATIO: f64 = 2.0;
/// M/M/1 tail: p99 of an exponential wait is ln(100) ≈ 4.6 × its mean; used
/// to estimate a p99 when only the mean is known.
pub const P99_PER_MEAN: f64 = 4.6;

/// Which latency statistic the target is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Statistic {
    /// Mean write latency over the interval (what diskstats give).
    #[default]
    Mean,
    /// 99th percentile over the interval; estimated as 4.6 × mean if absent.
    P99,
}

/// What the law needs from the policy (see `EffectivePolicy::law`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LawPolicy {
    pub latency_target: Duration,
    pub statistic: Statistic,
    /// The floor while redundancy has just been lost.
    pub min_rate: KibPerSec,
    /// The ceiling (further capped by the configured c-max-rate).
    pub max_rate: KibPerSec,
    /// The floor doubles every this long at reduced redundancy (twice as
    /// fast with at most one UpToDate replica left) …
    pub floor_doubling: Duration,
    /// … up to this.
    pub floor_cap: KibPerSec,
}

/// One interval's signals for one SyncTarget peer-device. `None` = not
/// measured (no cross-node signal, no writes, counters reset …).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Observation {
    /// Length of the interval the signals cover.
    pub elapsed: Duration,
    /// Application write latency on the DRBD device (the Primary's if
    /// available), mean over the interval, ms. `None` when no write completed.
    pub app_write_latency_ms: Option<f64>,
    /// The same, 99th percentile, ms (only from a histogram source).
    pub app_write_latency_p99_ms: Option<f64>,
    /// Mean application queue depth on the DRBD device.
    pub app_queue_depth: Option<f64>,
    /// Foreground (application) throughput, KiB/s.
    pub foreground_kib_per_sec: Option<f64>,
    /// Backing device write latency, mean ms (resync I/O included); the
    /// latency signal when the DRBD device gives none but the app is busy.
    pub backing_write_latency_ms: Option<f64>,
    /// Backing device write throughput, KiB/s (the resync's writes and
    /// the replicated ones, over the same interval as its latency): the
    /// queue model's load on a Secondary SyncTarget, where `dbdt1` may be
    /// seconds old.
    pub backing_write_kib_per_sec: Option<f64>,
    /// Writes arriving from peers on this node's backing device, KiB/s (a
    /// Secondary SyncTarget's share of the Primary's load; see
    /// [`replicated_write_kib`](super::backing::replicated_write_kib)). Makes
    /// the backing device's latency the signal when the DRBD device itself
    /// is idle.
    pub replicated_write_kib_per_sec: Option<f64>,
    /// DRBD connection `rs-in-flight` (KiB) — reported, not used by the law.
    pub rs_in_flight_kib: Option<u64>,
    /// DRBD peer-device `pending` — reported, not used by the law.
    pub pending: Option<u64>,
    /// DRBD peer-device `out-of-sync`, KiB remaining.
    pub out_of_sync_kib: Option<u64>,
    /// DRBD peer-device `dbdt1`: the resync rate achieved lately, KiB/s.
    pub resync_kib_per_sec: Option<f64>,
    /// UpToDate replicas of this volume that remain (cluster-wide).
    pub uptodate_replicas: u32,
    /// How long redundancy has been reduced.
    pub reduced_redundancy_for: Duration,
    /// The c-max-rate configured for the peer-device before the agent took
    /// over; a second ceiling.
    pub configured_c_max_rate: Option<KibPerSec>,
    /// What the replication interface can still carry for this resync,
    /// KiB/s (its speed share minus the other traffic on it); a third
    /// ceiling, never under `min-rate`. `None` when unknown (no network
    /// watcher, no link speed).
    pub network_headroom_kib_per_sec: Option<f64>,
}

/// The controller's state, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlState {
    Holding,
    Increasing,
    BackingOff,
    Floor,
    AtCeiling,
}

impl ControlState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Holding => "holding",
            Self::Increasing => "increasing",
            Self::BackingOff => "backing-off",
            Self::Floor => "floor",
            Self::AtCeiling => "at-ceiling",
        }
    }
}

impl fmt::Display for ControlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the rate moved (or did not).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Reason {
    /// No time passed since the last step.
    NoTimeElapsed,
    /// No latency signal while the application is (or may be) busy.
    NoSignal,
    /// No application I/O: ramping towards the ceiling.
    Idle,
    /// Latency within the band around the target.
    InBand { latency_ms: f64 },
    /// Latency under the band: room to grow.
    Headroom { latency_ms: f64 },
    /// Latency over the band in two consecutive intervals.
    OverTarget { latency_ms: f64 },
    /// One sample far over the target.
    HardMiss { latency_ms: f64 },
    /// Foreground throughput jumped (KiB/s): the resync yields as much.
    ForegroundRise { kib_per_sec: f64 },
    /// Application queue depth jumped.
    QueueRise { depth: f64 },
    /// DRBD does not use the rate it has (network- or source-bound).
    RateUnused { achieved_kib_per_sec: f64 },
    /// A sample over the band, not yet confirmed by the next one.
    Unconfirmed { latency_ms: f64 },
    /// The queue model's predicted operating point, jumped to at once.
    ModelJump {
        trigger: JumpTrigger,
        kib_per_sec: f64,
    },
    /// The model's operating point, corrected by the latency seen: moved
    /// half way to it (or held, within 3 %).
    ModelTrim { latency_ms: f64, setpoint_ms: f64 },
    /// A window whose latency and load disagree with the model by more
    /// than its noise (a stalled source): the rate held, nothing learnt.
    ModelHold { latency_ms: f64, expected_ms: f64 },
    /// No model yet: the load grows so that it can be fitted.
    Probing { latency_ms: f64 },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoTimeElapsed => write!(f, "no time elapsed"),
            Self::NoSignal => write!(f, "no latency signal"),
            Self::Idle => write!(f, "application idle"),
            Self::InBand { latency_ms } => write!(f, "latency {latency_ms:.2}ms in band"),
            Self::Headroom { latency_ms } => write!(f, "latency {latency_ms:.2}ms under target"),
            Self::OverTarget { latency_ms } => write!(f, "latency {latency_ms:.2}ms over target"),
            Self::HardMiss { latency_ms } => write!(f, "latency {latency_ms:.2}ms far over target"),
            Self::ForegroundRise { kib_per_sec } => {
                write!(f, "foreground +{kib_per_sec:.0}KiB/s")
            }
            Self::QueueRise { depth } => write!(f, "queue depth rose to {depth:.1}"),
            Self::RateUnused {
                achieved_kib_per_sec,
            } => write!(f, "rate unused (achieved {achieved_kib_per_sec:.0}KiB/s)"),
            Self::Unconfirmed { latency_ms } => {
                write!(f, "latency {latency_ms:.2}ms over target once")
            }
            Self::ModelJump {
                trigger,
                kib_per_sec,
            } => write!(
                f,
                "model operating point {kib_per_sec:.0}KiB/s ({})",
                trigger.as_str()
            ),
            Self::ModelTrim {
                latency_ms,
                setpoint_ms,
            } => write!(
                f,
                "latency {latency_ms:.2}ms, model set point {setpoint_ms:.2}ms"
            ),
            Self::ModelHold {
                latency_ms,
                expected_ms,
            } => write!(
                f,
                "latency {latency_ms:.2}ms off the model's {expected_ms:.2}ms: held"
            ),
            Self::Probing { latency_ms } => {
                write!(f, "latency {latency_ms:.2}ms, probing for the model")
            }
        }
    }
}

/// The step's output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Decision {
    /// The resync rate to set, KiB/s (never 0).
    pub rate: KibPerSec,
    pub state: ControlState,
    pub reason: Reason,
    /// The floor and ceiling in force this step.
    pub floor: KibPerSec,
    pub ceiling: KibPerSec,
    /// The latency compared with the target (after choosing the statistic).
    pub latency_ms: Option<f64>,
}

/// The law's memory between steps. Plain data: cloning it and replaying the
/// same observations gives the same decisions.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Controller {
    /// The current setpoint, KiB/s (`None` before the first step: start at
    /// the floor).
    rate: Option<f64>,
    /// The latency samples, smoothed (EWMA), ms.
    smoothed: Option<f64>,
    /// Smoothed foreground throughput, KiB/s.
    foreground: Option<f64>,
    /// The previous interval's app queue depth.
    prev_queue: Option<f64>,
    /// Consecutive intervals with the rate mostly unused.
    unused: u32,
    /// Smoothed |sample − smoothed latency|, ms: the signal's noise.
    spread: f64,
    /// Intervals since the rate last changed.
    since_change: u32,
    /// The last step had a latency signal: an idle-looking interval right
    /// after one may be a stalled source (nothing completed in it) and is
    /// held; a second one in a row is idle.
    busy: bool,
    /// The feed-forward fired in this step (its baseline is already set).
    #[serde(skip)]
    ff_fired: bool,
    /// The model-based half of the law.
    model: ModelLaw,
}

impl Controller {
    /// A controller that starts at the floor.
    pub fn new() -> Self {
        Self::default()
    }

    /// The previous law (feedback only, no queue model): kept as the
    /// fallback and for comparison.
    pub fn feedback_only() -> Self {
        Self {
            model: ModelLaw::feedback_only(),
            ..Self::default()
        }
    }

    /// This controller without the queue model (the previous law).
    pub fn without_model(mut self) -> Self {
        self.model = ModelLaw::feedback_only();
        self
    }

    /// A controller that resumes from `rate` (clamped on the first step).
    pub fn starting_at(rate: KibPerSec) -> Self {
        Self {
            rate: Some(rate.as_f64()),
            ..Self::default()
        }
    }

    /// The queue model's state after the last step.
    pub fn model_report(&self) -> ModelReport {
        self.model.report
    }

    /// The current setpoint, if a step has run or a start was given.
    pub fn rate(&self) -> Option<KibPerSec> {
        self.rate.map(KibPerSec::saturating_from_f64)
    }

    /// One interval: the signals in, the rate to set out.
    pub fn step(&mut self, policy: &LawPolicy, obs: &Observation) -> Decision {
        let (floor, ceiling) = bounds(policy, obs);
        let (lo, hi) = (floor.as_f64(), ceiling.as_f64());
        let current = self.rate.unwrap_or(lo).clamp(lo, hi);
        let target = policy.latency_target.as_secs_f64() * 1000.0;
        let latency = latency_signal(policy.statistic, obs);

        let (wanted, reason) = if obs.elapsed.is_zero() {
            (current, Reason::NoTimeElapsed)
        } else {
            let tolerance = match policy.statistic {
                Statistic::Mean => super::law_model::MEAN_TOLERANCE,
                Statistic::P99 => super::law_model::P99_TOLERANCE,
            };
            self.law(current, (target, tolerance), latency, hi, obs)
        };

        self.prev_queue = obs.app_queue_depth.filter(|q| q.is_finite());
        let fired = std::mem::take(&mut self.ff_fired);
        if let Some(fg) = obs
            .foreground_kib_per_sec
            .filter(|v| v.is_finite() && !fired)
        {
            let fg = fg.max(0.0);
            self.foreground = Some(match self.foreground {
                Some(old) => FF_SMOOTHING * fg + (1.0 - FF_SMOOTHING) * old,
                None => fg,
            });
        }

        let next = if wanted.is_finite() { wanted } else { current }.clamp(lo, hi);
        let rate = KibPerSec::saturating_from_f64(next).clamp(floor, ceiling);
        self.rate = Some(rate.as_f64());
        let before = KibPerSec::saturating_from_f64(current);
        self.since_change = if rate == before {
            self.since_change.saturating_add(1)
        } else {
            0
        };
        let state = if rate <= floor {
            ControlState::Floor
        } else if rate >= ceiling {
            ControlState::AtCeiling
        } else if rate > before {
            ControlState::Increasing
        } else if rate < before {
            ControlState::BackingOff
        } else {
            ControlState::Holding
        };
        Decision {
            rate,
            state,
            reason,
            floor,
            ceiling,
            latency_ms: latency,
        }
    }

    /// The unclamped next rate and why.
    fn law(
        &mut self,
        current: f64,
        (target, tolerance): (f64, f64),
        latency: Option<f64>,
        ceiling: f64,
        obs: &Observation,
    ) -> (f64, Reason) {
        let foreground = obs
            .foreground_kib_per_sec
            .filter(|v| v.is_finite())
            .map(|v| v.max(0.0));

        // The queue model first; the feedback rules below when it has no
        // usable fit.
        let signals = Signals {
            current,
            target_ms: target,
            latency_ms: latency,
            ceiling,
            hard_miss: latency.is_some_and(|l| l >= HARD_MISS * target),
            tolerance,
            fallback_noise: self.relative_spread(),
        };
        if let Some((rate, reason)) = self.model.step(&signals, obs) {
            self.unused = 0;
            self.busy = latency.is_some();
            match (reason, latency) {
                // What was smoothed before the jump is stale after it.
                (Reason::ModelJump { .. }, _) | (_, None) => self.smoothed = None,
                // A window off the curve says nothing about the latency.
                (Reason::ModelHold { .. }, _) => {}
                (_, Some(sample)) => {
                    self.track(sample);
                }
            }
            return (rate, reason);
        }

        // Feed-forward: the application asks for more than a moment ago;
        // give it the resync's share before the latency shows it.
        if let (Some(fg), Some(recent)) = (foreground, self.foreground) {
            let rise = fg - recent;
            if rise > FF_REL * recent && rise > FF_MIN_SHARE * ceiling {
                self.unused = 0;
                // Yielding the rise keeps the load where it was. If the
                // latency was fine before, that is enough (a miss now is the
                // rise itself); if not (or unknown: idle until now, the
                // resync may have filled the disk), cut for the miss as well.
                let was_fine = self.smoothed.is_some_and(|l| l <= target * (1.0 + BAND));
                let by_latency = latency
                    .filter(|&l| l >= HARD_MISS * target && !was_fine)
                    .map_or(current, |l| hard_cut(current, target, l));
                // The rise is accounted for: measure the next one from here;
                // latency from before the rise is stale.
                self.foreground = Some(fg);
                self.smoothed = None;
                self.ff_fired = true;
                return (
                    (current - rise).min(by_latency),
                    Reason::ForegroundRise { kib_per_sec: rise },
                );
            }
        }
        if let (Some(q), Some(prev)) = (obs.app_queue_depth, self.prev_queue) {
            if q.is_finite() && q >= 1.0 && q >= QUEUE_RISE * prev && prev > 0.0 {
                self.unused = 0;
                return (current * (1.0 - QUEUE_CUT), Reason::QueueRise { depth: q });
            }
        }

        let Some(sample) = latency else {
            // Whatever the latency was, it is stale once the app pauses.
            self.smoothed = None;
            let idle = foreground.is_none_or(|fg| fg < IDLE_FOREGROUND_KIB);
            if idle && !std::mem::take(&mut self.busy) {
                let up = (current * IDLE_FACTOR).max(ceiling / IDLE_JUMP_DIVISOR);
                return (self.limit_unused(current, up, obs), Reason::Idle);
            }
            return (current, Reason::NoSignal);
        };

        self.busy = true;
        if sample >= HARD_MISS * target {
            self.unused = 0;
            // The samples before the overload say nothing about after the cut.
            self.smoothed = None;
            return (
                hard_cut(current, target, sample),
                Reason::HardMiss { latency_ms: sample },
            );
        }
        let smoothed = self.track(sample);
        // The target is a limit for every interval, not a mean: aim under
        // it by twice the typical deviation of one sample.
        let margin =
            (MARGIN_PER_SPREAD * self.spread).clamp(MIN_MARGIN * target, MAX_MARGIN * target);
        let target = target - margin;
        let settled = self.since_change >= DWELL;
        let far_over = smoothed > target * (1.0 + FAR);
        if smoothed > target * (1.0 + BAND) && sample > target && (settled || far_over) {
            // A sustained excess (the filter is over the band and this
            // interval agrees): cut in proportion to it.
            self.unused = 0;
            let cut = (BACKOFF_GAIN * (smoothed - target) / target).clamp(MIN_CUT, MAX_CUT);
            return (
                current * (1.0 - cut),
                Reason::OverTarget {
                    latency_ms: smoothed,
                },
            );
        }
        if sample > target * (1.0 + BAND) {
            return (current, Reason::Unconfirmed { latency_ms: sample });
        }
        let far_under = smoothed < target * (1.0 - FAR);
        if smoothed < target * (1.0 - BAND) && sample < target && (settled || far_under) {
            let up = (GAIN * (target - smoothed) / target).min(MAX_UP);
            let wanted = current * (1.0 + up);
            let limited = self.limit_unused(current, wanted, obs);
            if limited <= current {
                let achieved = obs.resync_kib_per_sec.unwrap_or(0.0);
                return (
                    current,
                    Reason::RateUnused {
                        achieved_kib_per_sec: achieved,
                    },
                );
            }
            return (
                limited,
                Reason::Headroom {
                    latency_ms: smoothed,
                },
            );
        }
        (
            current,
            Reason::InBand {
                latency_ms: smoothed,
            },
        )
    }

    /// Folds `sample` into the smoothed latency and its spread.
    fn track(&mut self, sample: f64) -> f64 {
        let smoothed = match self.smoothed {
            Some(old) => {
                let spread = (sample - old).abs();
                self.spread = SPREAD_SMOOTHING * spread + (1.0 - SPREAD_SMOOTHING) * self.spread;
                SMOOTHING * sample + (1.0 - SMOOTHING) * old
            }
            None => sample,
        };
        self.smoothed = Some(smoothed);
        smoothed
    }

    /// The spread as a relative standard deviation (mean absolute
    /// deviation × 1.25 for a normal), 0.1 while unknown.
    fn relative_spread(&self) -> f64 {
        match self.smoothed {
            Some(l) if l > 0.0 && self.spread > 0.0 => 1.25 * self.spread / l,
            _ => 0.1,
        }
    }

    /// Anti-windup: no growth while DRBD keeps resyncing far below the
    /// setpoint (the bottleneck is elsewhere).
    fn limit_unused(&mut self, current: f64, wanted: f64, obs: &Observation) -> f64 {
        let resyncing = obs.out_of_sync_kib.is_none_or(|oos| oos > 0);
        match obs.resync_kib_per_sec {
            Some(achieved)
                if resyncing && achieved.is_finite() && achieved * UNUSED_RATIO < current =>
            {
                self.unused = self.unused.saturating_add(1);
            }
            _ => self.unused = 0,
        }
        if self.unused >= UNUSED_INTERVALS {
            current.min(wanted)
        } else {
            wanted
        }
    }
}

/// The cut for a sample far over the target: at least halve, and at least
/// in proportion to the overshoot (latency 10× the target → a tenth of the
/// rate). In M/M/1 terms the idle share must grow by L/target.
pub(super) fn hard_cut(current: f64, target: f64, latency: f64) -> f64 {
    current * (1.0 - MAX_CUT).min(target / latency)
}

/// The latency the target is compared with, if any is usable.
fn latency_signal(statistic: Statistic, obs: &Observation) -> Option<f64> {
    let valid = |v: Option<f64>| v.filter(|x| x.is_finite() && *x >= 0.0);
    let mean = valid(obs.app_write_latency_ms).or_else(|| {
        // The backing device stands in only while the app is busy — here
        // or, for a Secondary SyncTarget, on the Primary whose writes land
        // on this backing device.
        let busy = |v: Option<f64>| v.is_some_and(|fg| fg >= IDLE_FOREGROUND_KIB);
        let busy = busy(obs.foreground_kib_per_sec) || busy(obs.replicated_write_kib_per_sec);
        valid(obs.backing_write_latency_ms).filter(|_| busy)
    });
    match statistic {
        Statistic::Mean => mean,
        Statistic::P99 => valid(obs.app_write_latency_p99_ms).or(mean.map(|m| m * P99_PER_MEAN)),
    }
}
