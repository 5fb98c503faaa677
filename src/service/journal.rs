//! Is stderr connected to the journal? systemd sets `JOURNAL_STREAM` to the
//! `device:inode` of the stream it gave the service; if stderr is still that
//! stream, the journal adds timestamps itself and the log lines are plain.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

/// `JOURNAL_STREAM`'s `device:inode`, both decimal.
pub fn parse_journal_stream(text: &str) -> Option<(u64, u64)> {
    let (dev, ino) = text.trim().split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// True when `JOURNAL_STREAM` names the stream stderr is connected to.
pub fn stderr_is_journal() -> bool {
    let Some(expected) = std::env::var("JOURNAL_STREAM")
        .ok()
        .as_deref()
        .and_then(parse_journal_stream)
    else {
        return false;
    };
    let stderr = match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => std::fs::File::from(fd),
        Err(_) => return false,
    };
    match stderr.metadata() {
        Ok(meta) => (meta.dev(), meta.ino()) == expected,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_and_inode() {
        assert_eq!(parse_journal_stream("8:12345"), Some((8, 12345)));
        assert_eq!(parse_journal_stream(" 8:1\n"), Some((8, 1)));
        for bad in ["", "8", "8:", ":1", "a:1", "8:1:2", "-1:2"] {
            assert_eq!(parse_journal_stream(bad), None, "{bad:?}");
        }
    }
}
