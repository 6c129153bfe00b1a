//! The feedback loop: mail we send carries a signed return path; a bounce that comes back to
//! it is parsed and recorded (recipient bounced, hard bounce suppressed, the sender told in
//! our own words); a bounce to a forged or tampered return path is refused at RCPT.

use std::time::Duration;

use mailerd::store::{MessageId, RecipientState, Store};

use crate::harness::{Client, TestDaemon};

pub(crate) fn late_bounce(signed: &str, rcpt: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.dest.test (Mail Delivery System)\r\nTo: {signed}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.dest.test.\r\n\r\n\
         <{rcpt}>: mailbox was deleted after your message was accepted\r\n\r\n\
         --b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.dest.test\r\n\r\n\
         Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.dest.test\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown\r\n\r\n\
         --b1\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: hello\r\n\r\n--b1--\r\n"
    )
}

#[tokio::test]
async fn a_late_bounce_to_our_signed_return_path_is_matched_and_explained() {
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("alice@dest.test", "pw", None).await;
    let src = TestDaemon::with(&format!(
        "[local]\ndomains = [\"sender.test\"]\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[routes]\n\"dest.test\" = \"{}\"\n",
        dest.smtp
    ))
    .await;
    src.add_user("app@sender.test", "pw", None).await;
    let mut c = Client::connect(src.smtp).await;
    let r = c.send_mail("app@sender.test", &["alice@dest.test"], "Subject: hello\r\n\r\nhi\r\n").await;
    let id = r.queue_id();
    let files = dest.wait_maildir("dest.test", "alice", 1).await;
    let delivered = std::fs::read_to_string(&files[0]).unwrap();
    let signed =
        delivered.lines().next().unwrap().trim_start_matches("Return-Path: <").trim_end_matches('>').to_string();
    assert!(signed.starts_with("bounces+") && signed.ends_with("@mx.local.test"), "{signed}");
    assert!(signed.contains(&id), "the token names the message: {signed}");

    // Forged and tampered return paths are refused: no backscatter gets in.
    let mut b = Client::connect(src.smtp).await;
    b.cmd("EHLO mx.dest.test").await.expect("250");
    b.cmd("MAIL FROM:<>").await.expect("250");
    let forged = signed.replacen(&id[..4], "FFFF", 1);
    b.cmd(&format!("RCPT TO:<{forged}>")).await.expect("550 5.7.1");
    b.cmd("RCPT TO:<bounces+0123-0-99999-abcdefabcdef@mx.local.test>").await.expect("550 5.7.1");
    // The genuine one is accepted and read.
    b.cmd(&format!("RCPT TO:<{signed}>")).await.expect("250 2.1.5");
    b.cmd("DATA").await.expect("354");
    b.send_raw(late_bounce(&signed, "alice@dest.test").as_bytes()).await;
    b.cmd(".").await.expect("250 2.0.0");

    let store = src.store();
    let mut state = RecipientState::Delivered;
    for _ in 0..200 {
        let m = store.message_detail(&MessageId(id.clone())).await.unwrap().unwrap();
        state = m.entry.recipients[0].state;
        if state == RecipientState::Bounced {
            assert_eq!(m.entry.recipients[0].last_status.as_deref(), Some("5.1.1"));
            assert!(
                m.events
                    .iter()
                    .any(|e| e.kind.as_str() == "bounced"
                        && e.detail.as_deref().unwrap_or("").contains("bounce received"))
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(state, RecipientState::Bounced);
    assert_eq!(store.suppression("alice@dest.test").await.unwrap().map(|s| s.reason).as_deref(), Some("userunknown"));
    // The sender hears it from us, explained; the bounce itself went to no mailbox.
    let dsn = src.wait_maildir("sender.test", "app", 1).await;
    let text = std::fs::read_to_string(&dsn[0]).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains("Undelivered Mail Returned to Sender") && text.contains("Check the address for a typo"),
        "{text}"
    );
    assert!(text.contains("Recipient address rejected: User unknown"), "{text}");
    assert!(src.maildir_files("mx.local.test", "bounces").is_empty());
}
