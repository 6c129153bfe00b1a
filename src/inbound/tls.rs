//! STARTTLS server configuration: the configured certificate, or a self-signed one that is
//! created once in `<data_dir>/tls/` and reused across restarts.
//!
//! Standards: RFC 3207 (STARTTLS), RFC 8446/5246 (TLS 1.3/1.2 through rustls, aws-lc-rs provider).
//! Must not: log key material; private keys are written with mode 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;

/// Builds the acceptor, generating a self-signed certificate for `hostname` when none is set.
pub fn acceptor(config: &Config) -> Result<TlsAcceptor> {
    let (cert_path, key_path) = config.cert_paths();
    if config.tls.cert.is_none() && !cert_path.exists() {
        generate(&config.hostname, &cert_path, &key_path)?;
    }
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("reading {}", cert_path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key_path).with_context(|| format!("reading key {}", key_path.display()))?;
    let server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn generate(hostname: &str, cert_path: &Path, key_path: &Path) -> Result<()> {
    let names = vec![hostname.to_string(), "localhost".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).context("generating a self-signed certificate")?;
    if let Some(dir) = cert_path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut key = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(key_path)?;
    key.write_all(certified.signing_key.serialize_pem().as_bytes())?;
    key.sync_all()?;
    fs::write(cert_path, certified.cert.pem())?;
    tracing::info!(cert = %cert_path.display(), "created a self-signed TLS certificate for {hostname}");
    Ok(())
}
