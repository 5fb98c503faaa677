//! Reading the configuration files (the only I/O of the config module).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError};

/// Where `run` and `check-config` look without `--config`.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/drbd-agent/agent.toml";

/// The `conf.d/*.toml` files beside `main`, sorted by file name. A missing
/// `conf.d` directory means none.
pub fn conf_d_files(main: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let dir = main
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("conf.d");
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(ConfigError::Read { path: dir, error }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| ConfigError::Read {
            path: dir.clone(),
            error,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// Reads `main` and its `conf.d/*.toml` and builds the configuration. When
/// `main` does not exist and `required` is false (the default path was not
/// given explicitly), the defaults are used and only conf.d is read.
pub fn load(main: &Path, required: bool) -> Result<Config, ConfigError> {
    let mut sources = Vec::new();
    match fs::read_to_string(main) {
        Ok(text) => sources.push((main.to_owned(), text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !required => {}
        Err(error) => {
            return Err(ConfigError::Read {
                path: main.to_owned(),
                error,
            })
        }
    }
    for path in conf_d_files(main)? {
        let text = fs::read_to_string(&path).map_err(|error| ConfigError::Read {
            path: path.clone(),
            error,
        })?;
        sources.push((path, text));
    }
    Config::from_sources(&sources)
}
