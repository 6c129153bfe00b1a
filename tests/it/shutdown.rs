//! Graceful shutdown: transactions in progress finish, idle and new clients get 421 4.3.2.

use crate::harness::{Client, TestDaemon};

#[tokio::test]
async fn shutdown_finishes_the_transaction_and_refuses_new_sessions() {
    let d = TestDaemon::start().await;
    let mut busy = Client::connect(d.smtp).await;
    busy.cmd("EHLO client.test").await.expect("250");
    busy.cmd("MAIL FROM:<a@sender.test>").await.expect("250");
    busy.cmd("RCPT TO:<postmaster@local.test>").await.expect("250");
    let mut idle = Client::connect(d.smtp).await;
    idle.cmd("EHLO idle.test").await.expect("250");

    d.stopper().send(true).unwrap();
    // The idle session is told at once.
    idle.read_reply().await.expect("421 4.3.2");
    let late = Client::connect(d.smtp).await;
    assert_eq!(late.greeting.first(), "421 4.3.2 service not available, closing transmission channel");

    // The busy one may complete its message, then it is closed with 421.
    busy.cmd("DATA").await.expect("354");
    busy.send_raw(b"Subject: last\r\n\r\nx\r\n").await;
    busy.cmd(".").await.expect("250 2.0.0");
    busy.read_reply().await.expect("421 4.3.2");
    assert!(busy.is_closed().await);
    d.shutdown().await;
}
