//! TLS for the `PostgreSQL` connections (pool, `LISTEN` connection, `faro migrate`):
//! `sslmode` and `sslrootcert` from the connection URL as libpq means them, with rustls on the
//! `ring` provider.
//!
//! | `sslmode`          | encrypted                | certificate checked                        |
//! |--------------------|--------------------------|--------------------------------------------|
//! | `disable`          | never                    | –                                          |
//! | `prefer` (default) | if the server offers TLS | the chain, only if `sslrootcert=PATH`      |
//! | `require`          | always                   | the chain, only if `sslrootcert=PATH`      |
//! | `verify-ca`        | always                   | the chain                                  |
//! | `verify-full`      | always                   | the chain and the host name (or IP address) |
//!
//! As in libpq, a root certificate file turns `prefer`/`require` into a chain check; unlike
//! libpq, a failed check under `prefer` is an error rather than a retry in plain text.
//!
//! Roots: `sslrootcert=PATH` (PEM, one or more CA certificates) is the only trust anchor when
//! given. Without it, or with `sslrootcert=system` (which, as in libpq 16, needs
//! `verify-full` and makes it the default), the verifying modes trust the system's store
//! (`rustls-native-certs`: `/etc/ssl/certs`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`).
//! libpq's `~/.postgresql/root.crt` and the `PGSSLMODE` / `PGSSLROOTCERT` variables are not
//! read. Over a Unix socket TLS is never used, as in libpq.
//!
//! tokio-postgres itself knows only `disable`/`prefer`/`require`, so both parameters are taken
//! out of the URL here and the rest is handed to its parser.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How a connection uses TLS: the URL's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain text only.
    Disable,
    /// TLS when the server offers it, else plain text (the default).
    Prefer,
    /// TLS; the certificate is not checked unless `sslrootcert=PATH` is given.
    Require,
    /// TLS with the certificate chain checked, but not the host name.
    VerifyCa,
    /// TLS with the certificate chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, TlsConfigError> {
        match value {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            "allow" => Err(TlsConfigError::AllowUnsupported),
            other => Err(TlsConfigError::UnknownSslMode(other.to_owned())),
        }
    }

    /// The `sslmode` value, as in the URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the trusted CA certificates come from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RootCert {
    /// No `sslrootcert`: the system store for the verifying modes, nothing otherwise.
    Unset,
    /// `sslrootcert=system`.
    System,
    /// `sslrootcert=PATH`.
    File(PathBuf),
}

/// A TLS setting in the connection URL that faro cannot use. The messages never quote the URL
/// (it may hold a password), only the offending value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum TlsConfigError {
    #[error("unknown sslmode `{0}`: use disable, prefer, require, verify-ca or verify-full")]
    UnknownSslMode(String),
    #[error("sslmode `allow` is not supported: use prefer, require, verify-ca or verify-full")]
    AllowUnsupported,
    #[error("sslrootcert=system needs sslmode=verify-full, not `{0}`")]
    WeakModeWithSystemRoots(SslMode),
    #[error("sslrootcert is empty")]
    EmptyRootCert,
    #[error("the {0} parameter is not valid UTF-8 once percent-decoded")]
    NotUtf8(&'static str),
    #[error("malformed connection string: {0}")]
    Malformed(&'static str),
    #[error("sslrootcert `{path}`: {message}")]
    RootCertFile { path: PathBuf, message: String },
    #[error(
        "sslmode={0} needs trusted CA certificates: the system store has none ({1}); set sslrootcert=PATH"
    )]
    NoSystemRoots(SslMode, String),
    #[error("setting up TLS: {0}")]
    Rustls(String),
}

/// The connection string with `sslmode` and `sslrootcert` taken out, and what they said.
#[derive(Debug)]
pub(super) struct TlsSettings {
    /// The rest of the URL (or key=value string), for tokio-postgres.
    pub(super) rest: String,
    pub(super) mode: SslMode,
    root: RootCert,
}

