//! Reads per-recipient rows out of a [`Doc`] (built by `mime.rs`): first the RFC 3464
//! fields (`rfc3464.rs`, `ses.rs`), then each MTA family's plain-text layout (`postfix.rs` and
//! `exim.rs` on the line loop of `lines.rs`, `sendmail.rs`, `fml.rs`, `generic.rs` phrases),
//! then a generic address scan; plus the small text helpers they share (addresses, status and
//! reply codes, remote host) and the MTA signature table.
//!
//! Standards: RFC 3464, RFC 3463, RFC 5321 reply codes.
//! Must not: panic, allocate without bound (callers cap the input, rows are capped here),
//! or decide a reason (that is `classify.rs`).

pub mod exim;
pub mod fml;
pub mod generic;
pub mod lines;
pub mod mime;
pub mod postfix;
pub mod rfc3464;
pub mod sendmail;
pub mod ses;

pub use mime::{Doc, read_doc};

use regex::Regex;
use std::sync::LazyLock;

/// Most recipients kept from one report.
pub const MAX_RECIPIENTS: usize = 1000;
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
    /// The diagnostic is of type `X-UNIX` (RFC 3464 §2.3.6): a local program's words.
    pub local_program: bool,
}

static ADDR_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}|[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+@\[[0-9.]+\]").ok()
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
        local_program: false,
    }
}

/// The first SMTP reply code in `text` (`"550"`).
pub fn reply_code_in(text: &str) -> Option<String> {
    let c = CODE_RE.as_ref()?.captures(text)?;
    Some(c.get(1)?.as_str().to_string())
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
    text_rows.extend(fml::parse(doc));
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
    e.local_program |= r.local_program;
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
