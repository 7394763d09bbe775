//! TLS for Postgres, as libpq's `sslmode` asks for it, with rustls on its `ring` provider.
//!
//! tokio-postgres knows `sslmode=disable|prefer|require` and nothing of certificates: it hands
//! the handshake to a connector. Managed servers (RDS, Cloud SQL, Azure) ask for
//! `sslmode=require` or `verify-full` with the provider's CA in `sslrootcert`, so those two words
//! are taken out of the URL here and turned into a rustls configuration:
//!
//! - no `sslmode`: a plain connection, as before (libpq would try TLS first; `prefer` does that);
//! - `prefer`, `require`: encrypted, the certificate not checked (libpq's meaning); `require`
//!   with an `sslrootcert` checks the chain, as libpq does;
//! - `verify-ca`: the chain must lead to a trusted root; `verify-full`: and name the host.
//!
//! Trusted roots, as libpq takes them: the PEM file `sslrootcert`, `sslrootcert=system` for the
//! machine's store, and without it `~/.postgresql/root.crt`, which must then exist.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Socket;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// What the URL asked for: the mode (none when `sslmode` is absent) and the root certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Settings {
    pub mode: Option<Mode>,
    pub root_cert: Option<String>,
}

impl Settings {
    /// The mode tokio-postgres is given: it only decides whether TLS is tried or required.
    pub fn ssl_mode(&self) -> SslMode {
        match self.mode {
            None | Some(Mode::Disable) => SslMode::Disable,
            Some(Mode::Prefer) => SslMode::Prefer,
            Some(Mode::Require | Mode::VerifyCa | Mode::VerifyFull) => SslMode::Require,
        }
    }
}

