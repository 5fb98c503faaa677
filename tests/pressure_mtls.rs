//! `[pressure] auth = "mtls"` on loopback: two agents' certificates signed
//! by one CA fetch each other's report through the real TLS listener and
//! the real HTTPS fetcher; a client without a certificate, with one from
//! another CA, or speaking plain HTTP gets no data, and the fetcher refuses
//! a server it cannot verify (another CA, a name that is not the address).

// A test, bench or tool: a panic is its failure report, and its helpers
// are reachable only from here.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use drbd_agent::api::Limits;
use drbd_agent::pressure::api::{router, Access, PressureApi};
use drbd_agent::pressure::fetch::{fetch_one, fetch_with, Fetched, PeerAuth};
use drbd_agent::pressure::sampler::SharedReport;
use drbd_agent::pressure::tls::{self, TlsError};
use drbd_agent::pressure::{MtlsFiles, PressureReport, VolumePressure};
use drbd_agent::runtime::CancellationToken;
use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

const TIMEOUT: Duration = Duration::from_secs(2);

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

/// Writes `name`.pem / `name`.key signed by `ca` with `sans`, and
/// `trusted` as the CA file; returns the files.
fn agent(dir: &Path, name: &str, ca: &Ca, sans: &[&str], trusted: &Ca) -> MtlsFiles {
    let key = KeyPair::generate().expect("key");
    let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
    let cert = CertificateParams::new(sans)
        .expect("params")
        .signed_by(&key, &ca.cert, &ca.key)
        .expect("sign");
    let write = |file: String, text: String| -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, text).expect("write");
        path
    };
    MtlsFiles {
        ca_file: write(format!("{name}-ca.pem"), trusted.cert.pem()),
        certificate: write(format!("{name}.pem"), cert.pem()),
        key: write(format!("{name}.key"), key.serialize_pem()),
    }
}

fn report(node: &str) -> SharedReport {
    SharedReport::new(tokio::sync::RwLock::new(PressureReport {
        node: node.into(),
        window_ms: 1000,
        resources: vec![VolumePressure {
            resource: "r0".into(),
            volume: 0,
            write_latency_ms: Some(10.0),
            queue_depth: 1.0,
            foreground_kib_per_sec: 2048.0,
            target_ms: 5.0,
            pressure: Some(2.0),
        }],
    }))
}

/// Serves `node`'s report on 127.0.0.1 over mTLS with `files`; returns
/// the address and the stop switch.
async fn serve(node: &str, files: &MtlsFiles) -> (String, CancellationToken) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(files).expect("server"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let app = router(PressureApi {
        report: report(node),
        access: Access::VerifiedClientCertificate,
    });
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tls::serve(listener, app, acceptor, Limits::default(), stopped);
    (addr, stop)
}

fn describe(f: &Fetched) -> String {
    match f {
        Fetched::Ok(r) => format!("ok from {}", r.node),
        Fetched::Failed { result, error } => format!("{result}: {error}"),
    }
}

#[tokio::test]
async fn two_agents_fetch_each_other_over_mutual_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca();
    let alpha = agent(dir.path(), "alpha", &ca, &["127.0.0.1", "alpha"], &ca);
    let bravo = agent(dir.path(), "bravo", &ca, &["127.0.0.1", "bravo"], &ca);
    let (alpha_addr, stop_alpha) = serve("alpha", &alpha).await;
    let (bravo_addr, stop_bravo) = serve("bravo", &bravo).await;
    let alpha_client = tls::client(&alpha, TIMEOUT).expect("alpha client");
    let bravo_client = tls::client(&bravo, TIMEOUT).expect("bravo client");
    match fetch_with(&bravo_client, "alpha", &alpha_addr, &PeerAuth::Mtls).await {
        Fetched::Ok(r) => assert_eq!(r, report("alpha").read().await.clone()),
        other => panic!("bravo → alpha: {}", describe(&other)),
    }
    match fetch_with(&alpha_client, "bravo", &bravo_addr, &PeerAuth::Mtls).await {
        Fetched::Ok(r) => assert_eq!(r.node, "bravo"),
        other => panic!("alpha → bravo: {}", describe(&other)),
    }
    // Still the node check: bravo's listener is not alpha.
    let wrong = fetch_with(&alpha_client, "alpha", &bravo_addr, &PeerAuth::Mtls).await;
    assert!(
        matches!(
            &wrong,
            Fetched::Failed {
                result: "garbage",
                ..
            }
        ),
        "{}",
        describe(&wrong)
    );
    stop_alpha.cancel();
    stop_bravo.cancel();
}

