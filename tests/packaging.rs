//! The packages `packaging/build` makes (target/packages/*.deb, *.rpm):
//! their files, modes, conffiles, dependencies and maintainer scripts,
//! lintian and rpmlint, and a .deb unpacked into a throwaway root where the
//! unit's ExecStart binary and config file must exist. Missing packages or
//! tools are failures: scripts/test-all installs the tools and runs
//! packaging/build before the tests.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use drbd_agent::assets;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The one package with this extension in target/packages.
/// The daemon's package.
const AGENT_PKG: &str = "drbd-agent";
/// The simulator's package.
const SIM_PKG: &str = "drbd-agent-sim";

/// The one `.{extension}` of package `name` in target/packages
/// (`name_<version>…deb`, `name-<version>…rpm`).
fn package(name: &str, extension: &str) -> PathBuf {
    let dir = Path::new(ROOT).join("target/packages");
    let prefix = match extension {
        "deb" => format!("{name}_{}", env!("CARGO_PKG_VERSION")),
        _ => format!("{name}-{}", env!("CARGO_PKG_VERSION")),
    };
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == extension))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix))
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        found.len() == 1,
        "expected exactly one {prefix}*.{extension} in {} (found {found:?}): run packaging/build \
         first (scripts/test-all does)",
        dir.display()
    );
    found.into_iter().next().unwrap_or_default()
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e} (scripts/test-all installs it via apt)")
        })
}

/// Stdout of a command that must succeed.
fn stdout(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Path → permission string from `dpkg-deb -c` (`-rwxr-xr-x root/root ... ./usr/sbin/x`).
fn deb_listing(deb: &str) -> BTreeMap<String, String> {
    stdout("dpkg-deb", &["-c", deb])
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let path = fields.get(5)?.trim_start_matches('.');
            Some((path.trim_end_matches('/').to_owned(), fields[0].to_owned()))
        })
        .collect()
}

const UNIT: &str = "drbd-agent.service";

/// What both packages ship, with the .deb's and the .rpm's paths.
const SHIPPED: [(&str, &str, &str); 14] = [
    ("/usr/sbin/drbd-agent", "/usr/sbin/drbd-agent", "-rwxr-xr-x"),
    (
        "/usr/share/doc/drbd-agent/examples/web.yml",
        "/usr/share/doc/drbd-agent/examples/web.yml",
        "-rw-r--r--",
    ),
    (
        "/etc/drbd-agent/agent.toml",
        "/etc/drbd-agent/agent.toml",
        "-rw-r--r--",
    ),
    (
        "/etc/drbd-agent/conf.d/README",
        "/etc/drbd-agent/conf.d/README",
        "-rw-r--r--",
    ),
    (
        "/usr/lib/systemd/system/drbd-agent.service",
        "/usr/lib/systemd/system/drbd-agent.service",
        "-rw-r--r--",
    ),
    (
        "/usr/share/man/man8/drbd-agent.8.gz",
        "/usr/share/man/man8/drbd-agent.8.gz",
        "-rw-r--r--",
    ),
    (
        "/usr/share/man/man5/drbd-agent.toml.5.gz",
        "/usr/share/man/man5/drbd-agent.toml.5.gz",
        "-rw-r--r--",
    ),
    (
        "/usr/share/bash-completion/completions/drbd-agent",
        "/usr/share/bash-completion/completions/drbd-agent",
        "-rw-r--r--",
    ),
    (
        "/usr/share/zsh/vendor-completions/_drbd-agent",
        "/usr/share/zsh/site-functions/_drbd-agent",
        "-rw-r--r--",
    ),
    (
        "/usr/share/fish/vendor_completions.d/drbd-agent.fish",
        "/usr/share/fish/vendor_completions.d/drbd-agent.fish",
        "-rw-r--r--",
    ),
    (
        "/usr/share/drbd-agent/drbd-agent-dashboard.json",
        "/usr/share/drbd-agent/drbd-agent-dashboard.json",
        "-rw-r--r--",
    ),
    (
        "/usr/share/drbd-agent/drbd-agent.rules.yml",
        "/usr/share/drbd-agent/drbd-agent.rules.yml",
        "-rw-r--r--",
    ),
    // The README links to docs/*.md: they ship beside it.
    (
        "/usr/share/doc/drbd-agent/docs/configuration.md",
        "/usr/share/doc/drbd-agent/docs/configuration.md",
        "-rw-r--r--",
    ),
    (
        "/usr/share/doc/drbd-agent/docs/metrics.md",
        "/usr/share/doc/drbd-agent/docs/metrics.md",
        "-rw-r--r--",
    ),
];

