//! `[api] web-config`: TLS and basic authentication for the API port, read
//! from a file in the format of the Prometheus exporters (exporter-toolkit's
//! `web-config.yml`, which node_exporter reads with `--web.config.file`):
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # relative paths: to the file's directory
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: clients-ca.crt
//!   min_version: TLS12
//! basic_auth_users:
//!   prometheus: $2y$10$...         # bcrypt hash
//! ```
//!
//! Errors name the file, the line and the field. TLS is rustls (TLS 1.2 and
//! 1.3 only, so `min_version: TLS10`/`TLS11` are refused as such).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// A web config that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("{}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}:{line}:{column}: {}{message}", path.display(), field_prefix(field))]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        /// The field at fault (`tls_server_config.cert_file`), when known.
        field: Option<String>,
        message: String,
    },
}

fn field_prefix(field: &Option<String>) -> String {
    field
        .as_ref()
        .map(|f| format!("field `{f}`: "))
        .unwrap_or_default()
}

/// `client_auth_type`, with Go's `crypto/tls` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ClientAuthType {
    /// No client certificate is asked for.
    #[default]
    NoClientCert,
    /// Asked for, not required, not verified.
    RequestClientCert,
    /// Required, not verified.
    RequireAnyClientCert,
    /// Verified against `client_ca_file` when one is presented.
    VerifyClientCertIfGiven,
    /// Required and verified against `client_ca_file`.
    RequireAndVerifyClientCert,
}

/// `min_version` / `max_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum TlsVersion {
    TLS10,
    TLS11,
    TLS12,
    TLS13,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTlsServerConfig>,
    http_server_config: Option<RawHttpServerConfig>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTlsServerConfig {
    cert_file: Option<String>,
    key_file: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_auth_type: Option<ClientAuthType>,
    client_ca_file: Option<String>,
    client_ca: Option<String>,
    min_version: Option<TlsVersion>,
    max_version: Option<TlsVersion>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpServerConfig {
    /// HTTP/2 is not served (HTTP/1.1 only); accepted for compatibility.
    #[allow(dead_code)]
    http2: Option<bool>,
    /// Extra response headers.
    headers: Option<BTreeMap<String, String>>,
}

/// A loaded web config: the TLS side (`None`: plain HTTP) and the users.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// The file read (`None`: no `[api] web-config`, plain HTTP, no users).
    pub source: Option<PathBuf>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub client_auth: ClientAuthType,
    /// User name → bcrypt hash; empty: no authentication.
    pub users: BTreeMap<String, String>,
    /// Response headers from `http_server_config.headers`.
    pub headers: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
}

impl WebConfig {
    /// Reads and checks `path` (and the files it names).
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| WebConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(path, &text)
    }

    /// Checks `text` as read from `path` (relative file names are taken
    /// relative to its directory).
    pub fn parse(path: &Path, text: &str) -> Result<Self, WebConfigError> {
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| syntax_error(path, &e))?
        };
        let at = |field: &str, message: String| {
            let (line, column) = field_position(text, field);
            WebConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                field: Some(field.to_owned()),
                message,
            }
        };
        let directory = path.parent().unwrap_or(Path::new("."));
        let mut config = WebConfig {
            source: Some(path.to_owned()),
            ..WebConfig::default()
        };
        if let Some(users) = raw.basic_auth_users {
            for (user, hash) in users {
                let field = format!("basic_auth_users.{user}");
                if user.is_empty() || user.contains(':') {
                    return Err(at(
                        &field,
                        "a user name must be non-empty and contain no ':'".to_owned(),
                    ));
                }
                if hash.parse::<bcrypt::HashParts>().is_err() {
                    return Err(at(
                        &field,
                        "not a bcrypt hash (expected $2y$<cost>$..., e.g. from `htpasswd -nBC 10 USER`)"
                            .to_owned(),
                    ));
                }
                config.users.insert(user, hash);
            }
        }
        if let Some(http) = raw.http_server_config {
            for (name, value) in http.headers.unwrap_or_default() {
                let field = format!("http_server_config.headers.{name}");
                let header_name = axum::http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| at(&field, e.to_string()))?;
                let header_value = axum::http::HeaderValue::from_str(&value)
                    .map_err(|e| at(&field, e.to_string()))?;
                config.headers.push((header_name, header_value));
            }
        }
        if let Some(tls) = raw.tls_server_config {
            let (server, client_auth) = build_tls(&tls, directory, &at)?;
            config.tls = Some(server);
            config.client_auth = client_auth;
        }
        Ok(config)
    }

    /// True when basic authentication is on.
    pub fn needs_basic_auth(&self) -> bool {
        !self.users.is_empty()
    }
}

