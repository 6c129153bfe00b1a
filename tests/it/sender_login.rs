//! Sender ownership of SMTP logins (`relay.sender_login_match`, `[[senders]]`): an
//! authenticated user may use its own address and what `[[senders]]` lists for it, in MAIL
//! FROM (else 553 5.7.1 at MAIL) and in every From:/Sender: address (else 550 5.7.1 after
//! DATA, nothing queued); `<>` is allowed; unauthenticated trusted-network relays are not
//! checked; `sender_login_match = false` accepts any sender, as before.
//!
//! Must not: use any address outside 127.0.0.0/8, or deliver anything (queue.hold).

use mailerd::store::Store;

use crate::harness::smtp::{Reply, plain};
use crate::harness::{Client, TestDaemon};

const PASSWORD: &str = "pw of a login";

/// `login_match`: the value of `relay.sender_login_match`.
async fn daemon(login_match: bool) -> TestDaemon {
    let d = TestDaemon::with(&format!(
        "[relay]\ntrusted_networks = [\"127.0.0.2/32\"]\nsender_login_match = {login_match}\n\
         [[senders]]\nlogin = \"app@local.test\"\naddresses = [\"example.org\", \"Alerts@Other.test\"]\n\
         [queue]\nhold = true\n[routes]\n\"dest.test\" = \"127.0.0.1:9\"\n[limits]\nmax_errors = 100\n"
    ))
    .await;
    for user in ["bob@local.test", "alice@local.test", "app@local.test"] {
        d.add_user(user, PASSWORD, None).await;
    }
    d
}

/// A submission session after STARTTLS and AUTH as `user`.
async fn logged_in(d: &TestDaemon, user: &str) -> Client {
    let mut c = Client::connect(d.submission).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.starttls(&d.cert_path()).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd(&format!("AUTH PLAIN {}", plain(user, PASSWORD))).await.expect("235 2.7.0");
    c
}

/// MAIL FROM `envelope`, one RCPT, and a message starting with `header`: the reply that ended
/// the transaction (MAIL's when it refused, else the one after DATA).
async fn send(c: &mut Client, envelope: &str, header: &str) -> Reply {
    let r = c.cmd(&format!("MAIL FROM:<{envelope}>")).await;
    if r.code != 250 {
        return r;
    }
    c.cmd("RCPT TO:<friend@dest.test>").await.expect("250 2.1.5");
    c.cmd("DATA").await.expect("354");
    c.send_raw(format!("{header}Subject: ownership\r\n\r\nhello\r\n").as_bytes()).await;
    c.cmd(".").await
}

#[derive(Default)]
struct Tally {
    attempts: usize,
    at_mail: usize,
    after_data: usize,
    accepted: usize,
}

impl Tally {
    /// Runs one case and checks its reply.
    async fn case(&mut self, c: &mut Client, envelope: &str, header: &str, expect: &str) {
        let r = send(c, envelope, header).await;
        let first = r.first();
        assert!(
            first.starts_with(expect),
            "MAIL FROM:<{envelope}> with {header:?}: expected `{expect}…`, got `{first}`"
        );
        self.attempts += 1;
        match r.code {
            553 => self.at_mail += 1,
            550 => self.after_data += 1,
            _ => self.accepted += 1,
        }
    }
}

