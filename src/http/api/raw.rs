//! `POST /api/v1/messages/raw`: send a message the caller wrote whole (MIME), as a
//! `message/rfc822` body (the envelope in the query: `?from=ADDR&to=ADDR,ADDR`) or as JSON
//! (`{"raw": BASE64, "from", "to", "tags", "metadata"}`).
//!
//! The caller's header fields are kept byte for byte and in their order; mailerd only adds
//! what it must: its `Received:` trace header first, `Date:` and `Message-ID:` when missing,
//! the one-click unsubscribe fields (RFC 8058) unless the message has its own `List-Unsubscribe`,
//! and the DKIM signature (by `accept`, after everything else); it removes `Bcc:` and
//! `Resent-Bcc:` (they would tell every recipient who else got the mail). Line ends become
//! CRLF (a bare LF is not a line end in SMTP); nothing else of the body changes.
//! The envelope sender is `from`, else the first address of the `From:` header; the
//! recipients are `to`, else the addresses of To/Cc/Bcc (Resent-* when there are any), as
//! `sendmail -t` reads them. The key's scope covers the envelope sender and every `From:` and
//! `Sender:` address. Recipients, the checklist, the size limit, idempotency and the reply are
//! those of `POST /api/v1/messages` (`messages::recipients`, `messages::check_message`,
//! `messages::commit`).
//! Standards: RFC 5322 (header fields), RFC 2046 (message/rfc822), RFC 4648 (base64).
//! Must not: change a header field of the caller's other than by removing Bcc, let a key send
//! a From: outside its scope, or take a message over the size limit.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde::Deserialize;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::problem::Problem;
use super::batch;
use super::idempotency;
use super::messages::{self, Listed, Prepared};
use crate::accept;
use crate::inbound::local;
use crate::inbound::policy::Submitter;
use crate::smtp::address::Mailbox;
use crate::store::{ApiKey, MessageId};
use crate::time::Timestamp;

/// The envelope of a `message/rfc822` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuery {
    pub from: Option<String>,
    /// Recipients, separated by commas.
    pub to: Option<String>,
    /// Run every check and record the events, but queue nothing.
    #[serde(default)]
    pub sandbox: bool,
}

/// The JSON form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    /// Base64 of the whole message.
    raw: String,
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    sandbox: bool,
}

/// A raw send read from either form: the message's bytes and what came with them.
struct Raw {
    message: Vec<u8>,
    from: Option<String>,
    to: Vec<String>,
    tags: Vec<String>,
    metadata: BTreeMap<String, String>,
    sandbox: bool,
}

pub async fn send(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    super::body::Query(query): super::body::Query<RawQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = body.map_err(|e| super::body::unreadable(&e))?;
    let query_text = uri.query().unwrap_or("").as_bytes().to_vec();
    idempotency::guard(&state, &key, &headers, &query_text, body, async |body, pending| {
        let raw = read(&headers, query, &body)?;
        send_raw(&state, &key, raw, pending).await
    })
    .await
}

/// The request in either form: `message/rfc822` with the envelope in the query, or JSON.
fn read(headers: &HeaderMap, query: RawQuery, body: &[u8]) -> Result<Raw, Problem> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let list = |to: Option<String>| -> Vec<String> {
        to.map(|t| t.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default()
    };
    match media.as_str() {
        "message/rfc822" => Ok(Raw {
            message: body.to_vec(),
            from: query.from,
            to: list(query.to),
            tags: Vec::new(),
            metadata: BTreeMap::new(),
            sandbox: query.sandbox,
        }),
        "application/json" => {
            if query.from.is_some() || query.to.is_some() || query.sandbox {
                return Err(Problem::invalid("query", "with a JSON body, give from, to and sandbox in the JSON"));
            }
            let req: RawRequest = batch::parse(body, "")?;
            let message = base64::engine::general_purpose::STANDARD
                .decode(req.raw.as_bytes())
                .map_err(|e| Problem::invalid("raw", format!("not base64: {e}")))?;
            Ok(Raw {
                message,
                from: req.from,
                to: req.to,
                tags: req.tags,
                metadata: req.metadata,
                sandbox: req.sandbox,
            })
        }
        _ => Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the message as message/rfc822, or as JSON with the message in base64 (raw)",
        )),
    }
}

