//! Submission: STARTTLS first, then AUTH PLAIN/LOGIN against argon2 hashes, then relaying;
//! failed logins are rate limited per client IP.

use crate::harness::smtp::plain;
use crate::harness::{Client, TestDaemon};

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn auth_is_offered_and_accepted_only_after_starttls() {
    let d = TestDaemon::start().await;
    d.add_user("bob@local.test", "correct horse", None).await;
    let mut c = Client::connect(d.submission).await;
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(ehlo.lines.iter().any(|l| l == "STARTTLS"));
    assert!(!ehlo.lines.iter().any(|l| l.starts_with("AUTH")), "AUTH must not be offered in clear text");
    c.cmd(&format!("AUTH PLAIN {}", plain("bob@local.test", "correct horse"))).await.expect("538 5.7.11");
    c.starttls(&d.cert_path()).await;
    // RFC 3207: the session starts over after the handshake.
    c.cmd("MAIL FROM:<bob@local.test>").await.expect("503 5.5.1");
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(ehlo.lines.iter().any(|l| l == "AUTH PLAIN LOGIN"), "{:?}", ehlo.lines);
    assert!(!ehlo.lines.iter().any(|l| l == "STARTTLS"));
    c.cmd(&format!("AUTH PLAIN {}", plain("bob@local.test", "wrong"))).await.expect("535 5.7.8");
    c.cmd(&format!("AUTH PLAIN {}", plain("bob@local.test", "correct horse"))).await.expect("235 2.7.0");
    c.cmd(&format!("AUTH PLAIN {}", plain("bob@local.test", "correct horse"))).await.expect("503 5.5.1");
    // Authenticated: relaying is allowed.
    c.cmd("MAIL FROM:<bob@local.test>").await.expect("250");
    c.cmd("RCPT TO:<friend@other.example>").await.expect("250 2.1.5");
    c.cmd("DATA").await.expect("354");
    c.send_raw(b"Subject: out\r\n\r\nhello\r\n").await;
    c.cmd(".").await.expect("250 2.0.0 Ok: queued as");
    use mailerd::store::Store;
    let q = d.store().queue_list(10).await.unwrap();
    let m = q.iter().find(|m| m.recipients.iter().any(|r| r.address == "friend@other.example")).expect("queued");
    let detail = d.store().message_detail(&m.id).await.unwrap().unwrap();
    assert_eq!(detail.origin.auth_user.as_deref(), Some("bob@local.test"));
    assert!(detail.origin.tls);
    let body = d.store().load_body(&m.id).await.unwrap().unwrap();
    let head = String::from_utf8_lossy(&body[..200.min(body.len())]).to_string();
    assert!(head.contains("with ESMTPSA id"), "{head}");
}

#[tokio::test]
async fn auth_login_and_cancel() {
    let d = TestDaemon::start().await;
    d.add_user("ann@local.test", "pw-ann", None).await;
    let mut c = Client::connect(d.submission).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.starttls(&d.cert_path()).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd("AUTH LOGIN").await.expect(&format!("334 {}", b64("Username:")));
    c.cmd("*").await.expect("501 5.0.0");
    c.cmd("AUTH CRAM-MD5").await.expect("504 5.5.4");
    c.cmd("AUTH LOGIN").await.expect("334");
    c.cmd(&b64("ann@local.test")).await.expect(&format!("334 {}", b64("Password:")));
    c.cmd(&b64("pw-ann")).await.expect("235 2.7.0");
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_client() {
    let d = TestDaemon::with("[limits]\nauth_max_failures = 3\nmax_errors = 50").await;
    d.add_user("bob@local.test", "right", None).await;
    let mut c = Client::connect(d.submission).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.starttls(&d.cert_path()).await;
    c.cmd("EHLO client.test").await.expect("250");
    for _ in 0..3 {
        c.cmd(&format!("AUTH PLAIN {}", plain("bob@local.test", "guess"))).await.expect("535 5.7.8");
    }
    // Even the right password is refused now, from this IP, on any connection.
    c.cmd(&format!("AUTH PLAIN {}", plain("bob@local.test", "right"))).await.expect("454 4.7.0");
    let mut c2 = Client::connect(d.submission).await;
    c2.cmd("EHLO client.test").await.expect("250");
    c2.starttls(&d.cert_path()).await;
    c2.cmd("EHLO client.test").await.expect("250");
    c2.cmd(&format!("AUTH PLAIN {}", plain("bob@local.test", "right"))).await.expect("454 4.7.0");
}

#[tokio::test]
async fn unknown_users_fail_like_wrong_passwords() {
    let d = TestDaemon::start().await;
    let mut c = Client::connect(d.submission).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.starttls(&d.cert_path()).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd(&format!("AUTH PLAIN {}", plain("ghost@local.test", "x"))).await.expect("535 5.7.8");
}

#[tokio::test]
async fn auth_is_not_offered_on_the_mx_port() {
    let d = TestDaemon::start().await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.starttls(&d.cert_path()).await;
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(!ehlo.lines.iter().any(|l| l.starts_with("AUTH")));
    c.cmd(&format!("AUTH PLAIN {}", plain("a@local.test", "x"))).await.expect("502 5.5.1");
}

#[tokio::test]
async fn input_pipelined_after_starttls_is_discarded() {
    let d = TestDaemon::start().await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO client.test").await.expect("250");
    // CVE-2011-0411 style injection: a command sent in clear text together with STARTTLS must
    // not be executed inside the TLS session.
    c.send_raw(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n").await;
    c.read_reply().await.expect("220 2.0.0");
    c.tls_handshake(&d.cert_path()).await;
    c.cmd("EHLO client.test").await.expect("250");
    // Had the injected MAIL been run, this RCPT would be accepted.
    c.cmd("RCPT TO:<postmaster@local.test>").await.expect("503 5.5.1");
}
