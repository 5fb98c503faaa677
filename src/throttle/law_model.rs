//! The model-based half of the law: the operating point the queue model
//! ([`super::model`]) predicts, a set point from the measured noise, and
//! the jumps and trims that use them. When the model has no usable fit the
//! law falls back to the feedback rules in `law.rs`.

use serde::Serialize;

use super::model::{Fit, QueueModel, Unfit};
use super::{Observation, Reason};

/// With a mean target, single intervals may exceed the target by this
/// factor (the mean stays at or under it) …
pub const MEAN_TOLERANCE: f64 = 1.1;
/// … in at most about 1 % of intervals: the set point is the highest
/// latency whose samples stay under `tolerance × target` with this many
/// standard deviations of noise, and never above the target.
///
/// A p99 target is already a bound on each interval's tail, and where it is
/// estimated from the mean (× 4.6) the estimate's own error is not in the
/// samples' noise: its tolerance is under 1.
pub(super) const P99_TOLERANCE: f64 = 0.93;
pub const NOISE_SIGMAS: f64 = 2.33;
/// The set point is never lower than this share of the target.
pub(super) const MIN_SETPOINT: f64 = 0.6;
/// The bias (observed ÷ modelled latency) is a running mean of the samples
/// since the last jump: the n-th of them (from 0) weighs
/// 1 / (n + 1 / `BIAS_FIRST`), never less than `BIAS_SMOOTHING_MIN`. A new
/// point is learned in a few windows, and in steady state the noise moves
/// the bias (and so the rate) less than a fixed weight of 0.15 did.
pub(super) const BIAS_FIRST: f64 = 0.3;
pub(super) const BIAS_SMOOTHING_MIN: f64 = 0.1;
/// The margin counts the bias filter's own error as for this weight (the
/// steady one is lower; counting the weight of the moment lowered the set
/// point just after every jump and slowed the approach).
pub(super) const BIAS_SMOOTHING: f64 = 0.15;
/// Weight of the newest sample in the recent residual variance.
pub(super) const RESIDUAL_SMOOTHING: f64 = 0.05;
/// A sample this far off the model (ratio, either way) is not fitted;
/// `MAX_MISMATCHES` of them in a row mean the plant has changed: the model
/// starts again.
pub(super) const MISMATCH: f64 = 3.0;
pub(super) const MAX_MISMATCHES: u32 = 3;
/// A sample nearer the curve than [`MISMATCH`] but further than this many
/// of its own noise's standard deviations (ratio at least `HOLD_MIN_RATIO`)
/// is a window whose load and latency disagree — a stalled source that
/// completed little I/O in it, or the burst after one: the rate is held, the
/// sample is neither fitted nor taken as a foreground step. A genuine change
/// of the load moves both together and stays near the curve. At most
/// `MAX_HELD` windows in a row are held; a disagreement that lasts is news.
pub(super) const HOLD_SIGMAS: f64 = 3.0;
pub(super) const HOLD_MIN_RATIO: f64 = 1.5;
pub(super) const MAX_HELD: u32 = 2;
/// … and only when the load counted is this share off the load in force
/// (the foreground's level plus the rate set).
pub(super) const HOLD_LOAD_SHARE: f64 = 0.1;
/// Trims move this share of the way to the predicted point …
pub(super) const TRIM_GAIN: f64 = 0.5;
/// … or this share when the point is below the current rate.
pub(super) const TRIM_GAIN_DOWN: f64 = 0.8;
/// … and not at all when the latency the model predicts at the current
/// rate is within this share of the set point (or
/// `TRIM_DEADBAND_PER_NOISE` × the relative noise, if wider). The band is
/// drawn in latency, not in rate: near the knee of the curve 2 % more rate
/// is 10–20 % more latency, and a band in rate held a rate above the
/// operating point for a minute on the noisiest plants.
pub(super) const TRIM_DEADBAND: f64 = 0.03;
pub(super) const TRIM_DEADBAND_PER_NOISE: f64 = 0.5;
/// A foreground whose interval-to-interval noise (relative standard
/// deviation) is above this is trimmed on its smoothed level.
pub(super) const TRIM_ON_LEVEL_NOISE: f64 = 0.05;
/// Probing (no fit yet): the total load grows by `PROBE_FIRST` first, by
/// `PROBE_GROWTH` more each interval up to `PROBE_MAX`, while the latency
/// stays under `PROBE_BELOW × set point`; at most `MAX_PROBES` intervals.
/// (Every probe after the first is also bounded by the secant.)
pub(super) const PROBE_FIRST: f64 = 0.1;
pub(super) const PROBE_GROWTH: f64 = 0.15;
pub(super) const PROBE_MAX: f64 = 0.4;
pub(super) const PROBE_BELOW: f64 = 0.8;
/// The probes after the first aim this many relative noise widths (the
/// feedback law's spread) under the set point, and go on as long as the
/// latency is under that aim: the secant bounding them rests on two noisy
/// samples (a probe to the set point itself put 4 of the 29 windows over on
/// the noisiest bench plant).
pub(super) const PROBE_SECANT_SIGMAS: f64 = 1.0;
pub(super) const MAX_PROBES: u32 = 8;
/// A foreground step must also exceed this many standard deviations of the
/// foreground's own interval-to-interval noise (a source whose throughput
/// reads ±20 % per interval from sampling alone would otherwise step every
/// few intervals); the noise is smoothed with `STEP_NOISE_SMOOTHING`, and a
/// move counts in it at most as `STEP_NOISE_CLAMP` of the level.
pub(super) const STEP_NOISE_SIGMAS: f64 = 3.0;
pub(super) const STEP_NOISE_SMOOTHING: f64 = 0.1;
pub(super) const STEP_NOISE_CLAMP: f64 = 1.0;
/// Nonsense samples in a row that make the model start again.
pub(super) const MAX_REJECTED: u32 = 3;

