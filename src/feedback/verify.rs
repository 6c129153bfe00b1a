//! Forged mailer-daemon detection: weighs what a bounce shows about itself ([`inspect`]) and
//! what the store, our keys and DNS say about it ([`Facts`], gathered by `feedback::evidence`)
//! into a verdict — `genuine`, `forged` or `unknown` — with every piece of evidence (the learned
//! filter, `learn`, may then turn `unknown` into `likely_forged` / `likely_genuine`).
//!
//! The checks (issue 4): (a) our signed return-path token, (b) the quoted Message-ID in our sent
//! log, (c) the failed recipients among that message's recipients, (d) links, odd attachments and
//! requests for passwords or personal data, (e) no concrete reason, (f) the claimed reporter
//! against the Received chain, (g) SPF, DKIM and DMARC of the bounce itself.
//! Each check carries a weight; proof that we sent the mail (a valid token, or a sent-log match)
//! is needed for `genuine`, and damning content overrides it.
//! Standards: RFC 3464 (what a real DSN carries), RFC 3834, RFC 7208/6376/7489 (results only).
//! Must not: touch the store, the network or the clock (facts come in as values).

use std::sync::LazyLock;

use mail_parser::MimeHeaders;
use regex::Regex;
use serde::Serialize;
use serde_json::{Value, json};

use super::parse::{self, Doc};
use super::{BounceReport, ReportKind, parse_bounce_doc};
use crate::smtp::message::{HeaderLine, field_blocks};

/// The verdict on one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// About mail we sent, and nothing in it says otherwise.
    Genuine,
    /// Backscatter for mail we never sent, a tampered token, or a phishing notice.
    Forged,
    /// Not a bounce, or not enough to tell.
    Unknown,
    /// No deterministic evidence either way, and the learned filter (`learn`) is confident
    /// it is forged; nothing is dropped for it.
    LikelyForged,
    /// No deterministic evidence either way, and the learned filter is confident it is genuine.
    LikelyGenuine,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Genuine => "genuine",
            Verdict::Forged => "forged",
            Verdict::Unknown => "unknown",
            Verdict::LikelyForged => "likely_forged",
            Verdict::LikelyGenuine => "likely_genuine",
        }
    }
}

/// One piece of evidence (DESIGN §3: `{"check", "ok", "detail"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub check: &'static str,
    /// True when the check speaks for the bounce (or found nothing against it).
    pub ok: bool,
    pub detail: String,
    /// How much it moves the verdict: positive for genuine, negative for forged.
    #[serde(skip)]
    pub weight: i32,
    /// Forged whatever else holds (a tampered token, a request for a password).
    #[serde(skip)]
    pub damning: bool,
}

/// The verdict with its reasons and the parsed report.
#[derive(Debug, Clone)]
pub struct Verification {
    pub verdict: Verdict,
    pub is_bounce: bool,
    pub evidence: Vec<Evidence>,
    pub report: BounceReport,
    /// Our queue id of the message the bounce is about, when a token or the sent log names it.
    pub original: Option<String>,
    /// The verdict rests on proof (a valid token → genuine; a bad MAC, a request for
    /// credentials, a bounce for mail never sent → forged): the learned filter trains on it.
    pub certain: bool,
    /// It presents itself as a bounce (`Inspection::claims_bounce`).
    pub claims_bounce: bool,
    /// The message's features for the learned filter (`learn::features`).
    pub features: Vec<String>,
    /// What the learned filter said, when it was asked (only for `unknown` verdicts).
    pub learned: Option<super::learn::Prediction>,
}

impl Verification {
    /// The DESIGN §3 JSON line for `mailerd bounce verify --json`.
    pub fn to_json(&self, file: &str) -> Value {
        let mut out = json!({
            "file": file,
            "verdict": self.verdict,
            "is_bounce": self.is_bounce,
            "evidence": self.evidence,
            "recipients": self.report.recipients.iter().map(|r| json!({
                "address": r.address, "status": r.status, "reason": r.reason, "hard_bounce": r.hard_bounce,
            })).collect::<Vec<_>>(),
            "original_message_id": self.report.original.message_id,
        });
        if let (Some(p), Some(obj)) = (&self.learned, out.as_object_mut()) {
            obj.insert("learner".into(), json!(p));
        }
        out
    }

