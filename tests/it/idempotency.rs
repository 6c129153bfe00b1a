//! `Idempotency-Key` on `POST /api/v1/messages` over real loopback HTTP: a retry after the
//! client gave up (connection dropped right after the request) queues one message; a retry
//! after a daemon restart replays the first response; the same key with another body is a
//! 422 naming the header (and another API key's same key is its own); 1,000 concurrent
//! requests over 100 keys queue exactly 100 messages.
//!
//! Must not: use any address outside 127.0.0.0/8.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use mailerd::config::Config;
use mailerd::store::{Scope, Store};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::harness::TestDaemon;
use crate::harness::daemon::base_toml;

/// Messages are stored and nothing is delivered, so the queue counts every message sent.
const SECTIONS: &str = "[listen]\nhttp = \"127.0.0.1:0\"\n[local]\ndomains = [\"sender.test\"]\n[queue]\nhold = true\n[limits]\nmax_http_connections = 1100\n";

struct Reply {
    status: u16,
    replayed: Option<String>,
    json: Value,
}

/// One `POST /api/v1/messages` with an optional `Idempotency-Key`.
async fn post(api: SocketAddr, key: &str, idempotency: Option<&str>, body: &Value) -> Reply {
    let stream = tokio::net::TcpStream::connect(api).await.expect("connect to the API");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method("POST")
        .uri("/api/v1/messages")
        .header("host", api.to_string())
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json");
    if let Some(k) = idempotency {
        req = req.header("Idempotency-Key", k);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let replayed = resp.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap_or("").to_string());
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, replayed, json }
}

