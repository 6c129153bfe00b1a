//! THE reason table: why a message could not be delivered, whether that makes the address
//! itself bad (hard) or not (soft), and what a person should do about it.
//!
//! Names are the Sisimai reason names (the de-facto taxonomy of bounce reasons), so
//! `serde(rename_all = "lowercase")` gives `"userunknown"`, `"mailboxfull"`, ...
//! [`Reason::from_enhanced_status`] maps RFC 3463 enhanced status codes to a reason.
//!
//! Shared by DSN generation (`bounce/`, we write) and bounce parsing (`feedback/`, we read):
//! advice text is written here and nowhere else (DESIGN §2 rule 4).
//! Must not: depend on `feedback/`, the store, the config or any I/O.

use serde::{Deserialize, Serialize};

/// Why a message was not delivered (or, for the non-bounce kinds, what the report is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// The recipient address does not exist (5.1.1).
    UserUnknown,
    /// The recipient domain does not exist or has no mail host (5.1.2, 5.4.4).
    HostUnknown,
    /// The recipient mailbox is over quota (5.2.2, 4.2.2).
    MailboxFull,
    /// The message is larger than the receiving system accepts (5.3.4).
    MesgTooBig,
    /// The message exceeds a per-mailbox or administrative size limit (5.2.3).
    ExceedLimit,
    /// Retried until the queue lifetime ran out, or a delay warning (4.4.7).
    Expired,
    /// The sending host or IP address is refused (block list, client policy).
    Blocked,
    /// A filter on the receiving side refused this message for an existing address.
    Filtered,
    /// The recipient has moved (5.1.6).
    HasMoved,
    /// The receiving server will not relay to this recipient.
    NoRelaying,
    /// The destination accepts no mail at all (null MX).
    NotAccept,
    /// Refused by a policy of the receiving site.
    PolicyViolation,
    /// The envelope sender was refused.
    Rejected,
    /// The sending host has no PTR record and the receiver requires one.
    RequirePtr,
    /// Authentication required, certificate problem or similar.
    SecurityError,
    /// The receiver judged the message to be spam.
    SpamDetected,
    /// Rate limited: too much or too fast.
    Speeding,
    /// The mailbox exists but is disabled or suspended.
    Suspend,
    /// An SMTP command syntax error (5.5.x).
    SyntaxError,
    /// An error of the remote system.
    SystemError,
    /// The remote system is out of disk or queue space (4.3.1).
    SystemFull,
    /// Too many connections, recipients or messages at once.
    TooManyConn,
    /// Routing or network trouble: loops, too many hops, DNS/MX or connection errors.
    NetworkError,
    /// A local delivery program failed on the receiving host.
    MailerError,
    /// The sender failed SPF, DKIM or DMARC checks.
    AuthFailure,
    /// The sending IP's or domain's reputation is too low.
    BadReputation,
    /// The content was refused as malformed or unacceptable.
    ContentError,
    /// STARTTLS could not be negotiated where TLS was required.
    FailedStartTls,
    /// The message breaks RFC 5322 rules.
    NotCompliantRfc,
    /// A virus was found in the message.
    VirusDetected,
    /// An error was seen but its cause is ambiguous.
    OnHold,
    /// The sending service did not try: the recipient is on its suppression list.
    Suppressed,
    /// An auto-reply (RFC 3834); not a bounce.
    Vacation,
    /// An ARF (RFC 5965) feedback report; not a bounce.
    Feedback,
    /// A success report; not a bounce.
    Delivered,
    /// No rule applies.
    Undefined,
}

/// Everything the project says about one [`Reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonInfo {
    pub reason: Reason,
    /// `Some(false)`: never hard. `None`: the reason says the address itself is bad, which is
    /// hard (suppress it) only with a permanent (5) reply class (see [`Reason::is_hard`]).
    pub hard: Option<bool>,
    /// One concrete sentence telling a person what to do.
    pub advice: &'static str,
    /// A short description of the reason.
    pub summary: &'static str,
}

