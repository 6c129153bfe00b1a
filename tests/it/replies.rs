//! Every row of DESIGN §4, asserted over real TCP: a changed reply fails a test.

use std::time::Duration;

use crate::harness::{Client, TestDaemon};

const MSG: &str = "Subject: hi\r\n\r\nhello\r\n";

#[tokio::test]
async fn unknown_local_user_gets_550_5_1_1_at_rcpt() {
    let d = TestDaemon::start().await;
    let mut c = Client::connect(d.smtp).await;
    c.greeting.expect("220 mx.local.test ESMTP");
    c.cmd("EHLO client.test").await.expect("250 mx.local.test");
    c.cmd("MAIL FROM:<a@sender.test>").await.expect("250 2.1.0");
    let r = c.cmd("RCPT TO:<nobody@local.test>").await;
    assert_eq!(r.first(), "550 5.1.1 <nobody@local.test>: user unknown");
}

#[tokio::test]
async fn full_mailbox_gets_552_5_2_2_at_rcpt() {
    let d = TestDaemon::start().await;
    d.add_user("small@local.test", "pw", Some(200)).await;
    let mut c = Client::connect(d.smtp).await;
    // A declared SIZE beyond the quota is refused before any data…
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd("MAIL FROM:<a@sender.test> SIZE=500").await.expect("250");
    assert_eq!(c.cmd("RCPT TO:<small@local.test>").await.first(), "552 5.2.2 <small@local.test>: mailbox full");
    c.cmd("RSET").await.expect("250 2.0.0");
    // …and once delivered mail fills the mailbox, every RCPT is refused.
    let body = format!("Subject: fill\r\n\r\n{}\r\n", "x".repeat(300));
    c.cmd("MAIL FROM:<a@sender.test>").await.expect("250");
    c.cmd("RCPT TO:<small@local.test>").await.expect("250 2.1.5");
    c.cmd("DATA").await.expect("354");
    c.send_raw(body.as_bytes()).await;
    c.cmd(".").await.expect("250 2.0.0 Ok: queued as");
    d.wait_maildir("local.test", "small", 1).await;
    let mut full = false;
    for _ in 0..100 {
        c.cmd("MAIL FROM:<a@sender.test>").await.expect("250");
        let r = c.cmd("RCPT TO:<small@local.test>").await;
        c.cmd("RSET").await.expect("250");
        if r.code == 552 {
            assert_eq!(r.first(), "552 5.2.2 <small@local.test>: mailbox full");
            full = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(full, "the mailbox never reported full");
}

#[tokio::test]
async fn size_parameter_over_the_limit_gets_552_5_3_4_at_mail() {
    let d = TestDaemon::with("[limits]\nmax_message_size = 10000").await;
    let mut c = Client::connect(d.smtp).await;
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(ehlo.lines.contains(&"SIZE 10000".to_string()), "{:?}", ehlo.lines);
    let r = c.cmd("MAIL FROM:<a@sender.test> SIZE=10001").await;
    assert_eq!(r.first(), "552 5.3.4 message size exceeds fixed maximum message size");
    c.cmd("MAIL FROM:<a@sender.test> SIZE=10000").await.expect("250 2.1.0");
}

#[tokio::test]
async fn data_over_the_limit_gets_552_5_3_4_after_the_end_of_data() {
    let d = TestDaemon::with("[limits]\nmax_message_size = 10000").await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd("MAIL FROM:<a@sender.test>").await.expect("250");
    c.cmd("RCPT TO:<postmaster@local.test>").await.expect("250");
    c.cmd("DATA").await.expect("354");
    // 1 MB in 1000-byte lines: far over the limit, streamed without being buffered.
    let line = format!("{}\r\n", "z".repeat(998));
    for _ in 0..1000 {
        c.send_raw(line.as_bytes()).await;
    }
    let r = c.cmd(".").await;
    assert_eq!(r.first(), "552 5.3.4 message size exceeds fixed maximum message size");
    // The session goes on: the next transaction works.
    c.cmd("MAIL FROM:<a@sender.test>").await.expect("250 2.1.0");
    assert!(d.maildir_files("local.test", "postmaster").is_empty());
}

#[tokio::test]
async fn beyond_max_connections_gets_421_4_3_2_and_close() {
    let d = TestDaemon::with("[limits]\nmax_connections = 2").await;
    let a = Client::connect(d.smtp).await;
    let b = Client::connect(d.smtp).await;
    a.greeting.expect("220");
    b.greeting.expect("220");
    let mut third = Client::connect(d.smtp).await;
    assert_eq!(third.greeting.first(), "421 4.3.2 service not available, closing transmission channel");
    assert!(third.is_closed().await);
    drop(a);
    // A freed slot is usable again.
    let mut ok = false;
    for _ in 0..50 {
        let c = Client::connect(d.smtp).await;
        if c.greeting.code == 220 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok);
}

#[tokio::test]
async fn store_without_space_gets_452_4_3_1() {
    // min_free_space above any real disk: the store "cannot write" (Postfix's queue_minfree).
    let d = TestDaemon::with("[limits]\nmin_free_space = 9000000000000000000").await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO client.test").await.expect("250");
    assert_eq!(c.cmd("MAIL FROM:<a@sender.test>").await.first(), "452 4.3.1 insufficient system storage");
}

#[tokio::test]
async fn relay_without_auth_gets_554_5_7_1() {
    let d = TestDaemon::start().await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd("MAIL FROM:<a@sender.test>").await.expect("250");
    assert_eq!(
        c.cmd("RCPT TO:<victim@other.example>").await.first(),
        "554 5.7.1 <victim@other.example>: relay access denied"
    );
    // DATA after only refused recipients (RFC 2920).
    assert_eq!(c.cmd("DATA").await.first(), "554 5.5.1 no valid recipients");
}

#[tokio::test]
async fn too_many_recipients_gets_452_4_5_3() {
    let d = TestDaemon::with("[limits]\nmax_recipients = 3").await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd("MAIL FROM:<a@sender.test>").await.expect("250");
    for _ in 0..3 {
        c.cmd("RCPT TO:<postmaster@local.test>").await.expect("250 2.1.5");
    }
    assert_eq!(c.cmd("RCPT TO:<postmaster@local.test>").await.first(), "452 4.5.3 too many recipients");
    c.cmd("DATA").await.expect("354");
    c.send_raw(MSG.as_bytes()).await;
    c.cmd(".").await.expect("250 2.0.0");
}

#[tokio::test]
async fn syntax_errors_get_500_and_501() {
    let d = TestDaemon::start().await;
    let mut c = Client::connect(d.smtp).await;
    assert_eq!(c.cmd("FROB").await.first(), "500 5.5.2 command not recognized");
    c.cmd("HELO").await.expect("501 5.5.4");
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd("MAIL FROM:nobrackets@x.test").await.expect("501 5.5.4");
    c.cmd("MAIL FROM:<a@b.test> BOGUS=1").await.expect("555 5.5.4");
    c.cmd("MAIL FROM:<a@@b.test>").await.expect("501 5.1.7");
    c.cmd("RCPT TO:<x@local.test>").await.expect("503 5.5.1");
    c.cmd("MAIL FROM:<a@b.test>").await.expect("250");
    c.cmd("RCPT TO:<bad..dots@local.test>").await.expect("501 5.1.3");
    c.cmd("MAIL FROM:<a@b.test>").await.expect("503 5.5.1");
    // RFC 5321 §4.5.3.1: an over-long command line is refused and the session goes on.
    let long = format!("NOOP {}", "x".repeat(5000));
    assert_eq!(c.cmd(&long).await.first(), "500 5.5.2 line too long");
    c.cmd("NOOP").await.expect("250 2.0.0");
    c.send_raw(b"NOOP \xff\xfe\r\n").await;
    c.read_reply().await.expect("500 5.5.2");
}

#[tokio::test]
async fn non_ascii_address_without_smtputf8_gets_553_5_6_7() {
    let d = TestDaemon::start().await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd("MAIL FROM:<jörg@sender.test>").await.expect("553 5.6.7");
    c.cmd("MAIL FROM:<jörg@sender.test> SMTPUTF8").await.expect("250");
    c.cmd("RCPT TO:<postmaster@bücher.test>").await.expect("250 2.1.5");
}

#[tokio::test]
async fn too_many_errors_close_the_session() {
    let d = TestDaemon::with("[limits]\nmax_errors = 3").await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("X1").await.expect("500");
    c.cmd("X2").await.expect("500");
    c.send("X3").await;
    c.read_reply().await.expect("500");
    c.read_reply().await.expect("421 4.7.0");
    assert!(c.is_closed().await);
}

#[tokio::test]
async fn idle_client_gets_421_4_4_2_after_the_command_timeout() {
    let d = TestDaemon::with("[limits]\ncommand_timeout = 1").await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO client.test").await.expect("250");
    let r = c.read_reply().await;
    assert_eq!(r.first(), "421 4.4.2 mx.local.test error: timeout exceeded");
    assert!(c.is_closed().await);
}

#[tokio::test]
async fn vrfy_does_not_reveal_users_and_expn_is_off() {
    let d = TestDaemon::start().await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("VRFY nobody").await.expect("252 2.0.0");
    c.cmd("EXPN staff").await.expect("502 5.5.1");
    c.cmd("QUIT").await.expect("221 2.0.0");
}

#[tokio::test]
async fn submission_to_a_domain_that_does_not_exist_gets_550_5_1_2() {
    let Some(dns) = crate::harness::dns::TestDns::start(&[
        "--mx-host=exists.test,mx.exists.test,10".into(),
        "--host-record=mx.exists.test,127.0.0.1".into(),
    ])
    .await
    else {
        return;
    };
    let d = TestDaemon::with(&format!(
        "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[dns]\nnameservers = [\"{}\"]\n[queue]\nhold = true",
        dns.addr
    ))
    .await;
    let mut c = Client::connect(d.submission).await;
    c.cmd("EHLO app.test").await.expect("250");
    c.cmd("MAIL FROM:<app@sender.test>").await.expect("250");
    assert_eq!(c.cmd("RCPT TO:<x@nxdomain.test>").await.first(), "550 5.1.2 <x@nxdomain.test>: domain not found");
    c.cmd("RCPT TO:<x@exists.test>").await.expect("250 2.1.5");
}
