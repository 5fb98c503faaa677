//! Peer-device options as `drbdsetup show --json` prints them, and the
//! `peer-device-options` command lines the actuator runs. Pure.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::rate::KibPerSec;

/// DRBD's default `c-max-rate`, KiB/s (`show` omits defaults).
pub const DEFAULT_C_MAX_RATE: u64 = 102_400;
/// DRBD's default `c-min-rate`, KiB/s.
pub const DEFAULT_C_MIN_RATE: u64 = 250;

/// One peer device: resource, the peer's node id, volume.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PeerKey {
    pub resource: String,
    pub peer_node_id: u32,
    pub volume: u32,
}

impl std::fmt::Display for PeerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.resource, self.peer_node_id, self.volume)
    }
}

/// The options the agent touches, KiB/s (defaults filled in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerOptions {
    pub c_max_rate: u64,
    pub c_min_rate: u64,
}

/// Why `show --json` gave no options for a peer device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShowError {
    #[error("show --json output is not JSON: {0}")]
    NotJson(String),
    #[error("show --json: resource {0:?} not found")]
    NoResource(String),
    #[error("show --json: resource {resource:?} has no connection to node id {peer_node_id}")]
    NoConnection { resource: String, peer_node_id: u32 },
    #[error("show --json: {key} = {text:?} is not a size (number with k, M or G)")]
    BadValue { key: &'static str, text: String },
}

/// Parses a DRBD size as `show` prints it (`"102400k"`, `"250k"`, `"1M"`,
/// a bare number = KiB) into KiB (drbd-model's `units` grammar).
pub fn parse_kib(text: &str) -> Option<u64> {
    drbd_model::units::parse_kib(text).ok()
}

/// The c-max-rate/c-min-rate in force for `key` in the `show --json` text
/// (absent keys = DRBD's defaults; an absent volume entry too).
pub fn extract_peer_options(json: &str, key: &PeerKey) -> Result<PeerOptions, ShowError> {
    let value: Value = serde_json::from_str(json).map_err(|e| ShowError::NotJson(e.to_string()))?;
    let resource = value
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r.get("resource").and_then(Value::as_str) == Some(key.resource.as_str()))
        .ok_or_else(|| ShowError::NoResource(key.resource.clone()))?;
    let connection = resource
        .get("connections")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| {
            c.get("_peer_node_id").and_then(Value::as_u64) == Some(u64::from(key.peer_node_id))
        })
        .ok_or_else(|| ShowError::NoConnection {
            resource: key.resource.clone(),
            peer_node_id: key.peer_node_id,
        })?;
    let disk = connection
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|v| v.get("volume_nr").and_then(Value::as_u64) == Some(u64::from(key.volume)))
        .and_then(|v| v.get("disk"));
    let read = |name: &'static str, default: u64| -> Result<u64, ShowError> {
        match disk.and_then(|d| d.get(name)) {
            None => Ok(default),
            Some(Value::String(text)) => parse_kib(text).ok_or_else(|| ShowError::BadValue {
                key: name,
                text: text.clone(),
            }),
            Some(Value::Number(n)) => n.as_u64().ok_or_else(|| ShowError::BadValue {
                key: name,
                text: n.to_string(),
            }),
            Some(other) => Err(ShowError::BadValue {
                key: name,
                text: other.to_string(),
            }),
        }
    };
    Ok(PeerOptions {
        c_max_rate: read("c-max-rate", DEFAULT_C_MAX_RATE)?,
        c_min_rate: read("c-min-rate", DEFAULT_C_MIN_RATE)?,
    })
}

/// `peer-device-options RES PEER VOL --c-max-rate=<rate>k --c-min-rate=0`:
/// the agent's setpoint, with the activity-based c-min-rate neutralised.
/// Never `--set-defaults`; the rate is never 0 (a [`KibPerSec`] cannot be).
pub fn throttle_args(key: &PeerKey, rate: KibPerSec) -> Vec<String> {
    vec![
        "peer-device-options".to_owned(),
        key.resource.clone(),
        key.peer_node_id.to_string(),
        key.volume.to_string(),
        format!("--c-max-rate={}k", rate.get()),
        "--c-min-rate=0".to_owned(),
    ]
}

/// The command putting back the recorded options.
pub fn restore_args(key: &PeerKey, recorded: &PeerOptions) -> Vec<String> {
    vec![
        "peer-device-options".to_owned(),
        key.resource.clone(),
        key.peer_node_id.to_string(),
        key.volume.to_string(),
        format!("--c-max-rate={}k", recorded.c_max_rate),
        format!("--c-min-rate={}k", recorded.c_min_rate),
    ]
}

