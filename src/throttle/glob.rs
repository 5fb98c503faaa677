//! Shell-style name patterns: `*` matches any run of characters (also
//! none), `?` exactly one; everything else matches itself.

/// Whether `name` matches `pattern`. Linear in practice: on a mismatch
/// after a `*`, only the most recent `*` is retried.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0usize, 0usize);
    // Position of the last `*` seen and the name position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((star_p, star_n)) => {
                    // Let the `*` swallow one more character.
                    p = star_p + 1;
                    n = star_n + 1;
                    star = Some((star_p, star_n + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn matches() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "pvc-123"));
        assert!(glob_match("pvc-*", "pvc-123"));
        assert!(glob_match("pvc-*", "pvc-"));
        assert!(glob_match("*-db", "orders-db"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(glob_match("r?", "r1"));
        assert!(glob_match("exact", "exact"));
        assert!(glob_match("**", "x"));
        assert!(glob_match("*a", "baa"));
        assert!(glob_match("ä?", "äö"));
    }

    #[test]
    fn does_not_match() {
        assert!(!glob_match("pvc-*", "pv-123"));
        assert!(!glob_match("r?", "r"));
        assert!(!glob_match("r?", "r12"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(!glob_match("", "x"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("*a", "ab"));
    }
}
