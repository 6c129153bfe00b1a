//! Postfix as an independent destination: it accepts, refuses unknown users (550 5.1.1),
//! refuses to relay (554 5.7.1) and advertises a SIZE limit; mailerd delivers, bounces with
//! explained DSNs, suppresses the unknown user, and never sends what is too large.

use std::time::Duration;

use mail_parser::MessageParser;
use mailerd::store::Store;

use crate::harness::postfix::TestPostfix;
use crate::harness::{Client, TestDaemon};

#[tokio::test]
async fn delivery_and_bounces_against_a_real_postfix() {
    let Some(pf) = TestPostfix::start("pf.test", &["alice"], 20_000).await else { return };
    let src = TestDaemon::with(&format!(
        "[local]\ndomains = [\"sender.test\"]\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n\
         [routes]\n\"pf.test\" = \"{a}\"\n\"elsewhere.test\" = \"{a}\"\n",
        a = pf.addr
    ))
    .await;
    src.add_user("app@sender.test", "pw", None).await;
    let mut c = Client::connect(src.smtp).await;
    c.send_mail(
        "app@sender.test",
        &["alice@pf.test", "nobody@pf.test", "someone@elsewhere.test"],
        "Subject: to postfix\r\n\r\nhello postfix\r\n",
    )
    .await
    .expect("250");
    c.cmd("RSET").await.expect("250");
    let big = format!("Subject: too big\r\n\r\n{}", format!("{}\r\n", "x".repeat(76)).repeat(400));
    c.send_mail("app@sender.test", &["alice@pf.test"], &big).await.expect("250");

    // Postfix delivered the small one into alice's maildir.
    let mut delivered = Vec::new();
    for _ in 0..400 {
        delivered = pf.maildir("pf.test", "alice");
        if !delivered.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(delivered.len(), 1, "exactly the small message reaches Postfix");
    assert!(std::fs::read_to_string(&delivered[0]).unwrap().contains("hello postfix"));

    // Two DSNs: one for the two refusals of the first message, one for the too-large one.
    let dsns = src.wait_maildir("sender.test", "app", 2).await;
    let mut all = String::new();
    for f in &dsns {
        let raw = std::fs::read(f).unwrap();
        let m = MessageParser::default().parse(&raw).expect("DSN parses");
        assert_eq!(m.subject(), Some("Undelivered Mail Returned to Sender"));
        all.push_str(&String::from_utf8_lossy(&raw));
    }
    let all = all.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(all.contains("Status: 5.1.1") && all.contains("User unknown in virtual mailbox table"), "{all}");
    assert!(all.contains("Status: 5.7.1") && all.contains("Relay access denied"), "{all}");
    assert!(all.contains("Status: 5.3.4") && all.contains("exceeds the server's SIZE limit of 20000"), "{all}");
    assert!(all.contains("Remote-MTA: dns; 127.0.0.3"), "{all}");
    let s = src.store().suppression("nobody@pf.test").await.unwrap().expect("hard bounce suppressed");
    assert_eq!(s.reason, "userunknown");
    assert!(src.store().suppression("someone@elsewhere.test").await.unwrap().is_none());
}
