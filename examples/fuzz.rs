//! The fuzz campaign (not part of CI; CI replays the saved corpus in
//! `tests/fuzz_corpus.rs`):
//!
//! ```text
//! cargo run --release --example fuzz -- --cases 10000000 [--target NAME]... [--seed N] [--no-save]
//! ```
//!
//! Runs every target (or the named ones) for `--cases` inputs each, adds
//! inputs with new outcomes to `tests/data/fuzz/<target>/` and writes each
//! crashing input there as `crash-<hash>` (exit status 1 if any).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::path::PathBuf;
use std::process::ExitCode;

use drbd_agent::fuzz::{campaign, targets};

fn main() -> ExitCode {
    let mut cases: u64 = 1_000_000;
    let mut seed: u64 = 1;
    let mut save = true;
    let mut wanted: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--cases" => {
                cases = value("--cases").parse().unwrap_or_else(|_| {
                    eprintln!("--cases: a number");
                    std::process::exit(2)
                })
            }
            "--seed" => {
                seed = value("--seed").parse().unwrap_or_else(|_| {
                    eprintln!("--seed: a number");
                    std::process::exit(2)
                })
            }
            "--target" => wanted.push(value("--target")),
            "--no-save" => save = false,
            other => {
                eprintln!("unknown argument {other:?}");
                return ExitCode::from(2);
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    // Panics are caught and counted; their default report would flood.
    std::panic::set_hook(Box::new(|_| {}));
    let mut crashed = false;
    println!("target\tinputs\tcrashes\tcorpus_before\tcorpus_after\tsignatures\tseconds\tinputs_per_second");
    for target in targets() {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == target.name) {
            continue;
        }
        let report = match campaign(&target, cases, seed, &root, save) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("{}: {e}", target.name);
                return ExitCode::FAILURE;
            }
        };
        let seconds = report.elapsed.as_secs_f64();
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{:.1}\t{:.0}",
            report.target,
            report.inputs,
            report.crashes.len(),
            report.corpus_before,
            report.corpus_after,
            report.signatures,
            seconds,
            report.inputs as f64 / seconds.max(1e-9)
        );
        for (input, message) in &report.crashes {
            crashed = true;
            eprintln!(
                "{}: CRASH {message}: {:?}",
                report.target,
                String::from_utf8_lossy(&input[..input.len().min(200)])
            );
        }
    }
    if crashed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