/// Sends the request and closes the connection without reading the answer: a client whose
/// timeout fired.
async fn post_and_hang_up(api: SocketAddr, key: &str, idempotency: &str, body: &Value) {
    let body = body.to_string();
    let head = format!(
        "POST /api/v1/messages HTTP/1.1\r\nHost: {api}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nIdempotency-Key: {idempotency}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(api).await.expect("connect");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    drop(stream);
}

fn mail(subject: &str) -> Value {
    json!({"from": "app@sender.test", "to": ["alice@sender.test"], "subject": subject, "text": "hi"})
}

async fn admin_key(store: &dyn Store, name: &str) -> String {
    let (secret, key) = mailerd::http::auth::generate(name, Scope::All).unwrap();
    store.create_api_key(key).await.unwrap();
    secret
}

async fn daemon() -> (TestDaemon, String) {
    let d = TestDaemon::with(SECTIONS).await;
    let store = d.store();
    store.upsert_mailbox("alice@sender.test", None, None).await.unwrap();
    let key = admin_key(&store, "app").await;
    (d, key)
}

async fn messages(store: &dyn Store) -> u64 {
    store.queued_messages().await.unwrap()
}

#[tokio::test]
async fn idempotency_a_retry_after_a_client_timeout_queues_one_message() {
    let (d, key) = daemon().await;
    let api = d.http.unwrap();
    let store = d.store();
    // Retried at once, and retried after the first request had time to commit unanswered.
    for (n, (idem, pause)) in [("retry-now", 0), ("retry-later", 300)].into_iter().enumerate() {
        let body = mail(idem);
        post_and_hang_up(api, &key, idem, &body).await;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let retry = post(api, &key, Some(idem), &body).await;
        assert_eq!(retry.status, 202, "{}", retry.json);
        eprintln!(
            "{idem}: the retry was {}",
            if retry.replayed.is_some() {
                "replayed (the dropped request had committed)"
            } else {
                "the first to commit"
            }
        );
        let again = post(api, &key, Some(idem), &body).await;
        assert_eq!(
            (again.status, again.replayed.as_deref(), &again.json),
            (202, Some("true"), &retry.json),
            "the first response, replayed"
        );
        // Give a first request still in flight the time to finish, then count.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(messages(&store).await, n as u64 + 1, "{idem}: one message");
    }
    // Without a key every request is a new message (as before).
    let body = mail("no key");
    assert_eq!(post(api, &key, None, &body).await.status, 202);
    let second = post(api, &key, None, &body).await;
    assert_eq!((second.status, second.replayed), (202, None));
    assert_eq!(messages(&store).await, 4);
}

#[tokio::test]
async fn idempotency_a_restart_between_the_calls_replays() {
    let dir = tempfile::tempdir().unwrap();
    let config = || Config::from_toml(&base_toml(dir.path(), SECTIONS)).expect("test config");
    let first = mailerd::daemon::start(config()).await.expect("daemon starts");
    let store = mailerd::store::sqlite::SqliteStore::open(&dir.path().join("mailerd.db")).unwrap();
    store.upsert_mailbox("alice@sender.test", None, None).await.unwrap();
    let key = admin_key(&store, "app").await;
    let body = mail("across a restart");
    let sent = post(first.http.unwrap(), &key, Some("order-1"), &body).await;
    assert_eq!((sent.status, sent.replayed.as_deref()), (202, None), "{}", sent.json);
    first.shutdown().await.expect("clean shutdown");

    let second = mailerd::daemon::start(config()).await.expect("daemon starts again");
    let again = post(second.http.unwrap(), &key, Some("order-1"), &body).await;
    assert_eq!((again.status, again.replayed.as_deref()), (202, Some("true")));
    assert_eq!(again.json, sent.json, "same id, same message_id, same recipients");
    assert_eq!(messages(&store).await, 1);
    second.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn idempotency_another_body_is_a_422_naming_the_header() {
    let (d, key) = daemon().await;
    let api = d.http.unwrap();
    let store = d.store();
    let sent = post(api, &key, Some("k-1"), &mail("first")).await;
    assert_eq!(sent.status, 202, "{}", sent.json);
    let other = post(api, &key, Some("k-1"), &mail("second")).await;
    assert_eq!((other.status, other.json["field"].as_str()), (422, Some("Idempotency-Key")), "{}", other.json);
    assert_eq!(other.json["type"], "/problems/idempotency-key-reused");
    assert_eq!(messages(&store).await, 1);
    // Keys belong to an API key: another API key's k-1 is a request of its own.
    let key2 = admin_key(&store, "other app").await;
    let own = post(api, &key2, Some("k-1"), &mail("second")).await;
    assert_eq!((own.status, own.replayed), (202, None), "{}", own.json);
    assert_ne!(own.json["id"], sent.json["id"]);
    assert_eq!(messages(&store).await, 2);
    // A refused request records nothing: the key may be used again, with another body.
    let refused = post(api, &key, Some("k-2"), &json!({"from": "app@sender.test", "to": ["bad"], "text": "x"})).await;
    assert_eq!(refused.status, 422);
    assert_eq!(post(api, &key, Some("k-2"), &mail("fixed")).await.status, 202);
    // A malformed key is a 422 naming the header.
    let empty = post(api, &key, Some(""), &mail("x")).await;
    assert_eq!((empty.status, empty.json["field"].as_str()), (422, Some("Idempotency-Key")));
    assert_eq!(messages(&store).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_1000_concurrent_requests_over_100_keys_queue_100_messages() {
    let (d, key) = daemon().await;
    let api = d.http.unwrap();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let key = key.clone();
        let idem = format!("key-{}", i % 100);
        tasks.push(tokio::spawn(async move {
            let r = post(api, &key, Some(&idem), &mail(&idem)).await;
            (idem, r)
        }));
    }
    let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
    let mut replayed = 0;
    for t in tasks {
        let (idem, r) = t.await.unwrap();
        assert_eq!(r.status, 202, "{idem}: {}", r.json);
        replayed += usize::from(r.replayed.as_deref() == Some("true"));
        ids.entry(idem).or_default().insert(r.json["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 100);
    assert!(ids.values().all(|s| s.len() == 1), "one id per key");
    assert_eq!(replayed, 900);
    let count = messages(&d.store()).await;
    eprintln!("1,000 concurrent requests over 100 keys: {count} messages, {replayed} replays");
    assert_eq!(count, 100);
}
