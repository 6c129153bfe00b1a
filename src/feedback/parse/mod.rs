//! Turns raw bytes into a [`Doc`] (headers, human-readable text, delivery-status blocks,
//! the original message's headers) and reads per-recipient rows out of it: first the
//! RFC 3464 fields, then each MTA family's plain-text layout, then a generic fallback.
//!
//! Standards: RFC 5322 / MIME (RFC 2045-2049) through mail-parser; RFC 3464 in `rfc3464.rs`.
//! mail-parser calls go through `guarded_parse` (see there for the one known panic).
//! Must not: panic, allocate without bound (callers cap the input, rows are capped here),
//! or decide a reason (that is `classify.rs`).

pub mod exim;
pub mod generic;
pub mod postfix;
pub mod rfc3464;
pub mod sendmail;
pub mod ses;

use mail_parser::{Address, Message, MessageParser, MimeHeaders, PartType};
use regex::Regex;
use std::sync::LazyLock;

use super::report::OriginalHeaders;

/// Most recipients kept from one report.
pub const MAX_RECIPIENTS: usize = 1000;
/// Longest report text read, in bytes.
const MAX_TEXT: usize = 256 * 1024;
/// Longest diagnostic kept, in bytes.
const MAX_DIAGNOSTIC: usize = 1000;

/// One recipient as read from the report, before classification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub address: String,
    pub action: Option<String>,
    pub status: Option<String>,
    pub reply_code: Option<String>,
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
}

/// The parts of a message that matter for reading a report.
#[derive(Debug, Default)]
pub struct Doc {
    /// Top-level headers: (lower-case name, unfolded raw value).
    pub headers: Vec<(String, String)>,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub content_type: String,
    /// Human-readable text of the report (text parts, cut before the returned message).
    pub text: String,
    /// Bodies of message/delivery-status parts (or inline RFC 3464 fields).
    pub dsn: Vec<String>,
    /// Bodies of message/feedback-report parts.
    pub feedback: Vec<String>,
    pub original: OriginalHeaders,
    /// Addresses of the original sender (From, Return-Path, Sender): never failed recipients.
    pub original_senders: Vec<String>,
    pub warnings: Vec<String>,
}

impl Doc {
    /// The first top-level header named `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

static ADDR_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}|[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+@\[[0-9.]+\]").ok()
});

/// Where the copy of the original message starts in a plain-text report.
static ORIGINAL_MARKER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?im)^[ \t>]*(?:-{2,}|={2,}|\*{2,})?[ \t]*(?:original message|(?:this is a )?copy of (?:the |your )?(?:original )?message|below this line is a copy|returned message|message header follows|unsent message below|(?:the )?(?:original )?message (?:headers? )?follows?|returned mail|forwarded message|below is a copy of|headers of the original|undelivered message (?:headers )?follows|the text you sent follows|original message headers|partial message follows|your message reads|content-type: message/rfc822|message text follows|\[?original message)").ok()
});

/// Every address-looking token in `text`, lower-cased, in order, without duplicates.
pub fn addresses_in(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let Some(re) = ADDR_RE.as_ref() else {
        return out;
    };
    for m in re.find_iter(text) {
        if let Some(a) = clean_address(m.as_str())
            && !out.contains(&a)
        {
            out.push(a);
            if out.len() >= MAX_RECIPIENTS {
                break;
            }
        }
    }
    out
}