    /// The evidence against the bounce, one line, for logs and events.
    pub fn summary(&self) -> String {
        let against: Vec<&str> = self.evidence.iter().filter(|e| !e.ok).map(|e| e.detail.as_str()).collect();
        if against.is_empty() {
            return self.verdict.as_str().to_string();
        }
        format!("{}: {}", self.verdict.as_str(), against.join("; "))
    }
}

/// One hop of the Received chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hop {
    /// The names the sending side gave or was found under (HELO, reverse DNS), lower-case.
    pub from_names: Vec<String>,
    pub from_ip: Option<String>,
    pub by: Option<String>,
}

/// What a message shows about itself, read without the store or the network.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub report: BounceReport,
    /// It presents itself as a bounce (sender or subject), whether or not it parses as one.
    pub claims_bounce: bool,
    /// Signed return-path addresses found in it (header fields or the quoted original).
    pub tokens: Vec<String>,
    /// Links in the human-readable part.
    pub links: Vec<String>,
    /// Attached parts a DSN does not carry (`type/subtype name`).
    pub odd_attachments: Vec<String>,
    /// The phrase that asks for credentials or personal data.
    pub asks_credentials: Option<String>,
    /// The phrase that lures into clicking.
    pub lure: Option<String>,
    pub from_address: Option<String>,
    pub reporting_mta: Option<String>,
    /// Newest first, as in the header.
    pub received: Vec<Hop>,
    /// Tokens for the learned filter (`learn::features`), sorted.
    pub features: Vec<String>,
}

/// What the caller found out with the store, the return-path key and DNS.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub token: TokenFact,
    pub sent: SentFact,
    /// (g), None when not checked (no DNS, or no client address known).
    pub auth: Option<AuthFact>,
    /// Every message we send carries a signed return path (`bounce.sign_return_path`), so a
    /// bounce without a token was not sent back to us by the mail system.
    pub all_signed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TokenFact {
    #[default]
    Absent,
    /// Valid and unexpired; names our queue id.
    Valid {
        queue_id: String,
    },
    Expired,
    /// Malformed or the signature does not match: made up or tampered with.
    Invalid,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SentFact {
    /// The bounce quotes no Message-ID (and no token names a message).
    #[default]
    NoMessageId,
    /// The quoted Message-ID was never sent from here.
    NotSent { message_id: String },
    /// We sent it (as queue id `queue_id`), to these recipients (lower-case).
    Sent { message_id: String, queue_id: String, recipients: Vec<String> },
}

/// SPF, DKIM and DMARC results of the bounce itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFact {
    /// `pass`, `fail`, `softfail`, `neutral`, `none`, `temperror`, `permerror`.
    pub spf: String,
    /// A DKIM signature of the From domain (or its organisation) verified.
    pub dkim_aligned_pass: bool,
    /// Some signature failed to verify.
    pub dkim_fail: bool,
    /// `pass`, `fail`, `none`, `temperror`, `permerror`.
    pub dmarc: String,
    /// The DMARC policy of the From domain asks to reject or quarantine failures.
    pub dmarc_enforced: bool,
}

