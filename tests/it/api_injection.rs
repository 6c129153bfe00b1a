//! No header or MIME-part injection through `POST /api/v1/messages` (issue 14): hostile JSON
//! made by proptest (CR, LF, NUL and other controls, header-looking and boundary-looking text,
//! quotes, commas and angle brackets in every field) is sent to the daemon. Every accepted
//! message, read back from the store and parsed with mail-parser, must have exactly the
//! headers, addresses and MIME parts the JSON asked for; every refused one must be a 422
//! problem naming a field. Prints how many inputs were tried, accepted, refused, and how many
//! injected a header or a part (must be 0).
//!
//! `MAILERD_INJECTION_CASES` sets the number of inputs (default 300).
//! Must not: use any address outside 127.0.0.0/8.

use std::collections::BTreeMap;

use base64::Engine as _;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use mailerd::store::{MessageId, Scope, Store};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use crate::harness::TestDaemon;
use crate::harness::http::post_json;

/// An RFC 2047 word (`X-Injected: yes`) written literally: readers may decode it (mail-parser
/// does, even inside quoted file names) or not, so values are compared without it.
const ENCODED_WORD: &str = "=?utf-8?b?WC1JbmplY3RlZDogeWVz?=";
const ENCODED_WORD_TEXT: &str = "X-Injected: yes";

/// Pieces of text that may go into a header once quoted or encoded: words, quotes, commas,
/// angle brackets, header-looking and boundary-looking text, encoded-word lookalikes.
const PRINTABLE: &[&str] = &[
    "hello",
    "Invoice 42",
    " ",
    "\t",
    "é",
    "X-Injected: yes",
    "Bcc: evil@dest.test",
    "--",
    "--=_mailerd_boundary--",
    "Content-Type: multipart/mixed; boundary=\"zz\"",
    ENCODED_WORD,
    ";",
    "\"",
    "\\",
    ",",
    "(",
    ":",
    "<",
    ">",
    "<evil@dest.test>",
    ", evil@dest.test",
    "name=\"x\"",
    "boundary=zz",
];

/// Pieces that must never reach a header: line breaks, NUL and other controls, and the
/// classic injections built from them.
const CONTROLS: &[&str] = &[
    "\r\n",
    "\n",
    "\r",
    "\0",
    "\u{1}",
    "\u{1b}[0m",
    "\u{7f}",
    "\u{85}",
    "\r\nBcc: evil@dest.test",
    "\nX-Injected: yes",
    "\r\n\r\n--boundary\r\nContent-Type: text/html\r\nX-Injected: yes\r\n\r\n<b>evil</b>\r\n--boundary--",
];

/// Content types the API takes.
const CONTENT_TYPES: &[&str] = &[
    "application/pdf",
    "image/png",
    "text/plain",
    "text/plain; charset=utf-8",
    "application/octet-stream; x-note=\"a b\"",
    "text/csv; header=present",
];

/// Content types that would add headers or parts, or are no media type.
const BAD_CONTENT_TYPES: &[&str] = &[
    "text/plain\r\nX-Injected: yes",
    "text/plain\n\n--zz\nContent-Type: text/html\n\n<b>x</b>",
    "multipart/mixed; boundary=zz",
    "message/rfc822",
    "text/html; name=\"evil.html\"",
    "application/pdf; x=\"a\"b\"",
    "pdf",
    "text/plain;",
    "text/plain\0",
    "text/plain\t; charset=utf-8",
];

/// Header names the API lets callers set.
const HEADER_NAMES: &[&str] = &["X-Order", "X-Campaign", "X-Entity-Ref-ID", "X-Customer", "X-Tag"];

/// Header names the API refuses: its own, MIME's, and ones that are no header name.
const BAD_HEADER_NAMES: &[&str] = &[
    "Bcc",
    "Content-Type",
    "Content-Disposition",
    "MIME-Version",
    "X-A\r\nX-Injected",
    "X Space",
    "X-Ünï",
    "X-Colon:",
];

