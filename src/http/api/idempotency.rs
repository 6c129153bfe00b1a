//! The `Idempotency-Key` request header of the send routes (`POST /api/v1/messages`, `/batch`
//! and `/raw`; the IETF httpapi draft,
//! as Stripe does it): `guard` around a send, reading and checking the header, the request's fingerprint (SHA-256 of
//! the body), the replay of a stored response, and the per-key lock that makes a concurrent
//! duplicate wait for the first request's result on this node.
//!
//! A record is kept per (API key id, Idempotency-Key) for `TTL` and is written by the store in
//! the same commit as the message (`NewMessage::idempotency`), so a request that queued a
//! message always left its record, and a retry finds it even after a crash or a restart.
//! Only requests that queued a message are recorded; a refused one (4xx) may be retried with
//! the same key and another body.
//! Standards: draft-ietf-httpapi-idempotency-key-header (the header, 422 for a key reused
//! with another payload, 409 while a request with the key is still being processed), RFC 9457.
//! Must not: let one API key see another's records, or replay a record to a different body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::super::AppState;
use super::super::problem::Problem;
use crate::store::{ApiKey, IdempotencyRecord, MessageId};
use crate::time::Timestamp;

/// The request header (matched without regard to case).
pub const HEADER: &str = "Idempotency-Key";
/// The response header of a replayed response.
pub const REPLAYED: &str = "Idempotent-Replayed";
/// How long a record is kept.
pub const TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest key accepted (a UUID is 36 characters).
const MAX_LEN: usize = 255;

/// The `Idempotency-Key` of a request: None without the header; a 422 naming the header when
/// it is empty, repeated, too long or not visible ASCII. The draft's structured-field string
/// form (`"abc"`) is read as its content.
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else { return Ok(None) };
    let bad = |why: &str| Problem::invalid(HEADER, format!("{HEADER}: {why}"));
    if values.next().is_some() {
        return Err(bad("give the header once"));
    }
    let text = value.to_str().map_err(|_| bad("only visible ASCII characters are allowed"))?.trim();
    let text = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner,
        None => text,
    };
    if text.is_empty() {
        return Err(bad("the key is empty"));
    }
    if text.len() > MAX_LEN {
        return Err(bad(&format!("the key is longer than {MAX_LEN} characters")));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(bad("only visible ASCII characters are allowed"));
    }
    Ok(Some(text.to_string()))
}

/// The request's fingerprint: hex SHA-256 of the body as sent.
pub fn fingerprint(body: &[u8]) -> String {
    fingerprint_of(&[body])
}

