//! `check message`: will receivers accept this message as it is?
//! Size against our limit and common receivers' limits, required headers, header and line
//! syntax, 8-bit data, a text alternative for HTML, and the DKIM signature when there is one.
//! Header fields are read by `smtp::message`.
//!
//! Standards: RFC 5322 §2.1.1 (998-octet lines), §2.2 (header fields), §3.6 (From and Date
//! required, Message-ID expected), RFC 6152 (8BITMIME), RFC 6531 (UTF-8 headers need
//! SMTPUTF8), RFC 2045 §6.8 (base64: 4 octets per 3), RFC 2046 §5.1.4 (multipart/alternative),
//! RFC 6376 (DKIM, verified with mail-auth).
//! Must not: change the message, or read more than the bytes given.

use mail_parser::{MessageParser, MimeHeaders};

use super::resolver::Resolver;
use super::{Check, CheckReport, Status};
use crate::config::CheckName;

/// The names of the checks under `[check.policy]`, written once (`config::CheckName`).
const SIZE: &str = CheckName::Size.as_str();
const HEADERS: &str = CheckName::Headers.as_str();
const HEADER_SYNTAX: &str = CheckName::HeaderSyntax.as_str();
const LINE_LENGTH: &str = CheckName::LineLength.as_str();
const EIGHT_BIT: &str = CheckName::EightBit.as_str();
const TEXT_ALTERNATIVE: &str = CheckName::TextAlternative.as_str();
use crate::smtp::message::{HeaderLine, header_lines};

/// Published size limits of large receivers (whole message as sent, after encoding).
pub const RECEIVER_LIMITS: &[(&str, u64)] = &[
    ("Outlook.com / Hotmail", 20 * 1024 * 1024),
    ("iCloud", 20 * 1024 * 1024),
    ("Gmail", 25 * 1024 * 1024),
    ("Yahoo", 25 * 1024 * 1024),
];

const MB: f64 = 1024.0 * 1024.0;

/// The pure checks of a message; `our_limit` is `limits.max_message_size`.
pub fn check(file: &str, raw: &[u8], our_limit: u64) -> CheckReport {
    let mut report = CheckReport::new("file", file);
    report.push(check_size(raw.len() as u64, our_limit));
    let (header_end, body_start) = crate::smtp::message::split_header(raw);
    let headers = raw.get(..header_end).unwrap_or(raw);
    report.push(check_required(headers));
    report.push(check_header_syntax(headers, body_start.is_some()));
    report.push(check_lines(raw));
    report.push(check_8bit(headers, raw.get(body_start.unwrap_or(raw.len())..).unwrap_or(&[])));
    report.push(check_html_alternative(raw));
    report
}

/// The size check of a message of `size` bytes (`check` runs it on the bytes it is given).
pub fn check_size(size: u64, our_limit: u64) -> Check {
    let mb = size as f64 / MB;
    let base64_note = "attachments grow by a third when base64-encoded";
    if size > our_limit {
        return Check::new(SIZE, Status::Fail)
            .detail(format!(
                "{mb:.1} MB is over this server's limit of {:.1} MB ({base64_note})",
                our_limit as f64 / MB
            ))
            .fix("put large attachments on a file share and send a link");
    }
    let refusing: Vec<String> = RECEIVER_LIMITS
        .iter()
        .filter(|(_, limit)| size > *limit)
        .map(|(name, limit)| format!("{name} {} MB", limit / (1024 * 1024)))
        .collect();
    if refusing.is_empty() {
        Check::ok(SIZE).detail(format!("{mb:.2} MB"))
    } else {
        Check::new(SIZE, Status::Warn)
            .detail(format!("{mb:.1} MB is over the limit of {} ({base64_note})", refusing.join(", ")))
            .fix("send a link instead of the attachment (an attachment of N MB needs about 4N/3 MB)")
    }
}

/// The header fields of `headers` named one of `names` (lower-case) as (lower-case name, value)
/// pairs, unfolded (by `smtp::message::header_lines`), up to the empty line; at most 10,001.
/// The other fields are passed over without being copied.
fn fields(headers: &[u8], names: &[&str]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(headers);
    let mut lines = header_lines(&text);
    let wanted = |name: &str| names.iter().any(|n| name.trim_end().eq_ignore_ascii_case(n));
    std::iter::from_fn(|| lines.next_kept(wanted))
        .take_while(|line| *line != HeaderLine::Blank)
        .filter_map(|line| match line {
            HeaderLine::Field { name, value } => Some((name.trim_end().to_ascii_lowercase(), value)),
            _ => None,
        })
        .take(10_001)
        .collect()
}

