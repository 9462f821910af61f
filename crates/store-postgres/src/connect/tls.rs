//! TLS to PostgreSQL: rustls with the ring provider, chosen here rather
//! than installed process-wide, and how much of the server's certificate
//! each `sslmode` checks.
//!
//! | `sslmode`        | TLS                          | certificate checked                                      |
//! |------------------|------------------------------|----------------------------------------------------------|
//! | `disable`        | never                        | -                                                        |
//! | `prefer` (default) | if the server offers it    | not at all; with `sslrootcert`, as under `verify-full`   |
//! | `require`        | always                       | as under `verify-full` (libpq checks nothing here)       |
//! | `verify-ca`      | always                       | signed by a root in `sslrootcert` (a file; required)     |
//! | `verify-full`    | always                       | signed by a root, and issued for the host name           |
//!
//! The roots are the platform's, or the PEM file `sslrootcert` names
//! (`sslrootcert=system` names the platform's, as in libpq 16). The
//! reasons are in `docs/adr/0008-postgres-tls.md`.

use std::sync::Arc;

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        verify_server_cert_signed_by_trust_anchor,
    },
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
    server::ParsedCertificate,
};

use super::Error;

/// How connections use TLS: the URL's `sslmode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SslMode {
    /// Never: plain connections only.
    Disable,
    /// TLS if the server offers it, plain otherwise. The certificate is not
    /// checked (as in libpq: an attacker who can change the traffic could
    /// as well refuse TLS), unless `sslrootcert` is given. A failed
    /// handshake is an error, not a reason to fall back to plain.
    #[default]
    Prefer,
    /// TLS or no connection, the certificate checked as under
    /// [`SslMode::VerifyFull`]. libpq checks nothing here; Palaver does,
    /// so that `require`, which most URLs say, means what it seems to.
    Require,
    /// TLS, the certificate signed by a root in the `sslrootcert` file
    /// (which is then required); its host name not checked.
    VerifyCa,
    /// TLS, the certificate signed by a root (the platform's, or
    /// `sslrootcert`'s) and issued for the host connected to.
    VerifyFull,
}

impl SslMode {
    /// The value as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres is told: whether to ask for TLS and whether
    /// to insist; the checks are the rustls config's.
    pub(super) fn driver_mode(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }

    /// What a connection error says was being done: the mode tells a TLS
    /// refusal from a network one at a glance.
    pub(super) fn connecting(self) -> &'static str {
        match self {
            SslMode::Disable => "connecting to PostgreSQL (sslmode=disable)",
            SslMode::Prefer => "connecting to PostgreSQL (sslmode=prefer)",
            SslMode::Require => "connecting to PostgreSQL (sslmode=require)",
            SslMode::VerifyCa => "connecting to PostgreSQL (sslmode=verify-ca)",
            SslMode::VerifyFull => "connecting to PostgreSQL (sslmode=verify-full)",
        }
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SslMode {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            // libpq's `allow` tries plain first, which tokio-postgres cannot.
            other => Err(format!(
                "sslmode={other:?} is not supported: use disable, prefer, require, verify-ca or verify-full"
            )),
        }
    }
}

/// The `sslrootcert` value that names the platform's roots (libpq 16).
const SYSTEM_ROOTS: &str = "system";

/// The rustls config for `mode`, with the roots `root_cert` names (none:
/// the platform's, when a mode needs roots). Reads the roots now, so a bad
/// setting is reported when the store opens, not at the first connection.
pub(super) fn client_config(mode: SslMode, root_cert: Option<&str>) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, root_cert) {
        // Under `disable` tokio-postgres never starts a handshake: the
        // config is only there to have a type.
        (SslMode::Disable, _) | (SslMode::Prefer, None) => Arc::new(PartialCheck {
            roots: None,
            provider: Arc::clone(&provider),
        }),
        (SslMode::VerifyCa, None | Some(SYSTEM_ROOTS)) => {
            return Err(Error::Tls(
                "sslmode=verify-ca needs sslrootcert=<file> with the roots to trust: against the \
                 platform's roots, any certificate a public authority issued, for any host, would pass"
                    .to_owned(),
            ));
        }
        (SslMode::Prefer | SslMode::Require | SslMode::VerifyFull, None | Some(SYSTEM_ROOTS)) => Arc::new(
            rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
                .map_err(|e| Error::Tls(format!("the platform's root certificates: {e}")))?,
        ),
        (SslMode::VerifyCa, Some(path)) => Arc::new(PartialCheck {
            roots: Some(Arc::new(read_roots(path)?)),
            provider: Arc::clone(&provider),
        }),
        (SslMode::Prefer | SslMode::Require | SslMode::VerifyFull, Some(path)) => {
            WebPkiServerVerifier::builder_with_provider(Arc::new(read_roots(path)?), Arc::clone(&provider))
                .build()
                .map_err(|e| Error::Tls(format!("sslrootcert {path}: {e}")))?
        }
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .dangerous() // Dangerous only where the mode says so: see `PartialCheck`.
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // What libpq 17 sends: required by servers that take TLS directly
    // (`sslnegotiation=direct`), ignored by older ones.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// The certificates of the PEM file at `path`.
fn read_roots(path: &str) -> Result<RootCertStore, Error> {
    let pem = std::fs::read(path).map_err(|e| Error::Tls(format!("reading sslrootcert {path}: {e}")))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| Error::Tls(format!("sslrootcert {path}: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| Error::Tls(format!("sslrootcert {path}: {e}")))?;
    }
    if roots.is_empty() {
        return Err(Error::Tls(format!(
            "sslrootcert {path} holds no certificate (PEM expected)"
        )));
    }
    Ok(roots)
}

/// Checks less of the certificate than a full verification does, where
/// the mode asks for less: nothing (`prefer` without roots), or the chain
/// to a root but not the host name (`verify-ca`). The handshake's
/// signatures are always checked, so the session is at least bound to the
/// certificate's key.
#[derive(Debug)]
struct PartialCheck {
    /// The roots the chain must lead to; `None`: no chain check.
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PartialCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            verify_server_cert_signed_by_trust_anchor(
                &ParsedCertificate::try_from(end_entity)?,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
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
        verify_tls13_signature(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_libpq_writes_them() {
        for mode in [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert_eq!(mode.as_str().parse::<SslMode>(), Ok(mode));
            assert!(mode.connecting().contains(mode.as_str()));
        }
        assert_eq!(SslMode::default(), SslMode::Prefer);
        for bad in ["allow", "Require", "on", ""] {
            let error = bad.parse::<SslMode>().unwrap_err();
            assert!(error.contains("sslmode"), "{error}");
        }
    }

    #[test]
    fn root_files_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("palaver-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let path = empty.to_str().unwrap();
        match client_config(SslMode::VerifyFull, Some(path)) {
            Err(Error::Tls(reason)) => assert!(reason.contains("holds no certificate"), "{reason}"),
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