#[tokio::test]
async fn clients_without_a_valid_certificate_get_no_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca();
    let other = ca_other();
    let alpha = agent(dir.path(), "alpha", &ca, &["127.0.0.1"], &ca);
    let (addr, stop) = serve("alpha", &alpha).await;

    // A certificate from another CA (trusting the right CA for the server).
    let rogue = agent(dir.path(), "rogue", &other, &["127.0.0.1"], &ca);
    let client = tls::client(&rogue, TIMEOUT).expect("rogue client");
    let fetched = fetch_with(&client, "alpha", &addr, &PeerAuth::Mtls).await;
    assert!(
        matches!(&fetched, Fetched::Failed { error, .. } if error.contains("alert")),
        "{}",
        describe(&fetched)
    );

    // No certificate at all (an ordinary HTTPS client trusting the CA).
    let ca_pem = std::fs::read(&alpha.ca_file).expect("ca");
    let anonymous = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).expect("ca cert"))
        .timeout(TIMEOUT)
        .build()
        .expect("client");
    let fetched = fetch_with(&anonymous, "alpha", &addr, &PeerAuth::Mtls).await;
    assert!(
        matches!(&fetched, Fetched::Failed { error, .. } if error.contains("alert")),
        "{}",
        describe(&fetched)
    );

    // The same at the TLS level: whatever the client sends, no byte of the
    // report comes back.
    let received = raw_request_without_certificate(&addr, &alpha.ca_file).await;
    let text = String::from_utf8_lossy(&received);
    assert!(!text.contains("HTTP/1.1") && !text.contains("r0"), "{text}");

    // Plain HTTP to the TLS listener (even with a token).
    let plain = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .expect("client");
    let fetched = fetch_one(&plain, "alpha", &addr, "0123456789abcdef-token").await;
    assert!(
        matches!(fetched, Fetched::Failed { .. }),
        "{}",
        describe(&fetched)
    );
    stop.cancel();
}

fn ca_other() -> Ca {
    ca()
}

/// Handshakes without a client certificate, sends a request, and returns
/// every byte of application data read before the connection failed or
/// closed.
async fn raw_request_without_certificate(addr: &str, ca_file: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca_file).expect("ca pem"))
        .expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let mut received = Vec::new();
    let exchange = async {
        // TLS 1.3: the client may finish its side before the server has
        // judged the (missing) certificate; the refusal comes as an alert.
        let Ok(mut stream) = connector.connect(name, tcp).await else {
            return;
        };
        if stream
            .write_all(b"GET /v1/pressure HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(TIMEOUT * 2, exchange)
        .await
        .expect("the server ends the connection");
    received
}

#[tokio::test]
async fn the_fetcher_verifies_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca();
    let other = ca_other();
    let bravo = agent(dir.path(), "bravo", &ca, &["127.0.0.1"], &ca);
    // A server whose certificate another CA signed.
    let impostor = agent(dir.path(), "impostor", &other, &["127.0.0.1"], &ca);
    let (addr, stop) = serve("alpha", &impostor).await;
    let client = tls::client(&bravo, TIMEOUT).expect("client");
    let fetched = fetch_with(&client, "alpha", &addr, &PeerAuth::Mtls).await;
    assert!(
        matches!(&fetched, Fetched::Failed { error, .. } if error.contains("invalid peer certificate")),
        "{}",
        describe(&fetched)
    );
    stop.cancel();
    // The right CA, but the certificate names another host than the
    // address the peer is contacted at.
    let misnamed = agent(dir.path(), "misnamed", &ca, &["alpha.example"], &ca);
    let (addr, stop) = serve("alpha", &misnamed).await;
    let fetched = fetch_with(&client, "alpha", &addr, &PeerAuth::Mtls).await;
    match &fetched {
        Fetched::Failed { error, .. } => assert!(error.contains("not valid for name"), "{error}"),
        other => panic!("misnamed server accepted: {}", describe(other)),
    }
    stop.cancel();
    let named = agent(dir.path(), "named", &ca, &["127.0.0.1"], &ca);
    let (addr, stop) = serve("alpha", &named).await;
    let fetched = fetch_with(&client, "alpha", &addr, &PeerAuth::Mtls).await;
    assert!(matches!(fetched, Fetched::Ok(_)), "{}", describe(&fetched));
    stop.cancel();
}

