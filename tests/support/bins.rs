//! Where the workspace's binaries are.

use std::path::Path;
use std::sync::OnceLock;

/// drbd-agent, this package's binary.
pub const AGENT: &str = env!("CARGO_BIN_EXE_drbd-agent");

/// drbd-sim, built by its own package (crates/drbd-sim) into the directory
/// drbd-agent is built into. `cargo test` at the top of the workspace
/// builds both; a test run alone (`cargo test --test NAME`) builds only
/// this package, so run `cargo build -p drbd-sim` first.
pub fn sim() -> &'static str {
    static SIM: OnceLock<String> = OnceLock::new();
    SIM.get_or_init(|| {
        let path = Path::new(AGENT).with_file_name("drbd-sim");
        assert!(
            path.is_file(),
            "{} is missing: build it with `cargo build -p drbd-sim` (or run `cargo test` at the top of the workspace)",
            path.display()
        );
        path.display().to_string()
    })
}
