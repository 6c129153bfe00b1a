//! `POST /api/v1/messages/batch`: up to `MAX_MESSAGES` send requests (each the body of
//! `POST /api/v1/messages`) in one call, stored in one durable commit, with one result per
//! message in the order given.
//!
//! Each message goes through the single send's steps (`messages::prepare`: header values,
//! sender scope, addresses, recipients through `inbound::policy::check_rcpt`, build, checklist)
//! on its own: a message that fails gets its own problem (naming the field, as
//! `messages[3].to[0]`) and the others go on. The messages that passed are handed to
//! `accept::accept_all` together: one transaction on either store (one savepoint of the SQLite
//! group commit, one PostgreSQL transaction), all of them or none. The reply (200) comes after
//! that commit and lists, per message, `status` 202 with the single send's reply, or the
//! status and problem of its refusal.
//! With an `Idempotency-Key` the whole batch is one request: its record (holding the whole
//! reply) is committed with the batch's first queued message.
//! Standards: RFC 9457 (each refusal), RFC 8259.
//! Must not: answer before the commit, store part of a batch, or take more than
//! `MAX_MESSAGES` messages.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::problem::Problem;
use super::idempotency;
use super::messages::{self, SendRequest};
use crate::inbound::policy::Submitter;
use crate::store::{ApiKey, MessageId};
use crate::time::Timestamp;

/// The most messages one batch may hold (Postmark's limit).
pub const MAX_MESSAGES: usize = 500;
/// Messages of one batch checked at once (each waits on store reads for its recipients).
const CONCURRENT: usize = 16;

/// A batch as sent: `messages` read as send requests (`M` = `SendRequest`) or, when one of
/// them does not fit, as each message's JSON text (`M` = `Box<RawValue>`) so that each is read
/// on its own and a bad one fails alone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest<M> {
    messages: Vec<M>,
    /// Every message in sandbox mode (a message may also ask for it alone).
    #[serde(default)]
    sandbox: bool,
}

/// Each message of the batch in `body`: its send request, or the problem that refuses it
/// (named from the batch's top, `messages[3].to[0]`). A batch whose every message fits is read
/// in one pass; only one that has a bad message is read a second time, message by message.
fn read_batch(body: &[u8]) -> Result<Vec<Result<SendRequest, Problem>>, Problem> {
    let count = |n: usize| match n {
        0 => Err(Problem::invalid("messages", "an empty batch: give at least one message")),
        n if n > MAX_MESSAGES => {
            Err(Problem::invalid("messages", format!("{n} messages; at most {MAX_MESSAGES} per batch")))
        }
        _ => Ok(()),
    };
    if let Ok(batch) = serde_json::from_slice::<BatchRequest<SendRequest>>(body) {
        count(batch.messages.len())?;
        let sandbox = batch.sandbox;
        return Ok(batch
            .messages
            .into_iter()
            .map(|req| Ok(SendRequest { sandbox: req.sandbox || sandbox, ..req }))
            .collect());
    }
    let batch: BatchRequest<Box<serde_json::value::RawValue>> = parse(body, "")?;
    count(batch.messages.len())?;
    let read = |index: usize, raw: &serde_json::value::RawValue| {
        let req = parse::<SendRequest>(raw.get().as_bytes(), &format!("messages[{index}]"))?;
        Ok(SendRequest { sandbox: req.sandbox || batch.sandbox, ..req })
    };
    Ok(batch.messages.iter().enumerate().map(|(index, raw)| read(index, raw)).collect())
}

pub async fn send(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = body.map_err(|e| super::body::unreadable(&e))?;
    idempotency::guard(&state, &key, &headers, b"", body, async |body, pending| {
        send_batch(&state, &key, &headers, &body, pending).await
    })
    .await
}

async fn send_batch(
    state: &AppState,
    key: &ApiKey,
    headers: &HeaderMap,
    body: &[u8],
    pending: Option<idempotency::Pending>,
) -> Result<Response, Problem> {
    super::body::require_json(headers)?;
    let requests = read_batch(body)?;
    let ctx = &state.ctx;
    let submitter = Submitter::ApiKey { id: key.id.clone(), scope: key.scope.clone() };
    messages::not_paused(ctx, key).await?;
    let now = Timestamp::now();
    // One thread's ids never repeat (`MessageId::generate`), and this does not yield: the ids
    // of a batch differ (a repeat would fail the whole batch's insert).
    let jobs: Vec<_> = requests.into_iter().enumerate().map(|(i, req)| (i, req, MessageId::generate(now))).collect();
    // The store reads of every message's checks at once: the suppression entries of all the
    // recipients in one read, the pause once per sender domain, each template once.
    let requests: Vec<&SendRequest> = jobs.iter().filter_map(|(_, req, _)| req.as_ref().ok()).collect();
    let reads = messages::Reads::read(ctx, key, &submitter, &requests).await?;
    // Each message alone, `CONCURRENT` at a time (their store reads overlap); the results
    // keep the order given.
    let prepared = futures_util::stream::iter(jobs.into_iter().map(|(index, req, id)| {
        let (submitter, reads) = (&submitter, &reads);
        async move {
            messages::prepare(ctx, key, submitter, &req?, reads, id, now)
                .await
                .map_err(|p| within(p, &format!("messages[{index}]")))
        }
    }))
    .buffered(CONCURRENT)
    .collect::<Vec<_>>()
    .await;
    let mut results = Vec::with_capacity(prepared.len());
    let mut ready = Vec::new();
    for (index, p) in prepared.into_iter().enumerate() {
        match p {
            Ok(p) => {
                results.push(Outcome::Queued { index, status: StatusCode::ACCEPTED.as_u16(), reply: p.reply });
                ready.push((p.incoming, p.remote));
            }
            Err(problem) => {
                results.push(Outcome::Failed { index, status: problem.status.as_u16(), error: problem.to_json() });
            }
        }
    }
    let queued = ready.len();
    let text = idempotency::reply_text(&BatchReply { queued, failed: results.len() - queued, results })?;
    let status = StatusCode::OK;
    let (mut incoming, remote): (Vec<_>, Vec<u64>) = ready.into_iter().unzip();
    if let (Some(first), Some(p)) = (incoming.first_mut(), pending) {
        first.idempotency = Some(p.record(key, &first.id, status, text.clone(), now));
    }
    if !incoming.is_empty() {
        messages::commit(ctx, &submitter, incoming, &remote).await?;
    }
    Ok(idempotency::json_response(status, text))
}

