//! Scoped API keys all the way (issue 14): a key made with `--domain a.example` reads no
//! message, event or suppression entry of b.example, cannot remove or add entries outside its
//! scope, cannot check b.example, and learns nothing from bounce verification about b.example's
//! mail — while an admin key sees all of it. Plus `mailerd apikey create|list|rotate|revoke`.
//! The counts are printed.
//!
//! Must not: use any address outside 127.0.0.0/8.

use mailerd::smtp::address::Domain;
use mailerd::store::{Scope, Store, Suppression};
use serde_json::{Value, json};

use crate::harness::TestDaemon;
use crate::harness::http::{get, post_json, request};

const MESSAGES_EACH: usize = 4;

fn scope(domains: &[&str]) -> Scope {
    Scope::Domains(domains.iter().map(|d| Domain::parse(d).unwrap()).collect())
}

/// A daemon that queues (and holds) mail for dest.test, with an admin key and keys for
/// a.example, b.example and both.
async fn daemon() -> (TestDaemon, String, String, String, String) {
    let d = TestDaemon::with(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[queue]\nhold = true\n[routes]\n\"dest.test\" = \"127.0.0.1:9\"\n",
    )
    .await;
    let store = d.store();
    let mut secrets = Vec::new();
    for (name, s) in [
        ("ops", Scope::All),
        ("shop-a", scope(&["a.example"])),
        ("shop-b", scope(&["b.example"])),
        ("both", scope(&["a.example", "b.example"])),
    ] {
        let (secret, key) = mailerd::http::auth::generate(name, s).unwrap();
        store.create_api_key(key).await.unwrap();
        secrets.push(secret);
    }
    let mut it = secrets.into_iter();
    let mut next = || it.next().unwrap();
    (d, next(), next(), next(), next())
}

/// Every event the key can page through, `limit` at a time.
async fn all_events(api: std::net::SocketAddr, key: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut since = 0;
    loop {
        let page = get(api, &format!("/api/v1/events?since={since}&limit={limit}"), Some(key)).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let events = page.json["events"].as_array().unwrap().clone();
        if events.is_empty() {
            return out;
        }
        since = page.json["next"].as_i64().unwrap();
        out.extend(events);
    }
}

fn bounce_about(message_id: &str, from: &str) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@mx.dest.test\r\nTo: {from}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\n<x0@dest.test>: host mx.dest.test said: 550 5.1.1 <x0@dest.test>: \
         Recipient address rejected: User unknown (in reply to RCPT TO command)\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.dest.test\r\n\r\n\
         Final-Recipient: rfc822; x0@dest.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: {from}\r\nTo: x0@dest.test\r\n\
         Message-ID: {message_id}\r\nSubject: hi\r\n\r\n--B--\r\n"
    )
    .into_bytes()
}

fn evidence(v: &Value, check: &str) -> bool {
    v["evidence"].as_array().unwrap().iter().any(|e| e["check"] == check && e["ok"] == true)
}

