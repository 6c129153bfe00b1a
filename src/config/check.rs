//! `[check]`: what `mailerd check` knows about the sending side (`outbound_ips`) and what the
//! daemon does with the findings of the checks it runs on submitted mail (`[check.policy]`);
//! and `CheckName`, those checks' names: the one place their strings (in `[check.policy]`, in
//! the checklist's reports, in events and notes) are written and read.
//! Must not: run a check (checklist/ and inbound::checks do), or import a stage.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};

/// A check run on every submitted message (relayed recipients and the message itself), which
/// `[check.policy]` can turn into a refusal, a note or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckName {
    Typo,
    Literal,
    Size,
    Headers,
    HeaderSyntax,
    LineLength,
    EightBit,
    TextAlternative,
}

impl CheckName {
    /// Every check under policy, in the order `[check.policy]` lists them.
    pub const ALL: [CheckName; 8] = [
        CheckName::Typo,
        CheckName::Literal,
        CheckName::Size,
        CheckName::Headers,
        CheckName::HeaderSyntax,
        CheckName::LineLength,
        CheckName::EightBit,
        CheckName::TextAlternative,
    ];
    /// The checks of a relayed recipient's address (`checklist::address`).
    pub const ADDRESS: [CheckName; 2] = [CheckName::Typo, CheckName::Literal];
    /// The checks of a message after DATA (`checklist::message`).
    pub const MESSAGE: [CheckName; 6] = [
        CheckName::Size,
        CheckName::Headers,
        CheckName::HeaderSyntax,
        CheckName::LineLength,
        CheckName::EightBit,
        CheckName::TextAlternative,
    ];

    /// The name in configuration, reports, events and notes.
    pub const fn as_str(self) -> &'static str {
        match self {
            CheckName::Typo => "typo",
            CheckName::Literal => "literal",
            CheckName::Size => "size",
            CheckName::Headers => "headers",
            CheckName::HeaderSyntax => "header_syntax",
            CheckName::LineLength => "line_length",
            CheckName::EightBit => "8bit",
            CheckName::TextAlternative => "text_alternative",
        }
    }

    /// The check under policy named `name`; None for every other name (the checklist's
    /// checks that no policy governs, such as `syntax` or `dkim`).
    pub fn parse(name: &str) -> Option<CheckName> {
        CheckName::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl std::fmt::Display for CheckName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// (default `warn`).
    pub policy: BTreeMap<CheckName, CheckPolicy>,
}

impl CheckConfig {
    /// The policy for `check` (`warn` when not configured).
    pub fn policy_for(&self, check: CheckName) -> CheckPolicy {
        self.policy.get(&check).copied().unwrap_or(CheckPolicy::Warn)
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
                    let Some(check) = CheckName::parse(name) else {
                        let names: Vec<&str> = CheckName::ALL.iter().map(|c| c.as_str()).collect();
                        return Err(invalid(&key, format!("no such check (one of {})", names.join(", "))));
                    };
                    let policy = match value.as_str() {
                        "reject" => CheckPolicy::Reject,
                        "warn" => CheckPolicy::Warn,
                        "off" => CheckPolicy::Off,
                        other => return Err(invalid(&key, format!("`{other}` is not reject, warn or off"))),
                    };
                    Ok((check, policy))
                })
                .collect::<Result<_, _>>()?,
        })
    }
}

impl CheckConfig {
    pub(super) fn effective(&self) -> toml::Value {
        let policy =
            CheckName::ALL.iter().map(|c| (c.as_str().to_string(), emit::text(self.policy_for(*c).as_str()))).collect();
        emit::table(vec![
            ("outbound_ips", emit::list(self.outbound_ips.iter().map(|ip| ip.to_string()).collect())),
            ("policy", toml::Value::Table(policy)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_read_back() {
        for c in CheckName::ALL {
            assert_eq!(CheckName::parse(c.as_str()), Some(c));
        }
        let mut split = CheckName::ADDRESS.to_vec();
        split.extend(CheckName::MESSAGE);
        assert_eq!(split, CheckName::ALL, "address and message checks are all of them, once");
        assert_eq!(CheckName::parse("syntax"), None);
        assert_eq!(CheckName::EightBit.as_str(), "8bit");
    }
}
