//! `relay.sender_login_match` and `[[senders]]`: which senders an SMTP login may use besides
//! its own address — `Senders` and `Grant`, the values `inbound::senders` decides with (it
//! adds the ownership methods: `Senders::owns`, `may_send_as`, `header_mismatch`).
//! Must not: decide whether a sender is owned (inbound::senders does), or import a stage.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, invalid};
use crate::smtp::address::{AddressError, Domain, Mailbox};

/// What a `[[senders]]` entry lets a login use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// This address (compared by mailbox key).
    Address(Mailbox),
    /// Any address at this domain or one of its subdomains.
    Domain(Domain),
}

impl Grant {
    /// `local@domain` is an address; anything without `@` must be a domain.
    pub fn parse(text: &str) -> Result<Grant, AddressError> {
        let text = text.trim();
        if text.contains('@') {
            Mailbox::parse(text).map(Grant::Address)
        } else {
            Domain::parse(text).map(Grant::Domain)
        }
    }
}

/// `relay.sender_login_match` and `[[senders]]`.
#[derive(Debug, Clone)]
pub struct Senders {
    /// false: an authenticated user may use any sender (the behaviour before this check).
    pub login_match: bool,
    /// Extra addresses and domains, by login (its mailbox key, as `Authenticator` returns it).
    pub grants: BTreeMap<String, Vec<Grant>>,
}

impl Default for Senders {
    fn default() -> Self {
        Senders { login_match: true, grants: BTreeMap::new() }
    }
}

impl Senders {
    /// The `[[senders]]` entries of the effective configuration: one per login, in login order.
    pub(super) fn effective(&self) -> toml::Value {
        let entries = self.grants.iter().map(|(login, grants)| {
            let addresses = grants
                .iter()
                .map(|g| match g {
                    Grant::Address(m) => m.to_string(),
                    Grant::Domain(d) => d.as_str().to_string(),
                })
                .collect();
            super::emit::table(vec![("login", super::emit::text(login)), ("addresses", super::emit::list(addresses))])
        });
        toml::Value::Array(entries.collect())
    }
}

/// One `[[senders]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSenders {
    login: String,
    #[serde(default)]
    addresses: Vec<String>,
}

/// The senders of logins; entries of one login are merged.
pub(super) fn validate(login_match: bool, raw: &[RawSenders]) -> Result<Senders, ConfigError> {
    let mut senders = Senders { login_match, ..Default::default() };
    for (i, entry) in raw.iter().enumerate() {
        let login = Mailbox::parse(entry.login.trim())
            .map_err(|e| invalid(format!("senders[{i}].login"), format!("`{}`: {e}", entry.login)))?;
        if entry.addresses.is_empty() {
            return Err(invalid(format!("senders[{i}].addresses"), "list at least one address or domain"));
        }
        let grants = senders.grants.entry(login.key()).or_default();
        for (j, a) in entry.addresses.iter().enumerate() {
            let grant = Grant::parse(a).map_err(|e| {
                invalid(format!("senders[{i}].addresses[{j}]"), format!("`{a}`: {e} (an address or a domain)"))
            })?;
            grants.push(grant);
        }
    }
    Ok(senders)
}
