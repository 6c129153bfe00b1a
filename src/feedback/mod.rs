//! Reads bounces other servers send us: detects what a message is, parses the report
//! (RFC 3464 and the plain-text layouts of common MTAs), classifies each failed recipient
//! (`phrases` and `classify`, with the reason table of `bounce/reason.rs`), judges whether
//! the bounce is about mail we sent (`verify`, on facts `evidence` gathers) and records a
//! genuine one (`ingest`); `reports` reads mail to our report addresses (unsubscribe by mail).
//!
//! Entry point: [`parse_bounce`]. Standards: RFC 3464, RFC 3463, RFC 5965, RFC 3834.
//! Must not: panic or grow without bound (input capped at [`MAX_INPUT`], recipients at
//! [`parse::MAX_RECIPIENTS`]); only `evidence`, `ingest` and `reports` touch the store (and `evidence`
//! DNS); parsing, classifying and judging touch no store, network or clock.

#![deny(clippy::indexing_slicing)]

pub mod arf;
pub mod classify;
pub mod detect;
pub mod evidence;
pub mod ingest;
pub mod learn;
pub mod parse;
pub mod phrases;
pub mod report;
pub mod reports;
pub mod verify;

pub use report::{BounceReport, BouncedRecipient, OriginalHeaders, ReportKind, Why};

use crate::bounce::reason::Reason;
use crate::smtp::reply::EnhancedStatus;

/// Bytes of input read; the rest is ignored (with a warning).
pub const MAX_INPUT: usize = 10 * 1024 * 1024;

/// Parses one message and reports what it is and, for a bounce, who failed and why.
pub fn parse_bounce(raw: &[u8]) -> BounceReport {
    parse_bounce_doc(raw).0
}

/// [`parse_bounce`], also handing back the parsed message for checks that read more of it
/// (`verify::inspect`), so it is parsed once.
pub fn parse_bounce_doc(raw: &[u8]) -> (BounceReport, Option<parse::Doc>) {
    let mut warnings = Vec::new();
    let raw = match raw.get(..MAX_INPUT) {
        Some(head) if raw.len() > MAX_INPUT => {
            warnings.push(format!("input truncated to {MAX_INPUT} bytes"));
            head
        }
        _ => raw,
    };
    let raw = strip_mbox_line(raw);
    let Some(mut doc) = parse::read_doc(raw) else {
        let mut r = BounceReport::empty(ReportKind::NotBounce);
        r.warnings.push("not a mail message: no headers found".into());
        return (r, None);
    };
    warnings.append(&mut doc.warnings);
    let mut rows = parse::rows(&doc);
    let kind = detect::detect(&doc, &rows);
    if kind == ReportKind::Bounce
        && rows.is_empty()
        && doc.header("auto-submitted").is_some()
        && let Some(a) = parse::addresses_in(&doc.from).into_iter().next()
    {
        // An auto-reply that says the mailbox is gone: its author is the dead address.
        rows.push(parse::row_from_text(a, &doc.text));
    }
    if rows.len() >= parse::MAX_RECIPIENTS {
        warnings.push(format!("more than {} recipients: the rest were ignored", parse::MAX_RECIPIENTS));
    }
    let mut report = BounceReport::empty(kind);
    report.original = doc.original.clone();
    report.warnings = warnings;
    if kind == ReportKind::Feedback {
        report.feedback = arf::read(&doc);
    }
    if !kind.is_bounce() {
        return (report, Some(doc));
    }
    report.mta = parse::identify_mta(&doc).map(str::to_string);
    let any_failed = rows.iter().any(|r| r.action.as_deref().is_some_and(|a| a.starts_with("fail")));
    let ctx = Context {
        lower: doc.text.to_lowercase(),
        report: phrases::find(&phrases::normalize(&doc.text)).0,
        single: rows.len() == 1,
    };
    for row in rows {
        let action = row.action.as_deref().unwrap_or("");
        let success = ["delivered", "relayed", "expanded"].iter().any(|s| action.starts_with(s));
        if any_failed && success {
            continue;
        }
        let delayed = kind == ReportKind::Delay || action.starts_with("delayed");
        report.recipients.push(recipient(row, &ctx, delayed));
    }
    if report.recipients.is_empty() {
        report.warnings.push("no recipient address found".into());
    }
    (report, Some(doc))
}

