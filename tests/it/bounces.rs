//! One message to five recipients at real peers on loopback: delivered, user unknown (hard:
//! DSN and suppression), relay refused (DSN), too large (DSN, not sent), and a destination
//! that answers 421 at first (deferred, then delivered once it recovers, no DSN, no
//! duplicate). The DSN is parsed back.

use std::sync::Arc;
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use mailerd::store::postgres::PgStore;
use mailerd::store::{MessageId, RecipientState, Store};

use crate::harness::postgres::{TestSchema, url_or_skip};
use crate::harness::{Client, TestDaemon};

#[tokio::test]
async fn one_message_five_fates_one_dsn() {
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("alice@dest.test", "pw", None).await;
    let small = TestDaemon::with("[local]\ndomains = [\"small.test\"]\n[limits]\nmax_message_size = 2000").await;
    // A destination that is overloaded at first: it greets every client with 421.
    let busy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let later_port = busy.local_addr().unwrap().port();
    let busy_task = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = busy.accept().await {
            let _ = s.write_all(b"421 4.3.2 mx.later.test busy, try again later\r\n").await;
        }
    });
    let src = TestDaemon::with(&format!(
        "[local]\ndomains = [\"sender.test\"]\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[retry]\nfirst = 1\n\
         [routes]\n\"dest.test\" = \"{d}\"\n\"elsewhere.test\" = \"{d}\"\n\"small.test\" = \"{s}\"\n\"later.test\" = \"127.0.0.1:{later_port}\"\n",
        d = dest.smtp,
        s = small.smtp
    ))
    .await;
    src.add_user("app@sender.test", "pw", None).await;

    let mut c = Client::connect(src.smtp).await;
    c.cmd("EHLO app.test").await.expect("250");
    c.cmd("MAIL FROM:<app@sender.test> RET=HDRS ENVID=batch-7").await.expect("250");
    for r in [
        "alice@dest.test",
        "nobody@dest.test",
        "someone@elsewhere.test",
        "postmaster@small.test",
        "postmaster@later.test",
    ] {
        c.cmd(&format!("RCPT TO:<{r}> NOTIFY=FAILURE ORCPT=rfc822;{r}")).await.expect("250");
    }
    c.cmd("DATA").await.expect("354");
    let body = format!(
        "From: app@sender.test\r\nTo: many\r\nSubject: Five fates\r\nMessage-ID: <five@sender.test>\r\n\r\n{}",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n".repeat(60)
    );
    c.send_raw(body.as_bytes()).await;
    let reply = c.cmd(".").await;
    reply.expect("250");
    let id = reply.queue_id();

    // The failure DSN arrives in the sender's local mailbox.
    let dsn_files = src.wait_maildir("sender.test", "app", 1).await;
    // The busy destination's 421 deferred its recipient, with the reply recorded.
    let store = src.store();
    for _ in 0..200 {
        let d = store.message_detail(&MessageId(id.clone())).await.unwrap().unwrap();
        let r = d.entry.recipients.iter().find(|r| r.address == "postmaster@later.test").unwrap().clone();
        if r.state == RecipientState::Deferred {
            assert_eq!(r.last_detail.as_deref(), Some("421 4.3.2 mx.later.test busy, try again later"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Now it recovers: a real server on the same port; the recipient is delivered on retry.
    busy_task.abort();
    let _ = busy_task.await;
    let later =
        TestDaemon::with(&format!("[listen]\nsmtp = \"127.0.0.1:{later_port}\"\n[local]\ndomains = [\"later.test\"]"))
            .await;
    later.wait_maildir("later.test", "postmaster", 1).await;
    dest.wait_maildir("dest.test", "alice", 1).await;

    // Wait for the final states to be recorded.
    for _ in 0..200 {
        let d = store.message_detail(&MessageId(id.clone())).await.unwrap().unwrap();
        if d.entry.recipients.iter().all(|r| r.state != RecipientState::Queued && r.state != RecipientState::Deferred) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let detail = store.message_detail(&MessageId(id.clone())).await.unwrap().unwrap();
    let state2 = |a: &str| detail.entry.recipients.iter().find(|r| r.address == a).unwrap().clone();
    assert_eq!(state2("alice@dest.test").state, RecipientState::Delivered);
    assert_eq!(state2("postmaster@later.test").state, RecipientState::Delivered);
    assert!(state2("postmaster@later.test").attempts >= 2);
    assert_eq!(state2("nobody@dest.test").state, RecipientState::Bounced);
    assert_eq!(state2("someone@elsewhere.test").last_status.as_deref(), Some("5.7.1"));
    assert_eq!(state2("postmaster@small.test").last_status.as_deref(), Some("5.3.4"));

    // Exactly one DSN, and no duplicate delivery anywhere.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(src.maildir_files("sender.test", "app").len(), 1, "exactly one DSN");
    assert_eq!(later.maildir_files("later.test", "postmaster").len(), 1, "no duplicate after the retry");
    assert_eq!(dest.maildir_files("dest.test", "alice").len(), 1);
    assert!(small.maildir_files("small.test", "postmaster").is_empty(), "a too-large message is not sent");

    // Parse the DSN back.
    let raw = std::fs::read(&dsn_files[0]).unwrap();
    let msg = MessageParser::default().parse(&raw).expect("DSN parses");
    assert_eq!(msg.subject(), Some("Undelivered Mail Returned to Sender"));
    assert_eq!(msg.from().and_then(|f| f.first()).and_then(|a| a.address()), Some("MAILER-DAEMON@mx.local.test"));
    assert_eq!(msg.header_raw("Auto-Submitted").map(str::trim), Some("auto-replied"));
    let ct = msg.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
    assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
    let text = msg.body_text(0).unwrap().to_string();
    assert!(text.contains("<nobody@dest.test>") && text.contains("HARD bounce"), "{text}");
    assert!(text.contains("Check the address for a typo"), "{text}");
    assert!(text.contains("relay access denied"), "{text}");
    assert!(text.contains("Send a link instead of the attachment"), "{text}");
    assert!(!text.contains("alice@dest.test") && !text.contains("later.test"), "only failures are reported: {text}");
    let status_part =
        msg.parts.iter().find(|p| p.content_type().is_some_and(|c| c.subtype() == Some("delivery-status"))).unwrap();
    let report = String::from_utf8_lossy(status_part.contents()).to_string();
    assert!(report.contains("Reporting-MTA: dns; mx.local.test"), "{report}");
    assert!(report.contains("Original-Envelope-Id: batch-7"), "{report}");
    assert!(report.contains("Final-Recipient: rfc822; nobody@dest.test\r\nOriginal-Recipient: rfc822; nobody@dest.test\r\nAction: failed\r\nStatus: 5.1.1"), "{report}");
    assert!(report.contains("Diagnostic-Code: smtp; 550 5.1.1 <nobody@dest.test>: user unknown"), "{report}");
    assert!(report.contains("Status: 5.3.4"), "{report}");
    assert!(report.contains("Status: 5.7.1"), "{report}");
    assert_eq!(report.matches("Final-Recipient:").count(), 3, "{report}");
    let headers_part =
        msg.parts.iter().find(|p| p.content_type().is_some_and(|c| c.subtype() == Some("rfc822-headers"))).unwrap();
    let headers = String::from_utf8_lossy(headers_part.contents()).to_string();
    assert!(headers.contains("Subject: Five fates") && !headers.contains("0123456789abcdef"));

    // The hard bounce is suppressed: a new submission to it is refused at RCPT, saying why.
    let s = store.suppression("nobody@dest.test").await.unwrap().expect("suppressed");
    assert_eq!(s.reason, "userunknown");
    assert!(store.suppression("someone@elsewhere.test").await.unwrap().is_none(), "a relay refusal is soft");
    let mut c = Client::connect(src.smtp).await;
    c.cmd("EHLO app.test").await.expect("250");
    c.cmd("MAIL FROM:<app@sender.test>").await.expect("250");
    let r = c.cmd("RCPT TO:<nobody@dest.test>").await;
    r.expect("550 5.1.1 <nobody@dest.test>: suppressed since ");
    assert!(r.first().contains("userunknown"), "{}", r.first());
}

#[tokio::test]
async fn delay_warning_once_and_never_a_dsn_to_the_null_sender() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let src = TestDaemon::with(&format!(
        "[local]\ndomains = [\"sender.test\"]\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[retry]\nfirst = 1\n\
         [bounce]\ndelay_warning = 1\n[routes]\n\"down.test\" = \"{closed}\"\n"
    ))
    .await;
    src.add_user("app@sender.test", "pw", None).await;
    let mut c = Client::connect(src.smtp).await;
    c.send_mail("app@sender.test", &["x@down.test"], "Subject: waiting\r\n\r\nx\r\n").await.expect("250");
    c.cmd("RSET").await.expect("250");
    // A bounce of a bounce must never happen: the same from <>.
    c.cmd("MAIL FROM:<>").await.expect("250");
    c.cmd("RCPT TO:<y@down.test>").await.expect("250");
    c.cmd("DATA").await.expect("354");
    c.send_raw(b"Subject: from null\r\n\r\nx\r\n").await;
    c.cmd(".").await.expect("250");
    let files = src.wait_maildir("sender.test", "app", 1).await;
    // Several more retries happen; still one warning.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let files_after = src.maildir_files("sender.test", "app");
    assert_eq!(files_after.len(), 1, "one delay warning only");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("Subject: Delayed Mail (still being retried)"), "{text}");
    assert!(text.contains("Action: delayed") && text.contains("Will-Retry-Until:"), "{text}");
}

/// Regression: hard bounces of a message to several domains (one delivery job per domain, run
/// at once, each reporting the message's facts) produced two identical `suppressed` events
/// for one address. Now every address is suppressed once: one event each.
#[tokio::test]
async fn hard_bounces_of_one_message_are_each_suppressed_once() {
    const DOMAINS: usize = 8;
    let names: Vec<String> = (0..DOMAINS).map(|i| format!("d{i}.test")).collect();
    let quoted: Vec<String> = names.iter().map(|d| format!("\"{d}\"")).collect();
    // Every domain is local at `dest` without users: each recipient gets 550 5.1.1 at RCPT.
    let dest = TestDaemon::with(&format!("[local]\ndomains = [{}]", quoted.join(", "))).await;
    let routes: String = names.iter().map(|d| format!("\"{d}\" = \"{}\"\n", dest.smtp)).collect();
    let src = TestDaemon::with(&format!(
        "[local]\ndomains = [\"sender.test\"]\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[routes]\n{routes}"
    ))
    .await;
    src.add_user("app@sender.test", "pw", None).await;
    let mut ids = Vec::new();
    for round in 0..3 {
        let rcpts: Vec<String> = names.iter().map(|d| format!("gone{round}@{d}")).collect();
        let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
        let mut c = Client::connect(src.smtp).await;
        let reply = c.send_mail("app@sender.test", &rcpts, "Subject: to many domains\r\n\r\nx\r\n").await;
        reply.expect("250");
        ids.push(reply.queue_id());
    }
    let files = src.wait_maildir("sender.test", "app", ids.len()).await;
    // Let every job's report run to its end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(files.len(), ids.len(), "one DSN per message");
    let store = src.store();
    for id in &ids {
        let d = store.message_detail(&MessageId(id.clone())).await.unwrap().unwrap();
        let mut suppressed: Vec<&str> = d
            .events
            .iter()
            .filter(|e| e.kind.as_str() == "suppressed")
            .filter_map(|e| e.recipient.as_deref())
            .collect();
        suppressed.sort();
        let mut expected: Vec<String> = d.entry.recipients.iter().map(|r| r.address.clone()).collect();
        expected.sort();
        assert_eq!(suppressed, expected, "one suppressed event per address of {id}");
    }
}

/// Success reports go only where NOTIFY=SUCCESS asked, and only about those recipients; a
/// message that needs no report at all gets none. Either way the body of a finished message is
/// released (for the one with nothing to report, by the record itself).
#[tokio::test]
async fn a_success_report_only_where_asked_and_every_finished_body_released() {
    success_reports_and_released_bodies(None).await;
}

/// The same on PostgreSQL, whose record settles in one statement.
#[tokio::test]
async fn a_success_report_only_where_asked_and_every_finished_body_released_on_postgres() {
    let test = "bounces::a_success_report_only_where_asked_and_every_finished_body_released_on_postgres";
    let Some(admin) = url_or_skip(test) else { return };
    let schema = TestSchema::create(&admin, "success_reports").await;
    success_reports_and_released_bodies(Some(&schema.url)).await;
}

async fn success_reports_and_released_bodies(postgres: Option<&str>) {
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("alice@dest.test", "pw", None).await;
    dest.add_user("bob@dest.test", "pw", None).await;
    let store_section = postgres.map(|url| format!("[store]\nurl = \"{url}\"\n")).unwrap_or_default();
    let src = TestDaemon::with(&format!(
        "[local]\ndomains = [\"sender.test\"]\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n\
         [routes]\n\"dest.test\" = \"{}\"\n{store_section}",
        dest.smtp
    ))
    .await;
    let store: Arc<dyn Store> = match postgres {
        Some(url) => Arc::new(PgStore::connect(url).await.expect("a second connection, as another node")),
        None => Arc::new(src.store()),
    };
    store.upsert_mailbox("app@sender.test", None, None).await.expect("the sender's mailbox");

    let mut ids = Vec::new();
    for (subject, rcpts) in [
        ("Asked", &["<alice@dest.test> NOTIFY=SUCCESS,FAILURE", "<bob@dest.test>"][..]),
        ("Not asked", &["<alice@dest.test>", "<bob@dest.test> NOTIFY=FAILURE"][..]),
    ] {
        let body = format!("From: app@sender.test\r\nSubject: {subject}\r\n\r\nHello.\r\n");
        let reply = Client::connect(src.smtp).await.send_mail_with("app@sender.test", rcpts, &body).await;
        reply.expect("250");
        ids.push(MessageId(reply.queue_id()));
    }
    dest.wait_maildir("dest.test", "alice", 2).await;
    dest.wait_maildir("dest.test", "bob", 2).await;

    for id in &ids {
        let mut body = None;
        for _ in 0..200 {
            body = store.load_body(id).await.unwrap();
            if body.as_deref() == Some(&[][..]) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(body, Some(Vec::new()), "the body of finished {id} is released");
    }
    let dsn_files = src.wait_maildir("sender.test", "app", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(src.maildir_files("sender.test", "app").len(), 1, "one report: for the message that asked");
    let raw = std::fs::read(&dsn_files[0]).unwrap();
    let msg = MessageParser::default().parse(&raw).expect("DSN parses");
    assert_eq!(msg.subject(), Some("Successful Mail Delivery Report"));
    let status_part =
        msg.parts.iter().find(|p| p.content_type().is_some_and(|c| c.subtype() == Some("delivery-status"))).unwrap();
    let report = String::from_utf8_lossy(status_part.contents()).to_string();
    assert!(report.contains("Final-Recipient: rfc822; alice@dest.test\r\nAction: delivered\r\nStatus: 2."), "{report}");
    assert_eq!(report.matches("Final-Recipient:").count(), 1, "only the recipient that asked: {report}");
}
