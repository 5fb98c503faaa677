//! A backing disk as a queue, and the kernel-style I/O counters of a block
//! device.
//!
//! Per 100 ms tick the plant hands a [`Disk`] the I/O offered to it (all
//! classes together: application reads and writes, replicated writes,
//! resync reads and writes). The disk answers with a [`DiskTick`]:
//!
//! - utilisation ρ = max(bytes / bandwidth, I/Os / IOPS) — a device rated
//!   for both serves small I/O up to its IOPS and large I/O up to its
//!   bandwidth, whichever binds first;
//! - mean latency W = S / (1 − ρ) (M/M/1 sojourn time, S = base service
//!   time), with ρ clamped at [`RHO_MAX`] and W capped by the finite queue
//!   (`queue_limit` requests at the disk's service rate for this mix);
//! - beyond ρ = [`RHO_MAX`] only that share of the offered I/O is accepted
//!   this tick (`accept` < 1): throughput caps at capacity, latency stays
//!   finite;
//! - multiplicative log-normal noise (mean 1) on W per tick, from a seeded
//!   RNG.
//!
//! Individual I/O latencies within a tick are taken to be exponential with
//! mean W (the M/M/1 sojourn-time distribution), so p99 ≈ ln(100)·W ≈ 4.6·W,
//! the rule of thumb of resync-control.md. The plant's 1 s windows compute
//! percentiles from that mixture (see `observe.rs`).
//!
//! [`Counters`] turn completed I/O and its latency into the fields of
//! `/sys/block/<dev>/stat`: Δms_writing / Δwrites is the mean write latency
//! and Δweighted_ms / Δt the mean queue depth (Little's law), as an agent
//! reading the real file computes them.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::PlantError;
use crate::disk::DiskStats;

/// Utilisation beyond which a disk accepts no more work per tick.
pub const RHO_MAX: f64 = 0.99;

/// What a disk can do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskSpec {
    /// Bandwidth, MiB/s.
    pub capacity_mib_s: f64,
    /// Small-I/O rate, I/Os per second.
    pub capacity_iops: f64,
    /// Latency of one I/O on an idle disk, ms.
    pub service_ms: f64,
    /// Requests the device queue holds (nr_requests); bounds the latency.
    pub queue_limit: f64,
    /// Standard deviation of the log-normal latency noise per tick (0 = none).
    pub noise: f64,
}

impl Default for DiskSpec {
    /// A SATA-SSD-like device: 500 MiB/s, 50k IOPS, 0.2 ms.
    fn default() -> Self {
        Self {
            capacity_mib_s: 500.0,
            capacity_iops: 50_000.0,
            service_ms: 0.2,
            queue_limit: 256.0,
            noise: 0.1,
        }
    }
}

impl DiskSpec {
    /// Every field finite and in range, or an error naming the field.
    pub fn validate(&self) -> Result<(), PlantError> {
        positive("disk.capacity_mib_s", self.capacity_mib_s)?;
        positive("disk.capacity_iops", self.capacity_iops)?;
        positive("disk.service_ms", self.service_ms)?;
        positive("disk.queue_limit", self.queue_limit)?;
        if !self.noise.is_finite() || !(0.0..=2.0).contains(&self.noise) {
            return Err(PlantError::Invalid {
                field: "disk.noise",
                reason: format!("{} is not in 0..=2", self.noise),
            });
        }
        Ok(())
    }
}

/// A value that must be finite and > 0.
pub(crate) fn positive(field: &'static str, value: f64) -> Result<(), PlantError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(PlantError::Invalid {
            field,
            reason: format!("{value} is not a finite number > 0"),
        })
    }
}

/// I/O over one interval: amounts (KiB) and request counts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Io {
    pub read_kib: f64,
    pub read_ios: f64,
    pub write_kib: f64,
    pub write_ios: f64,
}

impl Io {
    /// `kib` of reads in requests of `io_kib`.
    pub fn reads(kib: f64, io_kib: f64) -> Self {
        Self {
            read_kib: kib,
            read_ios: ios(kib, io_kib),
            ..Self::default()
        }
    }

    /// `kib` of writes in requests of `io_kib`.
    pub fn writes(kib: f64, io_kib: f64) -> Self {
        Self {
            write_kib: kib,
            write_ios: ios(kib, io_kib),
            ..Self::default()
        }
    }

    /// Both directions summed.
    pub fn plus(self, other: Io) -> Self {
        Self {
            read_kib: self.read_kib + other.read_kib,
            read_ios: self.read_ios + other.read_ios,
            write_kib: self.write_kib + other.write_kib,
            write_ios: self.write_ios + other.write_ios,
        }
    }

    /// Every amount multiplied by `f`.
    pub fn scaled(self, f: f64) -> Self {
        Self {
            read_kib: self.read_kib * f,
            read_ios: self.read_ios * f,
            write_kib: self.write_kib * f,
            write_ios: self.write_ios * f,
        }
    }

