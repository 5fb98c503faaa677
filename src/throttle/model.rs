//! An online model of the bottleneck the application and the resync share.
//!
//! The disk (or the whole write path) is taken to be a queue whose latency
//! grows with the total load `x` (application + resync, KiB/s) as
//!
//! ```text
//! L(x) = S / (1 − x / C)          S: no-load latency, C: capacity
//! ```
//!
//! (M/M/1 sojourn time; any convex curve with a pole at the capacity looks
//! like it near the operating point). Its reciprocal is a straight line,
//! `1/L = 1/S − x / (S·C)`, so the model is a weighted least-squares line
//! through the points `(x, 1/L)` with exponential forgetting. The latency
//! noise is multiplicative (a share of the latency), so each point is
//! weighted by `L²`: the residuals are then relative errors and the fit's
//! residual spread is the relative noise of one sample.
//!
//! Pure and deterministic: samples in, a [`Fit`] (or why there is none,
//! [`Unfit`]) out. No clock: one sample is one interval.

use std::fmt;

use serde::Serialize;

/// Weight kept by the older samples per new sample (memory ≈ 1 / (1 − λ)
/// = 200 intervals).
pub const FORGETTING: f64 = 0.995;
/// At least this many samples (forgetting counted: the first three weigh
/// just under 3, so a fit needs four) before a fit.
pub const MIN_SAMPLES: f64 = 3.0;
/// A fit whose capacity is less certain than this (relative standard
/// error) is not used.
pub const MAX_CAPACITY_ERROR: f64 = 0.2;
/// The load must vary by at least this share of its mean over the samples
/// (weighted standard deviation) to tell the slope from the noise.
pub const MIN_LOAD_SPREAD: f64 = 0.01;
/// Relative noise assumed by [`Fit::noise`] is never below this (a fit
/// through two exact points would claim none).
pub const MIN_NOISE: f64 = 0.01;

/// Why a sample was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rejected {
    /// Latency not finite or not > 0 (no queue has zero latency).
    Latency,
    /// Load not finite or negative (e.g. counters going backwards).
    Load,
}

/// Why there is no usable fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unfit {
    /// Fewer than [`MIN_SAMPLES`] samples.
    TooFewSamples,
    /// The load hardly varied: the slope is unknown.
    NoLoadSpread,
    /// Latency does not rise with the load (or the curve has no positive
    /// no-load latency): not a queue.
    NotConvex,
    /// The capacity's relative standard error exceeds [`MAX_CAPACITY_ERROR`].
    Uncertain,
    /// The last sample was nonsense (zero, NaN, negative).
    InvalidInput,
    /// The last sample was far off the fitted curve (not fitted; several
    /// in a row start the model again).
    Mismatch,
}

impl Unfit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooFewSamples => "too-few-samples",
            Self::NoLoadSpread => "no-load-spread",
            Self::NotConvex => "not-convex",
            Self::Uncertain => "uncertain",
            Self::InvalidInput => "invalid-input",
            Self::Mismatch => "mismatch",
        }
    }

    /// Every value, for metrics that list them all.
    pub const ALL: [Unfit; 6] = [
        Self::TooFewSamples,
        Self::NoLoadSpread,
        Self::NotConvex,
        Self::Uncertain,
        Self::InvalidInput,
        Self::Mismatch,
    ];
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fitted curve with its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fit {
    /// No-load latency S, ms.
    pub service_ms: f64,
    /// Capacity C, KiB/s (the load at which the latency has its pole).
    pub capacity_kib_per_sec: f64,
    /// Relative standard errors of S and C.
    pub service_error: f64,
    pub capacity_error: f64,
    /// Relative noise of one latency sample around the curve (standard
    /// deviation, at least [`MIN_NOISE`]).
    pub noise: f64,
    /// Samples the fit rests on (forgetting counted).
    pub samples: f64,
    /// For the prediction error: the samples' weighted mean load (KiB/s),
    /// and the variances of the line's mean and slope.
    pub mean_load: f64,
    pub mean_variance: f64,
    pub slope_variance: f64,
}

impl Fit {
    /// The latency the curve predicts at total load `x`, ms (infinite at
    /// or beyond the capacity).
    pub fn latency_at(&self, load_kib_per_sec: f64) -> f64 {
        let free = 1.0 - load_kib_per_sec / self.capacity_kib_per_sec;
        if free > 0.0 {
            self.service_ms / free
        } else {
            f64::INFINITY
        }
    }

    /// Relative standard error of the predicted latency at total load `x`
    /// (the line's error at `x` times the latency; infinite past the pole).
    pub fn latency_error_at(&self, load_kib_per_sec: f64) -> f64 {
        let off = load_kib_per_sec - self.mean_load;
        let variance = self.mean_variance + off * off * self.slope_variance;
        variance.max(0.0).sqrt() * self.latency_at(load_kib_per_sec)
    }

