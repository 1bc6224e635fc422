//! TLS for the PostgreSQL connections, with libpq's `sslmode` and `sslrootcert`.
//!
//! tokio-postgres knows `sslmode` disable, prefer and require, and nothing of
//! certificates: it asks the server for TLS and hands the socket to a connector. So
//! [`split`] takes `sslmode` and `sslrootcert` out of the URL (passing tokio-postgres
//! the mode it knows), and [`Connector`] does the handshake with rustls (on `ring`)
//! and verifies what the mode asks for, as libpq does:
//!
//! | sslmode            | TLS                         | certificate checked            |
//! |--------------------|-----------------------------|--------------------------------|
//! | disable            | never                       | -                              |
//! | allow, prefer      | when the server offers it   | chain, only with `sslrootcert` |
//! | require            | always                      | chain, only with `sslrootcert` |
//! | verify-ca          | always                      | chain                          |
//! | verify-full        | always                      | chain and host name            |
//!
//! The chain is checked against `sslrootcert` (a PEM file) or, without one, the
//! system's CA certificates; `sslrootcert=system` names those explicitly and, as in
//! libpq, implies verify-full.

use crate::url::OpenError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    Disable,
    /// libpq tries plaintext first; here it is `prefer` (TLS first), which reaches
    /// every server `allow` reaches.
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The mode tokio-postgres negotiates with; verification is the connector's.
    pub(super) fn for_tokio_postgres(self) -> PgSslMode {
        match self {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Allow | SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
        }
    }
}

/// Where the trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RootCert {
    File(PathBuf),
    System,
}

/// The TLS parameters of a metadata URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TlsParams {
    pub(super) mode: SslMode,
    pub(super) root_cert: Option<RootCert>,
}

/// Takes `sslmode` and `sslrootcert` out of a URL or key=value string: the rest for
/// tokio-postgres, and the parameters. `Err` is the reason the URL is wrong.
pub(super) fn split(url: &str) -> Result<(String, TlsParams), String> {
    let (rest, found) = match url.split_once("://") {
        Some(_) => split_query(url)?,
        None => split_key_values(url),
    };
    let mut mode = None;
    let mut root_cert = None;
    // As in libpq, the last of a repeated parameter counts.
    for (key, value) in found {
        match (key.as_str(), value.as_str()) {
            ("sslmode", value) => {
                mode = Some(SslMode::parse(value).ok_or_else(|| {
                    format!("sslmode {value:?} is not one of disable, allow, prefer, require, verify-ca, verify-full")
                })?)
            }
            (_, "") => return Err("sslrootcert is empty; name a PEM file of CA certificates, or system".into()),
            (_, "system") => root_cert = Some(RootCert::System),
            (_, path) => root_cert = Some(RootCert::File(PathBuf::from(path))),
        }
    }
    let mode = match (mode, &root_cert) {
        // libpq: the system's roots vouch for any name, so only verify-full is safe.
        (None, Some(RootCert::System)) => SslMode::VerifyFull,
        (Some(mode), Some(RootCert::System)) if mode != SslMode::VerifyFull => {
            return Err(format!(
                "sslmode {} cannot be used with sslrootcert=system; use sslmode=verify-full",
                mode.name()
            ))
        }
        (mode, _) => mode.unwrap_or(SslMode::Prefer),
    };
    Ok((rest, TlsParams { mode, root_cert }))
}

fn is_tls_key(key: &str) -> bool {
    key == "sslmode" || key == "sslrootcert"
}

type Found = Vec<(String, String)>;

