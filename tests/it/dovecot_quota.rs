//! One source of truth for quota: with mailerd's own Maildirs, usage is the Maildir++
//! `maildirsize` file that Dovecot's quota plugin (`quota = maildir`) keeps too. Mail mailerd
//! delivers counts toward Dovecot's quota as IMAP GETQUOTAROOT reports it, mailerd's RCPT check
//! refuses with 552 5.2.2 what would not fit, and a message deleted over IMAP (Python's imaplib,
//! against a real private Dovecot) frees the space for that check at once.
//!
//! Must not: use any address outside 127.0.0.0/8.

use std::net::SocketAddr;
use std::process::Command;

use mailerd::store::Store;

use crate::harness::dovecot::{TestDovecot, User};
use crate::harness::{Client, TestDaemon};

const QUOTA: u64 = 100_000;
const PASSWORD: &str = "bob-secret";

/// GETQUOTAROOT INBOX over IMAP: (used, limit) of STORAGE in KiB, rounded up as Dovecot does; with `expunge`, the first
/// message is deleted (\Deleted, EXPUNGE) before.
async fn quota_over_imap(imap: SocketAddr, expunge: bool) -> (u64, u64) {
    const SCRIPT: &str = r#"
import imaplib, re, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
m.select('INBOX')
if sys.argv[5] == 'expunge':
    m.store('1', '+FLAGS', '\\Deleted')
    m.expunge()
typ, data = m.getquotaroot('INBOX')
text = b' '.join(x if isinstance(x, bytes) else b' '.join(x) for x in data).decode()
used, limit = re.search(r'STORAGE (\d+) (\d+)', text).groups()
print(used, limit)
m.logout()
"#;
    let args = [
        imap.ip().to_string(),
        imap.port().to_string(),
        "bob@local.test".into(),
        PASSWORD.into(),
        if expunge { "expunge" } else { "-" }.into(),
    ];
    let out = tokio::task::spawn_blocking(move || Command::new("python3").args(["-c", SCRIPT]).args(args).output())
        .await
        .unwrap()
        .expect("python3");
    assert!(out.status.success(), "imaplib: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut numbers = text.split_whitespace().map(|n| n.parse::<u64>().expect("a number"));
    (numbers.next().expect("used"), numbers.next().expect("limit"))
}

/// The reply to RCPT for bob in a transaction that declares `size`.
async fn rcpt_with_size(d: &TestDaemon, size: u64) -> String {
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd(&format!("MAIL FROM:<alice@sender.test> SIZE={size}")).await.expect("250");
    let r = c.cmd("RCPT TO:<bob@local.test>").await.first();
    c.cmd("QUIT").await;
    r
}

fn message(n: usize) -> Vec<u8> {
    let mut m = format!("From: alice@sender.test\r\nSubject: number {n}\r\n\r\n").into_bytes();
    while m.len() < 40_000 {
        m.extend_from_slice(format!("message {n}, filling the mailbox with a line of text\r\n").as_bytes());
    }
    m
}

#[tokio::test]
async fn mailerd_and_dovecot_count_one_quota() {
    let d = TestDaemon::start().await;
    d.add_user("bob@local.test", PASSWORD, Some(QUOTA)).await;
    let hash = d.store().mailbox("bob@local.test").await.unwrap().and_then(|m| m.password_hash).unwrap();
    let scheme = format!("{{ARGON2ID}}{hash}");
    let bob = User { address: "bob@local.test", password: PASSWORD, quota: Some(QUOTA), hash: Some(&scheme) };
    let mail_root = d.dir.path().join("mail");
    let Some(dovecot) = TestDovecot::start_on(&[bob], Some(&mail_root)).await else { return };
    let maildir = mail_root.join("local.test/bob");

    let (first, second) = (message(1), message(2));
    let mut c = Client::connect(d.smtp).await;
    c.send_mail("alice@sender.test", &["bob@local.test"], std::str::from_utf8(&first).unwrap()).await.expect("250");
    d.wait_maildir("local.test", "bob", 1).await;
    // The next RCPT counts the Maildir (there was no maildirsize yet) and writes the file.
    assert!(rcpt_with_size(&d, 1000).await.starts_with("250"));
    let text = std::fs::read_to_string(maildir.join("maildirsize")).expect("maildirsize written");
    assert!(text.starts_with(&format!("{QUOTA}S\n")), "{text}");
    // The second delivery is one appended line.
    c.send_mail("alice@sender.test", &["bob@local.test"], std::str::from_utf8(&second).unwrap()).await.expect("250");
    d.wait_maildir("local.test", "bob", 2).await;
    let files = d.maildir_files("local.test", "bob");
    let on_disk: u64 = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(maildir.join("maildirsize")).unwrap();
        if text.lines().count() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut sizes: Vec<u64> = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).collect();
    sizes.sort();
    let mut counted: Vec<u64> =
        text.lines().skip(1).map(|l| l.strip_suffix(" 1").expect("one message a line").parse().unwrap()).collect();
    counted.sort();
    assert_eq!(counted, sizes, "{text}");
    // The message Dovecot will expunge first is the first one delivered.
    let first_size = first.len() as u64 + "Return-Path: <alice@sender.test>\r\n".len() as u64;
    let kept = on_disk - first_size;
    c.cmd("QUIT").await;

    // Dovecot counts what mailerd delivered: GETQUOTAROOT reports it (KiB), against the same limit.
    dovecot.hand_over(&mail_root);
    assert_eq!(
        quota_over_imap(dovecot.imap, false).await,
        (on_disk.div_ceil(1024), QUOTA.div_ceil(1024)),
        "{}",
        dovecot.log()
    );

    // Another 40 kB would not fit: mailerd refuses it at RCPT.
    assert_eq!(rcpt_with_size(&d, 40_000).await, "552 5.2.2 <bob@local.test>: mailbox full");

    // Deleted over IMAP: Dovecot writes the freed space into maildirsize, and mailerd takes the
    // same message size again.
    let after = quota_over_imap(dovecot.imap, true).await;
    assert_eq!(after, (kept.div_ceil(1024), QUOTA.div_ceil(1024)), "{}", dovecot.log());
    let text = std::fs::read_to_string(maildir.join("maildirsize")).unwrap();
    assert!(text.lines().any(|l| l.starts_with('-')), "Dovecot's negative line: {text}");
    assert!(rcpt_with_size(&d, 40_000).await.starts_with("250"));
}

