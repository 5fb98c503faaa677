//! The `[throttle]` section across files: merged key by key (arrays of
//! tables replaced whole), validated once merged, a range error reported at
//! the file and line that set the key.

use std::path::PathBuf;

use serde::Deserialize;

use super::location::{key_at, line_col};
use super::ConfigError;
use crate::throttle::{ThrottleConfig, ThrottleConfigError};

/// The merged, validated `[throttle]` of `sources` (each already checked on
/// its own, so only the merge and the cross-key checks can fail here).
pub(super) fn resolve_throttle(
    sources: &[(PathBuf, String)],
) -> Result<ThrottleConfig, ConfigError> {
    let mut merged = toml::Table::new();
    for (path, text) in sources {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
        if let Some(toml::Value::Table(throttle)) = table.get("throttle") {
            for (key, value) in throttle {
                merged.insert(key.clone(), value.clone());
            }
        }
    }
    let config = ThrottleConfig::deserialize(toml::Value::Table(merged)).map_err(|e| {
        ConfigError::Invalid {
            file: sources.last().map(|(p, _)| p.clone()).unwrap_or_default(),
            line: 1,
            column: 1,
            key: Some("throttle".to_owned()),
            message: e.message().trim().to_owned(),
        }
    })?;
    config.validate().map_err(|e| locate(sources, &e))?;
    Ok(config)
}

/// Names the last file that set the key of `error`, with its line.
fn locate(sources: &[(PathBuf, String)], error: &ThrottleConfigError) -> ConfigError {
    let found = sources
        .iter()
        .rev()
        .find_map(|(path, text)| find_key(text, &error.key).map(|line| (path, text, line)));
    match found {
        Some((path, text, line)) => {
            let offset: usize = text.lines().take(line - 1).map(|l| l.len() + 1).sum();
            let (line, column) = line_col(text, offset);
            ConfigError::Invalid {
                file: path.clone(),
                line,
                column,
                key: Some(error.key.clone()),
                message: error.message.clone(),
            }
        }
        None => ConfigError::Invalid {
            file: sources.last().map(|(p, _)| p.clone()).unwrap_or_default(),
            line: 1,
            column: 1,
            key: Some(error.key.clone()),
            message: error.message.clone(),
        },
    }
}

/// The 1-based line assigning dotted `key` in `text`; `table[i].key` means
/// the key in the i-th `[[table]]` (0-based).
pub(super) fn find_key(text: &str, key: &str) -> Option<usize> {
    let (plain, index, header) = match key.split_once('[') {
        Some((table, rest)) => {
            let (index, tail) = rest.split_once(']')?;
            let index: usize = index.parse().ok()?;
            (
                format!("{table}{tail}"),
                Some(index),
                format!("[[{table}]]"),
            )
        }
        None => (key.to_owned(), None, String::new()),
    };
    let mut seen = 0usize;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if index.is_some() && trimmed.replace(' ', "") == header {
            seen += 1;
        }
        if let Some(i) = index {
            if seen != i + 1 {
                continue;
            }
        }
        if trimmed.starts_with('#') || !trimmed.contains('=') || trimmed.starts_with('[') {
            continue;
        }
        if key_at(text, number + 1).as_deref() == Some(plain.as_str()) {
            return Some(number + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_plain_and_indexed_keys() {
        let text = "[throttle]\nenabled = true\nmin-rate = \"1MiB/s\"\n\n[[throttle.policy]]\nresource = \"a\"\n\n[[throttle.policy]]\nresource = \"b\"\nmin-rate = \"9MiB/s\"\n";
        assert_eq!(find_key(text, "throttle.min-rate"), Some(3));
        assert_eq!(find_key(text, "throttle.policy[1].min-rate"), Some(10));
        assert_eq!(find_key(text, "throttle.policy[0].min-rate"), None);
        assert_eq!(find_key(text, "throttle.max-rate"), None);
        assert_eq!(find_key(text, "throttle.policy[x].min-rate"), None);
    }
}
