//! What the packages ship besides the binary, generated from the code so
//! it cannot drift: drbd-agent(8) from the CLI definitions, drbd-agent.toml(5)
//! from the shipped `config/agent.toml`, and bash, zsh and fish completions.
//! `drbd-agent generate-assets DIR` writes them (see `packaging/build`).

pub mod config_doc;
pub mod man;
pub mod roff;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::config::DEFAULT_CONFIG_TEXT;

/// The package version the pages name.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The shells completions are made for, with their file names.
pub const SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "drbd-agent.bash"),
    (Shell::Zsh, "_drbd-agent"),
    (Shell::Fish, "drbd-agent.fish"),
];

/// An asset that cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct AssetError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// drbd-agent.toml(5) in roff.
pub fn config_man_page() -> String {
    config_doc::man_page(&config_doc::parse(DEFAULT_CONFIG_TEXT), VERSION)
}

/// drbd-agent(8) in roff.
pub fn agent_man_page() -> std::io::Result<String> {
    man::man_page(VERSION)
}

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> String {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "drbd-agent", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes `man/drbd-agent.8.gz`, `man/drbd-agent.toml.5.gz` and
/// `completions/*` under `dir`; returns the files written.
pub fn write_all(dir: &Path) -> Result<Vec<PathBuf>, AssetError> {
    let at = |path: &Path| {
        let path = path.to_owned();
        move |source| AssetError { path, source }
    };
    let man = dir.join("man");
    let completions = dir.join("completions");
    for sub in [&man, &completions] {
        std::fs::create_dir_all(sub).map_err(at(sub))?;
    }
    let mut written = Vec::new();
    let page = agent_man_page().map_err(at(&man))?;
    for (name, text) in [
        ("drbd-agent.8.gz", page),
        ("drbd-agent.toml.5.gz", config_man_page()),
    ] {
        let path = man.join(name);
        std::fs::write(&path, gzip(text.as_bytes()).map_err(at(&path))?).map_err(at(&path))?;
        written.push(path);
    }
    for (shell, name) in SHELLS {
        let path = completions.join(name);
        std::fs::write(&path, completion(shell)).map_err(at(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// Gzip at the best level with no name and no time stamp (reproducible).
fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}