/// What woke the model to jump to its predicted point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JumpTrigger {
    TakingCharge,
    HardMiss,
    ForegroundStep,
}

impl JumpTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TakingCharge => "taking charge",
            Self::HardMiss => "hard miss",
            Self::ForegroundStep => "foreground step",
        }
    }
}

/// The model's state, as reported (status API, metrics).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct ModelReport {
    /// The model steered the last step.
    pub in_use: bool,
    /// Why it did not (`None` when it did, or for the feedback-only law).
    pub fallback: Option<Unfit>,
    /// The fit in use (possibly kept from earlier while a newer one is
    /// only uncertain).
    pub fit: Option<Fit>,
    /// Smoothed observed ÷ modelled latency.
    pub bias: Option<f64>,
    /// The latency aimed at, ms.
    pub setpoint_ms: Option<f64>,
}

/// The model-based law's memory.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub(super) struct ModelLaw {
    /// The previous law only (bench comparison): never steer.
    pub feedback_only: bool,
    model: QueueModel,
    fit: Option<Fit>,
    bias: Option<f64>,
    probes: u32,
    jumped: bool,
    /// The rate in force is a jump to the model's point (not a cut, a trim
    /// or the feedback law's): an overload at it is the model's error.
    jumped_last: bool,
    /// Samples far off the curve in a row.
    mismatches: u32,
    /// A hard miss after a probe: no later probe goes above this rate
    /// ([`MISS_BACKOFF`] × the rate the miss came at).
    probe_cap: Option<f64>,
    /// The (load, latency) sample the first probe was decided on.
    first_probe: Option<(f64, f64)>,
    /// Windows held in a row as off the curve ([`HOLD_SIGMAS`]).
    held: u32,
    /// The set point of the last step that had one.
    last_setpoint: Option<f64>,
    /// A hard miss cut last step, at this rate in force: jump to the
    /// predicted point next (the foreground measured in an overload is what
    /// was served, not asked), at most [`MISS_BACKOFF`] × the rate.
    after_miss: Option<f64>,
    /// Bias samples taken since the last jump.
    bias_samples: u32,
    /// Recent variance of ln(observed ÷ (bias × modelled latency)).
    residual_variance: Option<f64>,
    /// … and of its positive part only, doubled (the upper tail's).
    residual_upper: Option<f64>,
    /// Smoothed foreground load, KiB/s (steps are measured against it).
    foreground_level: Option<f64>,
    /// The direction (up: true) and relative size of a move beyond the
    /// step threshold seen last interval, not yet confirmed.
    step_pending: Option<(bool, f64)>,
    /// Recent variance of the foreground's relative move from its level,
    /// from intervals that were no step ([`STEP_NOISE_SIGMAS`]).
    foreground_variance: Option<f64>,
    pub report: ModelReport,
}

