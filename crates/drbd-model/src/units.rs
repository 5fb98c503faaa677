//! Quantities with a unit, as every file the agent and the simulator read
//! writes them: durations (`500ms`, `1.5s`, `2m`), sizes in KiB (`512M`,
//! `10G`, a bare number of KiB as drbdsetup prints them) and rates in KiB/s
//! (`250KiB/s`, `40MiB/s`, `1G`).
//!
//! One grammar for all of them: optional blanks, a number (digits, at most
//! one `.` with digits on both sides; no sign), optional blanks, a unit,
//! optional blanks. Sizes and rates are binary, as in drbdsetup (`M` is
//! 1024 KiB). Parsed once, here; what a caller adds (a duration must not be
//! zero, a rate must fit DRBD's limit) is a check on the typed value.

use std::time::Duration;

/// Splits `text` into its number and its unit (both trimmed), or `None`
/// when it does not start with a number.
fn split_text(text: &str) -> Option<(&str, &str)> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let well_formed = !number.is_empty()
        && !number.starts_with('.')
        && !number.ends_with('.')
        && number.matches('.').count() <= 1;
    well_formed.then_some((number, unit.trim()))
}

/// The number of a quantity and its unit text (trimmed, possibly empty):
/// `"12.5 MiB/s"` → (12.5, `"MiB/s"`); `None` when the text does not start
/// with a number of the grammar. For keys whose units are their own (the
/// simulator's counts, a bare number in a default unit).
pub fn split(text: &str) -> Option<(f64, &str)> {
    let (number, unit) = split_text(text)?;
    Some((number.parse().ok()?, unit))
}

/// Why a duration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("duration {0:?} has no number (write e.g. \"10s\", \"500ms\", \"2m\")")]
    NoNumber(String),
    #[error("duration {0:?} has no unit (one of us, ms, s, m, h)")]
    NoUnit(String),
    #[error("duration {text:?} has unknown unit {unit:?} (one of us, ms, s, m, h)")]
    BadUnit { text: String, unit: String },
    #[error("duration {0:?} is too large")]
    Overflow(String),
    #[error("duration {0:?} must be greater than zero")]
    Zero(String),
}

/// The largest duration accepted: about 31 years.
const MAX_DURATION_SECS: u64 = 1_000_000_000;

/// `<number><unit>`, unit `us`, `ms`, `s`, `m` or `h`; `1.5s` is 1500 ms,
/// rounded to the microsecond. Zero is a duration (a scenario's `at =
/// "0s"`); [`parse_positive_duration`] is for intervals.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text.trim().is_empty() {
        return Err(DurationError::Empty);
    }
    let (number, unit) =
        split_text(text).ok_or_else(|| DurationError::NoNumber(text.to_owned()))?;
    let micros_per_unit: u64 = match unit {
        "" => return Err(DurationError::NoUnit(text.to_owned())),
        "us" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        other => {
            return Err(DurationError::BadUnit {
                text: text.to_owned(),
                unit: other.to_owned(),
            })
        }
    };
    let overflow = || DurationError::Overflow(text.to_owned());
    let micros = match number.split_once('.') {
        // Whole numbers exactly, in integers.
        None => number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(micros_per_unit))
            .ok_or_else(overflow)?,
        // ≥ 0 (no sign in the grammar); `as` saturates a huge or infinite
        // value at u64::MAX, which the bound below refuses.
        Some(_) => {
            let value: f64 = number.parse().map_err(|_| overflow())?;
            (value * micros_per_unit as f64).round() as u64
        }
    };
    if micros > MAX_DURATION_SECS * 1_000_000 {
        return Err(overflow());
    }
    Ok(Duration::from_micros(micros))
}

/// [`parse_duration`], and zero rejected: every configured interval drives
/// a loop.
pub fn parse_positive_duration(text: &str) -> Result<Duration, DurationError> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(DurationError::Zero(text.to_owned()));
    }
    Ok(duration)
}

/// Prints a duration in the largest unit that keeps it exact (to the
/// millisecond): `5m`, `90s`, `1500ms`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis % 3_600_000 == 0 && millis > 0 {
        format!("{}h", millis / 3_600_000)
    } else if millis % 60_000 == 0 && millis > 0 {
        format!("{}m", millis / 60_000)
    } else if millis % 1_000 == 0 && millis > 0 {
        format!("{}s", millis / 1_000)
    } else {
        format!("{millis}ms")
    }
}

