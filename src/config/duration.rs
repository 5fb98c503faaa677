//! Human duration strings: `500ms`, `10s`, `2m`, `1h`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A duration written with a unit, as in the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("duration {0:?} has no number (write e.g. \"10s\", \"500ms\", \"2m\")")]
    NoNumber(String),
    #[error("duration {0:?} has no unit (one of ms, s, m, h)")]
    NoUnit(String),
    #[error("duration {text:?} has unknown unit {unit:?} (one of ms, s, m, h)")]
    BadUnit { text: String, unit: String },
    #[error("duration {0:?} is too large")]
    Overflow(String),
    #[error("duration {0:?} must be greater than zero")]
    Zero(String),
}

/// Parses `<digits><unit>` with unit `ms`, `s`, `m` or `h`. Zero is rejected:
/// every configured interval drives a loop.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    if digits.is_empty() {
        return Err(DurationError::NoNumber(text.to_owned()));
    }
    let value: u64 = digits
        .parse()
        .map_err(|_| DurationError::Overflow(text.to_owned()))?;
    let millis_per_unit: u64 = match unit.trim() {
        "" => return Err(DurationError::NoUnit(text.to_owned())),
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        other => {
            return Err(DurationError::BadUnit {
                text: text.to_owned(),
                unit: other.to_owned(),
            })
        }
    };
    let millis = value
        .checked_mul(millis_per_unit)
        .ok_or_else(|| DurationError::Overflow(text.to_owned()))?;
    if millis == 0 {
        return Err(DurationError::Zero(text.to_owned()));
    }
    Ok(Duration::from_millis(millis))
}

/// Prints a duration in the largest unit that keeps it exact.
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

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"10s\", \"500ms\" or \"2m\"")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<HumanDuration, E> {
                parse_duration(value).map(HumanDuration).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(" 3s "), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn rejects() {
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
            parse_duration("10x"),
            Err(DurationError::BadUnit { .. })
        ));
        assert!(matches!(parse_duration("0s"), Err(DurationError::Zero(_))));
        assert!(matches!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            parse_duration("-1s"),
            Err(DurationError::NoNumber(_))
        ));
    }

    #[test]
    fn formats() {
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
    }
}