/// Reads what a message shows about itself.
pub fn inspect(raw: &[u8]) -> Inspection {
    let (report, doc) = parse_bounce_doc(raw);
    let mut ins = Inspection {
        claims_bounce: report.kind.is_bounce(),
        report,
        tokens: tokens_in(raw),
        links: Vec::new(),
        odd_attachments: odd_attachments(raw),
        asks_credentials: None,
        lure: None,
        from_address: None,
        reporting_mta: None,
        received: Vec::new(),
        features: Vec::new(),
    };
    let Some(doc) = doc else {
        ins.features = super::learn::features(&ins, None);
        return ins;
    };
    ins.claims_bounce |= claims_bounce(&doc);
    ins.links = links_in(&doc.text);
    ins.asks_credentials = first_match(&CREDENTIALS, &doc.text);
    ins.lure = first_match(&LURE, &doc.text);
    ins.from_address = parse::addresses_in(&doc.from).into_iter().next();
    ins.reporting_mta = doc.dsn.iter().find_map(|d| field(d, "reporting-mta"));
    ins.received = doc.headers.iter().filter(|(n, _)| n == "received").take(50).map(|(_, v)| hop(v)).collect();
    ins.features = super::learn::features(&ins, Some(&doc));
    ins
}

/// Weighs the inspection and the facts into a verdict.
pub fn judge(ins: &Inspection, facts: &Facts) -> Verification {
    let mut ev = Vec::new();
    let mut add = |check: &'static str, ok: bool, weight: i32, damning: bool, detail: String| {
        ev.push(Evidence { check, ok, detail, weight, damning });
    };
    // (a) our signed return path.
    match &facts.token {
        TokenFact::Valid { queue_id } => {
            add("return_path_token", true, 3, false, format!("valid signed return path for message {queue_id}"))
        }
        TokenFact::Expired => {
            add("return_path_token", false, -2, false, "our signed return path, but expired: a replayed bounce".into())
        }
        TokenFact::Invalid => add(
            "return_path_token",
            false,
            -4,
            true,
            "a return path in our format whose signature does not verify: made up or tampered with".into(),
        ),
        TokenFact::Absent if facts.all_signed => add(
            "return_path_token",
            false,
            -1,
            false,
            "no signed token for this host, though all our mail carries one".into(),
        ),
        TokenFact::Absent => add("return_path_token", false, 0, false, "no signed token for this host".into()),
    }
    // (b) the sent log and (c) the recipients.
    match &facts.sent {
        SentFact::NoMessageId => {
            add("sent_log", false, 0, false, "the bounce quotes no Message-ID of the original".into())
        }
        SentFact::NotSent { message_id } => {
            add("sent_log", false, -3, false, format!("Message-ID <{message_id}> was never sent from here"))
        }
        SentFact::Sent { message_id, recipients, .. } => {
            add("sent_log", true, 2, false, format!("Message-ID <{message_id}> was sent from here"));
            let failed: Vec<&str> = ins.report.recipients.iter().map(|r| r.address.as_str()).collect();
            let strangers: Vec<&str> =
                failed.iter().copied().filter(|a| !recipients.iter().any(|r| r.eq_ignore_ascii_case(a))).collect();
            if failed.is_empty() {
                add("recipients", false, 0, false, "no failed recipient named".into());
            } else if strangers.is_empty() {
                add("recipients", true, 1, false, format!("{} failed recipient(s), all were sent to", failed.len()));
            } else {
                add(
                    "recipients",
                    false,
                    -3,
                    false,
                    format!("{} was never a recipient of that message", strangers.join(", ")),
                );
            }
        }
    }
    // (d) what real DSNs do not carry.
    match ins.links.len() {
        0 => add("links", true, 0, false, "no links in the human-readable part".into()),
        n => add("links", false, -1, false, format!("{n} link(s) in the human-readable part")),
    }
    if let Some(l) = &ins.lure {
        add("lure", false, -2, false, format!("asks the reader to act: \"{l}\""));
    }
    if !ins.odd_attachments.is_empty() {
        add(
            "attachments",
            false,
            -3,
            false,
            format!("attachments a bounce does not carry: {}", ins.odd_attachments.join(", ")),
        );
    }
    if let Some(p) = &ins.asks_credentials {
        add("personal_data", false, -4, true, format!("asks for passwords or personal data: \"{p}\""));
    }
    // (e) a concrete reason.
    let concrete =
        ins.report.recipients.iter().any(|r| r.status.is_some() || r.reply_code.is_some() || r.diagnostic.is_some());
    if concrete {
        add("concrete_reason", true, 0, false, "a status code and diagnostic for the failed recipient".into());
    } else if ins.claims_bounce {
        add("concrete_reason", false, -2, false, "no status code and no diagnostic: no concrete reason".into());
    }
    // (f) the claimed reporter against the Received chain.
    if let Some(e) = reporter_consistency(ins) {
        ev.push(e);
    }
    // (g) authentication of the bounce itself.
    if let Some(a) = &facts.auth {
        ev.extend(auth_evidence(a));
    }

    let is_bounce = ins.report.kind.is_bounce();
    let score: i32 = ev.iter().map(|e| e.weight).sum();
    let proof = matches!(facts.token, TokenFact::Valid { .. }) || matches!(facts.sent, SentFact::Sent { .. });
    let damned = ev.iter().any(|e| e.damning);
    // Proof that we sent the mail outweighs oddities of form; only damning evidence beats it.
    let verdict = if damned {
        Verdict::Forged
    } else if proof {
        if is_bounce && score >= 2 { Verdict::Genuine } else { Verdict::Unknown }
    } else if ins.claims_bounce && score <= -3 {
        Verdict::Forged
    } else {
        Verdict::Unknown
    };
    if !ins.claims_bounce && verdict == Verdict::Unknown {
        let kind = ins.report.kind;
        ev.insert(
            0,
            Evidence {
                check: "is_bounce",
                ok: false,
                detail: format!("not a bounce ({})", kind_name(kind)),
                weight: 0,
                damning: false,
            },
        );
    }
    let original = match (&facts.token, &facts.sent) {
        (TokenFact::Valid { queue_id }, _) | (_, SentFact::Sent { queue_id, .. }) => Some(queue_id.clone()),
        _ => None,
    };
    let certain = match verdict {
        Verdict::Genuine => matches!(facts.token, TokenFact::Valid { .. }),
        Verdict::Forged => {
            facts.token == TokenFact::Invalid
                || ins.asks_credentials.is_some()
                || matches!(facts.sent, SentFact::NotSent { .. })
        }
        _ => false,
    };
    Verification {
        verdict,
        is_bounce,
        evidence: ev,
        report: ins.report.clone(),
        original,
        certain,
        claims_bounce: ins.claims_bounce,
        features: ins.features.clone(),
        learned: None,
    }
}