    pub fn kib(&self) -> f64 {
        self.read_kib + self.write_kib
    }

    pub fn ios(&self) -> f64 {
        self.read_ios + self.write_ios
    }
}

fn ios(kib: f64, io_kib: f64) -> f64 {
    if io_kib > 0.0 {
        kib.max(0.0) / io_kib
    } else {
        0.0
    }
}

/// What the disk did with one tick's offered I/O.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskTick {
    /// Offered utilisation (may exceed 1).
    pub rho: f64,
    /// Share of the offered I/O served this tick (1 unless overloaded).
    pub accept: f64,
    /// Mean latency of an I/O served this tick, ms (with noise).
    pub latency_ms: f64,
    /// Mean number of I/Os in the device (Little's law).
    pub queue_depth: f64,
}

/// One backing disk: its queue model, noise source and counters.
#[derive(Debug, Clone)]
pub struct Disk {
    spec: DiskSpec,
    rng: StdRng,
    counters: Counters,
}

impl Disk {
    pub fn new(spec: DiskSpec, seed: u64) -> Result<Self, PlantError> {
        spec.validate()?;
        Ok(Self {
            spec,
            rng: StdRng::seed_from_u64(seed),
            counters: Counters::default(),
        })
    }

    pub fn spec(&self) -> &DiskSpec {
        &self.spec
    }

    /// Offered utilisation of `io` over `dt_s` seconds.
    pub fn utilisation(&self, io: &Io, dt_s: f64) -> f64 {
        if dt_s <= 0.0 {
            return 0.0;
        }
        let by_bytes = io.kib() / dt_s / (self.spec.capacity_mib_s * 1024.0);
        let by_ios = io.ios() / dt_s / self.spec.capacity_iops;
        by_bytes.max(by_ios).max(0.0)
    }

    /// Mean latency without noise for `io` over `dt_s`, ms, and the accepted share.
    pub fn expected(&self, io: &Io, dt_s: f64) -> (f64, f64) {
        let rho = self.utilisation(io, dt_s);
        let accept = if rho > RHO_MAX { RHO_MAX / rho } else { 1.0 };
        let s = self.spec.service_ms;
        let mut latency = s / (1.0 - rho.min(RHO_MAX));
        if rho > 0.0 && io.ios() > 0.0 {
            // The disk's service rate for this mix (I/Os per second at ρ = 1);
            // a full queue of `queue_limit` drains in queue_limit / μ.
            let mu = io.ios() / dt_s / rho;
            let full_queue_ms = self.spec.queue_limit / mu * 1000.0;
            latency = latency.min(full_queue_ms.max(s));
        }
        (latency, accept)
    }

    /// Serves one tick's offered I/O: the latency its I/Os see and the
    /// share accepted. Counters move only through [`Disk::account`].
    pub fn serve(&mut self, io: &Io, dt_s: f64) -> DiskTick {
        let rho = self.utilisation(io, dt_s);
        let (mean, accept) = self.expected(io, dt_s);
        let latency_ms = mean * lognormal(&mut self.rng, self.spec.noise);
        let lambda = if dt_s > 0.0 {
            io.ios() * accept / dt_s
        } else {
            0.0
        };
        DiskTick {
            rho,
            accept,
            latency_ms,
            queue_depth: lambda * latency_ms / 1000.0,
        }
    }

    /// Counts I/O completed over `dt_s` with the tick's mean latency.
    pub fn account(&mut self, done: &Io, latency_ms: f64, dt_s: f64) {
        self.counters.account(done, latency_ms, latency_ms, dt_s);
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn stats(&self) -> DiskStats {
        self.counters.stats()
    }

    /// `/sys/block/<dev>/stat` of the backing device.
    pub fn stat_text(&self) -> String {
        self.counters.stats().stat_text()
    }
}

/// A mean-1 log-normal factor exp(σz − σ²/2).
fn lognormal(rng: &mut StdRng, sigma: f64) -> f64 {
    if sigma <= 0.0 {
        return 1.0;
    }
    (sigma * standard_normal(rng) - sigma * sigma / 2.0).exp()
}

/// Box–Muller from two uniforms in (0, 1].
fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Cumulative block-device counters, kept as reals so that fractions of a
/// request or millisecond are never lost; [`Counters::stats`] shows them
/// truncated, which keeps every field monotonic.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Counters {
    pub reads: f64,
    pub sectors_read: f64,
    pub ms_reading: f64,
    pub writes: f64,
    pub sectors_written: f64,
    pub ms_writing: f64,
    /// Mean I/Os in flight during the last interval.
    pub in_flight: f64,
    pub io_ticks: f64,
    pub weighted_ms: f64,
}

