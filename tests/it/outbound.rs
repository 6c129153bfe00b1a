//! Outbound delivery to real peers on loopback: a second mailerd as the destination, found
//! through MX records served by dnsmasq, or through a static route.

use std::time::Duration;

use mailerd::store::{MessageId, RecipientState, Store};

use crate::harness::dns::TestDns;
use crate::harness::{Client, TestDaemon};

async fn wait_final(d: &TestDaemon, id: &str, n: usize) -> Vec<mailerd::store::RecipientView> {
    for _ in 0..400 {
        let m = d.store().message_detail(&MessageId(id.into())).await.unwrap().expect("message");
        let done = m
            .entry
            .recipients
            .iter()
            .filter(|r| !matches!(r.state, RecipientState::Queued | RecipientState::Deferred) || r.attempts > 0)
            .count();
        if done >= n {
            return m.entry.recipients;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("recipients of {id} never reached a final state");
}

#[tokio::test]
async fn mx_lookup_finds_the_destination_and_every_recipient_gets_its_reply() {
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("alice@dest.test", "pw", None).await;
    let Some(dns) = TestDns::start(&[
        "--mx-host=dest.test,mx1.dest.test,10".into(),
        "--host-record=mx1.dest.test,127.0.0.1".into(),
        "--mx-host=nullmx.test,.,0".into(),
    ])
    .await
    else {
        return;
    };
    let port = dest.smtp.port();
    let src = TestDaemon::with(&format!(
        "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[dns]\nnameservers = [\"{}\"]\n[outbound]\nmx_port = {port}\n",
        dns.addr
    ))
    .await;
    let mut c = Client::connect(src.smtp).await;
    c.cmd("EHLO app.test").await.expect("250");
    c.cmd("MAIL FROM:<app@sender.test>").await.expect("250");
    for r in ["alice@dest.test", "nobody@dest.test", "x@nxdomain.test", "y@nullmx.test"] {
        c.cmd(&format!("RCPT TO:<{r}>")).await.expect("250");
    }
    c.cmd("DATA").await.expect("354");
    c.send_raw(b"Subject: out\r\n\r\n..leading dot\r\nbody\r\n").await;
    let id = c.cmd(".").await.queue_id();
    let rcpts = wait_final(&src, &id, 4).await;
    let by = |a: &str| rcpts.iter().find(|r| r.address == a).unwrap().clone();

    let alice = by("alice@dest.test");
    assert_eq!(alice.state, RecipientState::Delivered, "{alice:?}");
    assert!(alice.remote_mta.as_deref().unwrap().starts_with("mx1.dest.test[127.0.0.1]"), "{alice:?}");
    let nobody = by("nobody@dest.test");
    assert_eq!(nobody.state, RecipientState::Bounced);
    assert_eq!(nobody.last_status.as_deref(), Some("5.1.1"));
    assert_eq!(nobody.last_detail.as_deref(), Some("550 5.1.1 <nobody@dest.test>: user unknown"));
    let nx = by("x@nxdomain.test");
    assert_eq!((nx.state, nx.last_status.as_deref()), (RecipientState::Bounced, Some("5.1.2")));
    let null = by("y@nullmx.test");
    assert_eq!((null.state, null.last_status.as_deref()), (RecipientState::Bounced, Some("5.1.10")));

    let files = dest.wait_maildir("dest.test", "alice", 1).await;
    let text = std::fs::read_to_string(&files[0]).unwrap();
    // Both hops' trace headers, and the dot-stuffed line arrives intact.
    assert_eq!(text.matches("Received: from").count(), 2, "{text}");
    assert!(text.ends_with("\r\n.leading dot\r\nbody\r\n"), "{text}");
}

#[tokio::test]
async fn a_static_route_and_connection_reuse() {
    let dest = TestDaemon::with("[local]\ndomains = [\"routed.test\"]").await;
    let src = TestDaemon::with(&format!(
        "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[routes]\n\"routed.test\" = \"{}\"\n",
        dest.smtp
    ))
    .await;
    let mut c = Client::connect(src.smtp).await;
    for i in 0..5 {
        let r =
            c.send_mail("app@sender.test", &["postmaster@routed.test"], &format!("Subject: {i}\r\n\r\nx\r\n")).await;
        r.expect("250 2.0.0");
        c.cmd("RSET").await.expect("250");
    }
    assert_eq!(dest.wait_maildir("routed.test", "postmaster", 5).await.len(), 5);
}

#[tokio::test]
async fn a_destination_that_is_down_defers_and_the_message_stays_queued() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let src = TestDaemon::with(&format!(
        "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[routes]\n\"down.test\" = \"{closed}\"\n"
    ))
    .await;
    let mut c = Client::connect(src.smtp).await;
    let id = c.send_mail("app@sender.test", &["x@down.test"], "Subject: d\r\n\r\nx\r\n").await.queue_id();
    let r = wait_final(&src, &id, 1).await;
    assert_eq!(r[0].state, RecipientState::Deferred);
    assert_eq!(r[0].last_status.as_deref(), Some("4.4.1"), "{:?}", r[0]);
    let listed = src.store().queue_list(10).await.unwrap();
    assert!(listed.iter().any(|m| m.id.0 == id));
}