    /// The total load at which the curve reaches `latency_ms`, KiB/s (0 when
    /// even an idle disk is slower than that).
    pub fn load_for(&self, latency_ms: f64) -> f64 {
        if latency_ms.is_nan() || latency_ms <= self.service_ms {
            return 0.0;
        }
        self.capacity_kib_per_sec * (1.0 - self.service_ms / latency_ms)
    }
}

/// The running sums of the weighted regression of `1/L` on `x`.
///
/// Plain data: the same samples in the same order give the same fit.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct QueueModel {
    /// Σ w (weights = L², forgetting applied).
    weight: f64,
    /// Σ λ^age: the number of samples, forgetting counted.
    count: f64,
    /// Weighted means of x (KiB/s) and y = 1/L (1/ms).
    mean_load: f64,
    mean_inverse: f64,
    /// Weighted co-moments Σ w (x − x̄)², Σ w (x − x̄)(y − ȳ), Σ w (y − ȳ)².
    load_load: f64,
    load_inverse: f64,
    inverse_inverse: f64,
    /// Samples rejected since the last accepted one.
    rejected_in_a_row: u32,
}

impl QueueModel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Samples so far (forgetting counted).
    pub fn samples(&self) -> f64 {
        self.count
    }

    /// Samples rejected in a row (0 after an accepted one).
    pub fn rejected_in_a_row(&self) -> u32 {
        self.rejected_in_a_row
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Takes one interval's total load (KiB/s) and its latency (ms).
    pub fn observe(&mut self, load_kib_per_sec: f64, latency_ms: f64) -> Result<(), Rejected> {
        if !(latency_ms.is_finite() && latency_ms > 0.0) {
            self.rejected_in_a_row = self.rejected_in_a_row.saturating_add(1);
            return Err(Rejected::Latency);
        }
        if !(load_kib_per_sec.is_finite() && load_kib_per_sec >= 0.0) {
            self.rejected_in_a_row = self.rejected_in_a_row.saturating_add(1);
            return Err(Rejected::Load);
        }
        self.rejected_in_a_row = 0;
        // Weight by the latency the curve so far expects here (within a
        // factor 2 of the sample): weighting by the noisy sample itself
        // would favour the samples that came out high.
        let expected = match self.estimate() {
            Ok(f) => f.latency_at(load_kib_per_sec),
            Err(_) => latency_ms,
        };
        let expected = if expected.is_finite() {
            expected.clamp(latency_ms / 2.0, latency_ms * 2.0)
        } else {
            latency_ms
        };
        let (x, y, w) = (load_kib_per_sec, 1.0 / latency_ms, expected * expected);
        let lambda = FORGETTING;
        self.weight *= lambda;
        self.count = self.count * lambda + 1.0;
        self.load_load *= lambda;
        self.load_inverse *= lambda;
        self.inverse_inverse *= lambda;
        // West's weighted incremental update of means and co-moments.
        let total = self.weight + w;
        let dx = x - self.mean_load;
        let dy = y - self.mean_inverse;
        self.mean_load += dx * w / total;
        self.mean_inverse += dy * w / total;
        self.load_load += w * dx * (x - self.mean_load);
        self.load_inverse += w * dx * (y - self.mean_inverse);
        self.inverse_inverse += w * dy * (y - self.mean_inverse);
        self.weight = total;
        Ok(())
    }

    /// The curve through the samples, or why there is none.
    pub fn fit(&self) -> Result<Fit, Unfit> {
        let fit = self.estimate()?;
        if fit.capacity_error > MAX_CAPACITY_ERROR {
            return Err(Unfit::Uncertain);
        }
        Ok(fit)
    }

    /// The curve through the samples however uncertain it is (still not
    /// for too few samples, no spread or a curve that is not a queue).
    pub fn estimate(&self) -> Result<Fit, Unfit> {
        if self.count < MIN_SAMPLES || self.weight <= 0.0 {
            return Err(Unfit::TooFewSamples);
        }
        let spread = (self.load_load / self.weight).max(0.0).sqrt();
        if spread.is_nan()
            || spread <= MIN_LOAD_SPREAD * self.mean_load.abs()
            || self.load_load <= 0.0
        {
            return Err(Unfit::NoLoadSpread);
        }
        let slope = self.load_inverse / self.load_load;
        // y = ȳ + slope (x − x̄); the no-load point and the pole.
        let intercept = self.mean_inverse - slope * self.mean_load;
        if !(slope < 0.0 && intercept > 0.0) {
            return Err(Unfit::NotConvex);
        }
        let falls = -slope;
        let capacity = intercept / falls;
        // Residuals are relative (weights L²): their mean square is the
        // relative noise of one sample.
        let residual = (self.inverse_inverse - slope * self.load_inverse).max(0.0);
        let dof = (self.count - 2.0).max(1.0);
        let variance = (residual / dof).max(0.0);
        let noise = variance.sqrt().max(MIN_NOISE);
        // Mean-one relative noise ε on L puts E[1/L] at (1 + σ²)/L: the
        // whole line is that much too high, S that much too low (C, a
        // ratio of the two, is not affected).
        let service = (1.0 + variance) / intercept;
        // Parameter variances for var(y_i) = σ²/w_i.
        let sigma2 = noise * noise;
        let var_mean = sigma2 / self.weight;
        let var_slope = sigma2 / self.load_load;
        let var_intercept = var_mean + self.mean_load * self.mean_load * var_slope;
        // C = x̄ + ȳ / b: ȳ and b are uncorrelated (centred regression).
        let var_capacity = var_mean / (falls * falls)
            + self.mean_inverse * self.mean_inverse / falls.powi(4) * var_slope;
        let fit = Fit {
            service_ms: service,
            capacity_kib_per_sec: capacity,
            service_error: var_intercept.sqrt() / intercept,
            capacity_error: var_capacity.sqrt() / capacity,
            noise,
            samples: self.count,
            mean_load: self.mean_load,
            mean_variance: var_mean,
            slope_variance: var_slope,
        };
        let finite = [
            fit.service_ms,
            fit.capacity_kib_per_sec,
            fit.service_error,
            fit.capacity_error,
            fit.noise,
            fit.mean_variance,
            fit.slope_variance,
        ]
        .iter()
        .all(|v| v.is_finite());
        if !finite {
            return Err(Unfit::NotConvex);
        }
        Ok(fit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(s: f64, c: f64, x: f64) -> f64 {
        s / (1.0 - x / c)
    }

    #[test]
    fn exact_points_give_back_the_curve() {
        let mut m = QueueModel::new();
        for x in [10_000.0, 40_000.0, 70_000.0, 90_000.0] {
            m.observe(x, curve(1.0, 100_000.0, x)).unwrap();
        }
        let f = m.fit().unwrap();
        assert!((f.service_ms - 1.0).abs() < 1e-6, "{f:?}");
        assert!((f.capacity_kib_per_sec - 100_000.0).abs() < 1e-3, "{f:?}");
        assert!((f.latency_at(50_000.0) - 2.0).abs() < 1e-6);
        assert!((f.load_for(4.0) - 75_000.0).abs() < 1e-3);
        assert_eq!(f.load_for(0.5), 0.0);
        assert_eq!(f.latency_at(100_000.0), f64::INFINITY);
        assert_eq!(f.noise, MIN_NOISE);
    }

    #[test]
    fn too_few_or_flat_samples_are_not_a_fit() {
        let mut m = QueueModel::new();
        assert_eq!(m.fit(), Err(Unfit::TooFewSamples));
        for _ in 0..10 {
            m.observe(50_000.0, 2.0).unwrap();
        }
        assert_eq!(m.fit(), Err(Unfit::NoLoadSpread));
    }

    #[test]
    fn latency_falling_with_load_is_not_a_queue() {
        let mut m = QueueModel::new();
        for (x, l) in [
            (1_000.0, 5.0),
            (2_000.0, 4.0),
            (3_000.0, 3.0),
            (4_000.0, 2.0),
        ] {
            m.observe(x, l).unwrap();
        }
        assert_eq!(m.fit(), Err(Unfit::NotConvex));
    }

    #[test]
    fn nonsense_is_rejected_and_leaves_the_sums_alone() {
        let mut m = QueueModel::new();
        m.observe(1_000.0, 1.0).unwrap();
        let before = m;
        assert_eq!(m.observe(1_000.0, 0.0), Err(Rejected::Latency));
        assert_eq!(m.observe(1_000.0, f64::NAN), Err(Rejected::Latency));
        assert_eq!(m.observe(-5.0, 1.0), Err(Rejected::Load));
        assert_eq!(m.observe(f64::INFINITY, 1.0), Err(Rejected::Load));
        assert_eq!(m.rejected_in_a_row(), 4);
        let mut same = m;
        same.rejected_in_a_row = 0;
        assert_eq!(same, before);
        m.observe(2_000.0, 1.5).unwrap();
        assert_eq!(m.rejected_in_a_row(), 0);
    }

    #[test]
    fn noisy_points_in_a_narrow_band_are_no_fit() {
        let mut m = QueueModel::new();
        m.observe(10_000.0, 1.2).unwrap();
        m.observe(11_000.0, 1.0).unwrap();
        m.observe(12_000.0, 1.3).unwrap();
        // Three samples weigh just under 3 with forgetting.
        assert_eq!(m.fit(), Err(Unfit::TooFewSamples));
        m.observe(10_500.0, 1.1).unwrap();
        let fit = m.fit();
        assert!(
            matches!(fit, Err(Unfit::Uncertain | Unfit::NotConvex)),
            "{fit:?}"
        );
    }
}
