//! The delivery checklist on submitted mail: runs the pure address checks on each relayed
//! recipient and the message checks after DATA, and applies `[check.policy]` — a finding
//! (a check that warns or fails) is refused with its fix, recorded as an event, or ignored.
//! `submitted` is the message step SMTP DATA and local programs share.
//!
//! Standards: the checks' own (see `checklist::address`, `checklist::message`).
//! Must not: do I/O or write reply text (the caller turns a refusal into `inbound::replies`).

use super::session::AcceptedRcpt;
use crate::checklist::{Check, CheckReport, Status};
use crate::config::{CheckConfig, CheckName, CheckPolicy};
use crate::store::Transport;

/// What the policy made of one report.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The first finding whose policy is `reject`.
    pub refuse: Option<Check>,
    /// Findings to record as events, one line each (`name: detail; fix`).
    pub notes: Vec<String>,
}

/// Applies the policy to every finding of `report`; checks not under policy are ignored.
pub fn apply(report: &CheckReport, config: &CheckConfig) -> Outcome {
    let mut out = Outcome::default();
    for check in &report.checks {
        let Some(name) = CheckName::parse(check.name) else { continue };
        if check.status < Status::Warn {
            continue;
        }
        match config.policy_for(name) {
            CheckPolicy::Off => {}
            CheckPolicy::Reject if out.refuse.is_none() => out.refuse = Some(check.clone()),
            CheckPolicy::Reject | CheckPolicy::Warn => out.notes.push(note(check)),
        }
    }
    out
}

/// A relayed recipient's address checks (syntax was enforced by the SMTP parser already).
pub fn recipient(address: &str, config: &CheckConfig) -> Outcome {
    if CheckName::ADDRESS.into_iter().all(|c| config.policy_for(c) == CheckPolicy::Off) {
        return Outcome::default();
    }
    let options = crate::checklist::address::Options { typo: true, roles: false };
    apply(&crate::checklist::address::check(address, &options), config)
}

/// The message checks, after DATA.
pub fn message(raw: &[u8], max_size: u64, config: &CheckConfig) -> Outcome {
    if CheckName::MESSAGE.into_iter().all(|c| config.policy_for(c) == CheckPolicy::Off) {
        return Outcome::default();
    }
    apply(&crate::checklist::message::check("message", raw, max_size), config)
}

/// The checklist on a message submitted for `rcpts` (SMTP after DATA, local programs): the
/// message checks when a recipient is relayed (Err: the check that refuses it), then the
/// findings to record as events: the message's (no recipient), then each recipient's.
pub fn submitted(
    raw: &[u8],
    max_size: u64,
    rcpts: &[AcceptedRcpt],
    config: &CheckConfig,
) -> Result<Vec<(Option<String>, String)>, Check> {
    let mut notes: Vec<(Option<String>, String)> = Vec::new();
    if rcpts.iter().any(|r| r.transport() == Transport::Remote) {
        let found = message(raw, max_size, config);
        if let Some(c) = found.refuse {
            return Err(c);
        }
        notes.extend(found.notes.into_iter().map(|n| (None, n)));
    }
    for r in rcpts {
        notes.extend(r.notes.iter().map(|n| (Some(r.address.clone()), n.clone())));
    }
    Ok(notes)
}

/// One line for an event or a reply: what was found and what to do.
pub fn note(check: &Check) -> String {
    let mut s = format!("{} {}", check.name, check.status.as_str());
    if let Some(d) = &check.detail {
        s.push_str(": ");
        s.push_str(d);
    }
    if let Some(f) = &check.fix {
        s.push_str("; fix: ");
        s.push_str(f);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(pairs: &[(CheckName, CheckPolicy)]) -> CheckConfig {
        let policy: BTreeMap<CheckName, CheckPolicy> = pairs.iter().copied().collect();
        CheckConfig { outbound_ips: Vec::new(), policy }
    }

    #[test]
    fn typo_is_noted_by_default_and_refused_when_asked() {
        let out = recipient("john@gmial.com", &config(&[]));
        assert!(out.refuse.is_none());
        assert!(out.notes.iter().any(|n| n.starts_with("typo warn") && n.contains("gmail.com")), "{:?}", out.notes);
        let out = recipient("john@gmial.com", &config(&[(CheckName::Typo, CheckPolicy::Reject)]));
        assert_eq!(out.refuse.map(|c| c.name), Some("typo"));
        let out = recipient("john@gmial.com", &config(&[(CheckName::Typo, CheckPolicy::Off)]));
        assert!(out.refuse.is_none() && out.notes.is_empty());
        assert!(recipient("john@gmail.com", &config(&[])).notes.is_empty());
    }

    #[test]
    fn message_without_required_headers_is_noted() {
        let out = message(b"Subject: x\r\n\r\nhi\r\n", 1 << 20, &config(&[]));
        assert!(out.notes.iter().any(|n| n.starts_with("headers")), "{:?}", out.notes);
        let out = message(b"Subject: x\r\n\r\nhi\r\n", 1 << 20, &config(&[(CheckName::Headers, CheckPolicy::Reject)]));
        assert_eq!(out.refuse.map(|c| c.name), Some("headers"));
    }
}