async fn send_raw(
    state: &AppState,
    key: &ApiKey,
    raw: Raw,
    pending: Option<idempotency::Pending>,
) -> Result<Response, Problem> {
    let ctx = &state.ctx;
    let submitter = Submitter::ApiKey { id: key.id.clone(), scope: key.scope.clone() };
    messages::not_paused(ctx, key).await?;
    let now = Timestamp::now();
    let prepared = prepare(ctx, key, &submitter, raw, MessageId::generate(now), now).await?;
    messages::queue_one(ctx, key, &submitter, prepared, pending).await
}

/// The 413 of a message over `limit` bytes.
fn too_large(size: usize, limit: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        "Message too large",
        format!("{size} bytes; the limit is {limit}: send a link instead"),
    )
}

/// Everything but the commit (see the module header).
async fn prepare(
    ctx: &crate::inbound::Context,
    key: &ApiKey,
    submitter: &Submitter,
    raw: Raw,
    id: MessageId,
    now: Timestamp,
) -> Result<Prepared, Problem> {
    for (i, t) in raw.tags.iter().enumerate() {
        messages::header_safe(|| format!("tags[{i}]"), t, false)?;
    }
    for k in raw.metadata.keys() {
        messages::header_safe(|| format!("metadata.{}", k.escape_debug()), k, false)?;
    }
    let limit = ctx.config.limits.max_message_size;
    if raw.message.len() as u64 > limit {
        return Err(too_large(raw.message.len(), limit));
    }
    // CRLF line ends; no dot handling (this is not SMTP).
    let input = local::read_message(&raw.message, true);
    let (fields, body) = local::split_header(&input);
    let header_block: Vec<u8> = fields.iter().flat_map(|f| f.raw.iter().copied()).collect();
    let parsed = header_addresses(&header_block);
    if parsed.from.is_empty() {
        return Err(Problem::invalid("headers.From", "the message has no From: header with an address"));
    }
    // The envelope sender, and every author address, in the key's scope.
    let from = match &raw.from {
        Some(f) => messages::mailbox("from", f)?.1,
        None => Mailbox::parse(&parsed.from[0])
            .map_err(|e| Problem::invalid("headers.From", format!("`{}` is not an address: {e}", parsed.from[0])))?,
    };
    messages::in_scope(ctx, key, submitter, &from)?;
    for (field, list) in [("headers.From", &parsed.from), ("headers.Sender", &parsed.sender)] {
        for a in list {
            let m = Mailbox::parse(a).map_err(|e| Problem::invalid(field, format!("`{a}` is not an address: {e}")))?;
            messages::in_scope(ctx, key, submitter, &m).map_err(|mut p| {
                p.field = Some(field.to_string());
                p
            })?;
        }
    }
    let (named, field): (Vec<String>, &'static str) =
        if raw.to.is_empty() { (local::header_recipients(&header_block), "headers") } else { (raw.to.clone(), "to") };
    if named.is_empty() {
        return Err(Problem::invalid("to", "no recipients: give to, or To/Cc/Bcc headers"));
    }
    if named.len() > ctx.config.limits.max_recipients {
        return Err(Problem::invalid(
            "to",
            format!("{} recipients; at most {} per message", named.len(), ctx.config.limits.max_recipients),
        ));
    }
    let mut listed = Vec::with_capacity(named.len());
    for (index, a) in named.iter().enumerate() {
        messages::header_safe(|| format!("{field}[{index}]"), a, true)?;
        let (name, mailbox) = messages::mailbox(&format!("{field}[{index}]"), a)?;
        listed.push(Listed { field, index, name, mailbox });
    }
    let fates = messages::recipients(ctx, submitter, &from, &listed, &Default::default()).await?;

    let has = |n: &str| fields.iter().any(|f| f.name == n);
    let trace = accept::Trace { hostname: &ctx.config.hostname, id: &id, at: now, arrival: accept::Arrival::Http };
    let mut message = accept::received_header(&trace).into_bytes();
    for f in fields.iter().filter(|f| f.name != "bcc" && f.name != "resent-bcc") {
        message.extend_from_slice(f.raw);
    }
    if !has("date") {
        message.extend_from_slice(format!("Date: {}\r\n", now.rfc5322()).as_bytes());
    }
    let message_id = match crate::smtp::message::header_value(&header_block, "message-id") {
        Some(given) => given.trim().to_string(),
        None => {
            let made = format!("<{}@{}>", id.0.to_ascii_lowercase(), from.domain());
            message.extend_from_slice(format!("Message-ID: {made}\r\n").as_bytes());
            made
        }
    };
    message.extend_from_slice(b"\r\n");
    message.extend_from_slice(body);
    if message.len() as u64 > limit {
        return Err(too_large(message.len(), limit));
    }
    let origin = messages::origin(key, &raw.tags, &raw.metadata, raw.sandbox);
    let built = messages::Built { message, message_id: &message_id, findings: None };
    messages::finish(ctx, id, from, fates, built, origin, now)
}

/// The author addresses of a header block: every address of every From: and Sender: field.
struct Authors {
    from: Vec<String>,
    sender: Vec<String>,
}

fn header_addresses(header: &[u8]) -> Authors {
    use mail_parser::{HeaderName, MessageParser};
    let mut block = header.to_vec();
    block.extend_from_slice(b"\r\n");
    let mut out = Authors { from: Vec::new(), sender: Vec::new() };
    let Some(parsed) = MessageParser::default().parse_headers(&block) else {
        return out;
    };
    for (name, list) in [(HeaderName::From, &mut out.from), (HeaderName::Sender, &mut out.sender)] {
        for value in parsed.header_values(name) {
            if let Some(addresses) = value.as_address() {
                list.extend(addresses.iter().filter_map(|a| a.address()).map(str::to_string));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors_are_every_from_and_sender_address() {
        let a =
            header_addresses(b"From: A <a@x.test>, b@y.test\r\nSender: s@z.test\r\nFrom: c@w.test\r\nTo: t@t.test\r\n");
        assert_eq!(a.from, ["a@x.test", "b@y.test", "c@w.test"]);
        assert_eq!(a.sender, ["s@z.test"]);
        assert!(header_addresses(b"Subject: none\r\n").from.is_empty());
    }

    #[test]
    fn either_form_is_read() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "message/rfc822".parse().unwrap());
        let q = RawQuery { from: Some("a@x.test".into()), to: Some("b@y.test, c@y.test,".into()), sandbox: false };
        let r = read(&h, q, b"Subject: x\r\n\r\nhi\r\n").unwrap();
        assert_eq!(r.from.as_deref(), Some("a@x.test"));
        assert_eq!(r.to, ["b@y.test", "c@y.test"]);
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let p = read(&h, RawQuery::default(), br#"{"raw": "***"}"#).err().unwrap();
        assert_eq!(p.field.as_deref(), Some("raw"));
        let p = read(&h, RawQuery::default(), br#"{"to": []}"#).err().unwrap();
        assert_eq!(p.field.as_deref(), Some("raw"));
        let r = read(&h, RawQuery::default(), br#"{"raw": "U3ViamVjdDogeA0KDQpoaQ0K", "tags": ["t"]}"#).unwrap();
        assert_eq!(
            (r.message.as_slice(), r.tags.as_slice()),
            (&b"Subject: x\r\n\r\nhi\r\n"[..], &["t".to_string()][..])
        );
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(read(&h, RawQuery::default(), b"x").err().unwrap().status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