/// Normalises an address: strips `rfc822;`, angle brackets, quotes and punctuation, lowers.
pub fn clean_address(raw: &str) -> Option<String> {
    let mut s = raw.trim();
    if let Some(pos) = s.find(';') {
        let (head, tail) = s.split_at(pos);
        if !head.contains('@') {
            s = tail.get(1..).unwrap_or("").trim();
        }
    }
    let s = match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b && s.get(a + 1..b).is_some_and(|i| i.contains('@')) => s.get(a + 1..b).unwrap_or(s),
        _ => s,
    };
    let s = s
        .trim_matches(|c: char| c == '<' || c == '>' || c == '"' || c == '\'' || c.is_whitespace())
        .trim_end_matches(['.', ',', ':', ';', ')', ']', '>'])
        .trim_start_matches(['(', '[', '<']);
    let s = s.trim().trim_start_matches('.');
    let s = ["smtp:", "mailto:", "rfc822:", "x400:"]
        .iter()
        .find_map(|p| s.get(..p.len()).filter(|h| h.eq_ignore_ascii_case(p)).and_then(|_| s.get(p.len()..)))
        .unwrap_or(s);
    let at = s.rfind('@')?;
    let (local, domain) = (s.get(..at)?, s.get(at + 1..)?);
    if local.is_empty()
        || domain.len() < 3
        || s.len() > 254
        || s.contains(char::is_whitespace)
        || !(domain.contains('.') || domain.starts_with('['))
    {
        return None;
    }
    Some(s.to_lowercase())
}

/// True for addresses that report software writes from, never a failed recipient.
pub fn is_system_address(a: &str) -> bool {
    let local = a.split('@').next().unwrap_or("");
    matches!(local, "mailer-daemon" | "mail-daemon" | "mailerdaemon" | "noreply" | "no-reply")
}

