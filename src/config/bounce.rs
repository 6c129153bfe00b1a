//! `[bounce]`: delay warnings, signed return paths, the suppression check at RCPT, how
//! bounces that come back are read, and the addresses complaint reports (ARF) arrive at.
//! Must not: write or read a bounce (bounce/ and feedback/ do), or import a stage.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};
use crate::smtp::address::{Domain, Mailbox};

#[derive(Debug, Clone)]
pub struct Bounce {
    /// Age of a still-deferred message at which the sender gets one delay warning.
    pub delay_warning: Duration,
    /// Domain of the signed return paths (`bounces+TOKEN@domain`); it must route back here.
    pub return_path_domain: String,
    /// Rewrite the envelope sender of outgoing mail to a signed return path.
    pub sign_return_path: bool,
    /// Refuse relayed recipients on the suppression list at RCPT (the list is kept either way).
    pub enforce_suppression: bool,
    /// Null-sender mail to a local mailbox is read as a possible bounce first: a genuine one
    /// is recorded (and not delivered), a forged one dropped, anything else delivered.
    pub read_null_sender: bool,
    /// Also deliver genuine bounces (already recorded) to the local mailbox they came to.
    pub keep_in_mailbox: bool,
    /// Check SPF, DKIM and DMARC of incoming bounces (needs DNS).
    pub check_authentication: bool,
    /// Addresses (mailbox keys) that mailbox providers' feedback loops send ARF complaint
    /// reports to (`abuse@`, `fbl@`); mail to them is read, never delivered.
    pub complaint_addresses: Vec<String>,
    /// The learned filter for mailer-daemon mail: None when `bounce.learner = false`.
    pub learner: Option<Learner>,
}

/// `bounce.learner*`: when the learned filter may turn an `unknown` verdict into
/// `likely_forged` / `likely_genuine`, and how big its model may grow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learner {
    /// Probability of forged at or above which it says `likely_forged` (and at or below
    /// 1 − it, `likely_genuine`); between 0.5 and 1, exclusive.
    pub threshold: f64,
    /// Bounces of each kind (forged, genuine) it must have learned before it says anything.
    pub min_trained: u64,
    /// Tokens the model keeps; beyond, the least useful are pruned.
    pub max_tokens: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawBounce {
    delay_warning: u64,
    return_path_domain: Option<String>,
    sign_return_path: bool,
    enforce_suppression: bool,
    read_null_sender: bool,
    keep_in_mailbox: bool,
    check_authentication: bool,
    complaint_addresses: Vec<String>,
    learner: bool,
    learner_threshold: f64,
    learner_min_trained: u64,
    learner_max_tokens: u64,
}

impl Default for RawBounce {
    fn default() -> Self {
        Self {
            delay_warning: 14_400,
            return_path_domain: None,
            sign_return_path: true,
            enforce_suppression: true,
            read_null_sender: true,
            keep_in_mailbox: false,
            check_authentication: true,
            complaint_addresses: Vec::new(),
            learner: true,
            learner_threshold: 0.99,
            learner_min_trained: 10,
            learner_max_tokens: 100_000,
        }
    }
}

impl RawBounce {
    /// `hostname` is the return-path domain when `bounce.return_path_domain` is not set.
    pub(super) fn validate(self, hostname: &str) -> Result<Bounce, ConfigError> {
        let mut complaint_addresses = Vec::new();
        for (i, a) in self.complaint_addresses.iter().enumerate() {
            let m = Mailbox::parse(a.trim())
                .map_err(|e| invalid(format!("bounce.complaint_addresses[{i}]"), format!("`{a}`: {e}")))?;
            complaint_addresses.push(m.key());
        }
        if !(self.learner_threshold > 0.5 && self.learner_threshold < 1.0) {
            return Err(invalid(
                "bounce.learner_threshold",
                format!("{} is not a probability between 0.5 and 1 (exclusive)", self.learner_threshold),
            ));
        }
        if self.learner_max_tokens < 1_000 {
            return Err(invalid(
                "bounce.learner_max_tokens",
                format!("{} is too small to learn anything; at least 1000", self.learner_max_tokens),
            ));
        }
        let learner = self.learner.then_some(Learner {
            threshold: self.learner_threshold,
            min_trained: self.learner_min_trained.max(1),
            max_tokens: self.learner_max_tokens,
        });
        Ok(Bounce {
            learner,
            complaint_addresses,
            delay_warning: Duration::from_secs(self.delay_warning),
            return_path_domain: match self.return_path_domain {
                Some(d) => Domain::parse(&d)
                    .map_err(|_| invalid("bounce.return_path_domain", format!("`{d}` is not a domain")))?
                    .as_str()
                    .to_string(),
                None => hostname.to_ascii_lowercase(),
            },
            sign_return_path: self.sign_return_path,
            enforce_suppression: self.enforce_suppression,
            read_null_sender: self.read_null_sender,
            keep_in_mailbox: self.keep_in_mailbox,
            check_authentication: self.check_authentication,
        })
    }
}

impl Bounce {
    pub(super) fn effective(&self) -> toml::Value {
        use toml::Value::Boolean;
        let b = self;
        emit::table(vec![
            ("delay_warning", emit::secs(b.delay_warning)),
            ("return_path_domain", emit::text(&b.return_path_domain)),
            ("sign_return_path", Boolean(b.sign_return_path)),
            ("enforce_suppression", Boolean(b.enforce_suppression)),
            ("read_null_sender", Boolean(b.read_null_sender)),
            ("keep_in_mailbox", Boolean(b.keep_in_mailbox)),
            ("check_authentication", Boolean(b.check_authentication)),
            ("complaint_addresses", emit::list(b.complaint_addresses.clone())),
            ("learner", Boolean(b.learner.is_some())),
            ("learner_threshold", toml::Value::Float(b.learner.map_or(0.99, |l| l.threshold))),
            ("learner_min_trained", emit::int(b.learner.map_or(10, |l| l.min_trained))),
            ("learner_max_tokens", emit::int(b.learner.map_or(100_000, |l| l.max_tokens))),
        ])
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn the_learner_is_on_by_default_and_its_keys_are_checked() {
        let c = Config::from_toml("").unwrap();
        let l = c.bounce.learner.expect("on by default");
        assert_eq!((l.threshold, l.min_trained, l.max_tokens), (0.99, 10, 100_000));
        let c = Config::from_toml("[bounce]\nlearner = false").unwrap();
        assert!(c.bounce.learner.is_none());
        let c = Config::from_toml("[bounce]\nlearner_threshold = 0.995\nlearner_max_tokens = 5000").unwrap();
        assert_eq!(c.bounce.learner.map(|l| (l.threshold, l.max_tokens)), Some((0.995, 5000)));
        for (text, key) in [
            ("[bounce]\nlearner_threshold = 1.0", "bounce.learner_threshold"),
            ("[bounce]\nlearner_threshold = 0.5", "bounce.learner_threshold"),
            ("[bounce]\nlearner_threshold = nan", "bounce.learner_threshold"),
            ("[bounce]\nlearner_max_tokens = 10", "bounce.learner_max_tokens"),
        ] {
            let e = Config::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
