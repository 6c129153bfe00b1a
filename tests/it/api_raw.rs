//! `POST /api/v1/messages/raw` over real loopback HTTP: a `message/rfc822` body is delivered
//! to a second mailerd with the caller's header fields byte for byte (odd spacing, folding,
//! custom fields, their Message-ID), Bcc removed, our Received first, and a DKIM signature
//! added after that an independent verifier (mail-auth, asking a real DNS server) passes; the
//! JSON form with base64 and an explicit envelope; the refusals (no From, a From or Sender
//! outside the key's scope, too large, wrong media type, bad base64); `Idempotency-Key`,
//! with the query part of the fingerprint.
//!
//! Must not: use any address outside 127.0.0.0/8.

use base64::Engine as _;
use mail_auth::{AuthenticatedMessage, DkimResult};
use mailerd::smtp::address::Domain;
use mailerd::store::{Scope, Store};
use serde_json::json;

use crate::harness::TestDaemon;
use crate::harness::dns::TestDns;
use crate::harness::http::{post_json, request, request_with};

/// The caller's header block, as an app's mail library might write it.
const HEADERS: &str = "From: \"Shop, Inc.\" <app@sender.test>\r\n\
To:   alice@dest.test\r\n\
Bcc: secret@dest.test\r\n\
Subject: =?UTF-8?Q?Order_n=C2=B01?=\r\n\
X-Campaign-Id:    spring-2026   (odd spacing kept)\r\n\
X-Folded: first part\r\n\tsecond part\r\n\
Message-ID: <order-1@shop.sender.test>\r\n\
List-Unsubscribe: <mailto:unsub@sender.test?subject=order-1>\r\n\
Date: Sat, 28 Nov 2026 17:00:00 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n";

async fn key(store: &dyn Store, scope: Scope) -> String {
    let (secret, key) = mailerd::http::auth::generate("raw", scope).unwrap();
    store.create_api_key(key).await.unwrap();
    secret
}

fn scoped() -> Scope {
    Scope::Domains(vec![Domain::parse("sender.test").unwrap()])
}

#[tokio::test]
async fn raw_mime_keeps_the_callers_headers_and_is_signed_after() {
    let keys = tempfile::tempdir().unwrap();
    let (key_file, record) = crate::harness::dns::dkim_key(keys.path());
    let Some(dns) = TestDns::start(&[record]).await else {
        return;
    };

    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("alice@dest.test", "pw", None).await;
    dest.add_user("secret@dest.test", "pw", None).await;
    let src = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[routes]\n\"dest.test\" = \"{}\"\n\
         [dkim]\ndomain = \"sender.test\"\nselector = \"s1\"\nkey = \"{}\"\n",
        dest.smtp,
        key_file.display()
    ))
    .await;
    let api = src.http.unwrap();
    let secret = key(&src.store(), scoped()).await;
    let message = format!("{HEADERS}\r\nDear Alice,\r\n\r\nyour order n\u{b0}1 is on its way.\r\n");
    let r =
        request(api, "POST", "/api/v1/messages/raw", Some(&secret), Some(("message/rfc822", message.clone().into())))
            .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["message_id"], "<order-1@shop.sender.test>", "the caller's Message-ID");
    let states: Vec<(&str, &str)> = r.json["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["address"].as_str().unwrap(), x["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("alice@dest.test", "queued"), ("secret@dest.test", "queued")], "To and Bcc");

    let alice = dest.wait_maildir("dest.test", "alice", 1).await;
    let secret_copy = dest.wait_maildir("dest.test", "secret", 1).await;
    for file in [&alice[0], &secret_copy[0]] {
        let got = std::fs::read(file).unwrap();
        let text = String::from_utf8_lossy(&got).to_string();
        // Ours first: DKIM (added last), then our Received; the caller's fields after, as sent.
        let dkim = text.find("DKIM-Signature: ").expect("signed");
        let received = text.find("Received: from api\r\n").expect("our trace header");
        assert!(dkim < received, "{text}");
        let without_bcc = HEADERS.replace("Bcc: secret@dest.test\r\n", "");
        assert!(
            text.contains(&format!("{without_bcc}\r\nDear Alice,")),
            "the caller's header block, byte for byte:\n{text}"
        );
        assert!(!text.contains("\nBcc:"), "Bcc removed: {text}");
        assert_eq!(text.matches("\r\nMessage-ID: ").count(), 1);
        assert_eq!(text.matches("\r\nDate: ").count(), 1);

        let verifier = dns.authenticator();
        let parsed = AuthenticatedMessage::parse(&got).expect("message parses");
        let results = verifier.verify_dkim(&parsed).await;
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].result(), &DkimResult::Pass, "{:?}", results[0]);
    }
}

