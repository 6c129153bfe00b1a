//! Writing delivery status notifications: an RFC 3464 report a person can act on.
//!
//! Standards: RFC 3464 (message/delivery-status), RFC 6522 (multipart/report), RFC 3461
//! (ENVID, ORCPT, RET), RFC 3834 (Auto-Submitted), RFC 5322 (headers, line length).
//! Part 1 is text for a person: per recipient what happened, hard or soft, the remote
//! server's own words, and the fix from `bounce::reason`. Part 2 is the machine-readable
//! report. Part 3 is the original headers, or the whole message with RET=FULL.
//! Pure: time and the unique token are arguments.
//! Must not: send anything, or address a DSN to the null path (`to` is a `Mailbox`).

use super::notify::ReportKind;
use super::reason::Reason;
use crate::smtp::address::Mailbox;
use crate::smtp::message::{find_headers_end, header_value};
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DsnRecipient {
    pub final_recipient: String,
    /// ORCPT as given (`rfc822;addr`).
    pub original_recipient: Option<String>,
    pub action: Action,
    pub status: String,
    /// Host name of the server that answered.
    pub remote_mta: Option<String>,
    /// The complete reply or failure text.
    pub diagnostic: Option<String>,
    /// True when `diagnostic` is an SMTP reply (Diagnostic-Code type `smtp`).
    pub diagnostic_is_smtp: bool,
    pub last_attempt: Option<Timestamp>,
    pub reason: Reason,
    /// Some(true): the address itself is bad and was suppressed.
    pub hard: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Dsn<'a> {
    pub reporting_mta: &'a str,
    pub to: &'a Mailbox,
    pub queue_id: &'a str,
    pub envid: Option<&'a str>,
    pub arrival: Timestamp,
    pub recipients: Vec<DsnRecipient>,
    /// The original message as stored.
    pub original: &'a [u8],
    pub return_full: bool,
    pub kind: ReportKind,
    /// For delay reports: until when we keep trying.
    pub retry_until: Option<Timestamp>,
}

pub fn subject(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::Failure => "Undelivered Mail Returned to Sender",
        ReportKind::Delay => "Delayed Mail (still being retried)",
        ReportKind::Success => "Successful Mail Delivery Report",
    }
}

/// Renders the whole DSN message (headers and body, CRLF line ends).
pub fn render(dsn: &Dsn<'_>, now: Timestamp, unique: &str) -> Vec<u8> {
    let boundary = format!("{unique}/{}", dsn.reporting_mta);
    let headers_end = find_headers_end(dsn.original);
    let original_headers = dsn.original.get(..headers_end).unwrap_or(dsn.original);
    let original_id = header_value(original_headers, "message-id");
    let mut out = String::new();
    let h = |out: &mut String, name: &str, value: &str| {
        out.push_str(&fold(&format!("{name}: {value}")));
        out.push_str("\r\n");
    };
    h(&mut out, "Date", &now.rfc5322());
    h(&mut out, "From", &format!("Mail Delivery System <MAILER-DAEMON@{}>", dsn.reporting_mta));
    h(&mut out, "To", &format!("<{}>", dsn.to));
    h(&mut out, "Subject", subject(dsn.kind));
    h(&mut out, "Message-ID", &format!("<{unique}.dsn@{}>", dsn.reporting_mta));
    if let Some(id) = &original_id {
        h(&mut out, "In-Reply-To", id);
        h(&mut out, "References", id);
    }
    h(&mut out, "Auto-Submitted", "auto-replied");
    h(&mut out, "MIME-Version", "1.0");
    h(&mut out, "Content-Type", &format!("multipart/report; report-type=delivery-status; boundary=\"{boundary}\""));
    out.push_str("\r\nThis is a MIME-encapsulated message.\r\n\r\n");

    out.push_str(&format!("--{boundary}\r\nContent-Description: Notification\r\n"));
    out.push_str("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
    out.push_str(&human_part(dsn));

    out.push_str(&format!("\r\n--{boundary}\r\nContent-Description: Delivery report\r\n"));
    out.push_str("Content-Type: message/delivery-status\r\n\r\n");
    out.push_str(&status_part(dsn));

    let mut bytes = out.into_bytes();
    let (ctype, desc, body) = if dsn.return_full {
        ("message/rfc822", "Undelivered Message", dsn.original)
    } else {
        ("text/rfc822-headers", "Undelivered Message Headers", original_headers)
    };
    let cte = if body.iter().any(|&b| b >= 0x80) { "8bit" } else { "7bit" };
    bytes.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Description: {desc}\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n").as_bytes(),
    );
    bytes.extend_from_slice(body);
    if !body.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}

