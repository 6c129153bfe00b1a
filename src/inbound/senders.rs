//! Sender ownership for SMTP logins (Postfix's `reject_sender_login_mismatch`): which envelope
//! senders and which From:/Sender: addresses an authenticated user may use.
//!
//! A login owns its own address and what `[[senders]]` lists for it: an address, or a domain
//! with its subdomains. Addresses are compared by mailbox key (`smtp::address::Mailbox::key`:
//! local part lower-cased, domain lower-case A-labels), the key logins and mailboxes are stored
//! under; like those keys, a `+detail` is part of the local part, so `bob+news@` is not `bob@`
//! unless listed. The null reverse path is every login's (bounces and receipts use it).
//! Header addresses are read with mail-parser, which is lenient about header names (`From :`),
//! and every From: and Sender: field counts, so a second From: cannot hide behind a first; a
//! field that names no address we can read is not owned either (nothing proves it is).
//! Standards: RFC 5321 §4.1.1.2 (reverse path), RFC 5322 §3.6.2 (From, Sender), RFC 6409
//! (a submission server may check that the sender is the authenticated user).
//! The values decided with, `Senders` and `Grant`, are `config`'s (`config/senders.rs`, read
//! from `[[senders]]`); this file adds the methods that decide.
//! Must not: do I/O, or write reply text (the caller maps a refusal to `inbound::replies`).

use std::fmt;

use mail_parser::{HeaderName, HeaderValue, MessageParser};

use crate::config::{Grant, Senders};
use crate::smtp::address::{Domain, Mailbox, ReversePath};

impl Grant {
    fn covers(&self, address: &Mailbox) -> bool {
        match self {
            Grant::Address(m) => m.key() == address.key(),
            Grant::Domain(d) => within(address.domain(), d),
        }
    }
}

/// `domain` is `parent` or a subdomain of it (never for address literals).
fn within(domain: &Domain, parent: &Domain) -> bool {
    domain == parent
        || (!parent.is_address_literal()
            && domain.as_str().strip_suffix(parent.as_str()).is_some_and(|head| head.ends_with('.')))
}

impl Senders {
    /// Whether `login` may use `address` (as envelope sender or in From:/Sender:).
    pub fn owns(&self, login: &str, address: &Mailbox) -> bool {
        !self.login_match
            || address.key() == login
            || self.grants.get(login).is_some_and(|grants| grants.iter().any(|g| g.covers(address)))
    }

    /// Whether `login` may give `from` as MAIL FROM; `<>` is always allowed.
    pub fn may_send_as(&self, login: &str, from: &ReversePath) -> bool {
        match from {
            ReversePath::Null => true,
            ReversePath::Mailbox(m) => self.owns(login, m),
        }
    }

    /// The first From:/Sender: address of `message` that `login` does not own.
    pub fn header_mismatch(&self, login: &str, message: &[u8]) -> Option<NotOwned> {
        if !self.login_match {
            return None;
        }
        let parsed = MessageParser::default().parse_headers(message)?;
        for header in parsed.headers() {
            let field = match header.name {
                HeaderName::From => HeaderField::From,
                HeaderName::Sender => HeaderField::Sender,
                _ => continue,
            };
            let HeaderValue::Address(list) = &header.value else {
                return Some(NotOwned { field, address: None });
            };
            let mut named = false;
            for addr in list.iter() {
                named = true;
                let written = addr.address().map(str::trim);
                match written.and_then(|a| Mailbox::parse(a).ok()) {
                    Some(m) if self.owns(login, &m) => {}
                    _ => return Some(NotOwned { field, address: written.map(str::to_string) }),
                }
            }
            if !named {
                return Some(NotOwned { field, address: None });
            }
        }
        None
    }
}

/// A header field that says who wrote or sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderField {
    From,
    Sender,
}

impl HeaderField {
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderField::From => "From",
            HeaderField::Sender => "Sender",
        }
    }
}

/// A From:/Sender: field the login does not own; `address` as written (None: none readable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotOwned {
    pub field: HeaderField,
    pub address: Option<String>,
}