fn syntax_error(path: &Path, error: &serde_yaml::Error) -> WebConfigError {
    let (line, column) = error.location().map_or((1, 1), |l| (l.line(), l.column()));
    let mut message = error.to_string();
    // The position is given in front already.
    if let Some(cut) = message.find(" at line ") {
        message.truncate(cut);
    }
    // serde_yaml puts the field path in front: `tls_server_config: unknown field ...`.
    let field = message
        .split_once(": ")
        .map(|(head, _)| head)
        .filter(|head| {
            !head.is_empty()
                && head.chars().all(|c| {
                    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '[' || c == ']'
                })
        })
        .map(str::to_owned);
    if let Some(field) = &field {
        message = message[field.len() + 2..].to_owned();
    }
    WebConfigError::Invalid {
        path: path.to_owned(),
        line,
        column,
        field,
        message,
    }
}

/// Where `field` (dotted, e.g. `tls_server_config.cert_file`) is written:
/// each part searched after the line of the previous one. Line 1 if not found.
pub fn field_position(text: &str, field: &str) -> (usize, usize) {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    let mut found = None;
    for part in field.split('.') {
        let hit = lines.iter().enumerate().skip(from).find_map(|(i, line)| {
            let trimmed = line.trim_start();
            let unquoted = trimmed.trim_start_matches(['"', '\'']);
            unquoted
                .strip_prefix(part)
                .filter(|rest| rest.trim_start_matches(['"', '\'']).starts_with(':'))
                .map(|_| (i, line.len() - trimmed.len()))
        });
        match hit {
            Some((i, indent)) => {
                found = Some((i + 1, indent + 1));
                from = i + 1;
            }
            None => break,
        }
    }
    found.unwrap_or((1, 1))
}

type At<'a> = &'a dyn Fn(&str, String) -> WebConfigError;

/// PEM text from `inline` or from the file `file` (relative to `directory`).
fn pem_source(
    directory: &Path,
    file: &Option<String>,
    inline: &Option<String>,
    file_field: &str,
    inline_field: &str,
    at: At<'_>,
) -> Result<Option<Vec<u8>>, WebConfigError> {
    match (file, inline) {
        (Some(_), Some(_)) => Err(at(
            inline_field,
            format!("set either {file_field} or {inline_field}, not both"),
        )),
        (Some(name), None) => {
            let path = directory.join(name);
            std::fs::read(&path)
                .map(Some)
                .map_err(|e| at(file_field, format!("{}: {e}", path.display())))
        }
        (None, Some(text)) => Ok(Some(text.as_bytes().to_vec())),
        (None, None) => Ok(None),
    }
}

fn certificates(
    pem: &[u8],
    field: &str,
    at: At<'_>,
) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| at(field, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(at(field, "no CERTIFICATE in the PEM text".to_owned()));
    }
    Ok(certs)
}

fn build_tls(
    raw: &RawTlsServerConfig,
    directory: &Path,
    at: At<'_>,
) -> Result<(Arc<rustls::ServerConfig>, ClientAuthType), WebConfigError> {
    const TLS: &str = "tls_server_config";
    let field = |name: &str| format!("{TLS}.{name}");
    let min = raw.min_version.unwrap_or(TlsVersion::TLS12);
    let max = raw.max_version.unwrap_or(TlsVersion::TLS13);
    for (name, version) in [
        ("min_version", raw.min_version),
        ("max_version", raw.max_version),
    ] {
        if matches!(version, Some(TlsVersion::TLS10 | TlsVersion::TLS11)) {
            return Err(at(
                &field(name),
                "TLS 1.0 and 1.1 are not offered (rustls: TLS12 or TLS13)".to_owned(),
            ));
        }
    }
    if min > max {
        return Err(at(
            &field("min_version"),
            format!("min_version {min:?} is above max_version {max:?}"),
        ));
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::TLS12, &rustls::version::TLS12),
        (TlsVersion::TLS13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (min..=max).contains(v))
    .map(|(_, v)| v)
    .collect();
    let cert_pem = pem_source(
        directory,
        &raw.cert_file,
        &raw.cert,
        &field("cert_file"),
        &field("cert"),
        at,
    )?
    .ok_or_else(|| at(TLS, "cert_file (or cert) is required".to_owned()))?;
    let key_pem = pem_source(
        directory,
        &raw.key_file,
        &raw.key,
        &field("key_file"),
        &field("key"),
        at,
    )?
    .ok_or_else(|| at(TLS, "key_file (or key) is required".to_owned()))?;
    let cert_field = if raw.cert.is_some() {
        field("cert")
    } else {
        field("cert_file")
    };
    let key_field = if raw.key.is_some() {
        field("key")
    } else {
        field("key_file")
    };
    let chain = certificates(&cert_pem, &cert_field, at)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| at(&key_field, format!("no usable private key: {e}")))?;
    let client_auth = raw.client_auth_type.unwrap_or_default();
    let ca_pem = pem_source(
        directory,
        &raw.client_ca_file,
        &raw.client_ca,
        &field("client_ca_file"),
        &field("client_ca"),
        at,
    )?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ClientCertVerifier> = match (client_auth, ca_pem) {
        (ClientAuthType::NoClientCert, None) => Arc::new(rustls::server::NoClientAuth),
        (ClientAuthType::NoClientCert, Some(_)) => {
            return Err(at(
                &field("client_auth_type"),
                "client_ca_file is set but client_auth_type is NoClientCert (set RequireAndVerifyClientCert or VerifyClientCertIfGiven)".to_owned(),
            ))
        }
        (ClientAuthType::RequestClientCert | ClientAuthType::RequireAnyClientCert, _) => {
            Arc::new(AnyClientCert {
                mandatory: client_auth == ClientAuthType::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            })
        }
        (
            ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert,
            None,
        ) => {
            return Err(at(
                &field("client_auth_type"),
                format!("{client_auth:?} needs client_ca_file"),
            ))
        }
        (
            ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert,
            Some(pem),
        ) => {
            let ca_field = if raw.client_ca.is_some() {
                field("client_ca")
            } else {
                field("client_ca_file")
            };
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(&pem, &ca_field, at)? {
                roots
                    .add(cert)
                    .map_err(|e| at(&ca_field, format!("not a usable CA: {e}")))?;
            }
            let builder = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            );
            let builder = if client_auth == ClientAuthType::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| at(&ca_field, format!("client verifier: {e}")))?
        }
    };
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| at(&field("min_version"), e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            at(
                &key_field,
                format!("certificate and key do not make a usable pair: {e}"),
            )
        })?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(server), client_auth))
}

