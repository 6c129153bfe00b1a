//! The classic open-relay tricks (DESIGN §6): none of them gets a foreign address accepted.

use crate::harness::{Client, TestDaemon};

async fn rcpt(d: &TestDaemon, path: &str) -> String {
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO attacker.test").await.expect("250");
    c.cmd("MAIL FROM:<spammer@attacker.test> SMTPUTF8").await.expect("250");
    c.cmd(&format!("RCPT TO:{path}")).await.first()
}

#[tokio::test]
async fn percent_hack_is_a_local_part_not_a_route() {
    let d = TestDaemon::start().await;
    assert_eq!(
        rcpt(&d, "<user%other.example@local.test>").await,
        "550 5.1.1 <user%other.example@local.test>: user unknown"
    );
    assert_eq!(
        rcpt(&d, "<other.example!user@local.test>").await,
        "550 5.1.1 <other.example!user@local.test>: user unknown"
    );
}

#[tokio::test]
async fn source_route_through_a_local_domain_is_ignored() {
    let d = TestDaemon::start().await;
    assert_eq!(
        rcpt(&d, "<@local.test:user@other.example>").await,
        "554 5.7.1 <user@other.example>: relay access denied"
    );
    assert_eq!(
        rcpt(&d, "<@local.test,@mx.local.test:user@other.example>").await,
        "554 5.7.1 <user@other.example>: relay access denied"
    );
}

#[tokio::test]
async fn quoted_local_part_with_an_at_sign_stays_local() {
    let d = TestDaemon::start().await;
    assert_eq!(
        rcpt(&d, "<\"user@other.example\"@local.test>").await,
        "550 5.1.1 <\"user@other.example\"@local.test>: user unknown"
    );
}

#[tokio::test]
async fn trailing_dot_upper_case_and_literals_do_not_relay() {
    let d = TestDaemon::start().await;
    assert_eq!(rcpt(&d, "<user@other.example.>").await, "554 5.7.1 <user@other.example>: relay access denied");
    assert_eq!(rcpt(&d, "<USER@OTHER.EXAMPLE>").await, "554 5.7.1 <USER@other.example>: relay access denied");
    assert_eq!(rcpt(&d, "<user@[127.0.0.1]>").await, "554 5.7.1 <user@[127.0.0.1]>: relay access denied");
    assert_eq!(
        rcpt(&d, "<user@local.test.other.example>").await,
        "554 5.7.1 <user@local.test.other.example>: relay access denied"
    );
    // Upper case and a trailing dot on a local domain still reach the local mailbox.
    assert_eq!(rcpt(&d, "<POSTMASTER@LOCAL.TEST.>").await, "250 2.1.5 Ok");
}

#[tokio::test]
async fn idna_forms_are_one_domain() {
    let d = TestDaemon::start().await;
    // bücher.test is local in both forms; bücher.example is foreign in both forms.
    assert_eq!(rcpt(&d, "<postmaster@xn--bcher-kva.test>").await, "250 2.1.5 Ok");
    assert_eq!(rcpt(&d, "<postmaster@BÜCHER.test>").await, "250 2.1.5 Ok");
    assert_eq!(rcpt(&d, "<user@bücher.example>").await, "554 5.7.1 <user@xn--bcher-kva.example>: relay access denied");
    assert_eq!(
        rcpt(&d, "<user@xn--bcher-kva.example>").await,
        "554 5.7.1 <user@xn--bcher-kva.example>: relay access denied"
    );
}

#[tokio::test]
async fn source_routes_in_mail_from_are_accepted_and_dropped() {
    let d = TestDaemon::start().await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd("MAIL FROM:<@relay.example:sender@origin.example>").await.expect("250 2.1.0");
    assert_eq!(c.cmd("RCPT TO:<x@other.example>").await.first(), "554 5.7.1 <x@other.example>: relay access denied");
    c.cmd("RCPT TO:<postmaster@local.test>").await.expect("250");
    c.cmd("DATA").await.expect("354");
    c.send_raw(b"Subject: r\r\n\r\nx\r\n").await;
    c.cmd(".").await.expect("250");
    let files = d.wait_maildir("local.test", "postmaster", 1).await;
    let detail = d.store();
    use mailerd::store::Store;
    let list = detail.queue_list(10).await.unwrap();
    assert!(list.iter().all(|e| e.reverse_path != "@relay.example:sender@origin.example"));
    assert!(!files.is_empty());
}

#[tokio::test]
async fn a_trusted_network_may_relay_without_auth() {
    let d = TestDaemon::with("[relay]\ntrusted_networks = [\"127.0.0.0/8\"]").await;
    assert_eq!(rcpt(&d, "<user@other.example>").await, "250 2.1.5 Ok");
}

#[tokio::test]
async fn submission_requires_auth_even_for_local_mail() {
    let d = TestDaemon::start().await;
    let mut c = Client::connect(d.submission).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd("MAIL FROM:<a@sender.test>").await.expect("530 5.7.0 Authentication required");
}
