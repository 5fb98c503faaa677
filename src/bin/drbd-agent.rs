//! The `drbd-agent` command line: run, check-config, status, demo.
//!
//! `unsafe` is denied here as in the library (which forbids it), with one
//! exception: [`one_malloc_arena`].
#![deny(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use drbd_agent::cli::{Action, BenchCommand, Command, Invocation};
use drbd_agent::config::{self, ApiConfig, Config, DrbdConfig, DEFAULT_CONFIG_PATH};
use drbd_agent::daemon::Daemon;
use drbd_agent::service::Service;
use tracing::info;
use tracing_subscriber::EnvFilter;

/// Has glibc's allocator keep one arena for all threads instead of one per
/// thread that allocates (up to 8 per core). Each arena keeps the memory
/// its threads freed, so the tokio workers and the blocking threads that
/// render /metrics each held a few MiB. Measured at 1,000 resources × 2
/// peers (`drbd-sim serve --scenario scale:1000`, 60 scrapes by curl, then
/// `/proc/PID/smaps_rollup`): anonymous memory 30.5 → 22.4 MiB, RSS 41.0 →
/// 32.9 MiB with `MALLOC_ARENA_MAX=1`, scrape times unchanged within noise
/// (the daemon allocates little outside rendering, so one arena's lock is
/// not contended). An operator's own `MALLOC_ARENA_MAX` is left in force.
#[allow(unsafe_code)]
fn one_malloc_arena() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt only sets an allocator parameter; it is called at the
    // top of main, before any other thread exists, so no allocation runs
    // concurrently with the change. A refusal (return 0) only leaves
    // glibc's default in force.
    let _ = unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

fn main() -> ExitCode {
    one_malloc_arena();
    let result = match Invocation::parse().action {
        Action::GenerateAssets { dir } => generate_assets(&dir),
        Action::Documented(command) => run_command(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drbd-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_command(command: Command) -> Result<()> {
    match command {
        Command::Run { config } => run(&config),
        Command::CheckConfig { config } => check_config(&config),
        Command::Status {
            url,
            json,
            ca_file,
            client_certificate,
            client_key,
            user,
            watch,
            interval,
        } => {
            let access = StatusAccess {
                ca_file,
                client_identity: client_certificate.zip(client_key),
                user,
            };
            if watch {
                status_watch(&url, json, &access, interval)
            } else {
                status(&url, json, &access)
            }
        }
        Command::Top { url } => drbd_agent::top::run(&url).map_err(Into::into),
        Command::Demo {
            listen,
            scenario,
            no_throttle,
        } => demo(listen, &scenario, !no_throttle),
        Command::Bench { what } => bench(&what),
    }
}

fn generate_assets(dir: &Path) -> Result<()> {
    for path in drbd_agent::assets::write_all(dir)? {
        println!("{}", path.display());
    }
    Ok(())
}

/// `bench`: the benchmarks run the throttle law on the simulator's plant
/// and live with the simulator (crates/drbd-sim), so this binary carries
/// neither; it runs `drbd-sim bench` with the same arguments, found as
/// `demo` finds it, and exits as it does.
fn bench(what: &BenchCommand) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the drbd-agent executable")?;
    let sim = find_sim(&exe)?;
    let status = std::process::Command::new(&sim)
        .arg("bench")
        .args(what.args())
        .status()
        .with_context(|| format!("cannot run {}", sim.display()))?;
    if status.success() {
        return Ok(());
    }
    // drbd-sim has said what failed on stderr.
    std::process::exit(status.code().unwrap_or(1))
}

/// The default path may be missing (defaults apply); an explicit one may not.
fn load_config(path: &Path) -> Result<Config, config::ConfigError> {
    let required = path != Path::new(DEFAULT_CONFIG_PATH);
    config::load(path, required)
}

/// RUST_LOG wins over the configured level, which wins over `info`.
/// Under journald (stderr is `JOURNAL_STREAM`) the lines carry no
/// timestamp: the journal adds its own.
fn init_logging(config_level: Option<&str>) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|env| EnvFilter::try_new(env).ok())
        .or_else(|| config_level.and_then(|level| EnvFilter::try_new(level).ok()))
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if drbd_agent::service::stderr_is_journal() {
        builder.without_time().with_ansi(false).init();
    } else {
        builder.init();
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// SIGTERM, SIGINT and SIGHUP, installed before the daemon starts (so an
/// early SIGHUP does not kill the process).
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

enum Received {
    Stop,
    Reload,
}

impl Signals {
    fn install() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            hangup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
        })
    }

    async fn next(&mut self) -> Received {
        tokio::select! {
            _ = self.terminate.recv() => { info!(signal = "SIGTERM", "stopping"); Received::Stop }
            _ = self.interrupt.recv() => { info!(signal = "SIGINT", "stopping"); Received::Stop }
            _ = self.hangup.recv() => { info!(signal = "SIGHUP", "reloading the configuration"); Received::Reload }
        }
    }
}

