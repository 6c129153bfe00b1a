//! Envelope addresses: `Domain`, `Mailbox`, `ReversePath`, parsed strictly from SMTP paths.
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
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(AddressError::BadDomain)?;
            let ip: IpAddr = match inner.get(..5) {
                Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
                    inner.get(5..).and_then(|v6| v6.parse().ok()).ok_or(AddressError::BadDomain)?
                }
                _ => inner.parse::<std::net::Ipv4Addr>().map_err(|_| AddressError::BadDomain)?.into(),
            };
            return Ok(Domain(match ip {
                IpAddr::V4(v4) => format!("[{v4}]"),
                IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
            }));
        }
        // A single trailing dot is the root label, not part of the name (Postfix drops it too).
        let text = text.strip_suffix('.').unwrap_or(text);
        if text.is_empty() || text.len() > 255 {
            return Err(AddressError::BadDomain);
        }
        let ascii = if text.is_ascii() {
            text.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(text).map_err(|_| AddressError::BadDomain)?
        };
        if ascii.is_empty() || ascii.len() > 255 {
            return Err(AddressError::BadDomain);
        }
        for label in ascii.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return Err(AddressError::BadDomain);
            }
        }
        Ok(Domain(ascii))
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
        if is_dot_string(&self.local) {
            write!(f, "{}@{}", self.local, self.domain)
        } else {
            let quoted = self.local.replace('\\', "\\\\").replace('"', "\\\"");
            write!(f, "\"{}\"@{}", quoted, self.domain)
        }
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
    let (local, domain) = if text.starts_with('"') {
        let (local, consumed) = parse_quoted(text)?;
        let rest = text.get(consumed..).ok_or(AddressError::BadLocalPart)?;
        let domain = rest.strip_prefix('@').ok_or(AddressError::MissingDomain)?;
        (local, domain)
    } else {
        let at = text.rfind('@').ok_or(AddressError::MissingDomain)?;
        let (local, domain) = text.split_at(at);
        if !is_dot_string(local) {
            return Err(AddressError::BadLocalPart);
        }
        (local.to_string(), domain.get(1..).unwrap_or(""))
    };
    if local.is_empty() || local.len() > 64 {
        return Err(if local.is_empty() { AddressError::BadLocalPart } else { AddressError::TooLong });
    }
    Ok(Mailbox { local, domain: Domain::parse(domain)? })
}

/// Parses a quoted-string at the start of `text`; returns its content and the bytes consumed.
fn parse_quoted(text: &str) -> Result<(String, usize), AddressError> {
    let mut out = String::new();
    let mut chars = text.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => match chars.next() {
                Some((_, e)) if (' '..='~').contains(&e) => out.push(e),
                _ => return Err(AddressError::BadLocalPart),
            },
            c if c.is_control() => return Err(AddressError::BadLocalPart),
            c => out.push(c),
        }
    }
    Err(AddressError::BadLocalPart)
}

/// RFC 5321 Dot-string of atext (plus UTF-8 for SMTPUTF8, RFC 6531).
fn is_dot_string(local: &str) -> bool {
    !local.is_empty()
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom.chars().all(|c| {
                    c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || (!c.is_ascii() && !c.is_control())
                })
        })
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
