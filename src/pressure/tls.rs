//! Mutual TLS for `/v1/pressure` (`[pressure] auth = "mtls"`).
//!
//! Every agent has a certificate signed by one CA (`ca-file`) and uses it
//! both ways: its TLS listener (on `[pressure] port`) requires a client
//! certificate that verifies against that CA, so a connection without one
//! fails in the handshake and never reaches HTTP; its fetcher connects with
//! `https://`, presents the same certificate and trusts that CA only (no
//! system roots). The peer's certificate must name the host the peer is
//! contacted at — the IP address of the DRBD path (an IP SAN), or the host
//! written in `[pressure.peers]` (a DNS or IP SAN) — and is verified the
//! usual way (chain, validity, name).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use tokio::task::JoinHandle;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::api::{self, is_no_ipv6_error, Limits};
use crate::runtime::CancellationToken;

use super::config::MtlsFiles;

/// Why the TLS side cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {error}")]
    Read { path: PathBuf, error: io::Error },
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.to_owned(),
        error,
    })
}

fn pem_error(path: &Path, message: impl ToString) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// Every certificate in a PEM file (at least one).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no CERTIFICATE in the file"));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| pem_error(path, format!("no usable private key: {e}")))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(files: &MtlsFiles) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(&files.ca_file)? {
        roots
            .add(cert)
            .map_err(|e| pem_error(&files.ca_file, format!("not a usable CA: {e}")))?;
    }
    Ok(roots)
}

/// The listener's TLS configuration: this agent's certificate, client
/// certificates required and verified against the CA.
pub fn server_config(files: &MtlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let invalid = |message: String| TlsError::Invalid {
        what: format!(
            "{} with {}",
            files.certificate.display(),
            files.key.display()
        ),
        message,
    };
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(files)?),
        provider.clone(),
    )
    .build()
    .map_err(|e| pem_error(&files.ca_file, format!("client verifier: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certificates(&files.certificate)?, private_key(&files.key)?)
        .map_err(|e| invalid(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The fetcher's HTTPS client: this agent's certificate as identity, the CA
/// as the only root.
pub fn client(files: &MtlsFiles, timeout: Duration) -> Result<reqwest::Client, TlsError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .https_only(true)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    for cert in certificates(&files.ca_file)? {
        let cert =
            reqwest::Certificate::from_der(&cert).map_err(|e| pem_error(&files.ca_file, e))?;
        builder = builder.add_root_certificate(cert);
    }
    let mut identity = read(&files.certificate)?;
    identity.push(b'\n');
    identity.extend(read(&files.key)?);
    let identity = reqwest::Identity::from_pem(&identity)
        .map_err(|e| pem_error(&files.certificate, format!("certificate or key: {e}")))?;
    builder
        .identity(identity)
        .build()
        .map_err(|e| TlsError::Invalid {
            what: "pressure HTTPS client".to_owned(),
            message: e.to_string(),
        })
}

/// An HTTPS client that trusts `ca_file` only and presents no certificate
/// (token authentication to the peers' TLS API).
pub fn ca_only_client(ca_file: &Path, timeout: Duration) -> Result<reqwest::Client, TlsError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .https_only(true)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    for cert in certificates(ca_file)? {
        let cert = reqwest::Certificate::from_der(&cert).map_err(|e| pem_error(ca_file, e))?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|e| TlsError::Invalid {
        what: "pressure HTTPS client".to_owned(),
        message: e.to_string(),
    })
}

/// Binds `[::]:port`, or `0.0.0.0:port` on a kernel without IPv6.
/// Synchronous (called while the daemon starts); must run in a runtime.
pub fn bind(port: u16) -> Result<TcpListener, TlsError> {
    let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    let any4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let listener = match std::net::TcpListener::bind(any6) {
        Ok(l) => l,
        Err(e) if is_no_ipv6_error(&e) => std::net::TcpListener::bind(any4)
            .map_err(|source| TlsError::Listen { addr: any4, source })?,
        Err(source) => return Err(TlsError::Listen { addr: any6, source }),
    };
    let addr = listener.local_addr().unwrap_or(any6);
    listener
        .set_nonblocking(true)
        .map_err(|source| TlsError::Listen { addr, source })?;
    TcpListener::from_std(listener).map_err(|source| TlsError::Listen { addr, source })
}

/// Serves `router` over TLS on `listener` until `shutdown`. The handshake
/// must finish within `limits.header_read_timeout`; a client without a
/// valid certificate is dropped there.
pub fn serve(
    listener: TcpListener,
    router: Router,
    acceptor: TlsAcceptor,
    limits: Limits,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let handshake_timeout = limits.header_read_timeout;
    api::serve_prepared(listener, router, limits, shutdown, move |stream, peer| {
        let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
        async move {
            match handshake.await {
                Ok(Ok(stream)) => Some(stream),
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "pressure: TLS handshake refused");
                    None
                }
                Err(_) => {
                    debug!(%peer, "pressure: TLS handshake timed out");
                    None
                }
            }
        }
    })
}