macro_rules! reason_table {
    ($( $variant:ident => $hard:expr, $summary:literal, $advice:literal; )*) => {
        impl Reason {
            /// Every reason, in table order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),*];

            /// The table row for this reason.
            pub fn info(self) -> ReasonInfo {
                match self {
                    $(Reason::$variant => ReasonInfo {
                        reason: Reason::$variant,
                        hard: $hard,
                        advice: $advice,
                        summary: $summary,
                    },)*
                }
            }
        }
    };
}

reason_table! {
    UserUnknown => None, "the recipient address does not exist",
        "Check the address for a typo; if it is right, the mailbox no longer exists: remove it from your list.";
    HostUnknown => None, "the recipient domain does not exist or has no mail server",
        "Check the domain part of the address for a typo; if it is right, the domain receives no mail: remove the address.";
    MailboxFull => Some(false), "the recipient mailbox is full",
        "The recipient's mailbox is full: try again in a few days or contact them another way.";
    MesgTooBig => Some(false), "the message is larger than the receiving server accepts",
        "Send a link instead of the attachment: base64 makes attachments a third larger.";
    ExceedLimit => Some(false), "the message exceeds a size limit of the recipient's mailbox",
        "Make the message smaller (share large files as a link) and send it again.";
    Expired => Some(false), "delivery was retried until the queue lifetime ran out",
        "The receiving server did not answer for days: check the recipient domain's mail servers, then send again.";
    Blocked => Some(false), "the sending server or IP address is refused by the receiver",
        "Your sending IP address is refused: check it against block lists and request delisting, or send through another server.";
    Filtered => Some(false), "a filter at the recipient refused this message",
        "The recipient's filter refused this message: ask the recipient to allow your address, or reach them another way.";
    HasMoved => None, "the recipient has moved to another address",
        "The recipient has a new address: update your list with the address given in the bounce.";
    NoRelaying => Some(false), "the receiving server does not relay for this recipient",
        "The server refused to relay: authenticate to your submission server, or check the recipient domain's MX records.";
    NotAccept => None, "the destination accepts no mail",
        "The recipient domain accepts no mail (null MX or closed): remove the address or contact them another way.";
    PolicyViolation => Some(false), "the message broke a policy of the receiving site",
        "The recipient's site refused the message by policy: read the diagnostic and change the content or attachments that it names.";
    Rejected => Some(false), "the envelope sender was refused",
        "Your sender address or domain was refused: make sure it exists, resolves and is allowed to send (SPF), then retry.";
    RequirePtr => Some(false), "the sending host has no reverse DNS (PTR) record",
        "Give your sending IP address a PTR record whose name resolves back to the same address.";
    SecurityError => Some(false), "a security check failed (authentication, certificate)",
        "A security check failed: check the sending account's credentials and the server's TLS certificate.";
    SpamDetected => Some(false), "the receiver judged the message to be spam",
        "The message was taken for spam: remove spam-like wording and links, and sign it with DKIM.";
    Speeding => Some(false), "the sender was rate limited",
        "You sent too much too fast: slow down your sending rate to this domain and retry later.";
    Suspend => Some(false), "the recipient mailbox is disabled or suspended",
        "The mailbox is disabled: stop sending to it for now and contact the recipient another way.";
    SyntaxError => Some(false), "an SMTP command was malformed",
        "An SMTP command was refused as malformed: check the sending software's version and configuration.";
    SystemError => Some(false), "the remote mail system had an internal error",
        "The recipient's mail system failed: wait and send again; if it persists, tell their postmaster.";
    SystemFull => Some(false), "the remote mail system is out of storage",
        "The recipient's server is out of disk space: wait and send again later.";
    TooManyConn => Some(false), "too many connections, recipients or messages at once",
        "Open fewer connections and send fewer recipients per message to this domain, then retry.";
    NetworkError => Some(false), "routing or network trouble (loop, DNS, connection)",
        "Delivery failed on the network (mail loop, DNS or connection): check the recipient domain's MX records and routing.";
    MailerError => Some(false), "a local delivery program failed on the receiving host",
        "A delivery program at the recipient's server failed: send again later or tell their postmaster.";
    AuthFailure => Some(false), "the sender failed SPF, DKIM or DMARC checks",
        "Your message failed SPF, DKIM or DMARC: publish SPF for your sending IP and sign with DKIM aligned to the From domain.";
    BadReputation => Some(false), "the sending IP or domain has a bad reputation",
        "Your sending IP or domain has a poor reputation: send only to opted-in recipients and slow down to rebuild it.";
    ContentError => Some(false), "the content was refused as malformed",
        "The message content was refused as malformed: check its MIME structure and headers.";
    FailedStartTls => Some(false), "STARTTLS could not be negotiated",
        "TLS with the receiving server could not be set up or verified as required (no STARTTLS, a certificate not valid for the server's name or matching none of its DANE TLSA records, DNSSEC answers that did not validate, or a server outside the domain's MTA-STS policy), so the message was not sent in the clear: the recipient's postmaster must fix their TLS or policy; if the requirement is yours, check your TLS versions, ciphers and trusted CAs.";
    NotCompliantRfc => Some(false), "the message breaks RFC 5322",
        "The message breaks RFC 5322 (duplicate headers, long lines, bad fields): fix the software that builds it.";
    VirusDetected => Some(false), "a virus was found in the message",
        "A virus was found in the message: scan the attachments, remove the infected file and send again.";
    OnHold => Some(false), "an error was reported but its cause is unclear",
        "The cause of the failure is unclear: read the diagnostic text and retry later.";
    Suppressed => Some(false), "the sending service did not try: the address is suppressed",
        "The address is on a suppression list: remove it there only if you are sure it works again.";
    Vacation => Some(false), "an automatic reply, not a bounce",
        "This is an automatic reply: the message was delivered; nothing to do.";
    Feedback => Some(false), "a feedback (complaint) report, not a bounce",
        "A recipient complained: stop sending to this address and check how it was subscribed.";
    Delivered => Some(false), "a success report, not a bounce",
        "The message was delivered; nothing to do.";
    Undefined => Some(false), "no rule explains this failure",
        "No known cause: read the diagnostic text, and ask the recipient's postmaster if it persists.";
}