#[test]
fn deb_files_modes_conffiles_and_depends() {
    let deb = package(AGENT_PKG, "deb");
    let deb = deb.to_str().expect("utf-8 path");
    let listing = deb_listing(deb);
    for (path, _, mode) in SHIPPED {
        let found = listing
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from the .deb: {listing:#?}"));
        assert_eq!(found, mode, "{path}");
    }
    assert!(
        !listing.keys().any(|p| p.contains("drbd-sim")),
        "drbd-sim is shipped: {listing:#?}"
    );
    let conffiles = stdout("dpkg-deb", &["-I", deb, "conffiles"]);
    let conffiles: Vec<&str> = conffiles.lines().map(str::trim).collect();
    assert_eq!(
        conffiles,
        [
            "/etc/drbd-agent/agent.toml",
            "/etc/drbd-agent/conf.d/README"
        ],
        "conffiles"
    );
    let depends = stdout("dpkg-deb", &["-f", deb, "Depends"]);
    assert!(depends.contains("drbd-utils (>= 9.17)"), "{depends}");
    let version = stdout("dpkg-deb", &["-f", deb, "Version"]);
    let expected = format!("{}-1", env!("CARGO_PKG_VERSION"));
    assert_eq!(version.trim(), expected);
    let changelog = std::fs::read_to_string(Path::new(ROOT).join("packaging/deb/changelog"))
        .expect("packaging/deb/changelog");
    assert!(
        changelog.starts_with(&format!("drbd-agent ({expected}) ")),
        "packaging/deb/changelog does not start with version {expected}: add an entry"
    );
}

#[test]
fn deb_maintainer_scripts_enable_start_restart_and_stop() {
    let deb = package(AGENT_PKG, "deb");
    let deb = deb.to_str().expect("utf-8 path");
    let postinst = stdout("dpkg-deb", &["-I", deb, "postinst"]);
    for needle in [
        "deb-systemd-helper enable drbd-agent.service",
        "_dh_action=restart",
        "_dh_action=start",
        "deb-systemd-invoke $_dh_action",
        "install -d -m 0750 /var/lib/drbd-agent",
    ] {
        assert!(
            postinst.contains(needle),
            "postinst lacks {needle:?}:\n{postinst}"
        );
    }
    let prerm = stdout("dpkg-deb", &["-I", deb, "prerm"]);
    assert!(
        prerm.contains("deb-systemd-invoke stop drbd-agent.service"),
        "prerm:\n{prerm}"
    );
    let postrm = stdout("dpkg-deb", &["-I", deb, "postrm"]);
    for needle in [
        "deb-systemd-helper mask drbd-agent.service",
        "deb-systemd-helper purge drbd-agent.service",
        "rm -rf /var/lib/drbd-agent",
    ] {
        assert!(
            postrm.contains(needle),
            "postrm lacks {needle:?}:\n{postrm}"
        );
    }
}

/// The value of the first `Key=` line of a unit.
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|line| line.trim().strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the unit:\n{unit}"))
}

