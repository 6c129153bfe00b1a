//! `[dns]`: the name servers lookups use (empty: the system resolver), and whether delivery
//! validates DNSSEC (`dnssec`, off by default; `trust_anchor`, a file of DNSKEY records, else
//! IANA's root keys), which DANE needs.
//! Must not: resolve anything (dns.rs does), or import a stage.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDns {
    nameservers: Vec<String>,
    dnssec: bool,
    trust_anchor: Option<PathBuf>,
}

/// DNSSEC validation of delivery's lookups (and so DANE, RFC 7672).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dnssec {
    pub on: bool,
    /// DNSKEY records trusted as anchors (zone-file lines); None: IANA's root keys.
    pub trust_anchor: Option<PathBuf>,
}

impl RawDns {
    /// The name servers (a bare address means port 53) and the DNSSEC setting.
    pub(super) fn validate(self) -> Result<(Vec<SocketAddr>, Dnssec), ConfigError> {
        if self.trust_anchor.is_some() && !self.dnssec {
            return Err(invalid("dns.trust_anchor", "dns.trust_anchor needs dns.dnssec = true"));
        }
        let dnssec = Dnssec { on: self.dnssec, trust_anchor: self.trust_anchor };
        let nameservers = self
            .nameservers
            .iter()
            .map(|n| {
                n.parse::<SocketAddr>()
                    .or_else(|_| n.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| invalid("dns.nameservers", format!("`{n}` is not an address (e.g. 127.0.0.1:5353)")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((nameservers, dnssec))
    }
}

/// The `[dns]` table of the effective configuration.
pub(super) fn effective(nameservers: &[SocketAddr], dnssec: &Dnssec) -> toml::Value {
    let mut keys = vec![
        ("nameservers", emit::list(nameservers.iter().map(|n| n.to_string()).collect())),
        ("dnssec", toml::Value::Boolean(dnssec.on)),
    ];
    if let Some(anchor) = &dnssec.trust_anchor {
        keys.push(("trust_anchor", emit::path(anchor)));
    }
    emit::table(keys)
}
