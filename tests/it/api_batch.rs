//! `POST /api/v1/messages/batch` over real loopback HTTP: results in the order given, each
//! refusal naming its field from the batch's top, the queued ones delivered to a second
//! mailerd; the limits of a batch; `Idempotency-Key` on a batch (replayed whole, one set of
//! messages); and on PostgreSQL, that a batch is one transaction (every event of it carries
//! the same transaction id).
//!
//! Must not: use any address outside 127.0.0.0/8.

use std::collections::HashSet;

use mailerd::store::postgres::PgStore;
use mailerd::store::{MessageId, Scope, Store};
use serde_json::{Value, json};

use crate::harness::TestDaemon;
use crate::harness::http::{post_json, request};
use crate::harness::postgres::{TestSchema, url_or_skip};

async fn admin_key(store: &dyn Store) -> String {
    let (secret, key) = mailerd::http::auth::generate("batch", Scope::All).unwrap();
    store.create_api_key(key).await.unwrap();
    secret
}

fn mail(to: &str, subject: &str) -> Value {
    json!({"from": "app@sender.test", "to": [to], "subject": subject, "text": format!("body of {subject}")})
}

#[tokio::test]
async fn batch_results_come_in_order_and_the_queued_are_delivered() {
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("alice@dest.test", "pw", None).await;
    let src = TestDaemon::api_to(&dest, "").await;
    let api = src.http.unwrap();
    let store = src.store();
    let key = admin_key(&store).await;
    let r = post_json(api, "/api/v1/suppressions", Some(&key), &json!({"address": "gone@dest.test"})).await;
    assert!(r.status < 300, "{}", r.text);

    let batch = json!({"messages": [
        mail("alice@dest.test", "one"),
        {"to": ["alice@dest.test"], "text": "no sender"},
        {"from": "app@sender.test", "to": ["not an address"], "text": "x"},
        mail("Alice <alice@dest.test>", "four"),
        mail("gone@dest.test", "suppressed"),
        {"from": "app@sender.test", "to": ["alice@dest.test"], "text": "x", "subject": "a\r\nBcc: evil@dest.test"},
        {"from": "app@sender.test", "to": "alice@dest.test", "text": "to is a list"},
        {"from": "app@sender.test", "to": ["alice@dest.test"], "text": "x", "colour": "red"},
    ]});
    let r = post_json(api, "/api/v1/messages/batch", Some(&key), &batch).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.json["results"].as_array().expect("results");
    let seen: Vec<(u64, u64, Option<&str>)> = results
        .iter()
        .map(|x| (x["index"].as_u64().unwrap(), x["status"].as_u64().unwrap(), x["error"]["field"].as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (0, 202, None),
            (1, 422, Some("messages[1].from")),
            (2, 422, Some("messages[2].to[0]")),
            (3, 202, None),
            (4, 422, Some("messages[4].to")),
            (5, 422, Some("messages[5].subject")),
            (6, 422, Some("messages[6].to")),
            (7, 422, Some("messages[7].colour")),
        ],
        "{}",
        r.text
    );
    assert_eq!((r.json["queued"].as_u64(), r.json["failed"].as_u64()), (Some(2), Some(6)));
    assert_eq!(results[4]["error"]["type"], "/problems/no-recipients");
    assert_eq!(results[4]["error"]["recipients"][0]["reason"], "suppressed", "{}", r.text);
    assert_eq!(results[1]["error"]["detail"], "missing field `from`");
    for i in [0, 3] {
        let id = results[i]["id"].as_str().unwrap();
        assert!(results[i]["message_id"].as_str().unwrap().starts_with('<'));
        assert_eq!(results[i]["recipients"][0]["state"], "queued");
        assert!(store.message_detail(&MessageId(id.into())).await.unwrap().is_some(), "{id} stored");
    }
    assert_ne!(results[0]["id"], results[3]["id"]);
    let files = dest.wait_maildir("dest.test", "alice", 2).await;
    let bodies: HashSet<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    assert!(bodies.iter().any(|b| b.contains("Subject: one") && b.contains("body of one")), "{bodies:?}");
    assert!(bodies.iter().any(|b| b.contains("Subject: four")), "{bodies:?}");
    assert_eq!(files.len(), 2);
}

