//! The `drbd-agent` command line (clap definitions). The binary in
//! `src/bin/drbd-agent.rs` runs it; [`crate::assets`] renders the man page and
//! the shell completions from the same definitions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::DEFAULT_CONFIG_PATH;

/// The documented command line (man page and completions are made from it).
#[derive(Debug, Parser)]
#[command(name = "drbd-agent", version, about = "Node agent for DRBD")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What the binary parses: [`Cli`] plus the hidden packaging command, kept
/// apart so that no man page or completion offers it.
#[derive(Debug, Parser)]
#[command(name = "drbd-agent", version, about = "Node agent for DRBD")]
pub struct Invocation {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    #[command(flatten)]
    Documented(Command),
    /// Write the man pages and shell completions into DIR (packaging).
    #[command(hide = true)]
    GenerateAssets {
        /// The output directory (created if missing).
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent until SIGTERM or Ctrl-C; SIGHUP re-reads the
    /// configuration (`[throttle]` and the DRBD tools apply live, the rest
    /// needs a restart).
    Run {
        /// Main configuration file; conf.d/*.toml beside it is read too.
        #[arg(long, short, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Validate the configuration and print a summary.
    CheckConfig {
        /// Main configuration file; conf.d/*.toml beside it is read too.
        #[arg(long, short, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Show the replication state from a running agent.
    Status {
        /// The agent's API (`https://...` when its web config has TLS).
        #[arg(long, default_value = "http://127.0.0.1:9943")]
        url: String,
        /// Print the raw JSON document.
        #[arg(long)]
        json: bool,
        /// PEM CA to trust for an `https://` URL (besides the system roots).
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// PEM client certificate, when the web config requires one.
        #[arg(long, requires = "client_key")]
        client_certificate: Option<PathBuf>,
        /// PEM private key of the client certificate.
        #[arg(long, requires = "client_certificate")]
        client_key: Option<PathBuf>,
        /// Basic-auth user; the password is read from DRBD_AGENT_PASSWORD.
        #[arg(long)]
        user: Option<String>,
        /// Print the table again every --interval until Ctrl-C (plain
        /// text, one table after another: scrollback keeps them).
        #[arg(long)]
        watch: bool,
        /// How often --watch prints (`2s`, `500ms`, `1m`).
        #[arg(long, default_value = "2s", value_parser = parse_interval, requires = "watch")]
        interval: Duration,
    },
    /// A live full-screen view of a running agent: resources, peers,
    /// resync progress, the throttle and recent events (`q` quits, `?` help).
    Top {
        /// The agent's API.
        #[arg(long, default_value = "http://127.0.0.1:9943")]
        url: String,
    },
    /// Run the agent against the DRBD simulator (`drbd-sim`) until Ctrl-C:
    /// an application writing, a peer coming back and resyncing, and the
    /// agent throttling the resync to a 5 ms latency target.
    Demo {
        /// Where the demo agent's API listens.
        #[arg(long, default_value = "127.0.0.1:9943")]
        listen: SocketAddr,
        /// The simulator scenario.
        #[arg(long, default_value = "demo")]
        scenario: String,
        /// Leave the resync to DRBD's own pacer (the throttle disabled),
        /// to compare with the throttled demo.
        #[arg(long)]
        no_throttle: bool,
    },
    /// Benchmarks in virtual time.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Judge the resync throttle against other strategies on the plant model.
    Throttle {
        /// A built-in scenario (steady, steps, bursts, diurnal,
        /// network-bound, three-resyncs) or a scenario file (a path with a
        /// `/` or ending in .toml); repeatable; default all built-ins.
        /// `family`: the family of plants of a different kind (S, C,
        /// noise, load and role spread), its own table; `family-unseen`:
        /// a second family the law was not tuned on; `family-seeds`,
        /// `family-unseen-seeds`: the agent on each with 10 seeds, pooled.
        #[arg(long)]
        scenario: Vec<String>,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compare the SyncTarget throttle with local signals only and with the
    /// pressure of the Primary, where the Primary is the SyncSource and its
    /// disk the bottleneck.
    Pressure {
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl BenchCommand {
    /// The command line that parses back into this command (`drbd-agent
    /// bench` hands it to `drbd-sim bench`).
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let json = match self {
            BenchCommand::Throttle { scenario, json } => {
                args.push("throttle".to_owned());
                // `--scenario=NAME`: a value that begins with `-` stays a value.
                args.extend(scenario.iter().map(|name| format!("--scenario={name}")));
                *json
            }
            BenchCommand::Pressure { json } => {
                args.push("pressure".to_owned());
                *json
            }
        };
        if json {
            args.push("--json".to_owned());
        }
        args
    }
}

/// Why an `--interval` was refused.
#[derive(Debug, thiserror::Error)]
enum IntervalError {
    #[error(transparent)]
    Unreadable(#[from] crate::config::DurationError),
    #[error("{0}: must be between 100ms and 1h")]
    OutOfRange(String),
}

/// `--interval`: a duration with a unit, 100 ms to 1 h.
fn parse_interval(text: &str) -> Result<Duration, IntervalError> {
    let interval = crate::config::parse_duration(text)?;
    if interval < Duration::from_millis(100) || interval > Duration::from_secs(3600) {
        return Err(IntervalError::OutOfRange(text.to_owned()));
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_read_with_units_and_bounded() {
        assert_eq!(parse_interval("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_interval("100ms").unwrap(), Duration::from_millis(100));
        assert!(matches!(
            parse_interval("50ms"),
            Err(IntervalError::OutOfRange(text)) if text == "50ms"
        ));
        assert!(matches!(
            parse_interval("2h"),
            Err(IntervalError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_interval("2"),
            Err(IntervalError::Unreadable(_))
        ));
        assert_eq!(
            parse_interval("1ms").unwrap_err().to_string(),
            "1ms: must be between 100ms and 1h"
        );
    }

    /// `drbd-agent bench` hands `args()` to `drbd-sim bench`, which parses
    /// them with the same definitions: every form must come back unchanged.
    #[test]
    fn bench_arguments_parse_back_into_the_same_command() {
        fn parsed(args: &[String]) -> BenchCommand {
            let mut argv = vec!["drbd-agent".to_owned(), "bench".to_owned()];
            argv.extend_from_slice(args);
            match Cli::try_parse_from(&argv).unwrap().command {
                Command::Bench { what } => what,
                other => panic!("not bench: {other:?}"),
            }
        }
        let forms = [
            BenchCommand::Throttle {
                scenario: vec![],
                json: false,
            },
            BenchCommand::Throttle {
                scenario: vec!["family".into(), "./my file.toml".into(), "--json".into()],
                json: true,
            },
            BenchCommand::Pressure { json: false },
            BenchCommand::Pressure { json: true },
        ];
        for form in forms {
            let args = form.args();
            assert_eq!(
                format!("{:?}", parsed(&args)),
                format!("{form:?}"),
                "{args:?}"
            );
        }
    }
}
