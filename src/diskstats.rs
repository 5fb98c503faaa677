//! Block device counters: the pure parsing and rate derivation of
//! drbd-model, and the one reader of `/sys/block/<dev>/stat` files that
//! the throttle (DRBD and backing devices) and the pressure sampler share.

use std::path::{Path, PathBuf};

pub use drbd_model::diskstats::*;

/// Why a stat file gave no sample.
#[derive(Debug, thiserror::Error)]
pub enum StatFileError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parse { path: PathBuf, source: StatError },
}

impl StatFileError {
    /// The file is not there (a device that does not exist, or not yet): not
    /// worth a warning where devices come and go.
    pub fn is_missing(&self) -> bool {
        matches!(self, StatFileError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Reads and parses one diskstats `stat` file.
pub async fn read_stat_file(path: &Path) -> Result<DiskStat, StatFileError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| StatFileError::Read {
            path: path.to_owned(),
            source,
        })?;
    parse_stat(&text).map_err(|source| StatFileError::Parse {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_parses_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("stat");
        std::fs::write(&good, "  100 0 800 5 200 0 1600 9 0 12 14\n").unwrap();
        let stat = read_stat_file(&good).await.unwrap();
        assert_eq!(
            stat,
            parse_stat("100 0 800 5 200 0 1600 9 0 12 14").unwrap()
        );

        let bad = dir.path().join("bad");
        std::fs::write(&bad, "1 2 x\n").unwrap();
        let e = read_stat_file(&bad).await.unwrap_err();
        assert!(
            matches!(e, StatFileError::Parse { .. }) && !e.is_missing(),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with(&format!("{}: ", bad.display())),
            "{e}"
        );

        let missing = dir.path().join("missing");
        let e = read_stat_file(&missing).await.unwrap_err();
        assert!(e.is_missing(), "{e:?}");
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