fn check_required(headers: &[u8]) -> Check {
    let f = fields(headers, &["from", "date", "message-id"]);
    let count = |n: &str| f.iter().filter(|(k, _)| k == n).count();
    let mut missing = Vec::new();
    let mut doubled = Vec::new();
    for (name, shown) in [("from", "From"), ("date", "Date"), ("message-id", "Message-ID")] {
        match count(name) {
            0 => missing.push(shown),
            1 => {}
            _ => doubled.push(shown),
        }
    }
    if !missing.is_empty() {
        return Check::new(HEADERS, Status::Fail)
            .detail(format!("missing {}", missing.join(", ")))
            .fix("add the missing header fields (RFC 5322 §3.6); large receivers refuse mail without them");
    }
    if !doubled.is_empty() {
        return Check::new(HEADERS, Status::Fail)
            .detail(format!("more than one {}", doubled.join(", ")))
            .fix("keep one of each (RFC 5322 §3.6)");
    }
    let from = f.iter().find(|(k, _)| k == "from").map(|(_, v)| v.as_str()).unwrap_or("");
    if !from.contains('@') {
        return Check::new(HEADERS, Status::Fail)
            .detail(format!("From has no address: {from:?}"))
            .fix("write From as Name <user@example.com>");
    }
    let date = f.iter().find(|(k, _)| k == "date").map(|(_, v)| v.as_str()).unwrap_or("");
    if mail_parser::DateTime::parse_rfc822(date).is_none() {
        return Check::new(HEADERS, Status::Warn)
            .detail(format!("Date is not an RFC 5322 date: {date:?}"))
            .fix("write it like Sat, 28 Nov 2026 17:00:00 +0000");
    }
    let mid = f.iter().find(|(k, _)| k == "message-id").map(|(_, v)| v.as_str()).unwrap_or("");
    if !(mid.starts_with('<') && mid.ends_with('>') && mid.contains('@')) {
        return Check::new(HEADERS, Status::Warn)
            .detail(format!("Message-ID is not <id@domain>: {mid:?}"))
            .fix("write it as <unique@your-domain>");
    }
    Check::ok(HEADERS).detail("From, Date and Message-ID present")
}

fn check_header_syntax(headers: &[u8], has_body_separator: bool) -> Check {
    for (i, line) in headers.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if i == 0 {
                return Check::new(HEADER_SYNTAX, Status::Fail)
                    .detail("the message starts with a continuation line")
                    .fix("remove the leading white space");
            }
            continue;
        }
        let colon = line.iter().position(|&b| b == b':');
        let name_ok = colon.is_some_and(|c| {
            c > 0 && line.get(..c).is_some_and(|n| n.iter().all(|&b| (33..=126).contains(&b) && b != b':'))
        });
        if !name_ok {
            let shown: String = String::from_utf8_lossy(line).chars().take(60).collect();
            return Check::new(HEADER_SYNTAX, Status::Fail)
                .detail(format!("header line {} is not `Name: value`: {shown:?}", i + 1))
                .fix("fix the header line, or separate the body from the headers by an empty line");
        }
    }
    if !has_body_separator {
        return Check::new(HEADER_SYNTAX, Status::Warn)
            .detail("no empty line between the header and the body")
            .fix("end the header with an empty line");
    }
    Check::ok(HEADER_SYNTAX)
}

fn check_lines(raw: &[u8]) -> Check {
    let mut longest = 0usize;
    let mut long_lines = 0usize;
    let mut bare_lf = 0usize;
    let mut start = 0usize;
    for i in memchr::memchr_iter(b'\n', raw) {
        let crlf = i > 0 && raw.get(i - 1) == Some(&b'\r');
        if !crlf {
            bare_lf += 1;
        }
        let len = i - start - usize::from(crlf);
        longest = longest.max(len);
        if len > 998 {
            long_lines += 1;
        }
        start = i + 1;
    }
    let bare_cr = bare_crs(raw);
    let last = raw.len() - start;
    longest = longest.max(last);
    if last > 998 {
        long_lines += 1;
    }
    if long_lines > 0 {
        return Check::new(LINE_LENGTH, Status::Fail)
            .detail(format!(
                "{long_lines} line(s) over 998 characters (longest {longest}); receivers break or refuse them"
            ))
            .fix("encode the part as quoted-printable or base64 (or wrap the HTML)");
    }
    if bare_cr > 0 {
        return Check::new(LINE_LENGTH, Status::Warn)
            .detail(format!("{bare_cr} bare CR character(s)"))
            .fix("end lines with CRLF only");
    }
    let all_lf = bare_lf > 0 && memchr::memmem::find(raw, b"\r\n").is_none();
    if bare_lf > 0 && !all_lf {
        return Check::new(LINE_LENGTH, Status::Warn)
            .detail(format!("{bare_lf} line(s) end in a bare LF among CRLF lines"))
            .fix("end every line with CRLF");
    }
    Check::ok(LINE_LENGTH).detail(format!("longest line {longest}"))
}