/// Returns on SIGTERM or SIGINT.
async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    tokio::select! {
        _ = terminate.recv() => info!(signal = "SIGTERM", "stopping"),
        _ = interrupt.recv() => info!(signal = "SIGINT", "stopping"),
    }
    Ok(())
}

fn run(path: &Path) -> Result<()> {
    let config = load_config(path)?;
    init_logging(config.log_level.as_deref());
    info!(
        version = env!("CARGO_PKG_VERSION"),
        files = ?config.sources,
        "drbd-agent"
    );
    runtime()?.block_on(async {
        let mut signals = Signals::install()?;
        let mut daemon = Daemon::start(&config).await?;
        // The service manager's side (sd_notify); its ticks come from this
        // loop, so a wedged loop stops the watchdog pings.
        let mut service = Service::from_env();
        let mut ticker = service.ticker();
        // SIGHUP re-reads the same file(s); SIGTERM/SIGINT stop.
        loop {
            tokio::select! {
                received = signals.next() => {
                    let Received::Reload = received else { break };
                    service.reloading();
                    let error = match load_config(path) {
                        Ok(new) => {
                            daemon.reload(new);
                            None
                        }
                        Err(e) => {
                            daemon.reload_failed(&e);
                            Some(e.to_string())
                        }
                    };
                    service.reloaded(&daemon, error).await;
                }
                _ = ticker.tick() => service.tick(&daemon).await,
            }
        }
        service.stopping();
        daemon.shutdown().await;
        Ok(())
    })
}

fn check_config(path: &Path) -> Result<()> {
    let config = load_config(path)?;
    if let Some(web_config) = &config.api.web_config {
        drbd_agent::api::WebConfig::load(web_config)?;
    }
    print!("{}", config.summary());
    Ok(())
}

/// The error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// How `drbd-agent status` reaches an agent whose web config has TLS or users.
struct StatusAccess {
    ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM files).
    client_identity: Option<(PathBuf, PathBuf)>,
    /// Basic-auth user (password from `DRBD_AGENT_PASSWORD`).
    user: Option<String>,
}

/// The environment variable holding the basic-auth password.
const PASSWORD_VARIABLE: &str = "DRBD_AGENT_PASSWORD";

fn status_client(access: &StatusAccess) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(10));
    if let Some(path) = &access.ca_file {
        let pem = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        let ca = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{}: not a PEM certificate", path.display()))?;
        builder = builder.add_root_certificate(ca);
    }
    if let Some((cert, key)) = &access.client_identity {
        let mut pem = std::fs::read(cert).with_context(|| format!("{}", cert.display()))?;
        pem.push(b'\n');
        pem.extend(std::fs::read(key).with_context(|| format!("{}", key.display()))?);
        let identity = reqwest::Identity::from_pem(&pem)
            .with_context(|| format!("{}: client certificate or key", cert.display()))?;
        builder = builder.identity(identity);
    }
    builder.build().context("cannot build the HTTP client")
}

/// The basic-auth password, when a user is given.
fn status_password(access: &StatusAccess) -> Result<Option<String>> {
    match &access.user {
        Some(user) => Ok(Some(std::env::var(PASSWORD_VARIABLE).map_err(|_| {
            anyhow!(
                "--user {user}: set the password in the environment variable {PASSWORD_VARIABLE}"
            )
        })?)),
        None => Ok(None),
    }
}

