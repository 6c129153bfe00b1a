//! `check address`: syntax and normalisation, typo suggestion and role accounts (pure), then
//! the recipient domain in DNS, the suppression list and the opt-in RCPT probe (async).
//! The grammar is `smtp::address`'s (one RFC 5321 Mailbox grammar); this file adds what a
//! person sending mail needs on top: the normal form, reachable domains (a dot, no numeric
//! top-level label), the 254-octet path, role accounts and typos.
//!
//! Standards: RFC 5321 §4.1.2 (Mailbox, Dot-string, Quoted-string, address literals) and
//! §4.5.3.1 (64-octet local part, 255-octet domain), RFC 3696 errata 1690 (254-octet path),
//! RFC 5322 §3.4.1 (addr-spec), RFC 6531 (UTF-8 local parts need SMTPUTF8), UTS #46 / RFC 5890
//! (IDNA: domains are compared and sent as A-labels), RFC 7505 (null MX), RFC 2142 (role
//! mailboxes).
//! Must not: panic or allocate without bound on any input (input over 1,024 bytes is refused
//! at once), or decide policy: it reports, the caller decides.

use std::net::IpAddr;

use super::{Check, CheckReport, Status, typo};
use crate::dns::{Dns, DnsFailure};
use crate::smtp::address::{SpecError, parse_addr_spec, write_mailbox};
use crate::store::{Scope, Store};

/// Longer input is not looked at (a path is at most 256 octets with its brackets).
const MAX_INPUT: usize = 1024;

/// What the pure checks run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Suggest corrections for mistyped domains.
    pub typo: bool,
    /// Flag role and no-reply accounts.
    pub roles: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { typo: true, roles: true }
    }
}

/// An address that passed the syntax check, in normalised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The semantic local part (quotes and escapes removed, case kept: RFC 5321 §2.4).
    pub local: String,
    /// Lower-case A-labels without trailing dot, or an address literal (`[192.0.2.1]`).
    pub domain: String,
    /// The local part had to be written quoted (`"john smith"@example.com`).
    pub quoted: bool,
    /// The domain was given with non-ASCII labels (an IDN).
    pub idn: bool,
}

impl Parsed {
    pub fn is_literal(&self) -> bool {
        self.domain.starts_with('[')
    }

    pub fn needs_smtputf8(&self) -> bool {
        !self.local.is_ascii()
    }

    /// The address as it should be written: quoted only when it must be (as `Mailbox` writes it).
    pub fn normalized(&self) -> String {
        let mut out = String::with_capacity(self.local.len() + self.domain.len() + 3);
        let _ = write_mailbox(&mut out, &self.local, &self.domain);
        out
    }

    /// The suppression-list key (as `smtp::address::Mailbox::key`): local part lower-cased.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local.to_lowercase(), self.domain)
    }
}

/// Why an address is not an address; the text is the `detail`, `fix()` says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("empty address")]
    Empty,
    #[error("too long to be an address")]
    InputTooLong,
    #[error("no @")]
    NoAt,
    #[error("more than one @ outside quotes")]
    ManyAt,
    #[error("empty local part")]
    EmptyLocal,
    #[error("local part is {0} octets (at most 64)")]
    LocalTooLong(usize),
    #[error("local part has an empty atom (leading, trailing or double dot)")]
    BadDots,
    #[error("character {0:?} is not allowed unquoted in a local part")]
    BadLocalChar(char),
    #[error("unterminated or invalid quoted local part")]
    BadQuoted,
    #[error("empty domain")]
    EmptyDomain,
    #[error("domain is {0} octets (at most 255)")]
    DomainTooLong(usize),
    #[error("domain label {0:?} is invalid (letters, digits, inner hyphens, 1 to 63 octets)")]
    BadLabel(String),
    #[error("domain has no dot: not reachable on the Internet")]
    Dotless,
    #[error("top-level label {0:?} is numeric")]
    NumericTld(String),
    #[error("international domain is not valid IDNA")]
    BadIdna,
    #[error("address literal is not [IPv4] or [IPv6:...]")]
    BadLiteral,
    #[error("address is {0} octets (at most 254)")]
    PathTooLong(usize),
}

