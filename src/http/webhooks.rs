//! Webhooks: every `[[webhooks]]` endpoint is sent the event stream as signed JSON, one POST
//! per event, in order, at least once. The events table is the outbox: each endpoint has a
//! cursor in the store that moves only after a 2xx, so a crash or a down endpoint loses
//! nothing (it may repeat the event in flight; `Mailerd-Event-Id` lets receivers dedupe).
//! Failed attempts are retried with exponential backoff (1 s doubling to 5 min), each logged.
//!
//! Signature: `Mailerd-Signature: t=UNIX,v1=HEX` with HEX = HMAC-SHA256(secret, "UNIX.BODY"),
//! the scheme of Stripe and Svix, so receivers can reject replays by the timestamp.
//! An https:// endpoint's certificate is verified (rustls, the system's roots plus `tls.ca_file`
//! and the endpoint's `tls_ca`, the client setup of MTA-STS fetches); one that does not verify
//! is a failed POST like a refused connection: retried, never skipped.
//! Standards: RFC 2104 (HMAC), RFC 9110, RFC 2818 (HTTP over TLS). Must not: skip an event an endpoint asked for, or
//! advance a cursor before the endpoint answered 2xx.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::config::Webhook;
use crate::store::{EventKind, EventRecord, Store};

const BATCH: usize = 100;
const IDLE: Duration = Duration::from_secs(1);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(300);
const TIMEOUT: Duration = Duration::from_secs(10);

/// The JSON body for one event: the event (with the send's tags and metadata, and the sandbox
/// mark), plus reason, hard/soft and advice for failures.
pub fn payload(e: &EventRecord) -> Value {
    let mut v = json!({
        "event_id": e.event_id, "id": e.id, "message_id": e.message_id, "type": e.kind, "at": e.at,
        "recipient": e.recipient,
        "status": e.status, "detail": e.detail, "remote": e.remote,
    });
    if let Some(obj) = v.as_object_mut() {
        if e.sandbox {
            obj.insert("sandbox".into(), json!(true));
        }
        if !e.tags.is_empty() {
            obj.insert("tags".into(), json!(e.tags));
        }
        if !e.metadata.is_empty() {
            obj.insert("metadata".into(), json!(e.metadata));
        }
    }
    if let (Some(n), Some(obj)) = (e.attempt, v.as_object_mut()) {
        obj.insert("attempt".into(), json!(n));
        obj.insert("first_attempt_at".into(), json!(e.first_attempt_at));
    }
    if matches!(
        e.kind,
        EventKind::Bounced | EventKind::Expired | EventKind::Deferred | EventKind::Delayed | EventKind::Rejected
    ) && let (Some(status), Some(obj)) = (e.status.as_deref(), v.as_object_mut())
    {
        let verdict = crate::feedback::classify::of_outcome(Some(status), None, e.detail.as_deref());
        let info = verdict.reason.info();
        let advice = match (e.kind, tried(e)) {
            (EventKind::Deferred, Some(t)) => info.deferral_advice(t),
            (EventKind::Expired, Some(t)) => info.expiry_advice(t),
            _ => info.advice.to_string(),
        };
        obj.insert("reason".into(), json!(verdict.reason.as_str()));
        obj.insert("hard_bounce".into(), json!(verdict.hard_bounce));
        obj.insert("advice".into(), json!(advice));
    }
    v
}

/// How long the recipient of a `deferred` or `expired` event had been tried by then.
fn tried(e: &EventRecord) -> Option<crate::bounce::reason::Tried> {
    let at = crate::time::Timestamp::parse_iso8601(&e.at)?;
    let first = crate::time::Timestamp::parse_iso8601(e.first_attempt_at.as_deref()?)?;
    let over = std::time::Duration::from_millis(u64::try_from(at.millis() - first.millis()).unwrap_or(0));
    Some(crate::bounce::reason::Tried { attempts: e.attempt?, over })
}

/// `t=UNIX,v1=HEX` for `body` sent at `unix`.
pub fn signature(secret: &str, unix: i64, body: &[u8]) -> String {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(), // HMAC takes keys of any length
    };
    mac.update(unix.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix},v1={hex}")
}

/// Runs one endpoint's delivery loop until shutdown.
pub async fn run(store: Arc<dyn Store>, hook: Webhook, transport: Transport, mut shutdown: watch::Receiver<bool>) {
    let mut cursor = match store.webhook_cursor(&hook.url).await {
        Ok(c) => c,
        Err(e) => {
            warn!(url = %hook.url, error = %e, "webhook disabled: no cursor in the store");
            return;
        }
    };
    while !*shutdown.borrow() {
        let events = match store.events_after(cursor, None, &crate::store::Scope::All, BATCH).await {
            Ok(e) => e,
            Err(e) => {
                warn!(url = %hook.url, error = %e, "webhook: reading events failed");
                sleep_or_stop(&mut shutdown, IDLE).await;
                continue;
            }
        };
        if events.is_empty() {
            sleep_or_stop(&mut shutdown, IDLE).await;
            continue;
        }
        let mut waiting = events.len() as i64;
        crate::metrics::webhook_backlog(waiting);
        for e in events {
            if hook.events.is_empty() || hook.events.iter().any(|k| k == e.kind.as_str()) {
                let body = payload(&e).to_string();
                if !deliver(&hook, &transport, e.event_id, &body, &mut shutdown).await {
                    crate::metrics::webhook_backlog(-waiting);
                    return; // shutting down; the cursor still points before this event
                }
            }
            waiting -= 1;
            crate::metrics::webhook_backlog(-1);
            cursor = e.event_id;
            if let Err(err) = store.set_webhook_cursor(&hook.url, cursor).await {
                warn!(url = %hook.url, error = %err, "webhook: saving the cursor failed (events may repeat)");
            }
        }
    }
}

