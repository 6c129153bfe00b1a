//! ARF feedback reports (RFC 5965; RFC 6650 for sending them; RFC 6590 redaction; RFC 6430
//! `not-spam`; RFC 6591 `auth-failure`): the fields of the `message/feedback-report` part as
//! typed values, and what identifies the mail complained about.
//!
//! Variants read alike: Yahoo's complaint feedback loop (`User-Agent: Yahoo!-Mail-Feedback`),
//! Microsoft's JMRP (recipient redacted), AOL's (`Redacted-Address`, the recipient's local
//! part replaced), and the plain RFC 5965 form.
//! Must not: panic, keep more than `MAX_ADDRESSES` addresses, or touch the store (the reader in
//! `feedback::reports` does, with what this returns).

#![deny(clippy::indexing_slicing)]

use serde::Serialize;

use super::parse::{Doc, clean_address};
use crate::smtp::message::{HeaderLine, field_blocks};

/// Addresses of one field kind kept from a report.
const MAX_ADDRESSES: usize = 16;

/// RFC 5965 §7.3's registry of feedback types, and what a report named that is not in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedbackType {
    /// Unsolicited mail: a user pressed "this is spam".
    Abuse,
    /// Phishing or other fraud.
    Fraud,
    /// A virus in the message.
    Virus,
    /// RFC 6430: a user said the message is not spam.
    NotSpam,
    /// RFC 6591: an SPF/DKIM/DMARC failure report.
    AuthFailure,
    /// `other`, or a type this reader does not know.
    Other,
}

impl FeedbackType {
    pub fn parse(s: &str) -> FeedbackType {
        match s.trim().to_ascii_lowercase().as_str() {
            "abuse" => FeedbackType::Abuse,
            "fraud" => FeedbackType::Fraud,
            "virus" => FeedbackType::Virus,
            "not-spam" => FeedbackType::NotSpam,
            "auth-failure" => FeedbackType::AuthFailure,
            _ => FeedbackType::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackType::Abuse => "abuse",
            FeedbackType::Fraud => "fraud",
            FeedbackType::Virus => "virus",
            FeedbackType::NotSpam => "not-spam",
            FeedbackType::AuthFailure => "auth-failure",
            FeedbackType::Other => "other",
        }
    }

    /// Whether the report is a recipient's complaint about the mail (suppress, count it).
    pub fn is_complaint(self) -> bool {
        matches!(self, FeedbackType::Abuse | FeedbackType::Fraud | FeedbackType::Virus)
    }
}

/// The fields of a feedback report that say what was reported and about which mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedbackReport {
    pub feedback_type: FeedbackType,
    /// Who made the report (`Yahoo!-Mail-Feedback/2.0`, `AOL SComp`, ...).
    pub user_agent: Option<String>,
    /// `Original-Mail-From`: the envelope sender of the reported mail (our signed return path).
    pub original_mail_from: Option<String>,
    /// Who received the mail, lower-cased: `Original-Rcpt-To`, `Removal-Recipient` (whom to
    /// take off the list), then the original's `To`; with `redacted`, an address may hide its
    /// local part.
    pub recipients: Vec<String>,
    /// The envelope senders of the reported mail: `Original-Mail-From`, then the original's
    /// `Return-Path` (where our signed return path shows which message and recipient it was).
    #[serde(skip)]
    pub envelope_senders: Vec<String>,
    pub reported_domain: Option<String>,
    pub source_ip: Option<String>,
    pub arrival_date: Option<String>,
    /// RFC 6590 `Redacted-Address`: which part of the recipient's address was hidden.
    pub redacted: bool,
}

impl FeedbackReport {
    /// The domains of the recipient addresses (all a redacted address still tells).
    pub fn recipient_domains(&self) -> impl Iterator<Item = &str> {
        self.recipients.iter().filter_map(|a| a.rsplit_once('@').map(|(_, d)| d))
    }
}