/// `scheme://...?a=b&sslmode=x`: the query's TLS pairs, decoded; the others are kept
/// as they are written.
fn split_query(url: &str) -> Result<(String, Found), String> {
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_string(), Vec::new())) };
    let mut kept = Vec::new();
    let mut found = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key)?;
        if is_tls_key(&key) {
            found.push((key, percent_decode(value)?));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    Ok((rest, found))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

/// `host=db sslmode='verify-full'`: the TLS pairs, unquoted and unescaped, and the
/// string without them. Anything it cannot read is left for tokio-postgres to report.
fn split_key_values(text: &str) -> (String, Found) {
    let mut rest = String::new();
    let mut found = Vec::new();
    let mut copied = 0;
    let mut chars = text.char_indices().peekable();
    let skip_spaces = |chars: &mut std::iter::Peekable<std::str::CharIndices>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_spaces(&mut chars);
        let Some(&(start, _)) = chars.peek() else { break };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        skip_spaces(&mut chars);
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return (text.to_string(), Vec::new());
        }
        skip_spaces(&mut chars);
        let quoted = chars.next_if(|(_, c)| *c == '\'').is_some();
        let mut value = String::new();
        let mut closed = !quoted;
        while let Some((_, c)) = chars.peek().copied() {
            if !quoted && c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => return (text.to_string(), Vec::new()),
                },
                '\'' if quoted => {
                    closed = true;
                    break;
                }
                c => value.push(c),
            }
        }
        if !closed {
            return (text.to_string(), Vec::new());
        }
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        if is_tls_key(&key) {
            rest.push_str(&text[copied..start]);
            copied = end;
            found.push((key, value));
        }
    }
    rest.push_str(&text[copied..]);
    (rest.trim().to_string(), found)
}

/// Makes the TLS sessions of one store's connections.
#[derive(Clone)]
pub(super) struct Connector {
    config: Arc<ClientConfig>,
}

impl Connector {
    /// Reads the CA certificates the mode needs (a start-up error when they cannot be
    /// had) and sets up rustls on the `ring` provider, named here rather than taken from
    /// a process-wide default.
    pub(super) fn new(params: &TlsParams, server: &str) -> Result<Connector, OpenError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verify = matches!(params.mode, SslMode::VerifyCa | SslMode::VerifyFull);
        let roots = match (&params.root_cert, verify) {
            (Some(RootCert::File(path)), _) => Some(file_roots(path)?),
            (Some(RootCert::System), _) | (None, true) => Some(system_roots()?),
            // prefer and require without sslrootcert: encrypted, not authenticated.
            (None, false) => None,
        };
        let verifier = Verifier {
            roots: roots.map(Arc::new),
            check_name: params.mode == SslMode::VerifyFull,
            provider: provider.clone(),
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| OpenError::Tls { server: server.to_string(), reason: e.to_string() })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // PostgreSQL 17's direct TLS (sslnegotiation=direct) requires it; older
        // servers ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Connector { config: Arc::new(config) })
    }
}

fn file_roots(path: &Path) -> Result<RootCertStore, OpenError> {
    let fail = |reason: String| OpenError::RootCert { path: path.display().to_string(), reason };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| fail(format!("not a PEM file ({e})")))?;
        roots.add(cert).map_err(|e| fail(format!("a certificate in it does not parse ({e})")))?;
    }
    if roots.is_empty() {
        return Err(fail("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, OpenError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let reason = match found.errors.first() {
            Some(e) => e.to_string().replace('\n', " "),
            None => "none found".to_string(),
        };
        return Err(OpenError::NoSystemRoots { reason });
    }
    Ok(roots)
}