impl SyntaxError {
    pub fn fix(&self) -> &'static str {
        match self {
            SyntaxError::NoAt | SyntaxError::Empty => "an address is local-part@domain, e.g. jane@example.com",
            SyntaxError::ManyAt => "use one @; quote the local part if it really contains one",
            SyntaxError::BadDots => "remove the leading, trailing or repeated dot",
            SyntaxError::BadLocalChar(_) | SyntaxError::BadQuoted => {
                "remove the character, or put the local part in double quotes"
            }
            SyntaxError::Dotless | SyntaxError::NumericTld(_) => {
                "complete the domain (e.g. example.com); write an IP address as [192.0.2.1]"
            }
            _ => "check the address for a typo",
        }
    }
}

/// Parses an address the way people write it: `local@domain`, optionally in `<>`; the grammar
/// is `smtp::address::parse_addr_spec`, and on top of it a domain must have a dot and a
/// non-numeric top-level label, and the path at most 254 octets.
pub fn parse(input: &str) -> Result<Parsed, SyntaxError> {
    if input.len() > MAX_INPUT {
        return Err(SyntaxError::InputTooLong);
    }
    let mut text = input.trim();
    if let Some(inner) = text.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
        text = inner;
    }
    if text.is_empty() {
        return Err(SyntaxError::Empty);
    }
    let spec = parse_addr_spec(text, Some(64))?;
    let domain = spec.domain.as_str().to_string();
    if !spec.domain.is_address_literal() {
        let (labels, last) = (domain.split('.').count(), domain.rsplit('.').next().unwrap_or(""));
        if labels < 2 {
            return Err(SyntaxError::Dotless);
        }
        if last.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SyntaxError::NumericTld(last.to_string()));
        }
    }
    let parsed = Parsed { local: spec.local, domain, quoted: spec.needs_quotes, idn: spec.idn };
    let path = parsed.normalized().len();
    if path > 254 {
        return Err(SyntaxError::PathTooLong(path));
    }
    Ok(parsed)
}

impl From<SpecError> for SyntaxError {
    fn from(e: SpecError) -> SyntaxError {
        match e {
            SpecError::NoAt => SyntaxError::NoAt,
            SpecError::ManyAt => SyntaxError::ManyAt,
            SpecError::EmptyLocal => SyntaxError::EmptyLocal,
            SpecError::LocalTooLong(n) => SyntaxError::LocalTooLong(n),
            SpecError::BadDots => SyntaxError::BadDots,
            SpecError::BadLocalChar(c) => SyntaxError::BadLocalChar(c),
            SpecError::BadQuoted | SpecError::AfterQuote => SyntaxError::BadQuoted,
            SpecError::EmptyDomain => SyntaxError::EmptyDomain,
            SpecError::DomainTooLong(n) => SyntaxError::DomainTooLong(n),
            SpecError::BadLabel(l) => SyntaxError::BadLabel(l),
            SpecError::BadIdna => SyntaxError::BadIdna,
            SpecError::BadLiteral => SyntaxError::BadLiteral,
        }
    }
}

/// Role mailboxes (RFC 2142 and common practice): read by a team, or by nobody.
const ROLES: &[&str] = &[
    "abuse",
    "accounting",
    "accounts",
    "admin",
    "administrator",
    "billing",
    "careers",
    "contact",
    "enquiries",
    "help",
    "helpdesk",
    "hello",
    "hostmaster",
    "hr",
    "info",
    "inquiries",
    "jobs",
    "legal",
    "marketing",
    "media",
    "news",
    "noc",
    "office",
    "postmaster",
    "press",
    "privacy",
    "root",
    "sales",
    "security",
    "service",
    "support",
    "team",
    "usenet",
    "uucp",
    "webmaster",
    "www",
];

/// Local parts that announce nobody reads the mailbox.
const NO_REPLY: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "no.reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
    "do.not.reply",
    "mailer-daemon",
    "bounce",
    "bounces",
    "nobody",
];

/// What kind of account a local part names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    Person,
    Role,
    NoReply,
}

pub fn account_kind(local: &str) -> Account {
    // Subaddress (+tag) aside; compare case-insensitively without allocating.
    let base = local.split('+').next().unwrap_or(local);
    if NO_REPLY.iter().any(|r| r.eq_ignore_ascii_case(base))
        || base.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("noreply"))
        || base.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("no-reply"))
    {
        Account::NoReply
    } else if ROLES.iter().any(|r| r.eq_ignore_ascii_case(base)) {
        Account::Role
    } else {
        Account::Person
    }
}

