//! RFC 2920 PIPELINING: a whole transaction in one write gets every reply, in order.

use crate::harness::{Client, TestDaemon};

#[tokio::test]
async fn a_pipelined_transaction_gets_all_replies_in_order() {
    let d = TestDaemon::start().await;
    let mut c = Client::connect(d.smtp).await;
    let ehlo = c.cmd("EHLO client.test").await;
    for ext in ["PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN", "STARTTLS"] {
        assert!(ehlo.lines.iter().any(|l| l == ext), "missing {ext}: {:?}", ehlo.lines);
    }
    c.send_raw(
        b"MAIL FROM:<a@sender.test>\r\nRCPT TO:<postmaster@local.test>\r\nRCPT TO:<nobody@local.test>\r\nRCPT TO:<x@other.example>\r\nDATA\r\n",
    )
    .await;
    c.read_reply().await.expect("250 2.1.0");
    c.read_reply().await.expect("250 2.1.5");
    c.read_reply().await.expect("550 5.1.1");
    c.read_reply().await.expect("554 5.7.1");
    c.read_reply().await.expect("354");
    c.send_raw(
        b"Subject: p\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@sender.test>\r\nRCPT TO:<postmaster@local.test>\r\nDATA\r\n",
    )
    .await;
    c.read_reply().await.expect("250 2.0.0 Ok: queued as");
    c.read_reply().await.expect("250 2.1.0");
    c.read_reply().await.expect("250 2.1.5");
    c.read_reply().await.expect("354");
    c.send_raw(b"Subject: q\r\n\r\nbody\r\n.\r\nQUIT\r\n").await;
    c.read_reply().await.expect("250 2.0.0");
    c.read_reply().await.expect("221 2.0.0");
    assert_eq!(d.wait_maildir("local.test", "postmaster", 2).await.len(), 2);
}

#[tokio::test]
async fn bare_lf_dot_cannot_smuggle_a_second_message() {
    let d = TestDaemon::with("[queue]\nhold = true").await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd("MAIL FROM:<a@sender.test>").await.expect("250");
    c.cmd("RCPT TO:<postmaster@local.test>").await.expect("250");
    c.cmd("DATA").await.expect("354");
    c.send_raw(b"Subject: one\r\n\r\nx\n.\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<postmaster@local.test>\r\nDATA\r\nSubject: smuggled\r\n\r\ny\r\n.\r\n").await;
    c.read_reply().await.expect("250 2.0.0");
    c.cmd("NOOP").await.expect("250 2.0.0");
    use mailerd::store::Store;
    assert_eq!(d.store().queue_list(10).await.unwrap().len(), 1, "exactly one message");
}