#[tokio::test]
async fn a_scoped_key_sees_and_changes_only_its_domains() {
    let (d, admin, key_a, key_b, both) = daemon().await;
    let api = d.http.expect("http listener");

    // Each shop sends from its own domain (and a subdomain for a).
    let mut ids: std::collections::HashMap<&str, Vec<(String, String)>> = Default::default();
    for (key, from, tenant) in [
        (&key_a, "app@a.example", "a"),
        (&key_a, "news@mail.a.example", "a"),
        (&key_b, "app@b.example", "b"),
        (&key_b, "app@b.example", "b"),
    ] {
        for i in 0..MESSAGES_EACH / 2 {
            let r = post_json(
                api,
                "/api/v1/messages",
                Some(key),
                &json!({"from": from, "to": [format!("x{i}@dest.test")], "subject": "hi", "text": "hello"}),
            )
            .await;
            assert_eq!(r.status, 202, "{}", r.text);
            let id = r.json["id"].as_str().unwrap().to_string();
            let mid = r.json["message_id"].as_str().unwrap().to_string();
            ids.entry(tenant).or_default().push((id, mid));
        }
    }
    let r = post_json(
        api,
        "/api/v1/messages",
        Some(&key_a),
        &json!({"from": "app@b.example", "to": ["x@dest.test"], "text": "x"}),
    )
    .await;
    assert_eq!((r.status, r.json["field"].as_str()), (403, Some("from")), "{}", r.text);

    // Messages: b's are unknown ids for a; the answer is that of an id that does not exist.
    let mut read_b = 0;
    for (id, _) in &ids["b"] {
        let r = get(api, &format!("/api/v1/messages/{id}"), Some(&key_a)).await;
        let unknown = get(api, "/api/v1/messages/0000000000000000NOPE", Some(&key_a)).await;
        assert_eq!((r.status, r.content_type.as_str()), (404, "application/problem+json"), "{}", r.text);
        assert_eq!(
            (r.json["type"].clone(), r.json["title"].clone()),
            (unknown.json["type"].clone(), unknown.json["title"].clone())
        );
        assert_eq!(r.json["detail"], format!("no message {id}"));
        if r.status == 200 {
            read_b += 1;
        }
        assert_eq!(get(api, &format!("/api/v1/messages/{id}"), Some(&admin)).await.status, 200);
        assert_eq!(get(api, &format!("/api/v1/messages/{id}"), Some(&key_b)).await.status, 200);
    }
    for (id, _) in &ids["a"] {
        assert_eq!(get(api, &format!("/api/v1/messages/{id}"), Some(&key_a)).await.status, 200, "a reads its own");
    }

    // Events, paged 3 at a time: a's pages hold only a's events, and all of them.
    let b_ids: Vec<&str> = ids["b"].iter().map(|(id, _)| id.as_str()).collect();
    let a_ids: Vec<&str> = ids["a"].iter().map(|(id, _)| id.as_str()).collect();
    let of =
        |events: &[Value], ids: &[&str]| events.iter().filter(|e| ids.contains(&e["id"].as_str().unwrap())).count();
    let events_a = all_events(api, &key_a, 3).await;
    let events_admin = all_events(api, &admin, 3).await;
    assert_eq!(of(&events_a, &b_ids), 0);
    assert_eq!(of(&events_a, &a_ids), of(&events_admin, &a_ids), "a pages through all of its events");
    assert_eq!(events_a.len(), of(&events_a, &a_ids));
    assert!(of(&events_admin, &b_ids) >= MESSAGES_EACH, "the admin sees b's events");
    let first = get(api, "/api/v1/events?since=0&limit=3", Some(&key_a)).await;
    assert_eq!(first.json["events"].as_array().unwrap().len(), 3, "a page is full, not thinned by b's events");

    // Suppressions: a hard bounce of b's mail (as bounce::report records it), one b added by
    // hand, one admin entry, and one of a's.
    let store = d.store();
    store
        .suppress(Suppression {
            address: "bounced@dest.test".into(),
            reason: "userunknown".into(),
            status: Some("5.1.1".into()),
            detail: Some("550 5.1.1 user unknown".into()),
            message_id: Some(ids["b"][0].0.clone()),
            created_at: String::new(),
            domain: Some(Domain::parse("b.example").unwrap()),
            scope: mailerd::store::SuppressionScope::Global,
        })
        .await
        .unwrap();
    let r = post_json(api, "/api/v1/suppressions", Some(&key_b), &json!({"address": "manual@dest.test"})).await;
    assert_eq!((r.status, r.json["domain"].as_str()), (201, Some("b.example")), "{}", r.text);
    let r = post_json(api, "/api/v1/suppressions", Some(&admin), &json!({"address": "admin@dest.test"})).await;
    assert_eq!((r.status, r.json["domain"].clone()), (201, Value::Null), "{}", r.text);
    let r = post_json(api, "/api/v1/suppressions", Some(&key_a), &json!({"address": "mine@dest.test"})).await;
    assert_eq!((r.status, r.json["domain"].as_str()), (201, Some("a.example")), "{}", r.text);
    let b_entries = ["bounced@dest.test", "manual@dest.test"];
    let listed = |r: &crate::harness::http::Response| -> Vec<String> {
        r.json["suppressions"].as_array().unwrap().iter().map(|s| s["address"].as_str().unwrap().to_string()).collect()
    };
    let list_a = listed(&get(api, "/api/v1/suppressions", Some(&key_a)).await);
    let list_admin = listed(&get(api, "/api/v1/suppressions", Some(&admin)).await);
    let suppressions_b_seen_by_a = list_a.iter().filter(|a| b_entries.contains(&a.as_str())).count();
    assert_eq!(list_a, ["mine@dest.test"]);
    assert_eq!(list_admin.len(), 4, "{list_admin:?}");
    assert_eq!(listed(&get(api, "/api/v1/suppressions", Some(&key_b)).await).len(), 2);

    // Out of scope: removing b's entries is a 404 (as if absent) and changes nothing; adding
    // for b.example is refused; a key with two domains must name one.
    let mut refused_deletes = 0;
    for address in b_entries.iter().chain(["admin@dest.test"].iter()) {
        let r = request(api, "DELETE", &format!("/api/v1/suppressions/{address}"), Some(&key_a), None).await;
        let absent = request(api, "DELETE", "/api/v1/suppressions/never@dest.test", Some(&key_a), None).await;
        assert_eq!((r.status, r.json["title"].clone()), (absent.status, absent.json["title"].clone()), "{}", r.text);
        if r.status == 404 {
            refused_deletes += 1;
        }
    }
    assert_eq!(store.suppressions(&Scope::All, 100).await.unwrap().len(), 4, "nothing removed");
    let mut refused_adds = 0;
    for (key, body, status, field) in [
        (&key_a, json!({"address": "new@dest.test", "domain": "b.example"}), 403, "domain"),
        (&key_a, json!({"address": "new@dest.test", "domain": "xa.example"}), 403, "domain"),
        (&both, json!({"address": "new@dest.test"}), 422, "domain"),
        (&key_a, json!({"address": "new@dest.test", "domain": "not a domain"}), 422, "domain"),
    ] {
        let r = post_json(api, "/api/v1/suppressions", Some(key), &body).await;
        assert_eq!((r.status, r.json["field"].as_str()), (status, Some(field)), "{body}: {}", r.text);
        refused_adds += 1;
    }
    let r = post_json(
        api,
        "/api/v1/suppressions",
        Some(&both),
        &json!({"address": "new@dest.test", "domain": "mail.b.example"}),
    )
    .await;
    assert_eq!(
        (r.status, r.json["domain"].as_str()),
        (201, Some("mail.b.example")),
        "a subdomain is in scope: {}",
        r.text
    );
    assert!(store.suppression_entries("new@dest.test", &scope(&["a.example"])).await.unwrap().is_empty());
    // a removes its own; b's entry of the same address would stay.
    assert_eq!(request(api, "DELETE", "/api/v1/suppressions/mine@dest.test", Some(&key_a), None).await.status, 204);
    // Enforcement at RCPT stays global: b's entry refuses the address for a too.
    let r = post_json(
        api,
        "/api/v1/messages",
        Some(&key_a),
        &json!({"from": "app@a.example", "to": ["bounced@dest.test"], "text": "x"}),
    )
    .await;
    assert_eq!((r.status, r.json["recipients"][0]["reason"].as_str()), (422, Some("suppressed")), "{}", r.text);

    // Checks: a cannot check b.example; its address check does not see b's entries.
    let mut refused_checks = 0;
    for domain in ["b.example", "mail.b.example", "example", "xa.example"] {
        let r = post_json(api, "/api/v1/check/domain", Some(&key_a), &json!({"domain": domain})).await;
        assert_eq!((r.status, r.json["field"].as_str()), (403, Some("domain")), "{domain}: {}", r.text);
        refused_checks += 1;
    }
    let suppressed_check = |r: &crate::harness::http::Response| {
        r.json["checks"].as_array().unwrap().iter().find(|c| c["name"] == "suppressed").unwrap()["ok"].clone()
    };
    let body = json!({"address": "bounced@dest.test", "dns": false});
    let r = post_json(api, "/api/v1/check/address", Some(&key_a), &body).await;
    assert_eq!(suppressed_check(&r), json!(true), "a does not see b's entry: {}", r.text);
    let r = post_json(api, "/api/v1/check/address", Some(&key_b), &body).await;
    assert_eq!(suppressed_check(&r), json!(false), "{}", r.text);
    let r = post_json(api, "/api/v1/check/address", Some(&admin), &body).await;
    assert_eq!(suppressed_check(&r), json!(false), "{}", r.text);

    // Bounce verification: a bounce about b's mail is not ours for a.
    let (_, b_mid) = &ids["b"][0];
    let bounce = bounce_about(b_mid, "app@b.example");
    let verify = |key: String| {
        let bounce = bounce.clone();
        async move { request(api, "POST", "/api/v1/bounces/verify", Some(&key), Some(("message/rfc822", bounce))).await }
    };
    let as_b = verify(key_b.clone()).await;
    let as_admin = verify(admin.clone()).await;
    let as_a = verify(key_a.clone()).await;
    assert!(evidence(&as_b.json, "sent_log") && evidence(&as_admin.json, "sent_log"), "{}", as_b.text);
    assert_eq!(as_b.json["verdict"], "genuine", "{}", as_b.text);
    assert!(!evidence(&as_a.json, "sent_log"), "{}", as_a.text);
    assert_ne!(as_a.json["verdict"], "genuine", "{}", as_a.text);
    assert!(!as_a.text.contains(&ids["b"][0].0), "no queue id of b's in a's answer: {}", as_a.text);
    let bounces_b_genuine_for_a = usize::from(as_a.json["verdict"] == "genuine");

    eprintln!(
        "scoped key a.example vs b.example: messages read {read_b} of {} (admin and b: {} of {}), events {} (admin: {}), \
         suppressions {suppressions_b_seen_by_a} (admin: {} in all), out-of-scope deletes refused {refused_deletes}/3, \
         adds refused {refused_adds}/4, domain checks refused {refused_checks}/4, bounces of b judged genuine for a \
         {bounces_b_genuine_for_a} (for b: {})",
        b_ids.len(),
        b_ids.len(),
        b_ids.len(),
        of(&events_a, &b_ids),
        of(&events_admin, &b_ids),
        list_admin.len(),
        as_b.json["verdict"],
    );
    assert_eq!((read_b, suppressions_b_seen_by_a, bounces_b_genuine_for_a), (0, 0, 0));
}

