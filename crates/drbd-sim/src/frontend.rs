//! The `drbdsetup`/`drbdadm` stand-ins: send the command to `drbd-sim serve`
//! and reproduce its output and exit code exactly.
//!
//! Node: `--node NAME` anywhere in the arguments, else `DRBD_SIM_NODE`, else
//! the scenario's first node. Directory: `DRBD_SIM_DIR`. Without a running
//! server this behaves like drbdsetup on a machine without the DRBD module.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use super::protocol::{Reply, Request, EXIT_NO_MODULE, NO_MODULE, SOCKET_NAME};

/// `drbdadm --version` without a kernel module (DRBD_KERNEL_VERSION=0).
const ADM_VERSION_NO_MODULE: &str = "DRBDADM_BUILDTAG=GIT-hash:\\ drbd-sim\\ build\n\
DRBDADM_API_VERSION=2\n\
DRBD_KERNEL_VERSION_CODE=0x000000\n\
DRBD_KERNEL_VERSION=0\n\
DRBDADM_VERSION_CODE=0x091e00\n\
DRBDADM_VERSION=9.30.0\n";

/// Takes `--node NAME` / `--node=NAME` out of the arguments.
pub fn split_node(args: &[String]) -> (Option<String>, Vec<String>) {
    let mut node = None;
    let mut rest = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--node" {
            node = iter.next().cloned();
        } else if let Some(value) = arg.strip_prefix("--node=") {
            node = Some(value.to_owned());
        } else {
            rest.push(arg.clone());
        }
    }
    (node, rest)
}

/// Runs `tool args…` against the simulator; returns the exit code.
pub fn run(tool: &str, args: &[String]) -> i32 {
    let (node, argv) = split_node(args);
    let node = node.or_else(|| {
        std::env::var("DRBD_SIM_NODE")
            .ok()
            .filter(|n| !n.is_empty())
    });
    let dir = std::env::var_os("DRBD_SIM_DIR").map(PathBuf::from);
    let stream = dir.and_then(|d| UnixStream::connect(d.join(SOCKET_NAME)).ok());
    let Some(stream) = stream else {
        return no_module(tool, &argv);
    };
    match talk(stream, tool, node, argv) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("drbd-sim: lost the simulator: {error}");
            EXIT_NO_MODULE
        }
    }
}

fn no_module(tool: &str, argv: &[String]) -> i32 {
    if tool == "drbdadm" && argv.first().is_some_and(|a| a == "--version" || a == "-V") {
        print!("{ADM_VERSION_NO_MODULE}");
        return 0;
    }
    eprintln!("{NO_MODULE}");
    EXIT_NO_MODULE
}

fn talk(
    stream: UnixStream,
    tool: &str,
    node: Option<String>,
    argv: Vec<String>,
) -> std::io::Result<i32> {
    let request = Request {
        tool: tool.to_owned(),
        node,
        argv,
    };
    let mut line = serde_json::to_string(&request).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut writer = stream.try_clone()?;
    writer.write_all(line.as_bytes())?;
    // Standard input goes to the server (events2 --poll reads it); its end
    // closes our write half. The thread dies with the process.
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = [0u8; 4096];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if writer.write_all(&buffer[..n]).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = writer.shutdown(std::net::Shutdown::Write);
    });
    let reader = BufReader::new(stream);
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    for line in reader.lines() {
        let line = line?;
        let reply: Reply = serde_json::from_str(&line).map_err(std::io::Error::other)?;
        match reply {
            Reply::Stdout(text) => {
                if text.is_empty() {
                    continue;
                }
                let mut out = stdout.lock();
                // The reader of our output went away: like drbdsetup, stop.
                if out
                    .write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return Ok(0);
                }
            }
            Reply::Stderr(text) => {
                let mut err = stderr.lock();
                let _ = err.write_all(text.as_bytes());
                let _ = err.flush();
            }
            Reply::Exit(code) => return Ok(code),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "no exit code",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_option_is_taken_out() {
        let args: Vec<String> = ["--node", "bravo", "events2", "--now"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let (node, rest) = split_node(&args);
        assert_eq!(node.as_deref(), Some("bravo"));
        assert_eq!(rest, vec!["events2", "--now"]);
        let (node, rest) = split_node(&["show".into(), "--node=x".into()]);
        assert_eq!(node.as_deref(), Some("x"));
        assert_eq!(rest, vec!["show"]);
    }
}