/// One line of text, squeezed: runs of whitespace become one space; capped.
pub fn squeeze(s: &str) -> String {
    let mut out = String::new();
    for w in s.split_whitespace() {
        if out.len() + w.len() + 1 > MAX_DIAGNOSTIC {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

static STATUS_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?-u:\b)([245])\.(\d{1,3})\.(\d{1,3})(?-u:\b)").ok());
static CODE_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?:^|[\s:;(\[#<]|said:|<<<)\s*([45][0-9][0-9])(?:[\s\-]|[:,]\s|$)").ok());

/// The first RFC 3463 code in `text` (`"5.1.1"`).
pub fn status_in(text: &str) -> Option<String> {
    // Skip version numbers and IPs like 4.80.1 or 5.10.220.
    STATUS_RE.as_ref()?.captures_iter(text).find_map(|c| {
        let sub: u32 = c.get(2)?.as_str().parse().ok()?;
        let det: u32 = c.get(3)?.as_str().parse().ok()?;
        (sub <= 7 && det <= 999).then(|| c.get(0).map(|m| m.as_str().to_string()))?
    })
}

static REMOTE_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)(?:host|from|by|server)\s+\[?([a-z0-9][a-z0-9\-]*(?:\.[a-z0-9\-]+)+)\]?\.?\s*(?:\[[0-9a-f.:]+\]|\([0-9a-f.:\[\]]+\))?\s*(?:said|:|refused|\[)").ok()
});

/// The remote host named in a diagnostic (`host mx.example.jp[192.0.2.1] said:`).
pub fn remote_in(text: &str) -> Option<String> {
    let c = REMOTE_RE.as_ref()?.captures(text)?;
    Some(c.get(1)?.as_str().trim_end_matches('.').to_ascii_lowercase())
}

/// Builds a row from an address and the text that explains it.
pub fn row_from_text(address: String, diag: &str) -> Row {
    let d = squeeze(diag);
    Row {
        address,
        action: None,
        status: status_in(&d),
        reply_code: reply_code_in(&d),
        remote_mta: remote_in(&d),
        diagnostic: Some(d).filter(|d| !d.is_empty()),
    }
}

/// The first SMTP reply code in `text` (`"550"`).
pub fn reply_code_in(text: &str) -> Option<String> {
    let c = CODE_RE.as_ref()?.captures(text)?;
    Some(c.get(1)?.as_str().to_string())
}

fn addr_text(a: Option<&Address<'_>>) -> Option<String> {
    let a = a?;
    let first = a.first()?;
    let addr = first.address.as_deref()?;
    Some(match first.name.as_deref() {
        Some(n) if !n.is_empty() => format!("{n} <{addr}>"),
        _ => addr.to_string(),
    })
}

fn addr_only(a: Option<&Address<'_>>) -> Option<String> {
    a?.first()?.address.as_deref().and_then(clean_address)
}

fn original_from_message(m: &Message<'_>) -> Option<(OriginalHeaders, Vec<String>)> {
    let oh = OriginalHeaders {
        message_id: m.message_id().map(|s| format!("<{s}>")),
        from: addr_text(m.from()),
        to: addr_text(m.to()),
        subject: m.subject().map(str::to_string),
    };
    if oh == OriginalHeaders::default() {
        return None;
    }
    let mut senders: Vec<String> = addr_only(m.from()).into_iter().collect();
    senders.extend(m.return_address().and_then(clean_address));
    senders.extend(addr_only(m.sender()));
    Some((oh, senders))
}

fn original_from_text(text: &str) -> Option<(OriginalHeaders, Vec<String>)> {
    // Skip to the first header-looking line.
    let start = text
        .lines()
        .position(|l| {
            let l = l.trim_start_matches('>').trim_start();
            l.split_once(':').is_some_and(|(n, _)| {
                !n.is_empty() && n.len() < 40 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
        })
        .unwrap_or(0);
    let rest: String = text
        .lines()
        .skip(start)
        .take(300)
        .map(|l| l.trim_start_matches("> ").trim_start_matches('>'))
        .collect::<Vec<_>>()
        .join("\n");
    let m = guarded_parse(rest.as_bytes(), true)?;
    original_from_message(&m)
}

/// Strips tags and common entities from HTML; good enough for finding words and addresses.
fn html_to_text(html: &str) -> String {
    static TAG: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(r"(?is)<(script|style)[^>]*>.*?</(script|style)>|<br\s*/?>|</?(p|div|tr|li|table|h\d)[^>]*>|<[^>]*>")
            .ok()
    });
    let Some(re) = TAG.as_ref() else {
        return html.to_string();
    };
    let t = re.replace_all(html, |c: &regex::Captures<'_>| {
        let m = c.get(0).map(|m| m.as_str()).unwrap_or("");
        if m.starts_with("<br")
            || m.starts_with("<p")
            || m.starts_with("</p")
            || m.starts_with("<div")
            || m.starts_with("</div")
            || m.starts_with("<tr")
            || m.starts_with("</tr")
            || m.starts_with("<li")
            || m.starts_with("<h")
        {
            "\n".to_string()
        } else {
            String::new()
        }
    });
    t.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// mail-parser 0.11.9 has a `debug_assert!` that input can reach ("Invalid part ID, could
/// not find multipart", found by fuzzing): in a debug build it panics. Contain it, so that
/// parsing never panics whatever the build profile; `None` reads as "not a message".
fn guarded_parse(raw: &[u8], headers_only: bool) -> Option<Message<'_>> {
    std::panic::catch_unwind(|| {
        let p = MessageParser::default();
        if headers_only { p.parse_headers(raw) } else { p.parse(raw) }
    })
    .ok()
    .flatten()
}

/// Reads the MIME structure of `raw` into a [`Doc`].
pub fn read_doc(raw: &[u8]) -> Option<Doc> {
    let msg = guarded_parse(raw, false)?;
    let mut doc = Doc::default();
    for (name, value) in msg.headers_raw() {
        if doc.headers.len() >= 500 {
            break;
        }
        doc.headers.push((name.to_ascii_lowercase(), squeeze(value)));
    }
    doc.subject = msg.subject().map(str::to_string).unwrap_or_default();
    doc.from = msg.header_raw("From").map(squeeze).unwrap_or_default();
    doc.to = addr_text(msg.to()).unwrap_or_default();
    doc.content_type = msg
        .root_part()
        .content_type()
        .map(|c| {
            let mut s = format!("{}/{}", c.ctype(), c.subtype().unwrap_or(""));
            if let Some(rt) = c.attribute("report-type") {
                s.push_str("; report-type=");
                s.push_str(rt);
            }
            s.to_ascii_lowercase()
        })
        .unwrap_or_default();

    let mut texts: Vec<String> = Vec::new();
    let mut original: Option<(OriginalHeaders, Vec<String>)> = None;
    for part in msg.parts.iter().take(200) {
        let ct = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_else(|| "text/plain".to_string());
        match &part.body {
            PartType::Multipart(_) => {}
            PartType::Message(m) => {
                if original.is_none() {
                    original = original_from_message(m);
                }
                if original.is_none() {
                    // message/rfc822 holding only headers, or odd bytes: read it as text.
                    original = original_from_text(&String::from_utf8_lossy(m.raw_message()));
                }
            }
            PartType::Text(t) | PartType::Html(t) => {
                let t = if matches!(part.body, PartType::Html(_)) || ct == "text/html" {
                    html_to_text(t)
                } else {
                    t.to_string()
                };
                match ct.as_str() {
                    "text/rfc822-headers" | "text/rfc822-header" => {
                        if original.is_none() {
                            original = original_from_text(&t);
                        }
                    }
                    "message/delivery-status" | "message/global-delivery-status" | "text/delivery-status" => {
                        push_capped(&mut doc.dsn, t)
                    }
                    "message/feedback-report" => doc.feedback.push(t),
                    _ => texts.push(t),
                }
            }
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                let t = String::from_utf8_lossy(b).into_owned();
                match ct.as_str() {
                    "message/delivery-status" | "message/global-delivery-status" | "text/delivery-status" => {
                        push_capped(&mut doc.dsn, t)
                    }
                    "message/feedback-report" => doc.feedback.push(t),
                    "text/rfc822-headers" | "message/rfc822-headers" | "message/rfc822" | "message/partial"
                        if original.is_none() =>
                    {
                        original = original_from_text(&t);
                    }
                    _ => {}
                }
            }
        }
    }

    // Broken MIME (a boundary the parser could not see): read the raw body as text.
    if texts.iter().all(|t| t.trim().is_empty()) && doc.dsn.is_empty() {
        let body_start = msg.root_part().offset_body as usize;
        if let Some(body) = msg.raw_message().get(body_start..) {
            texts.push(String::from_utf8_lossy(body).into_owned());
            doc.warnings.push("MIME structure unreadable; read the body as plain text".into());
        }
    }
    // Human-readable text: cut at the copy of the original message.
    let mut text = String::new();
    for t in &texts {
        let (head, tail) = split_at_original(t);
        text.push_str(head);
        text.push('\n');
        if original.is_none()
            && let Some(tail) = tail
        {
            original = original_from_text(tail);
        }
        if tail.is_some() {
            break;
        }
    }
    // Report text is short; a huge text part is someone's message, not the report.
    if text.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        doc.warnings.push(format!("report text truncated to {MAX_TEXT} bytes"));
    }
    doc.text = text;
    if let Some((oh, senders)) = original {
        doc.original = oh;
        doc.original_senders = senders;
    }
    if doc.dsn.is_empty() && rfc3464::looks_inline(&doc.text) {
        doc.dsn.push(doc.text.clone());
    }
    Some(doc)
}

