//! Scenario files: the simulated cluster (nodes, resources, volumes) and a
//! timeline of events. TOML, strictly checked: every error names the file,
//! the line and the key.
//!
//! ```toml
//! [[node]]
//! name = "alpha"
//! node-id = 0
//! address = "10.0.0.1"        # optional, default 10.0.0.<node-id + 1>
//!
//! [[resource]]
//! name = "r0"
//! port = 7000                 # optional, default 7000
//! nodes = ["alpha", "bravo"]  # optional, default all nodes
//! primary = "alpha"           # optional
//! write-rate = "20M"          # foreground writes on the primary, KiB/s per volume
//! resync-capacity = "70M"     # what network and disks allow a resync, KiB/s
//! options = { c-max-rate = "100M", c-plan-ahead = 20 }   # configured peer-device options
//! [[resource.volume]]
//! volume = 0
//! minor = 1000
//! size = "10G"                # KiB, suffixes k M G T
//! backing-disk = "/dev/vg0/r0"
//! backing-device = "dm-0"     # block device name of the backing disk (stat file)
//!
//! [[event]]
//! at = "5s"
//! action = "disconnect"       # reconnect promote demote destroy fault repeat
//! nodes = ["alpha", "bravo"]
//! ```

use std::time::Duration;

use thiserror::Error;

use super::options::PeerDeviceOptions;
use super::scenario_check::{line_of, Checker, RawScenario};

/// Built-in scenarios by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("resync-3node", include_str!("scenarios/resync-3node.toml")),
    ("demo", include_str!("scenarios/demo.toml")),
    (
        "throttle-demo",
        include_str!("scenarios/throttle-demo.toml"),
    ),
];

/// A scenario that could not be read.
#[derive(Debug, Error)]
pub enum ScenarioError {
    #[error("{file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    #[error(
        "unknown scenario '{0}' (not a file; built-in: resync-3node, demo, throttle-demo, scale:N[:P[:V[:R]]])"
    )]
    Unknown(String),
    #[error("generated scenario {0}")]
    Scale(#[from] super::scale::ScaleNameError),
}

/// A checked scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub nodes: Vec<NodeSpec>,
    pub resources: Vec<ResourceSpec>,
    /// Events sorted by time (stable for equal times).
    pub timeline: Vec<TimedEvent>,
    /// With a `repeat` event: the timeline starts over at this time.
    pub repeat_at: Option<Duration>,
    /// Plant mode: set when the scenario has `disk`, `[[link]]` or `load`
    /// keys (see [`super::scenario_plant`]).
    pub plant: Option<super::scenario_plant::PlantConfig>,
}

impl Scenario {
    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// A node's node-id.
    pub fn node_id(&self, name: &str) -> Option<u32> {
        self.node(name).map(|n| n.node_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub node_id: u32,
    /// IPv4 address without port.
    pub address: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSpec {
    pub name: String,
    pub port: u16,
    /// Node names that have this resource.
    pub nodes: Vec<String>,
    pub primary: Option<String>,
    /// KiB/s written per volume on the primary.
    pub write_rate: u64,
    /// KiB/s a resync can reach at most.
    pub resync_capacity: u64,
    /// Configured peer-device options (what `drbdadm adjust` restores).
    pub options: PeerDeviceOptions,
    pub volumes: Vec<VolumeSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    pub volume: u32,
    pub minor: u32,
    pub size_kib: u64,
    pub backing_disk: String,
    /// Block device name (under sys/block) of the backing disk.
    pub backing_device: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimedEvent {
    pub at: Duration,
    pub action: Action,
}

/// What happens at a point of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The link between two nodes fails (all or one resource).
    Disconnect {
        resource: Option<String>,
        nodes: [String; 2],
    },
    /// The link comes back; a resync follows when data differs.
    Reconnect {
        resource: Option<String>,
        nodes: [String; 2],
        /// KiB to resync; default: what was written while disconnected.
        out_of_sync: Option<u64>,
        /// The SyncSource; default the primary, else the first node.
        source: Option<String>,
    },
    Promote {
        node: String,
        resource: String,
    },
    Demote {
        node: String,
        resource: String,
    },
    /// The resource goes away (on one node or all).
    Destroy {
        resource: String,
        node: Option<String>,
    },
    /// A fault on one node's drbdsetup/kernel.
    Fault {
        node: String,
        fault: Fault,
    },
}

/// Faults that hit the events2 clients and commands of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// events2 exits 20: receive buffer overrun.
    Overrun,
    /// events2 exits 121: module unloaded.
    ModuleUnloaded,
    /// events2 stops printing (stays connected) for a while, or forever.
    Hang { duration: Option<Duration> },
    /// events2 prints a line that is not events2.
    Garbage,
    /// The next `count` peer-device-options calls fail.
    CommandFail { count: u32 },
    /// The module is not loaded for a while: every command exits 20.
    ModuleMissing { duration: Duration },
}

// ---- value parsing (pure, reused by tests) ----

// Durations (`"5s"`, `"1.5s"`, `"0s"`) and KiB sizes (`"512M"`, a plain
// number): the one grammar of drbd-model's `units`, as in the agent's
// configuration.
pub use drbd_model::units::{parse_duration, parse_kib};

/// Scenario text → checked scenario; `file` names the source in errors.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(|err| {
        let line = err.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        ScenarioError::Invalid {
            file: file.to_owned(),
            line,
            message: err.message().trim().to_owned(),
        }
    })?;
    Checker { file, text }.check(raw)
}