fn human_part(dsn: &Dsn<'_>) -> String {
    let n = dsn.recipients.len();
    let plural = if n == 1 { "recipient" } else { "recipients" };
    let mut t = format!("This is the mail system at {}.\r\n\r\n", dsn.reporting_mta);
    let intro = match dsn.kind {
        ReportKind::Failure => {
            format!(
                "Your message could not be delivered to {n} {plural}. Below is what happened to each, and what you can do about it."
            )
        }
        ReportKind::Delay => {
            let until = dsn.retry_until.map(|t| format!(" until {}", t.rfc5322())).unwrap_or_default();
            format!(
                "Your message has not been delivered yet to {n} {plural}. This is only a warning: the mail system keeps trying{until}, so you do not need to send it again."
            )
        }
        ReportKind::Success => format!("Your message was delivered to {n} {plural}, as you asked to be told."),
    };
    t.push_str(&wrap(&intro, 76, ""));
    t.push_str("\r\n");
    let subject_line = header_value(dsn.original.get(..find_headers_end(dsn.original)).unwrap_or(&[]), "subject");
    if let Some(s) = subject_line {
        t.push_str(&wrap(&format!("Subject of your message: {s}"), 76, ""));
        t.push_str("\r\n");
    }
    for r in &dsn.recipients {
        let info = r.reason.info();
        t.push_str(&format!("<{}>\r\n", r.final_recipient));
        let result = match (r.action, r.hard) {
            (Action::Delivered, _) => "delivered".to_string(),
            (Action::Delayed, _) => "not delivered yet; still trying (soft, temporary)".to_string(),
            (Action::Failed, Some(true)) => {
                "not delivered: HARD bounce, the address itself is bad (it is now on the suppression list)".to_string()
            }
            (Action::Failed, _) => {
                "not delivered: SOFT bounce, the address may work for other mail or later".to_string()
            }
        };
        t.push_str(&wrap(&format!("Result: {result}"), 76, "    "));
        if r.action != Action::Delivered {
            t.push_str(&wrap(&format!("Why:    {} (status {})", info.summary, r.status), 76, "    "));
        }
        if let Some(d) = &r.diagnostic {
            let who = r.remote_mta.as_deref().map(|m| format!("{m} said")).unwrap_or_else(|| "Detail".into());
            t.push_str(&wrap(&format!("{who}: {d}"), 76, "    "));
        }
        if r.action != Action::Delivered {
            t.push_str(&wrap(&format!("Fix:    {}", info.advice), 76, "    "));
        }
        t.push_str("\r\n");
    }
    t.push_str(&format!("Queue ID of your message: {}\r\n", dsn.queue_id));
    t
}

fn status_part(dsn: &Dsn<'_>) -> String {
    let mut s = String::new();
    let field = |s: &mut String, name: &str, value: &str| {
        s.push_str(&fold(&ascii(&format!("{name}: {value}"))));
        s.push_str("\r\n");
    };
    field(&mut s, "Reporting-MTA", &format!("dns; {}", dsn.reporting_mta));
    field(&mut s, "X-Mailerd-Queue-ID", dsn.queue_id);
    if let Some(e) = dsn.envid {
        field(&mut s, "Original-Envelope-Id", e);
    }
    field(&mut s, "Arrival-Date", &dsn.arrival.rfc5322());
    for r in &dsn.recipients {
        s.push_str("\r\n");
        field(&mut s, "Final-Recipient", &format!("rfc822; {}", r.final_recipient));
        if let Some(o) = &r.original_recipient {
            let o = match o.split_once(';') {
                Some((t, a)) => format!("{}; {}", t.trim(), a.trim()),
                None => format!("rfc822; {o}"),
            };
            field(&mut s, "Original-Recipient", &o);
        }
        field(&mut s, "Action", r.action.as_str());
        field(&mut s, "Status", &r.status);
        if let Some(m) = &r.remote_mta {
            field(&mut s, "Remote-MTA", &format!("dns; {m}"));
        }
        if let Some(d) = &r.diagnostic {
            let kind = if r.diagnostic_is_smtp { "smtp" } else { "x-mailerd" };
            field(&mut s, "Diagnostic-Code", &format!("{kind}; {d}"));
        }
        if let Some(t) = r.last_attempt {
            field(&mut s, "Last-Attempt-Date", &t.rfc5322());
        }
        if r.action == Action::Delayed
            && let Some(u) = dsn.retry_until
        {
            field(&mut s, "Will-Retry-Until", &u.rfc5322());
        }
    }
    s
}

fn ascii(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' }).collect()
}

/// Folds a header line at spaces so no line exceeds 78 characters where possible.
fn fold(line: &str) -> String {
    let mut out = String::new();
    let mut current = 0;
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            if current + 1 + word.len() > 78 && current > 0 {
                out.push_str("\r\n\t");
                current = 1;
            } else {
                out.push(' ');
                current += 1;
            }
        }
        out.push_str(word);
        current += word.len();
    }
    out
}

