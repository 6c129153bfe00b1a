//! `[dashboard]`: who may log in to the web dashboard (`admins`, mailbox logins) and
//! whether they need a second factor (`require_2fa`).
//! Must not: authenticate anyone (http::dashboard does), or import a stage.

use serde::Deserialize;

use super::{ConfigError, emit, invalid};
use crate::smtp::address::Mailbox;

/// `[dashboard]`: the web dashboard on `listen.http` under `/dashboard`.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    /// Mailbox logins (`mailerd user add`) allowed in, normalised; empty: the dashboard is off.
    pub admins: Vec<String>,
    /// Admins must log in with a second factor (TOTP); one without is sent to enrol first.
    pub require_2fa: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDashboard {
    admins: Vec<String>,
    require_2fa: bool,
}

impl RawDashboard {
    pub(super) fn validate(self) -> Result<Dashboard, ConfigError> {
        let mut admins = Vec::new();
        for (i, a) in self.admins.iter().enumerate() {
            let m = Mailbox::parse(a.trim())
                .map_err(|e| invalid(format!("dashboard.admins[{i}]"), format!("`{a}`: {e}")))?;
            admins.push(m.key());
        }
        Ok(Dashboard { admins, require_2fa: self.require_2fa })
    }
}

impl Dashboard {
    pub(super) fn effective(&self) -> toml::Value {
        emit::table(vec![
            ("admins", emit::list(self.admins.clone())),
            ("require_2fa", toml::Value::Boolean(self.require_2fa)),
        ])
    }
}
