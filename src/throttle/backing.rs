//! The backing device of a SyncTarget volume: which `stat` file measures it,
//! and what its counters say about writes arriving from the Primary.
//!
//! On a Secondary SyncTarget the DRBD device has no application I/O: the
//! Primary's writes arrive over the network and land on this node's backing
//! device, next to the resync's writes. With protocol C the Primary waits for
//! them, so the backing device's write latency is the part of the
//! application's latency this node controls — the law's signal here.
//!
//! events2 names the backing device by path (`backing_dev:/dev/vg0/r0_0`), a
//! symbolic link to the kernel's name (`/dev/dm-3`), whose counters are in
//! `/sys/class/block/dm-3/stat`. Paths are resolved under the *system root*:
//! the parent of `sysfs-root` when that ends in `sys` (`/` for `/sys`; the
//! simulator's node directory for `DIR/<node>/sys`).

use std::path::{Component, Path, PathBuf};

use tokio::time::Instant;
use tracing::{info, warn};

use crate::diskstats::{derive, read_stat_file, DiskStat, IoRates};

use super::options::PeerKey;

/// Why a volume's backing device cannot be sampled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackingError {
    #[error("the volume has no local backing device (diskless)")]
    Diskless,
    #[error("backing device path {0:?} is not absolute")]
    NotAbsolute(String),
    #[error("backing device {path}: {reason}")]
    Unresolved { path: String, reason: String },
    #[error("backing device {path} resolves to {name:?}, which has no stat file under {sysfs}")]
    NoStat {
        path: String,
        name: String,
        sysfs: String,
    },
}

/// The directory that `/dev/...` paths are relative to, given `sysfs-root`.
pub fn system_root(sysfs_root: &Path) -> PathBuf {
    match (sysfs_root.file_name(), sysfs_root.parent()) {
        (Some(name), Some(parent)) if name == "sys" => parent.to_path_buf(),
        _ => PathBuf::from("/"),
    }
}

/// `path` (absolute, as events2 prints it) placed under `root`. `..` and `.`
/// components are rejected or dropped so the result stays under `root`.
pub fn under_root(root: &Path, path: &str) -> Result<PathBuf, BackingError> {
    if path.is_empty() || path == "none" {
        return Err(BackingError::Diskless);
    }
    let given = Path::new(path);
    if !given.is_absolute() {
        return Err(BackingError::NotAbsolute(path.to_owned()));
    }
    let mut out = root.to_path_buf();
    for component in given.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(BackingError::Unresolved {
                    path: path.to_owned(),
                    reason: "`..` in the path".to_owned(),
                })
            }
        }
    }
    Ok(out)
}

/// The kernel's name of the block device behind `backing_dev` (follows
/// symbolic links, e.g. `/dev/vg0/r0_0` → `dm-3`), and the stat file that
/// counts its I/O: `<sysfs>/class/block/<name>/stat` (whole disks and
/// partitions) or `<sysfs>/block/<name>/stat`.
pub fn resolve_stat_file(sysfs_root: &Path, backing_dev: &str) -> Result<PathBuf, BackingError> {
    let root = system_root(sysfs_root);
    let placed = under_root(&root, backing_dev)?;
    let real = std::fs::canonicalize(&placed).map_err(|e| BackingError::Unresolved {
        path: backing_dev.to_owned(),
        reason: format!("{}: {e}", placed.display()),
    })?;
    let name = real
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| BackingError::Unresolved {
            path: backing_dev.to_owned(),
            reason: format!("{} has no usable file name", real.display()),
        })?
        .to_owned();
    let candidates = [
        sysfs_root.join("class/block").join(&name).join("stat"),
        sysfs_root.join("block").join(&name).join("stat"),
    ];
    candidates
        .into_iter()
        .find(|c| c.is_file())
        .ok_or_else(|| BackingError::NoStat {
            path: backing_dev.to_owned(),
            name,
            sysfs: sysfs_root.display().to_string(),
        })
}