/// Whether the options read back still are the agent's setpoint (else
/// something like `drbdadm adjust` reset them).
pub fn is_ours(read: &PeerOptions, rate: KibPerSec) -> bool {
    read.c_max_rate == rate.get() && read.c_min_rate == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOW: &str = r#"[{"resource":"r0","connections":[
        {"_peer_node_id":1,"volumes":[{"volume_nr":0,"disk":{"c-max-rate":"40M","c-min-rate":"250k"}}]},
        {"_peer_node_id":2,"volumes":[{"volume_nr":0,"disk":{}}]},
        {"_peer_node_id":3,"volumes":[{"volume_nr":0,"disk":{"c-max-rate":"fast"}}]}]}]"#;

    fn key(peer: u32, volume: u32) -> PeerKey {
        PeerKey {
            resource: "r0".into(),
            peer_node_id: peer,
            volume,
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_kib("102400k"), Some(102_400));
        assert_eq!(parse_kib("250k"), Some(250));
        assert_eq!(parse_kib("40M"), Some(40 * 1024));
        assert_eq!(parse_kib("1G"), Some(1024 * 1024));
        assert_eq!(parse_kib("77"), Some(77));
        assert_eq!(parse_kib("0"), Some(0));
        for bad in [
            "",
            "k",
            "1.5M",
            "-1",
            "10x",
            "99999999999999999999999",
            "1kk",
        ] {
            assert_eq!(parse_kib(bad), None, "{bad}");
        }
    }

    #[test]
    fn extracts_options_and_defaults() {
        assert_eq!(
            extract_peer_options(SHOW, &key(1, 0)),
            Ok(PeerOptions {
                c_max_rate: 40 * 1024,
                c_min_rate: 250
            })
        );
        let defaults = PeerOptions {
            c_max_rate: DEFAULT_C_MAX_RATE,
            c_min_rate: DEFAULT_C_MIN_RATE,
        };
        assert_eq!(extract_peer_options(SHOW, &key(2, 0)), Ok(defaults));
        assert_eq!(extract_peer_options(SHOW, &key(1, 7)), Ok(defaults));
    }

    #[test]
    fn the_drbd_utils_fixture_shape() {
        let text = include_str!("../../tests/data/drbd-utils-tests/show-normal.test");
        let json = &text[text.find("\n[").unwrap_or(0)..];
        let k = PeerKey {
            resource: "some-resource".into(),
            peer_node_id: 1,
            volume: 0,
        };
        assert_eq!(
            extract_peer_options(json, &k),
            Ok(PeerOptions {
                c_max_rate: 102_400,
                c_min_rate: 250
            })
        );
    }

    #[test]
    fn bad_show_output() {
        assert!(matches!(
            extract_peer_options("not json", &key(1, 0)),
            Err(ShowError::NotJson(_))
        ));
        assert!(matches!(
            extract_peer_options("{}", &key(1, 0)),
            Err(ShowError::NoResource(_))
        ));
        assert!(matches!(
            extract_peer_options(SHOW, &key(9, 0)),
            Err(ShowError::NoConnection { .. })
        ));
        assert_eq!(
            extract_peer_options(SHOW, &key(3, 0)),
            Err(ShowError::BadValue {
                key: "c-max-rate",
                text: "fast".into()
            })
        );
    }

    #[test]
    fn command_lines() {
        let rate = KibPerSec::new(5000).unwrap();
        assert_eq!(
            throttle_args(&key(1, 0), rate).join(" "),
            "peer-device-options r0 1 0 --c-max-rate=5000k --c-min-rate=0"
        );
        let restore = restore_args(
            &key(1, 0),
            &PeerOptions {
                c_max_rate: 102_400,
                c_min_rate: 250,
            },
        );
        assert_eq!(
            restore.join(" "),
            "peer-device-options r0 1 0 --c-max-rate=102400k --c-min-rate=250k"
        );
        assert!(!restore.iter().any(|a| a.contains("set-defaults")));
        assert!(is_ours(
            &PeerOptions {
                c_max_rate: 5000,
                c_min_rate: 0
            },
            rate
        ));
        assert!(!is_ours(
            &PeerOptions {
                c_max_rate: 102_400,
                c_min_rate: 0
            },
            rate
        ));
        assert!(!is_ours(
            &PeerOptions {
                c_max_rate: 5000,
                c_min_rate: 250
            },
            rate
        ));
    }
}
