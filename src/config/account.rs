//! `[account]`: the hard-bounce and complaint-rate breakers per sending account (SMTP login,
//! API key): `BreakerConfig`, which `bounce::breaker` runs on; and the compromised-account
//! detector's thresholds (burst over the account's baseline, never-seen login networks):
//! `SuspectConfig`, which `suspect` runs on.
//! Must not: count or pause anything (bounce::breaker, suspect and the store do), or import a stage.

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

/// The compromised-account detector (`suspect`): per account, a burst over `burst_factor` ×
/// its baseline (the busiest hour of `baseline_window`) after `warmup`, or a login from a
/// network it never logged in from, pauses it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuspectConfig {
    /// An hour's messages (or distinct recipient domains) beyond this many times the
    /// baseline's trip the detector; 0 turns the burst check off.
    pub burst_factor: f64,
    /// How long an account is watched before bursts and new networks count (from its first
    /// message or login).
    pub warmup: Duration,
    /// The hours whose busiest one is the baseline.
    pub baseline_window: Duration,
    /// Messages per hour an account may always send, whatever its baseline.
    pub min_messages_per_hour: u64,
    /// Distinct recipient domains per hour an account may always reach.
    pub min_domains_per_hour: u64,
    /// A login (SMTP AUTH, API request) from a network never seen for the account pauses it.
    pub new_network: bool,
    /// Mail from a From domain never used by the account pauses it.
    pub new_from_domain: bool,
    /// The network of an IPv4 client: its address cut to this prefix length.
    pub network_prefix_v4: u8,
    /// The network of an IPv6 client.
    pub network_prefix_v6: u8,
}

impl SuspectConfig {
    /// Whether anything is watched at all.
    pub fn enabled(&self) -> bool {
        self.burst_factor > 0.0 || self.new_network || self.new_from_domain
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAccount {
    hard_bounce_threshold: f64,
    min_messages: u64,
    window: u64,
    complaint_threshold: f64,
    complaint_min_messages: u64,
    burst_factor: f64,
    warmup: u64,
    baseline_window: u64,
    burst_min_messages: u64,
    burst_min_domains: u64,
    new_network: bool,
    new_from_domain: bool,
    network_prefix_v4: u8,
    network_prefix_v6: u8,
}

impl Default for RawAccount {
    fn default() -> Self {
        RawAccount {
            hard_bounce_threshold: 0.10,
            min_messages: 100,
            window: 86_400,
            complaint_threshold: 0.003,
            complaint_min_messages: 1000,
            burst_factor: 10.0,
            warmup: 8 * 86_400,
            baseline_window: 8 * 86_400,
            burst_min_messages: 100,
            burst_min_domains: 20,
            new_network: true,
            new_from_domain: false,
            network_prefix_v4: 24,
            network_prefix_v6: 48,
        }
    }
}

impl RawAccount {
    pub(super) fn validate(self) -> Result<(BreakerConfig, SuspectConfig), ConfigError> {
        if !(0.0..=1.0).contains(&self.hard_bounce_threshold) {
            return Err(invalid("account.hard_bounce_threshold", "a rate between 0 (off) and 1, e.g. 0.10"));
        }
        if !(0.0..=1.0).contains(&self.complaint_threshold) {
            return Err(invalid("account.complaint_threshold", "a rate between 0 (off) and 1, e.g. 0.003"));
        }
        if self.window == 0 {
            return Err(invalid("account.window", "seconds, more than 0"));
        }
        if !self.burst_factor.is_finite() || !(self.burst_factor == 0.0 || self.burst_factor >= 1.0) {
            return Err(invalid("account.burst_factor", "0 (off) or a factor of at least 1, e.g. 10"));
        }
        if self.baseline_window < 3600 {
            return Err(invalid("account.baseline_window", "seconds, at least 3600 (one hour)"));
        }
        if self.network_prefix_v4 == 0 || self.network_prefix_v4 > 32 {
            return Err(invalid("account.network_prefix_v4", "a prefix length from 1 to 32, e.g. 24"));
        }
        if self.network_prefix_v6 == 0 || self.network_prefix_v6 > 128 {
            return Err(invalid("account.network_prefix_v6", "a prefix length from 1 to 128, e.g. 48"));
        }
        let breaker = BreakerConfig {
            threshold: self.hard_bounce_threshold,
            min_messages: self.min_messages,
            window: Duration::from_secs(self.window),
            complaint_threshold: self.complaint_threshold,
            complaint_min_messages: self.complaint_min_messages,
        };
        let suspect = SuspectConfig {
            burst_factor: self.burst_factor,
            warmup: Duration::from_secs(self.warmup),
            baseline_window: Duration::from_secs(self.baseline_window),
            min_messages_per_hour: self.burst_min_messages,
            min_domains_per_hour: self.burst_min_domains,
            new_network: self.new_network,
            new_from_domain: self.new_from_domain,
            network_prefix_v4: self.network_prefix_v4,
            network_prefix_v6: self.network_prefix_v6,
        };
        Ok((breaker, suspect))
    }
}

impl BreakerConfig {
    /// `[account]`: the breaker's keys and the detector's.
    pub(super) fn effective(&self, suspect: &SuspectConfig) -> toml::Value {
        emit::table(vec![
            ("hard_bounce_threshold", toml::Value::Float(self.threshold)),
            ("min_messages", emit::int(self.min_messages)),
            ("window", emit::secs(self.window)),
            ("complaint_threshold", toml::Value::Float(self.complaint_threshold)),
            ("complaint_min_messages", emit::int(self.complaint_min_messages)),
            ("burst_factor", toml::Value::Float(suspect.burst_factor)),
            ("warmup", emit::secs(suspect.warmup)),
            ("baseline_window", emit::secs(suspect.baseline_window)),
            ("burst_min_messages", emit::int(suspect.min_messages_per_hour)),
            ("burst_min_domains", emit::int(suspect.min_domains_per_hour)),
            ("new_network", toml::Value::Boolean(suspect.new_network)),
            ("new_from_domain", toml::Value::Boolean(suspect.new_from_domain)),
            ("network_prefix_v4", emit::int(u64::from(suspect.network_prefix_v4))),
            ("network_prefix_v6", emit::int(u64::from(suspect.network_prefix_v6))),
        ])
    }
}
