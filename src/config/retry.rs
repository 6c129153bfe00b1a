//! `[retry]`: the backoff of deferred recipients and how long they are tried.
//! Must not: compute a schedule (queue::retry does), or import a stage.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, emit, secs};

#[derive(Debug, Clone)]
pub struct Retry {
    pub first: Duration,
    pub max_interval: Duration,
    pub max_age: Duration,
    /// Mailbox full (x.2.2) is retried for this long only.
    pub mailbox_full_max_age: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawRetry {
    first: u64,
    max_interval: u64,
    max_age: u64,
    mailbox_full_max_age: u64,
}

impl Default for RawRetry {
    fn default() -> Self {
        Self { first: 300, max_interval: 14_400, max_age: 432_000, mailbox_full_max_age: 86_400 }
    }
}

impl RawRetry {
    pub(super) fn validate(self) -> Result<Retry, ConfigError> {
        Ok(Retry {
            first: secs("retry.first", self.first)?,
            max_interval: secs("retry.max_interval", self.max_interval)?,
            max_age: secs("retry.max_age", self.max_age)?,
            mailbox_full_max_age: secs("retry.mailbox_full_max_age", self.mailbox_full_max_age)?,
        })
    }
}

impl Retry {
    pub(super) fn effective(&self) -> toml::Value {
        use emit::secs;
        emit::table(vec![
            ("first", secs(self.first)),
            ("max_interval", secs(self.max_interval)),
            ("max_age", secs(self.max_age)),
            ("mailbox_full_max_age", secs(self.mailbox_full_max_age)),
        ])
    }
}
