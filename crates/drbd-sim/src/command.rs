//! drbdsetup/drbdadm argument parsing for the subset the simulator answers.
//!
//! Exit codes (chosen to match drbdsetup): 20 for usage errors (bad option,
//! bad number, value out of range — drbdsetup refuses these before talking
//! to the kernel), 10 for errors the kernel reports (unknown resource or
//! peer device, injected command failures).

use thiserror::Error;

use crate::events2::format::FormatOptions;

use super::options::{OptionChange, OptionError};

/// Exit code for usage errors.
pub const EXIT_USAGE: i32 = 20;
/// Exit code for errors the kernel reports.
pub const EXIT_KERNEL: i32 = 10;

/// What a `drbdsetup events2` client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Events2Args {
    pub format: FormatOptions,
    pub timestamps: bool,
    pub now: bool,
    pub poll: bool,
    /// A resource name or `all`.
    pub target: String,
}

/// A command the simulator can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Events2(Events2Args),
    PeerDeviceOptions {
        resource: String,
        peer_node_id: u32,
        volume: u32,
        change: OptionChange,
    },
    Show {
        target: String,
    },
    Status {
        target: String,
    },
    AdmVersion,
    AdmAdjust {
        target: String,
    },
}

/// A command line the simulator refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UsageError {
    #[error("{0}")]
    Option(#[from] OptionError),
    #[error("{tool} {command}: {message}")]
    Bad {
        tool: String,
        command: String,
        message: String,
    },
    #[error("{tool}: unknown or unsupported command '{command}' (simulator)")]
    Unsupported { tool: String, command: String },
    #[error("{tool}: missing command")]
    Missing { tool: String },
}

fn bad(tool: &str, command: &str, message: impl Into<String>) -> UsageError {
    UsageError::Bad {
        tool: tool.to_owned(),
        command: command.to_owned(),
        message: message.into(),
    }
}

/// Parses `tool argv…`.
pub fn parse(tool: &str, argv: &[String]) -> Result<Command, UsageError> {
    let Some(command) = argv.first() else {
        return Err(UsageError::Missing {
            tool: tool.to_owned(),
        });
    };
    let rest = &argv[1..];
    match (tool, command.as_str()) {
        ("drbdsetup", "events2") => parse_events2(rest).map(Command::Events2),
        ("drbdsetup", "peer-device-options") => parse_peer_device_options(rest),
        ("drbdsetup", "show" | "status") => {
            let mut target = None;
            let mut json = false;
            for arg in rest {
                match arg.as_str() {
                    "--json" | "-j" => json = true,
                    "--verbose" | "-v" | "--statistics" | "-s" | "--color=never" => {}
                    a if a.starts_with('-') => {
                        return Err(bad(tool, command, format!("unknown option '{a}'")))
                    }
                    a if target.is_none() => target = Some(a.to_owned()),
                    a => return Err(bad(tool, command, format!("unexpected argument '{a}'"))),
                }
            }
            if !json {
                return Err(bad(tool, command, "the simulator answers only --json"));
            }
            let target = target.unwrap_or_else(|| "all".into());
            Ok(if command == "show" {
                Command::Show { target }
            } else {
                Command::Status { target }
            })
        }
        ("drbdadm", "--version" | "-V") => Ok(Command::AdmVersion),
        ("drbdadm", "adjust") => {
            let targets: Vec<&String> = rest.iter().filter(|a| !a.starts_with('-')).collect();
            match targets.as_slice() {
                [target] => Ok(Command::AdmAdjust {
                    target: (*target).clone(),
                }),
                _ => Err(bad(tool, command, "expected one resource name or 'all'")),
            }
        }
        _ => Err(UsageError::Unsupported {
            tool: tool.to_owned(),
            command: command.clone(),
        }),
    }
}

fn parse_events2(args: &[String]) -> Result<Events2Args, UsageError> {
    let mut out = Events2Args::default();
    let mut target = None;
    let mut iter = args.iter();
    let usage = |m: String| bad("drbdsetup", "events2", m);
    while let Some(arg) = iter.next() {
        if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            match name {
                "timestamps" => out.timestamps = true,
                "statistics" => out.format.statistics = out.format.statistics.saturating_add(1),
                "full" => out.format.full = true,
                "now" => out.now = true,
                "poll" => out.poll = true,
                "diff" => {}
                "color" => {
                    if value.is_none() && iter.next().is_none() {
                        return Err(usage("option '--color' needs a value".into()));
                    }
                }
                _ => return Err(usage(format!("unknown option '{arg}'"))),
            }
            continue;
        }
        if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = shorts.chars();
            while let Some(c) = chars.next() {
                match c {
                    'T' => out.timestamps = true,
                    's' => out.format.statistics = out.format.statistics.saturating_add(1),
                    'f' => out.format.full = true,
                    'n' => out.now = true,
                    'p' => out.poll = true,
                    'c' => {
                        // The value is the rest of this word, or the next word.
                        if chars.as_str().is_empty() && iter.next().is_none() {
                            return Err(usage("option '-c' needs a value".into()));
                        }
                        break;
                    }
                    other => return Err(usage(format!("unknown option '-{other}'"))),
                }
            }
            continue;
        }
        if target.is_some() {
            return Err(usage(format!("unexpected argument '{arg}'")));
        }
        target = Some(arg.clone());
    }
    if out.format.full && out.format.statistics == 0 {
        out.format.statistics = 1;
    }
    out.target = target.unwrap_or_else(|| "all".into());
    Ok(out)
}

