//! When to tell the sender: RFC 3461 NOTIFY, and the rules that keep DSNs from looping.
//!
//! Standards: RFC 3461 §4.1 (NOTIFY; absent means FAILURE, and DELAY at the MTA's
//! discretion), RFC 3464, RFC 5321 §6.1 (never send a notification to the null reverse path),
//! RFC 3834 (auto-submitted messages).
//! Pure: decides from typed values only.
//! Must not: build or send anything.

use crate::smtp::address::{Mailbox, ReversePath};
use crate::smtp::command::Notify;

/// What a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Failure,
    Delay,
    Success,
}

/// Whether the sender asked (or by default wants) to hear about `kind` for a recipient.
pub fn wants(notify: Option<Notify>, kind: ReportKind) -> bool {
    match notify {
        None => matches!(kind, ReportKind::Failure | ReportKind::Delay),
        Some(n) if n.never => false,
        Some(n) => match kind {
            ReportKind::Failure => n.failure,
            ReportKind::Delay => n.delay,
            ReportKind::Success => n.success,
        },
    }
}

/// The mailbox a DSN goes to, or None: never to `<>` (which is also how DSNs about DSNs
/// are prevented: every DSN is sent from `<>`).
pub fn recipient_of_report(reverse_path: &ReversePath) -> Option<Mailbox> {
    match reverse_path {
        ReversePath::Null => None,
        ReversePath::Mailbox(m) => Some(m.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_defaults_and_words() {
        assert!(wants(None, ReportKind::Failure));
        assert!(wants(None, ReportKind::Delay));
        assert!(!wants(None, ReportKind::Success));
        let n = |success, failure, delay| Some(Notify { never: false, success, failure, delay });
        assert!(!wants(Some(Notify { never: true, ..Notify::default() }), ReportKind::Failure));
        assert!(wants(n(true, true, false), ReportKind::Success));
        assert!(!wants(n(true, false, false), ReportKind::Failure));
        assert!(!wants(n(false, true, false), ReportKind::Delay));
    }

    #[test]
    fn never_to_the_null_path() {
        assert!(recipient_of_report(&ReversePath::Null).is_none());
        let sender = ReversePath::Mailbox(Mailbox::parse("a@b.test").unwrap());
        assert_eq!(recipient_of_report(&sender).map(|m| m.to_string()).as_deref(), Some("a@b.test"));
    }
}
