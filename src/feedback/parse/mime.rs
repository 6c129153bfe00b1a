//! MIME side of reading a report: turns raw bytes into a [`Doc`] — top-level headers, the
//! human-readable text (cut before the returned message), the `message/delivery-status`
//! and `message/feedback-report` bodies, and the returned message's headers
//! (`message/rfc822`, `text/rfc822-headers`, or an inline copy after a marker line).
//!
//! Standards: RFC 5322, MIME (RFC 2045-2049), RFC 6522 `multipart/report`, through
//! mail-parser 0.11.9 (`message/delivery-status` arrives as a binary part). mail-parser
//! calls go through `guarded_parse` (see there for the one known panic).
//! Must not: panic, keep unbounded text (caps below), or read recipients (that is `mod.rs`).

use mail_parser::{Address, Message, MessageParser, MimeHeaders, PartType};
use regex::Regex;
use std::sync::LazyLock;

use super::{clean_address, rfc3464, squeeze};
use crate::feedback::report::OriginalHeaders;

/// Longest report text read, in bytes.
const MAX_TEXT: usize = 256 * 1024;

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

/// Where the copy of the original message starts in a plain-text report.
static ORIGINAL_MARKER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?im)^[ \t>]*(?:-{2,}|={2,}|\*{2,})?[ \t]*(?:original message|(?:this is a )?copy of (?:the |your )?(?:original )?message|below this line is a copy|returned message|message header follows|unsent message below|(?:the )?(?:original )?message (?:headers? )?follows?|returned mail|original mail (?:as )?follows|forwarded message|below is a copy of|headers of the original|undelivered message (?:headers )?follows|the text you sent follows|original message headers|partial message follows|your message reads|content-type: message/rfc822|message text follows|\[?original message)").ok()
});

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
            l.split_once(':').is_some_and(|(n, _)| crate::smtp::message::is_field_name(n))
        })
        .unwrap_or(0);
    let mut rest: String = text
        .lines()
        .skip(start)
        .take(300)
        .map(|l| l.trim_start_matches("> ").trim_start_matches('>'))
        .collect::<Vec<_>>()
        .join("\n");
    // A headers-only part (text/rfc822-headers) ends with its last field: without a line end
    // the parser would drop that field.
    rest.push_str("\n\n");
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
pub(crate) fn guarded_parse(raw: &[u8], headers_only: bool) -> Option<Message<'_>> {
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
