//! Two real agents on one simulated cluster with `[pressure] auth = "mtls"`:
//! alpha (Primary) serves its report on its own TLS listener only, bravo
//! (SyncTarget) fetches it with its certificate and is steered by it; with
//! a certificate from another CA bravo gets nothing and says why.

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// Shared test helpers (tests/support/): only those this test uses.
mod support {
    pub mod bins;
    pub mod common;
}
use support::common;

use common::free_port;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{http_get, http_get_with, poll, Cluster};
use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair};
use serde_json::Value;

const SCENARIO: &str = include_str!("data/sim/throttle-plant.toml");
const PEER: &str = "r0/0/0";
const BOUND: Duration = Duration::from_secs(60);
const EVERY: Duration = Duration::from_millis(100);

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

/// The `[pressure]` TLS keys for `name`: a certificate for 127.0.0.1
/// signed by `signer`, trusting `trusted`.
fn tls_keys(dir: &Path, name: &str, signer: &Ca, trusted: &Ca) -> String {
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&key, &signer.cert, &signer.key)
        .expect("sign");
    let write = |file: String, text: String| {
        let path = dir.join(file);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    };
    format!(
        "auth = \"mtls\"\nca-file = \"{}\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
        write(format!("{name}-ca.pem"), trusted.cert.pem()),
        write(format!("{name}.pem"), cert.pem()),
        write(format!("{name}.key"), key.serialize_pem()),
    )
}

fn signal(addr: SocketAddr) -> Option<Value> {
    let (code, body) = http_get(addr, "/v1/status").ok()?;
    (code == 200).then_some(())?;
    let status: Value = serde_json::from_str(&body).ok()?;
    let s = status["throttle"]["peers"][PEER]["signal"].clone();
    (!s.is_null()).then_some(s)
}

/// Alpha's agent (listening for pressure on `port`) and bravo's, whose
/// certificate `bravo_signer` signed.
fn start(bravo_signer: Option<&Ca>) -> (Cluster, common::Proc, SocketAddr, u16, tempfile::TempDir) {
    let pki = tempfile::tempdir().expect("temp dir");
    let ca = ca();
    let alpha_port = free_port();
    let alpha_config = format!(
        "[state]\ndirectory = \"{}\"\n[throttle]\nlatency-target = \"5ms\"\n\
         [pressure]\nenabled = true\ninterval = \"500ms\"\nport = {alpha_port}\n{}",
        pki.path().join("alpha-state").display(),
        tls_keys(pki.path(), "alpha", &ca, &ca),
    );
    let mut cluster = Cluster::start_node(SCENARIO, "alpha", "1s", &alpha_config);
    std::fs::create_dir_all(pki.path().join("bravo-state")).expect("state dir");
    let bravo_config = format!(
        "[state]\ndirectory = \"{}\"\n\
         [throttle]\nenabled = true\nmode = \"enforce\"\ninterval = \"500ms\"\n\
         latency-target = \"5ms\"\nmin-rate = \"1MiB/s\"\nmax-rate = \"100MiB/s\"\n\
         [pressure]\nenabled = true\ninterval = \"500ms\"\nstale-after = \"2s\"\nport = {}\n{}\
         [pressure.peers]\nalpha = \"127.0.0.1:{alpha_port}\"\n",
        pki.path().join("bravo-state").display(),
        free_port(),
        tls_keys(pki.path(), "bravo", bravo_signer.unwrap_or(&ca), &ca),
    );
    let (bravo, bravo_addr) = cluster.start_peer_agent("bravo", &bravo_config);
    (cluster, bravo, bravo_addr, alpha_port, pki)
}

#[test]
fn the_primarys_pressure_steers_bravo_over_mutual_tls() {
    let (cluster, mut bravo, bravo_addr, alpha_port, _pki) = start(None);
    let peer = poll(BOUND, EVERY, "bravo steered by alpha's pressure", || {
        bravo.assert_running();
        signal(bravo_addr).filter(|s| s["source"] == "peer")
    });
    assert_eq!(peer["node"], "alpha");
    assert!(peer["pressure"].as_f64().is_some_and(|p| p > 0.0), "{peer}");
    // The plain API no longer serves the report, token or not.
    let (code, body) = http_get_with(
        cluster.addr,
        "/v1/pressure",
        "Authorization: Bearer 0123456789abcdef-token\r\n",
    )
    .expect("GET");
    assert_eq!(code, 404, "{body}");
    // Plain HTTP to the TLS listener gets no HTTP answer.
    let tls_addr: SocketAddr = format!("127.0.0.1:{alpha_port}").parse().expect("addr");
    if let Ok((code, body)) = http_get(tls_addr, "/v1/pressure") {
        panic!("plain HTTP answered {code}: {body}");
    }
}

#[test]
fn a_certificate_from_another_ca_gets_nothing() {
    let other = ca();
    let (_cluster, mut bravo, bravo_addr, alpha_port, _pki) = start(Some(&other));
    let local = poll(BOUND, EVERY, "bravo reporting the refusal", || {
        bravo.assert_running();
        signal(bravo_addr).filter(|s| s["reason"]["why"] == "unreachable")
    });
    assert_eq!(local["source"], "local");
    assert_eq!(local["reason"]["node"], "alpha");
    // The refusal is TLS's (an alert in the handshake), not a refused connection.
    assert!(
        local["reason"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("alert")),
        "{local}"
    );
    // Alpha's listener is up: the refusal is the handshake's.
    std::net::TcpStream::connect(("127.0.0.1", alpha_port)).expect("alpha's TLS listener");
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(500));
        let s = signal(bravo_addr).expect("signal");
        assert_eq!(s["source"], "local", "{s}");
    }
}
