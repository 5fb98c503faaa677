//! Rates as written in the configuration: `"250KiB/s"`, `"40MiB/s"`, `"1G"`.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A resync rate in KiB/s, always ≥ 1: DRBD reads a `c-max-rate` of 0 as
/// "unlimited", so 0 is not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KibPerSec(u64);

impl KibPerSec {
    /// The largest rate accepted (DRBD's own limit for c-max-rate is 4 GiB/s).
    pub const MAX: KibPerSec = KibPerSec(drbd_model::units::RATE_MAX_KIB);
    /// The smallest rate.
    pub const MIN: KibPerSec = KibPerSec(1);

    /// `None` for 0; values above [`Self::MAX`] are capped.
    pub fn new(kib: u64) -> Option<Self> {
        (kib > 0).then_some(Self(kib.min(Self::MAX.0)))
    }

    /// Rounds and clamps any float into `[MIN, MAX]` (NaN gives MIN).
    pub fn saturating_from_f64(kib: f64) -> Self {
        if kib.is_nan() || kib < 1.0 {
            Self::MIN
        } else if kib >= Self::MAX.0 as f64 {
            Self::MAX
        } else {
            // In range [1, MAX] by the checks above.
            Self(kib.round() as u64)
        }
    }

    pub fn get(self) -> u64 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64
    }
}

impl fmt::Display for KibPerSec {
    /// The largest binary unit that keeps the value exact: `40MiB/s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v % (1024 * 1024) == 0 {
            write!(f, "{}GiB/s", v / (1024 * 1024))
        } else if v % 1024 == 0 {
            write!(f, "{}MiB/s", v / 1024)
        } else {
            write!(f, "{v}KiB/s")
        }
    }
}

// The grammar and its errors: drbd-model's `units`, one for every file.
pub use drbd_model::units::RateError;

/// Parses `<number><unit>[/s]`: unit `KiB`, `MiB`, `GiB` or the short
/// `K`, `M`, `G` (any case, binary as in drbdsetup). A decimal number is fine
/// if the result is a whole number of KiB/s (`"1.5MiB/s"` = 1536 KiB/s).
pub fn parse_rate(text: &str) -> Result<KibPerSec, RateError> {
    let kib = drbd_model::units::parse_rate(text)?;
    KibPerSec::new(kib).ok_or_else(|| RateError::Zero(text.to_owned()))
}

impl<'de> Deserialize<'de> for KibPerSec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RateVisitor;
        impl Visitor<'_> for RateVisitor {
            type Value = KibPerSec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rate string such as \"250KiB/s\" or \"40MiB/s\"")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<KibPerSec, E> {
                parse_rate(value).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(RateVisitor)
    }
}

impl Serialize for KibPerSec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kib(text: &str) -> u64 {
        parse_rate(text).unwrap().get()
    }

    #[test]
    fn units() {
        assert_eq!(kib("250KiB/s"), 250);
        assert_eq!(kib("40MiB/s"), 40 * 1024);
        assert_eq!(kib("1GiB/s"), 1024 * 1024);
        assert_eq!(kib("250K"), 250);
        assert_eq!(kib("250k"), 250);
        assert_eq!(kib("40M"), 40 * 1024);
        assert_eq!(kib("2G"), 2 * 1024 * 1024);
        assert_eq!(kib(" 40 MiB/s "), 40 * 1024);
        assert_eq!(kib("1.5MiB/s"), 1536);
        assert_eq!(kib("100M/s"), 102400);
    }

    #[test]
    fn rejects() {
        assert_eq!(parse_rate(" "), Err(RateError::Empty));
        assert!(matches!(parse_rate("250"), Err(RateError::NoUnit(_))));
        assert!(matches!(parse_rate("MiB/s"), Err(RateError::NoNumber(_))));
        assert!(matches!(parse_rate("-5M"), Err(RateError::NoNumber(_))));
        assert!(matches!(parse_rate("1.2.3M"), Err(RateError::NoNumber(_))));
        assert!(matches!(parse_rate(".5M"), Err(RateError::NoNumber(_))));
        assert!(matches!(parse_rate("0KiB/s"), Err(RateError::Zero(_))));
        assert!(matches!(parse_rate("0.5K"), Err(RateError::Fraction(_))));
        assert!(matches!(parse_rate("1.0001M"), Err(RateError::Fraction(_))));
        assert!(matches!(parse_rate("5G"), Err(RateError::TooLarge(_))));
        assert!(matches!(
            parse_rate("10MB/s"),
            Err(RateError::DecimalUnit { .. })
        ));
        let err = parse_rate("10 furlongs").unwrap_err();
        assert!(err.to_string().contains("\"furlongs\""), "{err}");
    }

    #[test]
    fn display_round_trips() {
        for text in ["250KiB/s", "40MiB/s", "1GiB/s", "1536KiB/s"] {
            let rate = parse_rate(text).unwrap();
            assert_eq!(rate.to_string(), text);
            assert_eq!(parse_rate(&rate.to_string()), Ok(rate));
        }
        assert_eq!(parse_rate("1.5M").unwrap().to_string(), "1536KiB/s");
    }

    #[test]
    fn never_zero() {
        assert_eq!(KibPerSec::new(0), None);
        assert_eq!(KibPerSec::saturating_from_f64(0.0), KibPerSec::MIN);
        assert_eq!(KibPerSec::saturating_from_f64(f64::NAN), KibPerSec::MIN);
        assert_eq!(KibPerSec::saturating_from_f64(-3.0), KibPerSec::MIN);
        assert_eq!(KibPerSec::saturating_from_f64(1e30), KibPerSec::MAX);
        assert_eq!(KibPerSec::saturating_from_f64(99.6).get(), 100);
    }
}
