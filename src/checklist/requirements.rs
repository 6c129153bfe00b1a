//! The mailbox providers' sender requirements as one table: what Gmail and Yahoo (since
//! February 2024) and Outlook (since May 2025) ask of senders, each rule resting on the
//! `check domain` checks that decide it. `assess` reads a domain report against the table; the
//! CLI prints the result, `--json` adds it as `requirements`, and the dashboard's readiness page
//! shows it with the link to each rule.
//!
//! A rule is met when none of its checks failed — and, where the rule is strict about it, none
//! warned (an SPF softfail for our IP is not "authenticated"; DMARC `p=none` is enough).
//! Checks that could not run, or were not configured (`info` for a rule that is not advice),
//! leave the rule unknown: never met by default, never failed for lack of data.
//! Must not: run checks itself, or hold advice text the checks already give (the fix shown is
//! the deciding check's).

use serde_json::{Value, json};

use super::{Check, CheckReport, Status};

/// Who a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every sender to these providers.
    All,
    /// Bulk senders (Gmail and Yahoo: about 5,000 messages a day to their users).
    Bulk,
    /// Not required; recommended (missing it is never a failure).
    Advice,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::All => "all",
            Audience::Bulk => "bulk",
            Audience::Advice => "advice",
        }
    }
}

/// Whether a warning of a check still meets the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnWarn {
    Met,
    NotMet,
}

#[derive(Debug)]
pub struct Requirement {
    /// Stable machine name.
    pub id: &'static str,
    /// The rule, one line.
    pub rule: &'static str,
    pub audience: Audience,
    pub providers: &'static [&'static str],
    /// The checks that decide it.
    pub checks: &'static [(&'static str, OnWarn)],
    /// Where the rule (and how to meet it) is documented.
    pub link: &'static str,
}

const GMAIL_RULES: &str = "https://support.google.com/a/answer/81126";
const ALL_THREE: &[&str] = &["gmail", "yahoo", "outlook"];
const GMAIL_YAHOO: &[&str] = &["gmail", "yahoo"];

/// The rules, in the order the providers' pages give them.
pub const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        id: "spf",
        rule: "SPF authorises the IPs you send from",
        audience: Audience::Bulk,
        providers: ALL_THREE,
        checks: &[("spf", OnWarn::Met), ("spf_lookups", OnWarn::NotMet), ("spf_ip", OnWarn::NotMet)],
        link: "https://www.rfc-editor.org/rfc/rfc7208",
    },
    Requirement {
        id: "dkim",
        rule: "Mail is DKIM-signed with a key published in DNS",
        audience: Audience::Bulk,
        providers: ALL_THREE,
        checks: &[("dkim", OnWarn::NotMet)],
        link: "https://www.rfc-editor.org/rfc/rfc6376",
    },
    Requirement {
        id: "dmarc",
        rule: "A DMARC policy is published (p=none at least)",
        audience: Audience::Bulk,
        providers: ALL_THREE,
        checks: &[("dmarc", OnWarn::Met)],
        link: "https://www.rfc-editor.org/rfc/rfc7489",
    },
    Requirement {
        id: "alignment",
        rule: "The From domain aligns with the SPF or the DKIM domain",
        audience: Audience::Bulk,
        providers: ALL_THREE,
        checks: &[("dmarc_alignment", OnWarn::Met)],
        link: "https://www.rfc-editor.org/rfc/rfc7489#section-3.1",
    },
    Requirement {
        id: "fcrdns",
        rule: "Each sending IP has forward-confirmed reverse DNS",
        audience: Audience::All,
        providers: GMAIL_YAHOO,
        checks: &[("rdns", OnWarn::Met)],
        link: GMAIL_RULES,
    },
    Requirement {
        id: "tls",
        rule: "Mail is transmitted over TLS",
        audience: Audience::All,
        providers: GMAIL_YAHOO,
        checks: &[("tls_outbound", OnWarn::NotMet), ("tls_listener", OnWarn::Met)],
        link: GMAIL_RULES,
    },
    Requirement {
        id: "mx",
        rule: "The sending domain receives mail (replies and bounces arrive)",
        audience: Audience::All,
        providers: GMAIL_YAHOO,
        checks: &[("mx", OnWarn::Met)],
        link: "https://www.rfc-editor.org/rfc/rfc5321#section-4.5.5",
    },
    Requirement {
        id: "one_click_unsubscribe",
        rule: "Marketing mail offers one-click unsubscribe, honoured within 2 days",
        audience: Audience::Bulk,
        providers: GMAIL_YAHOO,
        checks: &[("unsubscribe", OnWarn::NotMet)],
        link: "https://www.rfc-editor.org/rfc/rfc8058",
    },
    Requirement {
        id: "complaint_rate",
        rule: "User-reported spam stays under 0.3% (Gmail: aim under 0.1%)",
        audience: Audience::All,
        providers: ALL_THREE,
        checks: &[("complaint_rate", OnWarn::Met)],
        link: "https://postmaster.google.com/",
    },
    Requirement {
        id: "mta_sts",
        rule: "MTA-STS tells senders to require TLS to you",
        audience: Audience::Advice,
        providers: &[],
        checks: &[("mta_sts", OnWarn::NotMet)],
        link: "https://www.rfc-editor.org/rfc/rfc8461",
    },
    Requirement {
        id: "tls_rpt",
        rule: "TLS-RPT gets you reports of senders' TLS failures",
        audience: Audience::Advice,
        providers: &[],
        checks: &[("tls_rpt", OnWarn::NotMet)],
        link: "https://www.rfc-editor.org/rfc/rfc8460",
    },
];