/// Keeps at most 16 bodies of at most 1 MiB each.
fn push_capped(v: &mut Vec<String>, mut t: String) {
    const MAX: usize = 1024 * 1024;
    if v.len() >= 16 {
        return;
    }
    if t.len() > MAX {
        let mut cut = MAX;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
    }
    v.push(t);
}

/// Splits a text part at the line that starts the copy of the original message.
fn split_at_original(t: &str) -> (&str, Option<&str>) {
    if let Some(re) = ORIGINAL_MARKER.as_ref()
        && let Some(m) = re.find(t)
    {
        let (a, b) = t.split_at(m.start());
        // A marker in the very first lines is the report's own wording, not a boundary.
        if a.trim().len() > 20 {
            return (a, Some(b));
        }
    }
    (t, None)
}

/// The software that wrote the report, from well-known signatures.
pub fn identify_mta(doc: &Doc) -> Option<&'static str> {
    let h = |n: &str| doc.header(n).is_some();
    let text = &doc.text;
    let from = doc.from.to_ascii_lowercase();
    let subj = doc.subject.to_ascii_lowercase();
    let dsn = doc.dsn.join("\n").to_ascii_lowercase();
    let ms_cloud = doc.headers.iter().any(|(n, _)| n.starts_with("x-ms-exchange-crosstenant"))
        || text.contains("protection.outlook.com");
    // The first signature that holds names the software; most specific first.
    let sigs: &[(bool, &'static str)] = &[
        (from.contains("googlegroups") || text.contains("Google Groups"), "googlegroups"),
        (from.contains("@googlemail.com") || from.contains("@google.com") || from.contains("@gmail.com"), "gmail"),
        (from.contains("hotmail") || from.contains("@outlook.com") || from.contains("live.com"), "outlook"),
        (ms_cloud, "office365"),
        (
            h("x-postfix-queue-id")
                || text.contains("This is the mail system at host")
                || dsn.contains("x-postfix-queue-id"),
            "postfix",
        ),
        (
            h("x-failed-recipients")
                || text.contains("This message was created automatically by mail delivery software")
                || dsn.contains("x-exim"),
            "exim",
        ),
        (text.contains("This is the qmail-send program") || text.contains("qmail-send"), "qmail"),
        (
            text.contains("----- Transcript of session follows -----")
                || text.contains("The original message was received at"),
            "sendmail",
        ),
        (text.contains("DragonFly Mail Agent"), "dragonfly"),
        (text.contains("This is the MAILER-DAEMON, please DO NOT REPLY") || text.contains("OpenSMTPD"), "opensmtpd"),
        (
            h("x-ses-outgoing") || from.contains("amazonses.com") || h("x-amzn-ses") || from.contains("amazonaws.com"),
            "amazonses",
        ),
        (from.contains("yahoo"), "yahoo"),
        (from.contains("courier") || text.contains("Courier mail server"), "courier"),
        (doc.header("x-mailer").is_some_and(|v| v.contains("Lotus Domino") || v.contains("Lotus Notes")), "domino"),
        (
            h("x-ms-exchange-message-is-ndr") || text.contains("Microsoft Exchange") || subj.contains("undeliverable"),
            "exchange",
        ),
    ];
    sigs.iter().find(|(ok, _)| *ok).map(|(_, n)| *n)
}