/// For the log line.
impl fmt::Display for NotOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.address {
            Some(a) => write!(f, "{}: {a:?} not owned", self.field.as_str()),
            None => write!(f, "{}: no readable address", self.field.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOB: &str = "bob@example.com";
    const APP: &str = "app@example.com";

    fn senders() -> Senders {
        let mut s = Senders::default();
        let grants = ["example.org", "Alerts@Example.NET", "[127.0.0.1]"];
        s.grants.insert(APP.into(), grants.iter().map(|g| Grant::parse(g).unwrap()).collect());
        s
    }

    fn m(text: &str) -> Mailbox {
        Mailbox::parse(text).unwrap()
    }

    #[test]
    fn a_login_owns_its_own_address_compared_as_a_mailbox_key() {
        let s = senders();
        assert!(s.owns(BOB, &m("bob@example.com")));
        assert!(s.owns(BOB, &m("BOB@Example.COM")), "local part as mailbox keys: case-folded");
        assert!(s.owns(BOB, &m("bob@example.com.")), "a trailing root dot is no other domain");
        assert!(!s.owns(BOB, &m("bob+news@example.com")), "+detail is part of the key, as for mailboxes");
        assert!(!s.owns(BOB, &m("alice@example.com")), "another user of the same domain");
        assert!(!s.owns(BOB, &m("bob@example.org")), "the same local part elsewhere");
        assert!(!s.owns(BOB, &m("bob@sub.example.com")), "no subdomains for the login's own address");
    }

    #[test]
    fn grants_are_addresses_or_domains_with_their_subdomains() {
        let s = senders();
        assert!(s.owns(APP, &m("app@example.com")));
        assert!(s.owns(APP, &m("news@example.org")));
        assert!(s.owns(APP, &m("x@Mail.Example.ORG")), "a subdomain");
        assert!(!s.owns(APP, &m("x@badexample.org")), "a suffix that is not a subdomain");
        assert!(!s.owns(APP, &m("x@example.org.evil.test")));
        assert!(s.owns(APP, &m("ALERTS@example.net")));
        assert!(!s.owns(APP, &m("other@example.net")), "an address grant is that address only");
        assert!(s.owns(APP, &m("x@[127.0.0.1]")));
        assert!(!s.owns(APP, &m("x@[127.0.0.2]")));
        // Grants belong to their login only.
        assert!(!s.owns(BOB, &m("news@example.org")));
    }

    #[test]
    fn null_sender_is_allowed_and_the_switch_turns_the_check_off() {
        let mut s = senders();
        assert!(s.may_send_as(BOB, &ReversePath::Null));
        assert!(!s.may_send_as(BOB, &ReversePath::Mailbox(m("ceo@bank.test"))));
        s.login_match = false;
        assert!(s.may_send_as(BOB, &ReversePath::Mailbox(m("ceo@bank.test"))));
        assert_eq!(s.header_mismatch(BOB, b"From: ceo@bank.test\r\n\r\nx\r\n"), None);
    }

    #[test]
    fn grant_parsing() {
        assert_eq!(Grant::parse(" Example.ORG "), Ok(Grant::Domain(Domain::parse("example.org").unwrap())));
        assert!(matches!(Grant::parse("a@example.org"), Ok(Grant::Address(_))));
        assert!(Grant::parse("@example.org").is_err(), "write a domain without @");
        assert!(Grant::parse("not a domain").is_err());
        assert!(Grant::parse("").is_err());
    }

    fn mismatch(message: &str) -> Option<NotOwned> {
        senders().header_mismatch(BOB, message.as_bytes())
    }

    fn not_owned(field: HeaderField, address: &str) -> Option<NotOwned> {
        Some(NotOwned { field, address: Some(address.into()) })
    }

    #[test]
    fn header_addresses() {
        let received = "Received: from client.test by mx.example.com; Sat, 28 Nov 2026 10:00:00 +0000\r\n";
        assert_eq!(mismatch(&format!("{received}From: Bob <bob@example.com>\r\nSubject: x\r\n\r\nhi\r\n")), None);
        assert_eq!(mismatch("From: \"The CEO\" <BOB@example.com>\r\n\r\n"), None, "a display name is not checked");
        assert_eq!(mismatch("From: bob@example.com (Bob)\r\n\r\n"), None);
        assert_eq!(mismatch("Subject: no From at all\r\n\r\n"), None, "a missing From is the checklist's");
        assert_eq!(mismatch("From: CEO <ceo@bank.test>\r\n\r\n"), not_owned(HeaderField::From, "ceo@bank.test"));
        // Every address of every From and Sender field.
        assert_eq!(
            mismatch("From: bob@example.com, ceo@bank.test\r\n\r\n"),
            not_owned(HeaderField::From, "ceo@bank.test")
        );
        assert_eq!(
            mismatch("From: bob@example.com\r\nFrom: ceo@bank.test\r\n\r\n"),
            not_owned(HeaderField::From, "ceo@bank.test")
        );
        assert_eq!(
            mismatch("From: bob@example.com\r\nSender: ceo@bank.test\r\n\r\n"),
            not_owned(HeaderField::Sender, "ceo@bank.test")
        );
        assert_eq!(mismatch("From: bob@example.com\r\nSender: BOB@example.com\r\n\r\n"), None);
        assert_eq!(
            mismatch("From: team: bob@example.com, ceo@bank.test;\r\n\r\n"),
            not_owned(HeaderField::From, "ceo@bank.test"),
            "group members count"
        );
        // Folded, odd spacing and case in the field name.
        assert_eq!(mismatch("FROM :\r\n  CEO <ceo@bank.test>\r\n\r\n"), not_owned(HeaderField::From, "ceo@bank.test"));
        // Bare LF line ends.
        assert_eq!(mismatch("From: ceo@bank.test\n\nhi\n"), not_owned(HeaderField::From, "ceo@bank.test"));
        // The address is what counts, not a display name that looks like one.
        assert_eq!(
            mismatch("From: bob@example.com <ceo@bank.test>\r\n\r\n"),
            not_owned(HeaderField::From, "ceo@bank.test")
        );
        assert_eq!(
            mismatch("From: \"bob@example.com\" <ceo@bank.test>\r\n\r\n"),
            not_owned(HeaderField::From, "ceo@bank.test")
        );
        assert_eq!(
            mismatch("From: =?utf-8?q?bob=40example.com?= <ceo@bank.test>\r\n\r\n"),
            not_owned(HeaderField::From, "ceo@bank.test")
        );
        // Headers end at the first empty line: a From in the body is text.
        assert_eq!(mismatch("From: bob@example.com\r\n\r\nFrom: ceo@bank.test\r\n"), None);
    }

    #[test]
    fn unreadable_header_addresses_are_not_owned() {
        for message in ["From: just a name\r\n\r\n", "From:\r\n\r\n", "From: undisclosed:;\r\n\r\n"] {
            let found = mismatch(message);
            assert!(found.as_ref().is_some_and(|n| n.field == HeaderField::From), "{message:?}: {found:?}");
        }
    }
}
