//! Envelope addresses: `Domain`, `Mailbox`, `ReversePath`, parsed strictly from SMTP paths;
//! and the one RFC 5321 Mailbox grammar in the tree (`parse_addr_spec`, with a `SpecError` that
//! says exactly what is wrong), which the checklist builds its judgements on.
//!
//! Standards: RFC 5321 §4.1.2 (Path, Mailbox, Local-part, address literals), §4.5.3.1 (length
//! limits), RFC 6531 (UTF-8 addresses), RFC 5890/UTS #46 (IDNA: domains are kept as A-labels).
//! Source routes (`@a,@b:user@x`) are accepted and dropped, as §4.1.1.3 and Appendix C ask.
//! `%` and `!` in a local part are plain characters: they never route anywhere.
//! Must not: decide whether an address is local or may be relayed; that is `inbound::policy`.

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

/// Why a path did not parse; the server answers these with 501 5.1.x / 553.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    #[error("path must be enclosed in <>")]
    MissingBrackets,
    #[error("bad source route")]
    BadRoute,
    #[error("missing @domain")]
    MissingDomain,
    #[error("bad local part")]
    BadLocalPart,
    #[error("bad domain")]
    BadDomain,
    #[error("address too long")]
    TooLong,
    #[error("non-ASCII address without SMTPUTF8")]
    NeedsSmtpUtf8,
}

/// A domain in normalised form: lower case, A-labels, no trailing dot; or an address literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Parses a domain name or an address literal (`[192.0.2.1]`, `[IPv6:::1]`).
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        parse_domain(text).map(|(d, _)| d).map_err(|_| AddressError::BadDomain)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_address_literal(&self) -> bool {
        self.0.starts_with('[')
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// JSON and other outputs show the normalised form.
impl serde::Serialize for Domain {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// `local@domain`. `local` holds the semantic local part (quotes and escapes removed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox {
    local: String,
    domain: Domain,
}

impl Mailbox {
    pub fn new(local: impl Into<String>, domain: Domain) -> Self {
        Self { local: local.into(), domain }
    }

    /// Parses a bare `local@domain` (no brackets), as in configuration and the CLI.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        parse_mailbox(text, true)
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The lookup key for mailboxes and aliases: local part lower-cased, domain normalised.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local.to_lowercase(), self.domain)
    }

    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii()
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_mailbox(f, &self.local, self.domain.as_str())
    }
}

/// Writes `local@domain` as RFC 5321 spells it: the local part quoted (`\` and `"` escaped)
/// only when it is not a Dot-string.
pub fn write_mailbox(out: &mut impl fmt::Write, local: &str, domain: &str) -> fmt::Result {
    if is_dot_string(local) {
        // Piece by piece: `write!` would interpret a format string for each of these, and a
        // message's addresses are written several times on the way in.
        out.write_str(local)?;
        out.write_char('@')?;
        out.write_str(domain)
    } else {
        let quoted = local.replace('\\', "\\\\").replace('"', "\\\"");
        write!(out, "\"{quoted}\"@{domain}")
    }
}

/// The MAIL FROM path: the null reverse path `<>` is a variant, never an empty string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversePath {
    Null,
    Mailbox(Mailbox),
}

impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => Ok(()),
            ReversePath::Mailbox(m) => m.fmt(f),
        }
    }
}

/// Parses `<>` or `<[route:]mailbox>` from MAIL FROM.
pub fn parse_reverse_path(text: &str, utf8: bool) -> Result<ReversePath, AddressError> {
    let inner = strip_brackets(text)?;
    if inner.is_empty() {
        return Ok(ReversePath::Null);
    }
    parse_path_inner(inner, utf8).map(ReversePath::Mailbox)
}

/// Parses `<[route:]mailbox>` from RCPT TO. (`<Postmaster>` is handled by the caller.)
pub fn parse_forward_path(text: &str, utf8: bool) -> Result<Mailbox, AddressError> {
    let inner = strip_brackets(text)?;
    parse_path_inner(inner, utf8)
}

fn strip_brackets(text: &str) -> Result<&str, AddressError> {
    let inner = text.strip_prefix('<').and_then(|t| t.strip_suffix('>')).ok_or(AddressError::MissingBrackets)?;
    if inner.len() > 256 {
        return Err(AddressError::TooLong);
    }
    Ok(inner)
}

fn parse_path_inner(inner: &str, utf8: bool) -> Result<Mailbox, AddressError> {
    let mailbox = if inner.starts_with('@') {
        // A-d-l: "@one,@two:" — validate each hop, then ignore it.
        let colon = route_end(inner).ok_or(AddressError::BadRoute)?;
        let (route, rest) = inner.split_at(colon);
        for hop in route.split(',') {
            let hop = hop.strip_prefix('@').ok_or(AddressError::BadRoute)?;
            Domain::parse(hop).map_err(|_| AddressError::BadRoute)?;
        }
        rest.get(1..).ok_or(AddressError::BadRoute)?
    } else {
        inner
    };
    parse_mailbox(mailbox, utf8)
}