#[tokio::test]
async fn raw_json_form_envelope_and_refusals() {
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("alice@dest.test", "pw", None).await;
    dest.add_user("bob@dest.test", "pw", None).await;
    let src = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[routes]\n\"dest.test\" = \"{}\"\n[limits]\nmax_message_size = 100000\n",
        dest.smtp
    ))
    .await;
    let api = src.http.unwrap();
    let store = src.store();
    let secret = key(&store, scoped()).await;
    let path = "/api/v1/messages/raw";
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);

    // JSON: LF line ends become CRLF; `to` overrides the headers; no Message-ID or Date: added.
    let lf = "From: app@sender.test\nTo: alice@dest.test\nSubject: lf only\nX-Keep:  as is \n\nline one\nline two\n";
    let r = post_json(
        api,
        path,
        Some(&secret),
        &json!({"raw": b64(lf), "from": "bounces@sender.test", "to": ["bob@dest.test"], "tags": ["welcome"], "metadata": {"user": "42"}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    let made = r.json["message_id"].as_str().unwrap().to_string();
    assert_eq!(made, format!("<{}@sender.test>", id.to_ascii_lowercase()));
    let files = dest.wait_maildir("dest.test", "bob", 1).await;
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        text.contains("From: app@sender.test\r\nTo: alice@dest.test\r\nSubject: lf only\r\nX-Keep:  as is \r\n"),
        "{text}"
    );
    assert!(text.contains(&format!("Message-ID: {made}\r\n")) && text.contains("\r\nDate: "), "{text}");
    assert!(text.ends_with("\r\n\r\nline one\r\nline two\r\n"), "{text}");
    assert!(dest.maildir_files("dest.test", "alice").is_empty(), "`to` replaces the header recipients");
    let detail =
        mailerd::store::Store::message_detail(&store, &mailerd::store::MessageId(id.clone())).await.unwrap().unwrap();
    let shown = serde_json::to_value(&detail).unwrap();
    assert_eq!(shown["origin"]["tags"], json!(["welcome"]), "{shown}");
    assert_eq!(detail.entry.reverse_path, "bounces@sender.test", "the envelope sender given");

    let rfc = |m: &str| Some(("message/rfc822", m.as_bytes().to_vec()));
    /// (body with its media type, query, status, field named)
    type Case<'a> = (Option<(&'a str, Vec<u8>)>, &'a str, u16, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (rfc("Subject: no author\r\nTo: alice@dest.test\r\n\r\nx\r\n"), "", 422, Some("headers.From")),
        (rfc("From: x@other.test\r\nTo: alice@dest.test\r\n\r\nx\r\n"), "", 403, Some("from")),
        (rfc("From: app@sender.test, x@other.test\r\nTo: alice@dest.test\r\n\r\nx\r\n"), "", 403, Some("headers.From")),
        (
            rfc("From: app@sender.test\r\nSender: x@other.test\r\nTo: alice@dest.test\r\n\r\nx\r\n"),
            "",
            403,
            Some("headers.Sender"),
        ),
        (
            rfc("From: x@other.test\r\nTo: alice@dest.test\r\n\r\nx\r\n"),
            "?from=app@sender.test",
            403,
            Some("headers.From"),
        ),
        (rfc("From: app@sender.test\r\nSubject: nobody\r\n\r\nx\r\n"), "", 422, Some("to")),
        (rfc("From: app@sender.test\r\n\r\nx\r\n"), "?to=not-an-address", 422, Some("to[0]")),
        (
            rfc(&format!("From: app@sender.test\r\nTo: alice@dest.test\r\n\r\n{}\r\n", "x".repeat(100_001))),
            "",
            413,
            None,
        ),
        (Some(("text/plain", b"From: app@sender.test\r\n\r\nx".to_vec())), "", 415, None),
        (Some(("application/json", br#"{"raw": "not base64!"}"#.to_vec())), "", 422, Some("raw")),
        (Some(("application/json", br#"{"rwa": ""}"#.to_vec())), "", 422, Some("rwa")),
        (rfc("From: app@sender.test\r\n\r\nx\r\n"), "?bcc=x@dest.test", 422, Some("bcc")),
    ];
    for (body, query, status, field) in cases {
        let shown = format!(
            "{query} {:?}",
            body.as_ref().map(|b| String::from_utf8_lossy(&b.1).chars().take(80).collect::<String>())
        );
        let r = request(api, "POST", &format!("{path}{query}"), Some(&secret), body).await;
        assert_eq!((r.status, r.json["field"].as_str()), (status, field), "{shown}: {}", r.text);
    }
    let db = rusqlite::Connection::open(src.dir.path().join("mailerd.db")).unwrap();
    let stored: i64 = db.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, 1, "the refusals stored nothing");
}

#[tokio::test]
async fn raw_send_with_an_idempotency_key_is_sent_once() {
    let d = TestDaemon::with(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[local]\ndomains = [\"sender.test\"]\n[queue]\nhold = true\n",
    )
    .await;
    let api = d.http.unwrap();
    let store = d.store();
    let secret = key(&store, Scope::All).await;
    let message = b"From: app@sender.test\r\nTo: postmaster@sender.test\r\nSubject: once\r\n\r\nx\r\n".to_vec();
    let send = |query: &'static str, idem: &'static str| {
        let (secret, message) = (secret.clone(), message.clone());
        async move {
            request_with(
                api,
                "POST",
                &format!("/api/v1/messages/raw{query}"),
                Some(&secret),
                &[("Idempotency-Key", idem)],
                Some(("message/rfc822", message)),
            )
            .await
        }
    };
    let first = send("", "raw-1").await;
    assert_eq!((first.status, first.header("idempotent-replayed")), (202, None), "{}", first.text);
    let again = send("", "raw-1").await;
    assert_eq!((again.status, again.header("idempotent-replayed")), (202, Some("true")));
    assert_eq!(again.json, first.json);
    // The envelope in the query is part of the request: another query is another request.
    let other = send("?to=root@sender.test", "raw-1").await;
    assert_eq!((other.status, other.json["field"].as_str()), (422, Some("Idempotency-Key")), "{}", other.text);
    assert_eq!(store.queued_messages().await.unwrap(), 1);
}