impl TlsSettings {
    /// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL or a key=value string (the
    /// last occurrence wins, as with tokio-postgres's own parameters).
    pub(super) fn take_from(url: &str) -> Result<Self, TlsConfigError> {
        let (rest, mode, root) =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                take_from_url(url)?
            } else {
                take_from_keywords(url)?
            };
        let root = match root.as_deref() {
            None => RootCert::Unset,
            Some("") => return Err(TlsConfigError::EmptyRootCert),
            Some("system") => RootCert::System,
            Some(path) => RootCert::File(PathBuf::from(path)),
        };
        let mode = match (mode.as_deref().map(SslMode::parse).transpose()?, &root) {
            (None, RootCert::System) => SslMode::VerifyFull,
            (None, _) => SslMode::Prefer,
            (Some(mode), RootCert::System) if mode != SslMode::VerifyFull => {
                return Err(TlsConfigError::WeakModeWithSystemRoots(mode));
            }
            (Some(mode), _) => mode,
        };
        Ok(Self { rest, mode, root })
    }

    /// Sets tokio-postgres's own mode: `verify-*` must have TLS, like `require`.
    pub(super) fn apply(&self, config: &mut tokio_postgres::Config) {
        let mode = if only_unix_sockets(config) {
            tokio_postgres::config::SslMode::Disable
        } else {
            match self.mode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                    tokio_postgres::config::SslMode::Require
                }
            }
        };
        config.ssl_mode(mode);
    }

    /// The TLS connector for every connection made with these settings. Reads the root
    /// certificates now, once.
    pub(super) fn connector(&self) -> Result<MakeRustlsConnect, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
        let roots = || match &self.root {
            RootCert::File(path) => roots_from_file(path),
            RootCert::Unset | RootCert::System => system_roots(self.mode),
        };
        let check = match self.mode {
            SslMode::Disable => Check::Nothing,
            SslMode::Prefer | SslMode::Require => match &self.root {
                RootCert::File(path) => Check::Chain(roots_from_file(path)?),
                RootCert::Unset | RootCert::System => Check::Nothing,
            },
            SslMode::VerifyCa => Check::Chain(roots()?),
            SslMode::VerifyFull => Check::ChainAndName(roots()?),
        };
        let webpki = |roots: RootCertStore| {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsConfigError::Rustls(e.to_string()))
        };
        let mut config = match check {
            Check::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate {
                    provider: Arc::clone(&provider),
                }))
                .with_no_client_auth(),
            Check::Chain(roots) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki(roots)?)))
                .with_no_client_auth(),
            Check::ChainAndName(roots) => builder
                .with_webpki_verifier(webpki(roots)?)
                .with_no_client_auth(),
        };
        // What libpq 17 offers; servers that predate direct TLS negotiation ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(MakeRustlsConnect::new(config))
    }
}

/// What the connector checks of the server's certificate.
enum Check {
    Nothing,
    Chain(RootCertStore),
    ChainAndName(RootCertStore),
}