/// How many CR characters of `raw` are not followed by LF.
pub fn bare_crs(raw: &[u8]) -> usize {
    memchr::memchr_iter(b'\r', raw).filter(|&i| raw.get(i + 1) != Some(&b'\n')).count()
}

fn check_8bit(headers: &[u8], body: &[u8]) -> Check {
    if !headers.is_ascii() {
        let utf8 = std::str::from_utf8(headers).is_ok();
        return Check::new(EIGHT_BIT, if utf8 { Status::Warn } else { Status::Fail })
            .detail(if utf8 {
                "raw UTF-8 in the header: the receiving server must support SMTPUTF8"
            } else {
                "8-bit data in the header that is not UTF-8"
            })
            .fix("encode non-ASCII header text as RFC 2047 encoded-words (=?UTF-8?B?...?=)");
    }
    if !body.is_ascii() {
        return Check::new(EIGHT_BIT, Status::Warn)
            .detail(
                "8-bit data in the body: needs 8BITMIME at every hop (almost every server has it; some relays do not)",
            )
            .fix("encode the 8-bit parts as quoted-printable or base64 to be safe everywhere");
    }
    Check::ok(EIGHT_BIT).detail("7-bit clean")
}

fn check_html_alternative(raw: &[u8]) -> Check {
    let Some((html, text)) = html_and_text(raw) else {
        return Check::new(TEXT_ALTERNATIVE, Status::Unknown).detail("the MIME structure could not be read");
    };
    text_alternative(html, text)
}

/// The text-alternative verdict on a message whose reader is shown an HTML part (`html`) and a
/// plain-text part (`text`) (`check` finds both in the MIME structure).
pub fn text_alternative(html: bool, text: bool) -> Check {
    match (html, text) {
        (true, false) => Check::new(TEXT_ALTERNATIVE, Status::Warn)
            .detail("HTML without a text/plain alternative: spam filters score that, some readers show nothing")
            .fix("send multipart/alternative with a text/plain part first"),
        (true, true) => Check::ok(TEXT_ALTERNATIVE).detail("HTML with a text alternative"),
        _ => Check::ok(TEXT_ALTERNATIVE).detail("plain text"),
    }
}

/// Whether a reader is shown an HTML part and a plain-text part of `raw` (`shown_parts`); None
/// when `raw` has no header to read.
fn html_and_text(raw: &[u8]) -> Option<(bool, bool)> {
    let mut shown = Vec::new();
    shown_parts(raw, 0, &mut shown)?;
    let has = |subtype: &str| shown.iter().any(|(t, s)| t == "text" && s == subtype);
    Some((has("html"), has("plain")))
}

/// Multiparts nested deeper than this, and parts after the first `MAX_PARTS`, are not read.
const MAX_DEPTH: usize = 16;
const MAX_PARTS: usize = 1000;