fn kind_name(k: ReportKind) -> &'static str {
    match k {
        ReportKind::Vacation => "an auto-reply",
        ReportKind::Feedback => "a feedback report",
        ReportKind::Delivered => "a delivery success report",
        _ => "ordinary mail",
    }
}

fn auth_evidence(a: &AuthFact) -> Vec<Evidence> {
    let e = |check, ok, weight, detail: String| Evidence { check, ok, detail, weight, damning: false };
    let mut out = Vec::new();
    out.push(match a.spf.as_str() {
        "pass" => e("spf", true, 0, "SPF pass for the sending host".into()),
        "fail" => e("spf", false, -2, "SPF fail: the sending host may not send for that domain".into()),
        "softfail" => e("spf", false, -1, "SPF softfail for the sending host".into()),
        other => e("spf", true, 0, format!("SPF {other}")),
    });
    out.push(if a.dkim_aligned_pass {
        e("dkim", true, 1, "DKIM signature of the sender's domain verifies".into())
    } else if a.dkim_fail {
        e("dkim", false, -1, "a DKIM signature does not verify".into())
    } else {
        e("dkim", true, 0, "no DKIM signature of the sender's domain".into())
    });
    out.push(match a.dmarc.as_str() {
        "pass" => e("dmarc", true, 1, "DMARC pass".into()),
        "fail" if a.dmarc_enforced => {
            e("dmarc", false, -3, "DMARC fail, and the domain's policy says reject or quarantine".into())
        }
        "fail" => e("dmarc", false, -1, "DMARC fail (policy none)".into()),
        other => e("dmarc", true, 0, format!("DMARC {other}")),
    });
    out
}

