//! Block device I/O counters and their `/sys/block/<dev>/stat` text.
//!
//! The model is deliberately simple for now: every I/O has the same size
//! and the same service time, and the device serves one queue. Callers hand
//! in how many KiB were read and written over an interval; the counters move
//! the way the kernel's would. A queueing latency model can replace
//! [`IoModel`] later without touching the callers.

use std::time::Duration;

/// How a device turns KiB into requests and time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IoModel {
    /// Size of one request, KiB.
    pub request_kib: f64,
    /// Service time of one request, ms.
    pub service_ms: f64,
}

impl Default for IoModel {
    fn default() -> Self {
        Self {
            request_kib: 64.0,
            service_ms: 0.5,
        }
    }
}

/// The 17 fields of a Linux `stat` file (Documentation/block/stat.rst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskStats {
    pub reads: u64,
    pub reads_merged: u64,
    pub sectors_read: u64,
    pub ms_reading: u64,
    pub writes: u64,
    pub writes_merged: u64,
    pub sectors_written: u64,
    pub ms_writing: u64,
    pub in_flight: u64,
    pub io_ticks: u64,
    pub time_in_queue: u64,
    pub discards: u64,
    pub discards_merged: u64,
    pub sectors_discarded: u64,
    pub ms_discarding: u64,
    pub flushes: u64,
    pub ms_flushing: u64,
}

impl DiskStats {
    /// The file's text: 17 right-aligned numbers, width 8, one space apart.
    pub fn stat_text(&self) -> String {
        let fields = [
            self.reads,
            self.reads_merged,
            self.sectors_read,
            self.ms_reading,
            self.writes,
            self.writes_merged,
            self.sectors_written,
            self.ms_writing,
            self.in_flight,
            self.io_ticks,
            self.time_in_queue,
            self.discards,
            self.discards_merged,
            self.sectors_discarded,
            self.ms_discarding,
            self.flushes,
            self.ms_flushing,
        ];
        let mut text = fields
            .iter()
            .map(|v| format!("{v:>8}"))
            .collect::<Vec<_>>()
            .join(" ");
        text.push('\n');
        text
    }
}

/// One simulated block device.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Disk {
    pub model: IoModel,
    pub stats: DiskStats,
    /// Fractions not yet counted as whole requests/sectors/ms.
    carry_read_kib: f64,
    carry_write_kib: f64,
    carry_busy_ms: f64,
}

impl Disk {
    pub fn new(model: IoModel) -> Self {
        Self {
            model,
            ..Self::default()
        }
    }

    /// Accounts the I/O of one interval.
    pub fn account(&mut self, interval: Duration, read_kib: f64, write_kib: f64) {
        let interval_ms = interval.as_secs_f64() * 1000.0;
        let (reads, read_sectors) = Self::requests(&mut self.carry_read_kib, read_kib, self.model);
        let (writes, write_sectors) =
            Self::requests(&mut self.carry_write_kib, write_kib, self.model);
        let read_ms = reads as f64 * self.model.service_ms;
        let write_ms = writes as f64 * self.model.service_ms;
        self.stats.reads += reads;
        self.stats.sectors_read += read_sectors;
        self.stats.writes += writes;
        self.stats.sectors_written += write_sectors;
        // Waiting time adds up per request; busy time cannot exceed the interval.
        let busy = (read_ms + write_ms).min(interval_ms) + self.carry_busy_ms;
        self.carry_busy_ms = busy.fract();
        self.stats.io_ticks += busy.trunc() as u64;
        self.stats.ms_reading += read_ms.round() as u64;
        self.stats.ms_writing += write_ms.round() as u64;
        self.stats.time_in_queue += (read_ms + write_ms).round() as u64;
        self.stats.in_flight = if interval_ms > 0.0 {
            ((read_ms + write_ms) / interval_ms).floor() as u64
        } else {
            0
        };
    }

    /// Whole requests and sectors for `kib` more KiB, keeping the remainder.
    fn requests(carry: &mut f64, kib: f64, model: IoModel) -> (u64, u64) {
        let total = *carry + kib.max(0.0);
        let requests = (total / model.request_kib).floor();
        *carry = total - requests * model.request_kib;
        let sectors = (requests * model.request_kib * 2.0).round() as u64;
        (requests as u64, sectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_text_has_17_fields_in_kernel_layout() {
        let stats = DiskStats {
            reads: 1,
            sectors_written: 123_456_789,
            ms_flushing: 17,
            ..DiskStats::default()
        };
        let text = stats.stat_text();
        assert!(text.ends_with('\n'));
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(fields.len(), 17);
        assert_eq!(fields[0], "1");
        assert_eq!(fields[6], "123456789");
        assert_eq!(fields[16], "17");
        assert!(text.starts_with("       1        0"), "{text:?}");
    }

    #[test]
    fn writes_become_requests_and_sectors() {
        let mut disk = Disk::new(IoModel::default());
        disk.account(Duration::from_secs(1), 0.0, 640.0);
        assert_eq!(disk.stats.writes, 10);
        assert_eq!(disk.stats.sectors_written, 1280);
        assert_eq!(disk.stats.ms_writing, 5);
        assert_eq!(disk.stats.io_ticks, 5);
        assert_eq!(disk.stats.reads, 0);
    }

    #[test]
    fn fractions_carry_over() {
        let mut disk = Disk::new(IoModel::default());
        for _ in 0..4 {
            disk.account(Duration::from_millis(100), 16.0, 0.0);
        }
        assert_eq!(disk.stats.reads, 1);
        assert_eq!(disk.stats.sectors_read, 128);
    }

    #[test]
    fn busy_time_is_bounded_by_the_interval() {
        let mut disk = Disk::new(IoModel::default());
        disk.account(Duration::from_millis(10), 0.0, 64.0 * 1000.0);
        assert_eq!(disk.stats.io_ticks, 10);
        assert_eq!(disk.stats.time_in_queue, 500);
        assert_eq!(disk.stats.in_flight, 50);
    }
}