/// Word-wraps text for the human part; continuation lines of an indented block line up
/// under its text.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let cont = if indent.is_empty() { String::new() } else { format!("{indent}        ") };
    let mut out = String::new();
    let mut line = indent.to_string();
    let mut has_word = false;
    for word in text.split_whitespace() {
        if has_word && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push_str("\r\n");
            line = cont.clone();
            has_word = false;
        }
        if has_word {
            line.push(' ');
        }
        line.push_str(word);
        has_word = true;
    }
    out.push_str(&line);
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: ReportKind, full: bool) -> Vec<u8> {
        let to = Mailbox::parse("sender@example.com").unwrap();
        let original = b"Message-ID: <orig@example.com>\r\nSubject: Quarterly report\r\nFrom: sender@example.com\r\n\r\nBody text\r\n";
        let dsn = Dsn {
            reporting_mta: "mx.example.net",
            to: &to,
            queue_id: "ABC123",
            envid: Some("env-1"),
            arrival: Timestamp(1_795_884_093_000),
            recipients: vec![
                DsnRecipient {
                    final_recipient: "nobody@dest.example".into(),
                    original_recipient: Some("rfc822;Nobody@Dest.Example".into()),
                    action: if kind == ReportKind::Delay { Action::Delayed } else { Action::Failed },
                    status: "5.1.1".into(),
                    remote_mta: Some("mx1.dest.example".into()),
                    diagnostic: Some("550 5.1.1 <nobody@dest.example>: user unknown".into()),
                    diagnostic_is_smtp: true,
                    last_attempt: Some(Timestamp(1_795_884_094_000)),
                    reason: Reason::UserUnknown,
                    hard: Some(true),
                },
                DsnRecipient {
                    final_recipient: "big@dest.example".into(),
                    original_recipient: None,
                    action: Action::Failed,
                    status: "5.3.4".into(),
                    remote_mta: Some("mx1.dest.example".into()),
                    diagnostic: Some("552 5.3.4 message size exceeds fixed maximum message size".into()),
                    diagnostic_is_smtp: true,
                    last_attempt: None,
                    reason: Reason::MesgTooBig,
                    hard: Some(false),
                },
            ],
            original,
            return_full: full,
            kind,
            retry_until: Some(Timestamp(1_796_316_093_000)),
        };
        render(&dsn, Timestamp(1_795_884_095_000), "u1")
    }

    #[test]
    fn failure_report_has_the_three_parts() {
        let text = String::from_utf8(sample(ReportKind::Failure, false)).unwrap();
        assert!(text.contains("From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"));
        assert!(text.contains("Subject: Undelivered Mail Returned to Sender\r\n"));
        assert!(text.contains("Auto-Submitted: auto-replied\r\n"));
        assert!(text.contains("In-Reply-To: <orig@example.com>\r\n"));
        assert!(text.contains("Content-Type: multipart/report;") && text.contains("report-type=delivery-status;"));
        assert!(text.contains("HARD bounce"));
        assert!(text.contains("SOFT bounce"));
        assert!(text.contains("mx1.dest.example said: 550 5.1.1 <nobody@dest.example>: user unknown"));
        assert!(text.contains("Check the address for a typo"));
        assert!(text.contains("Send a link instead of the attachment"));
        assert!(text.contains("Reporting-MTA: dns; mx.example.net\r\n"));
        assert!(text.contains("Original-Envelope-Id: env-1\r\n"));
        assert!(text.contains("Final-Recipient: rfc822; nobody@dest.example\r\nOriginal-Recipient: rfc822; Nobody@Dest.Example\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx1.dest.example\r\n"));
        assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1 <nobody@dest.example>: user unknown\r\n"));
        assert!(text.contains("Content-Type: text/rfc822-headers\r\n"));
        assert!(!text.contains("Body text"), "RET=HDRS must not include the body");
        assert!(text.trim_end().ends_with("--"));
        assert!(text.split("\r\n").all(|l| l.len() <= 998));
    }

    #[test]
    fn ret_full_and_delay() {
        let full = String::from_utf8(sample(ReportKind::Failure, true)).unwrap();
        assert!(full.contains("Content-Type: message/rfc822\r\n") && full.contains("Body text"));
        let delay = String::from_utf8(sample(ReportKind::Delay, false)).unwrap();
        assert!(delay.contains("Subject: Delayed Mail (still being retried)"));
        assert!(delay.contains("Action: delayed\r\n") && delay.contains("Will-Retry-Until: "));
        assert!(delay.contains("you do not need to send it again"));
    }
}