/// The pure checks: syntax, normal form, SMTPUTF8/IDN notes, typo, role account.
/// The report's `normalized` is set when the syntax is valid.
pub fn check(input: &str, options: &Options) -> CheckReport {
    check_parsed(input, options).0
}

/// As `check`, also returning the parsed address for the async checks.
pub fn check_parsed(input: &str, options: &Options) -> (CheckReport, Option<Parsed>) {
    let mut report = CheckReport::new("address", input);
    let parsed = match parse(input) {
        Ok(p) => p,
        Err(e) => {
            report.push(Check::new("syntax", Status::Fail).detail(e.to_string()).fix(e.fix()));
            return (report, None);
        }
    };
    let normalized = parsed.normalized();
    let mut syntax = Check::ok("syntax");
    if parsed.quoted {
        syntax = Check::new("syntax", Status::Warn)
            .detail("valid, but the quoted local part is refused by many web forms and some servers")
            .fix("ask the recipient for an address without quotes if there is one");
    } else if normalized != input.trim() {
        syntax = syntax.detail(format!("normalised to {normalized}"));
    }
    report.push(syntax);
    if parsed.needs_smtputf8() {
        report.push(
            Check::new("smtputf8", Status::Info)
                .detail("non-ASCII local part: the receiving server must support SMTPUTF8 (RFC 6531)"),
        );
    } else if parsed.idn {
        report
            .push(Check::new("idna", Status::Info).detail(format!("international domain, sent as {}", parsed.domain)));
    }
    if parsed.is_literal() {
        report.push(
            Check::new("literal", Status::Warn)
                .detail("address literal: no MX, and most providers refuse mail to one")
                .fix("use the recipient's domain name"),
        );
    }
    if options.typo && !parsed.is_literal() {
        match typo::suggest_domain(&parsed.domain) {
            Some(better) => {
                let local = normalized.rsplit_once('@').map(|(l, _)| l).unwrap_or(&parsed.local);
                let suggestion = format!("{local}@{better}");
                report.push(
                    Check::new("typo", Status::Warn)
                        .detail(format!("{} looks like a typo of {better}", parsed.domain))
                        .fix(format!("did you mean {suggestion}?"))
                        .suggestion(suggestion),
                );
            }
            None => report.push(Check::ok("typo")),
        }
    }
    if options.roles {
        match account_kind(&parsed.local) {
            Account::Person => {}
            Account::Role => report.push(
                Check::new("role", Status::Info)
                    .detail(format!("{} is a role account: read by a team, or by nobody", parsed.local)),
            ),
            Account::NoReply => report.push(
                Check::new("role", Status::Info)
                    .detail(format!("{} is a no-reply address: nobody reads mail sent here", parsed.local)),
            ),
        }
    }
    report.normalized = Some(normalized);
    (report, Some(parsed))
}

/// The recipient domain in DNS: MX (null MX: fail), else A/AAAA (implicit MX), NXDOMAIN: fail,
/// SERVFAIL or timeout: unknown ("could not check", not bad).
pub async fn check_domain_dns(dns: &Dns, domain: &str) -> Check {
    if domain.starts_with('[') {
        return Check::new("domain", Status::Info).detail("address literal: not looked up");
    }
    match dns.mx(domain).await {
        Ok(records) => {
            if records.iter().any(|(_, host)| host.is_empty()) {
                return Check::new("domain", Status::Fail)
                    .detail(format!("{domain} publishes a null MX: it accepts no mail (RFC 7505)"))
                    .fix("the address cannot receive mail; ask for another one");
            }
            // At least one exchange must have an address.
            let mut temporary = None;
            for (_, host) in records.iter().take(5) {
                match dns.addresses(host).await {
                    Ok(ips) => {
                        return Check::ok("domain")
                            .detail(format!("MX {host} ({})", ips.first().map(IpAddr::to_string).unwrap_or_default()));
                    }
                    Err(DnsFailure::Temporary(e)) => temporary = Some(e),
                    Err(_) => {}
                }
            }
            match temporary {
                Some(e) => Check::new("domain", Status::Unknown).detail(format!("could not check the MX hosts: {e}")),
                None => Check::new("domain", Status::Fail)
                    .detail(format!("the MX hosts of {domain} have no address"))
                    .fix("the domain's mail setup is broken; tell the recipient another way"),
            }
        }
        Err(DnsFailure::NoRecords) => match dns.addresses(domain).await {
            Ok(ips) => Check::new("domain", Status::Info).detail(format!(
                "no MX; mail goes to the domain's address {} (implicit MX)",
                ips.first().map(IpAddr::to_string).unwrap_or_default()
            )),
            Err(DnsFailure::Temporary(e)) => {
                Check::new("domain", Status::Unknown).detail(format!("could not check: {e}"))
            }
            Err(_) => Check::new("domain", Status::Fail)
                .detail(format!("{domain} has no MX or A record"))
                .fix("check the domain for a typo"),
        },
        Err(DnsFailure::NxDomain) => Check::new("domain", Status::Fail)
            .detail(format!("{domain} does not exist (NXDOMAIN)"))
            .fix("check the domain for a typo"),
        Err(DnsFailure::Temporary(e)) => Check::new("domain", Status::Unknown).detail(format!("could not check: {e}")),
    }
}

