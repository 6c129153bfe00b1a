//! The HTTP API over real loopback HTTP: API keys (401 without, 403 from a foreign domain),
//! sending with attachments through the queue to a second mailerd, refused recipients with
//! their reason, problem+json naming the field, the message's journey, the event stream by
//! cursor, the suppression list, the checklist and bounce endpoints, the body limit, the
//! OpenAPI document against the routes, and `mailerd send` through the API.
//!
//! Must not: use any address outside 127.0.0.0/8.

use std::time::Duration;

use base64::Engine as _;
use mailerd::smtp::address::Domain;
use mailerd::store::{Scope, Store};
use serde_json::json;

use crate::harness::TestDaemon;
use crate::harness::http::{get, post_json, request};

/// A sender daemon with the API, relaying dest.test to a second daemon with alice's mailbox.
async fn pair() -> (TestDaemon, TestDaemon, String, String) {
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("alice@dest.test", "pw", None).await;
    let src = TestDaemon::api_to(&dest, "\"nowhere.test\" = \"127.0.0.1:9\"\n").await;
    let store = src.store();
    let (any, k1) = mailerd::http::auth::generate("ops", Scope::All).unwrap();
    store.create_api_key(k1).await.unwrap();
    let (scoped, k2) =
        mailerd::http::auth::generate("shop", Scope::Domains(vec![Domain::parse("sender.test").unwrap()])).unwrap();
    store.create_api_key(k2).await.unwrap();
    (src, dest, any, scoped)
}

