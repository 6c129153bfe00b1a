//! Dovecot as the mailbox server: with `local.transport = "lmtp"`, mail sent to mailerd over
//! SMTP is handed to a real Dovecot over LMTP, with per-recipient outcomes in one transaction
//! (one user fine, one unknown to Dovecot, one over quota), and read back over IMAP with
//! Python's imaplib byte for byte; with the default transport, Dovecot serves mailerd's own
//! Maildirs (contrib/dovecot/mailerd-maildir.conf's layout) with mailerd's own argon2 logins,
//! and a message marked \Seen stays seen when mailerd delivers more; three nodes of a cluster
//! hand their local mail to one Dovecot.

use std::time::Duration;

use mailerd::store::{MessageId, RecipientState, RecipientView, Store};

use crate::harness::dovecot::{TestDovecot, User, imap_read};
use crate::harness::postgres::{TestSchema, url_or_skip};
use crate::harness::{Client, TestDaemon};

const BOB: User<'static> = User { address: "bob@local.test", password: "bob-secret", quota: None, hash: None };
const FULL_SMALL: User<'static> =
    User { address: "full@local.test", password: "full-secret", quota: Some(1024), hash: None };
const FULL_ROOMY: User<'static> = User { address: "full@local.test", password: "full-secret", quota: None, hash: None };

/// The recipients of `id` once each satisfies `done`.
async fn wait_until(d: &TestDaemon, id: &str, done: impl Fn(&RecipientView) -> bool) -> Vec<RecipientView> {
    let mut last = Vec::new();
    for _ in 0..600 {
        let m = d.store().message_detail(&MessageId(id.into())).await.unwrap().expect("message");
        if m.entry.recipients.iter().all(&done) {
            return m.entry.recipients;
        }
        last = m.entry.recipients;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("recipients of {id} did not get there: {last:#?}");
}

fn rcpt<'a>(rs: &'a [RecipientView], address: &str) -> &'a RecipientView {
    rs.iter().find(|r| r.address == address).unwrap_or_else(|| panic!("{address} in {rs:#?}"))
}

/// Sends one message over SMTP and returns its queue id.
async fn send(d: &TestDaemon, rcpts: &[&str], message: &[u8]) -> String {
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd("MAIL FROM:<alice@sender.test> BODY=8BITMIME").await.expect("250");
    for r in rcpts {
        c.cmd(&format!("RCPT TO:<{r}>")).await.expect("250");
    }
    c.cmd("DATA").await.expect("354");
    // Dot-stuffed on the SMTP wire, as every client does.
    let mut stuffed = Vec::new();
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            stuffed.push(b'.');
        }
        stuffed.extend_from_slice(line);
    }
    c.send_raw(&stuffed).await;
    let r = c.cmd(".").await;
    r.expect("250");
    r.queue_id()
}

/// Lines of Dovecot's log that contain both `a` and `b`.
fn count(log: &str, a: &str, b: &str) -> usize {
    log.lines().filter(|l| l.contains(a) && l.contains(b)).count()
}

