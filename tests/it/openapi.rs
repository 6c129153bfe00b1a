//! The OpenAPI document against the live API: the document is validated by a real OpenAPI
//! validator (Python's `openapi-spec-validator`), then every route is called on a running
//! daemon over loopback (successes and the usual problems) and each response is checked
//! against the document with Python's `jsonschema` (Draft 2020-12, the dialect of OpenAPI 3.1):
//! its status must be documented for the route, its content type too, and its body must match
//! the schema, with no member the schema does not name (the check adds
//! `additionalProperties: false` to every object schema that lists properties and says nothing
//! of others). Every route of `ROUTES` must have answered a 2xx. Problems must name a `field`.
//!
//! Must not: use any address outside 127.0.0.0/8.

use mailerd::store::{Scope, Store};
use serde_json::{Value, json};

use crate::harness::TestDaemon;
use crate::harness::http::{Response, request};

/// The validator: the document, then each (method, path template, status, content type, body).
const CHECK: &str = r#"
import copy, json, sys
from openapi_spec_validator import validate
import jsonschema

doc = json.load(open(sys.argv[1]))
seen = json.load(open(sys.argv[2]))
validate(doc)

def strict(node):
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)

components = copy.deepcopy(doc.get("components", {}))
strict(components)
errors = []
for s in seen:
    where = f"{s['method'].upper()} {s['path']} -> {s['status']}"
    op = doc["paths"].get(s["path"], {}).get(s["method"])
    if op is None:
        errors.append(f"{where}: the route is not in the document")
        continue
    resp = op.get("responses", {}).get(str(s["status"]))
    if resp is None:
        errors.append(f"{where}: this status is not documented")
        continue
    content = resp.get("content") or {}
    media = s["content_type"].split(";")[0].strip()
    if not content:
        if s["body"] is not None:
            errors.append(f"{where}: a body ({media}) where the document has none")
        continue
    if media not in content:
        errors.append(f"{where}: content type {media!r} is not documented (only {list(content)})")
        continue
    schema = content[media].get("schema")
    if schema is None:
        continue
    schema = copy.deepcopy(schema)
    strict(schema)
    schema["components"] = components
    for e in jsonschema.Draft202012Validator(schema).iter_errors(s["body"]):
        errors.append(f"{where}: {e.json_path}: {e.message}")
print("\n".join(errors))
sys.exit(1 if errors else 0)
"#;

struct Seen {
    method: &'static str,
    path: &'static str,
    status: u16,
    content_type: String,
    body: Value,
}

fn record(seen: &mut Vec<Seen>, method: &'static str, path: &'static str, r: &Response) {
    let body = if r.text.is_empty() { Value::Null } else { r.json.clone() };
    assert!(r.text.is_empty() || !body.is_null() || !r.content_type.contains("json"), "{method} {path}: {}", r.text);
    if r.content_type.contains("problem+json") {
        assert!(r.json["field"].is_string(), "{method} {path} {}: a problem names its field: {}", r.status, r.text);
    }
    seen.push(Seen { method, path, status: r.status, content_type: r.content_type.clone(), body });
}