/// Why a size was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("{0:?} is not a size (like 1048576, 512M, 10G)")]
    NoNumber(String),
    #[error("{0:?} is not a whole number of KiB")]
    Fraction(String),
    #[error("{text:?}: unknown unit {unit:?} (k, M, G or T; a bare number is KiB)")]
    BadUnit { text: String, unit: String },
    #[error("{0:?} is too large")]
    Overflow(String),
}

/// A size in KiB: a whole number, bare (KiB, as drbdsetup prints sizes)
/// or with `k`, `M`, `G`, `T` (binary, any case).
pub fn parse_kib(text: &str) -> Result<u64, SizeError> {
    let (number, unit) = split_text(text).ok_or_else(|| SizeError::NoNumber(text.to_owned()))?;
    let factor: u64 = match unit {
        "" | "k" | "K" => 1,
        "m" | "M" => 1 << 10,
        "g" | "G" => 1 << 20,
        "t" | "T" => 1 << 30,
        other => {
            return Err(SizeError::BadUnit {
                text: text.to_owned(),
                unit: other.to_owned(),
            })
        }
    };
    if number.contains('.') {
        return Err(SizeError::Fraction(text.to_owned()));
    }
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| SizeError::Overflow(text.to_owned()))
}

/// Why a rate was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("empty rate")]
    Empty,
    #[error("rate {0:?} has no number (write e.g. \"250KiB/s\", \"40MiB/s\")")]
    NoNumber(String),
    #[error("rate {0:?} has no unit (one of KiB/s, MiB/s, GiB/s or K, M, G)")]
    NoUnit(String),
    #[error("rate {text:?}: unknown unit {unit:?} (one of KiB/s, MiB/s, GiB/s or K, M, G)")]
    BadUnit { text: String, unit: String },
    #[error("rate {text:?}: {unit:?} is a decimal unit; DRBD rates are binary, write KiB/MiB/GiB")]
    DecimalUnit { text: String, unit: String },
    #[error("rate {0:?} must be greater than zero (DRBD reads 0 as unlimited)")]
    Zero(String),
    #[error("rate {0:?} is not a whole number of KiB/s")]
    Fraction(String),
    #[error("rate {0:?} is above the maximum of 4GiB/s")]
    TooLarge(String),
}

/// DRBD's own limit for c-max-rate: 4 GiB/s, in KiB/s.
pub const RATE_MAX_KIB: u64 = 4 * 1024 * 1024;

/// A rate in KiB/s as written, any non-negative value: `<number><unit>[/s]`
/// with unit `KiB`, `MiB`, `GiB` or the short `K`, `M`, `G` (any case,
/// binary); `/sec` is read as `/s`. The simulator's plant takes fractional
/// and zero rates; [`parse_rate`] is DRBD's.
pub fn rate_kib_s(text: &str) -> Result<f64, RateError> {
    if text.trim().is_empty() {
        return Err(RateError::Empty);
    }
    let (number, unit) = split_text(text).ok_or_else(|| RateError::NoNumber(text.to_owned()))?;
    let value: f64 = number
        .parse()
        .map_err(|_| RateError::NoNumber(text.to_owned()))?;
    let bare = unit
        .strip_suffix("/s")
        .or_else(|| unit.strip_suffix("/sec"))
        .unwrap_or(unit)
        .trim();
    let kib_per_unit: f64 = match bare {
        "" => return Err(RateError::NoUnit(text.to_owned())),
        "K" | "k" | "KiB" | "kiB" | "Ki" => 1.0,
        "M" | "m" | "MiB" | "Mi" => 1024.0,
        "G" | "g" | "GiB" | "Gi" => 1024.0 * 1024.0,
        "KB" | "kB" | "kb" | "MB" | "mB" | "mb" | "GB" | "gB" | "gb" => {
            return Err(RateError::DecimalUnit {
                text: text.to_owned(),
                unit: bare.to_owned(),
            })
        }
        other => {
            return Err(RateError::BadUnit {
                text: text.to_owned(),
                unit: other.to_owned(),
            })
        }
    };
    Ok(value * kib_per_unit)
}

