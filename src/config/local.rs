//! `[local]`: the domains whose mailboxes live here, the mailbox quota, the aliases, and the
//! transport of local mail (our own Maildirs, or LMTP to a mailbox server such as Dovecot).
//! Must not: look up or write a mailbox (local/ and the store do), or import a stage.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};
use crate::smtp::address::{Domain, Mailbox};

#[derive(Debug, Clone)]
pub struct Local {
    pub domains: Vec<Domain>,
    pub quota: u64,
    /// alias key (`local@domain`, normalised) → target mailbox.
    pub aliases: BTreeMap<String, Mailbox>,
    /// How local mail reaches its mailbox.
    pub transport: LocalTransport,
}

/// `local.transport`: where local recipients are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalTransport {
    /// Our own Maildirs under `data_dir/mail` (the default).
    Maildir,
    /// Handed to an LMTP server (RFC 2033) at `local.lmtp`.
    Lmtp(LmtpTarget),
}

/// `local.lmtp`: an LMTP server's socket, `unix:/run/dovecot/lmtp` or `127.0.0.1:24`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LmtpTarget {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl LmtpTarget {
    /// Parses `unix:<absolute path>` or `<ip>:<port>`.
    pub fn parse(text: &str) -> Result<LmtpTarget, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(format!("`{text}`: the socket path must be absolute"));
            }
            return Ok(LmtpTarget::Unix(path));
        }
        text.parse::<SocketAddr>()
            .map(LmtpTarget::Tcp)
            .map_err(|_| format!("`{text}` is neither `unix:/path` nor `ip:port`"))
    }
}

impl fmt::Display for LmtpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LmtpTarget::Unix(path) => write!(f, "unix:{}", path.display()),
            LmtpTarget::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLocal {
    domains: Vec<String>,
    quota: u64,
    aliases: BTreeMap<String, String>,
    transport: String,
    lmtp: Option<String>,
}

impl Default for RawLocal {
    fn default() -> Self {
        Self {
            domains: Vec::new(),
            quota: 1_073_741_824,
            aliases: BTreeMap::new(),
            transport: "maildir".into(),
            lmtp: None,
        }
    }
}

impl RawLocal {
    pub(super) fn validate(self) -> Result<Local, ConfigError> {
        let domains = self
            .domains
            .iter()
            .map(|d| Domain::parse(d).map_err(|_| invalid("local.domains", format!("`{d}` is not a domain"))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut aliases = BTreeMap::new();
        for (from, to) in &self.aliases {
            let key = format!("local.aliases.\"{from}\"");
            let alias = Mailbox::parse(from).map_err(|e| invalid(&key, format!("`{from}`: {e}")))?;
            if !domains.contains(alias.domain()) {
                return Err(invalid(&key, format!("`{from}` is not in a local domain")));
            }
            let target = Mailbox::parse(to).map_err(|e| invalid(&key, format!("target `{to}`: {e}")))?;
            aliases.insert(alias.key(), target);
        }
        let lmtp = match &self.lmtp {
            Some(text) => Some(LmtpTarget::parse(text).map_err(|e| invalid("local.lmtp", e))?),
            None => None,
        };
        let transport = match (self.transport.as_str(), lmtp) {
            ("maildir", _) => LocalTransport::Maildir,
            ("lmtp", Some(target)) => LocalTransport::Lmtp(target),
            ("lmtp", None) => return Err(invalid("local.lmtp", "local.transport = \"lmtp\" needs local.lmtp")),
            (other, _) => {
                return Err(invalid("local.transport", format!("`{other}` is not \"maildir\" or \"lmtp\"")));
            }
        };
        Ok(Local { domains, quota: self.quota, aliases, transport })
    }
}

impl Local {
    pub(super) fn effective(&self) -> toml::Value {
        let aliases = self.aliases.iter().map(|(k, v)| (k.clone(), toml::Value::String(v.to_string()))).collect();
        let mut pairs = vec![
            ("domains", emit::list(self.domains.iter().map(|d| d.as_str().to_string()).collect())),
            ("quota", emit::int(self.quota)),
            ("aliases", toml::Value::Table(aliases)),
        ];
        match &self.transport {
            LocalTransport::Maildir => pairs.push(("transport", emit::text("maildir"))),
            LocalTransport::Lmtp(target) => {
                pairs.push(("transport", emit::text("lmtp")));
                pairs.push(("lmtp", emit::text(&target.to_string())));
            }
        }
        emit::table(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn transport_and_lmtp_target() {
        let c = Config::from_toml("[local]\ndomains = [\"a.test\"]").unwrap();
        assert_eq!(c.local.transport, LocalTransport::Maildir);
        let c = Config::from_toml("[local]\ntransport = \"lmtp\"\nlmtp = \"127.0.0.1:24\"").unwrap();
        assert_eq!(c.local.transport, LocalTransport::Lmtp(LmtpTarget::Tcp("127.0.0.1:24".parse().unwrap())));
        let c = Config::from_toml("[local]\ntransport = \"lmtp\"\nlmtp = \"unix:/run/dovecot/lmtp\"").unwrap();
        let LocalTransport::Lmtp(target) = &c.local.transport else { panic!("lmtp") };
        assert_eq!(target.to_string(), "unix:/run/dovecot/lmtp");
        for bad in [
            "transport = \"lmtp\"",
            "transport = \"mbox\"",
            "transport = \"lmtp\"\nlmtp = \"unix:relative\"",
            "transport = \"lmtp\"\nlmtp = \"localhost:24\"",
        ] {
            assert!(Config::from_toml(&format!("[local]\n{bad}")).is_err(), "{bad}");
        }
    }
}
