//! Byte offsets in a TOML source → line/column and the key written there.

/// 1-based line and column (in characters) of byte `offset` in `source`.
/// Offsets past the end point just after the last character.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The dotted key (`drbd.statistics-poll-interval`) assigned at or before
/// 1-based `line`: the nearest `key = ...` line at or above it, prefixed with
/// the table header in force there. Only plain headers and bare keys are
/// understood, which is all the agent's configuration uses.
pub fn key_at(source: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = source.lines().take(line).collect();
    let mut key = None;
    let mut key_index = 0;
    for (index, text) in lines.iter().enumerate().rev() {
        let text = text.trim();
        if text.starts_with('[') {
            // A header line: the error is about the header itself.
            return table_name(text).map(str::to_owned);
        }
        if let Some((name, _)) = text.split_once('=') {
            let name = name.trim();
            if !name.is_empty() && name.chars().all(is_key_char) {
                key = Some(name.to_owned());
                key_index = index;
                break;
            }
        }
    }
    let key = key?;
    let table = lines[..key_index]
        .iter()
        .rev()
        .map(|text| text.trim())
        .find(|text| text.starts_with('['))
        .and_then(table_name);
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key,
    })
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || c == '"' || c == ' '
}

fn table_name(header: &str) -> Option<&str> {
    let inner = header.trim_start_matches('[');
    let end = inner.find(']')?;
    Some(inner[..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (1, 5));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 11), (2, 6));
        assert_eq!(line_col(text, 999), (3, 1));
        assert_eq!(line_col("é = 1", 1), (1, 1));
        assert_eq!(line_col("é = 1", 2), (1, 2));
    }

    #[test]
    fn keys() {
        let text = "node-name = \"a\"\n\n[drbd]\n# x\nsysfs-root = 1\nreconcile-interval = [\n  \"x\",\n]\n";
        assert_eq!(key_at(text, 1).as_deref(), Some("node-name"));
        assert_eq!(key_at(text, 3).as_deref(), Some("drbd"));
        assert_eq!(key_at(text, 5).as_deref(), Some("drbd.sysfs-root"));
        assert_eq!(key_at(text, 7).as_deref(), Some("drbd.reconcile-interval"));
        assert_eq!(key_at("", 1), None);
    }
}