/// The cost of reading the quota file at RCPT: 500 MAIL/RCPT/RSET rounds to a local mailbox
/// whose Maildir holds a message, with our Maildirs (maildirsize read every time) and with LMTP
/// (no usage read); the rates are printed, and every RCPT must be accepted.
#[tokio::test]
async fn rcpt_rate_with_the_quota_file() {
    const ROUNDS: usize = 500;
    let mut rates = Vec::new();
    for transport in ["transport = \"maildir\"", "transport = \"lmtp\"\nlmtp = \"127.0.0.1:9\""] {
        let d = TestDaemon::with(&format!(
            "[local]\n{transport}\n[queue]\nhold = true\n[limits]\njunk_command_limit = 100000"
        ))
        .await;
        d.add_user("bob@local.test", PASSWORD, Some(QUOTA)).await;
        let maildir = d.dir.path().join("mail/local.test/bob");
        std::fs::create_dir_all(maildir.join("new")).unwrap();
        std::fs::write(maildir.join("new/1.M1P1.host,S=5000"), vec![b'x'; 5000]).unwrap();
        let mut c = Client::connect(d.smtp).await;
        c.cmd("EHLO client.test").await.expect("250");
        let started = std::time::Instant::now();
        for _ in 0..ROUNDS {
            c.cmd("MAIL FROM:<alice@sender.test> SIZE=1000").await.expect("250");
            c.cmd("RCPT TO:<bob@local.test>").await.expect("250");
            c.cmd("RSET").await.expect("250");
        }
        rates.push(ROUNDS as f64 / started.elapsed().as_secs_f64());
        if transport.contains("maildir") {
            let text = std::fs::read_to_string(maildir.join("maildirsize")).unwrap();
            assert_eq!(text, format!("{QUOTA}S\n5000 1\n"), "counted once, then read");
        }
    }
    eprintln!(
        "MAIL/RCPT/RSET rounds to a local mailbox: {:.0}/s reading maildirsize, {:.0}/s without (LMTP)",
        rates[0], rates[1]
    );
}
