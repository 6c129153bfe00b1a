//! The delivery checklist on submitted mail (`[check.policy]`): by default a finding is
//! accepted and recorded as a `check` event of the message; with `reject` the recipient or
//! the message is refused and the reply carries the fix; with `off` nothing is recorded.
//!
//! Must not: use the network beyond 127.0.0.1 (queue.hold: nothing is delivered).

use mailerd::store::{MessageId, Store};

use crate::harness::daemon::TestDaemon;
use crate::harness::smtp::Client;

const RELAY: &str = "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[queue]\nhold = true\n";

#[tokio::test]
async fn findings_are_recorded_as_events_by_default() {
    let d = TestDaemon::with(RELAY).await;
    let mut c = Client::connect(d.smtp).await;
    // No Date, no Message-ID, to a mistyped provider.
    let r = c
        .send_mail("app@local.test", &["john@gmial.com"], "From: app@local.test\r\nSubject: hi\r\n\r\nhello\r\n")
        .await;
    r.expect("250");
    let id = r.queue_id();
    let detail = d.store().message_detail(&MessageId(id)).await.unwrap().unwrap();
    let checks: Vec<String> =
        detail.events.iter().filter(|e| e.kind.as_str() == "check").filter_map(|e| e.detail.clone()).collect();
    assert!(checks.iter().any(|c| c.starts_with("typo warn") && c.contains("john@gmail.com")), "{checks:?}");
    assert!(checks.iter().any(|c| c.starts_with("headers") && c.contains("fix:")), "{checks:?}");
    assert!(
        detail.events.iter().any(|e| e.kind.as_str() == "check" && e.recipient.as_deref() == Some("john@gmial.com")),
        "the typo event names its recipient"
    );
}

#[tokio::test]
async fn reject_policy_refuses_with_the_fix_and_off_records_nothing() {
    let d = TestDaemon::with(&format!("{RELAY}[check.policy]\ntypo = \"reject\"\nheaders = \"reject\"\n")).await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO app.test").await.expect("250");
    c.cmd("MAIL FROM:<app@local.test>").await.expect("250");
    let r = c.cmd("RCPT TO:<john@gmial.com>").await;
    r.expect("550 5.1.2");
    assert!(r.first().contains("john@gmail.com"), "the reply suggests the fix: {r:?}");
    c.cmd("RCPT TO:<john@gmail.com>").await.expect("250");
    c.cmd("DATA").await.expect("354");
    c.send_raw(b"Subject: no From, no Date\r\n\r\nhello\r\n").await;
    let r = c.cmd(".").await;
    r.expect("550 5.6.0");
    assert!(r.first().contains("fix:") && r.first().contains("From"), "{r:?}");
    // A complete message passes.
    let ok = "From: app@local.test\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@local.test>\r\nSubject: hi\r\n\r\nhello\r\n";
    c.send_mail("app@local.test", &["john@gmail.com"], ok).await.expect("250");

    let off = TestDaemon::with(&format!("{RELAY}[check.policy]\ntypo = \"off\"\nheaders = \"off\"\n")).await;
    let mut c = Client::connect(off.smtp).await;
    let r = c.send_mail("app@local.test", &["john@gmial.com"], "Subject: hi\r\n\r\nhello\r\n").await;
    r.expect("250");
    let id = r.queue_id();
    let detail = off.store().message_detail(&MessageId(id)).await.unwrap().unwrap();
    assert!(
        !detail.events.iter().any(|e| e.kind.as_str() == "check"
            && e.detail.as_deref().is_some_and(|t| t.starts_with("typo") || t.starts_with("headers"))),
        "{:?}",
        detail.events
    );
}
