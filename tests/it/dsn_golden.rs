//! Golden DSNs: each main bounce reason is produced end to end (a sender daemon on loopback
//! relays to a scripted peer, a closed port or a name dnsmasq says does not exist) and the DSN
//! that lands in the sender's Maildir is compared byte for byte with
//! `tests/data/dsn/<reason>.eml`, after `mask` replaced what varies between runs (dates, queue
//! ids and the MIME boundary built from one, ports, attempt counts).
//! `MAILERD_BLESS=1 cargo test --test it dsn_golden` rewrites the files from the current code.
//! Must not: compare anything unmasked that a second run would change.

use std::net::SocketAddr;
use std::path::PathBuf;

use regex::Regex;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::harness::dns::TestDns;
use crate::harness::{Client, TestDaemon};

/// Replaces everything that differs between two runs with a fixed placeholder.
fn mask(dsn: &str) -> String {
    let rules = [
        // RFC 5322 dates (the human part may wrap one over two lines).
        (r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s+\d{2}\s+[A-Z][a-z]{2}\s+\d{4}\s+\d{2}:\d{2}:\d{2}\s+\+0000", "DATE"),
        // Queue ids, and the DSN's own id in its Message-ID and MIME boundary.
        (r"\b[0-9A-F]{20}\b", "QUEUEID"),
        (r"127\.0\.0\.1\]?:\d{2,5}\b", "127.0.0.1:PORT"),
        (r"gave up after \d+ attempts", "gave up after N attempts"),
    ];
    let mut out = dsn.to_string();
    for (pattern, placeholder) in rules {
        out = Regex::new(pattern).unwrap().replace_all(&out, placeholder).into_owned();
    }
    out
}

fn golden_path(reason: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/dsn").join(format!("{reason}.eml"))
}

/// Compares the masked DSN with its golden file, or rewrites the file under MAILERD_BLESS=1.
fn check(reason: &str, raw: &[u8]) {
    let got = mask(&String::from_utf8_lossy(raw));
    let path = golden_path(reason);
    if std::env::var_os("MAILERD_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (MAILERD_BLESS=1 writes it)", path.display()));
    assert!(got == want, "{reason}: the DSN differs from {}\n--- got ---\n{got}\n--- want ---\n{want}", path.display());
}

/// What a scripted peer answers.
#[derive(Clone, Copy)]
struct Script {
    /// EHLO extensions after the greeting line.
    size: Option<u64>,
    rcpt: &'static str,
    /// The reply after the message's final dot.
    data: &'static str,
}

/// A peer on loopback that answers every transaction the same way.
async fn peer(script: Script) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 peer.test ESMTP\r\n").await;
                let mut accepted = 0;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply = match verb.as_str() {
                        "EHLO" => match script.size {
                            Some(n) => format!("250-peer.test\r\n250 SIZE {n}\r\n"),
                            None => "250-peer.test\r\n250 8BITMIME\r\n".into(),
                        },
                        "HELO" => "250 peer.test\r\n".into(),
                        "MAIL" => {
                            accepted = 0;
                            "250 2.1.0 Ok\r\n".into()
                        }
                        "RCPT" => {
                            if script.rcpt.starts_with('2') {
                                accepted += 1;
                            }
                            format!("{}\r\n", script.rcpt)
                        }
                        "DATA" if accepted == 0 => "554 5.5.1 Error: no valid recipients\r\n".into(),
                        "DATA" => {
                            let _ = w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await;
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                            }
                            format!("{}\r\n", script.data)
                        }
                        "QUIT" => {
                            let _ = w.write_all(b"221 2.0.0 Bye\r\n").await;
                            return;
                        }
                        _ => "250 2.0.0 Ok\r\n".into(),
                    };
                    if w.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A loopback port nothing listens on.
fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

const MESSAGE: &str = "From: App <app@sender.test>\r\nTo: <user@dest.test>\r\nSubject: Golden\r\n\
Message-ID: <golden@sender.test>\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\nHello.\r\n";

