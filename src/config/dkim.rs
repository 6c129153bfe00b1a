//! `[dkim]`: the domain, selector and key file outgoing mail is signed with (all three, or
//! none: no signing).
//! Must not: read the key or sign (dkim.rs does), or import a stage.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};
use crate::smtp::address::Domain;

#[derive(Debug, Clone)]
pub struct Dkim {
    pub domain: String,
    pub selector: String,
    pub key: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDkim {
    domain: Option<String>,
    selector: Option<String>,
    key: Option<PathBuf>,
}

impl RawDkim {
    pub(super) fn validate(self) -> Result<Option<Dkim>, ConfigError> {
        match (self.domain, self.selector, self.key) {
            (None, None, None) => Ok(None),
            (Some(domain), Some(selector), Some(key)) => {
                let d = Domain::parse(&domain)
                    .map_err(|_| invalid("dkim.domain", format!("`{domain}` is not a domain")))?;
                if selector.is_empty() || !selector.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                {
                    return Err(invalid("dkim.selector", format!("`{selector}` is not a selector")));
                }
                Ok(Some(Dkim { domain: d.as_str().to_string(), selector, key }))
            }
            _ => Err(invalid("dkim", "set domain, selector and key together (mailerd dkim keygen makes a key)")),
        }
    }
}

impl Dkim {
    pub(super) fn effective(&self) -> toml::Value {
        emit::table(vec![
            ("domain", emit::text(&self.domain)),
            ("selector", emit::text(&self.selector)),
            ("key", emit::path(&self.key)),
        ])
    }
}
