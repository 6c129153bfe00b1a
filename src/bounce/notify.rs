//! When to tell the sender: RFC 3461 NOTIFY, and the rules that keep DSNs from looping.
//!
//! Standards: RFC 3461 §4.1 (NOTIFY; absent means FAILURE, and DELAY at the MTA's
//! discretion), RFC 3464, RFC 5321 §6.1 (never send a notification to the null reverse path),
//! RFC 3834 (auto-submitted messages).
//! Pure: decides from stored values only.
//! Must not: build or send anything.

use crate::smtp::address::Mailbox;

/// What a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Failure,
    Delay,
    Success,
}

fn has(notify: Option<&str>, word: &str) -> bool {
    notify.is_some_and(|n| n.split(',').any(|w| w.trim().eq_ignore_ascii_case(word)))
}

/// Whether the sender asked (or by default wants) to hear about `kind` for a recipient.
pub fn wants(notify: Option<&str>, kind: ReportKind) -> bool {
    if has(notify, "NEVER") {
        return false;
    }
    match (notify, kind) {
        (None, ReportKind::Failure | ReportKind::Delay) => true,
        (None, ReportKind::Success) => false,
        (Some(_), ReportKind::Failure) => has(notify, "FAILURE"),
        (Some(_), ReportKind::Delay) => has(notify, "DELAY"),
        (Some(_), ReportKind::Success) => has(notify, "SUCCESS"),
    }
}

/// The mailbox a DSN goes to, or None: never to `<>` (which is also how DSNs about DSNs
/// are prevented: every DSN is sent from `<>`).
pub fn recipient_of_report(reverse_path: &str) -> Option<Mailbox> {
    if reverse_path.is_empty() {
        return None;
    }
    Mailbox::parse(reverse_path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_defaults_and_words() {
        assert!(wants(None, ReportKind::Failure));
        assert!(wants(None, ReportKind::Delay));
        assert!(!wants(None, ReportKind::Success));
        assert!(!wants(Some("NEVER"), ReportKind::Failure));
        assert!(wants(Some("SUCCESS,FAILURE"), ReportKind::Success));
        assert!(!wants(Some("SUCCESS"), ReportKind::Failure));
        assert!(!wants(Some("FAILURE"), ReportKind::Delay));
    }

    #[test]
    fn never_to_the_null_path() {
        assert!(recipient_of_report("").is_none());
        assert_eq!(recipient_of_report("a@b.test").map(|m| m.to_string()).as_deref(), Some("a@b.test"));
    }
}
