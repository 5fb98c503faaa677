//! drbd-agent(8), rendered from the clap definitions in [`crate::cli`]: the
//! top-level page, then a section per (non-hidden) subcommand with its
//! synopsis, description and options.

use clap::CommandFactory;

use super::roff::{bold, escape};
use crate::cli::Cli;

/// drbd-agent(8) in roff.
pub fn man_page(version: &str) -> std::io::Result<String> {
    let command = built_command();
    let top = clap_mangen::Man::new(command.clone()).section("8");
    let mut page = format!(
        ".TH DRBD\\-AGENT 8 \"\" \"drbd\\-agent {}\" \"System Administration\"\n",
        escape(version)
    )
    .into_bytes();
    top.render_name_section(&mut page)?;
    top.render_synopsis_section(&mut page)?;
    top.render_description_section(&mut page)?;
    top.render_options_section(&mut page)?;
    let subcommands = visible_subcommands(&command);
    page.extend_from_slice(b".SH COMMANDS\n");
    for sub in &subcommands {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        page.extend_from_slice(
            format!(".TP\n{}\n{}\n", bold(&display_name(sub)), escape(&about)).as_bytes(),
        );
    }
    for sub in &subcommands {
        render_subcommand(sub, &mut page)?;
    }
    page.extend_from_slice(TAIL.as_bytes());
    Ok(String::from_utf8_lossy(&page).into_owned())
}

/// The documented CLI, built (bin names set), without `help` subcommands.
pub fn built_command() -> clap::Command {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    command
}

/// Every non-hidden subcommand, depth first (`bench`, then `bench throttle`).
pub fn visible_subcommands(command: &clap::Command) -> Vec<clap::Command> {
    let mut found = Vec::new();
    let visible = command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help");
    for sub in visible {
        found.push(sub.clone());
        found.extend(visible_subcommands(sub));
    }
    found
}

/// `drbd-agent bench throttle` (the command must have been built).
pub fn display_name(sub: &clap::Command) -> String {
    sub.get_bin_name()
        .map_or_else(|| sub.get_name().to_owned(), ToOwned::to_owned)
}

/// One subcommand as a `.SH` section with `.SS` parts.
fn render_subcommand(sub: &clap::Command, page: &mut Vec<u8>) -> std::io::Result<()> {
    let name = display_name(sub);
    page.extend_from_slice(format!(".SH \"{}\"\n", escape(&name).to_uppercase()).as_bytes());
    let man = clap_mangen::Man::new(sub.clone());
    let mut part = Vec::new();
    man.render_synopsis_section(&mut part)?;
    man.render_description_section(&mut part)?;
    if sub.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut part)?;
    }
    let part = String::from_utf8_lossy(&part).replace(".SH ", ".SS ");
    page.extend_from_slice(part.as_bytes());
    Ok(())
}

const TAIL: &str = concat!(
    ".SH SIGNALS\n",
    ".TP\nSIGHUP\nRe\\-read the configuration ([throttle] applies live; other keys need a restart).\n",
    ".TP\nSIGTERM, SIGINT\nStop: give back the DRBD options the throttle set, then exit.\n",
    ".SH ENVIRONMENT\n",
    ".TP\nRUST_LOG\nA tracing filter; wins over the configured log\\-level.\n",
    ".SH FILES\n",
    ".TP\n/etc/drbd\\-agent/agent.toml, /etc/drbd\\-agent/conf.d/*.toml\n",
    "The configuration, see \\fBdrbd\\-agent.toml\\fR(5).\n",
    ".TP\n/var/lib/drbd\\-agent/\nThe state directory (throttle\\-journal.json).\n",
    ".SH \"SEE ALSO\"\n",
    "\\fBdrbd\\-agent.toml\\fR(5), \\fBdrbdsetup\\fR(8), \\fBdrbdadm\\fR(8)\n",
);
