//! Runtime resync options of one peer device (`drbdsetup peer-device-options`):
//! parsing with units and ranges as drbdsetup checks them, and the
//! `show --json` spelling (strings with a unit suffix).

use thiserror::Error;

/// The six runtime resync options, in drbdsetup's own units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerDeviceOptions {
    /// KiB/s; used only when `c_plan_ahead` is 0.
    pub resync_rate: u64,
    /// 0.1 s; 0 = fixed rate.
    pub c_plan_ahead: u64,
    /// 0.1 s.
    pub c_delay_target: u64,
    /// 512-byte sectors.
    pub c_fill_target: u64,
    /// KiB/s; 0 = unlimited.
    pub c_max_rate: u64,
    /// KiB/s; 0 disables the activity throttle.
    pub c_min_rate: u64,
}

impl Default for PeerDeviceOptions {
    fn default() -> Self {
        Self {
            resync_rate: 250,
            c_plan_ahead: 20,
            c_delay_target: 10,
            c_fill_target: 100,
            c_max_rate: 102_400,
            c_min_rate: 250,
        }
    }
}

/// How an option's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// KiB/s, suffixes k, M, G.
    KibPerSec,
    /// Sectors, suffixes s, k, M, G.
    Sectors,
    /// A plain number (tenths of a second).
    Plain,
}

/// One option: its name, unit and accepted range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    pub name: &'static str,
    unit: Unit,
    pub min: u64,
    pub max: u64,
}

/// Every option, in `show --json` order.
pub const SPECS: &[OptionSpec] = &[
    OptionSpec {
        name: "resync-rate",
        unit: Unit::KibPerSec,
        min: 1,
        max: 8_388_608,
    },
    OptionSpec {
        name: "c-plan-ahead",
        unit: Unit::Plain,
        min: 0,
        max: 300,
    },
    OptionSpec {
        name: "c-delay-target",
        unit: Unit::Plain,
        min: 1,
        max: 100,
    },
    OptionSpec {
        name: "c-fill-target",
        unit: Unit::Sectors,
        min: 0,
        max: 1_048_576,
    },
    OptionSpec {
        name: "c-max-rate",
        unit: Unit::KibPerSec,
        min: 0,
        max: 4_194_304,
    },
    OptionSpec {
        name: "c-min-rate",
        unit: Unit::KibPerSec,
        min: 0,
        max: 4_194_304,
    },
];

/// A value drbdsetup would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OptionError {
    #[error("unknown option '{0}'")]
    UnknownOption(String),
    #[error("option '--{0}' needs a value")]
    MissingValue(String),
    #[error("{name}: invalid value '{value}': {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: &'static str,
    },
    #[error("{name}: value {value} out of range [{min}..{max}]")]
    OutOfRange {
        name: String,
        value: u64,
        min: u64,
        max: u64,
    },
}

fn spec(name: &str) -> Option<&'static OptionSpec> {
    SPECS.iter().find(|s| s.name == name)
}

impl OptionSpec {
    /// Parses a value with an optional unit suffix; no decimals, no sign.
    pub fn parse(&self, text: &str) -> Result<u64, OptionError> {
        let invalid = |reason| OptionError::Invalid {
            name: self.name.to_owned(),
            value: text.to_owned(),
            reason,
        };
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, suffix) = text.split_at(digits_end);
        if digits.is_empty() {
            return Err(invalid("not a number"));
        }
        let number: u64 = digits.parse().map_err(|_| invalid("number too large"))?;
        let factor: u64 = match (self.unit, suffix) {
            (_, "") => 1,
            (Unit::KibPerSec, "k" | "K") => 1,
            (Unit::KibPerSec, "m" | "M") => 1024,
            (Unit::KibPerSec, "g" | "G") => 1024 * 1024,
            (Unit::Sectors, "s") => 1,
            (Unit::Sectors, "k" | "K") => 2,
            (Unit::Sectors, "m" | "M") => 2 * 1024,
            (Unit::Sectors, "g" | "G") => 2 * 1024 * 1024,
            _ => return Err(invalid("unknown unit suffix")),
        };
        let value = number
            .checked_mul(factor)
            .ok_or_else(|| invalid("number too large"))?;
        if value < self.min || value > self.max {
            return Err(OptionError::OutOfRange {
                name: self.name.to_owned(),
                value,
                min: self.min,
                max: self.max,
            });
        }
        Ok(value)
    }

    /// The `show --json` spelling: `"102400k"`, `"100s"`, `"20"`.
    pub fn show(&self, value: u64) -> String {
        match self.unit {
            Unit::KibPerSec => format!("{value}k"),
            Unit::Sectors => format!("{value}s"),
            Unit::Plain => value.to_string(),
        }
    }
}

