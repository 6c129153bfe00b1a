//! `[tls]`: the certificate and key of the listeners (both or neither; neither: a self-signed
//! certificate is made in `data_dir`).
//! Must not: read the files (inbound::tls does), or import a stage.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};

#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

impl RawTls {
    pub(super) fn validate(self) -> Result<Tls, ConfigError> {
        if self.cert.is_some() != self.key.is_some() {
            return Err(invalid("tls.cert", "tls.cert and tls.key must be set together"));
        }
        Ok(Tls { cert: self.cert, key: self.key })
    }
}

impl Tls {
    /// The `[tls]` table, when both files are set (none otherwise).
    pub(super) fn effective(&self) -> Option<toml::Value> {
        let (cert, key) = (self.cert.as_ref()?, self.key.as_ref()?);
        Some(emit::table(vec![("cert", emit::path(cert)), ("key", emit::path(key))]))
    }
}
