//! Webhooks end to end on loopback: a bounce (550 5.1.1 from a second mailerd) reaches a test
//! HTTP receiver as signed JSON with reason, hard/soft and advice; the receiver's first answer
//! is 500, and the same event comes again (at least once); the signature verifies with the
//! shared secret; events the endpoint did not ask for are not sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::harness::TestDaemon;
use crate::harness::smtp::Client;

const SECRET: &str = "whsec_test_0123456789";

type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

async fn receiver() -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let s = s.clone();
            async move {
                let mut v = s.lock().unwrap();
                v.push((headers, body));
                // The very first delivery fails: the sender must try again.
                if v.len() == 1 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::NO_CONTENT }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

fn verify(headers: &HeaderMap, body: &str) -> bool {
    let Some(sig) = headers.get("mailerd-signature").and_then(|v| v.to_str().ok()) else { return false };
    let Some((t, v1)) = sig.strip_prefix("t=").and_then(|r| r.split_once(",v1=")) else { return false };
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    hex == v1
}

#[tokio::test]
async fn bounce_events_reach_the_endpoint_signed_and_at_least_once() {
    let (hook, seen) = receiver().await;
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    let src = TestDaemon::with(&format!(
        "[local]\ndomains = [\"sender.test\"]\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[routes]\n\"dest.test\" = \"{}\"\n\
         [[webhooks]]\nurl = \"http://{hook}/hook\"\nsecret = \"{SECRET}\"\nevents = [\"bounced\", \"suppressed\"]\n",
        dest.smtp
    ))
    .await;
    src.add_user("app@sender.test", "pw", None).await;
    let mut c = Client::connect(src.smtp).await;
    c.send_mail("app@sender.test", &["nobody@dest.test"], "Subject: hi\r\n\r\nhello\r\n").await.expect("250");

    let mut bounced = Vec::new();
    for _ in 0..400 {
        bounced = seen.lock().unwrap().iter().filter(|(_, b)| b.contains("\"bounced\"")).cloned().collect();
        if bounced.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(bounced.len() >= 2, "the bounce came, failed once, and came again: {bounced:?}");
    let (h1, b1) = &bounced[0];
    let (h2, b2) = &bounced[1];
    assert_eq!(b1, b2, "the same event again");
    assert_eq!(h1.get("mailerd-event-id"), h2.get("mailerd-event-id"));
    assert!(verify(h2, b2), "signature verifies: {h2:?}");
    assert!(!verify(h2, &b2.replace("nobody", "somebody")), "a changed body does not");
    let v: serde_json::Value = serde_json::from_str(b2).unwrap();
    assert_eq!(v["type"], "bounced");
    assert_eq!(v["recipient"], "nobody@dest.test");
    assert_eq!(v["reason"], "userunknown");
    assert_eq!(v["hard_bounce"], true);
    assert!(v["advice"].as_str().is_some_and(|a| !a.is_empty()));
    // The hard bounce also suppressed the address: that is an event too.
    let mut suppressed = false;
    for _ in 0..200 {
        suppressed =
            seen.lock().unwrap().iter().any(|(_, b)| b.contains("\"suppressed\"") && b.contains("nobody@dest.test"));
        if suppressed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(suppressed, "a suppressed event was sent");
    // Only what was asked for: no queued or delivered events.
    assert!(seen.lock().unwrap().iter().all(|(_, b)| b.contains("\"bounced\"") || b.contains("\"suppressed\"")));
}
