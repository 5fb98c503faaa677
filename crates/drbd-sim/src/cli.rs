//! The `drbd-sim` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use drbd_agent::cli::BenchCommand;

use super::{frontend, scenario, server};

#[derive(Debug, Parser)]
#[command(
    name = "drbd-sim",
    version,
    about = "DRBD simulator: kernel + drbd-utils stand-in"
)]
struct Cli {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Run a simulated cluster in real time.
    Serve {
        /// A scenario file or a built-in name: resync-3node, demo, or
        /// scale:N[:P[:V[:R]]] (generated: N resources x P peers (default 2)
        /// x V volumes (default 1), R timeline actions/s (default N/150, min 1)).
        #[arg(long)]
        scenario: String,
        /// Directory for the socket (sim.sock), sys/block/*/stat (first node) and <node>/sys/block/*/stat.
        #[arg(long, env = "DRBD_SIM_DIR")]
        dir: PathBuf,
        /// Which nodes get stat files (first: only DIR/sys/block; cheaper
        /// for thousands of devices).
        #[arg(long, value_enum, default_value = "all")]
        stat_files: server::StatFiles,
    },
    /// Act as drbdsetup (node: --node or DRBD_SIM_NODE; dir: DRBD_SIM_DIR).
    Drbdsetup {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Act as drbdadm (--version, adjust).
    Drbdadm {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a plant-mode scenario in virtual time (as fast as the CPU
    /// allows); one line per 1 s: time, Primary write latency p50/p99,
    /// resync rate, out-of-sync.
    Plant {
        #[arg(long)]
        scenario: String,
        /// Virtual time to run (like 10m, 90s).
        #[arg(long, default_value = "10m")]
        duration: String,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check a scenario file and print a summary.
    Check { scenario: String },
    /// List the built-in scenarios.
    Scenarios,
    /// The benchmarks in virtual time (what `drbd-agent bench` runs; the
    /// same arguments).
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Print a scripted story as `drbdsetup events2` prints it (no server).
    Story {
        name: String,
        #[arg(long, short = 'T')]
        timestamps: bool,
        #[arg(long, short = 's', action = clap::ArgAction::Count)]
        statistics: u8,
        #[arg(long, short = 'f')]
        full: bool,
    },
}

/// Runs `drbd-sim`; returns the process exit code.
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().collect();
    let invoked_as = args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_owned())
        .unwrap_or_default();
    if invoked_as == "drbdsetup" || invoked_as == "drbdadm" {
        return frontend::run(&invoked_as, &args[1..]);
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Sub::Drbdsetup { args } => frontend::run("drbdsetup", &args),
        Sub::Drbdadm { args } => frontend::run("drbdadm", &args),
        Sub::Serve {
            scenario,
            dir,
            stat_files,
        } => serve(&scenario, &dir, stat_files),
        Sub::Plant {
            scenario,
            duration,
            json,
        } => plant(&scenario, &duration, json),
        Sub::Check { scenario } => match scenario::load(&scenario) {
            Ok(s) => {
                println!(
                    "{scenario}: ok: {} nodes, {} resources, {} events{}",
                    s.nodes.len(),
                    s.resources.len(),
                    s.timeline.len(),
                    if s.repeat_at.is_some() {
                        ", repeats"
                    } else {
                        ""
                    }
                );
                0
            }
            Err(error) => {
                eprintln!("drbd-sim: {error}");
                1
            }
        },
        Sub::Bench { what } => match bench(what) {
            Ok(()) => 0,
            Err(error) => {
                eprintln!("drbd-sim bench: {}", chain(error.as_ref()));
                1
            }
        },
        Sub::Scenarios => {
            for (name, _) in scenario::BUILTIN {
                println!("{name}");
            }
            println!("{}", super::scale::SYNTAX);
            0
        }
        Sub::Story {
            name,
            timestamps,
            statistics,
            full,
        } => {
            let options = super::story::StoryOptions {
                timestamps,
                statistics,
                full,
            };
            match super::story::render(&name, options) {
                Ok(text) => {
                    print!("{text}");
                    0
                }
                Err(error) => {
                    eprintln!("drbd-sim story: {error}");
                    1
                }
            }
        }
    }
}

type BenchResult = Result<(), Box<dyn std::error::Error>>;

fn bench(what: BenchCommand) -> BenchResult {
    match what {
        BenchCommand::Throttle { scenario, json } => bench_throttle(&scenario, json),
        BenchCommand::Pressure { json } => {
            let report = crate::bench::pressure::run()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", crate::bench::pressure::render(&report));
            }
            Ok(())
        }
    }
}

fn bench_throttle(names: &[String], json: bool) -> BenchResult {
    use crate::bench;
    let seeds = names.iter().any(|n| n == "family-seeds");
    let unseen_seeds = names.iter().any(|n| n == "family-unseen-seeds");
    if seeds || unseen_seeds {
        let plants = if unseen_seeds {
            bench::family::unseen_plants()
        } else {
            bench::family::plants()
        };
        let report = bench::family_seeds::run_seeds(&plants, bench::family_seeds::SEEDS)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", bench::family_seeds::render_seeds(&report));
        }
        return Ok(());
    }
    let family = names.iter().any(|n| n == "family");
    let unseen = names.iter().any(|n| n == "family-unseen");
    if family || unseen {
        let report = if unseen {
            bench::family_run::run_family_of(&bench::family::unseen_plants())?
        } else {
            bench::family_run::run_family()?
        };
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", bench::family_run::render_family(&report));
        }
        return Ok(());
    }
    let scenarios = bench::select(names)?;
    let report = bench::run_all(&scenarios)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", bench::render_table(&report));
    }
    Ok(())
}

/// An error and its sources, `a: b: c`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn plant(name: &str, duration: &str, json: bool) -> i32 {
    let duration = match scenario::parse_duration(duration) {
        Ok(d) => d,
        Err(error) => {
            eprintln!("drbd-sim plant: --duration: {error}");
            return 2;
        }
    };
    let scenario = match scenario::load(name) {
        Ok(s) => s,
        Err(error) => {
            eprintln!("drbd-sim: {error}");
            return 1;
        }
    };
    let ran = super::plant_bridge::run_virtual(scenario, duration, |w| {
        let line = super::plant_bridge::WindowLine::of(w);
        if json {
            match serde_json::to_string(&line) {
                Ok(text) => println!("{text}"),
                Err(error) => eprintln!("drbd-sim plant: {error}"),
            }
        } else {
            println!("{}", line.text());
        }
    });
    match ran {
        Some(()) => 0,
        None => {
            eprintln!("drbd-sim plant: scenario '{name}' has no plant keys (disk, [[link]], load)");
            1
        }
    }
}

fn serve(name: &str, dir: &std::path::Path, stat_files: server::StatFiles) -> i32 {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let scenario = match scenario::load(name) {
        Ok(s) => s,
        Err(error) => {
            eprintln!("drbd-sim: {error}");
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("drbd-sim: cannot start the runtime: {error}");
            return 1;
        }
    };
    match runtime.block_on(server::serve_with(scenario, dir, stat_files)) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("drbd-sim: {error}");
            1
        }
    }
}