/// Mostly printable text (quoting and encoding at work), sometimes with controls in it.
fn hostile() -> impl Strategy<Value = String> {
    let printable = prop::collection::vec(prop::sample::select(PRINTABLE), 0..4).prop_map(|v| v.concat());
    let with_controls = (
        prop::collection::vec(prop::sample::select(PRINTABLE), 0..3),
        prop::sample::select(CONTROLS),
        prop::collection::vec(prop::sample::select(PRINTABLE), 0..2),
    )
        .prop_map(|(a, c, b)| format!("{}{c}{}", a.concat(), b.concat()));
    prop_oneof![12 => printable, 1 => with_controls]
}

#[derive(Debug, Clone)]
struct Input {
    from_name: String,
    to: Vec<String>,
    cc: Vec<String>,
    reply_to: Option<String>,
    subject: String,
    text: Option<String>,
    html: Option<String>,
    attachments: Vec<(String, Option<&'static str>, String)>,
    headers: BTreeMap<&'static str, String>,
    tags: Vec<String>,
    metadata: BTreeMap<String, String>,
}

fn content_type() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => prop::sample::select(CONTENT_TYPES), 1 => prop::sample::select(BAD_CONTENT_TYPES)]
}

fn header_name() -> impl Strategy<Value = &'static str> {
    prop_oneof![10 => prop::sample::select(HEADER_NAMES), 1 => prop::sample::select(BAD_HEADER_NAMES)]
}

fn input() -> impl Strategy<Value = Input> {
    (
        (hostile(), prop::collection::vec(hostile(), 1..3), prop::collection::vec(hostile(), 0..2)),
        (prop::option::of(hostile()), hostile(), prop::option::of(hostile()), prop::option::of(hostile())),
        prop::collection::vec((hostile(), prop::option::of(content_type()), hostile()), 0..3),
        prop::collection::btree_map(header_name(), hostile(), 0..3),
        (prop::collection::vec(hostile(), 0..2), prop::collection::btree_map(hostile(), hostile(), 0..2)),
    )
        .prop_map(
            |((from_name, to, cc), (reply_to, subject, text, html), attachments, headers, (tags, metadata))| Input {
                from_name,
                to,
                cc,
                reply_to,
                subject,
                text,
                html,
                attachments,
                headers,
                tags,
                metadata,
            },
        )
}

/// `NAME <local@domain>`, or the bare address when the name is empty.
fn named(name: &str, address: &str) -> String {
    if name.is_empty() { address.to_string() } else { format!("{name} <{address}>") }
}

fn body(i: &Input) -> Value {
    let to: Vec<String> = i.to.iter().enumerate().map(|(n, name)| named(name, &format!("to{n}@dest.test"))).collect();
    let cc: Vec<String> = i.cc.iter().enumerate().map(|(n, name)| named(name, &format!("cc{n}@dest.test"))).collect();
    let mut j = json!({
        "from": named(&i.from_name, "app@sender.test"),
        "to": to,
        "cc": cc,
        "subject": i.subject,
        "headers": i.headers,
        "tags": i.tags,
        "metadata": i.metadata,
        "attachments": i.attachments.iter().map(|(name, ct, content)| {
            let mut a = json!({"filename": name, "content": base64::engine::general_purpose::STANDARD.encode(content)});
            if let Some(ct) = ct {
                a["content_type"] = json!(ct);
            }
            a
        }).collect::<Vec<_>>(),
    });
    if let Some(r) = &i.reply_to {
        j["reply_to"] = json!(named(r, "reply@dest.test"));
    }
    if let Some(t) = &i.text {
        j["text"] = json!(t);
    }
    if let Some(h) = &i.html {
        j["html"] = json!(h);
    }
    if i.text.is_none() && i.html.is_none() && i.attachments.is_empty() {
        j["text"] = json!("body");
    }
    j
}

fn addresses(list: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    list.map(|a| a.iter().filter_map(|x| x.address()).map(str::to_lowercase).collect()).unwrap_or_default()
}