#[tokio::test]
async fn logins_send_only_as_themselves_and_their_listed_senders() {
    let d = daemon(true).await;
    let mut t = Tally::default();

    let mut bob = logged_in(&d, "bob@local.test").await;
    // Its own address, in any case, and the null sender.
    t.case(&mut bob, "bob@local.test", "From: Bob <bob@local.test>\r\n", "250 2.0.0 Ok: queued").await;
    t.case(&mut bob, "Bob@LOCAL.test", "From: \"Bob B.\" <BOB@local.test>\r\nSender: bob@local.test\r\n", "250 2.0.0")
        .await;
    t.case(&mut bob, "", "From: bob@local.test\r\n", "250 2.0.0").await;
    // Another user of the same domain, another domain, a +detail, another login's grant.
    t.case(
        &mut bob,
        "alice@local.test",
        "From: alice@local.test\r\n",
        "553 5.7.1 <alice@local.test>: Sender address not owned by user bob@local.test",
    )
    .await;
    t.case(&mut bob, "ceo@bank.test", "From: ceo@bank.test\r\n", "553 5.7.1 <ceo@bank.test>: Sender address not owned")
        .await;
    t.case(&mut bob, "bob+news@local.test", "From: bob@local.test\r\n", "553 5.7.1").await;
    t.case(&mut bob, "news@example.org", "From: news@example.org\r\n", "553 5.7.1").await;
    // The header: any From address, a second From, a Sender.
    t.case(
        &mut bob,
        "bob@local.test",
        "From: CEO <ceo@bank.test>\r\n",
        "550 5.7.1 From address not owned by user bob@local.test",
    )
    .await;
    t.case(&mut bob, "bob@local.test", "From: bob@local.test, ceo@bank.test\r\n", "550 5.7.1 From address").await;
    t.case(&mut bob, "bob@local.test", "From: bob@local.test\r\nFrom: ceo@bank.test\r\n", "550 5.7.1 From address")
        .await;
    t.case(
        &mut bob,
        "bob@local.test",
        "From: bob@local.test\r\nSender: ceo@bank.test\r\n",
        "550 5.7.1 Sender header address not owned by user bob@local.test",
    )
    .await;
    t.case(&mut bob, "", "From: news@example.org\r\n", "550 5.7.1 From address").await;

    // A login with [[senders]]: its domain (and subdomains) and its one other address.
    let mut app = logged_in(&d, "app@local.test").await;
    t.case(&mut app, "app@local.test", "From: app@local.test\r\n", "250 2.0.0").await;
    t.case(&mut app, "news@example.org", "From: Newsletter <news@example.org>\r\n", "250 2.0.0").await;
    t.case(&mut app, "x@mail.example.org", "From: x@Mail.Example.org\r\n", "250 2.0.0").await;
    t.case(&mut app, "alerts@other.test", "From: alerts@other.test\r\n", "250 2.0.0").await;
    t.case(&mut app, "ops@other.test", "From: ops@other.test\r\n", "553 5.7.1 <ops@other.test>").await;
    t.case(&mut app, "x@badexample.org", "From: x@badexample.org\r\n", "553 5.7.1").await;
    t.case(
        &mut app,
        "news@example.org",
        "From: bob@local.test\r\n",
        "550 5.7.1 From address not owned by user app@local.test",
    )
    .await;

    // An unauthenticated trusted-network client is no login: not checked.
    let mut relay = Client::connect_from(d.submission, "127.0.0.2".parse().unwrap()).await;
    relay.cmd("EHLO app-host.test").await.expect("250");
    t.case(&mut relay, "ceo@bank.test", "From: ceo@bank.test\r\n", "250 2.0.0").await;

    let queued = d.store().queue_list(100).await.unwrap();
    assert_eq!(queued.len(), t.accepted, "a refusal after DATA queues nothing");
    println!(
        "sender ownership: {} attempts, {} refused ({} at MAIL FROM, {} after DATA for From:/Sender:), {} accepted",
        t.attempts,
        t.at_mail + t.after_data,
        t.at_mail,
        t.after_data,
        t.accepted
    );
    assert_eq!((t.attempts, t.at_mail, t.after_data), (20, 6, 6));

    // The switch off: any sender, as before the check.
    let open = daemon(false).await;
    let mut bob = logged_in(&open, "bob@local.test").await;
    let mut off = Tally::default();
    off.case(&mut bob, "ceo@bank.test", "From: CEO <ceo@bank.test>\r\n", "250 2.0.0").await;
    off.case(&mut bob, "alice@local.test", "From: bob@local.test\r\nSender: ceo@bank.test\r\n", "250 2.0.0").await;
    println!("sender_login_match = false: {} attempts, {} refused", off.attempts, off.at_mail + off.after_data);
    assert_eq!(off.accepted, 2);
}
