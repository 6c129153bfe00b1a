//! Verified TLS for outbound delivery: the trusted roots (the system's, from
//! `rustls-native-certs`, plus `tls.ca_file`), the check of an MX host's certificate chain for
//! its name, and the HTTPS client configuration MTA-STS policies are fetched (and webhooks
//! posted) with.
//!
//! Standards: RFC 8461 §4.2 (the MX host's certificate must chain to a trusted root and be
//! valid for the MX host name, wildcards per RFC 6125), RFC 8460 §4.3 (the names of failures).
//! The SMTP handshake itself stays opportunistic (`client::opportunistic_tls`; the peer still
//! proves it holds the key of the certificate it shows); the chain and name are checked here,
//! before anything but the handshake has been sent.
//! Must not: connect anywhere or decide what a failure means for delivery.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};

use crate::tlspolicy::TlsResult;

/// The roots certificates are verified against, and what is built on them.
pub struct Trust {
    verifier: Arc<WebPkiServerVerifier>,
    https: tokio_rustls::TlsConnector,
}

impl Trust {
    /// The system's roots plus the PEM certificates of `ca_file`; an unreadable `ca_file` or
    /// one without certificates is an error (the operator asked for it).
    pub fn load(ca_file: Option<&Path>) -> Result<Trust, String> {
        Trust::load_all(&ca_file.map(|p| ("tls.ca_file", p)).into_iter().collect::<Vec<_>>())
    }

    /// The system's roots plus the PEM certificates of every `(config key, file)` of
    /// `ca_files` (e.g. `tls.ca_file` and a webhook's `tls_ca`), with the same errors as `load`.
    pub fn load_all(ca_files: &[(&str, &Path)]) -> Result<Trust, String> {
        let mut roots = RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        for &(key, path) in ca_files {
            let mut n = 0;
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| format!("{key} {}: {e}", path.display()))? {
                let cert = cert.map_err(|e| format!("{key} {}: {e}", path.display()))?;
                roots.add(cert).map_err(|e| format!("{key} {}: {e}", path.display()))?;
                n += 1;
            }
            if n == 0 {
                return Err(format!("{key} {}: no certificate in it", path.display()));
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("trusted roots: {e}"))?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_webpki_verifier(verifier.clone())
            .with_no_client_auth();
        Ok(Trust { verifier, https: tokio_rustls::TlsConnector::from(Arc::new(config)) })
    }

    /// The connector of verified HTTPS (MTA-STS policy fetches).
    pub fn https(&self) -> &tokio_rustls::TlsConnector {
        &self.https
    }

    /// Checks the certificates a server showed (end entity first) for the host name `host`.
    pub fn check(&self, host: &str, certs: &[CertificateDer<'static>]) -> Result<(), (TlsResult, String)> {
        let Some((end_entity, intermediates)) = certs.split_first() else {
            return Err((TlsResult::ValidationFailure, "the server showed no certificate".into()));
        };
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| (TlsResult::ValidationFailure, format!("`{host}` is not a host name: {e}")))?;
        self.verifier
            .verify_server_cert(end_entity, intermediates, &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| (failure_kind(&e), format!("certificate of {host}: {e}")))
    }
}

/// The RFC 8460 result type of a verification error.
pub fn failure_kind(e: &rustls::Error) -> TlsResult {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsResult::CertificateHostMismatch
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => TlsResult::CertificateExpired,
            CertificateError::UnknownIssuer | CertificateError::BadSignature | CertificateError::Revoked => {
                TlsResult::CertificateNotTrusted
            }
            _ => TlsResult::ValidationFailure,
        },
        _ => TlsResult::ValidationFailure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA and a certificate it signed for `names`, as (CA PEM, chain).
    fn issued(names: &[&str]) -> (String, Vec<CertificateDer<'static>>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        (ca_cert.pem(), vec![cert.der().clone()])
    }

    #[test]
    fn names_chains_and_the_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, chain) = issued(&["mx.a.test", "*.b.test"]);
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca).unwrap();
        let trust = Trust::load(Some(&ca_file)).unwrap();
        assert_eq!(trust.check("mx.a.test", &chain), Ok(()));
        assert_eq!(trust.check("mx1.b.test", &chain), Ok(()), "a wildcard certificate");
        assert_eq!(trust.check("mx.c.test", &chain).unwrap_err().0, TlsResult::CertificateHostMismatch);
        assert_eq!(trust.check("x.y.b.test", &chain).unwrap_err().0, TlsResult::CertificateHostMismatch);
        assert_eq!(trust.check("mx.a.test", &[]).unwrap_err().0, TlsResult::ValidationFailure);
        // Another CA's certificate is not trusted.
        let (_, stranger) = issued(&["mx.a.test"]);
        assert_eq!(trust.check("mx.a.test", &stranger).unwrap_err().0, TlsResult::CertificateNotTrusted);
        // Without the CA file the test CA is unknown.
        let system = Trust::load(None).unwrap();
        assert_eq!(system.check("mx.a.test", &chain).unwrap_err().0, TlsResult::CertificateNotTrusted);
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(Trust::load(Some(&empty)).is_err());
        assert!(Trust::load(Some(&dir.path().join("missing.pem"))).is_err());
    }
}