/// (f): a reporter that names a domain (From, Reporting-MTA) none of the Received hops share.
fn reporter_consistency(ins: &Inspection) -> Option<Evidence> {
    if !ins.claims_bounce {
        return None;
    }
    let mut claimed: Vec<String> = Vec::new();
    if let Some(d) = ins.from_address.as_deref().and_then(|a| a.rsplit_once('@')).map(|(_, d)| org_domain(d)) {
        claimed.push(d);
    }
    if let Some(m) = ins.reporting_mta.as_deref().map(|m| m.trim_matches(['[', ']']))
        && m.parse::<std::net::IpAddr>().is_err()
    {
        claimed.push(org_domain(m));
    }
    claimed.retain(|d| d.contains('.'));
    claimed.dedup();
    // Hops other than the last one (our own receipt is the first header; what it says it
    // received from is the sending side, which is what counts).
    let seen: Vec<String> = ins
        .received
        .iter()
        .flat_map(|h| h.from_names.iter().chain(h.by.iter()))
        .filter(|n| n.parse::<std::net::IpAddr>().is_err())
        .map(|n| org_domain(n))
        .filter(|d| d.contains('.'))
        .collect();
    if claimed.is_empty() || seen.is_empty() {
        return None;
    }
    let big = claimed.iter().find(|d| family(d).is_some());
    let is_seen = |d: &String| match family(d) {
        Some(f) => seen.iter().any(|s| f.contains(&s.as_str())),
        None => seen.contains(d),
    };
    let unseen: Vec<&String> = claimed.iter().filter(|d| !is_seen(d)).collect();
    let ev = |ok, weight, detail: String| Evidence { check: "received_chain", ok, detail, weight, damning: false };
    Some(match (unseen.is_empty(), big) {
        (true, _) => ev(true, 0, "the reporter's domain appears in the Received chain".into()),
        // A big provider's mailer-daemon always sends from its own hosts.
        (false, Some(b)) if unseen.contains(&b) => {
            ev(false, -3, format!("claims to come from {b}, but no Received hop is {b}'s"))
        }
        (false, _) => ev(
            false,
            -1,
            format!(
                "the reporter ({}) does not appear in the Received chain",
                unseen.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ),
    })
}

/// Providers whose mailer-daemons only ever send from their own hosts, as families of
/// organisational domains (one family's hosts speak for all its names).
const BIG_PROVIDERS: &[&[&str]] = &[
    &["google.com", "googlemail.com", "gmail.com"],
    &["outlook.com", "hotmail.com", "live.com", "microsoft.com", "office365.com", "msn.com"],
    &["yahoo.com", "yahoodns.net", "aol.com", "yahoo.co.jp"],
    &["amazonses.com", "amazonaws.com", "amazon.com"],
    &["icloud.com", "me.com", "apple.com"],
    &["mail.ru"],
    &["yandex.ru", "yandex.net"],
    &["zoho.com"],
    &["gmx.net", "web.de"],
];

fn family(org: &str) -> Option<&'static [&'static str]> {
    BIG_PROVIDERS.iter().copied().find(|f| f.contains(&org))
}

/// The registrable part of a host name, roughly: the last two labels, three under a
/// two-letter country code with a generic second level (`example.co.uk`).
pub fn org_domain(host: &str) -> String {
    let host = host.trim().trim_end_matches('.').trim_start_matches("dns;").trim().to_ascii_lowercase();
    let labels: Vec<&str> = host.rsplit('.').take(3).collect();
    let keep = match labels.as_slice() {
        [tld, second, _] if tld.len() == 2 && SECOND_LEVELS.contains(second) => 3,
        _ => 2,
    };
    let mut parts: Vec<&str> = labels.into_iter().take(keep).collect();
    parts.reverse();
    parts.join(".")
}