/// What one report's text says as a whole, computed once for all its recipients.
struct Context {
    lower: String,
    /// The first phrase of the report's text that names a cause.
    report: Option<phrases::Hit>,
    single: bool,
}

fn recipient(row: parse::Row, ctx: &Context, delayed: bool) -> BouncedRecipient {
    // A 2.x.x code in a failure's diagnostic is a transcript of the steps that worked.
    let diag_status = row
        .diagnostic
        .as_deref()
        .and_then(parse::status_in)
        .filter(|s| !s.starts_with('2') || row.status.as_deref().is_some_and(|r| r.starts_with('2')));
    // The reporting MTA's own generic code (x.0.0, or x.4.7 "gave up") yields to the remote
    // server's more specific one from the diagnostic.
    let generic = |s: &str| s.ends_with(".0.0") || s.ends_with(".4.7");
    let status = match (&row.status, diag_status) {
        (None, d) => d,
        (Some(s), Some(d)) if generic(s) && !generic(&d) && s.get(..1) == d.get(..1) => Some(d),
        (s, _) => s.clone(),
    };
    let phase = match row.diagnostic.as_deref().map(classify::phase_in) {
        Some(p) if p != classify::Phase::Unknown => p,
        _ => classify::phase_near(&ctx.lower, &row.address, ctx.single),
    };
    // When the status came from the diagnostic, take the reply code written beside it.
    let mut reply_code = row.reply_code;
    if let (Some(s), Some(d)) = (status.as_deref(), row.diagnostic.as_deref())
        && row.status.as_deref() != Some(s)
        && let Some(pos) = d.find(s)
        && let Some(code) =
            d.get(..pos).and_then(|h| parse::reply_code_in(h.get(h.len().saturating_sub(5)..).unwrap_or(h)))
    {
        reply_code = Some(code);
    }
    let evidence = classify::Evidence {
        status: status.as_deref().and_then(EnhancedStatus::parse),
        reply_code: reply_code.as_deref().and_then(|c| c.parse().ok()),
        diagnostic: row.diagnostic.as_deref(),
        phase,
        delayed,
        report: ctx.report,
        local_program: row.local_program,
    };
    let decision = classify::classify(&evidence);
    let reason = decision.reason;
    let hard_bounce = decision.hard_bounce;
    BouncedRecipient {
        address: row.address,
        reply_code,
        status,
        reason,
        hard_bounce,
        diagnostic: row.diagnostic,
        remote_mta: row.remote_mta,
        advice: Reason::info(reason).advice.to_string(),
        why: Why { phase, delayed, rule: decision.rule },
    }
}

