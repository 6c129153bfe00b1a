//! Local delivery: accepted mail for a local mailbox ends up as a Maildir file, intact.

use crate::harness::{Client, TestDaemon};

#[tokio::test]
async fn postmaster_mail_lands_in_maildir_with_a_received_header() {
    let d = TestDaemon::start().await;
    let mut c = Client::connect(d.smtp).await;
    let body = "From: a@sender.test\r\nSubject: hello\r\n\r\nline one\r\n..leading dot\r\n";
    let r = c.send_mail("a@sender.test", &["postmaster@local.test"], body).await;
    r.expect("250 2.0.0 Ok: queued as");
    let id = r.queue_id();
    let files = d.wait_maildir("local.test", "postmaster", 1).await;
    let stored = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        stored.starts_with(
            "Return-Path: <a@sender.test>\r\nReceived: from client.test ([127.0.0.1])\r\n\tby mx.local.test (mailerd) with ESMTP id "
        )
    );
    assert!(stored.contains(&id));
    assert!(stored.ends_with("line one\r\n.leading dot\r\n"), "{stored}");
    assert!(files[0].to_string_lossy().ends_with(&format!(",S={}", stored.len())));
}

#[tokio::test]
async fn users_aliases_and_bare_postmaster() {
    let d = TestDaemon::with("[local]\naliases = { \"info@local.test\" = \"bob@local.test\" }").await;
    d.add_user("bob@local.test", "pw", None).await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd("MAIL FROM:<a@sender.test>").await.expect("250");
    c.cmd("RCPT TO:<Bob@Local.Test>").await.expect("250");
    c.cmd("RCPT TO:<info@local.test>").await.expect("250");
    c.cmd("RCPT TO:<Postmaster>").await.expect("250");
    c.cmd("DATA").await.expect("354");
    c.send_raw(b"Subject: all\r\n\r\nx\r\n").await;
    c.cmd(".").await.expect("250");
    assert_eq!(d.wait_maildir("local.test", "bob", 2).await.len(), 2);
    assert_eq!(d.wait_maildir("local.test", "postmaster", 1).await.len(), 1);
}

#[tokio::test]
async fn dsn_parameters_are_stored_with_the_message() {
    let d = TestDaemon::with("[queue]\nhold = true").await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd("MAIL FROM:<a@sender.test> RET=HDRS ENVID=env+2B42").await.expect("250");
    c.cmd("RCPT TO:<postmaster@local.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;pm+40local.test").await.expect("250");
    c.cmd("DATA").await.expect("354");
    c.send_raw(b"Subject: dsn\r\n\r\nx\r\n").await;
    let r = c.cmd(".").await;
    let id = r.queue_id();
    use mailerd::store::{MessageId, Store};
    let m = d.store().message_detail(&MessageId(id)).await.unwrap().expect("stored");
    assert_eq!(m.envid.as_deref(), Some("env+42"));
    assert_eq!(m.ret, Some(mailerd::smtp::command::Ret::Hdrs));
    assert_eq!(m.entry.recipients[0].notify.map(|n| n.render()).as_deref(), Some("FAILURE,DELAY"));
    assert_eq!(m.entry.recipients[0].orcpt.as_deref(), Some("rfc822;pm@local.test"));
    // queue.hold: stored, never delivered.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(d.maildir_files("local.test", "postmaster").is_empty());
}
