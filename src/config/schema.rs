//! The keys the configuration accepts, asked from the parser itself: every
//! table rejects unknown keys, and serde's "unknown field" error lists the
//! ones it knows. So a key added to a serde struct shows up here without
//! anyone keeping a list (the drift test of `config/agent.toml` uses this).

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{Config, ConfigError};

/// A key name no table accepts.
const PROBE: &str = "__probe__";

/// Nesting deeper than this is not followed (the configuration has 3 levels).
const MAX_DEPTH: usize = 4;

/// What the configuration accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// Dotted leaf keys: `node-name`, `drbd.drbdsetup`, `throttle.policy.resource`.
    pub keys: BTreeSet<String>,
    /// Tables (dotted): `drbd`, `throttle`.
    pub tables: BTreeSet<String>,
    /// Arrays of tables (dotted): `throttle.policy`.
    pub arrays: BTreeSet<String>,
}

/// Asks the parser for every accepted key, table and array of tables.
pub fn schema() -> Schema {
    let mut schema = Schema::default();
    walk("", false, 0, &mut schema);
    schema
}

fn walk(section: &str, array: bool, depth: usize, schema: &mut Schema) {
    let Some(fields) = fields_of(section, array) else {
        return;
    };
    for field in fields {
        let path = if section.is_empty() {
            field
        } else {
            format!("{section}.{field}")
        };
        if depth < MAX_DEPTH && fields_of(&path, false).is_some() {
            schema.tables.insert(path.clone());
            walk(&path, false, depth + 1, schema);
        } else if depth < MAX_DEPTH && fields_of(&path, true).is_some() {
            schema.arrays.insert(path.clone());
            walk(&path, true, depth + 1, schema);
        } else {
            schema.keys.insert(path);
        }
    }
}

/// The keys the table (or array of tables) `section` accepts; `None` when
/// `section` is not a table that rejects unknown keys.
fn fields_of(section: &str, array: bool) -> Option<Vec<String>> {
    let header = match (section.is_empty(), array) {
        (true, _) => String::new(),
        (false, false) => format!("[{section}]\n"),
        (false, true) => format!("[[{section}]]\n"),
    };
    let text = format!("{header}{PROBE} = 1\n");
    match Config::from_sources(&[(PathBuf::from("probe.toml"), text)]) {
        Err(ConfigError::Invalid { message, .. }) => expected_fields(&message),
        _ => None,
    }
}

/// The field list of serde's "unknown field `x`, expected one of `a`, `b`".
fn expected_fields(message: &str) -> Option<Vec<String>> {
    let rest = message.strip_prefix(&format!("unknown field `{PROBE}`"))?;
    let rest = rest.trim_start_matches(',').trim();
    if rest.starts_with("there are no fields") {
        return Some(Vec::new());
    }
    let list = rest.strip_prefix("expected ")?;
    let list = list.strip_prefix("one of ").unwrap_or(list);
    Some(
        list.split(", ")
            .map(|name| name.trim().trim_matches('`').to_owned())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_serde_messages() {
        assert_eq!(
            expected_fields("unknown field `__probe__`, expected one of `a`, `b-c`"),
            Some(vec!["a".to_owned(), "b-c".to_owned()])
        );
        assert_eq!(
            expected_fields("unknown field `__probe__`, expected `only`"),
            Some(vec!["only".to_owned()])
        );
        assert_eq!(
            expected_fields("unknown field `__probe__`, there are no fields"),
            Some(Vec::new())
        );
        assert_eq!(expected_fields("invalid type: map, expected a path"), None);
    }

    #[test]
    fn finds_known_keys_at_every_level() {
        let schema = schema();
        for key in [
            "node-name",
            "log-level",
            "drbd.drbdsetup",
            "api.listen",
            "state.directory",
            "throttle.latency-target",
            "throttle.policy.resource",
            "throttle.window.days",
        ] {
            assert!(schema.keys.contains(key), "{key} missing from {schema:?}");
        }
        assert!(schema.tables.contains("throttle"), "{schema:?}");
        assert!(schema.arrays.contains("throttle.window"), "{schema:?}");
        assert!(!schema.keys.contains("throttle"), "{schema:?}");
    }
}