/// Drops a leading mbox `From ` line, which is not a header.
fn strip_mbox_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ")
        && let Some(nl) = raw.iter().position(|&b| b == b'\n')
    {
        return raw.get(nl + 1..).unwrap_or(raw);
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic xorshift64* so the smoke fuzz needs no dependency and repeats exactly.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            if n == 0 { 0 } else { (self.next() % n as u64) as usize }
        }
    }

    fn corpus_samples() -> Vec<Vec<u8>> {
        let dir = std::env::var_os("MAILERD_CORPUS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/bounces"));
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&dir) {
            let mut paths: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for p in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "eml")).step_by(3) {
                if let Ok(b) = std::fs::read(&p) {
                    out.push(b);
                }
            }
        }
        out
    }

    const SEED_MESSAGE: &[u8] = b"From: MAILER-DAEMON@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n<kiji@example.jp>: host mx.example.jp[192.0.2.1] said: 550 5.1.1 User unknown\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; kiji@example.jp\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n--b--\r\n";

    #[test]
    fn a_plain_dsn_is_read() {
        let r = parse_bounce(SEED_MESSAGE);
        assert_eq!(r.kind, ReportKind::Bounce);
        let first = r.recipients.first().cloned();
        assert_eq!(first.as_ref().map(|r| r.address.as_str()), Some("kiji@example.jp"));
        assert_eq!(first.as_ref().map(|r| r.reason), Some(Reason::UserUnknown));
        assert_eq!(first.and_then(|r| r.hard_bounce), Some(true));
    }

    #[test]
    fn smoke_fuzz_never_panics() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut seeds = corpus_samples();
        seeds.push(SEED_MESSAGE.to_vec());
        let mut cases = 0usize;
        for round in 0..3000 {
            let seed = seeds.get(round % seeds.len()).cloned().unwrap_or_default();
            let mut input = seed;
            match rng.below(4) {
                0 => {
                    let cut = rng.below(input.len() + 1);
                    input.truncate(cut);
                }
                1 => {
                    for _ in 0..1 + rng.below(16) {
                        let i = rng.below(input.len());
                        if let Some(b) = input.get_mut(i) {
                            *b = (rng.next() & 0xff) as u8;
                        }
                    }
                }
                2 => {
                    let at = rng.below(input.len() + 1);
                    let junk: &[u8] = match rng.below(5) {
                        0 => b"\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n",
                        1 => b"Final-Recipient: rfc822;\r\nAction:\r\nStatus: 5.\r\n",
                        2 => b"<<<<@@@>>>>...\r\n\t\t ",
                        3 => b"Content-Transfer-Encoding: base64\r\n\r\n====",
                        _ => b"\xff\xfe\x00\x80",
                    };
                    let tail = input.split_off(at.min(input.len()));
                    input.extend_from_slice(junk);
                    input.extend_from_slice(&tail);
                }
                _ => {
                    let n = rng.below(4096);
                    input = (0..n).map(|_| (rng.next() & 0xff) as u8).collect();
                }
            }
            let r = parse_bounce(&input);
            assert!(r.recipients.len() <= parse::MAX_RECIPIENTS);
            let _ = r.to_json("fuzz");
            cases += 1;
        }
        assert_eq!(cases, 3000);
    }

    #[test]
    fn many_recipients_are_capped() {
        let mut m = String::from(
            "From: MAILER-DAEMON@example.org\nSubject: failure notice\nContent-Type: message/delivery-status\n\n",
        );
        for i in 0..1500 {
            m.push_str(&format!("Final-Recipient: rfc822; u{i}@example.jp\nAction: failed\nStatus: 5.1.1\n\n"));
        }
        let r = parse_bounce(m.as_bytes());
        assert!(r.recipients.len() <= parse::MAX_RECIPIENTS);
        assert!(!r.recipients.is_empty());
    }
}

#[cfg(test)]
mod format_tests {
    //! One small hand-written sample per layout, so each family parser has a test that
    //! does not depend on the corpus being present.

    use super::*;

    fn first(raw: &str) -> (ReportKind, Option<BouncedRecipient>) {
        let r = parse_bounce(raw.as_bytes());
        (r.kind, r.recipients.first().cloned())
    }

    #[test]
    fn postfix_plain_text_without_dsn_part() {
        let (kind, r) = first(
            "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\nSubject: Undelivered Mail Returned to Sender\nTo: sender@example.org\n\nThis is the mail system at host mx.example.org.\n\nI'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n\n<Kiji@Example.JP>: host mx.example.jp[192.0.2.1] said: 552 5.2.2 <kiji@example.jp>:\n    Mailbox full (in reply to RCPT TO command)\n",
        );
        assert_eq!(kind, ReportKind::Bounce);
        let r = r.unwrap_or_else(|| panic!("no recipient"));
        assert_eq!(r.address, "kiji@example.jp");
        assert_eq!(r.status.as_deref(), Some("5.2.2"));
        assert_eq!(r.reply_code.as_deref(), Some("552"));
        assert_eq!(r.remote_mta.as_deref(), Some("mx.example.jp"));
        assert_eq!(r.reason, Reason::MailboxFull);
        assert_eq!(r.hard_bounce, Some(false));
    }

    #[test]
    fn exim_indented_address_block() {
        let (kind, r) = first(
            "From: Mail Delivery System <Mailer-Daemon@mx.example.org>\nSubject: Mail delivery failed: returning message to sender\nX-Failed-Recipients: kiji@example.jp\n\nThis message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) failed:\n\n  kiji@example.jp\n    host mx.example.jp [192.0.2.1]\n    SMTP error from remote mail server after RCPT TO:<kiji@example.jp>:\n    550 5.1.1 No such user here\n",
        );
        assert_eq!(kind, ReportKind::Bounce);
        let r = r.unwrap_or_else(|| panic!("no recipient"));
        assert_eq!(r.address, "kiji@example.jp");
        assert_eq!(r.reason, Reason::UserUnknown);
        assert_eq!(r.hard_bounce, Some(true));
    }