/// Takes `sslmode` and `sslrootcert` out of a connection string (URL or `key=value` form), so
/// that tokio-postgres, which refuses `verify-full` and does not know `sslrootcert`, can parse
/// the rest.
pub(super) fn split(conn: &str) -> Result<(String, Settings), String> {
    let mut settings = Settings::default();
    let mut take = |key: &str, value: &str| -> Result<bool, String> {
        match key {
            "sslmode" => {
                settings.mode = Some(match value {
                    "disable" => Mode::Disable,
                    "allow" | "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => return Err(format!("sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full")),
                });
                Ok(true)
            }
            "sslrootcert" => {
                settings.root_cert = Some(value.to_string());
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    let rest = if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        match conn.split_once('?') {
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = url::form_urlencoded::parse(pair.as_bytes()).next().unwrap_or_default();
                    if !take(&k, &v)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => conn.to_string(),
        }
    } else {
        let mut kept = Vec::new();
        for word in conn.split_whitespace() {
            let taken = match word.split_once('=') {
                Some((k, v)) => take(k, v.trim_matches('\''))?,
                None => false,
            };
            if !taken {
                kept.push(word);
            }
        }
        kept.join(" ")
    };
    Ok((rest, settings))
}

/// The connector for these settings; `None` where no TLS is wanted (no `sslmode`, or `disable`).
pub(super) fn connector(settings: &Settings) -> Result<MakeRustls, String> {
    let Some(mode) = settings.mode.filter(|m| *m != Mode::Disable) else {
        return Ok(MakeRustls { config: None });
    };
    let provider = Arc::new(crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().map_err(|e| e.to_string())?;
    let checks_chain = matches!(mode, Mode::VerifyCa | Mode::VerifyFull) || settings.root_cert.is_some();
    let chain = if checks_chain {
        let roots = Arc::new(roots(settings.root_cert.as_deref())?);
        Some(WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build().map_err(|e| e.to_string())?)
    } else {
        None
    };
    let checks = Checks { chain, name: mode == Mode::VerifyFull, provider };
    let config = builder.dangerous().with_custom_certificate_verifier(Arc::new(checks)).with_no_client_auth();
    Ok(MakeRustls { config: Some(Arc::new(config)) })
}

fn roots(root_cert: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    let path = match root_cert {
        Some("system") => {
            store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            return Ok(store);
        }
        Some(path) => PathBuf::from(path),
        None => {
            let default = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql/root.crt")).filter(|p| p.exists());
            default.ok_or_else(|| {
                "no root certificate to check the server's against: name its CA with sslrootcert=/path/to/ca.pem in CONNECTION_URL \
                 (RDS: the region's certificate bundle), use the machine's with sslrootcert=system, or put it in ~/.postgresql/root.crt"
                    .to_string()
            })?
        }
    };
    let certs = CertificateDer::pem_file_iter(&path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the root certificates of sslrootcert {} ({e}); expected a PEM file", path.display()))?;
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("sslrootcert {} holds no certificate", path.display()));
    }
    Ok(store)
}

/// What is checked of the server's certificate: nothing (`prefer`, `require`: encrypted, any
/// certificate accepted), its chain (`verify-ca`), or its chain and name (`verify-full`). The
/// handshake's signatures are checked in every case, so the session is bound to the certificate
/// it showed.
#[derive(Debug)]
struct Checks {
    chain: Option<Arc<WebPkiServerVerifier>>,
    name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Checks {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(tokio_rustls::rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// tokio-postgres's side of the connector: one per connection attempt, for one host name.
#[derive(Clone)]
pub(super) struct MakeRustls {
    config: Option<Arc<ClientConfig>>,
}

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        // Without TLS no name is needed: a Unix socket's path (postgresql:///db?host=/var/run/...)
        // is no DNS name, and is no reason to fail a plain connection.
        let Some(config) = self.config.clone() else {
            return Ok(RustlsConnect(None));
        };
        let name = ServerName::try_from(domain.to_string()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TLS needs the server's host name, and {domain:?} is none ({e}): for a Unix socket, use sslmode=disable"),
            )
        })?;
        Ok(RustlsConnect(Some((config, name))))
    }
}

/// One TLS handshake: its configuration and the server's name (`None` without TLS).
pub(super) struct RustlsConnect(Option<(Arc<ClientConfig>, ServerName<'static>)>);

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            // Never without a configuration: tokio-postgres is then told sslmode=disable.
            let (config, name) = self.0.ok_or_else(|| io::Error::other("TLS is not configured"))?;
            let tls = tokio_rustls::TlsConnector::from(config).connect(name, stream).await?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

/// An established TLS session.
pub(super) struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl TlsStream for RustlsStream {
    /// None: SCRAM then authenticates without channel binding, as over a plain connection.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for RustlsStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_words_are_taken_out_of_urls_and_key_value_strings() {
        let (rest, s) = split("postgresql://u@h:5432/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem").unwrap();
        assert_eq!(rest, "postgresql://u@h:5432/db?application_name=x");
        assert_eq!(s, Settings { mode: Some(Mode::VerifyFull), root_cert: Some("/tmp/ca.pem".into()) });
        assert_eq!(s.ssl_mode(), SslMode::Require);

        let (rest, s) = split("postgresql://u@h/db?sslmode=require").unwrap();
        assert_eq!((rest.as_str(), s.mode), ("postgresql://u@h/db", Some(Mode::Require)));

        let (rest, s) = split("host=h user=u sslmode=verify-ca sslrootcert=/ca.pem").unwrap();
        assert_eq!(rest, "host=h user=u");
        assert_eq!(s, Settings { mode: Some(Mode::VerifyCa), root_cert: Some("/ca.pem".into()) });

        let (rest, s) = split("postgresql://u@h/db").unwrap();
        assert_eq!((rest.as_str(), s), ("postgresql://u@h/db", Settings::default()));
        assert!(split("postgresql://h/db?sslmode=sometimes").unwrap_err().contains("sslmode=sometimes"));
    }

    #[test]
    fn no_sslmode_means_no_tls() {
        assert_eq!(Settings::default().ssl_mode(), SslMode::Disable);
        assert!(connector(&Settings::default()).unwrap().config.is_none());
        let s = Settings { mode: Some(Mode::Require), root_cert: None };
        assert!(connector(&s).unwrap().config.is_some());
    }
}
