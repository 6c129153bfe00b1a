//! The delivery checklist: checks an address, a sending domain or a message before anything
//! is sent, and says for every problem what to do about it.
//!
//! `address::check` is pure (syntax, normalisation, typo, role accounts) so the daemon can run
//! it on every recipient; the DNS, store and network checks are async functions that take the
//! resolver, store or MX they need as arguments. Every check yields a `Check` value with a
//! `Status`; a `CheckReport` collects them for one subject.
//! Standards: see each submodule (RFC 5321/5322/6531/5890, 7208, 6376, 7489, 7505, 8461, 8460).
//! Must not: print, read configuration files, write the store, or panic on any input.

pub mod address;
pub mod config;
pub mod resolver;
pub mod domain;
pub mod message;
pub mod probe;
pub mod requirements;
pub mod sending;
pub mod typo;

use serde_json::{Map, Value, json};

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// Worth knowing, not a problem (role account, not signed…).
    Info,
    /// Could not be checked (SERVFAIL, timeout): not a sign the subject is bad.
    Unknown,
    /// Likely to cause trouble; sending still works.
    Warn,
    /// Will cause bounces or rejections: fix before sending.
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Info => "info",
            Status::Unknown => "unknown",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }

    /// The `ok` of DESIGN §3: false only for warnings and failures.
    pub fn is_ok(self) -> bool {
        matches!(self, Status::Ok | Status::Info | Status::Unknown)
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Stable machine name: `syntax`, `typo`, `domain`, `spf`, `dkim`…
    pub name: &'static str,
    pub status: Status,
    /// What was found, one line.
    pub detail: Option<String>,
    /// What to do about it, one line (set for warnings and failures).
    pub fix: Option<String>,
    /// A corrected value (the typo check's suggested address).
    pub suggestion: Option<String>,
}

impl Check {
    pub fn new(name: &'static str, status: Status) -> Check {
        Check { name, status, detail: None, fix: None, suggestion: None }
    }

    pub fn ok(name: &'static str) -> Check {
        Check::new(name, Status::Ok)
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Check {
        self.detail = Some(detail.into());
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    pub fn suggestion(mut self, suggestion: impl Into<String>) -> Check {
        self.suggestion = Some(suggestion.into());
        self
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("ok".into(), json!(self.status.is_ok()));
        m.insert("status".into(), json!(self.status.as_str()));
        if let Some(d) = &self.detail {
            m.insert("detail".into(), json!(d));
        }
        if let Some(s) = &self.suggestion {
            m.insert("suggestion".into(), json!(s));
        }
        if let Some(f) = &self.fix {
            m.insert("fix".into(), json!(f));
        }
        Value::Object(m)
    }
}

/// Every check run on one subject (an address, a domain, a message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// `address`, `domain` or `file`: the JSON key naming the subject.
    pub kind: &'static str,
    /// The subject as given.
    pub subject: String,
    /// The normalised address (address reports whose syntax is valid).
    pub normalized: Option<String>,
    pub checks: Vec<Check>,
}

impl CheckReport {
    pub fn new(kind: &'static str, subject: impl Into<String>) -> CheckReport {
        CheckReport { kind, subject: subject.into(), normalized: None, checks: Vec::new() }
    }

    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// The worst status of any check (Ok for an empty report).
    pub fn worst(&self) -> Status {
        self.checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok)
    }

    /// True when no check failed (warnings allowed): the CLI's exit code 0.
    pub fn passed(&self) -> bool {
        self.worst() < Status::Fail
    }

    /// True when every check is ok or information: DESIGN §3's top-level `ok`.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.status.is_ok())
    }

    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// One JSON document (DESIGN §3): `{"address": …, "ok": …, "checks": [...]}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(self.kind.into(), json!(self.subject));
        if let Some(n) = &self.normalized {
            m.insert("normalized".into(), json!(n));
        }
        m.insert("ok".into(), json!(self.ok()));
        m.insert("status".into(), json!(self.worst().as_str()));
        m.insert("checks".into(), Value::Array(self.checks.iter().map(Check::to_json).collect()));
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_follows_design() {
        let mut r = CheckReport::new("address", "john@gmial.com");
        r.push(Check::ok("syntax"));
        r.push(Check::new("typo", Status::Warn).suggestion("john@gmail.com").fix("did you mean john@gmail.com?"));
        let v = r.to_json();
        assert_eq!(v["address"], "john@gmial.com");
        assert_eq!(v["ok"], false);
        assert_eq!(v["checks"][0], json!({"name": "syntax", "ok": true, "status": "ok"}));
        assert_eq!(v["checks"][1]["suggestion"], "john@gmail.com");
        assert!(r.passed(), "warnings do not fail");
        r.push(Check::new("domain", Status::Fail));
        assert!(!r.passed());
    }
}
