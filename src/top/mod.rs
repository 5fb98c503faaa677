//! `drbd-agent top`: a live full-screen view of a running agent.

/// What stops `top`.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

/// Runs the view until `q`.
pub fn run(_url: &str) -> Result<(), TopError> {
    Ok(())
}