impl Reason {
    /// The Sisimai name (`"userunknown"`), as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UserUnknown => "userunknown",
            Reason::HostUnknown => "hostunknown",
            Reason::MailboxFull => "mailboxfull",
            Reason::MesgTooBig => "mesgtoobig",
            Reason::ExceedLimit => "exceedlimit",
            Reason::Expired => "expired",
            Reason::Blocked => "blocked",
            Reason::Filtered => "filtered",
            Reason::HasMoved => "hasmoved",
            Reason::NoRelaying => "norelaying",
            Reason::NotAccept => "notaccept",
            Reason::PolicyViolation => "policyviolation",
            Reason::Rejected => "rejected",
            Reason::RequirePtr => "requireptr",
            Reason::SecurityError => "securityerror",
            Reason::SpamDetected => "spamdetected",
            Reason::Speeding => "speeding",
            Reason::Suspend => "suspend",
            Reason::SyntaxError => "syntaxerror",
            Reason::SystemError => "systemerror",
            Reason::SystemFull => "systemfull",
            Reason::TooManyConn => "toomanyconn",
            Reason::NetworkError => "networkerror",
            Reason::MailerError => "mailererror",
            Reason::AuthFailure => "authfailure",
            Reason::BadReputation => "badreputation",
            Reason::ContentError => "contenterror",
            Reason::FailedStartTls => "failedstarttls",
            Reason::NotCompliantRfc => "notcompliantrfc",
            Reason::VirusDetected => "virusdetected",
            Reason::OnHold => "onhold",
            Reason::Suppressed => "suppressed",
            Reason::Vacation => "vacation",
            Reason::Feedback => "feedback",
            Reason::Delivered => "delivered",
            Reason::Undefined => "undefined",
        }
    }

    /// Parses a Sisimai name; `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.as_str() == name)
    }

    /// Hard or soft, given the reply class (`'4'`/`'5'` of the status or reply code) when known.
    /// DESIGN §3: hard only when the address itself is bad; `notaccept` is hard only with 5xx.
    pub fn is_hard(self, class: Option<char>) -> Option<bool> {
        match self.info().hard {
            Some(h) => Some(h),
            None => class.map(|c| c == '5'),
        }
    }

    /// RFC 3463 enhanced status code (`"5.1.1"`) to reason. `None` for codes that say too
    /// little on their own (`x.0.0`, `x.7.1`, ...): the diagnostic text must decide.
    pub fn from_enhanced_status(status: &str) -> Option<Reason> {
        crate::smtp::reply::EnhancedStatus::parse(status.trim()).and_then(Reason::of_status)
    }

    /// [`Reason::from_enhanced_status`] for a parsed code; 2.x.x is `delivered`.
    pub fn of_status(status: crate::smtp::reply::EnhancedStatus) -> Option<Reason> {
        match status.class {
            2 => return Some(Reason::Delivered),
            4 | 5 => {}
            _ => return None,
        }
        let key = (status.subject, status.detail);
        if status.class == 5 && key == (4, 1) {
            // "No answer from host" cannot be permanent; Microsoft uses 5.4.1 for
            // "recipient address rejected": let the text decide, else a network matter.
            return Some(Reason::NetworkError);
        }
        STATUS_TABLE.iter().find(|(code, _)| *code == key).map(|(_, r)| *r)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Status a DSN gives a recipient whose recorded outcome has none (RFC 3463: other or
/// undefined permanent failure).
pub const STATUS_UNDEFINED: &str = "5.0.0";

/// RFC 3463 (and RFC 3886, 4468, 4954, 5248, 7372, 7504) subject.detail -> reason.
/// Codes missing here (x.0.0, x.5.0, x.7.0, x.7.1, ...) are too generic: the text decides.
const STATUS_TABLE: &[((u16, u16), Reason)] = &[
    ((1, 0), Reason::UserUnknown),
    ((1, 1), Reason::UserUnknown),
    ((1, 2), Reason::HostUnknown),
    ((1, 3), Reason::UserUnknown),
    ((1, 4), Reason::UserUnknown),
    ((1, 5), Reason::UserUnknown),
    ((1, 6), Reason::HasMoved),
    ((1, 7), Reason::Rejected),
    ((1, 8), Reason::Rejected),
    ((1, 9), Reason::UserUnknown),
    ((1, 10), Reason::NotAccept),
    ((2, 0), Reason::Filtered),
    ((2, 1), Reason::Suspend),
    ((2, 2), Reason::MailboxFull),
    ((2, 3), Reason::ExceedLimit),
    ((2, 4), Reason::SystemError),
    ((3, 0), Reason::SystemError),
    ((3, 1), Reason::SystemFull),
    ((3, 2), Reason::SystemError),
    ((3, 3), Reason::SystemError),
    ((3, 4), Reason::MesgTooBig),
    ((3, 5), Reason::SystemError),
    ((4, 0), Reason::NetworkError),
    ((4, 1), Reason::Expired),
    ((4, 2), Reason::NetworkError),
    ((4, 3), Reason::SystemError),
    ((4, 4), Reason::HostUnknown),
    ((4, 5), Reason::TooManyConn),
    ((4, 6), Reason::NetworkError),
    ((4, 7), Reason::Expired),
    ((5, 1), Reason::SyntaxError),
    ((5, 2), Reason::SyntaxError),
    ((5, 3), Reason::TooManyConn),
    ((5, 4), Reason::SyntaxError),
    ((5, 5), Reason::SyntaxError),
    ((5, 6), Reason::SyntaxError),
    ((6, 0), Reason::ContentError),
    ((6, 1), Reason::ContentError),
    ((6, 2), Reason::ContentError),
    ((6, 3), Reason::ContentError),
    ((6, 4), Reason::ContentError),
    ((6, 5), Reason::ContentError),
    ((6, 6), Reason::ContentError),
    ((6, 7), Reason::ContentError),
    ((6, 8), Reason::ContentError),
    ((6, 9), Reason::ContentError),
    ((6, 10), Reason::ContentError),
    ((7, 2), Reason::PolicyViolation),
    ((7, 3), Reason::SecurityError),
    ((7, 4), Reason::SecurityError),
    ((7, 5), Reason::SecurityError),
    ((7, 6), Reason::SecurityError),
    ((7, 7), Reason::SecurityError),
    ((7, 8), Reason::SecurityError),
    ((7, 9), Reason::SecurityError),
    ((7, 10), Reason::FailedStartTls),
    ((7, 11), Reason::FailedStartTls),
    ((7, 12), Reason::SecurityError),
    ((7, 13), Reason::Suspend),
    ((7, 14), Reason::SecurityError),
    ((7, 15), Reason::SecurityError),
    ((7, 16), Reason::SecurityError),
    ((7, 17), Reason::SecurityError),
    ((7, 18), Reason::SecurityError),
    ((7, 19), Reason::SecurityError),
    ((7, 20), Reason::AuthFailure),
    ((7, 21), Reason::AuthFailure),
    ((7, 22), Reason::AuthFailure),
    ((7, 23), Reason::AuthFailure),
    ((7, 24), Reason::AuthFailure),
    ((7, 25), Reason::RequirePtr),
    ((7, 26), Reason::AuthFailure),
    ((7, 27), Reason::NotAccept),
    ((7, 28), Reason::SpamDetected),
    ((7, 29), Reason::AuthFailure),
    ((7, 30), Reason::SecurityError),
];

/// How long delivery to a recipient has been tried: its failed attempts so far and the time
/// since the first failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tried {
    pub attempts: u32,
    pub over: std::time::Duration,
}

/// `45 seconds`, `12 minutes`, `5 hours`, `3 days`.
fn span(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        0..90 => (s, "second"),
        90..5400 => (s / 60, "minute"),
        5400..172_800 => (s / 3600, "hour"),
        _ => (s / 86_400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Reasons whose fix, after a long time, is to look at the recipient domain's servers.
fn unreachable(reason: Reason) -> bool {
    matches!(reason, Reason::Expired | Reason::NetworkError | Reason::Undefined | Reason::OnHold)
}

impl ReasonInfo {
    /// What the failure was, as a deferral says it: `Expired` is what the give-up says, not
    /// what a temporary failure was.
    fn failure(&self) -> &'static str {
        if self.reason == Reason::Expired { "the receiving server could not be reached" } else { self.summary }
    }

    /// The advice for a temporary failure that will be retried (a `deferred` event), worded for
    /// how long delivery has been tried: nothing to do after one attempt; the table's advice
    /// only once it has failed for an hour or more.
    pub fn deferral_advice(&self, tried: Tried) -> String {
        let why = self.failure();
        if tried.attempts <= 1 {
            return format!(
                "The first delivery attempt failed temporarily ({why}); mailerd retries on its own: nothing to do yet."
            );
        }
        if tried.over < std::time::Duration::from_secs(3600) {
            return format!(
                "Attempt {} failed temporarily ({why}), {} after the first; mailerd keeps retrying: act only if it still fails in a few hours.",
                tried.attempts,
                span(tried.over)
            );
        }
        let fix = if unreachable(self.reason) {
            "Check the recipient domain's MX records and whether its mail servers answer."
        } else {
            self.advice
        };
        format!(
            "Still not delivered after {} attempts over {} ({why}); mailerd keeps retrying until the queue lifetime runs out. {fix}",
            tried.attempts,
            span(tried.over)
        )
    }

    /// The advice for a recipient given up after `tried` (an `expired` event or bounce).
    pub fn expiry_advice(&self, tried: Tried) -> String {
        let times = if tried.attempts == 1 { "once".to_string() } else { format!("{} times", tried.attempts) };
        if unreachable(self.reason) {
            return format!(
                "Delivery was tried {times} over {} until the queue lifetime ran out, and the receiving server never accepted it: check the recipient domain's MX records and mail servers, then send again.",
                span(tried.over)
            );
        }
        format!(
            "Delivery was tried {times} over {} and failed each time ({}): {}",
            span(tried.over),
            self.summary,
            self.advice
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tried(attempts: u32, secs: u64) -> Tried {
        Tried { attempts, over: std::time::Duration::from_secs(secs) }
    }

    #[test]
    fn deferral_advice_matches_the_attempts_and_the_time() {
        let expired = Reason::Expired.info();
        let first = expired.deferral_advice(tried(1, 0));
        assert!(first.contains("first delivery attempt") && first.contains("nothing to do yet"), "{first}");
        assert!(!first.contains("days") && !first.contains("queue lifetime"), "{first}");
        let third = expired.deferral_advice(tried(3, 600));
        assert!(third.contains("Attempt 3") && third.contains("10 minutes after the first"), "{third}");
        assert!(!third.contains("days"), "{third}");
        let later = expired.deferral_advice(tried(9, 5 * 3600));
        assert!(later.contains("9 attempts over 5 hours") && later.contains("MX records"), "{later}");
        let days = expired.deferral_advice(tried(20, 3 * 86_400));
        assert!(days.contains("over 3 days"), "{days}");
        // Another reason gives its own fix once it has lasted.
        let full = Reason::MailboxFull.info().deferral_advice(tried(6, 2 * 3600));
        assert!(full.contains(Reason::MailboxFull.info().advice) && full.contains("2 hours"), "{full}");
        assert!(!Reason::MailboxFull.info().deferral_advice(tried(1, 0)).contains(Reason::MailboxFull.info().advice));
    }

    #[test]
    fn expiry_advice_says_how_long_it_was_tried() {
        let short = Reason::Expired.info().expiry_advice(tried(4, 2 * 3600));
        assert!(short.contains("4 times over 2 hours") && !short.contains("days"), "{short}");
        assert!(Reason::Expired.info().expiry_advice(tried(1, 0)).contains("tried once over 0 seconds"));
        let full = Reason::MailboxFull.info().expiry_advice(tried(30, 5 * 86_400));
        assert!(full.contains("30 times over 5 days") && full.contains(Reason::MailboxFull.info().advice), "{full}");
        assert_eq!(span(std::time::Duration::from_secs(1)), "1 second");
        assert_eq!(span(std::time::Duration::from_secs(3600)), "60 minutes");
        assert_eq!(span(std::time::Duration::from_secs(86_400)), "24 hours");
    }

    #[test]
    fn names_round_trip_through_serde() {
        for r in Reason::ALL {
            let json = serde_json::to_string(r).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(Reason::from_name(r.as_str()), Some(*r));
        }
    }

    #[test]
    fn hard_only_for_bad_addresses() {
        assert_eq!(Reason::UserUnknown.is_hard(Some('5')), Some(true));
        // "450 4.1.1 ... unverified address": the receiver could not check the address now.
        assert_eq!(Reason::UserUnknown.is_hard(Some('4')), Some(false));
        assert_eq!(Reason::HostUnknown.is_hard(Some('4')), Some(false));
        assert_eq!(Reason::HasMoved.is_hard(Some('5')), Some(true));
        assert_eq!(Reason::NotAccept.is_hard(Some('5')), Some(true));
        assert_eq!(Reason::NotAccept.is_hard(Some('4')), Some(false));
        assert_eq!(Reason::MailboxFull.is_hard(Some('5')), Some(false));
        assert_eq!(Reason::Blocked.is_hard(Some('5')), Some(false));
    }

    #[test]
    fn enhanced_status_table() {
        assert_eq!(Reason::from_enhanced_status("5.1.1"), Some(Reason::UserUnknown));
        assert_eq!(Reason::from_enhanced_status("4.2.2"), Some(Reason::MailboxFull));
        assert_eq!(Reason::from_enhanced_status("5.7.1"), None);
        assert_eq!(Reason::from_enhanced_status("5.0.0"), None);
        assert_eq!(Reason::from_enhanced_status("junk"), None);
    }
}