fn json_body(v: Value) -> Option<(&'static str, Vec<u8>)> {
    Some(("application/json", v.to_string().into_bytes()))
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_describes_every_live_response() {
    // Real DNS for the domain check: dnsmasq, authoritative for .test.
    let records =
        ["--mx-host=sender.test,mx.sender.test,10".to_string(), "--host-record=mx.sender.test,127.0.0.1".into()];
    let Some(dns) = crate::harness::dns::TestDns::start(&records).await else { return };
    let d = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[local]\ndomains = [\"sender.test\", \"dest.test\"]\n\
         [dns]\nnameservers = [\"{}\"]\n[routes]\n\"far.test\" = \"127.0.0.1:9\"\n[queue]\nhold = true\n",
        dns.addr
    ))
    .await;
    d.add_user("alice@dest.test", "pw", None).await;
    let api = d.http.unwrap();
    let (key, k) = mailerd::http::auth::generate("app", Scope::All).unwrap();
    d.store().create_api_key(k).await.unwrap();
    let key = Some(key.as_str());
    let mut seen = Vec::new();
    let s = &mut seen;

    // Sends: a success (one recipient refused), and the problems every send can have.
    const SEND: &str = "/api/v1/messages";
    let r = request(api, "POST", "/api/v1/suppressions", key, json_body(json!({"address": "gone@far.test"}))).await;
    record(s, "post", "/api/v1/suppressions", &r);
    let send = json!({"from": "app@sender.test", "to": ["alice@dest.test", "gone@far.test"], "subject": "hi",
                      "text": "hello", "tags": ["t"], "metadata": {"k": "v"}});
    let r = request(api, "POST", SEND, key, json_body(send.clone())).await;
    record(s, "post", SEND, &r);
    let id = r.json["id"].as_str().unwrap_or_default().to_string();
    let r = request(api, "POST", SEND, key, json_body(json!({"to": ["alice@dest.test"], "text": "x"}))).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("from")), "a missing from names it: {}", r.text);
    record(s, "post", SEND, &r);
    let r = request(api, "POST", SEND, key, Some(("application/json", b"{not json".to_vec()))).await;
    record(s, "post", SEND, &r);
    let r = request(api, "POST", SEND, key, Some(("text/plain", send.to_string().into_bytes()))).await;
    assert_eq!((r.status, r.json["field"].as_str()), (415, Some("Content-Type")), "{}", r.text);
    record(s, "post", SEND, &r);
    let r = request(api, "POST", SEND, None, json_body(send.clone())).await;
    record(s, "post", SEND, &r);
    let r = request(
        api,
        "POST",
        SEND,
        key,
        json_body(json!({"from": "app@sender.test", "to": ["gone@far.test"], "text": "x"})),
    )
    .await;
    record(s, "post", SEND, &r);

    let batch = json!({"messages": [send.clone(), {"from": "app@sender.test", "text": "no recipient"}]});
    let r = request(api, "POST", "/api/v1/messages/batch", key, json_body(batch)).await;
    record(s, "post", "/api/v1/messages/batch", &r);
    let raw = b"From: app@sender.test\r\nTo: alice@dest.test\r\nSubject: raw\r\n\r\nx\r\n".to_vec();
    let r = request(api, "POST", "/api/v1/messages/raw", key, Some(("message/rfc822", raw))).await;
    record(s, "post", "/api/v1/messages/raw", &r);

    // The search: by tag, by a recipient's state and address, paged; a bad state is named.
    let r = request(api, "GET", "/api/v1/messages?tag=t", key, None).await;
    let found: Vec<&str> =
        r.json["messages"].as_array().map(|m| m.iter().filter_map(|m| m["id"].as_str()).collect()).unwrap_or_default();
    // The single send and the batch's first message carry the tag; the raw send does not.
    assert!(found.len() == 2 && found.contains(&id.as_str()), "only the tagged messages: {}", r.text);
    assert!(r.json["messages"].as_array().unwrap().iter().all(|m| m["tags"] == json!(["t"])), "{}", r.text);
    record(s, "get", SEND, &r);
    let r = request(api, "GET", "/api/v1/messages?status=queued&recipient=ALICE@dest.test&limit=1", key, None).await;
    let next =
        r.json["next"].as_str().unwrap_or_else(|| panic!("a full page has a next cursor: {}", r.text)).to_string();
    let first = r.json["messages"][0]["id"].as_str().unwrap().to_string();
    record(s, "get", SEND, &r);
    let r = request(
        api,
        "GET",
        &format!("/api/v1/messages?status=queued&recipient=alice@dest.test&limit=10&cursor={next}"),
        key,
        None,
    )
    .await;
    let rest: Vec<&str> = r.json["messages"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(!rest.is_empty() && !rest.contains(&first.as_str()), "the next page goes on: {first} then {rest:?}");
    record(s, "get", SEND, &r);
    let r = request(api, "GET", "/api/v1/messages?status=lost", key, None).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("status")), "{}", r.text);
    record(s, "get", SEND, &r);

    // Reading: the journey, the event stream, the suppression list and one address.
    let r = request(api, "GET", &format!("/api/v1/messages/{id}"), key, None).await;
    assert!(r.json["events"].as_array().is_some_and(|e| e.iter().all(|e| e["type"].is_string())), "{}", r.text);
    record(s, "get", "/api/v1/messages/{id}", &r);
    let r = request(api, "GET", "/api/v1/messages/NOSUCHID", key, None).await;
    record(s, "get", "/api/v1/messages/{id}", &r);
    let r = request(api, "GET", "/api/v1/events?limit=1000", key, None).await;
    assert!(r.json["events"].as_array().is_some_and(|e| e.iter().any(|e| e["type"] == "rejected")), "{}", r.text);
    record(s, "get", "/api/v1/events", &r);
    let r = request(api, "GET", "/api/v1/events?limit=lots", key, None).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("limit")), "{}", r.text);
    record(s, "get", "/api/v1/events", &r);
    let r = request(api, "GET", "/api/v1/suppressions", key, None).await;
    record(s, "get", "/api/v1/suppressions", &r);
    let r = request(api, "GET", "/api/v1/suppressions?limit=1", key, None).await;
    let next =
        r.json["next"].as_str().unwrap_or_else(|| panic!("a full page has a next cursor: {}", r.text)).to_string();
    record(s, "get", "/api/v1/suppressions", &r);
    let r = request(api, "GET", &format!("/api/v1/suppressions?limit=1&cursor={next}"), key, None).await;
    assert_eq!(
        (r.json["suppressions"].as_array().map(Vec::len), &r.json["next"]),
        (Some(0), &Value::Null),
        "{}",
        r.text
    );
    record(s, "get", "/api/v1/suppressions", &r);
    let r = request(api, "GET", "/api/v1/suppressions?cursor=nonsense", key, None).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("cursor")), "{}", r.text);
    record(s, "get", "/api/v1/suppressions", &r);
    let r = request(api, "GET", "/api/v1/suppressions/gone@far.test", key, None).await;
    assert_eq!((r.status, r.json["suppressions"][0]["address"].as_str()), (200, Some("gone@far.test")), "{}", r.text);
    record(s, "get", "/api/v1/suppressions/{address}", &r);
    let r = request(api, "GET", "/api/v1/suppressions/nobody@far.test", key, None).await;
    record(s, "get", "/api/v1/suppressions/{address}", &r);
    let r = request(api, "POST", "/api/v1/suppressions", key, json_body(json!({"address": "not an address"}))).await;
    record(s, "post", "/api/v1/suppressions", &r);
    let r = request(api, "DELETE", "/api/v1/suppressions/gone@far.test", key, None).await;
    record(s, "delete", "/api/v1/suppressions/{address}", &r);
    let r = request(api, "DELETE", "/api/v1/suppressions/gone@far.test", key, None).await;
    record(s, "delete", "/api/v1/suppressions/{address}", &r);

    // Templates: stored, read, listed, sent with, refused, deleted.
    const TEMPLATE: &str = "/api/v1/templates/{name}";
    let body = json!({"subject": "Hi {{ name }}", "text": "Dear {{ name }}", "html": "<p>{{ name }}</p>"});
    let r = request(api, "PUT", "/api/v1/templates/welcome", key, json_body(body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    record(s, "put", TEMPLATE, &r);
    let r = request(api, "PUT", "/api/v1/templates/broken", key, json_body(json!({"text": "{% if %}"}))).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("text")), "{}", r.text);
    record(s, "put", TEMPLATE, &r);
    let r = request(api, "GET", "/api/v1/templates/welcome", key, None).await;
    record(s, "get", TEMPLATE, &r);
    let r = request(api, "GET", "/api/v1/templates/nope", key, None).await;
    record(s, "get", TEMPLATE, &r);
    let r = request(api, "GET", "/api/v1/templates?limit=1", key, None).await;
    assert_eq!(r.json["templates"][0]["name"], "welcome", "{}", r.text);
    record(s, "get", "/api/v1/templates", &r);
    let r = request(api, "GET", "/api/v1/templates?limit=0", key, None).await;
    record(s, "get", "/api/v1/templates", &r);
    let templated = json!({"from": "app@sender.test", "to": ["alice@dest.test"], "template": "welcome",
                           "variables": {"name": "Alice"}});
    let r = request(api, "POST", SEND, key, json_body(templated)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    record(s, "post", SEND, &r);
    let r = request(api, "DELETE", "/api/v1/templates/welcome", key, None).await;
    record(s, "delete", TEMPLATE, &r);
    let r = request(api, "DELETE", "/api/v1/templates/welcome", key, None).await;
    record(s, "delete", TEMPLATE, &r);

    // The tools.
    let r = request(
        api,
        "POST",
        "/api/v1/check/address",
        key,
        json_body(json!({"address": "john@gmial.com", "dns": false})),
    )
    .await;
    record(s, "post", "/api/v1/check/address", &r);
    let r = request(api, "POST", "/api/v1/check/address", key, json_body(json!({"adress": "x"}))).await;
    record(s, "post", "/api/v1/check/address", &r);
    let r = request(api, "POST", "/api/v1/check/domain", key, json_body(json!({"domain": "sender.test"}))).await;
    record(s, "post", "/api/v1/check/domain", &r);
    let msg = b"From: a@sender.test\r\nSubject: x\r\n\r\nhello\r\n".to_vec();
    let r = request(api, "POST", "/api/v1/check/message", key, Some(("message/rfc822", msg))).await;
    record(s, "post", "/api/v1/check/message", &r);
    let bounce = b"From: MAILER-DAEMON@mx.dest.test\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\n<bob@dest.test>: host mx.dest.test said: 550 5.1.1 <bob@dest.test>: User unknown (in reply to RCPT TO command)\r\n".to_vec();
    let r = request(api, "POST", "/api/v1/bounces/parse", key, Some(("message/rfc822", bounce.clone()))).await;
    record(s, "post", "/api/v1/bounces/parse", &r);
    let r = request(api, "POST", "/api/v1/bounces/verify", key, Some(("message/rfc822", bounce))).await;
    record(s, "post", "/api/v1/bounces/verify", &r);
    let r = request(api, "GET", "/api/v1/openapi.json", None, None).await;
    record(s, "get", "/api/v1/openapi.json", &r);

    // A verdict on a received bounce: a daemon that delivers (this one holds its queue) reads a
    // mailer-daemon message and keeps its sample; then it is labelled, and the problems.
    let reader = TestDaemon::with("[listen]\nhttp = \"127.0.0.1:0\"\n").await;
    reader.add_user("bob@local.test", "pw", None).await;
    let (reader_key, k) = mailerd::http::auth::generate("ops", Scope::All).unwrap();
    reader.store().create_api_key(k).await.unwrap();
    let reader_api = reader.http.unwrap();
    let reader_key = Some(reader_key.as_str());
    let mut c = crate::harness::smtp::Client::connect(reader.smtp).await;
    let bounce = "From: MAILER-DAEMON@mx.far.test\r\nTo: bob@local.test\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\n\
                  Your message could not be delivered: mailbox unavailable.\r\n";
    let reply = c.send_mail("", &["bob@local.test"], bounce).await;
    let bounce_id = reply.queue_id();
    let store = reader.store();
    for _ in 0..1200 {
        if store.learner_sample(&mailerd::store::MessageId(bounce_id.clone())).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    const VERDICT: &str = "/api/v1/bounces/{id}/verdict";
    let path = format!("/api/v1/bounces/{bounce_id}/verdict");
    let r = request(reader_api, "POST", &path, reader_key, json_body(json!({"verdict": "forged"}))).await;
    record(s, "post", VERDICT, &r);
    let r = request(reader_api, "POST", &path, reader_key, json_body(json!({"verdict": "maybe"}))).await;
    record(s, "post", VERDICT, &r);
    let r = request(
        reader_api,
        "POST",
        "/api/v1/bounces/NOPE/verdict",
        reader_key,
        json_body(json!({"verdict": "genuine"})),
    )
    .await;
    record(s, "post", VERDICT, &r);

    for (method, path) in mailerd::http::api::ROUTES {
        assert!(
            seen.iter().any(|x| x.method == *method && x.path == *path && (200..300).contains(&x.status)),
            "{method} {path} never answered 2xx here"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (doc, responses) = (dir.path().join("openapi.json"), dir.path().join("seen.json"));
    std::fs::write(&doc, mailerd::http::api::OPENAPI).unwrap();
    let list: Vec<Value> = seen
        .iter()
        .map(|x| json!({"method": x.method, "path": x.path, "status": x.status, "content_type": x.content_type, "body": x.body}))
        .collect();
    std::fs::write(&responses, serde_json::to_vec(&list).unwrap()).unwrap();
    if let Ok(keep) = std::env::var("MAILERD_OPENAPI_SEEN") {
        std::fs::copy(&responses, keep).unwrap(); // the responses, for working on the document
    }
    let out = std::process::Command::new("python3")
        .args(["-c", CHECK])
        .arg(&doc)
        .arg(&responses)
        .output()
        .expect("python3 runs (with openapi-spec-validator and jsonschema: .ci/run installs them)");
    assert!(
        out.status.success(),
        "the document or a live response does not match ({} responses):\n{}{}",
        seen.len(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