    #[test]
    fn qmail_address_then_reason() {
        let (kind, r) = first(
            "From: MAILER-DAEMON@mx.example.org\nSubject: failure notice\n\nHi. This is the qmail-send program at mx.example.org.\nI'm afraid I wasn't able to deliver your message to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\n<kiji@example.jp>:\nSorry, I couldn't find any host named example.jp. (#5.1.2)\n\n--- Below this line is a copy of the message.\n\nFrom: sender@example.org\nTo: kiji@example.jp\nSubject: hi\n\nbody\n",
        );
        assert_eq!(kind, ReportKind::Bounce);
        let r = r.unwrap_or_else(|| panic!("no recipient"));
        assert_eq!(r.address, "kiji@example.jp");
        assert_eq!(r.reason, Reason::HostUnknown);
    }

    #[test]
    fn sendmail_transcript() {
        let (kind, r) = first(
            "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>\nSubject: Returned mail: see transcript for details\n\nThe original message was received at Mon, 1 Jan 2024 from localhost\n\n   ----- The following addresses had permanent fatal errors -----\n<kiji@example.jp>\n    (reason: 550 5.1.1 <kiji@example.jp>... User unknown)\n\n   ----- Transcript of session follows -----\n... while talking to mx.example.jp.:\n>>> RCPT To:<kiji@example.jp>\n<<< 550 5.1.1 <kiji@example.jp>... User unknown\n",
        );
        assert_eq!(kind, ReportKind::Bounce);
        let r = r.unwrap_or_else(|| panic!("no recipient"));
        assert_eq!(r.address, "kiji@example.jp");
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
        assert_eq!(r.reason, Reason::UserUnknown);
    }

    #[test]
    fn delay_warning_is_a_bounce_of_kind_delay() {
        let (kind, r) = first(
            "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\nSubject: Delivery Status Notification (Delay)\n\nThis is an automatically generated Delivery Status Notification\n\nTHIS IS A WARNING MESSAGE ONLY.\n\nYOU DO NOT NEED TO RESEND YOUR MESSAGE.\n\nDelivery to the following recipient has been delayed:\n\n     kiji@example.jp\n\nMessage will be retried for 2 more day(s)\n",
        );
        assert_eq!(kind, ReportKind::Delay);
        let r = r.unwrap_or_else(|| panic!("no recipient"));
        assert_eq!(r.reason, Reason::Expired);
        assert_eq!(r.hard_bounce, Some(false));
    }

    #[test]
    fn vacation_and_arf_are_not_bounces() {
        let (kind, _) = first(
            "From: kiji@example.jp\nSubject: Out of Office: hello\nAuto-Submitted: auto-replied\n\nI am away until Monday.\n",
        );
        assert_eq!(kind, ReportKind::Vacation);
        let (kind, _) = first(
            "From: fbl@example.net\nSubject: complaint\nContent-Type: multipart/report; report-type=feedback-report; boundary=x\n\n--x\nContent-Type: text/plain\n\nA complaint.\n--x\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\n--x--\n",
        );
        assert_eq!(kind, ReportKind::Feedback);
        let (kind, _) = first("From: a@example.org\nTo: b@example.org\nSubject: lunch?\n\nNoon at the usual place?\n");
        assert_eq!(kind, ReportKind::NotBounce);
    }

    #[test]
    fn json_has_the_design_shape() {
        let r = parse_bounce(tests_seed());
        let v = r.to_json("x.eml");
        for k in ["file", "is_bounce", "kind", "mta", "recipients", "original"] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        let rec = v.get("recipients").and_then(|r| r.get(0)).cloned().unwrap_or_default();
        for k in ["address", "reply_code", "status", "reason", "hard_bounce", "diagnostic", "remote_mta", "advice"] {
            assert!(rec.get(k).is_some(), "missing recipient field {k}");
        }
    }

    fn tests_seed() -> &'static [u8] {
        b"From: MAILER-DAEMON@example.org\nSubject: Undelivered Mail Returned to Sender\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nfailed\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; kiji@example.jp\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.example.jp\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\n--b\nContent-Type: text/rfc822-headers\n\nFrom: me@example.org\nTo: kiji@example.jp\nSubject: hello\nMessage-ID: <abc@example.org>\n--b--\n"
    }
}