#[tokio::test]
async fn lmtp_hands_mail_to_dovecot_and_imap_reads_it_back() {
    let Some(dovecot) = TestDovecot::start(&[BOB, FULL_SMALL]).await else { return };
    let d = TestDaemon::with(&format!(
        "[local]\ntransport = \"lmtp\"\nlmtp = \"{}\"\n[retry]\nfirst = 1\nmax_interval = 1\n[outbound]\nidle_timeout = 120",
        dovecot.lmtp
    ))
    .await;
    // mailerd knows all three (it accepts at RCPT), Dovecot only bob and full.
    for user in ["bob@local.test", "ghost@local.test", "full@local.test"] {
        d.add_user(user, "pw", None).await;
    }
    // Over 1 KiB (full's quota), 8-bit, with lines that begin with a dot.
    let mut text = "Grüße aus dem Test.\r\n.a line that begins with a dot\r\n..two dots\r\n.\r\n".as_bytes().to_vec();
    for i in 0..30 {
        text.extend_from_slice(format!("line {i:02}: the quick brown fox jumps over the lazy dog\r\n").as_bytes());
    }
    let message =
        [b"From: alice@sender.test\r\nTo: bob@local.test\r\nSubject: via LMTP\r\n\r\n".as_slice(), &text].concat();
    let id = send(&d, &["bob@local.test", "ghost@local.test", "full@local.test"], &message).await;

    let rs = wait_until(&d, &id, |r| r.attempts > 0).await;
    let (bob, ghost, full) = (rcpt(&rs, "bob@local.test"), rcpt(&rs, "ghost@local.test"), rcpt(&rs, "full@local.test"));
    assert_eq!((bob.state, bob.last_status.as_deref()), (RecipientState::Delivered, Some("2.0.0")), "{bob:#?}");
    assert_eq!(bob.remote_mta.as_deref(), Some(dovecot.lmtp.to_string().as_str()));
    assert!(bob.last_detail.as_deref().unwrap_or("").contains("Saved"), "{bob:#?}");
    assert_eq!((ghost.state, ghost.last_status.as_deref()), (RecipientState::Bounced, Some("5.1.1")), "{ghost:#?}");
    assert!(ghost.last_detail.as_deref().unwrap_or("").contains("doesn't exist"), "{ghost:#?}");
    assert_eq!((full.state, full.last_status.as_deref()), (RecipientState::Deferred, Some("5.2.2")), "{full:#?}");
    assert!(full.last_detail.as_deref().unwrap_or("").contains("552"), "{full:#?}");
    // The outcomes are the message's events, as with SMTP delivery.
    let events = d.store().message_detail(&MessageId(id.clone())).await.unwrap().expect("message").events;
    assert!(
        events
            .iter()
            .any(|e| e.recipient.as_deref() == Some("ghost@local.test") && e.status.as_deref() == Some("5.1.1")),
        "{events:#?}"
    );

    // A real IMAP client reads bob's message: the body byte for byte (Dovecot adds its own
    // trace headers above ours, as every final delivery does).
    let read = imap_read(dovecot.imap, BOB.address, BOB.password, true).await;
    assert_eq!(read.len(), 1);
    assert_eq!(String::from_utf8_lossy(&read[0].text), String::from_utf8_lossy(&text));
    assert_eq!(read[0].text, text);
    assert!(!read[0].flags.iter().any(|f| f == "\\Seen"), "PEEK leaves it unseen: {:?}", read[0].flags);
    // Stored in the Maildir layout mailerd uses itself (mail/<domain>/<local part>).
    let files = |sub: &str| std::fs::read_dir(dovecot.maildir("local.test", "bob").join(sub)).map_or(0, |d| d.count());
    assert_eq!(files("new") + files("cur"), 1);

    // More mail for bob, over the same LMTP connection: the first message stays \Seen.
    let second = send(&d, &["bob@local.test"], b"Subject: second\r\n\r\nsecond body\r\n").await;
    wait_until(&d, &second, |r| r.state == RecipientState::Delivered).await;
    let read = imap_read(dovecot.imap, BOB.address, BOB.password, false).await;
    assert_eq!(read.len(), 2);
    assert!(read[0].flags.iter().any(|f| f == "\\Seen"), "{:?}", read[0].flags);
    assert!(!read[1].flags.iter().any(|f| f == "\\Seen"), "{:?}", read[1].flags);
    assert_eq!(read[1].text, b"second body\r\n");

    // Room made in full's mailbox: the deferred recipient is retried and delivered.
    dovecot.set_users(&[BOB, FULL_ROOMY]);
    let rs = wait_until(&d, &id, |r| r.address != "full@local.test" || r.state == RecipientState::Delivered).await;
    assert!(rcpt(&rs, "full@local.test").attempts >= 2);
    let read = imap_read(dovecot.imap, FULL_ROOMY.address, FULL_ROOMY.password, false).await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].text, text);

    // ghost's bounce is reported to the sender: a DSN from the null sender to alice.
    let mut dsn = false;
    for _ in 0..400 {
        let queue = d.store().queue_list(100).await.unwrap();
        dsn = queue
            .iter()
            .any(|m| m.reverse_path.is_empty() && m.recipients.iter().any(|r| r.address == "alice@sender.test"));
        if dsn {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(dsn, "no DSN to alice@sender.test");

    // Every transaction went over one kept LMTP connection (checked with RSET before reuse);
    // the harness's readiness probe is the other one, closed before its greeting was answered.
    let log = dovecot.log();
    let probes = count(&log, "lmtp(", "state=GREETING");
    assert_eq!(count(&log, "lmtp(", "Connect from") - probes, 1, "{log}");
    assert!(count(&log, "lmtp(full@local.test)", "saved mail to INBOX") == 1, "{log}");
}

#[tokio::test]
async fn dovecot_serves_mailerds_own_maildirs_with_mailerds_logins() {
    let d = TestDaemon::start().await;
    d.add_user("bob@local.test", "bob-secret", None).await;
    // One login for SMTP and IMAP: the argon2id hash mailerd stored, in Dovecot's passwd-file.
    let hash = d.store().mailbox("bob@local.test").await.unwrap().and_then(|m| m.password_hash).expect("hash");
    let scheme = format!("{{ARGON2ID}}{hash}");
    let bob = User { address: "bob@local.test", password: "bob-secret", quota: None, hash: Some(&scheme) };
    let mail_root = d.dir.path().join("mail");
    let Some(dovecot) = TestDovecot::start_on(&[bob], Some(&mail_root)).await else { return };

    let text = "Grüße.\r\n.a dot line\r\nthe end\r\n".as_bytes().to_vec();
    let first = [b"Subject: first\r\n\r\n".as_slice(), &text].concat();
    send(&d, &["bob@local.test"], &first).await;
    d.wait_maildir("local.test", "bob", 1).await;
    dovecot.hand_over(&mail_root);
    let read = imap_read(dovecot.imap, "bob@local.test", "bob-secret", true).await;
    assert_eq!(read.len(), 1, "{}", dovecot.log());
    assert_eq!(read[0].text, text);

    // mailerd delivers more into new/; the message Dovecot moved to cur/ and marked stays seen.
    send(&d, &["bob@local.test"], b"Subject: second\r\n\r\nsecond\r\n").await;
    d.wait_maildir("local.test", "bob", 1).await;
    dovecot.hand_over(&mail_root);
    let read = imap_read(dovecot.imap, "bob@local.test", "bob-secret", false).await;
    assert_eq!(read.len(), 2);
    assert!(read[0].flags.iter().any(|f| f == "\\Seen"), "{:?}", read[0].flags);
    assert!(!read[1].flags.iter().any(|f| f == "\\Seen"), "{:?}", read[1].flags);
    assert_eq!(read[1].text, b"second\r\n");

    // A wrong password is refused (imaplib raises, python exits non-zero).
    let wrong = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", "import imaplib,sys; m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login('bob@local.test', 'wrong')"])
            .args([dovecot.imap.ip().to_string(), dovecot.imap.port().to_string()])
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("AUTHENTICATIONFAILED"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}

/// Cluster mode: three nodes on one PostgreSQL hand their local mail to the same Dovecot, so a
/// user's mail ends up in one mailbox whichever node received it, and none stays on a node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_hand_local_mail_to_one_dovecot() {
    let Some(admin) = url_or_skip("dovecot::three_nodes_hand_local_mail_to_one_dovecot") else { return };
    let Some(dovecot) = TestDovecot::start(&[BOB]).await else { return };
    let schema = TestSchema::create(&admin, "dovecot_cluster").await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let config =
            format!("[store]\nurl = \"{}\"\n[local]\ntransport = \"lmtp\"\nlmtp = \"{}\"", schema.url, dovecot.lmtp);
        nodes.push(TestDaemon::with(&config).await);
    }
    let store = mailerd::store::postgres::PgStore::connect(&schema.url).await.expect("PostgreSQL");
    let hash = mailerd::inbound::auth::hash_password("pw").expect("hash");
    store.upsert_mailbox("bob@local.test", Some(hash), None).await.expect("add bob");
    let mut ids = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        ids.push(send(node, &["bob@local.test"], format!("Subject: {i}\r\n\r\nfrom node {i}\r\n").as_bytes()).await);
    }
    for id in &ids {
        let mut state = None;
        for _ in 0..400 {
            let m = store.message_detail(&MessageId(id.clone())).await.unwrap().expect("message");
            state = Some(m.entry.recipients[0].state);
            if state == Some(RecipientState::Delivered) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(state, Some(RecipientState::Delivered), "{id}");
    }
    let read = imap_read(dovecot.imap, BOB.address, BOB.password, false).await;
    let mut texts: Vec<String> = read.iter().map(|f| String::from_utf8_lossy(&f.text).into_owned()).collect();
    texts.sort();
    assert_eq!(texts, ["from node 0\r\n", "from node 1\r\n", "from node 2\r\n"]);
    for node in &nodes {
        assert!(node.maildir_files("local.test", "bob").is_empty(), "a node kept mail in its own Maildir");
    }
    for node in nodes {
        node.shutdown().await;
    }
}
