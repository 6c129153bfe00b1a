//! `[account]`: the hard-bounce and complaint-rate breakers per sending account (SMTP login,
//! API key): `BreakerConfig`, which `bounce::breaker` runs on.
//! Must not: count or pause anything (bounce::breaker and the store do), or import a stage.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Hard-bounce rate that trips the breaker (0.10 = 10%); 0 disables it.
    pub threshold: f64,
    /// Recipients needed in the window before the rate counts.
    pub min_messages: u64,
    pub window: Duration,
    /// Complaint rate (complaints / recipients sent in the window) that trips the breaker
    /// (0.003 = 0.3%, the mailbox providers' limit); 0 disables it.
    pub complaint_threshold: f64,
    /// Recipients needed in the window before the complaint rate counts.
    pub complaint_min_messages: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAccount {
    hard_bounce_threshold: f64,
    min_messages: u64,
    window: u64,
    complaint_threshold: f64,
    complaint_min_messages: u64,
}

impl Default for RawAccount {
    fn default() -> Self {
        RawAccount {
            hard_bounce_threshold: 0.10,
            min_messages: 100,
            window: 86_400,
            complaint_threshold: 0.003,
            complaint_min_messages: 1000,
        }
    }
}

impl RawAccount {
    pub(super) fn validate(self) -> Result<BreakerConfig, ConfigError> {
        if !(0.0..=1.0).contains(&self.hard_bounce_threshold) {
            return Err(invalid("account.hard_bounce_threshold", "a rate between 0 (off) and 1, e.g. 0.10"));
        }
        if !(0.0..=1.0).contains(&self.complaint_threshold) {
            return Err(invalid("account.complaint_threshold", "a rate between 0 (off) and 1, e.g. 0.003"));
        }
        if self.window == 0 {
            return Err(invalid("account.window", "seconds, more than 0"));
        }
        Ok(BreakerConfig {
            threshold: self.hard_bounce_threshold,
            min_messages: self.min_messages,
            window: Duration::from_secs(self.window),
            complaint_threshold: self.complaint_threshold,
            complaint_min_messages: self.complaint_min_messages,
        })
    }
}

impl BreakerConfig {
    pub(super) fn effective(&self) -> toml::Value {
        emit::table(vec![
            ("hard_bounce_threshold", toml::Value::Float(self.threshold)),
            ("min_messages", emit::int(self.min_messages)),
            ("window", emit::secs(self.window)),
            ("complaint_threshold", toml::Value::Float(self.complaint_threshold)),
            ("complaint_min_messages", emit::int(self.complaint_min_messages)),
        ])
    }
}
