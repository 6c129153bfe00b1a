//! `[dns]`: the name servers lookups use (empty: the system resolver).
//! Must not: resolve anything (dns.rs does), or import a stage.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDns {
    nameservers: Vec<String>,
}

impl RawDns {
    /// The name servers; a bare address means port 53.
    pub(super) fn validate(self) -> Result<Vec<SocketAddr>, ConfigError> {
        self.nameservers
            .iter()
            .map(|n| {
                n.parse::<SocketAddr>()
                    .or_else(|_| n.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| invalid("dns.nameservers", format!("`{n}` is not an address (e.g. 127.0.0.1:5353)")))
            })
            .collect()
    }
}

/// The `[dns]` table of the effective configuration.
pub(super) fn effective(nameservers: &[SocketAddr]) -> toml::Value {
    emit::table(vec![("nameservers", emit::list(nameservers.iter().map(|n| n.to_string()).collect()))])
}