/// Writes arriving from peers (the Primary's replicated writes), KiB/s: what
/// the backing device wrote in the interval minus what the resync wrote.
/// `None` without a backing sample. The resync's share comes from DRBD's
/// `dbdt1` (a few seconds' window), so the difference is an estimate: a
/// difference under 5 % of the resync rate (plus 64 KiB/s) counts as none.
pub fn replicated_write_kib(
    backing: Option<&IoRates>,
    resync_kib_per_sec: Option<f64>,
) -> Option<f64> {
    let backing = backing?;
    let written = backing.write_bytes_per_sec / 1024.0;
    let resync = resync_kib_per_sec
        .filter(|r| r.is_finite() && *r > 0.0)
        .unwrap_or(0.0);
    let rest = written - resync;
    if !rest.is_finite() || rest <= REPLICATED_NOISE_SHARE * resync + REPLICATED_NOISE_KIB {
        return Some(0.0);
    }
    Some(rest)
}

/// See [`replicated_write_kib`].
pub const REPLICATED_NOISE_SHARE: f64 = 0.05;
/// See [`replicated_write_kib`].
pub const REPLICATED_NOISE_KIB: f64 = 64.0;

/// The backing device's stat file and last sample for one peer device.
#[derive(Debug, Default)]
pub(super) struct BackingSampler {
    /// The events2 path it was resolved from, and the result.
    resolved: Option<(String, Result<PathBuf, BackingError>)>,
    sample: Option<(DiskStat, Instant)>,
    /// Consecutive stale samples skipped.
    stale_for: u32,
}

/// What the backing device says about one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Backing {
    /// No backing device to sample: the DRBD device's signals alone.
    Absent,
    /// No trustworthy sample this interval: do not step, keep the rate.
    Hold,
    Rates(IoRates),
}

impl Backing {
    pub(super) fn rates(&self) -> Option<&IoRates> {
        match self {
            Self::Rates(r) => Some(r),
            Self::Absent | Self::Hold => None,
        }
    }
}

/// Intervals a stale backing sample is skipped before it is taken as it is.
pub const MAX_STALE_INTERVALS: u32 = 5;

/// A sample that cannot be right: DRBD says the resync is writing (more
/// than the noise band of [`replicated_write_kib`]) but the backing device —
/// where the resync writes land — completed no write. The stat file was not
/// updated in the interval; taken at face value it would read as an idle
/// disk and send the resync to full speed.
pub fn is_stale(backing: &IoRates, resync_kib_per_sec: Option<f64>) -> bool {
    let resyncing = resync_kib_per_sec.is_some_and(|r| r.is_finite() && r > REPLICATED_NOISE_KIB);
    backing.writes == 0 && resyncing
}