/// The content types (type, subtype; lower-case; `text/plain` when a part names none) of the
/// parts of `raw` a reader shows as its text: the leaves that are no attachment (RFC 2183
/// disposition `attachment`, or a file name). Read from the part headers alone, each parsed
/// by mail-parser: a multipart body is cut at its boundary lines (RFC 2046 §5.1.1) and no
/// body is decoded, so a large attachment costs one search for the next boundary. None when
/// `raw` has no header to read.
fn shown_parts(raw: &[u8], depth: usize, out: &mut Vec<(String, String)>) -> Option<()> {
    static MIME_HEADERS: std::sync::LazyLock<MessageParser> =
        std::sync::LazyLock::new(|| MessageParser::new().with_mime_headers());
    let head = MIME_HEADERS.parse_headers(raw)?;
    let (t, s) = match head.content_type() {
        Some(ct) => (ct.ctype().to_ascii_lowercase(), ct.subtype().unwrap_or("").to_ascii_lowercase()),
        None => ("text".to_string(), "plain".to_string()),
    };
    let boundary = head.content_type().and_then(|ct| ct.attribute("boundary")).filter(|b| !b.is_empty());
    if t == "multipart"
        && let Some(boundary) = boundary
    {
        if depth < MAX_DEPTH {
            let body = raw.get(crate::smtp::message::split_header(raw).1.unwrap_or(raw.len())..).unwrap_or_default();
            for part in multipart_parts(body, boundary.as_bytes()) {
                if out.len() >= MAX_PARTS {
                    break;
                }
                // A part with no header at all is plain text (RFC 2046 §5.1.1).
                if shown_parts(part, depth + 1, out).is_none() {
                    out.push(("text".to_string(), "plain".to_string()));
                }
            }
        }
        return Some(());
    }
    let attachment = head.attachment_name().is_some()
        || head.content_disposition().is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
    if !attachment {
        out.push((t, s));
    }
    Some(())
}

/// The body parts of a multipart body: what lies between its delimiter lines (`--boundary`
/// at the start of a line), up to the close delimiter (`--boundary--`) or the end.
fn multipart_parts<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<&'a [u8]> {
    let delimiter = [b"--", boundary].concat();
    let finder = memchr::memmem::Finder::new(&delimiter);
    let mut parts = Vec::new();
    let mut open: Option<usize> = None;
    for at in finder.find_iter(body) {
        if at > 0 && body.get(at - 1) != Some(&b'\n') {
            continue;
        }
        let after = at + delimiter.len();
        let line_end =
            memchr::memchr(b'\n', body.get(after..).unwrap_or_default()).map_or(body.len(), |n| after + n + 1);
        if let Some(start) = open {
            // The CRLF before the delimiter belongs to it (RFC 2046 §5.1.1).
            let end = if at >= 2 && body.get(at - 2) == Some(&b'\r') { at - 2 } else { at.saturating_sub(1) };
            parts.push(body.get(start..end.max(start)).unwrap_or_default());
        }
        if body.get(after..after + 2) == Some(b"--") {
            return parts;
        }
        open = Some(line_end);
    }
    if let Some(start) = open {
        parts.push(body.get(start..).unwrap_or_default());
    }
    parts
}

/// Every message check: the pure ones, one-click unsubscribe, and with a resolver the DKIM
/// signature and the From domain's DMARC record (the CLI, the API and the dashboard run this).
pub async fn check_all(file: &str, raw: &[u8], our_limit: u64, dns: Option<&Resolver>) -> CheckReport {
    let mut report = check(file, raw, our_limit);
    report.push(check_unsubscribe(raw));
    if let Some(dns) = dns {
        report.push(check_dkim(raw, dns).await);
        report.push(check_from_dmarc(raw, dns).await);
    }
    report
}

/// Whether the value of a `List-Unsubscribe` field holds an https URI (RFC 2369 `<...>` list).
fn has_https_uri(value: &str) -> bool {
    value.split(',').any(|u| u.trim().trim_start_matches('<').to_ascii_lowercase().starts_with("https://"))
}