/// Every per-recipient row the report yields, best source first, deduplicated and capped.
pub fn rows(doc: &Doc) -> Vec<Row> {
    let exclude = excluded_addresses(doc);
    let keep = |r: &Row| !exclude.contains(&r.address);

    let mut dsn_rows: Vec<Row> = doc.dsn.iter().flat_map(|d| rfc3464::parse(d)).collect();
    dsn_rows.extend(ses::parse(&doc.text));
    let mut text_rows: Vec<Row> = Vec::new();
    text_rows.extend(sendmail::parse(&doc.text));
    text_rows.extend(postfix::parse(&doc.text));
    text_rows.extend(exim::parse(&doc.text));
    text_rows.extend(generic::parse_phrases(&doc.text));
    text_rows.retain(keep);

    let mut out: Vec<Row> = Vec::new();
    let push = |out: &mut Vec<Row>, r: Row| {
        if out.len() >= MAX_RECIPIENTS {
            return;
        }
        if let Some(e) = out.iter_mut().find(|e| e.address == r.address) {
            merge(e, r);
        } else {
            out.push(r);
        }
    };
    let dsn_kept: Vec<Row> = dsn_rows.into_iter().filter(|r| !r.address.is_empty()).collect();
    if !dsn_kept.is_empty() {
        for r in dsn_kept {
            push(&mut out, r);
        }
        for r in text_rows {
            if let Some(e) = out.iter_mut().find(|e| e.address == r.address) {
                merge(e, r);
            }
        }
    } else if !text_rows.is_empty() {
        for r in text_rows {
            push(&mut out, r);
        }
    }
    if out.is_empty()
        && let Some(x) = doc.header("x-failed-recipients")
    {
        for a in addresses_in(x) {
            push(&mut out, Row { address: a, ..Row::default() });
        }
    }
    if out.is_empty() {
        for r in generic::parse(&doc.text) {
            if keep(&r) && !is_system_address(&r.address) {
                push(&mut out, r);
            }
        }
    }
    for r in out.iter_mut().take(50) {
        enrich(r, &doc.text);
    }
    out
}

