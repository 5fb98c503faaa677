//! Running drbdsetup / drbdadm once, with a timeout and typed errors.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// The default time a one-shot command may take.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest stderr text kept in an error.
const MAX_STDERR: usize = 2000;

/// Why a command did not produce output.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{}: program not found", program.display())]
    NotFound { program: PathBuf },
    #[error("{}: cannot start: {source}", program.display())]
    Spawn { program: PathBuf, source: io::Error },
    #[error("{} {args}: exit code {}: {stderr}", program.display(), code.map_or_else(|| "none (killed by a signal)".to_owned(), |c| c.to_string()))]
    Failed {
        program: PathBuf,
        args: String,
        /// `None` when it was killed by a signal.
        code: Option<i32>,
        stderr: String,
    },
    #[error("{} {args}: no answer within {after:?}", program.display())]
    Timeout {
        program: PathBuf,
        args: String,
        after: Duration,
    },
    #[error("{}: {source}", program.display())]
    Io { program: PathBuf, source: io::Error },
}

impl CommandError {
    /// Maps a spawn failure to `NotFound` or `Spawn`.
    pub fn from_spawn(program: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            Self::NotFound {
                program: program.to_owned(),
            }
        } else {
            Self::Spawn {
                program: program.to_owned(),
                source,
            }
        }
    }
}

/// What a successful command printed (lossily decoded as UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args…` with no stdin, collects its output, and kills it when
/// `timeout` passes. A non-zero exit is [`CommandError::Failed`].
pub async fn run_command(
    program: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<CommandOutput, CommandError> {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Dropping the wait future on timeout kills the process.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CommandError::from_spawn(program, e))?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(source)) => {
            return Err(CommandError::Io {
                program: program.to_owned(),
                source,
            })
        }
        Err(_) => {
            return Err(CommandError::Timeout {
                program: program.to_owned(),
                args: args.join(" "),
                after: timeout,
            })
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        Ok(CommandOutput { stdout, stderr })
    } else {
        Err(CommandError::Failed {
            program: program.to_owned(),
            args: args.join(" "),
            code: output.status.code(),
            stderr: truncate(stderr.trim(), MAX_STDERR),
        })
    }
}

fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// The DRBD command-line tools as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrbdTools {
    pub drbdsetup: PathBuf,
    pub drbdadm: PathBuf,
    pub timeout: Duration,
}

impl DrbdTools {
    pub fn new(drbdsetup: PathBuf, drbdadm: PathBuf) -> Self {
        Self {
            drbdsetup,
            drbdadm,
            timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }

    /// `drbdsetup args…`.
    pub async fn drbdsetup(&self, args: &[&str]) -> Result<CommandOutput, CommandError> {
        run_command(&self.drbdsetup, args, self.timeout).await
    }

    /// `drbdadm args…`.
    pub async fn drbdadm(&self, args: &[&str]) -> Result<CommandOutput, CommandError> {
        run_command(&self.drbdadm, args, self.timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sh(script: &str, timeout: Duration) -> Result<CommandOutput, CommandError> {
        run_command(Path::new("/bin/sh"), &["-c", script], timeout).await
    }

    #[tokio::test]
    async fn success() {
        let out = sh("echo hello; echo warn >&2", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(out.stdout, "hello\n");
        assert_eq!(out.stderr, "warn\n");
    }

    #[tokio::test]
    async fn failure_has_code_and_stderr() {
        let err = sh(
            "echo 'no such resource' >&2; exit 10",
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
        match &err {
            CommandError::Failed { code, stderr, .. } => {
                assert_eq!(*code, Some(10));
                assert_eq!(stderr, "no such resource");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("exit code 10"), "{err}");
    }

    #[tokio::test]
    async fn not_found() {
        let err = run_command(
            Path::new("/nonexistent/drbdsetup"),
            &["status"],
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, CommandError::NotFound { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn timeout() {
        let err = sh("exec sleep 30", Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err:?}");
    }
}
