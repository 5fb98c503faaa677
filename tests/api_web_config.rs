//! `[api] web-config` end to end: the agent (`drbd-agent run` following
//! `drbd-sim`) starts with an empty web config (plain HTTP), a SIGHUP turns
//! on TLS with a required client certificate and basic authentication, and
//! a real Prometheus (Debian's `prometheus`) scrapes it with its own
//! `scrape_config` fields (`scheme: https`, `basic_auth`, `tls_config`):
//! the target is `up`. Without credentials: 401; without a client
//! certificate: the TLS handshake fails; a bad web config on reload keeps
//! the one in force. `promtool check web-config` accepts the shipped
//! example (`config/web.yml`), which the agent reads too.
//!
//! A missing `prometheus` or `promtool` is a failure: `scripts/test-all`
//! installs them.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod common;
}
use support::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{http_get, poll, program, run_bounded, Cluster, Proc};
use drbd_agent::api::WebConfig;
use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

const SCENARIO: &str = r#"
[[node]]
name = "alpha"
node-id = 0

[[node]]
name = "bravo"
node-id = 1

[[resource]]
name = "r0"
port = 7000
primary = "alpha"
write-rate = "0"
[[resource.volume]]
volume = 0
minor = 1000
size = "1G"
"#;

const USER: &str = "prometheus";
const PASSWORD: &str = "scrape-s3cret";

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

fn ca() -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("self-signed");
    Ca { cert, key }
}