/// Loads a built-in scenario by name, or a file.
pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
    if let Some(spec) = super::scale::parse_name(name_or_path) {
        let spec = spec.map_err(ScenarioError::Scale)?;
        return parse(
            &format!("<built-in {name_or_path}>"),
            &super::scale::toml(&spec),
        );
    }
    if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
        return parse(&format!("<built-in {name}>"), text);
    }
    let path = std::path::Path::new(name_or_path);
    if !path.exists() {
        return Err(ScenarioError::Unknown(name_or_path.to_owned()));
    }
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        file: name_or_path.to_owned(),
        source,
    })?;
    parse(name_or_path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[[node]]
name = "alpha"
node-id = 0

[[node]]
name = "bravo"
node-id = 1

[[resource]]
name = "r0"
primary = "alpha"
write-rate = "10M"
options = { c-max-rate = "50M" }
[[resource.volume]]
volume = 0
minor = 1000
size = "1G"
"#;

    fn err_of(extra: &str) -> (usize, String) {
        let text = format!("{BASE}{extra}");
        match parse("test.toml", &text) {
            Err(ScenarioError::Invalid { line, message, .. }) => (line, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn builtins_parse() {
        for (name, _) in BUILTIN {
            let scenario = load(name).unwrap();
            assert!(scenario.nodes.len() >= 2, "{name}");
            assert!(!scenario.timeline.is_empty(), "{name}");
        }
        assert!(load("demo").unwrap().repeat_at.is_some());
    }

    #[test]
    fn base_scenario_values() {
        let s = parse("t", BASE).unwrap();
        assert_eq!(s.nodes[1].address, "10.0.0.2");
        let r = &s.resources[0];
        assert_eq!(r.write_rate, 10 * 1024);
        assert_eq!(r.options.c_max_rate, 50 * 1024);
        assert_eq!(r.volumes[0].size_kib, 1 << 20);
        assert_eq!(r.volumes[0].backing_device, "dm-0");
        assert_eq!(r.nodes, vec!["alpha", "bravo"]);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let (line, message) = err_of("\n[[event]]\nat = \"1s\"\naction = \"demote\"\nbogus = 1\n");
        assert_eq!(line, 23);
        assert!(message.contains("bogus"), "{message}");
    }

    #[test]
    fn unknown_key_in_node() {
        let text = "[[node]]\nname = \"a\"\nnode-id = 0\ncolour = \"red\"\n";
        let err = parse("x.toml", text).unwrap_err().to_string();
        assert!(err.starts_with("x.toml:4: "), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn bad_values_name_line_and_key() {
        let (line, message) = err_of("\n[[event]]\nat = \"soon\"\naction = \"demote\"\n");
        assert_eq!(line, 21);
        assert!(message.starts_with("at:"), "{message}");

        let (line, message) = err_of(
            "\n[[event]]\nat = \"1s\"\naction = \"promote\"\nnode = \"zulu\"\nresource = \"r0\"\n",
        );
        assert_eq!(line, 23);
        assert!(message.contains("unknown node 'zulu'"), "{message}");

        let (_, message) = err_of("\n[[event]]\nat = \"1s\"\naction = \"explode\"\n");
        assert!(message.contains("unknown action 'explode'"), "{message}");

        let (_, message) =
            err_of("\n[[event]]\nat = \"1s\"\naction = \"disconnect\"\nnodes = [\"alpha\"]\n");
        assert!(message.starts_with("nodes:"), "{message}");

        let (_, message) = err_of(
            "\n[[event]]\nat = \"1s\"\naction = \"fault\"\nnode = \"alpha\"\nfault = \"hang\"\ncount = 2\n",
        );
        assert!(message.starts_with("count:"), "{message}");
    }

    #[test]
    fn bad_option_value_names_line() {
        let text = BASE.replace("\"50M\"", "\"5G\"");
        let err = parse("t.toml", &text).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:14: options: c-max-rate"), "{err}");
    }

    #[test]
    fn bad_size_names_line() {
        let text = BASE.replace("\"1G\"", "\"1Q\"");
        let err = parse("t.toml", &text).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:18: size:"), "{err}");
    }

    #[test]
    fn repeat_must_be_last() {
        let (_, message) = err_of(
            "\n[[event]]\nat = \"5s\"\naction = \"repeat\"\n\n[[event]]\nat = \"6s\"\naction = \"demote\"\nnode = \"alpha\"\nresource = \"r0\"\n",
        );
        assert!(message.contains("repeat"), "{message}");
    }

    #[test]
    fn timeline_is_sorted_and_faults_parse() {
        let s = parse(
            "t",
            &format!(
                "{BASE}\n[[event]]\nat = \"2s\"\naction = \"fault\"\nnode = \"bravo\"\nfault = \"command-fail\"\ncount = 3\n\n[[event]]\nat = \"500ms\"\naction = \"fault\"\nnode = \"alpha\"\nfault = \"module-missing\"\nduration = \"1m\"\n"
            ),
        )
        .unwrap();
        assert_eq!(s.timeline[0].at, Duration::from_millis(500));
        assert_eq!(
            s.timeline[0].action,
            Action::Fault {
                node: "alpha".into(),
                fault: Fault::ModuleMissing {
                    duration: Duration::from_secs(60)
                }
            }
        );
        assert_eq!(
            s.timeline[1].action,
            Action::Fault {
                node: "bravo".into(),
                fault: Fault::CommandFail { count: 3 }
            }
        );
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_kib("2M").unwrap(), 2048);
        assert_eq!(parse_kib("7").unwrap(), 7);
        assert!(parse_kib("1.5G").is_err());
        assert!(parse_kib("99999999999999T").is_err());
    }
}