#[tokio::test]
async fn batch_limits_and_errors_of_the_whole_request() {
    let d = TestDaemon::with(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[local]\ndomains = [\"sender.test\"]\n[queue]\nhold = true\n",
    )
    .await;
    let api = d.http.unwrap();
    let store = d.store();
    let key = admin_key(&store).await;
    let path = "/api/v1/messages/batch";
    let r = post_json(api, path, Some(&key), &json!({"messages": []})).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("messages")), "{}", r.text);
    let many: Vec<Value> = (0..501).map(|i| mail("postmaster@sender.test", &format!("m{i}"))).collect();
    let r = post_json(api, path, Some(&key), &json!({ "messages": many })).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("messages")), "{}", r.text);
    let r = post_json(api, path, Some(&key), &json!({"messages": [mail("postmaster@sender.test", "x")], "x": 1})).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("x")), "{}", r.text);
    let r = post_json(api, path, Some(&key), &json!({"mesages": []})).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("mesages")), "{}", r.text);
    let r = request(api, "POST", path, Some(&key), Some(("application/json", b"{\"messages\": [".to_vec()))).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = request(api, "POST", path, Some(&key), Some(("text/plain", b"{\"messages\": []}".to_vec()))).await;
    assert_eq!(r.status, 415, "{}", r.text);
    let r = post_json(api, path, None, &json!({"messages": []})).await;
    assert_eq!(r.status, 401);
    assert_eq!(store.queued_messages().await.unwrap(), 0, "nothing was queued");
    // 500 is allowed, and every one is queued.
    let full: Vec<Value> = (0..500).map(|i| mail("postmaster@sender.test", &format!("m{i}"))).collect();
    let r = post_json(api, path, Some(&key), &json!({ "messages": full })).await;
    assert_eq!((r.status, r.json["queued"].as_u64()), (200, Some(500)), "{}", r.text);
    let ids: HashSet<&str> = r.json["results"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 500);
    assert_eq!(store.queued_messages().await.unwrap(), 500);
    // A scoped key's message from a foreign domain is refused alone.
    let (scoped, k) = mailerd::http::auth::generate(
        "shop",
        Scope::Domains(vec![mailerd::smtp::address::Domain::parse("sender.test").unwrap()]),
    )
    .unwrap();
    store.create_api_key(k).await.unwrap();
    let mut foreign = mail("postmaster@sender.test", "foreign");
    foreign["from"] = json!("x@elsewhere.test");
    let r = post_json(api, path, Some(&scoped), &json!({"messages": [foreign, mail("postmaster@sender.test", "ok")]}))
        .await;
    let statuses: Vec<u64> =
        r.json["results"].as_array().unwrap().iter().map(|x| x["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [403, 202], "{}", r.text);
    assert_eq!(r.json["results"][0]["error"]["field"], "messages[0].from");
}

#[tokio::test]
async fn batch_with_an_idempotency_key_is_sent_once() {
    let d = TestDaemon::with(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[local]\ndomains = [\"sender.test\"]\n[queue]\nhold = true\n",
    )
    .await;
    let api = d.http.unwrap();
    let store = d.store();
    let key = admin_key(&store).await;
    let body = json!({"messages": [mail("postmaster@sender.test", "a"), {"from": "bad"}, mail("postmaster@sender.test", "b")]});
    let send = |idem: &'static str, body: Value| {
        let key = key.clone();
        async move {
            let bytes = body.to_string().into_bytes();
            crate::harness::http::request_with(
                api,
                "POST",
                "/api/v1/messages/batch",
                Some(&key),
                &[("Idempotency-Key", idem)],
                Some(("application/json", bytes)),
            )
            .await
        }
    };
    let first = send("batch-1", body.clone()).await;
    assert_eq!((first.status, first.header("idempotent-replayed")), (200, None), "{}", first.text);
    assert_eq!(first.json["queued"], 2);
    let again = send("batch-1", body.clone()).await;
    assert_eq!((again.status, again.header("idempotent-replayed")), (200, Some("true")));
    assert_eq!(again.json, first.json, "the same ids, replayed");
    assert_eq!(store.queued_messages().await.unwrap(), 2);
    let other = send("batch-1", json!({"messages": [mail("postmaster@sender.test", "c")]})).await;
    assert_eq!((other.status, other.json["field"].as_str()), (422, Some("Idempotency-Key")), "{}", other.text);
    // A batch that queued nothing records nothing: the key may be used again.
    let none = send("batch-2", json!({"messages": [{"from": "bad"}]})).await;
    assert_eq!((none.status, none.json["queued"].as_u64()), (200, Some(0)));
    let fixed = send("batch-2", json!({"messages": [mail("postmaster@sender.test", "d")]})).await;
    assert_eq!(
        (fixed.status, fixed.json["queued"].as_u64(), fixed.header("idempotent-replayed")),
        (200, Some(1), None)
    );
    assert_eq!(store.queued_messages().await.unwrap(), 3);
}

/// On PostgreSQL a batch is one transaction: every `queued` event of its messages carries the
/// same transaction id (`events.xid`), where single sends each have their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_on_postgres_is_one_transaction() {
    let Some(admin) = url_or_skip("api_batch::batch_on_postgres_is_one_transaction") else { return };
    let schema = TestSchema::create(&admin, "api_batch").await;
    let d = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[local]\ndomains = [\"sender.test\"]\n[queue]\nhold = true\n[store]\nurl = \"{}\"\n",
        schema.url
    ))
    .await;
    let api = d.http.unwrap();
    let store = PgStore::connect(&schema.url).await.expect("store");
    let key = admin_key(&store).await;
    let batch: Vec<Value> = (0..50).map(|i| mail("postmaster@sender.test", &format!("pg{i}"))).collect();
    let r = post_json(api, "/api/v1/messages/batch", Some(&key), &json!({ "messages": batch })).await;
    assert_eq!((r.status, r.json["queued"].as_u64()), (200, Some(50)), "{}", r.text);
    let ids: Vec<String> =
        r.json["results"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect();
    for _ in 0..3 {
        let r = post_json(api, "/api/v1/messages", Some(&key), &mail("postmaster@sender.test", "single")).await;
        assert_eq!(r.status, 202, "{}", r.text);
    }
    let (client, conn) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT count(DISTINCT xid::text), count(DISTINCT message_id) FROM events WHERE message_id = ANY($1)",
            &[&ids],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 50), "one transaction for 50 messages");
    let row = client
        .query_one("SELECT count(DISTINCT xid::text) FROM events WHERE NOT (message_id = ANY($1))", &[&ids])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 3, "each single send is its own");
    assert_eq!(store.queued_messages().await.unwrap(), 53);
}