/// `RequestClientCert` / `RequireAnyClientCert`: any certificate is taken
/// (as in Go: not verified), but its handshake signature must be valid.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The user and password of an `Authorization: Basic ...` value.
pub fn parse_basic_authorization(value: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = decode_base64(encoded.trim())?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Standard base64 with padding (RFC 4648 §4); `None` for anything else.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (index, chunk) in bytes.chunks(4).enumerate() {
        let last = index + 1 == bytes.len() / 4;
        let padding = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return None;
        }
        let mut group = 0u32;
        for &c in &chunk[..4 - padding] {
            group = (group << 6) | value(c)?;
        }
        group <<= 6 * padding as u32;
        let produced = [(group >> 16) as u8, (group >> 8) as u8, group as u8];
        out.extend_from_slice(&produced[..3 - padding]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebConfig, WebConfigError> {
        WebConfig::parse(Path::new("/nonexistent/web.yml"), text)
    }

    #[test]
    fn empty_file_means_plain_http_without_users() {
        let config = parse("").unwrap();
        assert!(config.tls.is_none());
        assert!(!config.needs_basic_auth());
    }

    #[test]
    fn users_need_bcrypt_hashes() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let config = parse(&format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
        assert_eq!(config.users["alice"], hash);
        let error = parse("basic_auth_users:\n  alice: plain-password\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("/nonexistent/web.yml:2:3: field `basic_auth_users.alice`:"),
            "{error}"
        );
    }

    #[test]
    fn unknown_fields_name_file_line_and_field() {
        let error = parse("tls_server_config:\n  cert_file: a\n  certfile: b\n")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("/nonexistent/web.yml:3:"), "{error}");
        assert!(error.contains("tls_server_config"), "{error}");
        assert!(error.contains("certfile"), "{error}");
    }

    #[test]
    fn missing_files_name_the_field() {
        let error = parse("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "/nonexistent/web.yml:2:3: field `tls_server_config.cert_file`: /nonexistent/server.crt:"
            ),
            "{error}"
        );
    }

    #[test]
    fn old_tls_versions_and_bad_auth_types_are_refused() {
        let error = parse("tls_server_config:\n  cert: x\n  key: y\n  min_version: TLS10\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "/nonexistent/web.yml:4:3: field `tls_server_config.min_version`: TLS 1.0"
            ),
            "{error}"
        );
        let error = parse("tls_server_config:\n  client_auth_type: Sometimes\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains(":2:"), "{error}");
        assert!(error.contains("Sometimes"), "{error}");
    }

    #[test]
    fn basic_authorization_values() {
        // "alice:pa:ss" in base64.
        assert_eq!(
            parse_basic_authorization(b"Basic YWxpY2U6cGE6c3M="),
            Some(("alice".into(), "pa:ss".into()))
        );
        assert_eq!(parse_basic_authorization(b"Bearer YWxpY2U6cGE6c3M="), None);
        assert_eq!(parse_basic_authorization(b"Basic YWxpY2U"), None);
        assert_eq!(parse_basic_authorization(b"Basic !!!!"), None);
        assert_eq!(decode_base64("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_base64("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(decode_base64("YQ==YQ=="), None);
        assert_eq!(decode_base64("Y==="), None);
    }

    #[test]
    fn field_positions() {
        let text = "a:\n  b: 1\nc:\n  b: 2\n";
        assert_eq!(field_position(text, "c.b"), (4, 3));
        assert_eq!(field_position(text, "a.b"), (2, 3));
        assert_eq!(field_position(text, "x"), (1, 1));
    }
}