/// Whether the address is on the suppression list (hard bounces, complaints, manual entries;
/// an unsubscribe refuses it for one sender domain only), as far as `scope` sees it: a scoped
/// API key sees only the entries of its domains.
pub async fn check_suppression(store: &dyn Store, scope: &Scope, parsed: &Parsed) -> Check {
    let found = match scope {
        Scope::All => store.suppression(&parsed.key()).await,
        Scope::Domains(_) => store.suppression_entries(&parsed.key(), scope).await.map(|e| e.into_iter().next()),
    };
    match found {
        Ok(None) => Check::ok("suppressed"),
        Ok(Some(s)) if s.scope == crate::store::SuppressionScope::SenderDomain => {
            let from = s.domain.as_ref().map_or("one sender domain", |d| d.as_str());
            Check::new("suppressed", Status::Warn)
                .detail(format!("unsubscribed from the mail of {from} since {}", s.created_at))
                .fix(format!("mail to it from {from} is refused; mail from other senders is not"))
        }
        Ok(Some(s)) => Check::new("suppressed", Status::Fail)
            .detail(format!(
                "on the suppression list since {} ({}{})",
                s.created_at,
                s.reason,
                s.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            ))
            .fix("mail to it is refused; remove it (mailerd suppression remove) only if you know it works again"),
        Err(e) => Check::new("suppressed", Status::Unknown).detail(format!("could not read the suppression list: {e}")),
    }
}

/// Every check of one address: the pure ones, then (when given) DNS and the suppression list.
pub async fn check_full(
    input: &str,
    options: &Options,
    dns: Option<&Dns>,
    store: Option<&dyn Store>,
) -> (CheckReport, Option<Parsed>) {
    check_full_in(input, options, dns, store, &Scope::All).await
}

