//! The controller's answer to a write: a list of ApiCallRc entries.
//!
//! `ret_code` is a signed 64-bit mask. ERROR is `0xC000…`, which contains
//! the WARN bit `0x8000…`: test ERROR first. INFO is `0x4000…`. The low 15
//! bits are the code (e.g. 300 node not found, 995 not connected).

use std::fmt;

use serde::Deserialize;

const MASK_ERROR: u64 = 0xC000_0000_0000_0000;
const MASK_WARN: u64 = 0x8000_0000_0000_0000;
const MASK_INFO: u64 = 0x4000_0000_0000_0000;
const MASK_CODE: u64 = 0x7FFF;

/// One entry (fields the agent uses; others are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct ApiCallRc {
    pub ret_code: i64,
    pub message: String,
    pub cause: Option<String>,
    pub details: Option<String>,
    pub correction: Option<String>,
    pub error_report_ids: Vec<String>,
}

/// How bad an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Success,
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Success => "success",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

impl ApiCallRc {
    fn bits(&self) -> u64 {
        // The mask is defined on the two's complement bits.
        self.ret_code as u64
    }

    pub fn severity(&self) -> Severity {
        let bits = self.bits();
        if bits & MASK_ERROR == MASK_ERROR {
            Severity::Error
        } else if bits & MASK_WARN == MASK_WARN {
            Severity::Warning
        } else if bits & MASK_INFO == MASK_INFO {
            Severity::Info
        } else {
            Severity::Success
        }
    }

    /// The numeric code in the low bits.
    pub fn code(&self) -> u64 {
        self.bits() & MASK_CODE
    }
}

impl fmt::Display for ApiCallRc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.severity(), self.code(), self.message)?;
        if let Some(cause) = self.cause.as_deref().filter(|c| !c.is_empty()) {
            write!(f, "; cause: {cause}")?;
        }
        if let Some(correction) = self.correction.as_deref().filter(|c| !c.is_empty()) {
            write!(f, "; correction: {correction}")?;
        }
        if !self.error_report_ids.is_empty() {
            write!(f, "; reports: {}", self.error_report_ids.join(","))?;
        }
        Ok(())
    }
}

/// Parses a response body as an ApiCallRc list (a single object is
/// accepted too). `None` when it is neither.
pub fn parse_list(body: &[u8]) -> Option<Vec<ApiCallRc>> {
    serde_json::from_slice::<Vec<ApiCallRc>>(body)
        .ok()
        .or_else(|| {
            serde_json::from_slice::<ApiCallRc>(body)
                .ok()
                .map(|rc| vec![rc])
        })
}

/// The worst severity of a list (success for an empty one).
pub fn worst(list: &[ApiCallRc]) -> Severity {
    list.iter()
        .map(ApiCallRc::severity)
        .max()
        .unwrap_or(Severity::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_node_not_found_error() {
        let body = br#"[{"ret_code":-4611686018427387604,"message":"Node 'centos1' not found.","cause":"The specified node 'centos1' could not be found in the database","correction":"Create a node with the name 'centos1' first."}]"#;
        let list = parse_list(body).unwrap();
        assert_eq!(list[0].severity(), Severity::Error);
        assert_eq!(list[0].code(), 300);
        assert_eq!(
            list[0].to_string(),
            "error 300: Node 'centos1' not found.; cause: The specified node 'centos1' could not be found in the database; correction: Create a node with the name 'centos1' first."
        );
        assert_eq!(worst(&list), Severity::Error);
    }

    #[test]
    fn error_is_tested_before_warning() {
        let rc = |bits: u64| ApiCallRc {
            ret_code: bits as i64,
            ..ApiCallRc::default()
        };
        assert_eq!(rc(MASK_ERROR | 995).severity(), Severity::Error);
        assert_eq!(rc(MASK_WARN | 5).severity(), Severity::Warning);
        assert_eq!(rc(MASK_INFO | 5).severity(), Severity::Info);
        assert_eq!(rc(5).severity(), Severity::Success);
        assert_eq!(rc(MASK_ERROR | 995).code(), 995);
        assert_eq!(
            worst(&[rc(5), rc(MASK_WARN), rc(MASK_INFO)]),
            Severity::Warning
        );
        assert_eq!(worst(&[]), Severity::Success);
    }

    #[test]
    fn other_bodies() {
        assert_eq!(
            parse_list(br#"{"ret_code":0,"message":"ok"}"#)
                .unwrap()
                .len(),
            1
        );
        assert!(parse_list(b"<html>").is_none());
        assert_eq!(parse_list(b"[]").unwrap(), vec![]);
    }
}
