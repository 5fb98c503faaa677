//! Plant keys of scenario files: values map onto the plant's specs, and
//! mistakes are refused naming file, line and key.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use drbd_sim::plant::LoadProfile;
use drbd_sim::scenario::{parse, ScenarioError};

const NODES: &str = r#"
[[node]]
name = "alpha"
node-id = 0

[[node]]
name = "bravo"
node-id = 1
"#;

const RESOURCE: &str = r#"
[[resource]]
name = "r0"
primary = "alpha"
[[resource.volume]]
volume = 0
minor = 1000
size = "1G"
"#;

fn error(file: &str, text: &str) -> (usize, String) {
    match parse(file, text) {
        Err(ScenarioError::Invalid { line, message, .. }) => (line, message),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn no_plant_keys_no_plant_mode() {
    let s = parse("t.toml", &format!("{NODES}{RESOURCE}")).unwrap();
    assert!(s.plant.is_none());
}

#[test]
fn plant_keys_map_onto_the_specs() {
    let text = format!(
        "{}\n[[link]]\nnodes = [\"bravo\", \"alpha\"]\nbandwidth = \"100MiB/s\"\nrtt = \"2ms\"\n\n[[resource]]\nname = \"r0\"\nprimary = \"alpha\"\nload = {{ profile = \"diurnal\", min = \"10MiB/s\", max = 50, period = \"10m\" }}\n[[resource.volume]]\nvolume = 0\nminor = 1000\nsize = \"1G\"\n",
        NODES.replace(
            "node-id = 0\n",
            "node-id = 0\ndisk = { capacity-mib-s = \"1GiB/s\", service-ms = \"250us\" }\n"
        ),
    );
    let s = parse("t.toml", &text).unwrap();
    let plant = s.plant.unwrap();
    let disk = plant.disks["alpha"];
    assert_eq!(disk.capacity_mib_s, 1024.0);
    assert_eq!(disk.service_ms, 0.25);
    assert!(!plant.disks.contains_key("bravo"));
    let (a, b, link) = &plant.links[0];
    assert_eq!((a.as_str(), b.as_str()), ("alpha", "bravo"));
    assert_eq!((link.bandwidth_mib_s, link.rtt_ms), (100.0, 2.0));
    assert_eq!(
        plant.loads["r0"],
        LoadProfile::Diurnal {
            min_mib_s: 10.0,
            max_mib_s: 50.0,
            period_s: 600.0
        }
    );
}

#[test]
fn bad_disk_names_line_and_key() {
    let text = format!(
        "{}{RESOURCE}",
        NODES.replace("node-id = 1\n", "node-id = 1\ndisk = { iops = 5 }\n")
    );
    let (line, message) = error("s.toml", &text);
    assert_eq!(line, 9, "{message}");
    assert!(message.contains("unknown key 'iops'"), "{message}");

    let text = format!(
        "{}{RESOURCE}",
        NODES.replace(
            "node-id = 1\n",
            "node-id = 1\ndisk = { service-ms = \"2 fortnights\" }\n"
        )
    );
    let (line, message) = error("s.toml", &text);
    assert_eq!(line, 9, "{message}");
    assert!(message.contains("disk.service-ms"), "{message}");
}

#[test]
fn bad_links_are_refused() {
    let (line, message) = error(
        "s.toml",
        &format!("{NODES}{RESOURCE}\n[[link]]\nnodes = [\"alpha\", \"zulu\"]\n"),
    );
    assert_eq!(line, 19, "{message}");
    assert!(message.starts_with("nodes:"), "{message}");
    let (_, message) = error(
        "s.toml",
        &format!("{NODES}{RESOURCE}\n[[link]]\nnodes = [\"alpha\", \"bravo\"]\nlatency = 1\n"),
    );
    assert!(message.contains("latency"), "{message}");
    let (_, message) = error(
        "s.toml",
        &format!(
            "{NODES}{RESOURCE}\n[[link]]\nnodes = [\"alpha\", \"bravo\"]\nbandwidth = \"0MiB/s\"\n"
        ),
    );
    assert!(message.contains("bandwidth"), "{message}");
}

#[test]
fn bad_loads_name_line_and_trace_file_line() {
    let with_load = |load: &str| {
        format!(
            "{NODES}{}",
            RESOURCE.replace(
                "primary = \"alpha\"\n",
                &format!("primary = \"alpha\"\nload = {load}\n")
            )
        )
    };
    let (line, message) = error("s.toml", &with_load("{ profile = \"sawtooth\" }"));
    assert_eq!(line, 13, "{message}");
    assert!(message.contains("unknown profile 'sawtooth'"), "{message}");
    let (_, message) = error(
        "s.toml",
        &with_load("{ profile = \"constant\", writes = 1 }"),
    );
    assert!(message.contains("unknown key 'writes'"), "{message}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "# t, w, r\n0, 10, 0\n\n7, 20\n").unwrap();
    let file = dir.path().join("s.toml");
    let (line, message) = error(file.to_str().unwrap(), &with_load("{ trace = \"in.csv\" }"));
    assert_eq!(line, 13, "{message}");
    assert!(message.contains("in.csv: trace line 4"), "{message}");

    std::fs::write(dir.path().join("ok.csv"), "0, 10, 0\n7, 20, 0\n").unwrap();
    let s = parse(file.to_str().unwrap(), &with_load("{ trace = \"ok.csv\" }")).unwrap();
    assert!(matches!(&s.plant.unwrap().loads["r0"], LoadProfile::Trace(rows) if rows.len() == 2));
}
