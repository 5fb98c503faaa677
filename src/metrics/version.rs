//! Parsing `drbdadm --version` into the kernel module and drbd-utils versions.
//!
//! The output is `KEY=VALUE` lines, e.g. `DRBD_KERNEL_VERSION=9.2.16` and
//! `DRBDADM_VERSION=9.34.0`. `DRBD_KERNEL_VERSION=0` means the module is not
//! loaded.

/// The versions `drbd_version{kmod,utils}` reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DrbdVersions {
    /// The loaded kernel module's version; `None` when no module is loaded.
    pub kmod: Option<String>,
    /// drbd-utils' version (`drbdadm`).
    pub utils: String,
}

/// `drbdadm --version` printed something this parser does not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("drbdadm --version: no DRBDADM_VERSION line")]
    NoUtilsVersion,
    #[error("drbdadm --version line {line}: {key} has an empty or malformed value {value:?}")]
    BadValue {
        line: usize,
        key: &'static str,
        value: String,
    },
}

const KMOD_KEY: &str = "DRBD_KERNEL_VERSION";
const UTILS_KEY: &str = "DRBDADM_VERSION";

/// Parses the output of `drbdadm --version`. Unknown keys are ignored.
pub fn parse_drbdadm_version(text: &str) -> Result<DrbdVersions, VersionError> {
    let mut kmod = None;
    let mut utils = None;
    for (index, line) in text.lines().enumerate() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let key = match key {
            KMOD_KEY => KMOD_KEY,
            UTILS_KEY => UTILS_KEY,
            _ => continue,
        };
        let value = value.trim();
        if !is_version(value) {
            return Err(VersionError::BadValue {
                line: index + 1,
                key,
                value: value.to_owned(),
            });
        }
        if key == KMOD_KEY {
            kmod = (value != "0").then(|| value.to_owned());
        } else {
            utils = Some(value.to_owned());
        }
    }
    let utils = utils.ok_or(VersionError::NoUtilsVersion)?;
    Ok(DrbdVersions { kmod, utils })
}

/// Digits and dots, optionally a suffix such as `-rc.1`: what DRBD prints.
fn is_version(value: &str) -> bool {
    value.starts_with(|c: char| c.is_ascii_digit())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '~'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOADED: &str = "DRBDADM_BUILDTAG=GIT-hash:\\ abc\\ build\\,\\ 2024-01-01\n\
        DRBDADM_API_VERSION=2\n\
        DRBD_KERNEL_VERSION_CODE=0x090210\n\
        DRBD_KERNEL_VERSION=9.2.16\n\
        DRBDADM_VERSION_CODE=0x092200\n\
        DRBDADM_VERSION=9.34.0\n";

    const NOT_LOADED: &str = "DRBDADM_BUILDTAG=GIT-hash:\\ 409097fe02187f83790b88ac3e0d94f3c167adab\\ reproducible\\ build\\,\\ 2023-01-09\\ 14:51:18\n\
        DRBDADM_API_VERSION=2\n\
        DRBD_KERNEL_VERSION_CODE=0x000000\n\
        DRBD_KERNEL_VERSION=0\n\
        DRBDADM_VERSION_CODE=0x091600\n\
        DRBDADM_VERSION=9.22.0\n";

    #[test]
    fn loaded_module() {
        let versions = parse_drbdadm_version(LOADED).unwrap();
        assert_eq!(versions.kmod.as_deref(), Some("9.2.16"));
        assert_eq!(versions.utils, "9.34.0");
    }

    #[test]
    fn kernel_version_zero_means_not_loaded() {
        let versions = parse_drbdadm_version(NOT_LOADED).unwrap();
        assert_eq!(versions.kmod, None);
        assert_eq!(versions.utils, "9.22.0");
    }

    #[test]
    fn missing_kernel_line_is_not_loaded() {
        let versions = parse_drbdadm_version("DRBDADM_VERSION=9.17.0\n").unwrap();
        assert_eq!(versions.kmod, None);
        assert_eq!(versions.utils, "9.17.0");
    }

    #[test]
    fn missing_utils_version_is_an_error() {
        assert_eq!(
            parse_drbdadm_version("DRBD_KERNEL_VERSION=9.2.16\n"),
            Err(VersionError::NoUtilsVersion)
        );
        assert_eq!(parse_drbdadm_version(""), Err(VersionError::NoUtilsVersion));
    }

    #[test]
    fn malformed_value_names_line_and_key() {
        let error = parse_drbdadm_version("DRBD_KERNEL_VERSION=9.2.16\nDRBDADM_VERSION=\"x\"\n")
            .unwrap_err();
        assert_eq!(
            error,
            VersionError::BadValue {
                line: 2,
                key: "DRBDADM_VERSION",
                value: "\"x\"".to_owned()
            }
        );
        assert!(error.to_string().contains("line 2"), "{error}");
    }

    #[test]
    fn code_keys_are_not_confused_with_versions() {
        let versions =
            parse_drbdadm_version("DRBDADM_VERSION_CODE=0x091600\nDRBDADM_VERSION=9.22.0-rc.1\n")
                .unwrap();
        assert_eq!(versions.utils, "9.22.0-rc.1");
    }
}