/// The colon that ends a source route, outside any quoted string.
fn route_end(text: &str) -> Option<usize> {
    text.find(':').filter(|&i| !text.get(..i).unwrap_or("").contains('"'))
}

fn parse_mailbox(text: &str, utf8: bool) -> Result<Mailbox, AddressError> {
    if !utf8 && !text.is_ascii() {
        return Err(AddressError::NeedsSmtpUtf8);
    }
    let spec = parse_addr_spec(text, None)?;
    Ok(Mailbox { local: spec.local, domain: spec.domain })
}

// --- the Mailbox grammar (RFC 5321 §4.1.2), with exact reasons ---

/// What exactly is wrong with `local@domain`; the envelope parser folds these into
/// [`AddressError`], the checklist explains each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// No `@` (outside quotes).
    NoAt,
    /// More than one `@` outside quotes.
    ManyAt,
    EmptyLocal,
    /// The local part's length in octets (over 64).
    LocalTooLong(usize),
    /// An empty atom: a leading, trailing or double dot.
    BadDots,
    /// A character that is not atext, unquoted.
    BadLocalChar(char),
    /// An unterminated quoted string, or a bad character or escape in one.
    BadQuoted,
    /// Something other than `@domain` after the closing quote.
    AfterQuote,
    EmptyDomain,
    /// The domain's length in octets (over 255).
    DomainTooLong(usize),
    /// A label that is not letters, digits and inner hyphens of 1 to 63 octets.
    BadLabel(String),
    /// Non-ASCII labels that are not valid IDNA.
    BadIdna,
    /// `[...]` that is not `[IPv4]` or `[IPv6:...]`.
    BadLiteral,
}

impl From<SpecError> for AddressError {
    fn from(e: SpecError) -> AddressError {
        match e {
            SpecError::NoAt | SpecError::AfterQuote => AddressError::MissingDomain,
            SpecError::ManyAt
            | SpecError::EmptyLocal
            | SpecError::BadDots
            | SpecError::BadLocalChar(_)
            | SpecError::BadQuoted => AddressError::BadLocalPart,
            SpecError::LocalTooLong(_) => AddressError::TooLong,
            SpecError::EmptyDomain
            | SpecError::DomainTooLong(_)
            | SpecError::BadLabel(_)
            | SpecError::BadIdna
            | SpecError::BadLiteral => AddressError::BadDomain,
        }
    }
}

/// `local@domain` read by the Mailbox grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrSpec {
    /// The semantic local part (quotes and escapes removed, case kept).
    pub local: String,
    /// The local part must be written quoted (it is not a Dot-string).
    pub needs_quotes: bool,
    pub domain: Domain,
    /// The domain was given with non-ASCII labels (an IDN).
    pub idn: bool,
}

/// Parses `local@domain` (no brackets, no route): a Dot-string or a Quoted-string, `@`, a
/// domain or an address literal. `quoted_limit` stops reading a quoted local part as soon as
/// it holds more octets than that (`LocalTooLong`), for callers that read untrusted text.
pub fn parse_addr_spec(text: &str, quoted_limit: Option<usize>) -> Result<AddrSpec, SpecError> {
    let (local, domain, needs_quotes) = if text.starts_with('"') {
        let (local, used) = parse_quoted(text, quoted_limit)?;
        let rest = text.get(used..).ok_or(SpecError::BadQuoted)?;
        let domain = match rest.strip_prefix('@') {
            Some(d) => d,
            None if rest.is_empty() => return Err(SpecError::NoAt),
            None => return Err(SpecError::AfterQuote),
        };
        let needed = !is_dot_string(&local);
        (local, domain, needed)
    } else {
        let (local, domain) = text.split_once('@').ok_or(SpecError::NoAt)?;
        if domain.contains('@') {
            return Err(SpecError::ManyAt);
        }
        check_dot_string(local)?;
        (local.to_string(), domain, false)
    };
    if local.is_empty() {
        return Err(SpecError::EmptyLocal);
    }
    if local.len() > 64 {
        return Err(SpecError::LocalTooLong(local.len()));
    }
    let (domain, idn) = parse_domain(domain)?;
    Ok(AddrSpec { local, needs_quotes, domain, idn })
}

/// A domain name (to lower-case A-labels, one trailing dot dropped) or an address literal;
/// also says whether the name was an IDN.
pub fn parse_domain(text: &str) -> Result<(Domain, bool), SpecError> {
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(SpecError::BadLiteral)?;
        let ip: IpAddr = match inner.get(..5) {
            Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
                inner.get(5..).and_then(|v6| v6.parse().ok()).ok_or(SpecError::BadLiteral)?
            }
            _ => inner.parse::<std::net::Ipv4Addr>().map_err(|_| SpecError::BadLiteral)?.into(),
        };
        let literal = match ip {
            IpAddr::V4(v4) => format!("[{v4}]"),
            IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
        };
        return Ok((Domain(literal), false));
    }
    // A single trailing dot is the root label, not part of the name (Postfix drops it too).
    let text = text.strip_suffix('.').unwrap_or(text);
    if text.is_empty() {
        return Err(SpecError::EmptyDomain);
    }
    if text.len() > 255 {
        return Err(SpecError::DomainTooLong(text.len()));
    }
    let idn = !text.is_ascii();
    let ascii =
        if idn { idna::domain_to_ascii(text).map_err(|_| SpecError::BadIdna)? } else { text.to_ascii_lowercase() };
    if ascii.len() > 255 {
        return Err(SpecError::DomainTooLong(ascii.len()));
    }
    for label in ascii.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(SpecError::BadLabel(label.chars().take(70).collect()));
        }
    }
    Ok((Domain(ascii), idn))
}

