//! The saved fuzz corpus (`tests/data/fuzz/<target>/`, written by
//! `cargo run --release --example fuzz -- --cases N`) replayed as
//! regression tests: every input of every target runs without a panic, and
//! every target has a corpus (a target without one, or a directory without
//! a target, fails).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::collections::BTreeSet;
use std::path::Path;

use drbd_agent::fuzz::{corpus, run_guarded, targets};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fuzz");

#[test]
fn every_target_has_a_corpus_and_every_directory_a_target() {
    let names: BTreeSet<String> = targets().iter().map(|t| t.name.to_owned()).collect();
    let directories: BTreeSet<String> = std::fs::read_dir(ROOT)
        .expect("tests/data/fuzz")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, directories);
    for name in &names {
        let entries = corpus(Path::new(ROOT), name).expect("read corpus");
        assert!(!entries.is_empty(), "{name}: empty corpus");
    }
}

#[test]
fn the_corpus_replays_without_a_panic() {
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    let mut replayed = 0;
    for target in targets() {
        for (file, input) in corpus(Path::new(ROOT), target.name).expect("read corpus") {
            replayed += 1;
            if let Err(message) = run_guarded(&target, &input) {
                failures.push(format!("{}/{file}: {message}", target.name));
            }
        }
    }
    let _ = std::panic::take_hook();
    assert!(replayed > 0, "nothing replayed");
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_panicking_input_is_reported_not_swallowed() {
    // The guard itself: a target that panics is an Err with the message.
    let target = drbd_agent::fuzz::Target {
        name: "always-panics",
        run: |_| panic!("boom"),
        generate: |_| Vec::new(),
        dictionary: &[],
    };
    std::panic::set_hook(Box::new(|_| {}));
    let result = run_guarded(&target, b"x");
    let _ = std::panic::take_hook();
    assert_eq!(result, Err("boom".to_owned()));
}

#[test]
fn the_http_server_target_reaches_the_router_and_the_gate() {
    let targets = targets();
    let server = targets
        .iter()
        .find(|t| t.name == "http-server")
        .expect("http-server target");
    let answer = |request: &str| run_guarded(server, request.as_bytes()).expect("no panic");
    // No supervisor in the fuzz model: /healthz says so.
    assert_eq!(
        answer("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
        "ok:HTTP/1.1 503 Service Unavailable"
    );
    // The fuzz client is not on loopback and the gate has status = "local".
    assert_eq!(
        answer("GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"),
        "ok:HTTP/1.1 403 Forbidden"
    );
    assert_eq!(
        answer("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"),
        "ok:HTTP/1.1 404 Not Found"
    );
    assert!(answer("GET / HTTP/9\r\n\r\n").contains("400"));
}