#[test]
fn unusable_files_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca();
    let good = agent(dir.path(), "alpha", &ca, &["127.0.0.1"], &ca);
    let missing = MtlsFiles {
        ca_file: dir.path().join("nope.pem"),
        ..good.clone()
    };
    match tls::server_config(&missing) {
        Err(e @ TlsError::Read { .. }) => assert!(e.to_string().contains("nope.pem"), "{e}"),
        other => panic!("{other:?}"),
    }
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let bad_cert = MtlsFiles {
        certificate: garbage.clone(),
        ..good.clone()
    };
    let e = tls::server_config(&bad_cert).expect_err("garbage certificate");
    assert!(e.to_string().contains("garbage.pem"), "{e}");
    let e = tls::client(&bad_cert, TIMEOUT).expect_err("garbage certificate");
    assert!(e.to_string().contains("garbage.pem"), "{e}");
    // A key that does not belong to the certificate.
    let other = agent(dir.path(), "other", &ca, &["127.0.0.1"], &ca);
    let mismatched = MtlsFiles {
        key: other.key.clone(),
        ..good.clone()
    };
    assert!(tls::server_config(&mismatched).is_err());
    assert!(tls::server_config(&good).is_ok());
}

/// `auth = "token"` with `ca-file`: the peer's API speaks HTTPS (its web
/// config has `tls_server_config`); the token crosses TLS only.
#[tokio::test]
async fn the_token_goes_to_a_tls_api_and_never_over_plain_http() {
    use drbd_agent::api::{serve_gated, StatusAccess, WebConfig, WebGate};
    use drbd_agent::pressure::fetch::{token_tls_client, PLAIN_HTTP_TOKEN_REFUSED};
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca();
    let alpha = agent(dir.path(), "alpha", &ca, &["127.0.0.1"], &ca);
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            alpha.certificate.display(),
            alpha.key.display()
        ),
    )
    .expect("write web.yml");
    let gate = Arc::new(WebGate::new(
        WebConfig::load(&web).expect("web config"),
        StatusAccess::Same,
    ));
    let token: Arc<str> = "0123456789abcdef-token".into();
    let app = router(PressureApi {
        report: report("alpha"),
        access: Access::Token(token.clone()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    serve_gated(listener, app, Limits::default(), stopped, gate);

    let client = token_tls_client(&alpha.ca_file, TIMEOUT).expect("client");
    let fetched = fetch_with(&client, "alpha", &addr, &PeerAuth::TokenTls(token.clone())).await;
    assert!(
        matches!(&fetched, Fetched::Ok(r) if r.node == "alpha"),
        "{}",
        describe(&fetched)
    );
    let wrong = fetch_with(
        &client,
        "alpha",
        &addr,
        &PeerAuth::TokenTls("wrong-token-0123456789".into()),
    )
    .await;
    assert!(
        matches!(
            &wrong,
            Fetched::Failed {
                result: "unauthorized",
                ..
            }
        ),
        "{}",
        describe(&wrong)
    );
    // Without TLS configured the fetcher asks nothing.
    let refused = fetch_with(&client, "alpha", &addr, &PeerAuth::TokenRefused).await;
    assert!(
        matches!(&refused, Fetched::Failed { result, error } if *result == PLAIN_HTTP_TOKEN_REFUSED && error.contains("TLS only")),
        "{}",
        describe(&refused)
    );
    stop.cancel();
}
