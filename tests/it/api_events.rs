//! Events an app filters on, end to end over loopback: recipients an API send refuses are
//! `rejected` events (in the event stream and webhooks) with the refusal and the advice, and a
//! deferral's advice matches its attempt (the first says there is nothing to do yet; no "for
//! days" after one attempt), against a real destination that answers 421.
//!
//! Must not: use any address outside 127.0.0.0/8.

use std::time::Duration;

use mailerd::store::{Scope, Store};
use serde_json::{Value, json};

use crate::harness::TestDaemon;
use crate::harness::http::{Hooked, get, post_json, webhook_receiver};

async fn wait_for(seen: &Hooked, n: usize, what: impl Fn(&Value) -> bool) -> Vec<Value> {
    for _ in 0..800 {
        let posts: Vec<Value> =
            seen.lock().unwrap().iter().map(|b| serde_json::from_str(b).unwrap_or(Value::Null)).collect();
        let got: Vec<Value> = posts.into_iter().filter(|v| what(v)).collect();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {n} webhook posts: {:?}", seen.lock().unwrap());
}

#[tokio::test]
async fn refused_recipients_are_rejected_events_with_the_refusal_and_the_advice() {
    let (hook, seen) = webhook_receiver().await;
    let d = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[local]\ndomains = [\"sender.test\", \"dest.test\"]\n\
         [routes]\n\"far.test\" = \"127.0.0.1:9\"\n\
         [[webhooks]]\nurl = \"http://{hook}/hook\"\nsecret = \"whsec_rejected_0123456\"\nevents = [\"rejected\"]\n"
    ))
    .await;
    d.add_user("alice@dest.test", "pw", None).await;
    let api = d.http.unwrap();
    let (key, k) = mailerd::http::auth::generate("app", Scope::All).unwrap();
    d.store().create_api_key(k).await.unwrap();
    let r = post_json(api, "/api/v1/suppressions", Some(&key), &json!({"address": "gone@far.test"})).await;
    assert!(r.status < 300, "{}", r.text);

    let send = json!({"from": "app@sender.test", "to": ["alice@dest.test", "gone@far.test", "nobody@dest.test"],
                      "subject": "hi", "text": "hello", "tags": ["welcome"]});
    let r = post_json(api, "/api/v1/messages", Some(&key), &send).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    let message_id = r.json["message_id"].as_str().unwrap().to_string();
    assert!(message_id.starts_with('<'), "{}", r.text);

    // The event stream: one `rejected` per refused recipient, with the refusal's status and text.
    // Events name the message as the send reply does: `id` the queue id, `message_id` the
    // Message-ID header; their own id is `event_id`, the cursor.
    let events = get(api, "/api/v1/events?type=rejected&limit=100", Some(&key)).await;
    assert_eq!(events.status, 200, "{}", events.text);
    let rejected: Vec<&Value> = events.json["events"].as_array().unwrap().iter().filter(|e| e["id"] == id).collect();
    assert!(rejected.iter().all(|e| e["message_id"] == message_id.as_str()), "{rejected:?}");
    let last = rejected.iter().filter_map(|e| e["event_id"].as_i64()).max().expect("event ids");
    assert_eq!(events.json["next"].as_i64(), Some(last), "the cursor is the last event_id");
    // The journey and the search say the same.
    let journey = get(api, &format!("/api/v1/messages/{id}"), Some(&key)).await;
    assert_eq!(
        (&journey.json["id"], &journey.json["message_id"]),
        (&json!(id), &json!(message_id)),
        "{}",
        journey.text
    );
    let found = get(api, "/api/v1/messages?tag=welcome", Some(&key)).await;
    assert_eq!(found.json["messages"][0]["message_id"], json!(message_id), "{}", found.text);
    let by_rcpt =
        |a: &str| *rejected.iter().find(|e| e["recipient"] == a).unwrap_or_else(|| panic!("{a}: {rejected:?}"));
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    let gone = by_rcpt("gone@far.test");
    assert_eq!((&gone["type"], &gone["status"]), (&json!("rejected"), &json!("5.1.1")));
    assert!(gone["detail"].as_str().unwrap().contains("suppressed since"), "{gone}");
    assert_eq!(gone["tags"], json!(["welcome"]), "the send's tags");
    let nobody = by_rcpt("nobody@dest.test");
    assert!(nobody["detail"].as_str().unwrap().starts_with("550 5.1.1"), "{nobody}");
    assert!(!rejected.iter().any(|e| e["recipient"] == "alice@dest.test"));

    // The webhook: the same events with reason, hard/soft and the advice of the reason table.
    let posts = wait_for(&seen, 2, |v| v["id"] == id.as_str()).await;
    assert!(posts.iter().all(|p| p["message_id"] == message_id.as_str() && p["event_id"].is_i64()), "{posts:?}");
    let post = |a: &str| posts.iter().find(|p| p["recipient"] == a).unwrap_or_else(|| panic!("{a}: {posts:?}"));
    let gone = post("gone@far.test");
    assert_eq!(
        (&gone["type"], &gone["reason"], &gone["hard_bounce"]),
        (&json!("rejected"), &json!("suppressed"), &json!(false))
    );
    assert_eq!(gone["advice"], mailerd::bounce::reason::Reason::Suppressed.info().advice);
    let nobody = post("nobody@dest.test");
    assert_eq!(nobody["reason"], "userunknown", "{nobody}");
    assert_eq!(nobody["advice"], mailerd::bounce::reason::Reason::UserUnknown.info().advice);
}