/// Parses a quoted-string at the start of `text` (UTF-8 allowed, RFC 6531); returns its
/// content and the bytes consumed.
fn parse_quoted(text: &str, limit: Option<usize>) -> Result<(String, usize), SpecError> {
    let mut out = String::new();
    let mut chars = text.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => match chars.next() {
                Some((_, e)) if (' '..='~').contains(&e) => out.push(e),
                _ => return Err(SpecError::BadQuoted),
            },
            c if c.is_control() => return Err(SpecError::BadQuoted),
            c => out.push(c),
        }
        if limit.is_some_and(|max| out.len() > max) {
            return Err(SpecError::LocalTooLong(out.len()));
        }
    }
    Err(SpecError::BadQuoted)
}

/// RFC 5321 atext (plus UTF-8 for SMTPUTF8, RFC 6531).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || (!c.is_ascii() && !c.is_control())
}

/// Whether `local` is an RFC 5321 Dot-string (else it must be quoted).
pub fn is_dot_string(local: &str) -> bool {
    check_dot_string(local).is_ok()
}

fn check_dot_string(local: &str) -> Result<(), SpecError> {
    if local.is_empty() {
        return Err(SpecError::EmptyLocal);
    }
    for atom in local.split('.') {
        if atom.is_empty() {
            return Err(SpecError::BadDots);
        }
        if let Some(c) = atom.chars().find(|&c| !is_atext(c)) {
            return Err(SpecError::BadLocalChar(c));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(s: &str) -> Result<String, AddressError> {
        parse_forward_path(s, false).map(|m| m.key())
    }

    #[test]
    fn plain_and_case_folding() {
        assert_eq!(fwd("<User@Example.COM>").unwrap(), "user@example.com");
        assert_eq!(fwd("<user@example.com.>").unwrap(), "user@example.com");
        assert_eq!(fwd("user@example.com"), Err(AddressError::MissingBrackets));
        assert_eq!(fwd("<user>"), Err(AddressError::MissingDomain));
        assert_eq!(fwd("<@example.com>"), Err(AddressError::BadRoute));
        assert_eq!(fwd("<a..b@example.com>"), Err(AddressError::BadLocalPart));
        assert_eq!(fwd("<a@-bad.example>"), Err(AddressError::BadDomain));
        assert_eq!(fwd("<a@exa mple.com>"), Err(AddressError::BadDomain));
    }

    #[test]
    fn relay_tricks_keep_the_real_domain() {
        // % is a plain character of the local part, never a routing operator.
        let m = parse_forward_path("<user%other.example@local.test>", false).unwrap();
        assert_eq!((m.local(), m.domain().as_str()), ("user%other.example", "local.test"));
        // A source route is dropped: the mailbox is the last part.
        let m = parse_forward_path("<@local.test:user@other.example>", false).unwrap();
        assert_eq!(m.domain().as_str(), "other.example");
        let m = parse_forward_path("<@a.test,@b.test:user@other.example>", false).unwrap();
        assert_eq!(m.domain().as_str(), "other.example");
        // A quoted local part may contain @, but the domain is after the closing quote.
        let m = parse_forward_path("<\"user@other.example\"@local.test>", false).unwrap();
        assert_eq!((m.local(), m.domain().as_str()), ("user@other.example", "local.test"));
        assert_eq!(m.to_string(), "\"user@other.example\"@local.test");
        // Bang paths are plain local parts too.
        let m = parse_forward_path("<other.example!user@local.test>", false).unwrap();
        assert_eq!(m.domain().as_str(), "local.test");
    }

    #[test]
    fn idna_and_literals() {
        let m = parse_forward_path("<user@bücher.example>", true).unwrap();
        assert_eq!(m.domain().as_str(), "xn--bcher-kva.example");
        assert_eq!(parse_forward_path("<user@bücher.example>", false), Err(AddressError::NeedsSmtpUtf8));
        let m = parse_forward_path("<u@[127.0.0.1]>", false).unwrap();
        assert!(m.domain().is_address_literal());
        assert!(parse_forward_path("<u@[IPv6:::1]>", false).is_ok());
        assert!(parse_forward_path("<u@[300.1.1.1]>", false).is_err());
    }

    #[test]
    fn null_reverse_path_and_limits() {
        assert_eq!(parse_reverse_path("<>", false), Ok(ReversePath::Null));
        let long = format!("<{}@example.com>", "a".repeat(65));
        assert_eq!(fwd(&long), Err(AddressError::TooLong));
        let huge = format!("<a@{}.com>", "b".repeat(300));
        assert_eq!(fwd(&huge), Err(AddressError::TooLong));
    }
}