/// A rate DRBD can be given, in whole KiB/s from 1 to [`RATE_MAX_KIB`]: a
/// decimal number is fine if the result is whole (`"1.5MiB/s"` = 1536
/// KiB/s); zero is refused (DRBD reads a c-max-rate of 0 as unlimited).
pub fn parse_rate(text: &str) -> Result<u64, RateError> {
    let kib = rate_kib_s(text)?;
    if kib == 0.0 {
        return Err(RateError::Zero(text.to_owned()));
    }
    if kib > RATE_MAX_KIB as f64 {
        return Err(RateError::TooLarge(text.to_owned()));
    }
    if (kib - kib.round()).abs() > 1e-6 || kib < 1.0 {
        return Err(RateError::Fraction(text.to_owned()));
    }
    // Whole and within [1, RATE_MAX_KIB] by the checks above.
    Ok(kib.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration(" 3 s "), Ok(ms(3_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("10"),
            Err(DurationError::NoUnit(_))
        ));
        assert!(matches!(
            parse_duration("s"),
            Err(DurationError::NoNumber(_))
        ));
        assert!(matches!(
            parse_duration("-1s"),
            Err(DurationError::NoNumber(_))
        ));
        assert!(matches!(
            parse_duration(".5s"),
            Err(DurationError::NoNumber(_))
        ));
        assert!(matches!(
            parse_duration("1.2.3s"),
            Err(DurationError::NoNumber(_))
        ));
        assert!(matches!(
            parse_duration("10x"),
            Err(DurationError::BadUnit { .. })
        ));
        for huge in [
            "99999999999999999999s",
            "1e400s",
            "99999999999h",
            "9999999999.5h",
        ] {
            assert!(
                matches!(
                    parse_duration(huge),
                    Err(DurationError::Overflow(_)) | Err(DurationError::BadUnit { .. })
                ),
                "{huge}"
            );
        }
        assert!(matches!(
            parse_positive_duration("0ms"),
            Err(DurationError::Zero(_))
        ));
        assert!(matches!(
            parse_positive_duration("0.0001us"),
            Err(DurationError::Zero(_))
        ));
        assert_eq!(parse_positive_duration("1ms"), Ok(ms(1)));
    }

    #[test]
    fn formats_round_trip() {
        for text in ["5m", "90s", "1500ms", "2h", "0ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn splits() {
        assert_eq!(split(" 12.5 MiB/s "), Some((12.5, "MiB/s")));
        assert_eq!(split("20k"), Some((20.0, "k")));
        assert_eq!(split("7"), Some((7.0, "")));
        for bad in ["", "MiB", "-1", ".5", "1.", "1.2.3"] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_kib("102400k"), Ok(102_400));
        assert_eq!(parse_kib("250K"), Ok(250));
        assert_eq!(parse_kib("40M"), Ok(40 * 1024));
        assert_eq!(parse_kib("40m"), Ok(40 * 1024));
        assert_eq!(parse_kib("1G"), Ok(1024 * 1024));
        assert_eq!(parse_kib("2T"), Ok(2 << 30));
        assert_eq!(parse_kib(" 77 "), Ok(77));
        assert_eq!(parse_kib("0"), Ok(0));
        assert!(matches!(parse_kib(""), Err(SizeError::NoNumber(_))));
        assert!(matches!(parse_kib("k"), Err(SizeError::NoNumber(_))));
        assert!(matches!(parse_kib("-1M"), Err(SizeError::NoNumber(_))));
        assert!(matches!(parse_kib("1.5G"), Err(SizeError::Fraction(_))));
        assert!(matches!(parse_kib("5X"), Err(SizeError::BadUnit { .. })));
        assert!(matches!(
            parse_kib("99999999999999T"),
            Err(SizeError::Overflow(_))
        ));
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("250KiB/s"), Ok(250));
        assert_eq!(parse_rate("40MiB/s"), Ok(40 * 1024));
        assert_eq!(parse_rate("1G"), Ok(1024 * 1024));
        assert_eq!(parse_rate("1.5 MiB/sec"), Ok(1536));
        assert_eq!(parse_rate("4GiB/s"), Ok(RATE_MAX_KIB));
        assert_eq!(parse_rate(" "), Err(RateError::Empty));
        assert!(matches!(parse_rate("250"), Err(RateError::NoUnit(_))));
        assert!(matches!(parse_rate("MiB/s"), Err(RateError::NoNumber(_))));
        assert!(matches!(parse_rate("-5M"), Err(RateError::NoNumber(_))));
        assert!(matches!(parse_rate("0KiB/s"), Err(RateError::Zero(_))));
        assert!(matches!(parse_rate("0.5K"), Err(RateError::Fraction(_))));
        assert!(matches!(
            parse_rate("5MB/s"),
            Err(RateError::DecimalUnit { .. })
        ));
        assert!(matches!(parse_rate("5X"), Err(RateError::BadUnit { .. })));
        assert!(matches!(parse_rate("5GiB/s"), Err(RateError::TooLarge(_))));
        assert_eq!(rate_kib_s("0.5K"), Ok(0.5));
        assert_eq!(rate_kib_s("0MiB/s"), Ok(0.0));
    }
}