#[tokio::test]
async fn send_through_the_api_and_follow_the_message() {
    let (src, dest, any, scoped) = pair().await;
    let api = src.http.expect("http listener");

    // Keys.
    let r = post_json(api, "/api/v1/messages", None, &json!({})).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.content_type, "application/problem+json");
    assert_eq!(r.json["status"], 401);
    let r = post_json(api, "/api/v1/messages", Some("mailerd_000"), &json!({})).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = post_json(
        api,
        "/api/v1/messages",
        Some(&scoped),
        &json!({"from": "x@other.test", "to": ["alice@dest.test"], "text": "hi"}),
    )
    .await;
    assert_eq!((r.status, r.json["field"].as_str()), (403, Some("from")), "{}", r.text);

    // Problems name the field.
    let r = post_json(
        api,
        "/api/v1/messages",
        Some(&scoped),
        &json!({"from": "app@sender.test", "to": ["alice@dest.test", "not an address"], "text": "hi"}),
    )
    .await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("to[1]")), "{}", r.text);
    let r = post_json(
        api,
        "/api/v1/messages",
        Some(&scoped),
        &json!({"from": "app@sender.test", "to": ["alice@dest.test"], "text": "hi",
                "attachments": [{"filename": "a.txt", "content": "***"}]}),
    )
    .await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("attachments[0].content")), "{}", r.text);
    let r = post_json(api, "/api/v1/messages", Some(&scoped), &json!({"from": "app@sender.test", "tto": []})).await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("tto")),
        "unknown fields are refused, named: {}",
        r.text
    );

    // A suppressed recipient is refused with its reason; the others are queued.
    let r = post_json(api, "/api/v1/suppressions", Some(&any), &json!({"address": "gone@dest.test"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let pdf = base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 invoice");
    let r = post_json(
        api,
        "/api/v1/messages",
        Some(&scoped),
        &json!({
            "from": "Shop <app@sender.test>", "to": ["Alice <alice@dest.test>", "gone@dest.test"],
            "subject": "Your invoice", "text": "Attached.", "html": "<p>Attached.</p>",
            "attachments": [{"filename": "invoice.pdf", "content_type": "application/pdf", "content": pdf}],
            "headers": {"X-Order": "42"}, "tags": ["invoice"], "metadata": {"order": "42"}
        }),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    let states: Vec<(String, String)> = r.json["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["address"].as_str().unwrap().to_string(), x["state"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(states, vec![("alice@dest.test".into(), "queued".into()), ("gone@dest.test".into(), "refused".into())]);
    assert_eq!(r.json["recipients"][1]["reason"], "suppressed");

    // Delivered to the other daemon, built as asked.
    let files = dest.wait_maildir("dest.test", "alice", 1).await;
    let text = std::fs::read_to_string(&files[0]).unwrap();
    for needle in ["Subject: Your invoice", "X-Order: 42", "invoice.pdf", "application/pdf", "text/html"] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    // The headers say what the sender wrote (as with SMTP); only the envelope leaves out the
    // refused recipient.
    assert!(text.contains("gone@dest.test"), "To: as written");

    // The journey and the event stream.
    let mut delivered = false;
    for _ in 0..200 {
        let m = get(api, &format!("/api/v1/messages/{id}"), Some(&any)).await;
        assert_eq!(m.status, 200, "{}", m.text);
        if m.json["recipients"][0]["state"] == "delivered" {
            delivered = true;
            assert_eq!(m.json["origin"]["tags"], json!(["invoice"]));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(delivered);
    let page = get(api, "/api/v1/events?since=0&type=delivered&limit=10", Some(&any)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let events = page.json["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["id"] == id.as_str() && e["type"] == "delivered"), "{}", page.text);
    let next = page.json["next"].as_i64().unwrap();
    let after = get(api, &format!("/api/v1/events?since={next}&type=delivered"), Some(&any)).await;
    assert_eq!(after.json["events"], json!([]), "the cursor moves past what was seen");
    let bad = get(api, "/api/v1/events?limit=0", Some(&any)).await;
    assert_eq!((bad.status, bad.json["field"].as_str()), (422, Some("limit")));
    assert_eq!(get(api, "/api/v1/messages/NOPE", Some(&any)).await.status, 404);

    // Metrics (process-wide counters: other tests' daemons count too, hence >=).
    let m = get(api, "/metrics", None).await;
    assert_eq!(m.status, 200);
    let value = |line: &str| {
        m.text
            .lines()
            .find(|l| l.starts_with(line))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<f64>().ok())
    };
    assert!(value("mailerd_messages_accepted_total{via=\"api\"}").unwrap_or(0.0) >= 1.0, "{}", m.text);
    assert!(value("mailerd_recipient_outcomes_total{outcome=\"delivered\"}").unwrap_or(0.0) >= 1.0, "{}", m.text);
    assert!(value("mailerd_delivery_latency_seconds_count").unwrap_or(0.0) >= 1.0, "{}", m.text);
    assert!(value("mailerd_queue_recipients").is_some(), "{}", m.text);

    // Suppressions.
    let list = get(api, "/api/v1/suppressions", Some(&any)).await;
    assert!(list.json["suppressions"].as_array().unwrap().iter().any(|s| s["address"] == "gone@dest.test"));
    assert_eq!(request(api, "DELETE", "/api/v1/suppressions/gone@dest.test", Some(&any), None).await.status, 204);
    assert_eq!(request(api, "DELETE", "/api/v1/suppressions/gone@dest.test", Some(&any), None).await.status, 404);

    // Every recipient refused: nothing queued, 422 with the reasons.
    let r = post_json(
        api,
        "/api/v1/messages",
        Some(&any),
        &json!({"from": "app@sender.test", "to": ["nobody@sender.test"], "text": "hi"}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.json["recipients"][0]["reason"], "user_unknown");
}

#[tokio::test]
async fn checklist_bounces_limits_and_openapi() {
    let (src, _dest, any, _) = pair().await;
    let api = src.http.expect("http listener");

    let r =
        post_json(api, "/api/v1/check/address", Some(&any), &json!({"address": "john@gmial.com", "dns": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let typo = r.json["checks"].as_array().unwrap().iter().find(|c| c["name"] == "typo").cloned().unwrap();
    assert_eq!(typo["suggestion"], "john@gmail.com");

    let msg = b"From: a@sender.test\r\nSubject: x\r\n\r\nhello\r\n".to_vec();
    let r = request(api, "POST", "/api/v1/check/message", Some(&any), Some(("message/rfc822", msg))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["checks"].as_array().unwrap().iter().any(|c| c["name"] == "headers" && c["ok"] == false));

    let bounce = b"From: MAILER-DAEMON@mx.dest.test\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\n<bob@dest.test>: host mx.dest.test said: 550 5.1.1 <bob@dest.test>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)\r\n".to_vec();
    let r = request(api, "POST", "/api/v1/bounces/parse", Some(&any), Some(("message/rfc822", bounce.clone()))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["recipients"][0]["reason"], "userunknown");
    let r = request(api, "POST", "/api/v1/bounces/verify", Some(&any), Some(("message/rfc822", bounce))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(["unknown", "forged"].contains(&r.json["verdict"].as_str().unwrap()), "{}", r.text);

    // The body limit (max_message_size, plus base64's third).
    let huge = vec![b'x'; 40 * 1024 * 1024];
    let r = request(api, "POST", "/api/v1/check/message", Some(&any), Some(("message/rfc822", huge))).await;
    assert_eq!(r.status, 413);

    // The OpenAPI document lists every route, and every listed route is served.
    let doc = get(api, "/api/v1/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    for (method, path) in mailerd::http::api::ROUTES {
        assert!(doc.json["paths"][path][method].is_object(), "{method} {path} missing from openapi.json");
        let concrete = path.replace("{id}", "X").replace("{address}", "x@y.test");
        let r = request(api, &method.to_uppercase(), &concrete, Some(&any), None).await;
        assert!(
            !(r.status == 404 && r.text.contains("no such route")) && r.status != 405,
            "{method} {path} is not routed: {} {}",
            r.status,
            r.text
        );
    }
    let documented: usize = doc.json["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, mailerd::http::api::ROUTES.len(), "no route documented that does not exist");
    let r = get(api, "/api/v1/nope", Some(&any)).await;
    assert_eq!((r.status, r.content_type.as_str()), (404, "application/problem+json"));
}

#[tokio::test]
async fn mailerd_send_uses_the_api() {
    let (src, dest, _, scoped) = pair().await;
    let api = src.http.expect("http listener");
    let config = src.dir.path().join("cli.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\n", src.dir.path().display())).unwrap();
    // The CLI talks to this process's daemon: run it off the test's runtime thread.
    let (cfg, key) = (config.clone(), scoped.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mailerd"))
            .args(["--config", cfg.to_str().unwrap(), "send", "--from", "app@sender.test", "--to", "alice@dest.test"])
            .args(["--subject", "from the CLI", "--server", &format!("http://{api}"), "--key", &key])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["recipients"][0]["state"], "queued");
    let files = dest.wait_maildir("dest.test", "alice", 1).await;
    assert!(std::fs::read_to_string(&files[0]).unwrap().contains("Subject: from the CLI"));

    // `mailerd apikey create` prints a key that works.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .args(["--config", config.to_str().unwrap(), "apikey", "create", "cli", "--domain", "sender.test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let r = get(api, "/api/v1/suppressions", Some(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}