/// Checks the server's certificate as the mode asks. The handshake's own signatures
/// are always checked: even unverified, the session's key belongs to the certificate.
#[derive(Debug)]
struct Verifier {
    /// `None`: any certificate (libpq's prefer and require).
    roots: Option<Arc<RootCertStore>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            let algorithms = self.provider.signature_verification_algorithms.all;
            rustls::client::verify_server_cert_signed_by_trust_anchor(&cert, roots, intermediates, now, algorithms)?;
            if self.check_name {
                rustls::client::verify_server_name(&cert, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

impl<S> MakeTlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = HandshakeError;

    fn make_tls_connect(&mut self, host: &str) -> Result<Connect, HandshakeError> {
        // tokio-postgres asks before it knows whether TLS will be used (never over a
        // Unix socket, where `host` is empty): a bad name fails only a handshake.
        let name = ServerName::try_from(host.to_string()).map_err(|_| host.to_string());
        Ok(Connect { config: self.config.clone(), name })
    }
}

/// One handshake, to the server reached by the name it holds.
pub(super) struct Connect {
    config: Arc<ClientConfig>,
    name: Result<ServerName<'static>, String>,
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = HandshakeError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream<S>, HandshakeError>> + Send>>;

    fn connect(self, socket: S) -> Self::Future {
        Box::pin(async move {
            let name = self.name.map_err(HandshakeError::BadHostName)?;
            let inner = tokio_rustls::TlsConnector::from(self.config)
                .connect(name, socket)
                .await
                .map_err(HandshakeError::Io)?;
            let end_point = inner.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(server_end_point);
            Ok(Stream { inner, end_point })
        })
    }
}

/// Why a TLS session could not be set up.
#[derive(Debug)]
pub(super) enum HandshakeError {
    BadHostName(String),
    Io(io::Error),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::BadHostName(host) if host.is_empty() => {
                f.write_str("no host name to check the certificate against")
            }
            HandshakeError::BadHostName(host) => write!(f, "{host:?} is not a valid host name for TLS"),
            HandshakeError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// A TLS session under a PostgreSQL connection.
pub(super) struct Stream<S> {
    inner: tokio_rustls::client::TlsStream<S>,
    /// The `tls-server-end-point` channel binding of SCRAM authentication.
    end_point: Option<Vec<u8>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        match &self.end_point {
            Some(hash) => ChannelBinding::tls_server_end_point(hash.clone()),
            None => ChannelBinding::none(),
        }
    }
}

/// RFC 5929's `tls-server-end-point`: the server certificate's hash, by the hash
/// function of its signature (SHA-256 for MD5 and SHA-1), which binds SCRAM's
/// authentication to this TLS session so that a machine in the middle cannot relay it.
/// `None` for signatures that name no hash this way (RSA-PSS, Ed25519): SCRAM then
/// runs without binding, as the server allows.
fn server_end_point(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { OID, .. }, .. }
    let (_, certificate, _) = der(cert.as_ref())?;
    let (_, _tbs, after_tbs) = der(certificate)?;
    let (_, algorithm, _) = der(after_tbs)?;
    let (tag, oid, _) = der(algorithm)?;
    if tag != 0x06 {
        return None;
    }
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01]; // 1.2.840.113549.1.1
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03]; // 1.2.840.10045.4.3
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01]; // 1.2.840.10045.4.1
    use ring::digest::{SHA256, SHA384, SHA512};
    let hash = match oid {
        [rest @ .., last] if rest == RSA => match last {
            4 | 5 | 11 => &SHA256, // md5, sha1, sha256 WithRSAEncryption
            12 => &SHA384,
            13 => &SHA512,
            _ => return None,
        },
        [rest @ .., last] if rest == ECDSA_SHA2 => match last {
            2 => &SHA256,
            3 => &SHA384,
            4 => &SHA512,
            _ => return None,
        },
        _ if oid == ECDSA_SHA1 => &SHA256,
        _ => return None,
    };
    Some(ring::digest::digest(hash, cert.as_ref()).as_ref().to_vec())
}

