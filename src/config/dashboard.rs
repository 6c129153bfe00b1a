//! `[dashboard]`: who may log in to the web dashboard (`admins`, mailbox logins).
//! Must not: authenticate anyone (http::dashboard does), or import a stage.

use serde::Deserialize;

use super::{ConfigError, emit, invalid};
use crate::smtp::address::Mailbox;

/// `[dashboard]`: the web dashboard on `listen.http` under `/dashboard`.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    /// Mailbox logins (`mailerd user add`) allowed in, normalised; empty: the dashboard is off.
    pub admins: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDashboard {
    admins: Vec<String>,
}

impl RawDashboard {
    pub(super) fn validate(self) -> Result<Dashboard, ConfigError> {
        let mut admins = Vec::new();
        for (i, a) in self.admins.iter().enumerate() {
            let m = Mailbox::parse(a.trim())
                .map_err(|e| invalid(format!("dashboard.admins[{i}]"), format!("`{a}`: {e}")))?;
            admins.push(m.key());
        }
        Ok(Dashboard { admins })
    }
}

impl Dashboard {
    pub(super) fn effective(&self) -> toml::Value {
        emit::table(vec![("admins", emit::list(self.admins.clone()))])
    }
}