impl PeerDeviceOptions {
    fn slot(&mut self, name: &str) -> Option<&mut u64> {
        Some(match name {
            "resync-rate" => &mut self.resync_rate,
            "c-plan-ahead" => &mut self.c_plan_ahead,
            "c-delay-target" => &mut self.c_delay_target,
            "c-fill-target" => &mut self.c_fill_target,
            "c-max-rate" => &mut self.c_max_rate,
            "c-min-rate" => &mut self.c_min_rate,
            _ => return None,
        })
    }

    /// The value of an option by name.
    pub fn get(&self, name: &str) -> Option<u64> {
        let mut copy = *self;
        copy.slot(name).map(|v| *v)
    }

    /// Sets one option from text, checking unit and range.
    pub fn set(&mut self, name: &str, text: &str) -> Result<(), OptionError> {
        let spec = spec(name).ok_or_else(|| OptionError::UnknownOption(name.to_owned()))?;
        let value = spec.parse(text)?;
        // `spec` found the name, so the slot exists.
        if let Some(slot) = self.slot(name) {
            *slot = value;
        }
        Ok(())
    }

    /// `(name, show string)` for every option, in `show --json` order.
    pub fn show_pairs(&self) -> Vec<(&'static str, String)> {
        SPECS
            .iter()
            .map(|s| (s.name, s.show(self.get(s.name).unwrap_or_default())))
            .collect()
    }

    /// The resync rate the kernel would aim at, KiB/s, given what the
    /// network and disks allow (`capacity`, KiB/s): the fixed rate when
    /// the controller is off, else `c-max-rate` (0 = unlimited).
    pub fn effective_rate(&self, capacity: u64) -> u64 {
        if self.c_plan_ahead == 0 {
            self.resync_rate.min(capacity)
        } else if self.c_max_rate == 0 {
            capacity
        } else {
            self.c_max_rate.min(capacity)
        }
    }
}

/// A parsed option list: `--name=value`, `--name value`, `--set-defaults`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptionChange {
    pub set_defaults: bool,
    /// Options in command-line order (already validated).
    pub values: Vec<(&'static str, u64)>,
}