impl BackingSampler {
    /// The backing device's rates since the last call. [`Backing::Absent`]
    /// without a backing device or when it cannot be resolved (the DRBD
    /// device's own signals count); [`Backing::Hold`] when this interval has
    /// no trustworthy sample — the first after a (re)start or a read error,
    /// or a stale one (see [`is_stale`]; the window then widens to the next
    /// interval, at most [`MAX_STALE_INTERVALS`] times). Resolves the path
    /// again when it changed or the last attempt failed; logs a failure once.
    pub(super) async fn rates(
        &mut self,
        sysfs_root: &Path,
        key: &PeerKey,
        backing_dev: Option<&str>,
        resync_kib_per_sec: Option<f64>,
        now: Instant,
    ) -> Backing {
        let Some(dev) = backing_dev else {
            self.sample = None;
            return Backing::Absent;
        };
        let unresolved = match &self.resolved {
            Some((path, result)) => path != dev || result.is_err(),
            None => true,
        };
        if unresolved {
            let result = resolve_stat_file(sysfs_root, dev);
            let changed = self.resolved.as_ref().map(|(_, r)| r) != Some(&result);
            match &result {
                Ok(file) if changed => {
                    info!(resource = %key.resource, peer = key.peer_node_id, volume = key.volume, backing_dev = dev, stat = %file.display(), "backing device sampled");
                }
                Err(e) if changed && !matches!(e, BackingError::Diskless) => {
                    warn!(resource = %key.resource, peer = key.peer_node_id, volume = key.volume, backing_dev = dev, error = %e, "backing device not sampled");
                }
                _ => {}
            }
            if self.resolved.as_ref().is_some_and(|(p, _)| p != dev) {
                self.sample = None;
            }
            self.resolved = Some((dev.to_owned(), result));
        }
        let Some(Ok(file)) = self.resolved.as_ref().map(|(_, r)| r.as_ref()) else {
            return Backing::Absent;
        };
        let stat = match read_stat_file(file).await {
            Ok(stat) => stat,
            Err(e) => {
                warn!(resource = %key.resource, peer = key.peer_node_id, volume = key.volume, error = %e, "no backing diskstats sample");
                self.sample = None;
                // Resolve again next time: the device may have been replaced.
                self.resolved = None;
                return Backing::Hold;
            }
        };
        let Some((before, at)) = self.sample.replace((stat, now)) else {
            return Backing::Hold;
        };
        let Ok(rates) = derive(&before, &stat, now.saturating_duration_since(at)) else {
            // Counters went back (device recreated): start over from here.
            return Backing::Hold;
        };
        if is_stale(&rates, resync_kib_per_sec) && self.stale_for < MAX_STALE_INTERVALS {
            self.stale_for += 1;
            // Keep the older sample: the next interval's delta covers both.
            self.sample = Some((before, at));
            return Backing::Hold;
        }
        self.stale_for = 0;
        Backing::Rates(rates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(write_kib: f64) -> IoRates {
        IoRates {
            elapsed_ms: 1000.0,
            reads: 0,
            writes: 10,
            read_iops: 0.0,
            write_iops: 10.0,
            read_bytes_per_sec: 0.0,
            write_bytes_per_sec: write_kib * 1024.0,
            read_latency_ms: None,
            write_latency_ms: Some(2.0),
            queue_depth: 0.1,
            utilisation: 0.1,
            in_flight: 0,
        }
    }

    #[test]
    fn system_root_is_the_parent_of_sys() {
        assert_eq!(system_root(Path::new("/sys")), PathBuf::from("/"));
        assert_eq!(
            system_root(Path::new("/tmp/sim/bravo/sys")),
            PathBuf::from("/tmp/sim/bravo")
        );
        assert_eq!(system_root(Path::new("/srv/sysfs")), PathBuf::from("/"));
        assert_eq!(system_root(Path::new("/")), PathBuf::from("/"));
    }

    #[test]
    fn paths_stay_under_the_root() {
        let root = Path::new("/tmp/x");
        assert_eq!(
            under_root(root, "/dev/vg0/r0_0").unwrap(),
            PathBuf::from("/tmp/x/dev/vg0/r0_0")
        );
        assert_eq!(
            under_root(Path::new("/"), "/dev/sda1").unwrap(),
            PathBuf::from("/dev/sda1")
        );
        assert_eq!(under_root(root, "none"), Err(BackingError::Diskless));
        assert_eq!(under_root(root, ""), Err(BackingError::Diskless));
        assert!(matches!(
            under_root(root, "dev/sda"),
            Err(BackingError::NotAbsolute(_))
        ));
        assert!(matches!(
            under_root(root, "/dev/../etc/passwd"),
            Err(BackingError::Unresolved { .. })
        ));
    }

    #[test]
    fn resolves_links_to_the_kernel_name() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        std::fs::create_dir_all(sys.join("block/dm-3")).unwrap();
        std::fs::write(sys.join("block/dm-3/stat"), "0").unwrap();
        std::fs::create_dir_all(dir.path().join("dev/vg0")).unwrap();
        std::fs::write(dir.path().join("dev/dm-3"), "").unwrap();
        std::os::unix::fs::symlink("../dm-3", dir.path().join("dev/vg0/r0_0")).unwrap();
        assert_eq!(
            resolve_stat_file(&sys, "/dev/vg0/r0_0").unwrap(),
            sys.join("block/dm-3/stat")
        );
        // class/block wins (partitions live only there).
        std::fs::create_dir_all(sys.join("class/block/dm-3")).unwrap();
        std::fs::write(sys.join("class/block/dm-3/stat"), "0").unwrap();
        assert_eq!(
            resolve_stat_file(&sys, "/dev/vg0/r0_0").unwrap(),
            sys.join("class/block/dm-3/stat")
        );
        let missing = resolve_stat_file(&sys, "/dev/vg0/gone").unwrap_err();
        assert!(missing.to_string().contains("/dev/vg0/gone"), "{missing}");
        std::fs::write(dir.path().join("dev/sdz"), "").unwrap();
        let no_stat = resolve_stat_file(&sys, "/dev/sdz").unwrap_err();
        assert!(
            matches!(&no_stat, BackingError::NoStat { name, .. } if name == "sdz"),
            "{no_stat}"
        );
    }

    #[test]
    fn no_backing_write_during_a_resync_is_a_stale_sample() {
        let mut quiet = rates(0.0);
        quiet.writes = 0;
        assert!(is_stale(&quiet, Some(10_000.0)));
        assert!(!is_stale(&quiet, Some(10.0)), "within the noise band");
        assert!(!is_stale(&quiet, None));
        assert!(!is_stale(&quiet, Some(f64::NAN)));
        assert!(!is_stale(&rates(500.0), Some(10_000.0)));
    }

    #[tokio::test]
    async fn the_sampler_holds_on_first_stale_and_missing_samples() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        std::fs::create_dir_all(sys.join("block/dm-0")).unwrap();
        std::fs::create_dir_all(dir.path().join("dev/vg0")).unwrap();
        std::fs::write(dir.path().join("dev/dm-0"), "").unwrap();
        std::os::unix::fs::symlink("../dm-0", dir.path().join("dev/vg0/r0")).unwrap();
        let stat = sys.join("block/dm-0/stat");
        let line = |writes: u64, sectors: u64, ticks: u64| {
            format!("0 0 0 0 {writes} 0 {sectors} {ticks} 0 {ticks} {ticks} 0 0 0 0 0 0\n")
        };
        let key = PeerKey {
            resource: "r0".into(),
            peer_node_id: 0,
            volume: 0,
        };
        let mut sampler = BackingSampler::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + std::time::Duration::from_secs(s);
        let resync = Some(20_000.0);
        std::fs::write(&stat, line(100, 8000, 200)).unwrap();
        assert_eq!(
            sampler.rates(&sys, &key, None, resync, at(0)).await,
            Backing::Absent
        );
        let dev = Some("/dev/vg0/r0");
        assert_eq!(
            sampler.rates(&sys, &key, dev, resync, at(0)).await,
            Backing::Hold,
            "first sample"
        );
        // The file did not move in a second of resync: stale, held.
        assert_eq!(
            sampler.rates(&sys, &key, dev, resync, at(1)).await,
            Backing::Hold
        );
        // It moves: the delta covers both seconds.
        std::fs::write(&stat, line(300, 8000 + 2 * 40960, 600)).unwrap();
        let Backing::Rates(r) = sampler.rates(&sys, &key, dev, resync, at(2)).await else {
            panic!("rates expected");
        };
        assert_eq!(r.writes, 200);
        assert!((r.elapsed_ms - 2000.0).abs() < 1.0, "{r:?}");
        assert_eq!(r.write_latency_ms, Some(2.0));
        // A stale file forever is taken as it is after MAX_STALE_INTERVALS.
        let mut held = 0;
        for s in 3..3 + u64::from(MAX_STALE_INTERVALS) + 1 {
            match sampler.rates(&sys, &key, dev, resync, at(s)).await {
                Backing::Hold => held += 1,
                Backing::Rates(r) => assert_eq!(r.writes, 0),
                Backing::Absent => panic!("resolvable"),
            }
        }
        assert_eq!(held, MAX_STALE_INTERVALS);
        // A vanished stat file: hold (never "idle").
        std::fs::remove_file(&stat).unwrap();
        assert_eq!(
            sampler.rates(&sys, &key, dev, resync, at(20)).await,
            Backing::Hold
        );
    }

    #[test]
    fn replicated_writes_are_what_the_resync_did_not_write() {
        assert_eq!(replicated_write_kib(None, Some(100.0)), None);
        assert_eq!(
            replicated_write_kib(Some(&rates(30_000.0)), Some(10_000.0)),
            Some(20_000.0)
        );
        // Within the estimate's noise: none.
        assert_eq!(
            replicated_write_kib(Some(&rates(10_400.0)), Some(10_000.0)),
            Some(0.0)
        );
        assert_eq!(
            replicated_write_kib(Some(&rates(9_000.0)), Some(10_000.0)),
            Some(0.0)
        );
        // No resync rate known: all of it.
        assert_eq!(replicated_write_kib(Some(&rates(500.0)), None), Some(500.0));
        assert_eq!(
            replicated_write_kib(Some(&rates(500.0)), Some(f64::NAN)),
            Some(500.0)
        );
    }
}
