//! `drbd-agent top`: a live full-screen view of a running agent (ratatui
//! on crossterm). [`model`] turns `/v1/status` documents into what is
//! shown (and derives the event log by diffing them), [`render`] draws it
//! and handles keys, [`run`] owns the terminal and the HTTP fetch.

pub mod model;
pub mod render;
pub mod run;

pub use run::run;

/// What stops `top`.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}