/// The reply to a batch: how many were queued and failed, and each message's result in the
/// order given.
#[derive(Serialize)]
struct BatchReply {
    queued: usize,
    failed: usize,
    results: Vec<Outcome>,
}

/// One message of a batch: its index and status with the reply a single send would get, or
/// the problem that refused it.
#[derive(Serialize)]
#[serde(untagged)]
enum Outcome {
    Queued {
        index: usize,
        status: u16,
        #[serde(flatten)]
        reply: messages::SendReply,
    },
    Failed {
        index: usize,
        status: u16,
        error: Value,
    },
}

/// A problem of the message at `prefix`: its field named from the batch's top
/// (`messages[3].to[0]`; `messages[3]` when the problem names no field).
fn within(mut p: Problem, prefix: &str) -> Problem {
    p.field = Some(match p.field.take() {
        Some(f) if f.starts_with('[') => format!("{prefix}{f}"),
        Some(f) => format!("{prefix}.{f}"),
        None => prefix.to_string(),
    });
    p
}

/// JSON text into `T`, or a 422 naming the field at fault below `prefix` (`from_error`); a 400
/// for text that is no JSON.
pub(super) fn parse<T: serde::de::DeserializeOwned>(body: &[u8], prefix: &str) -> Result<T, Problem> {
    // Straight through first: tracking the path costs on every value, and only a refusal
    // needs it, so a body that does not fit is read a second time for its problem.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| from_error(e, prefix))?;
    de.end().map_err(|e| {
        let mut p = Problem::bad_request(format!("not JSON: {e}"));
        p.field = Some("body".into());
        p
    })?;
    Ok(value)
}

/// The problem of a value that did not fit: the path of a value of the wrong type or of a field
/// the struct does not know, or the field it lacks, below `prefix`.
fn from_error(e: serde_path_to_error::Error<serde_json::Error>, prefix: &str) -> Problem {
    let inner = e.inner();
    if inner.is_syntax() || inner.is_eof() || inner.is_io() {
        let mut p = Problem::bad_request(format!("not JSON: {inner}"));
        p.field = Some(if prefix.is_empty() { "body".to_string() } else { prefix.to_string() });
        return p;
    }
    let path = e.path().to_string();
    let text = inner.to_string();
    // The path ends at an unknown field, but at the struct that lacks a missing one: serde
    // names that one in the message.
    let named = text.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
    let mut field = if path == "." { String::new() } else { path };
    if let Some(name) = named {
        if !field.is_empty() {
            field.push('.');
        }
        field.push_str(name);
    }
    let field = match (prefix.is_empty(), field.is_empty()) {
        (true, true) => "body".to_string(),
        (true, false) => field,
        (false, true) => prefix.to_string(),
        (false, false) if field.starts_with('[') => format!("{prefix}{field}"),
        (false, false) => format!("{prefix}.{field}"),
    };
    let detail = text.split(" at line ").next().unwrap_or(&text).to_string();
    Problem::invalid(field, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        from: String,
        #[serde(default)]
        to: Vec<String>,
    }

    fn field(json: &str, prefix: &str) -> Option<String> {
        parse::<T>(json.as_bytes(), prefix).err().and_then(|p| p.field)
    }

    #[test]
    fn json_errors_name_their_field() {
        assert!(parse::<T>(br#"{"from": "a@b"}"#, "").is_ok());
        assert_eq!(field(r#"{"to": []}"#, "").as_deref(), Some("from"));
        assert_eq!(field(r#"{"to": []}"#, "messages[2]").as_deref(), Some("messages[2].from"));
        assert_eq!(field(r#"{"from": "a", "too": 1}"#, "messages[0]").as_deref(), Some("messages[0].too"));
        assert_eq!(field(r#"{"from": "a", "to": ["x", 3]}"#, "m").as_deref(), Some("m.to[1]"));
        assert_eq!(field(r#"{"from": 7}"#, "").as_deref(), Some("from"));
        assert_eq!(field(r#"[1]"#, "m").as_deref(), Some("m[0]"), "a struct may come as a list");
        assert_eq!(field(r#"7"#, "m").as_deref(), Some("m"));
        let v: Result<T, _> = parse(br#"{"from": "a", "to": "x"}"#, "messages[1]");
        assert_eq!(v.unwrap_err().field.as_deref(), Some("messages[1].to"));
        let syntax = parse::<T>(b"{\"from\": ", "").unwrap_err();
        assert_eq!(syntax.status, StatusCode::BAD_REQUEST);
        let p = parse::<T>(br#"{"to": []}"#, "").unwrap_err();
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p.detail, "missing field `from`");
    }

    #[test]
    fn a_message_problem_is_named_from_the_top() {
        let p = within(Problem::invalid("to[0]", "x"), "messages[4]");
        assert_eq!(p.field.as_deref(), Some("messages[4].to[0]"));
        let p = within(Problem::bad_request("x"), "messages[4]");
        assert_eq!(p.field.as_deref(), Some("messages[4]"));
    }
}