/// Bulk mail (a list, or marked bulk) must offer one-click unsubscribe (RFC 8058): an https
/// `List-Unsubscribe` URI, `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, and both
/// covered by the DKIM signature when the message is signed.
pub fn check_unsubscribe(raw: &[u8]) -> Check {
    const NAME: &str = "unsubscribe";
    let (header_end, _) = crate::smtp::message::split_header(raw);
    let fields = fields(
        raw.get(..header_end).unwrap_or(raw),
        &["list-unsubscribe", "list-unsubscribe-post", "list-id", "precedence", "dkim-signature"],
    );
    let value = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim().to_string());
    let list_unsubscribe = value("list-unsubscribe");
    let post = value("list-unsubscribe-post");
    let bulk_marker = if value("list-id").is_some() {
        Some("List-Id")
    } else if value("precedence").is_some_and(|p| ["bulk", "list"].contains(&p.to_ascii_lowercase().as_str())) {
        Some("Precedence: bulk")
    } else {
        None
    };
    let add = "add List-Unsubscribe: <https://…>, <mailto:…> and List-Unsubscribe-Post: List-Unsubscribe=One-Click, \
               or send it through the API or a login in unsubscribe.bulk_logins (mailerd adds both)";
    let Some(lu) = list_unsubscribe else {
        return match bulk_marker {
            Some(marker) => Check::new(NAME, Status::Warn)
                .detail(format!(
                    "bulk mail ({marker}) without List-Unsubscribe: Gmail and Yahoo require one-click unsubscribe"
                ))
                .fix(add),
            None => Check::new(NAME, Status::Info)
                .detail("no List-Unsubscribe (needed on bulk mail; mailerd adds it to API and bulk-login mail)"),
        };
    };
    if !has_https_uri(&lu) {
        return Check::new(NAME, Status::Fail)
            .detail(format!("List-Unsubscribe has no https URI ({lu}): a mailto alone is not one-click (RFC 8058)"))
            .fix(add);
    }
    if !post.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("List-Unsubscribe=One-Click")) {
        return Check::new(NAME, Status::Fail)
            .detail(
                "List-Unsubscribe without List-Unsubscribe-Post: List-Unsubscribe=One-Click: not one-click (RFC 8058)",
            )
            .fix("add List-Unsubscribe-Post: List-Unsubscribe=One-Click");
    }
    // RFC 8058 §4: the signature must cover both fields.
    let signed: Vec<Vec<String>> = fields
        .iter()
        .filter(|(n, _)| n == "dkim-signature")
        .map(|(_, v)| {
            v.split(';')
                .filter_map(|t| t.trim().strip_prefix("h="))
                .flat_map(|h| h.split(':').map(|n| n.trim().to_ascii_lowercase()).collect::<Vec<_>>())
                .collect()
        })
        .collect();
    let covered =
        |h: &Vec<String>| ["list-unsubscribe", "list-unsubscribe-post"].iter().all(|n| h.iter().any(|x| x == n));
    if !signed.is_empty() && !signed.iter().any(covered) {
        return Check::new(NAME, Status::Fail)
            .detail("the DKIM signature does not cover List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 §4)")
            .fix("sign after adding them, with both in h= (mailerd's [dkim] signing does)");
    }
    Check::ok(NAME).detail("one-click unsubscribe (https List-Unsubscribe with List-Unsubscribe-Post)")
}

/// The From domain publishes DMARC: Gmail, Yahoo and Outlook refuse bulk mail from a domain
/// without a record.
pub async fn check_from_dmarc(raw: &[u8], dns: &Resolver) -> Check {
    const NAME: &str = "from_dmarc";
    let domain = MessageParser::default()
        .parse_headers(raw)
        .and_then(|m| m.from().and_then(|f| f.first()).and_then(|a| a.address()).map(str::to_string))
        .and_then(|a| a.rsplit_once('@').map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase()));
    let Some(domain) = domain.filter(|d| d.contains('.')) else {
        return Check::new(NAME, Status::Unknown).detail("no From address to check");
    };
    match super::domain::dmarc_records(&domain, dns).await {
        Err(e) => Check::new(NAME, Status::Unknown).detail(format!("could not check: {e}")),
        Ok((at, records)) if records.len() == 1 => Check::ok(NAME).detail(format!("{at}: {}", records.join(""))),
        Ok((at, records)) if records.len() > 1 => Check::new(NAME, Status::Fail)
            .detail(format!("{} DMARC records at {at}: receivers ignore them all", records.len()))
            .fix("keep one v=DMARC1 record"),
        Ok(_) => Check::new(NAME, Status::Warn)
            .detail(format!("the From domain {domain} publishes no DMARC record: Gmail, Yahoo and Outlook refuse bulk mail from it"))
            .fix(format!("publish _dmarc.{domain} TXT \"v=DMARC1; p=none; rua=mailto:dmarc@{domain}\" (mailerd check domain {domain})")),
    }
}

