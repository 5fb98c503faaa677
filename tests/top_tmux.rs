//! `drbd-agent top` in a real terminal: tmux (scripts/test-all installs
//! it; without it this test fails, it does not skip). The demo runs, `top`
//! attaches in an 80×24 pane; within 90 s the pane shows the throttled
//! resync's progress bar and a setpoint, every line fits 80 columns and the
//! frame's borders are whole; `q` exits 0 and leaves the alternate screen
//! (the pane shows the shell's output again, not the view).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod demo_common;
}
use support::demo_common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use demo_common::Demo;

/// A tmux server of its own (`tmux -L NAME`), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux {
            socket: format!("drbd-agent-top-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run tmux ({e}): install it (scripts/test-all does: apt-get install tmux)")
            })
    }

    fn capture(&self) -> Vec<String> {
        let output = self.run(&["capture-pane", "-p", "-t", "top"]);
        assert!(output.status.success(), "capture-pane: {output:?}");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn shows_bar_and_setpoint(lines: &[String]) -> bool {
    let text = lines.join("\n");
    let bar = lines
        .iter()
        .any(|l| l.contains("[█") || l.contains("░]") && l.contains('%'));
    let setpoint = text
        .split("setpoint ")
        .nth(1)
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    bar && setpoint
}

#[test]
fn top_shows_the_throttled_resync_in_80x24_and_q_restores_the_terminal() {
    let mut demo = Demo::start(&[]);
    let exit_file = tempfile::NamedTempFile::new().expect("temp file");
    let exit_path = exit_file.path().to_owned();
    let tmux = Tmux::new();
    let command = format!(
        "'{}' top --url {}; echo EXIT=$? > '{}'; echo top-has-exited; sleep 120",
        env!("CARGO_BIN_EXE_drbd-agent"),
        demo.url(),
        exit_path.display()
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-x",
        "80",
        "-y",
        "24",
        "-s",
        "top",
        "sh",
        "-c",
        &command,
    ]);
    assert!(started.status.success(), "tmux new-session: {started:?}");

    let start = Instant::now();
    let lines = loop {
        demo.assert_running();
        let lines = tmux.capture();
        if shows_bar_and_setpoint(&lines) {
            break lines;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no progress bar and setpoint within 90 s:\n{}",
            lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let screen = lines.join("\n");
    assert!(lines.len() <= 24, "{screen}");
    for line in &lines {
        assert!(line.chars().count() <= 80, "wider than 80: {line:?}");
    }
    // The frame: the title border, the panels' borders, the key line.
    assert!(lines[0].starts_with("┌ drbd-agent top"), "{screen}");
    assert!(lines[0].ends_with('┐'), "{screen}");
    for title in ["┌ throttle ", "┌ events "] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(title))
            .unwrap_or_else(|| panic!("no {title:?} border:\n{screen}"));
        assert_eq!(line.chars().count(), 80, "{line:?}");
        assert!(line.ends_with('┐'), "{line:?}");
    }
    let bottoms = lines
        .iter()
        .filter(|l| l.starts_with('└') && l.ends_with('┘') && l.chars().count() == 80)
        .count();
    assert_eq!(bottoms, 3, "{screen}");
    assert!(lines.iter().any(|l| l.contains("q quit")), "{screen}");
    let inner = lines
        .iter()
        .filter(|l| l.starts_with('│'))
        .all(|l| l.ends_with('│') && l.chars().count() == 80);
    assert!(inner, "a panel line is not closed at column 80:\n{screen}");

    // q: top exits 0, the shell's output is back.
    let sent = tmux.run(&["send-keys", "-t", "top", "q"]);
    assert!(sent.status.success(), "{sent:?}");
    let start = Instant::now();
    let exit = loop {
        let text = std::fs::read_to_string(&exit_path).unwrap_or_default();
        if text.starts_with("EXIT=") {
            break text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "top did not exit on q:\n{}",
            tmux.capture().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(exit.trim(), "EXIT=0");
    let start = Instant::now();
    loop {
        let after = tmux.capture().join("\n");
        if after.contains("top-has-exited") {
            assert!(
                !after.contains("drbd-agent top ─") && !after.contains("┌ throttle"),
                "the view is still on the screen after q:\n{after}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the shell's output did not come back:\n{after}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(Path::new(&exit_path).exists());
    assert!(demo.stop().success());
}