/// Starts a sender with `sections` (merged into its config), relays MESSAGE to `rcpt` and
/// returns the first DSN that reaches app@sender.test.
async fn dsn_for(sections: &str, rcpt: &str) -> Vec<u8> {
    let src = TestDaemon::with(&format!(
        "[local]\ndomains = [\"sender.test\"]\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n{sections}"
    ))
    .await;
    src.add_user("app@sender.test", "pw", None).await;
    let mut c = Client::connect(src.smtp).await;
    c.send_mail("app@sender.test", &[rcpt], MESSAGE).await.expect("250");
    let files = src.wait_maildir("sender.test", "app", 1).await;
    std::fs::read(&files[0]).unwrap()
}

async fn via_peer(script: Script, extra: &str) -> Vec<u8> {
    let addr = peer(script).await;
    dsn_for(&format!("{extra}[routes]\n\"dest.test\" = \"{addr}\"\n"), "user@dest.test").await
}

#[tokio::test]
async fn userunknown() {
    let script = Script { size: None, rcpt: "550 5.1.1 <user@dest.test>: user unknown", data: "250 2.0.0 Ok" };
    check("userunknown", &via_peer(script, "").await);
}

#[tokio::test]
async fn mailboxfull() {
    let script = Script { size: None, rcpt: "552 5.2.2 <user@dest.test>: mailbox full", data: "250 2.0.0 Ok" };
    check("mailboxfull", &via_peer(script, "").await);
}

#[tokio::test]
async fn mesgtoolarge() {
    // The peer's SIZE is below the message: our client gives up before MAIL.
    let script = Script { size: Some(100), rcpt: "250 2.1.5 Ok", data: "250 2.0.0 Ok" };
    check("mesgtoolarge", &via_peer(script, "").await);
}

#[tokio::test]
async fn mesgtoolarge_after_data() {
    let script =
        Script { size: None, rcpt: "250 2.1.5 Ok", data: "552 5.3.4 message size exceeds fixed maximum message size" };
    check("mesgtoolarge_after_data", &via_peer(script, "").await);
}

#[tokio::test]
async fn spamdetected() {
    let script = Script { size: None, rcpt: "250 2.1.5 Ok", data: "554 5.7.1 Message rejected: spam detected" };
    check("spamdetected", &via_peer(script, "").await);
}

#[tokio::test]
async fn expired() {
    // 4xx at every attempt until retry.max_age.
    let script = Script { size: None, rcpt: "451 4.3.0 <user@dest.test>: try again later", data: "250 2.0.0 Ok" };
    check("expired", &via_peer(script, "[retry]\nfirst = 1\nmax_age = 2\n").await);
}

#[tokio::test]
async fn expired_connect() {
    // Nobody answers at all until retry.max_age.
    let sections = format!("[retry]\nfirst = 1\nmax_age = 2\n[routes]\n\"dest.test\" = \"{}\"\n", closed_port());
    check("expired_connect", &dsn_for(&sections, "user@dest.test").await);
}

#[tokio::test]
async fn delayed() {
    // After bounce.delay_warning the sender hears that its mail still waits.
    let script = Script { size: None, rcpt: "451 4.3.0 <user@dest.test>: try again later", data: "250 2.0.0 Ok" };
    check("delayed", &via_peer(script, "[retry]\nfirst = 1\n[bounce]\ndelay_warning = 1\n").await);
}

/// NXDOMAIN and null MX need a DNS server of the test's own.
async fn via_dns(test: &str, rcpt: &str) -> Option<Vec<u8>> {
    let dns = TestDns::start(&["--mx-host=nullmx.test,.,0".into()]).await;
    let Some(dns) = dns else {
        eprintln!("SKIP dsn_golden::{test}: needs dnsmasq");
        return None;
    };
    Some(dsn_for(&format!("[dns]\nnameservers = [\"{}\"]\n", dns.addr), rcpt).await)
}

#[tokio::test]
async fn hostunknown() {
    if let Some(raw) = via_dns("hostunknown", "user@nowhere.test").await {
        check("hostunknown", &raw);
    }
}

#[tokio::test]
async fn hostunknown_null_mx() {
    if let Some(raw) = via_dns("hostunknown_null_mx", "user@nullmx.test").await {
        check("hostunknown_null_mx", &raw);
    }
}
