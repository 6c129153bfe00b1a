//! DKIM: `mailerd dkim keygen` makes a key and the record; mail of the signing domain leaves
//! signed, and an independent verifier (mail-auth, asking a real DNS server that publishes
//! the record) says pass.

use std::process::Command;

use mail_auth::{AuthenticatedMessage, DkimResult};

use crate::harness::dns::TestDns;
use crate::harness::{Client, TestDaemon};

#[tokio::test]
async fn submitted_mail_is_signed_and_verifies_against_the_published_key() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("dkim.key");
    let out = Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .args(["dkim", "keygen", "--domain", "sender.test", "--selector", "s1", "--out", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let record_line =
        stdout.lines().find(|l| l.starts_with("s1._domainkey.sender.test. IN TXT")).expect("record printed");
    let record = record_line.split_once('"').unwrap().1.trim_end_matches('"').to_string();
    assert!(record.starts_with("v=DKIM1; k=rsa; p="));
    // TXT strings are at most 255 bytes: publish the record in chunks, as a zone file would.
    let chunks: Vec<String> = record.as_bytes().chunks(200).map(|c| String::from_utf8_lossy(c).to_string()).collect();
    let Some(dns) = TestDns::start(&[format!("--txt-record=s1._domainkey.sender.test,{}", chunks.join(","))]).await
    else {
        return;
    };

    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("alice@dest.test", "pw", None).await;
    let src = TestDaemon::with(&format!(
        "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[routes]\n\"dest.test\" = \"{}\"\n\
         [dkim]\ndomain = \"sender.test\"\nselector = \"s1\"\nkey = \"{}\"\n",
        dest.smtp,
        key.display()
    ))
    .await;
    let mut c = Client::connect(src.smtp).await;
    let body = "From: App <app@sender.test>\r\nTo: alice@dest.test\r\nSubject: signed\r\nDate: Sat, 28 Nov 2026 17:00:00 +0000\r\nMessage-ID: <s@sender.test>\r\n\r\nHello, signed world.\r\n\r\n";
    c.send_mail("app@sender.test", &["alice@dest.test"], body).await.expect("250");
    // Mail from another domain is not signed.
    c.cmd("RSET").await.expect("250");
    c.send_mail("x@other.test", &["alice@dest.test"], "From: x@other.test\r\nSubject: unsigned\r\n\r\nx\r\n")
        .await
        .expect("250");
    let files = dest.wait_maildir("dest.test", "alice", 2).await;
    let texts: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let signed = texts.iter().find(|t| String::from_utf8_lossy(t).contains("Subject: signed")).unwrap();
    let unsigned = texts.iter().find(|t| String::from_utf8_lossy(t).contains("Subject: unsigned")).unwrap();
    assert!(!String::from_utf8_lossy(unsigned).contains("DKIM-Signature"));
    assert!(String::from_utf8_lossy(signed).contains("DKIM-Signature: "));

    let verifier = dns.authenticator();
    let parsed = AuthenticatedMessage::parse(signed).expect("message parses");
    let results = verifier.verify_dkim(&parsed).await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].result(), &DkimResult::Pass, "{:?}", results[0]);
}