#[test]
fn deb_unpacked_has_what_the_unit_runs() {
    let deb = package(AGENT_PKG, "deb");
    let root = tempfile::tempdir().expect("tempdir");
    let root_str = root.path().to_str().expect("utf-8 path");
    stdout("dpkg", &["-x", deb.to_str().expect("utf-8"), root_str]);
    let unit_path = root.path().join("usr/lib/systemd/system").join(UNIT);
    let unit = std::fs::read_to_string(&unit_path)
        .unwrap_or_else(|e| panic!("{}: {e}", unit_path.display()));
    let exec_start = unit_value(&unit, "ExecStart");
    let words: Vec<&str> = exec_start.split_whitespace().collect();
    let binary = root.path().join(words[0].trim_start_matches('/'));
    let meta = std::fs::metadata(&binary)
        .unwrap_or_else(|e| panic!("ExecStart binary {}: {e}", binary.display()));
    assert!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 == 0o111,
        "{} is not executable",
        binary.display()
    );
    let config_at = words
        .iter()
        .position(|w| *w == "--config")
        .and_then(|i| words.get(i + 1))
        .unwrap_or_else(|| panic!("ExecStart has no --config: {exec_start}"));
    let config = root.path().join(config_at.trim_start_matches('/'));
    let shipped = std::fs::read_to_string(&config)
        .unwrap_or_else(|e| panic!("ExecStart's config {}: {e}", config.display()));
    assert_eq!(shipped, drbd_agent::config::DEFAULT_CONFIG_TEXT);
    assert!(root.path().join("etc/drbd-agent/conf.d").is_dir());
    // The packaged binary itself accepts the packaged configuration.
    let check = stdout(
        binary.to_str().expect("utf-8"),
        &["check-config", "--config", config.to_str().expect("utf-8")],
    );
    assert!(check.starts_with("configuration OK"), "{check}");
    let help = stdout(binary.to_str().expect("utf-8"), &["--help"]);
    assert!(help.contains("check-config"), "{help}");
    // The shipped pages and completions are the ones this code generates
    // (a stale package fails here: run packaging/build again).
    let gunzip = |path: &str| {
        let bytes = std::fs::read(root.path().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        text
    };
    let stale = "is not what the code generates: run packaging/build again";
    assert!(
        gunzip("usr/share/man/man8/drbd-agent.8.gz") == assets::agent_man_page().expect("render"),
        "drbd-agent.8 {stale}"
    );
    assert!(
        gunzip("usr/share/man/man5/drbd-agent.toml.5.gz") == assets::config_man_page(),
        "drbd-agent.toml.5 {stale}"
    );
    let bash = std::fs::read_to_string(
        root.path()
            .join("usr/share/bash-completion/completions/drbd-agent"),
    )
    .expect("bash completion");
    assert!(
        bash == assets::completion(clap_complete::Shell::Bash),
        "bash completion {stale}"
    );
    // The dashboard and the alerting rules are the repository's files.
    for name in ["drbd-agent-dashboard.json", "drbd-agent.rules.yml"] {
        let shipped = std::fs::read(root.path().join("usr/share/drbd-agent").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let source = std::fs::read(Path::new(ROOT).join("contrib/monitoring").join(name))
            .unwrap_or_else(|e| panic!("contrib/monitoring/{name}: {e}"));
        assert!(shipped == source, "{name} {stale}");
    }
}

/// The section names of an ELF file (`readelf -S -W`).
fn elf_sections(binary: &Path) -> Vec<String> {
    let listing = stdout("readelf", &["-S", "-W", binary.to_str().expect("utf-8")]);
    listing
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once(']')?;
            rest.split_whitespace().next().map(str::to_owned)
        })
        .collect()
}

/// The shipped binary carries no debug info and no symbol table.
fn assert_stripped(binary: &Path) {
    let sections = elf_sections(binary);
    assert!(
        sections.iter().any(|s| s == ".text"),
        "{} does not look like an ELF file: {sections:?}",
        binary.display()
    );
    let debug: Vec<&String> = sections
        .iter()
        .filter(|s| s.starts_with(".debug") || s.starts_with(".zdebug") || *s == ".symtab")
        .collect();
    assert!(
        debug.is_empty(),
        "{} ships debug info or symbols: {debug:?}",
        binary.display()
    );
}

#[test]
fn the_shipped_binaries_have_no_debug_info() {
    let deb = package(AGENT_PKG, "deb");
    let root = tempfile::tempdir().expect("tempdir");
    stdout(
        "dpkg",
        &[
            "-x",
            deb.to_str().expect("utf-8"),
            root.path().to_str().expect("utf-8"),
        ],
    );
    assert_stripped(&root.path().join("usr/sbin/drbd-agent"));

    let rpm = package(AGENT_PKG, "rpm");
    let rpm_root = tempfile::tempdir().expect("tempdir");
    let script = format!("rpm2cpio '{}' | cpio -idm --quiet", rpm.display());
    let out = Command::new("sh")
        .args(["-c", &script])
        .current_dir(rpm_root.path())
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "rpm2cpio | cpio failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_stripped(&rpm_root.path().join("usr/sbin/drbd-agent"));

    // The check can fail: a build with debug info is caught.
    let debug_build = Path::new(env!("CARGO_BIN_EXE_drbd-agent"));
    let sections = elf_sections(debug_build);
    assert!(
        sections.iter().any(|s| s.starts_with(".debug")),
        "the test build of drbd-agent should carry debug info: {sections:?}"
    );
}