/// Reads the first `message/feedback-report` part of a report; None when it has none.
pub fn read(doc: &Doc) -> Option<FeedbackReport> {
    let body = doc.feedback.first()?;
    let mut r = FeedbackReport {
        feedback_type: FeedbackType::Other,
        user_agent: None,
        original_mail_from: None,
        recipients: Vec::new(),
        envelope_senders: Vec::new(),
        reported_domain: None,
        source_ip: None,
        arrival_date: None,
        redacted: false,
    };
    let mut typed = false;
    for line in field_blocks(body) {
        let HeaderLine::Field { name, value } = line else { continue };
        let value = value.trim();
        let text = || Some(value.chars().take(256).collect::<String>()).filter(|v| !v.is_empty());
        match name.trim().to_ascii_lowercase().as_str() {
            "feedback-type" if !typed => {
                r.feedback_type = FeedbackType::parse(value);
                typed = true;
            }
            "user-agent" => r.user_agent = text(),
            "original-mail-from" => r.original_mail_from = clean_address(value),
            "original-rcpt-to" | "removal-recipient" => {
                if let Some(a) = clean_address(value).map(|a| a.to_ascii_lowercase())
                    && r.recipients.len() < MAX_ADDRESSES
                    && !r.recipients.contains(&a)
                {
                    r.recipients.push(a);
                }
            }
            "reported-domain" => r.reported_domain = text(),
            "source-ip" => r.source_ip = text(),
            "arrival-date" | "received-date" => r.arrival_date = text(),
            "redacted-address" => r.redacted = true,
            _ => {}
        }
    }
    if let Some(a) = doc.original.to.as_deref().and_then(clean_address).map(|a| a.to_ascii_lowercase())
        && r.recipients.len() < MAX_ADDRESSES
        && !r.recipients.contains(&a)
    {
        r.recipients.push(a);
    }
    r.envelope_senders.extend(r.original_mail_from.clone());
    for s in &doc.original_senders {
        if !r.envelope_senders.contains(s) && r.envelope_senders.len() < MAX_ADDRESSES {
            r.envelope_senders.push(s.clone());
        }
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_typed() {
        let raw = "From: feedback@arf.mail.yahoo.test\r\nTo: fbl@sender.test\r\nSubject: FW: Weekly news\r\n\
            MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\
            --b\r\nContent-Type: message/feedback-report\r\n\r\n\
            Feedback-Type: abuse\r\nUser-Agent: Yahoo!-Mail-Feedback/2.0\r\nVersion: 0.1\r\n\
            Original-Mail-From: <bounces+Q-1-2-abc@mx.sender.test>\r\nOriginal-Rcpt-To: <Alice@Yahoo.test>\r\n\
            Received-Date: Sun, 06 Dec 2026 10:00:00 +0000\r\nSource-IP: 127.0.0.1\r\nReported-Domain: sender.test\r\n\
            --b\r\nContent-Type: message/rfc822\r\n\r\nReturn-Path: <bounces+Q-1-2-abc@mx.sender.test>\r\n\
            From: news@sender.test\r\nTo: alice@yahoo.test\r\nMessage-ID: <m1@sender.test>\r\nSubject: Weekly news\r\n\r\nhi\r\n--b--\r\n";
        let doc = crate::feedback::parse::read_doc(raw.as_bytes()).unwrap();
        let r = read(&doc).unwrap();
        assert_eq!(r.feedback_type, FeedbackType::Abuse);
        assert_eq!(r.user_agent.as_deref(), Some("Yahoo!-Mail-Feedback/2.0"));
        assert_eq!(r.original_mail_from.as_deref(), Some("bounces+q-1-2-abc@mx.sender.test"));
        assert_eq!(r.recipients, ["alice@yahoo.test"]);
        assert_eq!(r.envelope_senders, ["bounces+q-1-2-abc@mx.sender.test", "news@sender.test"]);
        assert_eq!(r.arrival_date.as_deref(), Some("Sun, 06 Dec 2026 10:00:00 +0000"));
        assert!(!r.redacted);
    }

    #[test]
    fn types_follow_the_registry() {
        for (text, t, complaint) in [
            ("abuse", FeedbackType::Abuse, true),
            ("Fraud", FeedbackType::Fraud, true),
            ("virus", FeedbackType::Virus, true),
            ("not-spam", FeedbackType::NotSpam, false),
            ("auth-failure", FeedbackType::AuthFailure, false),
            ("opt-out", FeedbackType::Other, false),
        ] {
            assert_eq!(FeedbackType::parse(text), t);
            assert_eq!(t.is_complaint(), complaint, "{text}");
        }
    }
}