#[tokio::test]
async fn deferral_advice_matches_the_attempt() {
    // A destination that answers every connection with 421: each attempt is deferred.
    let busy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let busy_task = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = busy.accept().await {
            let _ = s.write_all(b"421 4.3.2 mx.later.test busy, try again later\r\n").await;
        }
    });
    let (hook, seen) = webhook_receiver().await;
    let d = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[local]\ndomains = [\"sender.test\"]\n[retry]\nfirst = 1\nmax_interval = 1\n\
         [routes]\n\"later.test\" = \"127.0.0.1:{busy_port}\"\n\
         [[webhooks]]\nurl = \"http://{hook}/hook\"\nsecret = \"whsec_deferred_0123456\"\nevents = [\"deferred\"]\n"
    ))
    .await;
    let api = d.http.unwrap();
    let (key, k) = mailerd::http::auth::generate("app", Scope::All).unwrap();
    d.store().create_api_key(k).await.unwrap();
    let send = json!({"from": "app@sender.test", "to": ["postmaster@later.test"], "subject": "hi", "text": "hello"});
    let r = post_json(api, "/api/v1/messages", Some(&key), &send).await;
    assert_eq!(r.status, 202, "{}", r.text);

    let posts = wait_for(&seen, 2, |v| v["type"] == "deferred").await;
    busy_task.abort();
    let (first, second) = (&posts[0], &posts[1]);
    assert_eq!((&first["attempt"], &second["attempt"]), (&json!(1), &json!(2)), "{posts:?}");
    assert_eq!(first["first_attempt_at"], first["at"]);
    assert_eq!(second["first_attempt_at"], first["at"], "the second names the first attempt's time");
    let advice = |v: &Value| v["advice"].as_str().unwrap().to_string();
    assert!(advice(first).contains("first delivery attempt") && advice(first).contains("nothing to do yet"), "{first}");
    assert!(advice(second).starts_with("Attempt 2 failed temporarily"), "{second}");
    for p in [first, second] {
        assert!(!advice(p).contains("days"), "no days after {} attempts: {p}", p["attempt"]);
    }
}

/// Mail that enters over SMTP keeps its own Message-ID header, and its events carry it as
/// `message_id` beside the queue id (`id`), as API mail's do; mail without one gets ours.
#[tokio::test]
async fn smtp_mail_events_carry_its_message_id_header() {
    let d = TestDaemon::with("[listen]\nhttp = \"127.0.0.1:0\"").await;
    let api = d.http.unwrap();
    let (key, k) = mailerd::http::auth::generate("app", Scope::All).unwrap();
    d.store().create_api_key(k).await.unwrap();
    let mut c = crate::harness::Client::connect(d.smtp).await;
    let body = "From: a@sender.test\r\nMessage-ID: <smtp-door-1@sender.test>\r\nSubject: hi\r\n\r\nx\r\n";
    let r = c.send_mail("a@sender.test", &["postmaster@local.test"], body).await;
    r.expect("250 2.0.0 Ok: queued as");
    let id = r.queue_id();
    d.wait_maildir("local.test", "postmaster", 1).await;
    let events = get(api, "/api/v1/events?limit=100", Some(&key)).await;
    let mine: Vec<&Value> =
        events.json["events"].as_array().unwrap().iter().filter(|e| e["id"] == id.as_str()).collect();
    assert!(mine.iter().any(|e| e["type"] == "delivered"), "{}", events.text);
    assert!(mine.iter().all(|e| e["message_id"] == "<smtp-door-1@sender.test>"), "{mine:?}");
    let journey = get(api, &format!("/api/v1/messages/{id}"), Some(&key)).await;
    assert_eq!(journey.json["message_id"], "<smtp-door-1@sender.test>", "{}", journey.text);
}