fn assert_lintian_clean(deb: &Path) {
    let out = run(
        "lintian",
        &[
            "--fail-on",
            "error",
            "--tag-display-limit",
            "0",
            deb.to_str().expect("utf-8"),
        ],
    );
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "lintian failed on {} ({}):\n{report}",
        deb.display(),
        out.status
    );
    assert!(
        !report.lines().any(|l| l.starts_with("E: ")),
        "lintian errors:\n{report}"
    );
}

#[test]
fn deb_passes_lintian_without_errors() {
    assert_lintian_clean(&package(AGENT_PKG, "deb"));
}

#[test]
fn sim_deb_passes_lintian_without_errors() {
    assert_lintian_clean(&package(SIM_PKG, "deb"));
}

/// `rpm -qp` with extra arguments.
fn rpm_query(rpm: &Path, args: &[&str]) -> String {
    let mut all = vec!["-qp"];
    all.extend_from_slice(args);
    all.push(rpm.to_str().expect("utf-8"));
    stdout("rpm", &all)
}

#[test]
fn rpm_files_modes_config_and_requires() {
    let rpm = package(AGENT_PKG, "rpm");
    let listing: BTreeMap<String, String> =
        rpm_query(&rpm, &["--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]"])
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(mode, path)| (path.to_owned(), mode.to_owned()))
            .collect();
    for (_, path, mode) in SHIPPED {
        let found = listing
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from the .rpm: {listing:#?}"));
        assert_eq!(found, mode, "{path}");
    }
    assert!(
        !listing.keys().any(|p| p.contains("drbd-sim")),
        "{listing:#?}"
    );
    let files = rpm_query(&rpm, &["-l"]);
    assert_eq!(files.lines().count(), listing.len(), "{files}");
    let config = rpm_query(&rpm, &["--configfiles"]);
    let config: Vec<&str> = config.lines().collect();
    assert_eq!(
        config,
        [
            "/etc/drbd-agent/agent.toml",
            "/etc/drbd-agent/conf.d/README"
        ]
    );
    let noreplace = rpm_query(&rpm, &["--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]"]);
    assert!(
        noreplace.contains("cn /etc/drbd-agent/agent.toml"),
        "agent.toml is not %config(noreplace):\n{noreplace}"
    );
    let requires = rpm_query(&rpm, &["--requires"]);
    assert!(requires.contains("drbd-utils >= 9.17"), "{requires}");
}

#[test]
fn rpm_scriptlets_enable_start_restart_and_stop() {
    let rpm = package(AGENT_PKG, "rpm");
    let scripts = rpm_query(&rpm, &["--scripts"]);
    let section = |name: &str| {
        let start = scripts
            .find(name)
            .unwrap_or_else(|| panic!("no {name} in:\n{scripts}"));
        let rest = &scripts[start..];
        rest.find("\npost")
            .or_else(|| rest.find("\npre"))
            .map_or(rest, |end| &rest[..end])
            .to_owned()
    };
    let post = section("postinstall scriptlet");
    assert!(
        post.contains("install -d -m 0750 /var/lib/drbd-agent"),
        "{post}"
    );
    assert!(
        post.contains("systemctl enable drbd-agent.service"),
        "{post}"
    );
    assert!(
        post.contains("systemctl start drbd-agent.service"),
        "{post}"
    );
    let preun = section("preuninstall scriptlet");
    assert!(
        preun.contains("systemctl stop drbd-agent.service"),
        "{preun}"
    );
    assert!(preun.contains("disable drbd-agent.service"), "{preun}");
    let postun = section("postuninstall scriptlet");
    assert!(
        postun.contains("try-restart drbd-agent.service"),
        "{postun}"
    );
}

fn assert_rpmlint_clean(rpm: &Path, config: &str) {
    let config = Path::new(ROOT).join(config);
    let out = run(
        "rpmlint",
        &[
            "-c",
            config.to_str().expect("utf-8"),
            rpm.to_str().expect("utf-8"),
        ],
    );
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "rpmlint failed on {} ({}):\n{report}",
        rpm.display(),
        out.status
    );
    assert!(report.contains(" 0 errors"), "rpmlint errors:\n{report}");
}

