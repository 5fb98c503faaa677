//! Rates from two samples of the counters.

use std::time::Duration;

use super::parse::{DiskStat, FIELD_NAMES};

/// Bytes per sector in the `stat` file (always 512, whatever the device's
/// logical block size).
pub const SECTOR_BYTES: f64 = 512.0;

/// What a device did between two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IoRates {
    /// The time between the samples, ms (> 0).
    pub elapsed_ms: f64,
    /// Requests completed in the interval.
    pub reads: u64,
    pub writes: u64,
    pub read_iops: f64,
    pub write_iops: f64,
    pub read_bytes_per_sec: f64,
    pub write_bytes_per_sec: f64,
    /// Mean time per completed read, ms; `None` when no read completed.
    pub read_latency_ms: Option<f64>,
    /// Mean time per completed write, ms (Δ write ticks / Δ writes); `None`
    /// when no write completed.
    pub write_latency_ms: Option<f64>,
    /// Mean number of requests in flight (Δ weighted ms / Δt).
    pub queue_depth: f64,
    /// Share of the interval with I/O in flight, 0..=1 (Δ io_ticks / Δt;
    /// clamped: the kernel's tick accounting can run slightly ahead).
    pub utilisation: f64,
    /// Requests in flight at the second sample.
    pub in_flight: u64,
}

/// Why two samples give no rates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error("no time elapsed between the samples")]
    NoTimeElapsed,
    /// A counter is smaller than before: the device was recreated (or a
    /// 32-bit counter wrapped). The caller should start over from `after`.
    #[error("stat field {field} ({name}) went back from {before} to {after}: device reset")]
    CounterWentBack {
        /// 1-based, as in stat.rst.
        field: usize,
        name: &'static str,
        before: u64,
        after: u64,
    },
}

/// The rates between `before` and `after`, taken `elapsed` apart. Never
/// negative, never NaN; a counter that went back is an error, not a sample.
pub fn derive(
    before: &DiskStat,
    after: &DiskStat,
    elapsed: Duration,
) -> Result<IoRates, DeltaError> {
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    if elapsed_ms <= 0.0 {
        return Err(DeltaError::NoTimeElapsed);
    }
    let d = |field: usize, b: u64, a: u64| -> Result<u64, DeltaError> {
        a.checked_sub(b).ok_or(DeltaError::CounterWentBack {
            field,
            name: FIELD_NAMES.get(field - 1).copied().unwrap_or("?"),
            before: b,
            after: a,
        })
    };
    let reads = d(1, before.reads, after.reads)?;
    let sectors_read = d(3, before.sectors_read, after.sectors_read)?;
    let ms_reading = d(4, before.ms_reading, after.ms_reading)?;
    let writes = d(5, before.writes, after.writes)?;
    let sectors_written = d(7, before.sectors_written, after.sectors_written)?;
    let ms_writing = d(8, before.ms_writing, after.ms_writing)?;
    let io_ticks = d(10, before.io_ticks, after.io_ticks)?;
    let weighted_ms = d(11, before.weighted_ms, after.weighted_ms)?;
    // Merges, discards and flushes feed no rate, but a drop still means the
    // device was recreated.
    d(2, before.reads_merged, after.reads_merged)?;
    d(6, before.writes_merged, after.writes_merged)?;
    if let (Some(b), Some(a)) = (before.discard, after.discard) {
        d(12, b.discards, a.discards)?;
        d(14, b.sectors_discarded, a.sectors_discarded)?;
    }
    if let (Some(b), Some(a)) = (before.flush, after.flush) {
        d(16, b.flushes, a.flushes)?;
    }

    let secs = elapsed_ms / 1000.0;
    let mean = |ms: u64, count: u64| (count > 0).then(|| ms as f64 / count as f64);
    Ok(IoRates {
        elapsed_ms,
        reads,
        writes,
        read_iops: reads as f64 / secs,
        write_iops: writes as f64 / secs,
        read_bytes_per_sec: sectors_read as f64 * SECTOR_BYTES / secs,
        write_bytes_per_sec: sectors_written as f64 * SECTOR_BYTES / secs,
        read_latency_ms: mean(ms_reading, reads),
        write_latency_ms: mean(ms_writing, writes),
        queue_depth: weighted_ms as f64 / elapsed_ms,
        utilisation: (io_ticks as f64 / elapsed_ms).min(1.0),
        in_flight: after.in_flight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(
        writes: u64,
        sectors_written: u64,
        ms_writing: u64,
        io_ticks: u64,
        weighted: u64,
    ) -> DiskStat {
        DiskStat {
            writes,
            sectors_written,
            ms_writing,
            io_ticks,
            weighted_ms: weighted,
            ..DiskStat::default()
        }
    }

    #[test]
    fn one_second_of_writes() {
        let a = stat(1000, 100_000, 2_000, 10_000, 20_000);
        let b = stat(1500, 102_048, 3_000, 10_800, 21_500);
        let r = derive(&a, &b, Duration::from_secs(1)).unwrap();
        assert_eq!(r.writes, 500);
        assert!((r.write_iops - 500.0).abs() < 1e-9);
        assert!((r.write_bytes_per_sec - 2048.0 * 512.0).abs() < 1e-6);
        assert_eq!(r.write_latency_ms, Some(2.0));
        assert_eq!(r.read_latency_ms, None);
        assert!((r.queue_depth - 1.5).abs() < 1e-9);
        assert!((r.utilisation - 0.8).abs() < 1e-9);
    }

    #[test]
    fn half_second_doubles_the_rates() {
        let a = stat(0, 0, 0, 0, 0);
        let b = stat(100, 200, 50, 600, 250);
        let r = derive(&a, &b, Duration::from_millis(500)).unwrap();
        assert!((r.write_iops - 200.0).abs() < 1e-9);
        assert!((r.queue_depth - 0.5).abs() < 1e-9);
        assert_eq!(r.utilisation, 1.0, "clamped");
    }

    #[test]
    fn no_writes_no_latency() {
        let a = stat(10, 10, 10, 10, 10);
        let r = derive(&a, &a, Duration::from_secs(1)).unwrap();
        assert_eq!(r.write_latency_ms, None);
        assert_eq!(r.queue_depth, 0.0);
    }

    #[test]
    fn reset_and_zero_time() {
        let a = stat(1000, 100, 100, 100, 100);
        let b = stat(10, 100, 100, 100, 100);
        assert_eq!(
            derive(&a, &b, Duration::from_secs(1)),
            Err(DeltaError::CounterWentBack {
                field: 5,
                name: "write I/Os",
                before: 1000,
                after: 10
            })
        );
        assert_eq!(
            derive(&a, &a, Duration::ZERO),
            Err(DeltaError::NoTimeElapsed)
        );
    }
}
