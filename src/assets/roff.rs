//! Just enough roff for the generated man pages.

/// Escapes text for roff: backslashes, hyphens, and a leading `.` or `'`.
pub fn escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// Escaped text in bold.
pub fn bold(text: &str) -> String {
    format!("\\fB{}\\fR", escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_roff_specials() {
        assert_eq!(escape("a-b\\c"), "a\\-b\\ec");
        assert_eq!(escape(".x"), "\\&.x");
        assert_eq!(bold("k"), "\\fBk\\fR");
    }
}