/// A certificate for `sans` signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, sans: &[&str]) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
    let cert = CertificateParams::new(sans)
        .expect("params")
        .signed_by(&key, &ca.cert, &ca.key)
        .expect("sign");
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// The files of one test: server and client certificates from one CA, a
/// client certificate from another CA.
struct Material {
    dir: tempfile::TempDir,
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn material() -> Material {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = ca();
    let (server_cert, server_key) = leaf(&root, &["127.0.0.1", "localhost"]);
    let (client_cert, client_key) = leaf(&root, &["prometheus"]);
    let ca = write(dir.path(), "ca.crt", &root.cert.pem());
    // The names of the shipped example (config/web.yml).
    write(dir.path(), "web.crt", &server_cert);
    write(dir.path(), "web.key", &server_key);
    write(dir.path(), "clients-ca.crt", &root.cert.pem());
    let client_cert = write(dir.path(), "client.crt", &client_cert);
    let client_key = write(dir.path(), "client.key", &client_key);
    Material {
        dir,
        ca,
        client_cert,
        client_key,
    }
}

/// The web config with TLS (client certificate required) and one user.
fn tls_web_config() -> String {
    let hash = bcrypt::hash(PASSWORD, 6).expect("bcrypt");
    format!(
        "tls_server_config:\n  cert_file: web.crt\n  key_file: web.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients-ca.crt\n  \
         min_version: TLS12\nbasic_auth_users:\n  {USER}: '{hash}'\n"
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// An HTTPS client trusting the test CA, with the client certificate when
/// `identity`.
fn https_client(m: &Material, identity: bool) -> reqwest::Client {
    let ca = std::fs::read(&m.ca).expect("ca");
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("ca pem"))
        .timeout(Duration::from_secs(10));
    if identity {
        let mut pem = std::fs::read(&m.client_cert).expect("cert");
        pem.extend(std::fs::read(&m.client_key).expect("key"));
        builder = builder.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
    }
    builder.build().expect("client")
}

fn sighup(agent: &Proc) {
    let status = Command::new("kill")
        .args(["-HUP", &agent.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// GET `path` over HTTPS: (status, WWW-Authenticate, body).
async fn get(
    client: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    auth: Option<(&str, &str)>,
) -> Result<(u16, Option<String>, String), reqwest::Error> {
    let mut request = client.get(format!("https://{addr}{path}"));
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((status, challenge, response.text().await?))
}

/// A TLS connection without a client certificate: what the server does.
async fn handshake_without_certificate(m: &Material, addr: SocketAddr) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(&m.ca).expect("ca");
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.expect("pem")).expect("root");
    }
    use rustls::pki_types::pem::PemObject;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    // TLS 1.3: the server's verdict on the (absent) certificate arrives as
    // an alert on the first read.
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[test]
fn prometheus_scrapes_over_https_with_basic_auth_and_a_client_certificate() {
    let m = material();
    let web = write(m.dir.path(), "web.yml", "");
    let mut cluster = Cluster::start_node(
        SCENARIO,
        "alpha",
        "1s",
        &format!("web-config = \"{}\"\n", web.display()),
    );
    let addr = cluster.addr;
    // Empty web config: plain HTTP without authentication.
    assert_eq!(http_get(addr, "/healthz").expect("plain GET").0, 200);

    // TLS and users on with a reload.
    std::fs::write(&web, tls_web_config()).expect("write web.yml");
    sighup(&cluster.agent);
    poll(
        Duration::from_secs(20),
        Duration::from_millis(100),
        "the agent to stop answering plain HTTP",
        || {
            cluster.agent.assert_running();
            (!matches!(http_get(addr, "/healthz"), Ok((200, _)))).then_some(())
        },
    );
    let rt = runtime();
    let with_cert = https_client(&m, true);
    rt.block_on(async {
        let (status, _, body) = get(&with_cert, addr, "/metrics", Some((USER, PASSWORD)))
            .await
            .expect("GET /metrics");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("drbd_agent_drbd_up 1"), "{body}");
        // A plain request racing the reload may already have been refused
        // (401 on a connection accepted before TLS was on): count from here.
        let unauthorized_before = common::sample_value(
            &body,
            "drbd_agent_api_refused_total{reason=\"unauthorized\"}",
        )
        .unwrap_or_else(|| panic!("no unauthorized count: {body}"));
        let (status, challenge, _) = get(&with_cert, addr, "/metrics", None)
            .await
            .expect("GET /metrics without credentials");
        assert_eq!(status, 401);
        assert_eq!(challenge.as_deref(), Some("Basic realm=\"drbd-agent\""));
        let (status, _, _) = get(&with_cert, addr, "/healthz", Some((USER, "wrong")))
            .await
            .expect("GET /healthz with a wrong password");
        assert_eq!(status, 401);
        let (status, _, _) = get(&with_cert, addr, "/v1/status", Some(("nobody", PASSWORD)))
            .await
            .expect("GET /v1/status as an unknown user");
        assert_eq!(status, 401);
        let (status, _, body) = get(&with_cert, addr, "/v1/status", Some((USER, PASSWORD)))
            .await
            .expect("GET /v1/status");
        assert_eq!(status, 200, "{body}");
        // No client certificate: the handshake fails, no HTTP answer.
        match handshake_without_certificate(&m, addr).await {
            Ok(answer) => assert!(
                !answer.contains("HTTP/1.1"),
                "answered without a client certificate: {answer}"
            ),
            Err(error) => assert!(
                error.to_lowercase().contains("certificate") || error.contains("alert"),
                "{error}"
            ),
        }
        // The refusals are counted.
        let (status, _, metrics) = get(&with_cert, addr, "/metrics", Some((USER, PASSWORD)))
            .await
            .expect("GET /metrics");
        assert_eq!(status, 200);
        let refused = |reason: &str| {
            common::sample_value(
                &metrics,
                &format!("drbd_agent_api_refused_total{{reason=\"{reason}\"}}"),
            )
        };
        assert_eq!(
            refused("unauthorized"),
            Some(unauthorized_before + 3.0),
            "{metrics}"
        );
        assert!(
            refused("tls-handshake").is_some_and(|n| n >= 1.0),
            "{metrics}"
        );
        let without_cert = https_client(&m, false);
        assert!(
            get(&without_cert, addr, "/healthz", Some((USER, PASSWORD)))
                .await
                .is_err(),
            "a client without a certificate got an answer"
        );
    });

    // `drbd-agent status` over HTTPS with the CA, the client certificate
    // and a user (password from the environment); without it: 401.
    let status_command = |user: Option<&str>| {
        let mut command = Command::new(common::AGENT);
        command
            .args(["status", "--url", &format!("https://{addr}"), "--ca-file"])
            .arg(&m.ca)
            .arg("--client-certificate")
            .arg(&m.client_cert)
            .arg("--client-key")
            .arg(&m.client_key)
            .env("DRBD_AGENT_PASSWORD", PASSWORD);
        if let Some(user) = user {
            command.args(["--user", user]);
        }
        run_bounded(command, Duration::from_secs(30))
    };
    let (code, table, stderr) = status_command(Some(USER));
    assert_eq!(code, 0, "{table}{stderr}");
    assert!(table.contains("r0"), "{table}");
    let (code, _, stderr) = status_command(None);
    assert_ne!(code, 0);
    assert!(stderr.contains("401"), "{stderr}");

    // A real Prometheus with its own scrape_config fields.
    let prometheus = Prometheus::start(&m, addr);
    poll(
        Duration::from_secs(60),
        Duration::from_millis(250),
        "Prometheus to report the target up",
        || {
            cluster.agent.assert_running();
            (prometheus.target_health() == "up").then_some(())
        },
    );
    let up = prometheus.query("up{job=\"drbd-agent\"}");
    assert!(up.contains("\"1\""), "{up}");

    // A bad web config on reload: the old one stays in force.
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: web.crt\n  key_file: missing.key\n",
    )
    .expect("write bad web.yml");
    sighup(&cluster.agent);
    poll(
        Duration::from_secs(20),
        Duration::from_millis(100),
        "the agent to log the failed web config reload",
        || {
            let log = std::fs::read_to_string(&cluster.agent.log).unwrap_or_default();
            log.contains("web config reload failed").then_some(log)
        },
    )
    .lines()
    .filter(|l| l.contains("web config reload failed"))
    .for_each(|line| {
        assert!(
            line.contains("web.yml:3:3") && line.contains("tls_server_config.key_file"),
            "the error names file, line and field: {line}"
        );
    });
    rt.block_on(async {
        let (status, _, _) = get(&with_cert, addr, "/healthz", Some((USER, PASSWORD)))
            .await
            .expect("GET /healthz after the bad reload");
        assert_eq!(status, 200);
        let (_, _, metrics) = get(&with_cert, addr, "/metrics", Some((USER, PASSWORD)))
            .await
            .expect("GET /metrics after the bad reload");
        assert_eq!(
            common::sample_value(
                &metrics,
                "drbd_agent_config_reloads_total{result=\"failure\"}"
            ),
            Some(1.0),
            "{metrics}"
        );
    });
    cluster.agent.assert_running();
}

#[test]
fn promtool_accepts_the_shipped_web_config_and_the_agent_reads_it() {
    let promtool = program(
        "promtool",
        "install prometheus (scripts/test-all does: apt-get install prometheus)",
    );
    let m = material();
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/web.yml"))
        .expect("config/web.yml");
    let file = write(m.dir.path(), "web.yml", &shipped);
    let mut command = Command::new(&promtool);
    command.args(["check", "web-config"]).arg(&file);
    let (code, stdout, stderr) = run_bounded(command, Duration::from_secs(30));
    assert_eq!(code, 0, "promtool: {stdout}{stderr}");
    let config = WebConfig::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.tls.is_some());
    assert!(config.users.contains_key("prometheus"));
    // The documented password of the example matches its hash.
    assert!(bcrypt::verify("change-me", &config.users["prometheus"]).expect("bcrypt"));