/// A batch's checks read the suppression list and the pauses once for all its messages; each
/// message still gets exactly the answer a single send would: a sender-domain entry refuses
/// only mail from its domain, a global one everybody's, a paused sender domain only its own.
#[tokio::test]
async fn a_batch_reads_suppressions_and_pauses_once_and_decides_per_message() {
    use mailerd::store::{AccountPause, Suppression, SuppressionScope};
    let d = TestDaemon::with(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[queue]\nhold = true\n[routes]\n\"dest.test\" = \"127.0.0.1:9\"\n",
    )
    .await;
    let api = d.http.unwrap();
    let store = d.store();
    let key = admin_key(&store).await;
    let entry = |address: &str, domain: Option<&str>, scope| Suppression {
        address: address.into(),
        reason: "unsubscribed".into(),
        status: None,
        detail: None,
        message_id: None,
        created_at: String::new(),
        domain: domain.map(|d| mailerd::smtp::address::Domain::parse(d).unwrap()),
        scope,
    };
    store.suppress(entry("list@dest.test", Some("a.sender.test"), SuppressionScope::SenderDomain)).await.unwrap();
    store.suppress(entry("gone@dest.test", None, SuppressionScope::Global)).await.unwrap();
    let pause = AccountPause {
        account: mailerd::bounce::breaker::domain_account("c.sender.test"),
        detail: "complaint rate".into(),
        message_id: None,
        paused_at: String::new(),
    };
    assert!(store.pause_account(pause).await.unwrap());
    let from = |sender: &str, to: &[&str]| json!({"from": sender, "to": to, "subject": "s", "text": "t"});
    let batch = json!({"messages": [
        from("app@a.sender.test", &["list@dest.test", "ok@dest.test"]),
        from("app@b.sender.test", &["list@dest.test"]),
        from("app@b.sender.test", &["gone@dest.test"]),
        from("app@c.sender.test", &["ok@dest.test"]),
        from("app@a.sender.test", &["LIST@dest.test"]),
    ]});
    let r = post_json(api, "/api/v1/messages/batch", Some(&key), &batch).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let fates: Vec<Vec<(String, String)>> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let list = x["recipients"].as_array().or(x["error"]["recipients"].as_array()).cloned().unwrap_or_default();
            list.iter()
                .map(|r| {
                    let why = r["reason"].as_str().unwrap_or(r["state"].as_str().unwrap_or("")).to_string();
                    (r["address"].as_str().unwrap().to_string(), why)
                })
                .collect()
        })
        .collect();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        fates,
        [
            vec![pair("list@dest.test", "suppressed"), pair("ok@dest.test", "queued")],
            vec![pair("list@dest.test", "queued")],
            vec![pair("gone@dest.test", "suppressed")],
            vec![pair("ok@dest.test", "not_allowed")],
            vec![pair("LIST@dest.test", "suppressed")],
        ],
        "{}",
        r.text
    );
    assert_eq!(r.json["queued"], 2, "{}", r.text);
}