/// One DER element: its tag, its contents and what follows it.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes.iter().fold(0usize, |len, &b| (len << 8) | usize::from(b))
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The start-up error for a connection that failed over TLS, or `None` when TLS was
/// not the problem.
pub(super) fn open_error(e: &tokio_postgres::Error, server: &str, params: &TlsParams) -> Option<OpenError> {
    let server = server.to_string();
    let cause = std::error::Error::source(e)?;
    let Some(handshake) = cause.downcast_ref::<HandshakeError>() else {
        // tokio-postgres's words when the server answers the TLS request with no.
        return (cause.to_string() == "server does not support TLS")
            .then(|| OpenError::NoTls { server, mode: params.mode.name().to_string() });
    };
    let rustls_error = match handshake {
        HandshakeError::Io(io) => io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        HandshakeError::BadHostName(_) => None,
    };
    let reason = match rustls_error {
        Some(rustls::Error::InvalidCertificate(c)) => c.to_string(),
        _ => handshake.to_string(),
    }
    .replace('\n', " ");
    Some(match rustls_error {
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => OpenError::WrongHost { server, reason },
        Some(rustls::Error::InvalidCertificate(_)) => {
            let roots = match &params.root_cert {
                Some(RootCert::File(path)) => format!("sslrootcert {}", path.display()),
                Some(RootCert::System) | None => "the system's CA certificates".to_string(),
            };
            OpenError::Untrusted { server, roots, reason }
        }
        _ => OpenError::Tls { server, reason },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(mode: SslMode, root_cert: Option<RootCert>) -> TlsParams {
        TlsParams { mode, root_cert }
    }

    #[test]
    fn urls_lose_their_tls_parameters() {
        let (rest, p) = split("postgres://u:p@db/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=a")
            .expect("split");
        assert_eq!(rest, "postgres://u:p@db/x?application_name=a");
        assert_eq!(p, params(SslMode::VerifyFull, Some(RootCert::File("/etc/ca.pem".into()))));
        let (rest, p) = split("postgresql://db/x?sslrootcert=/ca.pem").expect("split");
        assert_eq!(rest, "postgresql://db/x");
        assert_eq!(p, params(SslMode::Prefer, Some(RootCert::File("/ca.pem".into()))));
        let (rest, p) = split("postgres://db/x").expect("split");
        assert_eq!((rest.as_str(), p), ("postgres://db/x", params(SslMode::Prefer, None)));
    }

    #[test]
    fn key_values_lose_their_tls_parameters() {
        let (rest, p) =
            split(r"host=db sslmode = 'verify-ca' password='a b\'c' sslrootcert=/my\ ca.pem dbname=x").expect("split");
        assert_eq!(rest, r"host=db  password='a b\'c'  dbname=x");
        assert_eq!(p, params(SslMode::VerifyCa, Some(RootCert::File("/my ca.pem".into()))));
        // Unreadable: left whole for tokio-postgres to refuse.
        let (rest, p) = split("host=db sslmode='require").expect("split");
        assert_eq!((rest.as_str(), p), ("host=db sslmode='require", params(SslMode::Prefer, None)));
    }

    #[test]
    fn bad_modes_and_weak_system_roots_are_refused() {
        let e = split("postgres://db/x?sslmode=verify").expect_err("refused");
        assert!(e.contains("verify-full"), "{e}");
        let e = split("postgres://db/x?sslmode=require&sslrootcert=system").expect_err("refused");
        assert!(e.contains("sslmode=verify-full"), "{e}");
        let (_, p) = split("postgres://db/x?sslrootcert=system").expect("split");
        assert_eq!(p, params(SslMode::VerifyFull, Some(RootCert::System)));
        assert!(split("postgres://db/x?sslrootcert=").is_err());
    }

    #[test]
    fn end_points_hash_by_the_signature() {
        // A minimal Certificate: SEQUENCE { SEQUENCE {}, SEQUENCE { OID ecdsa-with-SHA384 } }.
        let cert = [0x30, 0x0e, 0x30, 0x00, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
        let hash = server_end_point(&CertificateDer::from(&cert[..])).expect("hashed");
        assert_eq!(hash, ring::digest::digest(&ring::digest::SHA384, &cert).as_ref());
        // RSA-PSS names its hash elsewhere: no binding rather than a wrong one.
        let pss =
            [0x30, 0x0f, 0x30, 0x00, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
        assert_eq!(server_end_point(&CertificateDer::from(&pss[..])), None);
        assert_eq!(server_end_point(&CertificateDer::from(&[0x30, 0x85][..])), None);
    }
}
