//! TLS to the database: libpq's `sslmode` and `sslrootcert` in `database_url`, over rustls
//! (`tokio-postgres-rustls`).
//!
//! * `sslmode=disable`: never; `prefer` (the default): when the server offers it; `require`:
//!   always. Like libpq, these two do not check the certificate unless `sslrootcert` names a
//!   file of CA certificates, in which case they check it as `verify-ca` does.
//! * `verify-ca`: the server's chain must lead to a certificate of `sslrootcert` (a PEM file);
//!   `verify-full`: and the certificate must name the host of the URL. Without `sslrootcert`,
//!   or with `sslrootcert=system`, both check against the system's trust store, host name
//!   included.
//!
//! PostgreSQL speaks TLS over TCP only: on a Unix socket the server declines it, so `prefer`
//! goes on without and `require` fails.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct};
use rustls_platform_verifier::BuilderVerifierExt as _;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::DatabaseUrlError;
use crate::probe::AnyCertificate;

/// What `sslmode` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The TLS settings of a `database_url`, and the connector made of them.
#[derive(Clone)]
pub(super) struct Tls {
    mode: Mode,
    /// `sslrootcert`, unless `system` or absent.
    roots: Option<PathBuf>,
    pub(super) connector: MakeRustlsConnect,
}

impl Tls {
    /// Takes `sslmode` and `sslrootcert` out of the query of `text` (tokio-postgres knows only
    /// the first three modes, and no `sslrootcert`): the rest of the URL, and the settings.
    ///
    /// # Errors
    ///
    /// [`DatabaseUrlError::Tls`] for an unknown mode, or a root file that cannot be read or holds
    /// no certificate.
    pub(super) fn split(text: &str) -> Result<(String, Tls), DatabaseUrlError> {
        let (base, query) = text.split_once('?').unwrap_or((text, ""));
        let (mut mode, mut roots) = (Mode::Prefer, None);
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
            match key {
                "sslmode" => {
                    mode = match value.as_ref() {
                        "disable" => Mode::Disable,
                        "prefer" => Mode::Prefer,
                        "require" => Mode::Require,
                        "verify-ca" => Mode::VerifyCa,
                        "verify-full" => Mode::VerifyFull,
                        other => {
                            return Err(DatabaseUrlError::Tls {
                                reason: format!(
                                    "sslmode {other:?} is none of disable, prefer, require, \
                                     verify-ca, verify-full"
                                ),
                            });
                        }
                    };
                }
                "sslrootcert" => {
                    roots = (value != "system").then(|| PathBuf::from(value.as_ref()));
                }
                _ => rest.push(pair),
            }
        }
        let rest = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let connector = MakeRustlsConnect::new(client_config(mode, roots.as_ref())?);
        Ok((
            rest,
            Tls {
                mode,
                roots,
                connector,
            },
        ))
    }

    /// The mode tokio-postgres is given: whether it asks the server for TLS, and whether it goes
    /// on without.
    pub(super) fn ssl_mode(&self) -> SslMode {
        match self.mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }

    /// How the settings read in the shown URL: `?sslmode=verify-full` and the root file, or
    /// nothing for the default.
    pub(super) fn shown(&self) -> String {
        let mode = match self.mode {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        };
        match (&self.roots, self.mode) {
            (None, Mode::Prefer) => String::new(),
            (None, _) => format!("?sslmode={mode}"),
            (Some(roots), _) => format!("?sslmode={mode}&sslrootcert={}", roots.display()),
        }
    }
}

fn refused(reason: String) -> DatabaseUrlError {
    DatabaseUrlError::Tls { reason }
}

/// The rustls configuration of `mode` with the CA certificates of `roots` (the system's when
/// `None`).
fn client_config(
    mode: Mode,
    roots: Option<&PathBuf>,
) -> Result<rustls::ClientConfig, DatabaseUrlError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| refused(error.to_string()))?;
    let verifying = matches!(mode, Mode::VerifyCa | Mode::VerifyFull);
    let config = match roots {
        // Checked against the file's CA certificates.
        Some(path) => {
            let mut store = rustls::RootCertStore::empty();
            let read = CertificateDer::pem_file_iter(path)
                .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
                .map_err(|error| {
                    refused(format!(
                        "sslrootcert {} cannot be read: {error}",
                        path.display()
                    ))
                })?;
            if read.is_empty() {
                return Err(refused(format!(
                    "sslrootcert {} holds no PEM certificate",
                    path.display()
                )));
            }
            for certificate in read {
                store.add(certificate).map_err(|error| {
                    refused(format!(
                        "sslrootcert {}: not a usable CA certificate: {error}",
                        path.display()
                    ))
                })?;
            }
            let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
                .build()
                .map_err(|error| refused(error.to_string()))?;
            if mode == Mode::VerifyFull {
                builder.dangerous().with_custom_certificate_verifier(chain)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyName { chain }))
            }
        }
        None if verifying => builder
            .with_platform_verifier()
            .map_err(|error| refused(format!("no system trust store: {error}")))?,
        // prefer and require without a root file: encrypted, the certificate not checked (libpq's
        // behaviour; name a root file to have it checked).
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate::new(provider))),
    };
    Ok(config.with_no_client_auth())
}

/// `verify-ca`: the chain must lead to a trusted root; the name in the certificate may be any.
#[derive(Debug)]
struct AnyName {
    chain: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
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
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}