const SECOND_LEVELS: &[&str] = &["co", "com", "net", "org", "ac", "gov", "edu", "ne", "or", "go", "gr", "ad", "ed"];

/// The first field `name` of a delivery-status body (as `parse::rfc3464` reads it), without
/// its type (`dns;`), lower-cased.
fn field(dsn: &str, name: &str) -> Option<String> {
    field_blocks(dsn).find_map(|line| match line {
        HeaderLine::Field { name: n, value } if n.trim().eq_ignore_ascii_case(name) => {
            Some(value.split_once(';').map_or(value.as_str(), |(_, h)| h.trim()).to_ascii_lowercase())
        }
        _ => None,
    })
}

static HOP_FROM: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?is)^\s*from\s+([^\s(;]+)(?:\s*\(([^)]*)\))?").ok());
static HOP_BY: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"(?i)\bby\s+([a-z0-9][a-z0-9.-]*)").ok());
static IP_IN: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]").ok());
static HOST_IN: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"(?i)\b([a-z0-9-]+(?:\.[a-z0-9-]+)+)\b").ok());

fn hop(v: &str) -> Hop {
    let mut h = Hop::default();
    if let Some(c) = HOP_FROM.as_ref().and_then(|re| re.captures(v)) {
        if let Some(helo) = c.get(1) {
            h.from_names.push(helo.as_str().trim_matches(['[', ']']).to_ascii_lowercase());
        }
        if let Some(paren) = c.get(2) {
            let paren = paren.as_str();
            if let Some(host) = HOST_IN.as_ref().and_then(|re| re.captures(paren)).and_then(|c| c.get(1)) {
                let host = host.as_str().to_ascii_lowercase();
                if host.parse::<std::net::IpAddr>().is_err() {
                    h.from_names.push(host);
                }
            }
            h.from_ip =
                IP_IN.as_ref().and_then(|re| re.captures(paren)).and_then(|c| c.get(1)).map(|m| m.as_str().into());
        }
    }
    h.from_names.retain(|n| n.parse::<std::net::IpAddr>().is_err());
    h.from_names.dedup();
    h.by =
        HOP_BY.as_ref().and_then(|re| re.captures(v)).and_then(|c| c.get(1)).map(|m| m.as_str().to_ascii_lowercase());
    h
}

static BOUNCE_SENDER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)\b(mailer-daemon|postmaster|mail delivery (sub)?system)\b").ok());
static BOUNCE_SUBJECT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)(undeliver|undelivered|delivery (status notification|failure|has failed|failed)|returned mail|non[- ]?delivery|failure notice|could not be delivered|mail delivery failed|message not delivered|delivery problem)").ok()
});

fn claims_bounce(doc: &Doc) -> bool {
    let m = |re: &Option<Regex>, s: &str| re.as_ref().is_some_and(|re| re.is_match(s));
    m(&BOUNCE_SENDER, &doc.from) || m(&BOUNCE_SUBJECT, &doc.subject)
}

static TOKEN: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)bounces\+[0-9a-z]+-[0-9]+-[0-9]+-[0-9a-z]+@[a-z0-9][a-z0-9.-]*").ok());

/// Signed return-path addresses anywhere in the first 256 KiB (headers and quoted original).
fn tokens_in(raw: &[u8]) -> Vec<String> {
    let head = String::from_utf8_lossy(raw.get(..256 * 1024).unwrap_or(raw)).into_owned();
    let Some(re) = TOKEN.as_ref() else { return Vec::new() };
    let mut out: Vec<String> = Vec::new();
    for m in re.find_iter(&head).take(16) {
        let t = m.as_str().trim_end_matches('.').to_string();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

static LINK: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r#"(?i)\b(?:https?://|www\.)[^\s<>"'()\]]+"#).ok());

fn links_in(text: &str) -> Vec<String> {
    let Some(re) = LINK.as_ref() else { return Vec::new() };
    re.find_iter(text).take(50).map(|m| m.as_str().to_string()).collect()
}

static CREDENTIALS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(passwords?|passcode|verify your (?:account|identity|e-?mail)|confirm your (?:account|identity|password|details)|(?:log|sign)[ -]?in (?:to|with) your|credit card|card number|social security|bank (?:account|details)|date of birth|re-?activate your (?:account|mailbox)|account (?:will be )?(?:suspended|deactivated|terminated|closed))\b").ok()
});
static LURE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(click (?:here|below|the (?:link|button))|release (?:your |the )?(?:pending |held |blocked )?(?:messages?|e-?mails?)|download (?:the )?attach(?:ed|ment)|open the attach(?:ed|ment)|view (?:the )?(?:blocked|pending|held) (?:messages?|e-?mails?)|upgrade your (?:mailbox|storage|quota))\b").ok()
});