/// `mailerd apikey create|list|rotate|revoke` against the daemon's database.
#[tokio::test]
async fn apikey_commands_make_list_rotate_and_revoke_keys() {
    let d = TestDaemon::with("[listen]\nhttp = \"127.0.0.1:0\"\n").await;
    let api = d.http.expect("http listener");
    let config = d.dir.path().join("cli.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\n", d.dir.path().display())).unwrap();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailerd"))
            .args(["--config", config.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // A key must say what it may do.
    let (code, out, err) = cli(&["apikey", "create", "nameless"]);
    assert_eq!((code, out.as_str()), (Some(2), ""), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("--domain") && err.contains("--admin"), "{err}");
    assert_eq!(cli(&["apikey", "create", "x", "--admin", "--domain", "a.example"]).0, Some(2));
    assert_eq!(cli(&["apikey", "create", "x", "--domain", "not a domain"]).0, Some(2));

    let (code, shop, err) = cli(&["apikey", "create", "shop", "--domain", "A.Example", "--domain", "b.example"]);
    assert_eq!(code, Some(0), "{err}");
    let shop = shop.trim().to_string();
    let (code, ops, err) = cli(&["apikey", "create", "ops", "--admin"]);
    assert_eq!(code, Some(0), "{err}");
    let ops = ops.trim().to_string();

    assert_eq!(get(api, "/api/v1/suppressions", Some(&shop)).await.status, 200, "the key works (and is used now)");
    let (code, out, _) = cli(&["apikey", "list", "--json"]);
    assert_eq!(code, Some(0));
    let keys: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(keys.len(), 2, "{out}");
    let by_name = |n: &str| keys.iter().find(|k| k["name"] == n).unwrap().clone();
    let shop_row = by_name("shop");
    assert_eq!(
        (shop_row["admin"].clone(), shop_row["domains"].clone()),
        (json!(false), json!(["a.example", "b.example"]))
    );
    assert_eq!((by_name("ops")["admin"].clone(), by_name("ops")["domains"].clone()), (json!(true), json!([])));
    assert!(shop_row["created_at"].as_str().unwrap().ends_with('Z'));
    // The last use is recorded off the request's path: give it a moment.
    let mut used = Value::Null;
    for _ in 0..100 {
        let (_, out, _) = cli(&["apikey", "list", "--json"]);
        used = out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|k| k["name"] == "shop").unwrap()["last_used_at"].clone();
        if !used.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(used.as_str().is_some_and(|t| t.ends_with('Z')), "{used}");
    let (_, text, _) = cli(&["apikey", "list"]);
    assert!(text.contains("a.example, b.example") && text.contains("admin") && text.contains("-- 2 key(s)"), "{text}");

    // Rotate: same id, a new secret; the old one stops working at once.
    let id = shop_row["id"].as_str().unwrap();
    let (code, new_secret, err) = cli(&["apikey", "rotate", id]);
    assert_eq!(code, Some(0), "{err}");
    let new_secret = new_secret.trim();
    assert_ne!(new_secret, shop);
    assert_eq!(get(api, "/api/v1/suppressions", Some(&shop)).await.status, 401);
    assert_eq!(get(api, "/api/v1/suppressions", Some(new_secret)).await.status, 200);
    let r = post_json(api, "/api/v1/check/domain", Some(new_secret), &json!({"domain": "c.example"})).await;
    assert_eq!(r.status, 403, "same scope after rotation: {}", r.text);
    assert_eq!(cli(&["apikey", "rotate", "key_nope"]).0, Some(2));

    // Revoke.
    assert_eq!(cli(&["apikey", "revoke", id]).0, Some(0));
    assert_eq!(get(api, "/api/v1/suppressions", Some(new_secret)).await.status, 401);
    assert_eq!(cli(&["apikey", "revoke", id]).0, Some(2));
    assert_eq!(get(api, "/api/v1/suppressions", Some(&ops)).await.status, 200);
}