impl Counters {
    /// Adds I/O completed over `dt_s`: reads with mean latency
    /// `read_ms`, writes with `write_ms`.
    pub fn account(&mut self, done: &Io, read_ms: f64, write_ms: f64, dt_s: f64) {
        let read_ios = done.read_ios.max(0.0);
        let write_ios = done.write_ios.max(0.0);
        let read_ms = read_ms.max(0.0);
        let write_ms = write_ms.max(0.0);
        self.reads += read_ios;
        self.sectors_read += done.read_kib.max(0.0) * 2.0;
        self.ms_reading += read_ios * read_ms;
        self.writes += write_ios;
        self.sectors_written += done.write_kib.max(0.0) * 2.0;
        self.ms_writing += write_ios * write_ms;
        let waited = read_ios * read_ms + write_ios * write_ms;
        self.weighted_ms += waited;
        let interval_ms = dt_s.max(0.0) * 1000.0;
        let depth = if interval_ms > 0.0 {
            waited / interval_ms
        } else {
            0.0
        };
        self.in_flight = depth;
        // With a mean of `depth` I/Os in flight (Poisson), the device is busy
        // a share 1 − e^(−depth) of the time.
        self.io_ticks += interval_ms * (1.0 - (-depth).exp());
    }

    /// The 17 kernel fields (merges, discards and flushes stay 0).
    pub fn stats(&self) -> DiskStats {
        DiskStats {
            reads: whole(self.reads),
            sectors_read: whole(self.sectors_read),
            ms_reading: whole(self.ms_reading),
            writes: whole(self.writes),
            sectors_written: whole(self.sectors_written),
            ms_writing: whole(self.ms_writing),
            in_flight: self.in_flight.round().max(0.0) as u64,
            io_ticks: whole(self.io_ticks),
            time_in_queue: whole(self.weighted_ms),
            ..DiskStats::default()
        }
    }
}

/// Truncates a non-negative counter (NaN and negatives count as 0).
fn whole(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        value.floor() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> DiskSpec {
        DiskSpec {
            noise: 0.0,
            ..DiskSpec::default()
        }
    }

    #[test]
    fn latency_rises_with_load_and_stays_finite() {
        let disk = Disk::new(quiet(), 1).unwrap();
        let mut last = 0.0;
        for mib_s in [0.0, 50.0, 100.0, 250.0, 400.0, 480.0, 495.0, 600.0, 5000.0] {
            let io = Io::writes(mib_s * 1024.0 * 0.1, 64.0);
            let (latency, accept) = disk.expected(&io, 0.1);
            assert!(latency.is_finite() && latency >= last, "{mib_s}: {latency}");
            assert!(accept > 0.0 && accept <= 1.0);
            last = latency;
        }
        assert!(last > 10.0 * disk.spec().service_ms);
    }

    #[test]
    fn half_load_doubles_the_service_time() {
        let disk = Disk::new(quiet(), 1).unwrap();
        let io = Io::writes(250.0 * 1024.0, 128.0);
        let (latency, accept) = disk.expected(&io, 1.0);
        assert!((latency - 0.4).abs() < 1e-9, "{latency}");
        assert_eq!(accept, 1.0);
    }

    #[test]
    fn iops_bind_for_small_requests() {
        let disk = Disk::new(quiet(), 1).unwrap();
        // 40k IOPS of 4 KiB = 156 MiB/s: 31% of bandwidth, 80% of IOPS.
        let io = Io::reads(40_000.0 * 4.0, 4.0);
        assert!((disk.utilisation(&io, 1.0) - 0.8).abs() < 1e-9);
    }

    #[test]
    fn overload_caps_the_accepted_share() {
        let mut disk = Disk::new(quiet(), 1).unwrap();
        let io = Io::writes(1000.0 * 1024.0 * 0.1, 64.0);
        let tick = disk.serve(&io, 0.1);
        assert!((tick.rho - 2.0).abs() < 1e-9);
        let served_mib_s = io.write_kib * tick.accept / 0.1 / 1024.0;
        assert!(served_mib_s <= 500.0, "{served_mib_s}");
    }

    #[test]
    fn bad_specs_are_named() {
        let spec = DiskSpec {
            capacity_iops: f64::NAN,
            ..DiskSpec::default()
        };
        let err = Disk::new(spec, 1).unwrap_err().to_string();
        assert!(err.contains("capacity_iops"), "{err}");
    }

    #[test]
    fn counters_follow_littles_law() {
        let mut c = Counters::default();
        let io = Io::writes(6400.0, 64.0).plus(Io::reads(640.0, 64.0));
        c.account(&io, 2.0, 3.0, 0.1);
        let s = c.stats();
        assert_eq!(s.writes, 100);
        assert_eq!(s.sectors_written, 12_800);
        assert_eq!(s.ms_writing, 300);
        assert_eq!(s.reads, 10);
        assert_eq!(s.ms_reading, 20);
        assert_eq!(s.time_in_queue, 320);
        assert_eq!(s.in_flight, 3);
        assert!(s.io_ticks <= 100);
    }
}
