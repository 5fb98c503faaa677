//! The socket protocol between the `drbdsetup`/`drbdadm` front-end and
//! `drbd-sim serve` (Unix socket `DIR/sim.sock`).
//!
//! 1. The front-end sends one JSON line: a [`Request`].
//! 2. It then forwards its standard input as raw bytes (for `events2 --poll`:
//!    a line `n` re-dumps; end of input = shutdown of the write half).
//! 3. The server answers with JSON lines, each a [`Reply`]: output chunks for
//!    stdout or stderr (whole lines), and finally one `exit` with the code
//!    the front-end exits with.

use serde::{Deserialize, Serialize};

/// The socket's file name inside the simulator directory.
pub const SOCKET_NAME: &str = "sim.sock";

/// What drbdsetup prints when the DRBD module is not loaded.
pub const NO_MODULE: &str = "Could not connect to 'drbd' generic netlink family";

/// Exit code of drbdsetup when the module is not loaded, on a receive
/// buffer overrun and on usage errors.
pub const EXIT_NO_MODULE: i32 = 20;

/// One command run on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `drbdsetup` or `drbdadm`.
    pub tool: String,
    /// The node whose view is wanted; None = the scenario's first node.
    pub node: Option<String>,
    /// Arguments after the tool name.
    pub argv: Vec<String>,
}

/// One message from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    Stdout(String),
    Stderr(String),
    Exit(i32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shapes() {
        let request = Request {
            tool: "drbdsetup".into(),
            node: Some("alpha".into()),
            argv: vec!["events2".into(), "--now".into()],
        };
        let line = serde_json::to_string(&request).unwrap();
        assert_eq!(
            line,
            r#"{"tool":"drbdsetup","node":"alpha","argv":["events2","--now"]}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), request);
        assert_eq!(
            serde_json::to_string(&Reply::Exit(20)).unwrap(),
            r#"{"exit":20}"#
        );
        assert_eq!(
            serde_json::from_str::<Reply>(r#"{"stdout":"x\n"}"#).unwrap(),
            Reply::Stdout("x\n".into())
        );
    }
}
