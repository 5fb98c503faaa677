//! `config/agent.toml` read as documentation: its sections, keys, the
//! comment above each key and the value on its `#key = value` line (the
//! default, or an example when the line ends in `# example`). The
//! drbd-agent.toml(5) page is rendered from it, so the page says what the
//! shipped file says.

use super::roff::{bold, escape};

/// One `[table]`, `[[array]]` or the top level (`name` empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSection {
    pub name: String,
    /// Written `[[name]]`.
    pub array: bool,
    /// The comment just above the header.
    pub intro: Vec<String>,
    pub keys: Vec<DocKey>,
}

/// One documented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocKey {
    pub key: String,
    /// The TOML value on the key's line.
    pub value: String,
    /// The value is an example, not the default.
    pub example: bool,
    /// The comment just above the key.
    pub text: Vec<String>,
}

impl DocSection {
    /// The dotted name of `key` in this section.
    pub fn dotted(&self, key: &str) -> String {
        if self.name.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.name)
        }
    }
}

const EXAMPLE_MARK: &str = "# example";

/// Splits a documented configuration into sections. Key lines are `#key =
/// value` (no space after `#`), headers `[name]` or `#[[name]]`, comment
/// text `# text`; a blank line ends a comment.
pub fn parse(text: &str) -> Vec<DocSection> {
    let mut sections = vec![DocSection {
        name: String::new(),
        array: false,
        intro: Vec::new(),
        keys: Vec::new(),
    }];
    let mut comment: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        let uncommented = line.strip_prefix('#').unwrap_or(line);
        if line.is_empty() {
            comment.clear();
        } else if let Some((name, array)) = header(uncommented) {
            sections.push(DocSection {
                name,
                array,
                intro: std::mem::take(&mut comment),
                keys: Vec::new(),
            });
        } else if let Some((key, value)) = key_line(uncommented) {
            let (value, example) = match value.strip_suffix(EXAMPLE_MARK) {
                Some(value) => (value.trim_end(), true),
                None => (value, false),
            };
            if let Some(section) = sections.last_mut() {
                section.keys.push(DocKey {
                    key,
                    value: value.to_owned(),
                    example,
                    text: std::mem::take(&mut comment),
                });
            }
        } else if let Some(prose) = line.strip_prefix('#') {
            comment.push(prose.strip_prefix(' ').unwrap_or(prose).to_owned());
        }
    }
    sections
}

fn header(line: &str) -> Option<(String, bool)> {
    let (inner, array) = match line.strip_prefix("[[") {
        Some(rest) => (rest.strip_suffix("]]")?, true),
        None => (line.strip_prefix('[')?.strip_suffix(']')?, false),
    };
    is_key_name(inner, true).then(|| (inner.to_owned(), array))
}

fn key_line(line: &str) -> Option<(String, &str)> {
    let (key, value) = line.split_once(" = ")?;
    is_key_name(key, false).then(|| (key.to_owned(), value.trim()))
}

fn is_key_name(name: &str, dotted: bool) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dotted && c == '.')
        })
}

/// The text with every `#key = value` line and `#[[array]]` header
/// uncommented; `only_defaults` keeps example keys and array tables commented.
pub fn uncomment(text: &str, only_defaults: bool) -> String {
    let mut out = String::new();
    let mut in_array = false;
    for line in text.lines() {
        let uncommented = line.strip_prefix('#').unwrap_or(line);
        let mut keep = line;
        if let Some((_, array)) = header(uncommented) {
            in_array = array;
            if !only_defaults || !array {
                keep = uncommented;
            }
        } else if key_line(uncommented).is_some() {
            let example = uncommented.trim_end().ends_with(EXAMPLE_MARK);
            if !only_defaults || !(example || in_array) {
                keep = uncommented;
            }
        }
        out.push_str(keep);
        out.push('\n');
    }
    out
}