/// POSTs until a 2xx; false when shutdown came first.
async fn deliver(
    hook: &Webhook,
    transport: &Transport,
    id: i64,
    body: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let mut wait = FIRST_RETRY;
    for attempt in 1u32.. {
        let unix = crate::time::Timestamp::now().millis() / 1000;
        let sig = signature(&hook.secret, unix, body.as_bytes());
        match tokio::time::timeout(TIMEOUT, post(hook, transport, id, &sig, body)).await {
            // Each POST is counted in /metrics (mailerd_webhook_posts_total) and logged at
            // debug; an endpoint that keeps failing says so at warn every tenth attempt.
            Ok(Ok(status)) if (200..300).contains(&status) => {
                crate::metrics::webhook("delivered");
                debug!(url = %hook.url, event = id, attempt, status, "webhook delivered");
                return true;
            }
            Ok(Ok(status)) => {
                crate::metrics::webhook("refused");
                debug!(url = %hook.url, event = id, attempt, status, "webhook refused; retrying");
            }
            Ok(Err(e)) if attempt == 1 => {
                // The first failure says why at warn (a certificate the endpoint's CA does not
                // sign, a refused connection); the repeats are at debug.
                crate::metrics::webhook("failed");
                warn!(url = %hook.url, event = id, attempt, error = %e, "webhook failed; retrying");
            }
            Ok(Err(e)) => {
                crate::metrics::webhook("failed");
                debug!(url = %hook.url, event = id, attempt, error = %e, "webhook failed; retrying");
            }
            Err(_) => {
                crate::metrics::webhook("timed_out");
                debug!(url = %hook.url, event = id, attempt, "webhook timed out; retrying");
            }
        }
        if attempt % 10 == 0 {
            warn!(url = %hook.url, event = id, attempts = attempt, "webhook endpoint keeps failing; still retrying");
        }
        if !sleep_or_stop(shutdown, wait).await {
            return false;
        }
        wait = (wait * 2).min(MAX_RETRY);
    }
    false
}

/// Sleeps; false when shutdown came first.
async fn sleep_or_stop(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.wait_for(|s| *s) => true,
    };
    !stopped && !*shutdown.borrow()
}

/// How an endpoint is reached: plain TCP for http://, verified TLS for https://.
#[derive(Clone)]
pub enum Transport {
    Plain,
    /// The connector built on the endpoint's trusted roots (`outbound::trust::Trust`).
    Tls(tokio_rustls::TlsConnector),
}

impl Transport {
    /// The transport of `hook`: for https://, the system's roots plus `tls.ca_file` and the
    /// endpoint's `tls_ca`; an unreadable CA file is an error (the operator asked for it).
    pub fn of(hook: &Webhook, ca_file: Option<&std::path::Path>) -> Result<Transport, String> {
        if !hook.endpoint.https {
            return Ok(Transport::Plain);
        }
        let mut files = Vec::new();
        if let Some(p) = ca_file {
            files.push(("tls.ca_file", p));
        }
        if let Some(p) = &hook.tls_ca {
            files.push(("webhooks.tls_ca", p.as_path()));
        }
        let trust = crate::outbound::trust::Trust::load_all(&files)?;
        Ok(Transport::Tls(trust.https().clone()))
    }
}

type PostError = Box<dyn std::error::Error + Send + Sync>;

/// One POST on a new connection; the HTTP status, or why there is none (a certificate that
/// does not verify is an error here, so the event is retried like any failed POST).
async fn post(hook: &Webhook, transport: &Transport, id: i64, signature: &str, body: &str) -> Result<u16, PostError> {
    let ep = &hook.endpoint;
    let tcp = tokio::net::TcpStream::connect((ep.host.as_str(), ep.port)).await?;
    match transport {
        Transport::Plain => exchange(TokioIo::new(tcp), hook, id, signature, body).await,
        Transport::Tls(connector) => {
            let name = rustls::pki_types::ServerName::try_from(ep.host.clone())?;
            let tls = connector.connect(name, tcp).await.map_err(|e| format!("TLS with {}: {e}", ep.authority))?;
            exchange(TokioIo::new(tls), hook, id, signature, body).await
        }
    }
}

