//! `[check]`: what `mailerd check` knows about the sending side (`outbound_ips`) and what the
//! daemon does with the findings of the checks it runs on submitted mail (`[check.policy]`).
//! Must not: run a check (checklist/ and inbound::checks do), or import a stage.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};

/// The checks run on every submitted message (relayed recipients and the message itself).
pub const SUBMISSION_CHECKS: &[&str] =
    &["typo", "literal", "size", "headers", "header_syntax", "line_length", "8bit", "text_alternative"];

/// What a check of submitted mail that warns or fails leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckPolicy {
    /// Refuse the recipient or the message, with the fix in the reply.
    Reject,
    /// Accept, and record the finding as an event of the message.
    Warn,
    /// Do not run the check.
    Off,
}

impl CheckPolicy {
    fn as_str(self) -> &'static str {
        match self {
            CheckPolicy::Reject => "reject",
            CheckPolicy::Warn => "warn",
            CheckPolicy::Off => "off",
        }
    }
}

/// `[check]`: what `mailerd check` needs to know about the sending side.
#[derive(Debug, Clone, Default)]
pub struct CheckConfig {
    /// The public IPs outgoing mail leaves from; `check domain` tests SPF and reverse DNS for
    /// them (default: none, those checks are skipped with a note).
    pub outbound_ips: Vec<std::net::IpAddr>,
    /// `[check.policy]`: what the daemon does when a check of submitted mail warns or fails
    /// (every name of [`SUBMISSION_CHECKS`]; default `warn`).
    pub policy: BTreeMap<String, CheckPolicy>,
}

impl CheckConfig {
    /// The policy for `check` (`warn` when not configured).
    pub fn policy_for(&self, check: &str) -> CheckPolicy {
        self.policy.get(check).copied().unwrap_or(CheckPolicy::Warn)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawCheck {
    outbound_ips: Vec<String>,
    policy: BTreeMap<String, String>,
}

impl RawCheck {
    pub(super) fn validate(self) -> Result<CheckConfig, ConfigError> {
        Ok(CheckConfig {
            outbound_ips: self
                .outbound_ips
                .iter()
                .map(|ip| ip.parse().map_err(|_| invalid("check.outbound_ips", format!("`{ip}` is not an IP address"))))
                .collect::<Result<_, _>>()?,
            policy: self
                .policy
                .iter()
                .map(|(name, value)| {
                    let key = format!("check.policy.{name}");
                    if !SUBMISSION_CHECKS.contains(&name.as_str()) {
                        return Err(invalid(&key, format!("no such check (one of {})", SUBMISSION_CHECKS.join(", "))));
                    }
                    let policy = match value.as_str() {
                        "reject" => CheckPolicy::Reject,
                        "warn" => CheckPolicy::Warn,
                        "off" => CheckPolicy::Off,
                        other => return Err(invalid(&key, format!("`{other}` is not reject, warn or off"))),
                    };
                    Ok((name.clone(), policy))
                })
                .collect::<Result<_, _>>()?,
        })
    }
}

impl CheckConfig {
    pub(super) fn effective(&self) -> toml::Value {
        let policy =
            SUBMISSION_CHECKS.iter().map(|c| (c.to_string(), emit::text(self.policy_for(c).as_str()))).collect();
        emit::table(vec![
            ("outbound_ips", emit::list(self.outbound_ips.iter().map(|ip| ip.to_string()).collect())),
            ("policy", toml::Value::Table(policy)),
        ])
    }
}