/// Hex SHA-256 of the parts one after the other (a request whose query is part of what it
/// asks: the query, then the body).
pub fn fingerprint_of(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for p in parts {
        hash.update(p);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored response again, with `Idempotent-Replayed: true`, when the body is the one the
/// record was made for; else a 422 naming the header.
pub fn replay(record: &IdempotencyRecord, request_hash: &str) -> Result<Response, Problem> {
    if record.request_hash != request_hash {
        let mut p = Problem::invalid(
            HEADER,
            format!(
                "this {HEADER} was used for another request body (message {}); use a new key for a new request",
                record.message_id
            ),
        );
        p.kind = "idempotency-key-reused";
        return Err(p);
    }
    let status = StatusCode::from_u16(record.status).unwrap_or(StatusCode::ACCEPTED);
    let mut response = json_response(status, record.response.clone());
    response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
    Ok(response)
}

/// A send's reply as JSON text, written once: the response's body (`json_response`) and, for a
/// request with a key, the record's copy (`Pending::record`).
pub fn reply_text(reply: &impl serde::Serialize) -> Result<String, Problem> {
    serde_json::to_string(reply).map_err(|e| Problem::unavailable(format!("the reply could not be written: {e}")))
}

/// A response of `status` with a JSON body written before (`reply_text`, or a stored one).
pub fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The 409 of a key whose request is still being processed elsewhere (another node whose
/// record cannot be read yet); the client retries later.
pub fn in_progress() -> Problem {
    let mut p = Problem::new(
        StatusCode::CONFLICT,
        "idempotency-key-in-use",
        "A request with this key is being processed",
        format!("another request with this {HEADER} has not finished; retry later"),
    );
    p.field = Some(HEADER.into());
    p
}

/// The idempotency key of a request being sent, and its body's fingerprint.
pub struct Pending {
    pub key: String,
    pub hash: String,
}

impl Pending {
    /// The record of this request, which made `message` (the first of a batch) and answers
    /// `status` with `response` (`reply_text`); kept for `TTL` from `now`.
    pub fn record(
        self,
        api_key: &ApiKey,
        message: &MessageId,
        status: StatusCode,
        response: String,
        now: Timestamp,
    ) -> IdempotencyRecord {
        IdempotencyRecord {
            api_key: api_key.id.clone(),
            key: self.key,
            request_hash: self.hash,
            message_id: message.clone(),
            status: status.as_u16(),
            response,
            created_at: now,
            expires_at: now.plus(TTL),
        }
    }
}

/// The kind of the problem a send answers when the store found its key taken.
const KEY_TAKEN: &str = "idempotency-key-taken";

/// What a send answers when the store refused its insert because the key has a live record.
pub fn key_taken() -> Problem {
    let mut p = in_progress();
    p.kind = KEY_TAKEN;
    p
}

/// Runs `send` for a request of `api_key` at most once per `Idempotency-Key`: without the
/// header it just runs; with it, a stored response of the key is replayed (or refused with
/// 422 for another body), a duplicate on this node waits for the first, and `send` gets the
/// `Pending` key to commit its record with its messages. `query` is part of the request's
/// fingerprint (empty for routes that take none), before the body.
pub async fn guard(
    state: &AppState,
    api_key: &ApiKey,
    headers: &HeaderMap,
    query: &[u8],
    body: Bytes,
    send: impl AsyncFnOnce(Bytes, Option<Pending>) -> Result<Response, Problem>,
) -> Result<Response, Problem> {
    let Some(key) = key_of(headers)? else {
        return send(body, None).await;
    };
    // Keyed per API key: the record is found again only by the key that made it.
    let hash = fingerprint_of(&[query, &body]);
    let store = state.ctx.store.as_ref();
    if let Some(record) = store.idempotency(&api_key.id, &key, Timestamp::now()).await? {
        return replay(&record, &hash);
    }
    // A duplicate arriving while the first runs on this node waits here, then replays.
    let _held = state.idempotency.lock(&api_key.id, &key).await;
    if let Some(record) = store.idempotency(&api_key.id, &key, Timestamp::now()).await? {
        return replay(&record, &hash);
    }
    match send(body, Some(Pending { key: key.clone(), hash: hash.clone() })).await {
        // Another node (or a request of ours cancelled after its insert was queued) stored the
        // key first: its commit is done, so its record is there to replay.
        Err(p) if p.kind == KEY_TAKEN => match store.idempotency(&api_key.id, &key, Timestamp::now()).await? {
            Some(record) => replay(&record, &hash),
            None => Err(in_progress()),
        },
        other => other,
    }
}

type Slot = Arc<tokio::sync::Mutex<()>>;

/// The keys of this node's requests in progress: a request holds its key's lock from the
/// first look-up to the commit, so a concurrent duplicate waits, then finds the record.
#[derive(Default)]
pub struct InFlight {
    slots: Mutex<HashMap<(String, String), Slot>>,
}

/// Held while a request with a key runs; the key's entry goes when no one else wants it.
pub struct Held<'a> {
    owner: &'a InFlight,
    key: (String, String),
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl InFlight {
    /// Waits until no other request of this node runs with (`api_key`, `key`).
    pub async fn lock(&self, api_key: &str, key: &str) -> Held<'_> {
        let id = (api_key.to_string(), key.to_string());
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.entry(id.clone()).or_default().clone()
        };
        let guard = slot.lock_owned().await;
        Held { owner: self, key: id, guard: Some(guard) }
    }

    /// Keys with a request in progress or waiting (for tests).
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut slots = self.owner.slots.lock().unwrap_or_else(|e| e.into_inner());
        // Clones are taken under this lock: the map's and our guard's are the only ones left
        // when nobody waits.
        if slots.get(&self.key).is_some_and(|slot| Arc::strong_count(slot) <= 2) {
            slots.remove(&self.key);
        }
        self.guard.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(HEADER, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_header_is_read_and_checked() {
        assert_eq!(key_of(&HeaderMap::new()).unwrap(), None);
        assert_eq!(key_of(&headers(&["abc-1"])).unwrap().as_deref(), Some("abc-1"));
        assert_eq!(key_of(&headers(&["\"abc-1\""])).unwrap().as_deref(), Some("abc-1"));
        for bad in [&[""][..], &["\"\""], &["a", "b"], &[&"x".repeat(256)]] {
            let p = key_of(&headers(bad)).unwrap_err();
            assert_eq!((p.status.as_u16(), p.field.as_deref()), (422, Some(HEADER)), "{bad:?}");
        }
    }

    #[test]
    fn a_record_replays_to_its_body_only() {
        let record = IdempotencyRecord {
            api_key: "k".into(),
            key: "a".into(),
            request_hash: fingerprint(b"{}"),
            message_id: crate::store::MessageId("ID".into()),
            status: 202,
            response: "{\"id\":\"ID\"}".into(),
            created_at: crate::time::Timestamp(0),
            expires_at: crate::time::Timestamp(1),
        };
        let r = replay(&record, &fingerprint(b"{}")).unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(r.headers()[REPLAYED], "true");
        let p = replay(&record, &fingerprint(b"{ }")).unwrap_err();
        assert_eq!((p.status.as_u16(), p.field.as_deref()), (422, Some(HEADER)));
        assert_eq!(fingerprint_of(&[b"", b"{}"]), fingerprint(b"{}"), "no query: the body's hash");
        assert_ne!(fingerprint_of(&[b"to=a", b"{}"]), fingerprint(b"{}"));
    }

    #[tokio::test]
    async fn a_duplicate_waits_and_the_entry_goes() {
        let f = Arc::new(InFlight::default());
        let first = f.lock("k", "a").await;
        let f2 = f.clone();
        let waiter = tokio::spawn(async move {
            let _held = f2.lock("k", "a").await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "the duplicate waits");
        let other = f.lock("k", "b").await; // another key does not
        drop(other);
        drop(first);
        waiter.await.unwrap();
        assert!(f.is_empty());
    }
}