    // A file both refuse: a client CA without a client auth type.
    let bad = write(
        m.dir.path(),
        "bad.yml",
        "tls_server_config:\n  cert_file: web.crt\n  key_file: web.key\n  client_ca_file: clients-ca.crt\n",
    );
    let mut command = Command::new(&promtool);
    command.args(["check", "web-config"]).arg(&bad);
    let (code, stdout, stderr) = run_bounded(command, Duration::from_secs(30));
    assert_ne!(code, 0, "promtool accepted it: {stdout}{stderr}");
    let error = WebConfig::load(&bad)
        .expect_err("the agent accepted it")
        .to_string();
    assert!(error.contains("client_auth_type"), "{error}");
}

/// A Prometheus server on loopback scraping the agent over HTTPS.
struct Prometheus {
    addr: SocketAddr,
    _proc: Proc,
}

impl Prometheus {
    fn start(m: &Material, target: SocketAddr) -> Prometheus {
        let binary = program(
            "prometheus",
            "install prometheus (scripts/test-all does: apt-get install prometheus)",
        );
        let dir = m.dir.path();
        let config = write(
            dir,
            "prometheus.yml",
            &format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: drbd-agent\n    scheme: https\n    \
                 basic_auth:\n      username: {USER}\n      password: {PASSWORD}\n    \
                 tls_config:\n      ca_file: {}\n      cert_file: {}\n      key_file: {}\n    \
                 static_configs:\n      - targets: ['{target}']\n",
                m.ca.display(),
                m.client_cert.display(),
                m.client_key.display()
            ),
        );
        let data = dir.join("tsdb");
        std::fs::create_dir(&data).expect("tsdb dir");
        let addr: SocketAddr = format!("127.0.0.1:{}", common::free_port())
            .parse()
            .expect("address");
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn");
        let mut proc = Proc::spawn("prometheus", command, dir.join("prometheus.log"));
        poll(
            Duration::from_secs(30),
            Duration::from_millis(100),
            "Prometheus to be ready",
            || {
                proc.assert_running();
                matches!(http_get(addr, "/-/ready"), Ok((200, _))).then_some(())
            },
        );
        Prometheus { addr, _proc: proc }
    }

    fn target_health(&self) -> String {
        let (code, body) = http_get(self.addr, "/api/v1/targets").expect("targets");
        assert_eq!(code, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        json["data"]["activeTargets"][0]["health"]
            .as_str()
            .unwrap_or("none")
            .to_owned()
    }

    fn query(&self, expr: &str) -> String {
        let encoded: String = expr
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (code, body) =
            http_get(self.addr, &format!("/api/v1/query?query={encoded}")).expect("query");
        assert_eq!(code, 200, "{body}");
        body
    }
}