fn parse_peer_device_options(args: &[String]) -> Result<Command, UsageError> {
    // `--name value` takes the next word as its value.
    let mut position = Vec::new();
    let mut option_words = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if let Some(body) = arg.strip_prefix("--") {
            option_words.push(arg.clone());
            if !body.contains('=') && body != "set-defaults" {
                if let Some(value) = iter.next() {
                    option_words.push(value.clone());
                }
            }
        } else {
            position.push(arg.clone());
        }
    }
    let usage = |m: String| bad("drbdsetup", "peer-device-options", m);
    let [resource, peer, volume] = position.as_slice() else {
        return Err(usage(
            "expected <resource> <peer_node_id> <volume> [options]".into(),
        ));
    };
    let peer_node_id = peer
        .parse()
        .map_err(|_| usage(format!("invalid peer_node_id '{peer}'")))?;
    let volume = volume
        .parse()
        .map_err(|_| usage(format!("invalid volume '{volume}'")))?;
    Ok(Command::PeerDeviceOptions {
        resource: resource.clone(),
        peer_node_id,
        volume,
        change: OptionChange::parse(&option_words)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn events2_flags() {
        let Command::Events2(e) = parse(
            "drbdsetup",
            &argv("events2 -T -s -s --full --poll -c never r0"),
        )
        .unwrap() else {
            panic!("not events2")
        };
        assert!(e.timestamps && e.poll && e.format.full && !e.now);
        assert_eq!(e.format.statistics, 2);
        assert_eq!(e.target, "r0");
        let Command::Events2(e) =
            parse("drbdsetup", &argv("events2 -Tsn --color=never all")).unwrap()
        else {
            panic!("not events2")
        };
        assert!(e.timestamps && e.now);
        assert_eq!(e.format.statistics, 1);
        let Command::Events2(e) = parse("drbdsetup", &argv("events2 --full")).unwrap() else {
            panic!("not events2")
        };
        assert_eq!(e.format.statistics, 1);
        assert_eq!(e.target, "all");
        assert!(parse("drbdsetup", &argv("events2 --bogus")).is_err());
        assert!(parse("drbdsetup", &argv("events2 -x")).is_err());
        assert!(parse("drbdsetup", &argv("events2 r0 r1")).is_err());
    }

    #[test]
    fn peer_device_options() {
        let cmd = parse(
            "drbdsetup",
            &argv("peer-device-options r0 1 0 --c-max-rate=10M --c-min-rate 0"),
        )
        .unwrap();
        let Command::PeerDeviceOptions {
            resource,
            peer_node_id,
            volume,
            change,
        } = cmd
        else {
            panic!("wrong command")
        };
        assert_eq!((resource.as_str(), peer_node_id, volume), ("r0", 1, 0));
        assert_eq!(
            change.values,
            vec![("c-max-rate", 10240), ("c-min-rate", 0)]
        );
        assert!(matches!(
            parse(
                "drbdsetup",
                &argv("peer-device-options r0 1 0 --c-max-rate=9G")
            ),
            Err(UsageError::Option(OptionError::OutOfRange { .. }))
        ));
        assert!(parse("drbdsetup", &argv("peer-device-options r0 x 0")).is_err());
        assert!(parse("drbdsetup", &argv("peer-device-options r0 1")).is_err());
    }

    #[test]
    fn show_status_adm() {
        assert_eq!(
            parse("drbdsetup", &argv("show --json r0")).unwrap(),
            Command::Show {
                target: "r0".into()
            }
        );
        assert!(parse("drbdsetup", &argv("show r0")).is_err());
        assert_eq!(
            parse("drbdsetup", &argv("status --json")).unwrap(),
            Command::Status {
                target: "all".into()
            }
        );
        assert_eq!(
            parse("drbdadm", &argv("--version")).unwrap(),
            Command::AdmVersion
        );
        assert_eq!(
            parse("drbdadm", &argv("adjust r0")).unwrap(),
            Command::AdmAdjust {
                target: "r0".into()
            }
        );
        assert!(matches!(
            parse("drbdadm", &argv("up r0")),
            Err(UsageError::Unsupported { .. })
        ));
        assert!(matches!(
            parse("drbdsetup", &[]),
            Err(UsageError::Missing { .. })
        ));
    }
}