/// A header value as a reader shows it: RFC 2047 words decoded (mail-parser leaves them in
/// headers it does not know), folding undone, white space aside.
fn shown(raw: &str) -> Vec<String> {
    let unfolded = raw.replace("\r\n ", " ").replace("\r\n\t", "\t");
    let probe = format!("Subject: {unfolded}\r\n\r\n");
    let decoded = MessageParser::default()
        .parse(probe.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or(unfolded);
    decoded.split_whitespace().map(str::to_string).collect()
}

/// Whether a value read back is the one written: as written, or as a reader shows it, the
/// literal encoded word aside.
fn same_value(got: &str, asked: &str) -> bool {
    let plain = |s: &str| s.replace(ENCODED_WORD, "").replace(ENCODED_WORD_TEXT, "");
    let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    got == asked || shown(got) == shown(asked) || words(&plain(&shown(got).join(" "))) == words(&plain(asked))
}

fn lines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// What is wrong with an accepted message: None when it is exactly what `i` asked for.
fn injected(i: &Input, sent: &Value, raw: &[u8]) -> Option<String> {
    let Some(m) = MessageParser::default().parse(raw) else { return Some("mail-parser cannot read it".into()) };
    // Top-level headers: ours, the standard ones asked for, and the custom ones.
    let mut want: Vec<String> =
        ["received", "from", "subject", "message-id", "date", "mime-version", "content-type"].map(String::from).into();
    if !i.to.is_empty() {
        want.push("to".into());
    }
    if !i.cc.is_empty() {
        want.push("cc".into());
    }
    if i.reply_to.is_some() {
        want.push("reply-to".into());
    }
    want.extend(i.headers.keys().map(|h| h.to_ascii_lowercase()));
    // API mail to one recipient is bulk mail: mailerd adds RFC 8058 one-click unsubscribe.
    if i.to.len() + i.cc.len() == 1 {
        want.extend(["list-unsubscribe".to_string(), "list-unsubscribe-post".to_string()]);
    }
    want.sort();
    let mut got: Vec<String> = m
        .headers()
        .iter()
        .map(|h| h.name().to_ascii_lowercase())
        .filter(|n| n != "content-transfer-encoding")
        .collect();
    got.sort();
    if got != want {
        return Some(format!("headers {got:?}, asked for {want:?}"));
    }
    // Addresses: exactly those written, none smuggled in through a display name.
    let expect = |prefix: &str, n: usize| (0..n).map(|k| format!("{prefix}{k}@dest.test")).collect::<Vec<_>>();
    if addresses(m.from()) != ["app@sender.test"]
        || addresses(m.to()) != expect("to", i.to.len())
        || addresses(m.cc()) != expect("cc", i.cc.len())
        || (i.reply_to.is_some() && addresses(m.reply_to()) != ["reply@dest.test"])
    {
        return Some(format!("addresses {:?} {:?} {:?}", addresses(m.from()), addresses(m.to()), addresses(m.cc())));
    }
    // Custom header values come back as written (decoded and unfolded; white space aside).
    for (name, value) in &i.headers {
        let got = m.header(*name).and_then(|v| v.as_text()).map(str::to_string);
        if !same_value(got.as_deref().unwrap_or(""), value) {
            return Some(format!("header {name}: {got:?}, asked for {value:?}"));
        }
    }
    // MIME parts: the leaves are the bodies and the attachments asked for, nothing else.
    let leaves: Vec<_> = m.parts.iter().filter(|p| !p.is_multipart()).collect();
    let bodies = usize::from(sent.get("text").is_some()) + usize::from(i.html.is_some());
    if leaves.len() != bodies + i.attachments.len() {
        return Some(format!(
            "{} parts, asked for {} bodies and {} attachments",
            leaves.len(),
            bodies,
            i.attachments.len()
        ));
    }
    if m.parts.iter().any(|p| p.is_message()) {
        return Some("a nested message".into());
    }
    for (k, part) in m.parts.iter().enumerate().skip(1) {
        for h in part.headers() {
            let n = h.name().to_ascii_lowercase();
            if !n.starts_with("content-") {
                return Some(format!("part {k} has a header {n}"));
            }
        }
    }
    let attachments: Vec<_> = m.attachments().collect();
    if attachments.len() != i.attachments.len() {
        return Some(format!("{} attachments, asked for {}", attachments.len(), i.attachments.len()));
    }
    for (part, (name, ct, content)) in attachments.iter().zip(&i.attachments) {
        // mail-parser also decodes RFC 2047 words inside a quoted file name, and keeps the
        // folding mail-builder put into a long one: the name as written or as a reader shows it.
        let got = part.attachment_name().map(|n| n.replace("\r\n ", " "));
        if !got.as_deref().is_some_and(|g| same_value(g, name)) {
            return Some(format!("attachment name {:?}, asked for {name:?}", part.attachment_name()));
        }
        let media = ct.map_or("application/octet-stream", |c| c.split(';').next().unwrap_or("").trim());
        let got_ct = part.content_type().map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")));
        if got_ct.as_deref().map(str::to_ascii_lowercase) != Some(media.to_ascii_lowercase()) {
            return Some(format!("attachment type {got_ct:?}, asked for {media}"));
        }
        let same = match &part.body {
            PartType::Text(t) | PartType::Html(t) => lines(t) == lines(content),
            _ => part.contents() == content.as_bytes(),
        };
        if !same {
            return Some(format!("attachment {name:?} content differs"));
        }
    }
    if let Some(text) = sent.get("text").and_then(Value::as_str) {
        let got = m.body_text(0).map(|t| lines(&t));
        if got.as_deref().map(str::trim_end) != Some(lines(text).trim_end()) && !text.contains('\0') {
            return Some(format!("text {got:?}, asked for {text:?}"));
        }
    }
    None
}

#[tokio::test]
async fn hostile_json_never_injects_a_header_or_a_part() {
    let cases: usize = std::env::var("MAILERD_INJECTION_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(300);
    let d = TestDaemon::with(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[queue]\nhold = true\n[routes]\n\"dest.test\" = \"127.0.0.1:9\"\n\
         [limits]\nmax_recipients = 100\n",
    )
    .await;
    let api = d.http.expect("http listener");
    let store = d.store();
    let (key, record) = mailerd::http::auth::generate("injection", Scope::All).unwrap();
    store.create_api_key(record).await.unwrap();

    let mut runner = TestRunner::deterministic();
    let strategy = input();
    let (mut accepted, mut refused, mut injections) = (0, 0, 0);
    let mut refused_by_field: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for _ in 0..cases {
        let i = strategy.new_tree(&mut runner).expect("an input").current();
        let sent = body(&i);
        let r = post_json(api, "/api/v1/messages", Some(&key), &sent).await;
        match r.status {
            202 => {
                accepted += 1;
                let id = r.json["id"].as_str().expect("queue id");
                let raw = store.load_body(&MessageId(id.into())).await.unwrap().expect("the body is in the store");
                if let Some(why) = injected(&i, &sent, &raw) {
                    injections += 1;
                    failures.push(format!("{why}\n  input: {sent}\n  message:\n{}", String::from_utf8_lossy(&raw)));
                }
            }
            422 if r.json["field"].as_str().is_some_and(|f| !f.is_empty()) => {
                refused += 1;
                let field = r.json["field"].as_str().unwrap_or("");
                let head = field.split(['[', '.']).next().unwrap_or(field).to_string();
                *refused_by_field.entry(head).or_default() += 1;
            }
            _ => failures.push(format!("answered {} without a field: {}\n  input: {sent}", r.status, r.text)),
        }
    }
    eprintln!(
        "hostile JSON inputs: {cases} tried, {accepted} accepted, {refused} refused with 422 naming a field \
         ({refused_by_field:?}), {injections} injected a header or a part"
    );
    let summary: Vec<&str> = failures.iter().filter_map(|f| f.lines().next()).collect();
    assert!(failures.is_empty(), "{} failures:\n{}\nthe first:\n{}", failures.len(), summary.join("\n"), failures[0]);
    assert_eq!(injections, 0);
    assert!(accepted > cases / 10 && refused > cases / 10, "the inputs exercise both ways");
}