/// How a rule came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Met {
    Pass,
    Fail,
    /// Not checked (a check could not run, or is not configured).
    Unknown,
    /// An advice rule that is not followed.
    Advice,
}

impl Met {
    pub fn as_str(self) -> &'static str {
        match self {
            Met::Pass => "pass",
            Met::Fail => "fail",
            Met::Unknown => "unknown",
            Met::Advice => "advice",
        }
    }
}

/// One rule read against a report.
#[derive(Debug, Clone)]
pub struct Assessed {
    pub requirement: &'static Requirement,
    pub met: Met,
    /// The check that decided it (the first not met, else the first unknown).
    pub deciding: Option<Check>,
}

impl Assessed {
    pub fn to_json(&self) -> Value {
        let r = self.requirement;
        let mut v = json!({
            "id": r.id,
            "rule": r.rule,
            "applies_to": r.audience.as_str(),
            "providers": r.providers,
            "status": self.met.as_str(),
            "checks": r.checks.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            "link": r.link,
        });
        if let Some(c) = &self.deciding {
            if let Some(d) = &c.detail {
                v["detail"] = json!(d);
            }
            if let Some(f) = &c.fix {
                v["fix"] = json!(f);
            }
        }
        v
    }
}

/// Reads `report` (a `check domain` report) against every rule.
pub fn assess(report: &CheckReport) -> Vec<Assessed> {
    REQUIREMENTS.iter().map(|r| assess_one(r, report)).collect()
}

fn assess_one(requirement: &'static Requirement, report: &CheckReport) -> Assessed {
    let mut not_met = None;
    let mut unknown = None;
    for (name, on_warn) in requirement.checks {
        let Some(c) = report.get(name) else {
            unknown.get_or_insert_with(|| {
                Check::new("not_checked", Status::Unknown).detail(format!("{name} was not checked"))
            });
            continue;
        };
        let fails = match c.status {
            Status::Fail => true,
            Status::Warn => *on_warn == OnWarn::NotMet,
            // An advice rule's information is "not published"; a required rule's means "not
            // configured, so not checked".
            Status::Info => requirement.audience == Audience::Advice,
            Status::Ok | Status::Unknown => false,
        };
        if fails {
            not_met.get_or_insert_with(|| c.clone());
        } else if matches!(c.status, Status::Unknown | Status::Info) {
            unknown.get_or_insert_with(|| c.clone());
        }
    }
    let met = match (&not_met, &unknown, requirement.audience) {
        (Some(_), _, Audience::Advice) => Met::Advice,
        (Some(_), _, _) => Met::Fail,
        (None, Some(_), _) => Met::Unknown,
        (None, None, _) => Met::Pass,
    };
    Assessed { requirement, met, deciding: not_met.or(unknown) }
}

/// A domain report's JSON (DESIGN §3) with the rules read against it as `requirements`.
pub fn domain_json(report: &CheckReport) -> Value {
    let mut v = report.to_json();
    v["requirements"] = Value::Array(assess(report).iter().map(Assessed::to_json).collect());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(checks: &[(&'static str, Status)]) -> CheckReport {
        let mut r = CheckReport::new("domain", "a.test");
        for (n, s) in checks {
            r.push(Check::new(n, *s).fix(format!("fix {n}")));
        }
        r
    }

    fn met(a: &[Assessed], id: &str) -> Met {
        a.iter().find(|x| x.requirement.id == id).unwrap().met
    }

    #[test]
    fn every_rule_names_checks_and_a_link() {
        let mut ids = std::collections::HashSet::new();
        for r in REQUIREMENTS {
            assert!(ids.insert(r.id), "{} twice", r.id);
            assert!(!r.checks.is_empty() && r.link.starts_with("https://"), "{}", r.id);
            assert_eq!(r.providers.is_empty(), r.audience == Audience::Advice, "{}", r.id);
        }
    }

    #[test]
    fn strict_and_lenient_warnings() {
        use Status::*;
        let a = assess(&report(&[
            ("spf", Warn),
            ("spf_lookups", Ok),
            ("spf_ip", Ok),
            ("dkim", Warn),
            ("dmarc", Warn),
            ("dmarc_alignment", Fail),
            ("rdns", Info),
            ("tls_outbound", Ok),
            ("tls_listener", Warn),
            ("mx", Unknown),
            ("unsubscribe", Ok),
            ("complaint_rate", Ok),
            ("mta_sts", Info),
            ("tls_rpt", Ok),
        ]));
        assert_eq!(met(&a, "spf"), Met::Pass, "~all is enough");
        assert_eq!(met(&a, "dkim"), Met::Fail, "unsigned mail is not signed");
        assert_eq!(met(&a, "dmarc"), Met::Pass, "p=none is enough");
        assert_eq!(met(&a, "alignment"), Met::Fail);
        assert_eq!(met(&a, "fcrdns"), Met::Unknown, "no outbound IP configured");
        assert_eq!(met(&a, "tls"), Met::Pass, "a self-signed listener certificate still transmits over TLS");
        assert_eq!(met(&a, "mx"), Met::Unknown);
        assert_eq!(met(&a, "mta_sts"), Met::Advice);
        assert_eq!(met(&a, "tls_rpt"), Met::Pass);
        let dkim = a.iter().find(|x| x.requirement.id == "dkim").unwrap().to_json();
        assert_eq!(dkim["fix"], "fix dkim");
        assert_eq!(dkim["applies_to"], "bulk");
        let spf = assess(&report(&[("spf", Ok), ("spf_lookups", Ok), ("spf_ip", Warn)]));
        assert_eq!(met(&spf, "spf"), Met::Fail, "our IP soft-failing is not authorised");
        assert_eq!(met(&spf, "dkim"), Met::Unknown, "not in the report");
    }
}