/// What one step of the signals means for the model-based law.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Signals {
    pub current: f64,
    pub target_ms: f64,
    pub latency_ms: Option<f64>,
    /// The ceiling in force (foreground steps smaller than
    /// `FF_MIN_SHARE` of it are not steps).
    pub ceiling: f64,
    pub hard_miss: bool,
    /// How far one interval may exceed the target ([`MEAN_TOLERANCE`] for
    /// a mean target, [`P99_TOLERANCE`] for a p99 target).
    pub tolerance: f64,
    /// Spread-based noise estimate (relative) when no fit gives one.
    pub fallback_noise: f64,
}

/// The set point for `noise` (relative standard deviation of a sample):
/// samples stay under `tolerance × target` but for ~1 %, and the mean at
/// or under the target.
pub fn setpoint(target_ms: f64, noise: f64, tolerance: f64) -> f64 {
    let noise = if noise.is_finite() {
        noise.max(0.0)
    } else {
        1.0
    };
    let share = (tolerance / (1.0 + NOISE_SIGMAS * noise)).clamp(MIN_SETPOINT, 1.0);
    target_ms * share
}

/// The resync rate that puts the total load where the model, corrected by
/// `bias`, reaches `setpoint_ms`, given the application's `foreground`.
pub fn operating_rate(fit: &Fit, bias: f64, setpoint_ms: f64, foreground: f64) -> f64 {
    fit.load_for(setpoint_ms / bias) - foreground
}

/// Prediction errors this large are taken as this large (a jump still
/// happens, to a lower point).
pub(super) const MAX_PREDICTION_ERROR: f64 = 0.5;
/// A jump aims this many prediction errors under the set point.
pub(super) const JUMP_SIGMAS: f64 = 2.0;
/// The jump back after a hard miss goes at most to this share of the rate
/// that was in force during the miss.
pub(super) const MISS_BACKOFF: f64 = 0.8;

/// [`operating_rate`] for a jump: the set point lowered by the model's own
/// prediction error there, so that an uncertain fit jumps short and the
/// trim covers the rest.
pub fn jump_rate(fit: &Fit, bias: f64, setpoint_ms: f64, foreground: f64) -> f64 {
    let at = fit.load_for(setpoint_ms / bias);
    let error = fit.latency_error_at(at);
    let error = if error.is_finite() {
        error.clamp(0.0, MAX_PREDICTION_ERROR)
    } else {
        MAX_PREDICTION_ERROR
    };
    operating_rate(
        fit,
        bias,
        setpoint_ms / (1.0 + JUMP_SIGMAS * error),
        foreground,
    )
}

/// The load at which the line through two (load, latency) samples in
/// 1/latency reaches `setpoint_ms`; `None` unless the latency rose with the
/// load.
pub fn secant_load(before: Option<(f64, f64)>, now: (f64, f64), setpoint_ms: f64) -> Option<f64> {
    let (x0, l0) = before?;
    let (x1, l1) = now;
    let usable = [x0, l0, x1, l1, setpoint_ms]
        .iter()
        .all(|v| v.is_finite() && *v > 0.0);
    if !usable || x1 <= x0 || l1 <= l0 {
        return None;
    }
    let slope = (1.0 / l1 - 1.0 / l0) / (x1 - x0);
    let at = x1 + (1.0 / setpoint_ms - 1.0 / l1) / slope;
    at.is_finite().then_some(at.max(0.0))
}