#[test]
fn rpm_passes_rpmlint_without_errors() {
    assert_rpmlint_clean(&package(AGENT_PKG, "rpm"), "packaging/rpm/rpmlint.toml");
}

#[test]
fn sim_rpm_passes_rpmlint_without_errors() {
    assert_rpmlint_clean(&package(SIM_PKG, "rpm"), "packaging/rpm-sim/rpmlint.toml");
}

/// Where drbd-agent-sim installs the simulator: `../lib/drbd-agent/drbd-sim`
/// from drbd-agent's /usr/sbin, where `drbd-agent demo` looks.
const SIM_PATH: &str = "/usr/lib/drbd-agent/drbd-sim";

/// The simulator's packages ship drbd-sim alone: no service, no
/// configuration, no scripts, no dependency on drbd-utils; stripped.
#[test]
fn sim_packages_ship_the_simulator_alone() {
    let deb = package(SIM_PKG, "deb");
    let deb_str = deb.to_str().expect("utf-8 path");
    let listing = deb_listing(deb_str);
    assert_eq!(
        listing.get(SIM_PATH).map(String::as_str),
        Some("-rwxr-xr-x"),
        "{listing:#?}"
    );
    assert!(
        !listing
            .keys()
            .any(|p| p.starts_with("/etc") || p.contains("systemd") || p.contains("sbin")),
        "the sim .deb ships more than the simulator: {listing:#?}"
    );
    let depends = stdout("dpkg-deb", &["-f", deb_str, "Depends"]);
    assert!(!depends.contains("drbd-utils"), "{depends}");
    let control = stdout("dpkg-deb", &["-I", deb_str]);
    for script in ["postinst", "prerm", "postrm", "preinst"] {
        assert!(
            !control.contains(script),
            "the sim .deb has a {script}:\n{control}"
        );
    }
    let root = tempfile::tempdir().expect("tempdir");
    stdout(
        "dpkg",
        &["-x", deb_str, root.path().to_str().expect("utf-8")],
    );
    assert_stripped(&root.path().join(SIM_PATH.trim_start_matches('/')));

    let rpm = package(SIM_PKG, "rpm");
    let files = rpm_query(&rpm, &["-l"]);
    assert!(files.lines().any(|l| l == SIM_PATH), "{files}");
    assert!(
        !files
            .lines()
            .any(|p| p.starts_with("/etc") || p.contains("systemd") || p.contains("sbin")),
        "the sim .rpm ships more than the simulator:\n{files}"
    );
    let requires = rpm_query(&rpm, &["--requires"]);
    assert!(!requires.contains("drbd-utils"), "{requires}");
    let scripts = rpm_query(&rpm, &["--scripts"]);
    assert!(!scripts.contains("systemctl"), "{scripts}");
}

