//! `[tls]`: the certificate and key of the listeners (both or neither; neither: a self-signed
//! certificate is made in `data_dir`), and `ca_file`, PEM certificates of private CAs trusted
//! besides the system's roots when a certificate is verified (MTA-STS policies and MX hosts).
//! Must not: read the files (inbound::tls does), or import a stage.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};

#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Extra trusted CA certificates (PEM).
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca_file: Option<PathBuf>,
}

impl RawTls {
    pub(super) fn validate(self) -> Result<Tls, ConfigError> {
        if self.cert.is_some() != self.key.is_some() {
            return Err(invalid("tls.cert", "tls.cert and tls.key must be set together"));
        }
        Ok(Tls { cert: self.cert, key: self.key, ca_file: self.ca_file })
    }
}

impl Tls {
    /// The `[tls]` table, when a file is set (none otherwise).
    pub(super) fn effective(&self) -> Option<toml::Value> {
        let mut keys = Vec::new();
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            keys.push(("cert", emit::path(cert)));
            keys.push(("key", emit::path(key)));
        }
        if let Some(ca) = &self.ca_file {
            keys.push(("ca_file", emit::path(ca)));
        }
        if keys.is_empty() { None } else { Some(emit::table(keys)) }
    }
}