async fn exchange<T>(io: T, hook: &Webhook, id: i64, signature: &str, body: &str) -> Result<u16, PostError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    let req = hyper::Request::post(hook.endpoint.path.as_str())
        .header(hyper::header::HOST, hook.endpoint.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "mailerd-webhooks")
        .header("Mailerd-Event-Id", id.to_string())
        .header("Mailerd-Signature", signature)
        .body(Full::new(Bytes::from(body.to_string())))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_timestamp_and_body() {
        // Python: hmac.new(b"whsec_0123456789abcdef", b"1700000000.{}", hashlib.sha256).hexdigest()
        let s = signature("whsec_0123456789abcdef", 1_700_000_000, b"{}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(s, signature("whsec_other_secret_00", 1_700_000_000, b"{}"));
        assert_ne!(s, signature("whsec_0123456789abcdef", 1_700_000_001, b"{}"));
    }

    #[test]
    fn bounces_carry_reason_and_advice() {
        let e = EventRecord {
            event_id: 7,
            at: "2026-11-28T00:00:00Z".into(),
            id: "Q".into(),
            message_id: Some("<q@b.test>".into()),
            recipient: Some("a@b.test".into()),
            kind: EventKind::Bounced,
            status: Some("5.1.1".into()),
            detail: Some("550 5.1.1 user unknown".into()),
            remote: None,
            sandbox: false,
            tags: vec!["invoice".into()],
            metadata: [("order".to_string(), "42".to_string())].into(),
            attempt: None,
            first_attempt_at: None,
        };
        let v = payload(&e);
        assert_eq!((&v["event_id"], &v["id"], &v["message_id"]), (&json!(7), &json!("Q"), &json!("<q@b.test>")));
        assert!(v.get("sandbox").is_none(), "real mail has no sandbox mark");
        assert_eq!((&v["tags"], &v["metadata"]), (&json!(["invoice"]), &json!({"order": "42"})));
        let sandboxed = payload(&EventRecord { kind: EventKind::Queued, sandbox: true, ..e.clone() });
        assert_eq!(sandboxed["sandbox"], true);
        assert_eq!(v["reason"], "userunknown");
        assert_eq!(v["hard_bounce"], true);
        assert!(v["advice"].as_str().is_some_and(|a| !a.is_empty()));
    }

    #[test]
    fn an_unreadable_ca_file_is_an_error_naming_its_key() {
        let hook = |url: &str, tls_ca: Option<&str>| Webhook {
            url: url.into(),
            endpoint: crate::config::Endpoint::parse(url).unwrap(),
            secret: "whsec_0123456789abcdef".into(),
            events: vec![],
            tls_ca: tls_ca.map(Into::into),
        };
        assert!(matches!(Transport::of(&hook("http://127.0.0.1:9/h", None), None), Ok(Transport::Plain)));
        assert!(matches!(Transport::of(&hook("https://127.0.0.1:9/h", None), None), Ok(Transport::Tls(_))));
        let err = Transport::of(&hook("https://127.0.0.1:9/h", Some("/nonexistent/ca.pem")), None).err().unwrap();
        assert!(err.contains("webhooks.tls_ca") && err.contains("/nonexistent/ca.pem"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let err = Transport::of(&hook("https://127.0.0.1:9/h", Some(empty.to_str().unwrap())), None).err().unwrap();
        assert!(err.contains("no certificate"), "{err}");
    }

    #[test]
    fn deferral_advice_follows_the_attempt_count() {
        let deferred = |attempt: u32, first: &str| EventRecord {
            event_id: 9,
            at: "2026-11-28T12:00:00Z".into(),
            id: "Q".into(),
            message_id: None,
            recipient: Some("a@b.test".into()),
            kind: EventKind::Deferred,
            status: Some("4.4.1".into()),
            detail: Some("connection timed out".into()),
            remote: None,
            sandbox: false,
            tags: vec![],
            metadata: Default::default(),
            attempt: Some(attempt),
            first_attempt_at: Some(first.into()),
        };
        let one = payload(&deferred(1, "2026-11-28T12:00:00Z"));
        assert_eq!(one["attempt"], 1);
        let advice = one["advice"].as_str().unwrap();
        assert!(advice.contains("first delivery attempt") && !advice.contains("days"), "{advice}");
        let many = payload(&deferred(12, "2026-11-25T12:00:00Z"));
        let advice = many["advice"].as_str().unwrap();
        assert!(advice.contains("12 attempts over 3 days"), "{advice}");
        let rejected = payload(&EventRecord {
            kind: EventKind::Rejected,
            status: Some("5.1.1".into()),
            detail: Some(crate::inbound::replies::suppressed("a@b.test", "2026-11-01", "userunknown").to_string()),
            attempt: None,
            first_attempt_at: None,
            ..deferred(1, "")
        });
        assert_eq!(rejected["type"], "rejected");
        assert_eq!(rejected["reason"], "suppressed", "{rejected}");
        assert_eq!(rejected["hard_bounce"], false, "a suppressed recipient is not a new hard bounce");
        assert_eq!(rejected["advice"], crate::bounce::reason::Reason::Suppressed.info().advice);
    }
}
