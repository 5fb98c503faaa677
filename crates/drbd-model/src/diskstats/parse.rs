//! Parsing one `stat` line.

/// The kernel's names for the 17 fields, in file order (stat.rst).
pub const FIELD_NAMES: [&str; 17] = [
    "read I/Os",
    "read merges",
    "read sectors",
    "read ticks",
    "write I/Os",
    "write merges",
    "write sectors",
    "write ticks",
    "in_flight",
    "io_ticks",
    "time_in_queue",
    "discard I/Os",
    "discard merges",
    "discard sectors",
    "discard ticks",
    "flush I/Os",
    "flush ticks",
];

/// One sample of a device's counters. Times are milliseconds, sizes 512-byte
/// sectors. All fields except `in_flight` only grow while the device exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskStat {
    pub reads: u64,
    pub reads_merged: u64,
    pub sectors_read: u64,
    pub ms_reading: u64,
    pub writes: u64,
    pub writes_merged: u64,
    pub sectors_written: u64,
    pub ms_writing: u64,
    /// Requests in flight now (a gauge, not a counter).
    pub in_flight: u64,
    /// Milliseconds the device had I/O in flight.
    pub io_ticks: u64,
    /// Weighted milliseconds: Σ over time of the number in flight.
    pub weighted_ms: u64,
    /// Fields 12–15 (`None` on kernels older than 4.18).
    pub discard: Option<DiscardStat>,
    /// Fields 16–17 (`None` on kernels older than 5.5).
    pub flush: Option<FlushStat>,
}

/// The discard counters (fields 12–15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiscardStat {
    pub discards: u64,
    pub discards_merged: u64,
    pub sectors_discarded: u64,
    pub ms_discarding: u64,
}

/// The flush counters (fields 16–17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushStat {
    pub flushes: u64,
    pub ms_flushing: u64,
}

/// Why a `stat` line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatError {
    #[error("empty stat line")]
    Empty,
    #[error("stat line has {found} fields, expected 11, 15 or 17")]
    FieldCount { found: usize },
    /// `field` is 1-based, as in stat.rst.
    #[error("stat field {field} ({name}): {text:?} is not a non-negative integer")]
    BadField {
        field: usize,
        name: &'static str,
        text: String,
    },
}

/// Parses the line of `/sys/block/<dev>/stat` (surrounding white space and
/// the trailing newline are fine). Never panics.
pub fn parse_stat(line: &str) -> Result<DiskStat, StatError> {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    if words.is_empty() {
        return Err(StatError::Empty);
    }
    if !matches!(words.len(), 11 | 15 | 17) {
        return Err(StatError::FieldCount { found: words.len() });
    }
    let mut values = [0u64; 17];
    for (index, (word, slot)) in words.iter().zip(values.iter_mut()).enumerate() {
        *slot = parse_field(index, word)?;
    }
    let [reads, reads_merged, sectors_read, ms_reading, writes, writes_merged, sectors_written, ms_writing, in_flight, io_ticks, weighted_ms, discards, discards_merged, sectors_discarded, ms_discarding, flushes, ms_flushing] =
        values;
    Ok(DiskStat {
        reads,
        reads_merged,
        sectors_read,
        ms_reading,
        writes,
        writes_merged,
        sectors_written,
        ms_writing,
        in_flight,
        io_ticks,
        weighted_ms,
        discard: (words.len() >= 15).then_some(DiscardStat {
            discards,
            discards_merged,
            sectors_discarded,
            ms_discarding,
        }),
        flush: (words.len() == 17).then_some(FlushStat {
            flushes,
            ms_flushing,
        }),
    })
}

fn parse_field(index: usize, word: &str) -> Result<u64, StatError> {
    // `u64::from_str` accepts a leading '+'; the kernel never writes one.
    let digits_only = word.bytes().all(|b| b.is_ascii_digit());
    match word.parse::<u64>() {
        Ok(value) if digits_only => Ok(value),
        _ => Err(StatError::BadField {
            field: index + 1,
            name: FIELD_NAMES.get(index).copied().unwrap_or("?"),
            text: word.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE_17: &str = "    1200       10    96000      600     5000       20   640000     2500        3     2800     3100        7        0       56        1       40       12\n";

    #[test]
    fn seventeen_fields() {
        let stat = parse_stat(LINE_17).unwrap();
        assert_eq!(stat.reads, 1200);
        assert_eq!(stat.sectors_read, 96000);
        assert_eq!(stat.writes, 5000);
        assert_eq!(stat.sectors_written, 640000);
        assert_eq!(stat.ms_writing, 2500);
        assert_eq!(stat.in_flight, 3);
        assert_eq!(stat.io_ticks, 2800);
        assert_eq!(stat.weighted_ms, 3100);
        assert_eq!(stat.discard.unwrap().sectors_discarded, 56);
        assert_eq!(stat.flush.unwrap().flushes, 40);
        assert_eq!(stat.flush.unwrap().ms_flushing, 12);
    }

    #[test]
    fn eleven_and_fifteen_fields() {
        let eleven = parse_stat("1 2 3 4 5 6 7 8 9 10 11").unwrap();
        assert_eq!(eleven.weighted_ms, 11);
        assert_eq!(eleven.discard, None);
        assert_eq!(eleven.flush, None);
        let fifteen = parse_stat("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15").unwrap();
        assert_eq!(fifteen.discard.unwrap().ms_discarding, 15);
        assert_eq!(fifteen.flush, None);
    }

    #[test]
    fn rejects_with_the_field_named() {
        assert_eq!(parse_stat("  \n"), Err(StatError::Empty));
        assert_eq!(parse_stat("1 2 3"), Err(StatError::FieldCount { found: 3 }));
        assert_eq!(
            parse_stat("1 2 3 4 5 6 7 x 9 10 11"),
            Err(StatError::BadField {
                field: 8,
                name: "write ticks",
                text: "x".into()
            })
        );
        let err = parse_stat("1 2 3 4 -5 6 7 8 9 10 11").unwrap_err();
        assert!(err.to_string().contains("field 5 (write I/Os)"), "{err}");
        assert!(matches!(
            parse_stat("1 2 3 4 5 6 7 8 9 10 +11"),
            Err(StatError::BadField { field: 11, .. })
        ));
        assert!(matches!(
            parse_stat("1 2 3 4 5 6 7 8 9 10 99999999999999999999999"),
            Err(StatError::BadField { field: 11, .. })
        ));
    }
}