/// drbd-agent.toml(5) in roff.
pub fn man_page(sections: &[DocSection], version: &str) -> String {
    let mut page = format!(
        ".TH DRBD\\-AGENT.TOML 5 \"\" \"drbd\\-agent {}\" \"File Formats Manual\"\n",
        escape(version)
    );
    page.push_str(concat!(
        ".SH NAME\n",
        "drbd\\-agent.toml \\- configuration of drbd\\-agent\n",
        ".SH SYNOPSIS\n",
        "/etc/drbd\\-agent/agent.toml\n",
        ".br\n",
        "/etc/drbd\\-agent/conf.d/*.toml\n",
        ".SH DESCRIPTION\n",
        "The configuration of \\fBdrbd\\-agent\\fR(8) is TOML. ",
        "/etc/drbd\\-agent/agent.toml is read first, then every ",
        "/etc/drbd\\-agent/conf.d/*.toml in name order; a key set in a later file wins ",
        "(an array of tables such as [[throttle.policy]] is replaced whole). ",
        "Every key is optional. Unknown keys and bad values are errors naming the file, ",
        "the line and the key; \\fBdrbd\\-agent check\\-config\\fR checks the files.\n",
        ".PP\n",
        "SIGHUP (\\fBsystemctl reload drbd\\-agent\\fR) re\\-reads the files: ",
        "[throttle] applies live, every other key needs a restart. ",
        "An invalid configuration is logged and the running one stays.\n",
        ".PP\n",
        "Durations are strings with a unit (us, ms, s, m, h; a decimal number is fine): ",
        "\"500ms\", \"1.5s\", \"10s\", \"5m\", \"1h\". ",
        "Rates are binary units per second: \"250KiB/s\", \"40MiB/s\", \"1GiB/s\".\n",
    ));
    for section in sections {
        if section.keys.is_empty() && section.name.is_empty() {
            continue;
        }
        let title = match (section.name.as_str(), section.array) {
            ("", _) => "TOP\\-LEVEL KEYS".to_owned(),
            (name, false) => format!("[{}]", escape(name)),
            (name, true) => format!("[[{}]]", escape(name)),
        };
        page.push_str(&format!(".SH \"{title}\"\n"));
        if !section.intro.is_empty() {
            page.push_str(&paragraph(&section.intro));
        }
        for key in &section.keys {
            page.push_str(".TP\n");
            page.push_str(&format!("{}\n", bold(&key.key)));
            page.push_str(&paragraph(&key.text));
            let label = if key.example || section.array {
                "Example"
            } else {
                "Default"
            };
            page.push_str(&format!(".br\n{label}: {}\n", bold(&key.value)));
        }
    }
    page.push_str(concat!(
        ".SH FILES\n",
        ".TP\n/etc/drbd\\-agent/agent.toml\nThe main file (shipped with every key commented out).\n",
        ".TP\n/etc/drbd\\-agent/conf.d/\nSnippets read after it, in name order.\n",
        ".TP\n/var/lib/drbd\\-agent/\nThe default [state] directory.\n",
        ".SH \"SEE ALSO\"\n",
        "\\fBdrbd\\-agent\\fR(8), \\fBdrbdsetup\\fR(8), \\fBdrbd.conf\\fR(5)\n",
    ));
    page
}

/// Comment lines as one roff paragraph (the lines joined).
fn paragraph(lines: &[String]) -> String {
    let text = lines
        .iter()
        .map(|line| line.trim())
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() {
        String::new()
    } else {
        format!("{}\n", escape(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# file header\n\n# the name\n# Default: host.\n#node-name = \"a\"  # example\n\n# intro\n[drbd]\n\n# tool\n#drbdsetup = \"drbdsetup\"\n\n#[[throttle.policy]]\n# glob\n#resource = \"x\"\n";

    #[test]
    fn parses_sections_keys_and_comments() {
        let sections = parse(TEXT);
        assert_eq!(sections.len(), 3);
        assert_eq!(sections[0].keys[0].key, "node-name");
        assert_eq!(sections[0].keys[0].value, "\"a\"");
        assert!(sections[0].keys[0].example);
        assert_eq!(sections[0].keys[0].text, ["the name", "Default: host."]);
        assert_eq!(sections[1].name, "drbd");
        assert_eq!(sections[1].intro, ["intro"]);
        assert!(!sections[1].keys[0].example);
        assert!(sections[2].array);
        assert_eq!(sections[2].dotted("resource"), "throttle.policy.resource");
        assert_eq!(sections[2].keys[0].text, ["glob"]);
    }

    #[test]
    fn uncomments_defaults_or_everything() {
        let defaults = uncomment(TEXT, true);
        assert!(defaults.contains("\n#node-name"));
        assert!(defaults.contains("\ndrbdsetup = "));
        assert!(defaults.contains("\n#[[throttle.policy]]"));
        assert!(defaults.contains("\n#resource"));
        let all = uncomment(TEXT, false);
        assert!(all.contains("\nnode-name = "));
        assert!(all.contains("\n[[throttle.policy]]"));
        assert!(all.contains("\nresource = "));
        assert!(all.starts_with("# file header"));
    }
}