impl OptionChange {
    /// Parses the option arguments of `peer-device-options`.
    pub fn parse(args: &[String]) -> Result<Self, OptionError> {
        let mut change = OptionChange::default();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let Some(body) = arg.strip_prefix("--") else {
                return Err(OptionError::UnknownOption(arg.clone()));
            };
            if body == "set-defaults" {
                change.set_defaults = true;
                continue;
            }
            let (name, value) = match body.split_once('=') {
                Some((name, value)) => (name, value.to_owned()),
                None => {
                    let value = iter
                        .next()
                        .ok_or_else(|| OptionError::MissingValue(body.to_owned()))?;
                    (body, value.clone())
                }
            };
            let spec = spec(name).ok_or_else(|| OptionError::UnknownOption(arg.clone()))?;
            change.values.push((spec.name, spec.parse(&value)?));
        }
        Ok(change)
    }

    /// The options after this change: the given ones replace the current
    /// values; with `--set-defaults` all others return to their defaults.
    pub fn apply(&self, current: &PeerDeviceOptions) -> PeerDeviceOptions {
        let mut next = if self.set_defaults {
            PeerDeviceOptions::default()
        } else {
            *current
        };
        for (name, value) in &self.values {
            if let Some(slot) = next.slot(name) {
                *slot = *value;
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn rates_accept_unit_suffixes() {
        let change = OptionChange::parse(&args(&[
            "--c-max-rate=100M",
            "--c-min-rate",
            "2G",
            "--resync-rate=300k",
        ]))
        .unwrap();
        assert_eq!(
            change.values,
            vec![
                ("c-max-rate", 102_400),
                ("c-min-rate", 2 * 1024 * 1024),
                ("resync-rate", 300)
            ]
        );
    }

    #[test]
    fn fill_target_is_sectors() {
        let change =
            OptionChange::parse(&args(&["--c-fill-target=100s", "--c-plan-ahead=0"])).unwrap();
        assert_eq!(
            change.values,
            vec![("c-fill-target", 100), ("c-plan-ahead", 0)]
        );
        assert_eq!(
            OptionChange::parse(&args(&["--c-fill-target=1k"]))
                .unwrap()
                .values,
            vec![("c-fill-target", 2)]
        );
    }

    #[test]
    fn bad_numbers_are_refused() {
        for bad in [
            "--c-max-rate=1.5M",
            "--c-max-rate=-1",
            "--c-max-rate=abc",
            "--c-max-rate=",
            "--c-max-rate=10x",
            "--c-plan-ahead=5k",
            "--c-max-rate=99999999999999999999999",
        ] {
            let err = OptionChange::parse(&args(&[bad])).unwrap_err();
            assert!(matches!(err, OptionError::Invalid { .. }), "{bad}: {err:?}");
        }
    }

    #[test]
    fn out_of_range_is_refused() {
        let err = OptionChange::parse(&args(&["--c-max-rate=5G"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "c-max-rate: value 5242880 out of range [0..4194304]"
        );
        assert!(OptionChange::parse(&args(&["--resync-rate=0"])).is_err());
        assert!(OptionChange::parse(&args(&["--c-delay-target=0"])).is_err());
        assert!(OptionChange::parse(&args(&["--c-plan-ahead=301"])).is_err());
        assert!(OptionChange::parse(&args(&["--c-plan-ahead=300"])).is_ok());
    }

    #[test]
    fn unknown_and_missing() {
        assert_eq!(
            OptionChange::parse(&args(&["--c-foo=1"])).unwrap_err(),
            OptionError::UnknownOption("--c-foo=1".into())
        );
        assert_eq!(
            OptionChange::parse(&args(&["--c-max-rate"])).unwrap_err(),
            OptionError::MissingValue("c-max-rate".into())
        );
        assert!(OptionChange::parse(&args(&["c-max-rate=1"])).is_err());
    }

    #[test]
    fn apply_keeps_or_resets_others() {
        let current = PeerDeviceOptions {
            c_min_rate: 0,
            ..PeerDeviceOptions::default()
        };
        let change = OptionChange::parse(&args(&["--c-max-rate=4096"])).unwrap();
        let next = change.apply(&current);
        assert_eq!(next.c_max_rate, 4096);
        assert_eq!(next.c_min_rate, 0);
        let reset = OptionChange::parse(&args(&["--set-defaults", "--c-max-rate=4096"])).unwrap();
        let next = reset.apply(&current);
        assert_eq!(next.c_max_rate, 4096);
        assert_eq!(next.c_min_rate, 250);
    }

    #[test]
    fn show_strings_have_units() {
        let pairs = PeerDeviceOptions::default().show_pairs();
        assert_eq!(
            pairs,
            vec![
                ("resync-rate", "250k".to_owned()),
                ("c-plan-ahead", "20".to_owned()),
                ("c-delay-target", "10".to_owned()),
                ("c-fill-target", "100s".to_owned()),
                ("c-max-rate", "102400k".to_owned()),
                ("c-min-rate", "250k".to_owned()),
            ]
        );
    }

    #[test]
    fn effective_rate_follows_the_controller_mode() {
        let mut o = PeerDeviceOptions::default();
        assert_eq!(o.effective_rate(1_000_000), 102_400);
        assert_eq!(o.effective_rate(50_000), 50_000);
        o.c_max_rate = 0;
        assert_eq!(o.effective_rate(50_000), 50_000);
        o.c_plan_ahead = 0;
        assert_eq!(o.effective_rate(50_000), 250);
    }
}
