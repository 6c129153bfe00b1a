//! Templates (`/api/v1/templates`) over real loopback HTTP, next to a second mailerd that
//! receives the mail: a template is stored, read, listed by cursor and deleted; a batch whose
//! messages name it with each recipient's own `variables` delivers each recipient its own
//! text; a template whose loop would run on is stopped by the fuel budget (422 naming
//! `template`); one whose values would grow without bound is refused at PUT, and one whose
//! values would pass the limit with the variables given is refused at the send (422 naming
//! `variables`); a missing template, an undefined variable, a template that does not compile
//! and a part given twice are 422s naming their field; another key sees none of it.
//!
//! Must not: use any address outside 127.0.0.0/8.

use mailerd::store::{Scope, Store};
use serde_json::json;

use crate::harness::TestDaemon;
use crate::harness::http::{get, post_json, request};

async fn put(
    api: std::net::SocketAddr,
    key: &str,
    name: &str,
    body: serde_json::Value,
) -> crate::harness::http::Response {
    request(
        api,
        "PUT",
        &format!("/api/v1/templates/{name}"),
        Some(key),
        Some(("application/json", body.to_string().into_bytes())),
    )
    .await
}

#[tokio::test]
async fn templates_render_each_recipients_own_text_within_a_fuel_budget() {
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("alice@dest.test", "pw", None).await;
    dest.add_user("bob@dest.test", "pw", None).await;
    let src = TestDaemon::api_to(&dest, "").await;
    let api = src.http.unwrap();
    let (key, k) = mailerd::http::auth::generate("app", Scope::All).unwrap();
    src.store().create_api_key(k).await.unwrap();
    let (other, k) = mailerd::http::auth::generate("other", Scope::All).unwrap();
    src.store().create_api_key(k).await.unwrap();

    // Store, read back, list.
    let welcome = json!({
        "subject": "Welcome, {{ name }}",
        "text": "Dear {{ name }},\n{% for item in items %}- {{ item }}\n{% endfor %}Your code is {{ code }}.",
        "html": "<p>Dear {{ name }}</p>",
    });
    let r = put(api, &key, "welcome", welcome.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((&r.json["name"], &r.json["subject"]), (&json!("welcome"), &welcome["subject"]));
    let created = r.json["created_at"].clone();
    let r = put(api, &key, "welcome", welcome.clone()).await;
    assert_eq!((r.status, &r.json["created_at"]), (200, &created), "a second PUT replaces, keeping created_at");
    for name in ["a-first", "zz.last"] {
        assert_eq!(put(api, &key, name, json!({"text": "x"})).await.status, 200);
    }
    let r = get(api, "/api/v1/templates/welcome", Some(&key)).await;
    assert_eq!((r.status, &r.json["text"]), (200, &welcome["text"]), "{}", r.text);
    let page = get(api, "/api/v1/templates?limit=2", Some(&key)).await;
    let names: Vec<&str> =
        page.json["templates"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a-first", "welcome"], "{}", page.text);
    let next = page.json["next"].as_str().expect("a cursor while the page is full").to_string();
    let page = get(api, &format!("/api/v1/templates?limit=2&cursor={next}"), Some(&key)).await;
    assert_eq!((page.json["templates"][0]["name"].as_str(), &page.json["next"]), (Some("zz.last"), &json!(null)));

    // Another key sees none of it.
    let r = get(api, "/api/v1/templates/welcome", Some(&other)).await;
    assert_eq!((r.status, r.json["field"].as_str()), (404, Some("name")), "{}", r.text);
    assert_eq!(get(api, "/api/v1/templates", Some(&other)).await.json["templates"], json!([]));

    // A batch: one message per recipient, each with its own variables.
    let batch = json!({"messages": [
        {"from": "shop@sender.test", "to": ["alice@dest.test"], "template": "welcome",
         "variables": {"name": "Alice", "code": "A-111", "items": ["tea", "cake"]}},
        {"from": "shop@sender.test", "to": ["bob@dest.test"], "template": "welcome",
         "variables": {"name": "Bob", "code": "B-222", "items": []}},
    ]});
    let r = post_json(api, "/api/v1/messages/batch", Some(&key), &batch).await;
    assert_eq!((r.status, r.json["queued"].as_u64()), (200, Some(2)), "{}", r.text);
    let alice = std::fs::read_to_string(&dest.wait_maildir("dest.test", "alice", 1).await[0]).unwrap();
    let bob = std::fs::read_to_string(&dest.wait_maildir("dest.test", "bob", 1).await[0]).unwrap();
    assert!(alice.contains("Subject: Welcome, Alice"), "{alice}");
    assert!(alice.contains("Dear Alice,") && alice.contains("- tea") && alice.contains("A-111"), "{alice}");
    assert!(bob.contains("Subject: Welcome, Bob") && bob.contains("B-222"), "{bob}");
    assert!(!bob.contains("Alice") && !alice.contains("Bob"), "each recipient's own text");

    // A single send: the same template, HTML escaped in the html part only.
    let one = json!({"from": "shop@sender.test", "to": ["alice@dest.test"], "template": "welcome",
                     "variables": {"name": "<Al & Co>", "code": "C", "items": []}, "sandbox": true});
    let r = post_json(api, "/api/v1/messages", Some(&key), &one).await;
    assert_eq!(r.status, 202, "{}", r.text);

    // Errors name their field.
    let mut missing = one.clone();
    missing["template"] = json!("nope");
    let r = post_json(api, "/api/v1/messages", Some(&key), &missing).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("template")), "{}", r.text);
    let r = post_json(api, "/api/v1/messages", Some(&other), &one).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("template")), "another key's template: {}", r.text);
    let mut undefined = one.clone();
    undefined["variables"] = json!({"name": "x"});
    let r = post_json(api, "/api/v1/messages", Some(&key), &undefined).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("variables")), "{}", r.text);
    assert!(r.json["detail"].as_str().unwrap().contains("text"), "names the part: {}", r.text);
    let mut twice = one.clone();
    twice["subject"] = json!("mine");
    let r = post_json(api, "/api/v1/messages", Some(&key), &twice).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("subject")), "{}", r.text);
    let r = post_json(
        api,
        "/api/v1/messages",
        Some(&key),
        &json!({"from": "shop@sender.test", "to": ["alice@dest.test"], "text": "x", "variables": {}}),
    )
    .await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("variables")), "{}", r.text);
    let r = put(api, &key, "broken", json!({"text": "{% for x in %}"})).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("text")), "{}", r.text);
    let r = put(api, &key, "bad!name", json!({"text": "x"})).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("name")), "{}", r.text);

    // A loop that would run for 10^10 steps is stopped by the fuel budget, alone and in a batch.
    let r = put(
        api,
        &key,
        "forever",
        json!({"text": "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}"}),
    )
    .await;
    assert_eq!(r.status, 200, "it compiles: {}", r.text);
    let started = std::time::Instant::now();
    let loop_send = json!({"from": "shop@sender.test", "to": ["alice@dest.test"], "template": "forever"});
    let r = post_json(api, "/api/v1/messages", Some(&key), &loop_send).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("template")), "{}", r.text);
    assert!(r.json["detail"].as_str().unwrap().contains("fuel"), "{}", r.text);
    let r = post_json(
        api,
        "/api/v1/messages/batch",
        Some(&key),
        &json!({"messages": [batch["messages"][0].clone(), loop_send]}),
    )
    .await;
    assert_eq!((r.status, r.json["queued"].as_u64()), (200, Some(1)), "{}", r.text);
    assert_eq!(r.json["results"][1]["error"]["field"], "messages[1].template", "{}", r.text);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "stopped early: {:?}", started.elapsed());

    // Values that would grow without bound are refused before they are built: at PUT for a
    // construct without a bound (a namespace doubling its string in a loop, a string repeated),
    // at the send for a bounded template whose bound passes the limit with the given variables.
    for text in [
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
        "{% set big = 'x' * 100000000 %}{{ (big ~ big ~ big)|length }}",
    ] {
        let r = put(api, &key, "bomb", json!({ "text": text })).await;
        assert_eq!((r.status, r.json["field"].as_str()), (422, Some("text")), "{}", r.text);
    }
    let doubling: String = (0..10).map(|i| format!("{{% set v{} = v{i} ~ v{i} %}}", i + 1)).collect();
    let r = put(api, &key, "doubling", json!({ "text": format!("{doubling}{{{{ v10|length }}}}") })).await;
    assert_eq!(r.status, 200, "a kilobyte of variables stays within bounds: {}", r.text);
    let send = |v0: String| json!({"from": "shop@sender.test", "to": ["alice@dest.test"], "template": "doubling", "variables": {"v0": v0}});
    let r = post_json(api, "/api/v1/messages", Some(&key), &send("x".repeat(100_000))).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("variables")), "{}", r.text);
    assert!(r.json["detail"].as_str().unwrap().contains("could reach"), "{}", r.text);
    let r = post_json(api, "/api/v1/messages", Some(&key), &send("xy".into())).await;
    assert_eq!(r.status, 202, "small variables render: {}", r.text);

    // Delete.
    let r = request(api, "DELETE", "/api/v1/templates/welcome", Some(&key), None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = request(api, "DELETE", "/api/v1/templates/welcome", Some(&key), None).await;
    assert_eq!((r.status, r.json["field"].as_str()), (404, Some("name")), "{}", r.text);
    assert_eq!(get(api, "/api/v1/templates/welcome", Some(&key)).await.status, 404);
}
