//! The generated man pages and completions cover the whole CLI and every
//! configuration key (they are generated from the code, so only coverage
//! can go wrong).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use drbd_agent::assets::{self, man::built_command, man::visible_subcommands, SHELLS};
use drbd_agent::config::schema;

/// Every visible subcommand with its visible long options.
fn commands() -> Vec<(clap::Command, Vec<String>)> {
    let top = built_command();
    let mut all = vec![top.clone()];
    all.extend(visible_subcommands(&top));
    all.into_iter()
        .map(|command| {
            let longs = command
                .get_arguments()
                .filter(|a| !a.is_hide_set())
                .filter_map(|a| a.get_long().map(str::to_owned))
                .collect();
            (command, longs)
        })
        .collect()
}

fn roff(text: &str) -> String {
    text.replace('-', "\\-")
}

#[test]
fn the_agent_page_has_a_section_per_subcommand_with_its_options() {
    let page = assets::agent_man_page().expect("render");
    assert!(page.starts_with(".TH DRBD\\-AGENT 8 "), "{page}");
    let commands = commands();
    assert!(commands.len() >= 7, "{}", commands.len());
    for (command, longs) in &commands[1..] {
        let name = command.get_bin_name().expect("built").to_owned();
        let heading = format!(".SH \"{}\"\n", roff(&name).to_uppercase());
        let start = page
            .find(&heading)
            .unwrap_or_else(|| panic!("no section {heading:?} in\n{page}"));
        let end = page[start + heading.len()..]
            .find("\n.SH ")
            .map_or(page.len(), |i| start + heading.len() + i);
        let section = &page[start..end];
        for long in longs {
            let option = roff(&format!("--{long}"));
            assert!(
                section.contains(&option),
                "{name}: {option} missing in\n{section}"
            );
        }
        if let Some(about) = command.get_about() {
            let about = roff(&about.to_string());
            assert!(
                section.contains(&about),
                "{name}: about missing in\n{section}"
            );
        }
    }
    assert!(!page.contains("generate\\-assets"), "hidden command shown");
}

#[test]
fn the_config_page_names_every_key() {
    let page = assets::config_man_page();
    assert!(page.starts_with(".TH DRBD\\-AGENT.TOML 5 "), "{page}");
    let schema = schema();
    for table in schema.tables.iter() {
        assert!(
            page.contains(&format!(".SH \"[{}]\"", roff(table))),
            "[{table}]"
        );
    }
    for array in schema.arrays.iter() {
        assert!(
            page.contains(&format!(".SH \"[[{}]]\"", roff(array))),
            "[[{array}]]"
        );
    }
    for key in &schema.keys {
        let leaf = key.rsplit('.').next().unwrap_or(key);
        assert!(
            page.contains(&format!(".TP\n\\fB{}\\fR\n", roff(leaf))),
            "{key} missing in\n{page}"
        );
    }
}

#[test]
fn completions_know_every_subcommand_and_option() {
    let commands = commands();
    for (shell, _) in SHELLS {
        let script = assets::completion(shell);
        for (command, longs) in &commands {
            assert!(
                script.contains(command.get_name()),
                "{shell}: {}",
                command.get_name()
            );
            for long in longs {
                assert!(script.contains(long.as_str()), "{shell}: --{long}");
            }
        }
        assert!(
            !script.contains("generate-assets"),
            "{shell}: hidden command offered"
        );
    }
}

#[test]
fn write_all_writes_gzipped_pages_and_scripts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let written = assets::write_all(dir.path()).expect("write");
    assert_eq!(written.len(), 5);
    let page = std::fs::read(dir.path().join("man/drbd-agent.8.gz")).expect("page");
    assert_eq!(&page[..2], &[0x1f, 0x8b], "not gzip");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&page[..]), &mut text)
        .expect("gunzip");
    assert_eq!(text, assets::agent_man_page().expect("render"));
    for (_, name) in SHELLS {
        let script = std::fs::read_to_string(dir.path().join("completions").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(script.contains("check-config"), "{name}");
    }
}

#[test]
fn the_page_and_completions_have_top_watch_and_no_throttle() {
    let page = assets::agent_man_page().expect("render");
    assert!(page.contains(".SH \"DRBD\\-AGENT TOP\"\n"), "{page}");
    for option in ["\\-\\-watch", "\\-\\-interval", "\\-\\-no\\-throttle"] {
        assert!(page.contains(option), "{option} missing in\n{page}");
    }
    for (shell, _) in SHELLS {
        let script = assets::completion(shell);
        for word in ["top", "watch", "interval", "no-throttle"] {
            assert!(script.contains(word), "{shell}: {word}");
        }
    }
}
