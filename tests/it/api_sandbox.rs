//! Sandbox sends (`"sandbox": true`) over real loopback HTTP, next to a second mailerd that
//! would receive the mail: every check and the suppression list run (a refused recipient and
//! an invalid field answer as for real mail), the events are recorded with `sandbox: true`,
//! and nothing reaches the destination, for a single send, a batch and a raw send; a real send
//! right after is delivered and its events carry no sandbox mark.
//!
//! Must not: use any address outside 127.0.0.0/8.

use std::time::Duration;

use mailerd::store::{Scope, Store};
use serde_json::{Value, json};

use crate::harness::TestDaemon;
use crate::harness::http::{get, post_json, request};

async fn events_of(api: std::net::SocketAddr, key: &str, id: &str) -> Vec<Value> {
    let r = get(api, "/api/v1/events?limit=1000", Some(key)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["events"].as_array().unwrap().iter().filter(|e| e["id"] == id).cloned().collect()
}

#[tokio::test]
async fn sandbox_sends_run_every_check_record_events_and_deliver_nothing() {
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("alice@dest.test", "pw", None).await;
    let src = TestDaemon::api_to(&dest, "").await;
    let api = src.http.unwrap();
    let store = src.store();
    let (key, k) = mailerd::http::auth::generate("app", Scope::All).unwrap();
    store.create_api_key(k).await.unwrap();
    let r = post_json(api, "/api/v1/suppressions", Some(&key), &json!({"address": "gone@dest.test"})).await;
    assert!(r.status < 300, "{}", r.text);

    // A single send: the suppressed recipient is refused, the other would be queued.
    let single = json!({"from": "app@sender.test", "to": ["alice@dest.test", "gone@dest.test"],
                        "subject": "sandbox", "text": "not sent", "sandbox": true, "tags": ["t1"]});
    let r = post_json(api, "/api/v1/messages", Some(&key), &single).await;
    assert_eq!((r.status, &r.json["sandbox"]), (202, &json!(true)), "{}", r.text);
    let fates: Vec<(&str, &str)> = r.json["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["address"].as_str().unwrap(), x["state"].as_str().unwrap()))
        .collect();
    assert_eq!(fates, [("alice@dest.test", "queued"), ("gone@dest.test", "refused")]);
    assert_eq!(r.json["recipients"][1]["reason"], "suppressed");
    let single_id = r.json["id"].as_str().unwrap().to_string();

    // Checks answer as for real mail.
    let mut bad = single.clone();
    bad["subject"] = json!("a\r\nBcc: x@dest.test");
    let r = post_json(api, "/api/v1/messages", Some(&key), &bad).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("subject")), "{}", r.text);
    let mut all_refused = single.clone();
    all_refused["to"] = json!(["gone@dest.test"]);
    let r = post_json(api, "/api/v1/messages", Some(&key), &all_refused).await;
    assert_eq!((r.status, r.json["type"].as_str()), (422, Some("/problems/no-recipients")), "{}", r.text);

    // A batch in sandbox mode, and a raw send.
    let batch = json!({"sandbox": true, "messages": [
        {"from": "app@sender.test", "to": ["alice@dest.test"], "text": "b1"},
        {"from": "app@sender.test", "to": ["alice@dest.test"], "text": "b2"},
    ]});
    let r = post_json(api, "/api/v1/messages/batch", Some(&key), &batch).await;
    assert_eq!((r.status, r.json["queued"].as_u64()), (200, Some(2)), "{}", r.text);
    assert_eq!(r.json["results"][1]["sandbox"], true);
    let batch_ids: Vec<String> =
        r.json["results"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect();
    let raw = b"From: app@sender.test\r\nTo: alice@dest.test\r\nSubject: raw sandbox\r\n\r\nx\r\n".to_vec();
    let r = request(api, "POST", "/api/v1/messages/raw?sandbox=true", Some(&key), Some(("message/rfc822", raw))).await;
    assert_eq!((r.status, &r.json["sandbox"]), (202, &json!(true)), "{}", r.text);
    let raw_id = r.json["id"].as_str().unwrap().to_string();

    // A real send after them is delivered; the sandbox ones never are.
    let real = json!({"from": "app@sender.test", "to": ["alice@dest.test"], "subject": "real", "text": "sent"});
    let r = post_json(api, "/api/v1/messages", Some(&key), &real).await;
    assert_eq!((r.status, r.json.get("sandbox")), (202, None), "{}", r.text);
    let real_id = r.json["id"].as_str().unwrap().to_string();
    let files = dest.wait_maildir("dest.test", "alice", 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let files_after = dest.maildir_files("dest.test", "alice");
    assert_eq!((files.len(), files_after.len()), (1, 1), "only the real message arrived");
    assert!(std::fs::read_to_string(&files_after[0]).unwrap().contains("Subject: real"));

    for id in [&single_id, &batch_ids[0], &batch_ids[1], &raw_id] {
        let events = events_of(api, &key, id).await;
        assert!(!events.is_empty(), "{id}: recorded");
        assert!(events.iter().all(|e| e["sandbox"] == true), "{id}: {events:?}");
        assert!(events.iter().any(|e| e["type"] == "queued" && e["recipient"] == "alice@dest.test"), "{events:?}");
        let detail = get(api, &format!("/api/v1/messages/{id}"), Some(&key)).await;
        assert_eq!(detail.status, 200, "{}", detail.text);
        assert_eq!(detail.json["origin"]["sandbox"], true, "{}", detail.text);
        assert_eq!(detail.json["recipients"], json!([]), "nothing to deliver: {}", detail.text);
    }
    let single_events = events_of(api, &key, &single_id).await;
    assert!(
        single_events.iter().all(|e| e["tags"] == json!(["t1"])),
        "events carry the send's tags: {single_events:?}"
    );
    assert!(!single_events.iter().any(|e| e["recipient"] == "gone@dest.test" && e["type"] == "queued"));
    let real_events = events_of(api, &key, &real_id).await;
    assert!(real_events.iter().all(|e| e.get("sandbox").is_none()), "{real_events:?}");
    assert_eq!(store.queued_messages().await.unwrap(), 0, "no sandbox message waits in the queue");
}

/// A key made with `mailerd apikey create --sandbox`: every send of it (single, batch, raw) is
/// a sandbox send without asking, and nothing reaches the destination; a normal key of the
/// same daemon still delivers.
#[tokio::test]
async fn a_sandbox_key_never_delivers() {
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("alice@dest.test", "pw", None).await;
    let src = TestDaemon::api_to(&dest, "").await;
    let api = src.http.unwrap();
    let cli = async |args: &[&str]| {
        let run = src.cli(args, "").await;
        (run.code, run.stdout.trim().to_string(), run.stderr)
    };
    let (code, test_key, err) = cli(&["apikey", "create", "ci", "--domain", "sender.test", "--sandbox"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("sandbox"), "the CLI says what the key is: {err}");
    let (code, out, _) = cli(&["apikey", "list", "--json"]).await;
    assert_eq!(code, Some(0));
    let row: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!((&row["name"], &row["sandbox"]), (&json!("ci"), &json!(true)), "{out}");
    let (real_key, k) = mailerd::http::auth::generate("app", Scope::All).unwrap();
    src.store().create_api_key(k).await.unwrap();

    // No `sandbox` in any request: the key decides.
    let single = json!({"from": "app@sender.test", "to": ["alice@dest.test"], "subject": "key sandbox", "text": "x"});
    let r = post_json(api, "/api/v1/messages", Some(&test_key), &single).await;
    assert_eq!((r.status, &r.json["sandbox"]), (202, &json!(true)), "{}", r.text);
    let single_id = r.json["id"].as_str().unwrap().to_string();
    let r = post_json(api, "/api/v1/messages/batch", Some(&test_key), &json!({"messages": [single.clone()]})).await;
    assert_eq!((r.status, &r.json["results"][0]["sandbox"]), (200, &json!(true)), "{}", r.text);
    let batch_id = r.json["results"][0]["id"].as_str().unwrap().to_string();
    let raw = b"From: app@sender.test\r\nTo: alice@dest.test\r\nSubject: key sandbox raw\r\n\r\nx\r\n".to_vec();
    let r = request(api, "POST", "/api/v1/messages/raw", Some(&test_key), Some(("message/rfc822", raw))).await;
    assert_eq!((r.status, &r.json["sandbox"]), (202, &json!(true)), "{}", r.text);
    let raw_id = r.json["id"].as_str().unwrap().to_string();
    // A refused recipient is refused as for real mail.
    let r = post_json(
        api,
        "/api/v1/messages",
        Some(&test_key),
        &json!({"from": "app@elsewhere.test", "to": ["alice@dest.test"], "text": "x"}),
    )
    .await;
    assert_eq!((r.status, r.json["field"].as_str()), (403, Some("from")), "the key's scope still applies: {}", r.text);

    let r = post_json(
        api,
        "/api/v1/messages",
        Some(&real_key),
        &json!({"from": "app@sender.test", "to": ["alice@dest.test"], "subject": "real", "text": "sent"}),
    )
    .await;
    assert_eq!((r.status, r.json.get("sandbox")), (202, None), "{}", r.text);
    dest.wait_maildir("dest.test", "alice", 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let files = dest.maildir_files("dest.test", "alice");
    assert_eq!(files.len(), 1, "only the normal key's message arrived");
    assert!(std::fs::read_to_string(&files[0]).unwrap().contains("Subject: real"));
    for id in [&single_id, &batch_id, &raw_id] {
        let events = events_of(api, &real_key, id).await;
        assert!(!events.is_empty() && events.iter().all(|e| e["sandbox"] == true), "{id}: {events:?}");
    }
}