/// `check_full` with the suppression list as far as `scope` sees it.
pub async fn check_full_in(
    input: &str,
    options: &Options,
    dns: Option<&Dns>,
    store: Option<&dyn Store>,
    scope: &Scope,
) -> (CheckReport, Option<Parsed>) {
    let (mut report, parsed) = check_parsed(input, options);
    if let Some(p) = &parsed {
        if let Some(dns) = dns {
            let c = check_domain_dns(dns, &p.domain).await;
            // Keep DESIGN §3's order: syntax, domain, typo, ...
            let at = report.checks.iter().position(|c| c.name == "typo").unwrap_or(report.checks.len());
            report.checks.insert(at, c);
        }
        if let Some(store) = store {
            report.push(check_suppression(store, scope, p).await);
        }
    }
    (report, parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Result<String, SyntaxError> {
        parse(s).map(|p| p.normalized())
    }

    #[test]
    fn syntax_and_normal_form() {
        assert_eq!(norm("John.Smith@Example.COM").unwrap(), "John.Smith@example.com");
        assert_eq!(norm(" <a@b.example.> ").unwrap(), "a@b.example");
        assert_eq!(norm("\"john\"@example.com").unwrap(), "john@example.com", "needless quotes dropped");
        assert_eq!(norm("\"john smith\"@example.com").unwrap(), "\"john smith\"@example.com");
        assert_eq!(norm("\"a@b\"@example.com").unwrap(), "\"a@b\"@example.com");
        assert_eq!(norm("\"a\\\"b\"@example.com").unwrap(), "\"a\\\"b\"@example.com");
        assert_eq!(norm("user+tag@example.com").unwrap(), "user+tag@example.com");
        assert_eq!(norm("u@[192.0.2.1]").unwrap(), "u@[192.0.2.1]");
        assert_eq!(norm("u@[IPv6:2001:db8::1]").unwrap(), "u@[IPv6:2001:db8::1]");
        assert_eq!(norm("u@bücher.example").unwrap(), "u@xn--bcher-kva.example");
        assert_eq!(norm("δοκιμή@παράδειγμα.δοκιμή").unwrap(), "δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp");
        assert_eq!(norm(""), Err(SyntaxError::Empty));
        assert_eq!(norm("plain"), Err(SyntaxError::NoAt));
        assert_eq!(norm("a@b@c.com"), Err(SyntaxError::ManyAt));
        assert_eq!(norm(".a@b.com"), Err(SyntaxError::BadDots));
        assert_eq!(norm("a..b@b.com"), Err(SyntaxError::BadDots));
        assert_eq!(norm("a.@b.com"), Err(SyntaxError::BadDots));
        assert_eq!(norm("a b@b.com"), Err(SyntaxError::BadLocalChar(' ')));
        assert_eq!(norm("a@localhost"), Err(SyntaxError::Dotless));
        assert_eq!(norm("a@1.2.3.4"), Err(SyntaxError::NumericTld("4".into())));
        assert_eq!(norm("a@[1.2.3.400]"), Err(SyntaxError::BadLiteral));
        assert_eq!(norm("a@-x.com"), Err(SyntaxError::BadLabel("-x".into())));
        assert_eq!(norm("a@x_y.com"), Err(SyntaxError::BadLabel("x_y".into())));
        assert_eq!(norm("\"unterminated@x.com"), Err(SyntaxError::BadQuoted));
        assert_eq!(norm(&format!("{}@x.com", "a".repeat(65))), Err(SyntaxError::LocalTooLong(65)));
        assert!(norm(&format!("{}@x.com", "a".repeat(64))).is_ok());
        let long_domain = format!("{}.com", vec!["a".repeat(63); 3].join("."));
        assert!(matches!(norm(&format!("{}@{long_domain}", "b".repeat(64))), Err(SyntaxError::PathTooLong(_))));
        assert!(matches!(norm(&"x".repeat(5000)), Err(SyntaxError::InputTooLong)));
        assert!(matches!(norm(&format!("a@{}.com", "b".repeat(64))), Err(SyntaxError::BadLabel(_))));
    }

    #[test]
    fn report_for_a_typo_and_roles() {
        let r = check("john@gmial.com", &Options::default());
        assert!(r.passed());
        assert!(!r.ok());
        assert_eq!(r.get("typo").and_then(|c| c.suggestion.as_deref()), Some("john@gmail.com"));
        let r = check("Postmaster@example.com", &Options::default());
        assert_eq!(r.get("role").map(|c| c.status), Some(Status::Info));
        assert!(r.ok());
        let r = check("noreply-billing@example.com", &Options::default());
        assert!(r.get("role").and_then(|c| c.detail.as_deref()).is_some_and(|d| d.contains("no-reply")));
        assert_eq!(account_kind("jane+info"), Account::Person);
        assert_eq!(account_kind("info+x"), Account::Role);
        let r = check("not an address", &Options::default());
        assert!(!r.passed());
        assert!(r.normalized.is_none());
        let r = check("\"john smith\"@example.com", &Options::default());
        assert_eq!(r.get("syntax").map(|c| c.status), Some(Status::Warn));
        let r = check("δοκιμή@example.com", &Options::default());
        assert_eq!(r.get("smtputf8").map(|c| c.status), Some(Status::Info));
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "@",
            "@@",
            "\"",
            "\"\"@x.com",
            "a@",
            "a@.",
            "a@[",
            "a@[]",
            "<>",
            "<",
            "a@x..com",
            "\u{0}@x.com",
            "a@ü",
            "a@xn--",
            "\"\\",
            "a@[IPv6:zz]",
            "ü@ü.ü",
        ] {
            let _ = check(s, &Options::default());
        }
        // Random strings over the characters that matter to the parser.
        let alphabet: Vec<char> = "aZ09.@\"\\[]:-_+ üé\u{0}\t<>()xn-".chars().collect();
        let mut seed = 7u64;
        for _ in 0..20_000 {
            let mut s = String::new();
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            for _ in 0..(seed >> 59) * 3 {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                s.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            let r = check(&s, &Options::default());
            if let Some(n) = &r.normalized {
                // The normal form is a fixed point.
                assert_eq!(parse(n).map(|p| p.normalized()).as_ref(), Ok(n), "{s:?}");
            }
        }
    }
}