/// Both .debs unpacked into one root: the packaged `drbd-agent demo` finds
/// the packaged simulator (`usr/sbin/../lib/drbd-agent/drbd-sim`) and serves
/// the demo cluster; with the agent's package alone it names the package
/// to install.
#[test]
fn demo_runs_from_the_two_packages() {
    let root = tempfile::tempdir().expect("tempdir");
    let root_str = root.path().to_str().expect("utf-8");
    let agent_deb = package(AGENT_PKG, "deb");
    stdout(
        "dpkg",
        &["-x", agent_deb.to_str().expect("utf-8"), root_str],
    );
    let agent = root.path().join("usr/sbin/drbd-agent");

    let alone = Command::new(&agent)
        .args(["demo", "--listen", "127.0.0.1:9"])
        .output()
        .expect("drbd-agent runs");
    let message = String::from_utf8_lossy(&alone.stderr);
    assert!(!alone.status.success(), "{message}");
    assert!(message.contains(SIM_PKG), "{message}");
    // `bench` runs the simulator's benchmarks: without it, the same advice.
    let alone = Command::new(&agent)
        .args(["bench", "pressure"])
        .output()
        .expect("drbd-agent runs");
    let message = String::from_utf8_lossy(&alone.stderr);
    assert!(!alone.status.success(), "{message}");
    assert!(message.contains(SIM_PKG), "{message}");

    let sim_deb = package(SIM_PKG, "deb");
    stdout("dpkg", &["-x", sim_deb.to_str().expect("utf-8"), root_str]);

    // With both packages `bench` runs through the installed drbd-sim, its
    // exit status and stderr passed on.
    let bench = Command::new(&agent)
        .args(["bench", "pressure", "--json"])
        .output()
        .expect("drbd-agent runs");
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&bench.stdout).expect("bench JSON");
    assert!(report.is_object(), "{report}");
    let unknown = Command::new(&agent)
        .args(["bench", "throttle", "--scenario", "no-such-scenario"])
        .output()
        .expect("drbd-agent runs");
    let message = String::from_utf8_lossy(&unknown.stderr);
    assert!(!unknown.status.success(), "{message}");
    assert!(
        message.contains("unknown scenario 'no-such-scenario'"),
        "{message}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let log = std::fs::File::create(root.path().join("demo.log")).expect("log file");
    let mut demo = Command::new(&agent)
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("demo starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut status = String::new();
    while std::time::Instant::now() < deadline {
        if let Ok(Some(exit)) = demo.try_wait() {
            let log = std::fs::read_to_string(root.path().join("demo.log")).unwrap_or_default();
            panic!("the packaged demo exited ({exit}):\n{log}");
        }
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = stream
                .write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            status.clear();
            let _ = stream.read_to_string(&mut status);
            if status.contains("\"db\"") {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Ctrl-C, as a user stops it: the demo stops its simulator too (a
    // SIGKILL here used to leave the packaged drbd-sim running).
    let interrupted = Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status()
        .expect("kill runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let exit = loop {
        match demo.try_wait() {
            Ok(Some(exit)) => break Some(exit),
            _ if std::time::Instant::now() >= deadline => break None,
            _ => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    };
    if exit.is_none() {
        let _ = demo.kill();
        let _ = demo.wait();
    }
    let leftover = processes_under(root.path());
    for pid in &leftover {
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
    assert!(
        status.contains("\"db\""),
        "the packaged demo did not serve its cluster within 60 s: {status}"
    );
    assert!(
        interrupted.success() && exit.is_some(),
        "the demo ignored SIGINT"
    );
    assert!(
        leftover.is_empty(),
        "processes from the packages still run after the demo stopped: {leftover:?}"
    );
}

/// PIDs of processes whose executable path lies under `root`.
fn processes_under(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| {
                    let argv0 = c.split(|b| *b == 0).next().unwrap_or_default();
                    Path::new(std::ffi::OsStr::new(
                        std::str::from_utf8(argv0).unwrap_or_default(),
                    ))
                    .starts_with(root)
                })
                .unwrap_or(false)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_daemon_binary_carries_neither_the_simulator_nor_the_benchmarks() {
    let root = tempfile::tempdir().expect("tempdir");
    for name in [AGENT_PKG, SIM_PKG] {
        let deb = package(name, "deb");
        stdout(
            "dpkg",
            &[
                "-x",
                deb.to_str().expect("utf-8"),
                root.path().to_str().expect("utf-8"),
            ],
        );
    }
    let agent = std::fs::read(root.path().join("usr/sbin/drbd-agent")).expect("agent binary");
    let sim = std::fs::read(root.path().join("usr/lib/drbd-agent/drbd-sim")).expect("sim binary");
    // Texts only the simulator and the benchmarks hold: the first line of
    // each built-in scenario (compiled in with include_str!) and the
    // throttle family table's footnote.
    let mut markers: Vec<Vec<u8>> = ["demo.toml", "resync-3node.toml", "throttle-demo.toml"]
        .iter()
        .map(|file| {
            let path = format!("{ROOT}/crates/drbd-sim/src/scenarios/{file}");
            let text = std::fs::read_to_string(&path).expect("scenario file");
            text.lines()
                .next()
                .expect("a first line")
                .as_bytes()
                .to_vec()
        })
        .collect();
    markers.push("/orc: resynced ÷ the oracle's".as_bytes().to_vec());
    for marker in &markers {
        let shown = String::from_utf8_lossy(marker);
        // The check can fail: the simulator's binary has them all.
        assert!(contains(&sim, marker), "drbd-sim lacks {shown:?}");
        assert!(!contains(&agent, marker), "drbd-agent carries {shown:?}");
    }
}
