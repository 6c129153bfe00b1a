//! `[local]`: the domains whose mailboxes live here, the mailbox quota and the aliases.
//! Must not: look up or write a mailbox (local/ and the store do), or import a stage.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};
use crate::smtp::address::{Domain, Mailbox};

#[derive(Debug, Clone)]
pub struct Local {
    pub domains: Vec<Domain>,
    pub quota: u64,
    /// alias key (`local@domain`, normalised) → target mailbox.
    pub aliases: BTreeMap<String, Mailbox>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLocal {
    domains: Vec<String>,
    quota: u64,
    aliases: BTreeMap<String, String>,
}

impl Default for RawLocal {
    fn default() -> Self {
        Self { domains: Vec::new(), quota: 1_073_741_824, aliases: BTreeMap::new() }
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
        Ok(Local { domains, quota: self.quota, aliases })
    }
}

impl Local {
    pub(super) fn effective(&self) -> toml::Value {
        let aliases = self.aliases.iter().map(|(k, v)| (k.clone(), toml::Value::String(v.to_string()))).collect();
        emit::table(vec![
            ("domains", emit::list(self.domains.iter().map(|d| d.as_str().to_string()).collect())),
            ("quota", emit::int(self.quota)),
            ("aliases", toml::Value::Table(aliases)),
        ])
    }
}