/// When a row's diagnostic carries no reply code, adds the first line after the address
/// in the report text that does (templates often put the server's words a few lines below).
fn enrich(r: &mut Row, text: &str) {
    let has_code = |d: &str| reply_code_in(d).is_some() || status_in(d).is_some();
    if r.diagnostic.as_deref().is_some_and(has_code) {
        return;
    }
    let lower = text.to_lowercase();
    let Some(pos) = lower.find(&r.address) else {
        return;
    };
    let Some(after) = text.get(pos..) else {
        return;
    };
    let found = after.lines().skip(1).take(15).find(|l| has_code(l) && !l.trim_start().starts_with(">>>"));
    if let Some(line) = found {
        let extra = squeeze(line);
        let d = match r.diagnostic.take() {
            Some(d) if !d.is_empty() => format!("{d} {extra}"),
            _ => extra,
        };
        if r.status.is_none() {
            r.status = status_in(&d);
        }
        if r.reply_code.is_none() {
            r.reply_code = reply_code_in(&d);
        }
        if r.remote_mta.is_none() {
            r.remote_mta = remote_in(&d);
        }
        r.diagnostic = Some(squeeze(&d));
    }
}

/// Fills the empty fields of `e` from `r` (a weaker source about the same address).
fn merge(e: &mut Row, r: Row) {
    let weak_diag = e.diagnostic.as_deref().is_none_or(|d| d.trim().len() < 4);
    if weak_diag && r.diagnostic.is_some() {
        e.diagnostic = r.diagnostic;
    }
    if e.status.is_none() {
        e.status = r.status;
    }
    if e.reply_code.is_none() {
        e.reply_code = r.reply_code;
    }
    if e.remote_mta.is_none() {
        e.remote_mta = r.remote_mta;
    }
}

fn excluded_addresses(doc: &Doc) -> Vec<String> {
    let mut v = Vec::new();
    for name in ["from", "to", "return-path", "reply-to", "sender"] {
        if let Some(h) = doc.header(name) {
            v.extend(addresses_in(h));
        }
    }
    v.extend(doc.original_senders.iter().cloned());
    // Message-IDs look like addresses; they never are recipients.
    if let Some(id) = &doc.original.message_id {
        v.extend(addresses_in(id));
    }
    for line in doc.text.lines() {
        let l = line.trim_start().to_ascii_lowercase();
        if ["message-id:", "in-reply-to:", "references:", "return-path:", "x-original-message-id:"]
            .iter()
            .any(|h| l.starts_with(h))
        {
            v.extend(addresses_in(line));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_addresses() {
        assert_eq!(clean_address("rfc822; <Kiji@Example.JP>"), Some("kiji@example.jp".into()));
        assert_eq!(clean_address("\"Neko\" <a@b.example>"), Some("a@b.example".into()));
        assert_eq!(clean_address("no-at-sign"), None);
    }

    #[test]
    fn finds_codes() {
        assert_eq!(status_in("said: 550 5.1.1 <a@b.c>: unknown").as_deref(), Some("5.1.1"));
        assert_eq!(status_in("Exim 4.80.1"), None);
        assert_eq!(reply_code_in("host x said: 550 5.1.1 no").as_deref(), Some("550"));
    }
}