/// One `GET /v1/status`: the body.
async fn fetch_status(
    client: &reqwest::Client,
    url: &str,
    access: &StatusAccess,
    password: Option<&str>,
) -> Result<String> {
    let mut request = client.get(url);
    if let (Some(user), Some(password)) = (&access.user, password) {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.map_err(|e| {
        anyhow!(
            "cannot reach the agent at {url}: {} (is `drbd-agent run` running? see --url)",
            chain(&e)
        )
    })?;
    let code = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| anyhow!("reading the answer from {url}: {}", chain(&e)))?;
    if !code.is_success() {
        bail!("the agent at {url} answered {code}: {}", body.trim());
    }
    Ok(body)
}

/// The body as the user asked for it: the JSON, or the table.
fn render_body(url: &str, body: &str, json: bool) -> Result<String> {
    if json {
        return Ok(format!("{}\n", body.trim_end()));
    }
    let document: serde_json::Value =
        serde_json::from_str(body).with_context(|| format!("the answer from {url} is not JSON"))?;
    Ok(drbd_agent::api::render_status(&document))
}

fn status(url: &str, json: bool, access: &StatusAccess) -> Result<()> {
    let url = format!("{}/v1/status", url.trim_end_matches('/'));
    let password = status_password(access)?;
    let body = runtime()?.block_on(async {
        let client = status_client(access)?;
        fetch_status(&client, &url, access, password.as_deref()).await
    })?;
    print!("{}", render_body(&url, &body, json)?);
    Ok(())
}

/// `status --watch`: a table (or document) every `interval`, each under a
/// line with the time, until SIGINT/SIGTERM (exit 0). An agent that does
/// not answer is a line in the output, not the end: the next look may
/// find it back.
fn status_watch(url: &str, json: bool, access: &StatusAccess, interval: Duration) -> Result<()> {
    use std::io::Write;
    let url = format!("{}/v1/status", url.trim_end_matches('/'));
    let password = status_password(access)?;
    runtime()?.block_on(async {
        let client = status_client(access)?;
        let stop = wait_for_signal();
        tokio::pin!(stop);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                stopped = &mut stop => return stopped,
                _ = ticker.tick() => {}
            }
            let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
            let text = match fetch_status(&client, &url, access, password.as_deref()).await {
                Ok(body) => render_body(&url, &body, json)?,
                Err(e) => format!("{e:#}\n"),
            };
            let mut out = std::io::stdout().lock();
            // A closed stdout (`| head`) ends the watch like Ctrl-C.
            if write!(out, "--- {now}  {url}\n{text}\n")
                .and_then(|()| out.flush())
                .is_err()
            {
                return Ok(());
            }
        }
    })
}

/// A directory removed (with its contents) when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("drbd-agent: cannot remove {}: {e}", self.0.display());
        }
    }
}

/// The simulator node the demo agent plays: db's Primary and the
/// SyncTarget of its resync in the built-in demo scenario.
const DEMO_NODE: &str = "alpha";

/// The demo's throttle: `enforce`, a 5 ms mean latency target, decisions
/// every second, between 1 MiB/s and DRBD's default c-max-rate. `false`:
/// disabled (`demo --no-throttle`), DRBD's own pacer alone.
fn demo_throttle(enabled: bool) -> drbd_agent::throttle::ThrottleConfig {
    use drbd_agent::throttle::{KibPerSec, Mode, ThrottleConfig};
    ThrottleConfig {
        enabled,
        mode: Mode::Enforce,
        latency_target: config::HumanDuration(Duration::from_millis(5)),
        interval: config::HumanDuration(Duration::from_secs(1)),
        min_rate: KibPerSec::new(1024).unwrap_or(KibPerSec::MIN),
        max_rate: KibPerSec::new(100 * 1024).unwrap_or(KibPerSec::MAX),
        ..ThrottleConfig::default()
    }
}

/// Where the drbd-agent-sim package installs the simulator, relative to
/// the directory of `drbd-agent` (`/usr/sbin` → `/usr/lib/drbd-agent`).
const PACKAGED_SIM: &str = "../lib/drbd-agent/drbd-sim";

/// The simulator `demo` runs: beside this executable (a build tree:
/// target/release/), else where the drbd-agent-sim package puts it.
fn find_sim(exe: &Path) -> Result<PathBuf> {
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", exe.display()))?;
    let candidates = [dir.join("drbd-sim"), dir.join(PACKAGED_SIM)];
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    bail!(
        "the simulator is not installed: neither {} nor {} exists — install the drbd-agent-sim \
         package (.deb or .rpm, built by packaging/build beside drbd-agent), or in a source tree \
         build it with `cargo build --release` (the workspace builds drbd-sim too)",
        candidates[0].display(),
        candidates[1].display()
    )
}