/// Whether every host is a Unix socket (where `PostgreSQL` never speaks TLS).
fn only_unix_sockets(config: &tokio_postgres::Config) -> bool {
    #[cfg(unix)]
    {
        let hosts = config.get_hosts();
        !hosts.is_empty()
            && config.get_hostaddrs().is_empty()
            && hosts
                .iter()
                .all(|h| matches!(h, tokio_postgres::config::Host::Unix(_)))
    }
    #[cfg(not(unix))]
    {
        let _ = config;
        false
    }
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, TlsConfigError> {
    let failure = |message: String| TlsConfigError::RootCertFile {
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| failure(pem_error(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failure(pem_error(&e)))?;
    if certs.is_empty() {
        return Err(failure("no PEM CERTIFICATE in the file".to_owned()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| failure(format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => format!("cannot read it: {io}"),
        other => format!("not a PEM file: {other:?}"),
    }
}

fn system_roots(mode: SslMode) -> Result<RootCertStore, TlsConfigError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = if found.errors.is_empty() {
            "no certificates found".to_owned()
        } else {
            found
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        return Err(TlsConfigError::NoSystemRoots(mode, why));
    }
    for e in &found.errors {
        tracing::debug!(error = %e, "skipped part of the system certificate store");
    }
    Ok(roots)
}

/// `prefer`/`require` without a root certificate: any certificate is accepted (as in libpq),
/// though the handshake signatures are still checked against it.
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca`: the full webpki check, except that a certificate issued for another host name
/// is accepted. (webpki checks the name only once the chain has verified.)
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.0.root_hint_subjects()
    }
}

/// A TLS failure behind a connection error, in words: `Some` when rustls refused the
/// handshake (a certificate that did not verify says so).
pub(super) fn describe_failure(e: &tokio_postgres::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        let tls = inner.downcast_ref::<rustls::Error>().or_else(|| {
            inner
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .and_then(|io| io.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return Some(match tls {
                rustls::Error::InvalidCertificate(_) => {
                    format!("the server's TLS certificate did not verify: {tls}")
                }
                other => format!("the TLS handshake with the server failed: {other}"),
            });
        }
        source = inner.source();
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Taking the parameters out

const SSLMODE: &str = "sslmode";
const SSLROOTCERT: &str = "sslrootcert";

type Taken = (String, Option<String>, Option<String>);

/// From a URL's query, as tokio-postgres reads it: the query starts at the first `?` after
/// the user info (which ends at the first `@`); parameters are `&`-separated, keys and values
/// percent-decoded.
fn take_from_url(url: &str) -> Result<Taken, TlsConfigError> {
    let after_userinfo = url.split_once("://").map_or(0, |(scheme, rest)| {
        scheme.len() + 3 + rest.find('@').map_or(0, |at| at + 1)
    });
    let Some(question) = url[after_userinfo..].find('?').map(|q| after_userinfo + q) else {
        return Ok((url.to_owned(), None, None));
    };
    let (head, query) = (&url[..question], &url[question + 1..]);
    let (mut mode, mut root) = (None, None);
    let mut kept = Vec::new();
    for segment in query.split('&') {
        let taken = match segment.split_once('=') {
            Some((key, value)) => {
                let key = decode(key, "query")?;
                if key == SSLMODE {
                    mode = Some(decode(value, SSLMODE)?);
                    true
                } else if key == SSLROOTCERT {
                    root = Some(decode(value, SSLROOTCERT)?);
                    true
                } else {
                    false
                }
            }
            None => false,
        };
        if !taken {
            kept.push(segment);
        }
    }
    let rest = if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    Ok((rest, mode, root))
}

fn decode(text: &str, what: &'static str) -> Result<String, TlsConfigError> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| TlsConfigError::NotUtf8(what))
}

/// From a libpq key=value string (`host=db sslmode='verify-full'`): values are bare words or
/// single-quoted, with backslash escapes. The others are written back quoted.
fn take_from_keywords(text: &str) -> Result<Taken, TlsConfigError> {
    let (mut mode, mut root) = (None, None);
    let mut kept = Vec::new();
    for (key, value) in keywords(text)? {
        match key {
            SSLMODE => mode = Some(value),
            SSLROOTCERT => root = Some(value),
            _ => kept.push(format!(
                "{key}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            )),
        }
    }
    Ok((kept.join(" "), mode, root))
}

fn keywords(text: &str) -> Result<Vec<(&str, String)>, TlsConfigError> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let key = &rest[..end];
        if key.is_empty() {
            return Err(TlsConfigError::Malformed("a parameter has no name"));
        }
        rest = rest[end..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or(TlsConfigError::Malformed("a parameter has no `=`"))?
            .trim_start();
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let quoted = rest.starts_with('\'');
        if quoted {
            chars.next();
        }
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '\'' if quoted => {
                    end = Some(i + 1);
                    break;
                }
                c if !quoted && c.is_whitespace() => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = match end {
            Some(end) => end,
            None if quoted => {
                return Err(TlsConfigError::Malformed(
                    "a quoted value is not terminated",
                ));
            }
            None => rest.len(),
        };
        if !quoted && value.is_empty() {
            return Err(TlsConfigError::Malformed("a parameter has no value"));
        }
        out.push((key, value));
        rest = rest[end..].trim_start();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn settings(url: &str) -> TlsSettings {
        TlsSettings::take_from(url).unwrap()
    }

    #[test]
    fn prefer_is_the_default_and_the_url_is_untouched_without_tls_parameters() {
        for url in [
            "postgres://faro:pw@db:5432/faro",
            "postgresql://db/faro?application_name=x",
            "host=db user=faro",
        ] {
            let s = settings(url);
            assert_eq!(s.mode, SslMode::Prefer, "{url}");
            assert_eq!(s.root, RootCert::Unset, "{url}");
        }
        assert_eq!(
            settings("postgres://faro:pw@db:5432/faro").rest,
            "postgres://faro:pw@db:5432/faro"
        );
        assert_eq!(
            settings("postgresql://db/faro?application_name=x").rest,
            "postgresql://db/faro?application_name=x"
        );
    }

    #[test]
    fn every_libpq_mode_is_taken_out_of_the_url() {
        for mode in [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            let url = format!(
                "postgres://u:p@db/faro?application_name=a&sslmode={mode}&connect_timeout=3"
            );
            let s = settings(&url);
            assert_eq!(s.mode, mode);
            assert_eq!(
                s.rest,
                "postgres://u:p@db/faro?application_name=a&connect_timeout=3"
            );
            // What is left parses, and keeps the other parameters.
            let config: tokio_postgres::Config = s.rest.parse().unwrap();
            assert_eq!(config.get_application_name(), Some("a"));
            assert_eq!(
                config.get_connect_timeout(),
                Some(&std::time::Duration::from_secs(3))
            );
        }
    }

    #[test]
    fn sslrootcert_is_percent_decoded_and_the_query_dropped_when_empty() {
        let s = settings(
            "postgres://u@db/faro?sslrootcert=%2Fetc%2Ffaro%2Fca%20x.crt&sslmode=verify-full",
        );
        assert_eq!(s.rest, "postgres://u@db/faro");
        assert_eq!(s.mode, SslMode::VerifyFull);
        assert_eq!(s.root, RootCert::File(PathBuf::from("/etc/faro/ca x.crt")));
        // The last occurrence wins; a percent-encoded key is still the key.
        let s = settings("postgres://db/x?sslmode=require&ssl%6Dode=disable");
        assert_eq!(s.mode, SslMode::Disable);
    }

    #[test]
    fn a_question_mark_in_the_password_does_not_start_the_query() {
        let s = settings("postgres://u:pa?ss@db/faro?sslmode=require");
        assert_eq!(s.rest, "postgres://u:pa?ss@db/faro");
        assert_eq!(s.mode, SslMode::Require);
        let config: tokio_postgres::Config = s.rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"pa?ss"[..]));
    }

    #[test]
    fn unknown_modes_are_named_and_the_password_is_not() {
        let e =
            TlsSettings::take_from("postgres://u:s3cret@db/faro?sslmode=verify_full").unwrap_err();
        assert_eq!(e, TlsConfigError::UnknownSslMode("verify_full".to_owned()));
        let text = e.to_string();
        assert!(text.contains("`verify_full`"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(
            TlsSettings::take_from("postgres://db/x?sslmode=allow").unwrap_err(),
            TlsConfigError::AllowUnsupported
        );
        assert_eq!(
            TlsSettings::take_from("postgres://db/x?sslmode=").unwrap_err(),
            TlsConfigError::UnknownSslMode(String::new())
        );
    }

    #[test]
    fn system_roots_mean_verify_full() {
        let s = settings("postgres://db/x?sslrootcert=system");
        assert_eq!((s.mode, s.root), (SslMode::VerifyFull, RootCert::System));
        assert_eq!(
            TlsSettings::take_from("postgres://db/x?sslrootcert=system&sslmode=verify-ca")
                .unwrap_err(),
            TlsConfigError::WeakModeWithSystemRoots(SslMode::VerifyCa)
        );
        assert_eq!(
            TlsSettings::take_from("postgres://db/x?sslrootcert=").unwrap_err(),
            TlsConfigError::EmptyRootCert
        );
    }

    #[test]
    fn keyword_strings_are_handled_like_urls() {
        let s = settings(
            r"host=db  user = faro password='it\'s' sslmode=verify-ca sslrootcert='/a b/c\'d.crt' dbname=x\ y",
        );
        assert_eq!(s.mode, SslMode::VerifyCa);
        assert_eq!(s.root, RootCert::File(PathBuf::from("/a b/c'd.crt")));
        // What is left means the same to tokio-postgres as the original minus the two.
        let ours: tokio_postgres::Config = s.rest.parse().unwrap();
        let original: tokio_postgres::Config = r"host=db  user = faro password='it\'s' dbname=x\ y"
            .parse()
            .unwrap();
        assert_eq!(format!("{ours:?}"), format!("{original:?}"));
        // (Debug hides the password.)
        assert_eq!(ours.get_password(), Some(&b"it's"[..]));
        assert_eq!(ours.get_dbname(), Some("x y"));
        assert!(TlsSettings::take_from("host=db sslmode").is_err());
        assert!(TlsSettings::take_from("host='db").is_err());
    }

    #[test]
    fn verify_modes_need_tls_from_tokio_postgres_but_unix_sockets_never_use_it() {
        let mut config: tokio_postgres::Config = "host=db".parse().unwrap();
        settings("host=db sslmode=verify-full").apply(&mut config);
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        let mut config: tokio_postgres::Config = "host=/run/postgresql".parse().unwrap();
        settings("host=/run/postgresql sslmode=require").apply(&mut config);
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
    }

    #[test]
    fn a_missing_or_empty_root_file_is_a_clear_error() {
        let s = settings("postgres://db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt");
        let Err(e) = s.connector() else {
            panic!("a missing root file was accepted")
        };
        let text = e.to_string();
        assert!(
            text.contains("/nonexistent/ca.crt") && text.contains("cannot read"),
            "{text}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.crt");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let s = settings(&format!(
            "postgres://db/x?sslmode=verify-ca&sslrootcert={}",
            path.display()
        ));
        let Err(e) = s.connector() else {
            panic!("a file without certificates was accepted")
        };
        assert!(e.to_string().contains("no PEM CERTIFICATE"), "{e}");
    }
}