fn first_match(re: &Option<Regex>, text: &str) -> Option<String> {
    re.as_ref()?.find(text).map(|m| m.as_str().to_string())
}

/// Parts a DSN does not carry: anything but text, the report, and the returned message.
fn odd_attachments(raw: &[u8]) -> Vec<String> {
    let Some(msg) = parse::mime::guarded_parse(raw.get(..super::MAX_INPUT).unwrap_or(raw), false) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // A returned message is one part here (its own parts live inside it).
    for part in msg.parts.iter().take(200) {
        let (ctype, sub) = part
            .content_type()
            .map(|c| (c.ctype().to_ascii_lowercase(), c.subtype().unwrap_or("").to_ascii_lowercase()))
            .unwrap_or_else(|| ("text".into(), "plain".into()));
        let name = part.attachment_name().unwrap_or("").to_string();
        // Inline images (a provider's logo or icons) are decoration, not payload.
        let decoration = ctype == "image" && !RISKY_NAME.as_ref().is_some_and(|re| re.is_match(&name));
        let expected = decoration
            || ctype == "multipart"
            || (ctype == "text" && ["plain", "html", "rfc822-headers", "rfc822-header", "delivery-status"]
                .contains(&sub.as_str())
                && !RISKY_NAME.as_ref().is_some_and(|re| re.is_match(&name)))
            || (ctype == "message"
                && [
                    "delivery-status",
                    "global-delivery-status",
                    "rfc822",
                    "global",
                    "rfc822-headers",
                    "global-headers",
                    "partial",
                    "feedback-report",
                    "disposition-notification",
                ]
                .contains(&sub.as_str()))
            // Exchange wraps its rich text in winmail.dat.
            || (ctype == "application" && ["ms-tnef", "vnd.ms-tnef"]
                .contains(&sub.as_str()));
        if !expected {
            out.push(format!("{ctype}/{sub}{}", if name.is_empty() { String::new() } else { format!(" {name}") }));
        }
        if out.len() >= 8 {
            break;
        }
    }
    out
}