/// Foreground load on the bottleneck: the application's here plus the
/// peers' replicated writes (a Secondary SyncTarget).
pub fn foreground_load(obs: &Observation) -> Option<f64> {
    let valid = |v: Option<f64>| v.filter(|x| x.is_finite() && *x >= 0.0);
    match (
        valid(obs.foreground_kib_per_sec),
        valid(obs.replicated_write_kib_per_sec),
    ) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

/// On a Secondary SyncTarget (writes arriving from peers), the load and
/// the foreground from the backing device's own throughput: `dbdt1` may be
/// seconds older than the interval, and the replicated writes estimated
/// with it then carry the resync's change. The resync's share is the larger
/// of the rate in force and `dbdt1`, at most what was written. `None`
/// elsewhere.
pub(super) fn secondary_load(obs: &Observation, current: f64) -> Option<(f64, f64)> {
    let valid = |v: Option<f64>| v.filter(|x| x.is_finite() && *x >= 0.0);
    valid(obs.replicated_write_kib_per_sec).filter(|r| *r > 0.0)?;
    let written = valid(obs.backing_write_kib_per_sec)?;
    let app = valid(obs.foreground_kib_per_sec).unwrap_or(0.0);
    let total = written + app;
    // Just after a cut the resync still writes at about its old rate (which
    // `dbdt1` shows), just after a rise at about the new one: the larger.
    let resync = valid(obs.resync_kib_per_sec).unwrap_or(0.0).max(current);
    Some((total, total - resync.clamp(0.0, written)))
}

impl ModelLaw {
    /// The previous law's memory: never steers.
    pub(super) fn feedback_only() -> Self {
        Self {
            feedback_only: true,
            ..Self::default()
        }
    }

    fn restart(&mut self) {
        self.model.reset();
        self.fit = None;
        self.bias = None;
        self.residual_variance = None;
        self.residual_upper = None;
        self.probes = 0;
        self.jumped = false;
        self.jumped_last = false;
        self.after_miss = None;
        self.bias_samples = 0;
        self.mismatches = 0;
        self.held = 0;
        self.first_probe = None;
        self.probe_cap = None;
    }

    /// Takes the step's sample; the rate to set and why, or `None` for the
    /// feedback law to decide.
    pub(super) fn step(&mut self, sig: &Signals, obs: &Observation) -> Option<(f64, Reason)> {
        self.report = ModelReport::default();
        let jumped_last = std::mem::take(&mut self.jumped_last);
        if self.feedback_only {
            return None;
        }
        let foreground = foreground_load(obs);
        // A negative or NaN resync rate (counters going backwards) makes
        // the load NaN: the model rejects (and counts) it.
        let resync = match obs.resync_kib_per_sec {
            Some(r) if r.is_finite() && r >= 0.0 => r,
            Some(_) => f64::NAN,
            None => 0.0,
        };
        let (load, foreground) = match secondary_load(obs, sig.current) {
            Some((load, fg)) => (Some(load), Some(fg)),
            None => (foreground.map(|fg| fg + resync), foreground),
        };
        // Steps are measured on this interval's foreground (on a Secondary
        // the backing device's own throughput less the resync's share):
        // the `dbdt1`-based estimate lags and carries the resync's own
        // changes, so every rate change read as a foreground step.
        let Some(latency) = sig.latency_ms else {
            self.foreground_step(foreground, sig.ceiling, false);
            return None;
        };
        // A hard miss is an overload: the queue is at its limit, off the
        // curve (and what was served understates the demand) — it triggers
        // a jump but is no sample of the curve.
        // A sample far off the curve in force (a stalled disk, a plant
        // that changed) is not fitted; several in a row start the model
        // again.
        let sensible = |x: &f64| x.is_finite() && *x >= 0.0 && latency > 0.0 && !sig.hard_miss;
        if let (Some(fit), Some(x)) = (self.fit, load.filter(sensible)) {
            let modelled = fit.latency_at(x) * self.bias.unwrap_or(1.0);
            let ratio = latency / modelled;
            if modelled.is_finite() && !(ratio < MISMATCH && ratio > 1.0 / MISMATCH) {
                self.mismatches += 1;
                if self.mismatches >= MAX_MISMATCHES {
                    self.restart();
                }
                self.report.fallback = Some(Unfit::Mismatch);
                return None;
            }
        }
        self.mismatches = 0;
        if let Some(hold) = self.hold_off_curve(sig, load, latency) {
            return Some(hold);
        }
        // An overload and the interval after it read what was served, not
        // what was asked: no sample of the foreground's own noise.
        let calm = !sig.hard_miss && self.after_miss.is_none();
        let level_before = self.foreground_level;
        let foreground_step = self.foreground_step(foreground, sig.ceiling, calm);
        // The foreground rose beyond a step's threshold in this interval
        // (confirmed or not yet).
        let risen = (foreground_step || self.step_pending.is_some())
            && foreground
                .zip(level_before)
                .is_some_and(|(now, before)| now > before);
        let accepted = match load {
            Some(load) if sig.hard_miss && load.is_finite() && load >= 0.0 => true,
            Some(load) => self.model.observe(load, latency).is_ok(),
            None => false,
        };
        if !accepted {
            if self.model.rejected_in_a_row() >= MAX_REJECTED {
                self.restart();
            }
            self.report.fallback = Some(Unfit::InvalidInput);
            return None;
        }
        let load = load.unwrap_or(0.0);
        let fresh = self.model.fit();
        match fresh {
            Ok(fit) => self.fit = Some(fit),
            // A fit only less certain than before (the load has been steady
            // for long) keeps the last one; the bias corrects it.
            Err(Unfit::Uncertain | Unfit::NoLoadSpread) if self.fit.is_some() => {}
            Err(_) => self.fit = None,
        }
        let Some(fit) = self.fit else {
            self.report.fallback = fresh.err();
            return self.probe(sig, load, foreground, foreground_step, latency);
        };
        let modelled = fit.latency_at(load);
        // An overload says the curve is higher than modelled only when it
        // came at a point the model just jumped to and no rise of the
        // foreground explains it: then the bias takes it (or the next jump
        // repeats the miss). A stall under a rate the samples had confirmed,
        // a foreground step, and the window after an overload (its backlog
        // draining) say nothing about the curve.
        let transient = sig.hard_miss || self.after_miss.is_some();
        let model_missed = sig.hard_miss && jumped_last && !risen;
        // Beyond the fitted capacity (no finite model latency) the sample
        // says the capacity is lower than fitted; the fit has it already:
        // the bias stays too.
        let learns = (!transient || model_missed) && modelled.is_finite();
        let bias = match self.bias {
            Some(old) if learns => {
                let ratio = (latency / modelled).clamp(1.0 / MISMATCH, MISMATCH);
                let gain = (1.0 / (f64::from(self.bias_samples) + 1.0 / BIAS_FIRST))
                    .clamp(BIAS_SMOOTHING_MIN, BIAS_FIRST);
                gain * ratio + (1.0 - gain) * old
            }
            None if learns => (latency / modelled).clamp(1.0 / MISMATCH, MISMATCH),
            kept => kept.unwrap_or(1.0),
        };
        if learns {
            self.bias_samples = self.bias_samples.saturating_add(1);
        }
        self.bias = Some(bias);
        // The margin covers the fit's residual noise and what the recent
        // samples really spread around the bias-corrected curve, both
        // with the bias filter's own error.
        // An overload, and the window after it (its backlog draining), are
        // no sample of the noise the margin is drawn from: taken in, one
        // miss kept the set point 15 % low for the next half minute.
        if !transient {
            self.track_residual(latency / modelled, bias);
        }
        // The set point guards against the upper tail: a queue's latency
        // windows are skewed (bursts), and the same variance with a long
        // upper tail puts more windows over the line.
        let recent = self.residual_variance.unwrap_or(0.0).sqrt();
        let upper = self.residual_upper.unwrap_or(0.0).sqrt();
        let filter = (1.0 + BIAS_SMOOTHING / (2.0 - BIAS_SMOOTHING)).sqrt();
        let noise = fit.noise.max(recent) * filter;
        let set = setpoint(sig.target_ms, noise.max(upper * filter), sig.tolerance);
        self.last_setpoint = Some(set);
        self.report = ModelReport {
            in_use: true,
            fallback: None,
            fit: Some(fit),
            bias: Some(bias),
            setpoint_ms: Some(set),
        };
        let fg_now = foreground.unwrap_or(0.0);
        let trigger = if sig.hard_miss {
            Some(JumpTrigger::HardMiss)
        } else if foreground_step {
            Some(JumpTrigger::ForegroundStep)
        } else if !self.jumped {
            Some(JumpTrigger::TakingCharge)
        } else {
            None
        };
        let trigger = match trigger {
            None if self.after_miss.is_some() => Some(JumpTrigger::HardMiss),
            other => other,
        };
        let predicted = jump_rate(&fit, bias, set, fg_now);
        if let Some(trigger) = trigger {
            self.jumped = true;
            self.bias_samples = 0;
            self.jumped_last = !sig.hard_miss;
            let rate = if sig.hard_miss {
                // Overloaded: what was served understates the demand; cut
                // at least as the feedback law would, jump back next step.
                self.after_miss = Some(sig.current);
                predicted.min(super::law::hard_cut(sig.current, sig.target_ms, latency))
            } else {
                // The foreground this jump was aimed for is the level the
                // trims go on from (after an overload, the one that was
                // just asked, not the one before it).
                if trigger == JumpTrigger::HardMiss && foreground.is_some() {
                    self.foreground_level = Some(fg_now);
                    self.step_pending = None;
                }
                // Never straight back to a rate that just overloaded the
                // disk: a fit wrong enough to aim there (on a loaded
                // machine, samples taken late) repeated the miss every
                // other interval, at the ceiling.
                match trigger {
                    JumpTrigger::HardMiss => self
                        .after_miss
                        .take()
                        .map_or(predicted, |missed| predicted.min(MISS_BACKOFF * missed)),
                    _ => predicted,
                }
            };
            return Some((
                rate,
                Reason::ModelJump {
                    trigger,
                    kib_per_sec: rate,
                },
            ));
        }
        // This interval's foreground, as the latency sample is this
        // interval's (a smoothed level lags a step, and after an overload
        // it remembers what was served, not asked).
        // A move not yet confirmed as a step (a stalled source reads far
        // off for one interval): trim on the level, not on the blip.
        // A foreground that reads noisily from interval to interval (its
        // counters sampled at a coarse grain) is trimmed on its level too:
        // trimming on each reading would pass its noise to the rate.
        let noisy = self.foreground_variance.unwrap_or(0.0).sqrt() > TRIM_ON_LEVEL_NOISE;
        let fg_trim = match (self.step_pending, self.foreground_level) {
            (Some(_), Some(level)) => level,
            (None, Some(level)) if noisy => level,
            _ => fg_now,
        };
        let mut wanted = operating_rate(&fit, bias, set, fg_trim);
        // Anti-windup: no rise above what DRBD can use.
        let resyncing = obs.out_of_sync_kib.is_none_or(|oos| oos > 0);
        if let Some(achieved) = obs
            .resync_kib_per_sec
            .filter(|a| a.is_finite() && resyncing)
        {
            wanted = wanted.min(sig.current.max(achieved * super::law::UNUSED_RATIO));
        }
        // Over the set point now: never rise on it.
        if latency > set * sig.tolerance {
            wanted = wanted.min(sig.current);
        }
        let reason = Reason::ModelTrim {
            latency_ms: latency,
            setpoint_ms: set,
        };
        // Noisier samples make a noisier prediction: hold a wider band.
        let deadband = TRIM_DEADBAND.max(TRIM_DEADBAND_PER_NOISE * noise);
        // In latency: the model's prediction at the rate in force against
        // the set point (past the fitted capacity there is no prediction:
        // the band in rate then).
        let predicted_now = fit.latency_at(fg_trim + sig.current) * bias;
        let off = (predicted_now / set).ln().abs();
        let within = if off.is_finite() {
            off <= deadband
        } else {
            (wanted - sig.current).abs() <= deadband * sig.current
        };
        if within {
            return Some((sig.current, reason));
        }
        // Down faster than up: an excess costs the application, a
        // shortfall only resync time.
        let gain = if wanted < sig.current {
            TRIM_GAIN_DOWN
        } else {
            TRIM_GAIN
        };
        let step = (wanted - sig.current) * gain;
        let mut next = sig.current + step;
        if wanted > sig.current {
            // Up at least to where a jump would go now: the refreshed fit,
            // aimed short by its own prediction error (which shrinks as
            // samples arrive near the point), is sure the set point is not
            // passed there — halving the way each interval from a short
            // first jump took 4–6 s on a young fit.
            let safe = jump_rate(&fit, bias, set, fg_trim).min(wanted);
            if safe.is_finite() {
                next = next.max(safe);
            }
        }
        Some((next.min(sig.current * 2.0), reason))
    }

    /// A window whose latency is off the bias-corrected curve at its own
    /// load by more than its noise allows (but less than [`MISMATCH`]):
    /// hold the rate and learn nothing from it, at most [`MAX_HELD`] in a
    /// row.
    fn hold_off_curve(
        &mut self,
        sig: &Signals,
        load: Option<f64>,
        latency: f64,
    ) -> Option<(f64, Reason)> {
        let (Some(fit), Some(bias)) = (self.fit, self.bias) else {
            self.held = 0;
            return None;
        };
        let expected_ms = load
            .filter(|x| x.is_finite() && *x >= 0.0)
            .map(|x| fit.latency_at(x) * bias)
            .filter(|m| m.is_finite() && *m > 0.0);
        let ratio = expected_ms.map(|m| latency / m);
        let noise = fit.noise.max(self.residual_variance.unwrap_or(0.0).sqrt());
        let limit = (HOLD_SIGMAS * noise).exp().max(HOLD_MIN_RATIO);
        // Latency over what the set point allows is never held: whatever
        // the counters say, the application waits (safety first).
        let harmless = self
            .last_setpoint
            .is_some_and(|set| latency <= set * sig.tolerance);
        // The counters must disagree with what is in force, in the direction
        // that explains the latency: a stall counts less load than the rate
        // and the foreground's level (latency high for it), a burst more. A
        // model that is merely wrong at a new load (right after a jump)
        // sees the load in force and must learn from the window.
        let in_force = self.foreground_level.map(|level| level + sig.current);
        let counted = load.filter(|x| x.is_finite());
        let (low, high) = match (counted, in_force) {
            (Some(x), Some(e)) if e > 0.0 => (
                x < e * (1.0 - HOLD_LOAD_SHARE),
                x > e * (1.0 + HOLD_LOAD_SHARE),
            ),
            _ => (false, false),
        };
        // A zero or NaN latency is nonsense, not a stall: the model
        // rejects (and counts) it.
        let off = latency.is_finite()
            && latency > 0.0
            && ratio.is_some_and(|r| (r > limit && harmless && low) || (r < 1.0 / limit && high));
        // Nor the window after an overload: the cut to a new point moved
        // the load, and the model jumps back from what it shows.
        if sig.hard_miss || self.after_miss.is_some() || !off || self.held >= MAX_HELD {
            self.held = 0;
            return None;
        }
        self.held += 1;
        self.report = ModelReport {
            in_use: true,
            fallback: None,
            fit: Some(fit),
            bias: Some(bias),
            setpoint_ms: self.last_setpoint,
        };
        Some((
            sig.current,
            Reason::ModelHold {
                latency_ms: latency,
                expected_ms: expected_ms.unwrap_or(f64::NAN),
            },
        ))
    }

    /// Folds the log of `ratio / bias` into the recent residual variance
    /// and into the upper tail's (nothing while past the pole).
    fn track_residual(&mut self, ratio: f64, bias: f64) {
        let r = (ratio / bias).ln();
        if !r.is_finite() {
            return;
        }
        let fold = |old: Option<f64>, x: f64| match old {
            Some(old) => RESIDUAL_SMOOTHING * x + (1.0 - RESIDUAL_SMOOTHING) * old,
            None => x,
        };
        self.residual_variance = Some(fold(self.residual_variance, r * r));
        let up = r.max(0.0);
        self.residual_upper = Some(fold(self.residual_upper, 2.0 * up * up));
    }

    /// Whether the foreground load moved (either way) by more than
    /// `FF_REL` of its level and `FF_MIN_SHARE` of the ceiling; updates the
    /// level (to the new load at once after a step).
    fn foreground_step(&mut self, foreground: Option<f64>, ceiling: f64, calm: bool) -> bool {
        use super::law::{FF_MIN_SHARE, FF_REL, FF_SMOOTHING};
        let Some(fg) = foreground else {
            return false;
        };
        let Some(level) = self.foreground_level else {
            self.foreground_level = Some(fg);
            return false;
        };
        let moved = (fg - level).abs();
        let relative = if level > 0.0 {
            (moved / level).min(STEP_NOISE_CLAMP)
        } else {
            STEP_NOISE_CLAMP
        };
        let noise = self.foreground_variance.unwrap_or(0.0).sqrt();
        let threshold = FF_REL.max(STEP_NOISE_SIGMAS * noise);
        let beyond = moved > threshold * level && moved > FF_MIN_SHARE * ceiling;
        if !beyond {
            // A blip last interval that did not hold was noise.
            if let Some((_, blip)) = self.step_pending.take() {
                self.track_foreground_noise(blip, calm);
            }
            self.track_foreground_noise(relative, calm);
            self.foreground_level = Some(FF_SMOOTHING * fg + (1.0 - FF_SMOOTHING) * level);
            return false;
        }
        // One interval off the level may be a stalled source (little I/O
        // completed, or a burst after it): a step is a move that holds for
        // two intervals in the same direction; the level waits meanwhile.
        let up = fg > level;
        match self.step_pending.replace((up, relative)) {
            Some((was_up, _)) if was_up == up => {
                self.step_pending = None;
                self.foreground_level = Some(fg);
                true
            }
            Some((_, blip)) => {
                self.track_foreground_noise(blip, calm);
                false
            }
            None => false,
        }
    }

    /// Folds a relative move into the foreground's noise; only `calm`
    /// intervals count (an overload reads what was served, not asked).
    fn track_foreground_noise(&mut self, relative: f64, calm: bool) {
        if !calm {
            return;
        }
        let r2 = relative * relative;
        self.foreground_variance = Some(match self.foreground_variance {
            Some(old) => STEP_NOISE_SMOOTHING * r2 + (1.0 - STEP_NOISE_SMOOTHING) * old,
            None => r2,
        });
    }

    /// No fit yet: grow the total load geometrically while the latency
    /// stays well under the set point, so the model sees the curve.
    fn probe(
        &mut self,
        sig: &Signals,
        load: f64,
        foreground: Option<f64>,
        foreground_step: bool,
        latency: f64,
    ) -> Option<(f64, Reason)> {
        // Only a miss under a probe's rate is the probes' doing (one at
        // the starting rate, say a burst as the agent starts, capped every
        // probe under the floor).
        if sig.hard_miss && !self.jumped && self.probes > 0 {
            let cap = MISS_BACKOFF * sig.current;
            self.probe_cap = Some(self.probe_cap.map_or(cap, |old: f64| old.min(cap)));
        }
        let set = setpoint(sig.target_ms, sig.fallback_noise, sig.tolerance);
        // The probes aim a noise's width under the set point: the secant
        // rests on two noisy samples.
        let aim = set / (1.0 + PROBE_SECANT_SIGMAS * sig.fallback_noise.clamp(0.0, 0.5));
        if self.jumped
            || self.probes >= MAX_PROBES
            || sig.hard_miss
            || foreground_step
            || latency >= aim
        {
            return None;
        }
        // On a queue 1/latency falls about linearly with the load, so the
        // secant from the first probe's sample (the widest spread: noise
        // would swamp two neighbours) says where the aim is reached.
        // (Drawn pessimistically, a noise's width lower at the first
        // sample and higher at this one, it met the over-target aim on two
        // more bench plants but settled slower on nine: not done.)
        let secant = secant_load(self.first_probe, (load, latency), aim);
        // The first probe has one sample only: it is blind, +10 % of the
        // load, and only well under the set point.
        if secant.is_none() && latency >= PROBE_BELOW * set {
            return None;
        }
        self.first_probe.get_or_insert((load, latency));
        let share = (PROBE_FIRST + PROBE_GROWTH * f64::from(self.probes)).min(PROBE_MAX);
        self.probes += 1;
        let fg = foreground.unwrap_or(0.0);
        let mut wanted = load * (1.0 + share) - fg;
        // A curve too uncertain to steer by still bounds the probe.
        if let Ok(rough) = self.model.estimate() {
            wanted = wanted.min(operating_rate(&rough, 1.0, set, fg));
        }
        if let Some(at) = secant {
            wanted = wanted.min(at - fg);
        }
        // After an overload the probes' blind growth would repeat it (the
        // secant is gone: the cut moved the load back below the first
        // sample): they climb back to at most the capped rate.
        if let Some(cap) = self.probe_cap {
            wanted = wanted.min(cap);
        }
        let wanted = wanted.max(sig.current);
        Some((
            wanted,
            Reason::Probing {
                latency_ms: latency,
            },
        ))
    }
}