fn demo(listen: SocketAddr, scenario: &str, throttle: bool) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the drbd-agent executable")?;
    let sim = find_sim(&exe)?;
    let dir = std::env::temp_dir().join(format!("drbd-agent-demo-{}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = TempDir(dir);
    let bin = dir.0.join("bin");
    std::fs::create_dir(&bin).with_context(|| format!("cannot create {}", bin.display()))?;
    for tool in ["drbdsetup", "drbdadm"] {
        std::os::unix::fs::symlink(&sim, bin.join(tool))
            .with_context(|| format!("cannot link {tool} to {}", sim.display()))?;
    }
    // Sound: no other thread exists yet (the runtime is built below), and the
    // simulated drbdsetup children inherit these.
    std::env::set_var("DRBD_SIM_DIR", &dir.0);
    std::env::set_var("DRBD_SIM_NODE", DEMO_NODE);

    let config = Config {
        node_name: DEMO_NODE.to_owned(),
        log_level: None,
        drbd: DrbdConfig {
            drbdsetup: bin.join("drbdsetup"),
            drbdadm: bin.join("drbdadm"),
            statistics_poll_interval: Duration::from_secs(2),
            reconcile_interval: Duration::from_secs(60),
            // The simulator keeps one sysfs tree per node.
            sysfs_root: dir.0.join(DEMO_NODE).join("sys"),
        },
        api: ApiConfig {
            listen: vec![listen],
            ..ApiConfig::default()
        },
        // The demo must not touch the host's real state directory.
        state: config::StateConfig {
            directory: dir.0.join("state"),
        },
        throttle: demo_throttle(throttle),
        linstor: Default::default(),
        pressure: Default::default(),
        metrics: Default::default(),
        sources: Vec::new(),
    };
    init_logging(Some("info"));
    runtime()?.block_on(async {
        let mut simulator = tokio::process::Command::new(&sim)
            .arg("serve")
            .arg("--scenario")
            .arg(scenario)
            .arg("--dir")
            .arg(&dir.0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", sim.display()))?;
        // Start the agent once the simulator answers, so that its first
        // events2 does not meet a cluster that is not there yet.
        let socket = dir.0.join("sim.sock");
        let ready = async {
            while !socket.exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::select! {
            waited = tokio::time::timeout(Duration::from_secs(10), ready) => {
                if waited.is_err() {
                    let _ = simulator.kill().await;
                    bail!("the simulator did not create {} within 10 s", socket.display());
                }
            }
            exit = simulator.wait() => {
                bail!("the simulator exited at start ({})", exit.map_or_else(|e| e.to_string(), |s| s.to_string()));
            }
        }
        let daemon = match Daemon::start(&config).await {
            Ok(daemon) => daemon,
            Err(e) => {
                let _ = simulator.kill().await;
                return Err(e.into());
            }
        };
        println!(
            "demo: simulator scenario {scenario:?} in {}, agent as node {DEMO_NODE}",
            dir.0.display()
        );
        for addr in &daemon.api_addrs {
            println!("demo: status API  http://{addr}/v1/status   health  http://{addr}/healthz");
        }
        let api = daemon.api_addrs.first().unwrap_or(&listen);
        if throttle {
            println!(
                "demo: throttle enforce, latency target 5 ms: alpha writes 100 MiB/s to db and resyncs it from bravo (every 90 s)"
            );
        } else {
            println!("demo: throttle disabled (--no-throttle): db's resync is left to DRBD's pacer");
        }
        println!(
            "demo: try `drbd-agent top --url http://{api}` or `drbd-agent status --url http://{api}` in another terminal; Ctrl-C stops"
        );
        let outcome = tokio::select! {
            signal = wait_for_signal() => signal,
            exit = simulator.wait() => match exit {
                Ok(status) => Err(anyhow!("the simulator exited early ({status})")),
                Err(e) => Err(anyhow!("waiting for the simulator: {e}")),
            },
        };
        daemon.shutdown().await;
        if let Err(e) = simulator.kill().await {
            tracing::debug!(error = %e, "simulator already gone");
        }
        outcome
    })
}