/// Verifies the DKIM signatures of a message, when it has any.
pub async fn check_dkim(raw: &[u8], dns: &Resolver) -> Check {
    use mail_auth::{AuthenticatedMessage, DkimResult};
    let Some(msg) = AuthenticatedMessage::parse(raw) else {
        return Check::new("dkim", Status::Unknown).detail("the header could not be read");
    };
    if msg.dkim_headers.is_empty() {
        return Check::new("dkim", Status::Info).detail("not signed (mailerd signs when it sends, with [dkim])");
    }
    let results = dns.authenticator().verify_dkim(&msg).await;
    let mut worst = Check::new("dkim", Status::Fail).detail("no signature verified");
    for r in &results {
        let c = match r.result() {
            DkimResult::Pass => Check::ok("dkim")
                .detail(format!("signature of d={} verifies", r.signature().map(|s| s.d.as_str()).unwrap_or("?"))),
            DkimResult::TempError(e) => Check::new("dkim", Status::Unknown).detail(format!("could not check: {e}")),
            DkimResult::Neutral(e) | DkimResult::Fail(e) | DkimResult::PermError(e) => Check::new("dkim", Status::Fail)
                .detail(format!(
                    "signature of d={} does not verify: {e}",
                    r.signature().map(|s| s.d.as_str()).unwrap_or("?")
                ))
                .fix("sign after the last change to the message, and publish the selector's key"),
            DkimResult::None => continue,
        };
        // One passing signature is enough.
        if c.status == Status::Ok {
            return c;
        }
        if worst.fix.is_none() || c.status == Status::Fail {
            worst = c;
        }
    }
    if worst.fix.is_none() && worst.status == Status::Fail {
        worst = worst.fix("check the DKIM-Signature header");
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &[u8] = b"From: A <a@example.com>\r\nTo: b@example.net\r\nSubject: hi\r\nDate: Sat, 28 Nov 2026 17:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHello.\r\n";

    fn status(r: &CheckReport, name: &str) -> Status {
        r.get(name).map(|c| c.status).unwrap_or(Status::Ok)
    }

    #[test]
    fn a_good_message_passes() {
        let r = check("m.eml", GOOD, 26_214_400);
        assert!(r.ok(), "{r:?}");
    }

    #[test]
    fn one_click_unsubscribe_on_bulk_mail() {
        let head = "From: a@example.com\r\nDate: Sat, 28 Nov 2026 17:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n";
        let with = |extra: &str| format!("{head}{extra}\r\nbody\r\n");
        let st = |extra: &str| check_unsubscribe(with(extra).as_bytes()).status;
        assert_eq!(st(""), Status::Info, "one-to-one mail");
        assert_eq!(st("List-Id: News <news.example.com>\r\n"), Status::Warn);
        assert_eq!(st("Precedence: bulk\r\n"), Status::Warn);
        assert_eq!(st("List-Unsubscribe: <mailto:u@example.com>\r\n"), Status::Fail, "mailto only");
        assert_eq!(st("List-Unsubscribe: <https://example.com/u/1>\r\n"), Status::Fail, "no Post");
        let good = "List-Unsubscribe: <mailto:u@example.com>,\r\n <https://example.com/u/1>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";
        assert_eq!(st(good), Status::Ok);
        let signed_without =
            format!("DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s; h=from:date; bh=x; b=y\r\n{good}");
        assert_eq!(st(&signed_without), Status::Fail, "not covered by the signature");
        let signed_with = format!(
            "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s;\r\n h=from:date:List-Unsubscribe:List-Unsubscribe-Post; bh=x; b=y\r\n{good}"
        );
        assert_eq!(st(&signed_with), Status::Ok);
        for odd in [&b""[..], b"List-Unsubscribe:\r\n\r\n", b"\xff: <\r\n\r\n"] {
            let _ = check_unsubscribe(odd);
        }
    }

    /// (html, text) as mail-parser's full parse finds them: the oracle `shown_parts` must
    /// agree with without decoding a body.
    fn html_and_text_by_full_parse(raw: &[u8]) -> (bool, bool) {
        let msg = MessageParser::default().parse(raw).expect("parsed");
        let (mut html, mut text) = (false, false);
        for part in msg.parts.iter() {
            if part.attachment_name().is_some()
                || part.content_disposition().is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"))
            {
                continue;
            }
            match part
                .content_type()
                .map(|ct| (ct.ctype().to_ascii_lowercase(), ct.subtype().map(str::to_ascii_lowercase)))
            {
                Some((t, Some(s))) if t == "text" && s == "html" => html = true,
                Some((t, Some(s))) if t == "text" && s == "plain" => text = true,
                None => text = true,
                _ => {}
            }
        }
        (html, text)
    }

    #[test]
    fn the_mime_skeleton_agrees_with_a_full_parse() {
        let head = "From: a@example.com\r\nDate: Sat, 28 Nov 2026 17:00:00 +0000\r\nMessage-ID: <1@x.example>\r\nMIME-Version: 1.0\r\n";
        let b64 = "QUJD".repeat(400);
        let cases: Vec<String> = vec![
            format!("{head}\r\nplain\r\n"),
            format!("{head}Content-Type: text/html\r\n\r\n<p>hi</p>\r\n"),
            format!("{head}Content-Type: TEXT/HTML; charset=utf-8\r\n\r\n<p>hi</p>\r\n"),
            // The usual: alternative inside mixed, with a base64 attachment.
            format!(
                "{head}Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\nhi\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--inner--\r\n--outer\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--outer--\r\nepilogue\r\n"
            ),
            // HTML alone, next to a text file that is an attachment.
            format!(
                "{head}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\nnotes\r\n--b--\r\n"
            ),
            // A text part named as a file (no disposition) is an attachment too.
            format!(
                "{head}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b\r\nContent-Type: text/plain; name=n.txt\r\n\r\nnotes\r\n--b--\r\n"
            ),
            // A part without a Content-Type is text/plain; one without any header too.
            format!(
                "{head}Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: 7bit\r\n\r\nhi\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b--\r\n"
            ),
            // A boundary string inside a part's text, not at a line start, is text.
            format!(
                "{head}Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\nsee x--b and --bb\r\n--b--\r\n"
            ),
            // A multipart with no boundary parameter.
            format!("{head}Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/html\r\n\r\nhi\r\n"),
            // An attached message: its parts are not this message's text.
            format!(
                "{head}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@example.com\r\nContent-Type: text/plain\r\n\r\ninner\r\n--b--\r\n"
            ),
            // Bare LF line ends and no close delimiter.
            format!(
                "{}Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: text/html\n\n<p>x</p>\n",
                head.replace("\r\n", "\n")
            ),
        ];
        for (i, raw) in cases.iter().enumerate() {
            assert_eq!(
                html_and_text(raw.as_bytes()),
                Some(html_and_text_by_full_parse(raw.as_bytes())),
                "case {i}:\n{raw}"
            );
        }
        // Deep nesting and many parts stay bounded.
        let mut deep = String::from("Content-Type: text/html\r\n\r\nx\r\n");
        for d in 0..100 {
            deep = format!("Content-Type: multipart/mixed; boundary=d{d}\r\n\r\n--d{d}\r\n{deep}\r\n--d{d}--\r\n");
        }
        let _ = check_html_alternative(format!("{head}{deep}").as_bytes());
        let many = format!(
            "{head}Content-Type: multipart/mixed; boundary=m\r\n\r\n{}--m--\r\n",
            "--m\r\n\r\nx\r\n".repeat(5000)
        );
        let mut shown = Vec::new();
        shown_parts(many.as_bytes(), 0, &mut shown);
        assert_eq!(shown.len(), MAX_PARTS);
    }

    #[test]
    fn problems_are_found() {
        let r = check("m.eml", b"To: b@example.net\r\nSubject: x\r\n\r\nbody\r\n", 26_214_400);
        assert_eq!(status(&r, "headers"), Status::Fail);
        let long = [GOOD, "x".repeat(1200).as_bytes(), b"\r\n"].concat();
        assert_eq!(status(&check("m", &long, 26_214_400), "line_length"), Status::Fail);
        let eight = [GOOD, "Grüße\r\n".as_bytes()].concat();
        assert_eq!(status(&check("m", &eight, 26_214_400), "8bit"), Status::Warn);
        let html = b"From: a@example.com\r\nDate: Sat, 28 Nov 2026 17:00:00 +0000\r\nMessage-ID: <1@x.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n";
        assert_eq!(status(&check("m", html, 26_214_400), "text_alternative"), Status::Warn);
        let big = [GOOD, &vec![b'a'; 21 * 1024 * 1024][..]].concat();
        let r = check("m", &big, 26_214_400);
        assert_eq!(status(&r, "size"), Status::Warn);
        assert!(r.get("size").and_then(|c| c.detail.as_deref()).is_some_and(|d| d.contains("a third")));
        assert_eq!(status(&check("m", &big, 1_000_000), "size"), Status::Fail);
        let bad = b"From a@example.com\r\nDate: x\r\n\r\nbody";
        assert_eq!(status(&check("m", bad, 26_214_400), "header_syntax"), Status::Fail);
        for odd in [&b""[..], b"\r\n", b"\n\n\n", b"\xff\xfe", b":\r\n\r\n"] {
            let _ = check("m", odd, 1024);
        }
    }
}