static RISKY_NAME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)\.(exe|scr|com|bat|cmd|js|vbs|jar|zip|rar|7z|iso|img|html?|shtml|docm|xlsm|pdf|lnk|hta)$").ok()
});

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(token: TokenFact, sent: SentFact) -> Facts {
        Facts { token, sent, auth: None, all_signed: false }
    }

    const DSN: &str = "From: MAILER-DAEMON@mx.example.net\r\nTo: bounces+ABC-0-20000-0123456789ab@mail.test\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nI could not deliver your message.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; bob@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: a@mail.test\r\nTo: bob@example.net\r\nMessage-ID: <m1@mail.test>\r\nSubject: hi\r\n--b--\r\n";

    #[test]
    fn proof_and_a_concrete_reason_make_genuine() {
        let ins = inspect(DSN.as_bytes());
        assert_eq!(ins.tokens, vec!["bounces+ABC-0-20000-0123456789ab@mail.test".to_string()]);
        let sent = SentFact::Sent {
            message_id: "m1@mail.test".into(),
            queue_id: "ABC".into(),
            recipients: vec!["bob@example.net".into()],
        };
        let v = judge(&ins, &facts(TokenFact::Valid { queue_id: "ABC".into() }, sent));
        assert_eq!(v.verdict, Verdict::Genuine, "{:?}", v.evidence);
    }

    #[test]
    fn backscatter_and_tampering_are_forged() {
        let ins = inspect(DSN.as_bytes());
        let v = judge(&ins, &facts(TokenFact::Absent, SentFact::NotSent { message_id: "m1@mail.test".into() }));
        assert_eq!(v.verdict, Verdict::Forged, "{:?}", v.evidence);
        let v = judge(&ins, &facts(TokenFact::Invalid, SentFact::NoMessageId));
        assert_eq!(v.verdict, Verdict::Forged);
        // A stranger among the failed recipients of a message we did send.
        let sent = SentFact::Sent {
            message_id: "m1@mail.test".into(),
            queue_id: "ABC".into(),
            recipients: vec!["carol@example.net".into()],
        };
        let v = judge(&ins, &facts(TokenFact::Absent, sent));
        assert_ne!(v.verdict, Verdict::Genuine);
    }

    #[test]
    fn phishing_notice_is_forged_even_with_proof() {
        let raw = "From: Mail Delivery System <mailer-daemon@bigbank-secure.example>\r\nSubject: Delivery failure: messages on hold\r\n\r\nYour messages could not be delivered. Click here https://evil.example/login to verify your account and release your messages.\r\n";
        let ins = inspect(raw.as_bytes());
        assert!(ins.claims_bounce);
        assert_eq!(ins.links.len(), 1);
        let v = judge(&ins, &facts(TokenFact::Absent, SentFact::NoMessageId));
        assert_eq!(v.verdict, Verdict::Forged, "{:?}", v.evidence);
    }

    #[test]
    fn received_chain_and_org_domains() {
        assert_eq!(org_domain("mx1.mail.example.co.uk"), "example.co.uk");
        assert_eq!(org_domain("dns; mail-sor-f41.google.com"), "google.com");
        let h = hop(
            "from mail-ej1-f41.google.com (mail-ej1-f41.google.com [209.85.218.41]) by mx.test (mailerd) with ESMTPS id X; Mon, 1 Jan 2026 00:00:00 +0000",
        );
        assert_eq!(h.from_names, vec!["mail-ej1-f41.google.com".to_string()]);
        assert_eq!(h.from_ip.as_deref(), Some("209.85.218.41"));
        assert_eq!(h.by.as_deref(), Some("mx.test"));
        let raw = "Received: from evil.example ([203.0.113.9]) by mx.test (mailerd) with ESMTP id A; Mon, 1 Jan 2026 00:00:00 +0000\r\nFrom: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\nSubject: Delivery Status Notification (Failure)\r\n\r\nYour message wasn't delivered.\r\n";
        let v = judge(&inspect(raw.as_bytes()), &facts(TokenFact::Absent, SentFact::NoMessageId));
        assert!(v.evidence.iter().any(|e| e.check == "received_chain" && !e.ok), "{:?}", v.evidence);
        assert_eq!(v.verdict, Verdict::Forged);
    }

    #[test]
    fn ordinary_mail_is_unknown() {
        let v = judge(&inspect(b"From: a@b.example\r\nSubject: lunch?\r\n\r\nAt noon.\r\n"), &Facts::default());
        assert_eq!(v.verdict, Verdict::Unknown);
        assert!(!v.is_bounce);
    }

    #[test]
    fn odd_attachment_is_noted() {
        let raw = "From: MAILER-DAEMON@x.example\r\nSubject: Undeliverable\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed: 550 5.1.1 user unknown <bob@x.example>\r\n--b\r\nContent-Type: application/zip; name=\"message.zip\"\r\nContent-Disposition: attachment; filename=\"message.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--b--\r\n";
        let ins = inspect(raw.as_bytes());
        assert_eq!(ins.odd_attachments, vec!["application/zip message.zip".to_string()]);
    }
}