#[test]
fn check_config_reads_the_web_config() {
    let m = material();
    let web = write(m.dir.path(), "web.yml", &tls_web_config());
    let agent_toml = write(
        m.dir.path(),
        "agent.toml",
        &format!(
            "[api]\nweb-config = \"{}\"\nstatus = \"local\"\n",
            web.display()
        ),
    );
    let mut command = Command::new(common::AGENT);
    command.args(["check-config", "--config"]).arg(&agent_toml);
    let (code, stdout, stderr) = run_bounded(command, Duration::from_secs(30));
    assert_eq!(code, 0, "{stdout}{stderr}");
    std::fs::write(&web, "basic_auth_users:\n  prometheus: not-a-hash\n").expect("write");
    let mut command = Command::new(common::AGENT);
    command.args(["check-config", "--config"]).arg(&agent_toml);
    let (code, stdout, stderr) = run_bounded(command, Duration::from_secs(30));
    assert_ne!(code, 0, "{stdout}");
    assert!(
        stderr.contains("web.yml:2:3: field `basic_auth_users.prometheus`: not a bcrypt hash"),
        "{stderr}"
    );
    // A bad `status` value names its line in agent.toml.
    std::fs::write(&agent_toml, "[api]\nstatus = \"public\"\n").expect("write");
    let mut command = Command::new(common::AGENT);
    command.args(["check-config", "--config"]).arg(&agent_toml);
    let (code, _, stderr) = run_bounded(command, Duration::from_secs(30));
    assert_ne!(code, 0);
    assert!(
        stderr.contains("agent.toml:2:") && stderr.contains("\"local\""),
        "{stderr}"
    );
}
