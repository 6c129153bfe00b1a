//! One-click unsubscribe (RFC 8058, RFC 2369) end to end over loopback: mail sent through the
//! API (and by a `bulk` SMTP login) arrives at a second mailerd with `List-Unsubscribe` and
//! `List-Unsubscribe-Post`, both covered by a DKIM signature that mail-auth verifies against a
//! key published by dnsmasq; curl's POST to the link suppresses the recipient for that sender
//! domain only (the next send from it is refused at RCPT, another domain's is not), a GET only
//! shows the confirmation page, tampered tokens are refused and change nothing; mail to the
//! mailto address does the same through the SMTP listener.
//!
//! Must not: use any address outside 127.0.0.0/8.

use std::process::Command;
use std::time::Duration;

use mail_auth::{AuthenticatedMessage, DkimResult};
use mailerd::smtp::address::Domain;
use mailerd::store::{Scope, Store};
use serde_json::json;

use crate::harness::dns::TestDns;
use crate::harness::http::{get, post_json};
use crate::harness::smtp::plain;
use crate::harness::{Client, TestDaemon};

/// The value of a header field (unfolded) of a raw message.
fn field(message: &str, name: &str) -> Option<String> {
    let head = message.split("\r\n\r\n").next()?;
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        match (&mut value, line.starts_with([' ', '\t'])) {
            (Some(v), true) => v.push_str(line),
            (Some(_), false) => break,
            (None, false) => {
                if let Some((n, v)) = line.split_once(':')
                    && n.eq_ignore_ascii_case(name)
                {
                    value = Some(v.trim().to_string());
                }
            }
            (None, true) => {}
        }
    }
    value
}

/// The https link and the mailto address of a List-Unsubscribe value.
fn uris(list_unsubscribe: &str) -> (String, String) {
    let parts: Vec<&str> = list_unsubscribe.split(',').map(|p| p.trim().trim_matches(['<', '>'])).collect();
    let link = parts.iter().find(|p| p.starts_with("https://")).expect("https link").to_string();
    let mailto =
        parts.iter().find(|p| p.starts_with("mailto:")).expect("mailto").trim_start_matches("mailto:").to_string();
    (link, mailto)
}

/// Runs curl off the runtime's thread (the daemon answers on it).
async fn curl(args: &[&str]) -> (u16, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || curl_blocking(&args)).await.unwrap()
}

fn curl_blocking(args: &[String]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--noproxy", "*", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

async fn verify_dkim(dns: &TestDns, message: &[u8]) -> Vec<DkimResult> {
    let verifier = dns.authenticator();
    let parsed = AuthenticatedMessage::parse(message).expect("message parses");
    verifier.verify_dkim(&parsed).await.into_iter().map(|r| r.result().clone()).collect()
}

/// Waits until the store has an entry that refuses `address` for mail from `sender`.
async fn wait_suppressed(store: &dyn Store, address: &str, sender: &str) -> mailerd::store::Suppression {
    let domain = Domain::parse(sender).unwrap();
    for _ in 0..100 {
        if let Some(s) = store.suppression_for(address, Some(&domain)).await.unwrap() {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{address} never suppressed for {sender}");
}

#[tokio::test]
async fn one_click_post_unsubscribes_from_that_sender_domain_only() {
    // tools.rs names curl when it is missing (and fails under CI).
    if Command::new("curl").arg("--version").output().is_err() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let (key, record) = crate::harness::dns::dkim_key(keys.path());
    let Some(dns) = TestDns::start(&[record]).await else { return };
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("alice@dest.test", "pw", None).await;
    let src = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[local]\ndomains = [\"sender.test\", \"other.test\"]\n\
         [relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n\
         [routes]\n\"dest.test\" = \"{}\"\n\
         [dkim]\ndomain = \"sender.test\"\nselector = \"s1\"\nkey = \"{}\"\n\
         [unsubscribe]\nurl = \"https://mail.sender.test\"\n",
        dest.smtp,
        key.display()
    ))
    .await;
    let api = src.http.expect("http listener");
    let store = src.store();
    let (admin, k) = mailerd::http::auth::generate("ops", Scope::All).unwrap();
    store.create_api_key(k).await.unwrap();

    let r = post_json(
        api,
        "/api/v1/messages",
        Some(&admin),
        &json!({"from": "News <news@sender.test>", "to": ["alice@dest.test"], "subject": "Weekly news", "text": "Hello."}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    let files = dest.wait_maildir("dest.test", "alice", 1).await;
    let raw = std::fs::read(&files[0]).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();

    // The headers are there, in RFC 8058's form, and DKIM covers them.
    let list = field(&text, "List-Unsubscribe").expect("List-Unsubscribe");
    assert_eq!(field(&text, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    let (link, mailto) = uris(&list);
    assert!(link.starts_with("https://mail.sender.test/u/"), "{link}");
    assert!(mailto.starts_with("unsubscribe+") && mailto.ends_with("@mx.local.test"), "{mailto}");
    assert!(mailto.split('@').next().unwrap().len() <= 64, "local part within RFC 5321's limit: {mailto}");
    let signature = field(&text, "DKIM-Signature").expect("signed");
    let signed: String = signature.split("h=").nth(1).unwrap().split(';').next().unwrap().to_ascii_lowercase();
    assert!(signed.contains("list-unsubscribe") && signed.contains("list-unsubscribe-post"), "h={signed}");
    assert_eq!(verify_dkim(&dns, &raw).await, vec![DkimResult::Pass]);
    // The fields cannot be swapped without breaking the signature.
    let forged =
        text.replacen("List-Unsubscribe: <https://mail.sender.test/u/", "List-Unsubscribe: <https://evil.test/u/", 1);
    assert_ne!(verify_dkim(&dns, forged.as_bytes()).await, vec![DkimResult::Pass]);

    let path = link.trim_start_matches("https://mail.sender.test");
    let url = format!("http://{api}{path}");
    // A tampered token: refused, nothing recorded (each of a few positions).
    let token = path.trim_start_matches("/u/");
    for i in [0, token.len() / 2, token.len() - 1] {
        let mut b = token.as_bytes().to_vec();
        b[i] = if b[i] == b'a' { b'b' } else { b'a' };
        let bad = format!("http://{api}/u/{}", String::from_utf8(b).unwrap());
        let (code, body) = curl(&["-X", "POST", "-d", "List-Unsubscribe=One-Click", &bad]).await;
        assert_eq!(code, 400, "{body}");
    }
    assert!(store.suppression("alice@dest.test").await.unwrap().is_none(), "a bad token changes nothing");

    // GET shows the confirmation page and changes nothing (link scanners fetch URLs).
    let (code, page) = curl(&[&url]).await;
    assert_eq!(code, 200);
    assert!(page.contains("<button") && page.contains("sender.test") && page.contains("alice@dest.test"), "{page}");
    assert!(store.suppression("alice@dest.test").await.unwrap().is_none(), "GET does not unsubscribe");

    // The one-click POST, as a mailbox provider sends it: 200, no login, no redirect.
    let (code, body) = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        "-d",
        "List-Unsubscribe=One-Click",
        &url,
    ])
    .await;
    assert_eq!(code, 200, "{body}");
    let s = store.suppression("alice@dest.test").await.unwrap().expect("suppressed");
    assert_eq!(s.reason, "unsubscribed");
    assert_eq!(s.scope, mailerd::store::SuppressionScope::SenderDomain);
    assert_eq!(s.domain.as_ref().map(|d| d.as_str()), Some("sender.test"));
    // A second click changes nothing and still answers 200.
    let (code, _) = curl(&["-X", "POST", "-d", "List-Unsubscribe=One-Click", &url]).await;
    assert_eq!(code, 200);

    // One `unsubscribed` event of the message (webhooks read the same stream).
    let events = get(api, "/api/v1/events?since=0&type=unsubscribed", Some(&admin)).await;
    let list = events.json["events"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", events.text);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["recipient"], "alice@dest.test");

    // Honoured at the next RCPT, for that sender domain only.
    let mut c = Client::connect(src.smtp).await;
    c.cmd("EHLO app.test").await.expect("250");
    c.cmd("MAIL FROM:<news@sender.test>").await.expect("250");
    let refused = c.cmd("RCPT TO:<alice@dest.test>").await;
    assert_eq!(refused.code, 550, "{refused:?}");
    assert!(format!("{refused:?}").contains("unsubscribed from this sender's mail"), "{refused:?}");
    c.cmd("RSET").await.expect("250");
    c.cmd("MAIL FROM:<shop@other.test>").await.expect("250");
    c.cmd("RCPT TO:<alice@dest.test>").await.expect("250");
    c.cmd("RSET").await.expect("250");
    let again = post_json(
        api,
        "/api/v1/messages",
        Some(&admin),
        &json!({"from": "news@sender.test", "to": ["alice@dest.test"], "subject": "Again", "text": "x"}),
    )
    .await;
    assert_eq!(again.json["recipients"][0]["reason"], "suppressed", "{}", again.text);
    let other = post_json(
        api,
        "/api/v1/messages",
        Some(&admin),
        &json!({"from": "shop@other.test", "to": ["alice@dest.test"], "subject": "Shop", "text": "x"}),
    )
    .await;
    assert_eq!(other.status, 202, "{}", other.text);
    // An app that manages its own list keeps its own URI.
    let own = post_json(
        api,
        "/api/v1/messages",
        Some(&admin),
        &json!({"from": "shop@other.test", "to": ["alice@dest.test"], "subject": "Own", "text": "x",
                "headers": {"List-Unsubscribe": "<https://app.other.test/unsub/1>"}}),
    )
    .await;
    assert_eq!(own.status, 202, "{}", own.text);
    let files = dest.wait_maildir("dest.test", "alice", 3).await;
    let own = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).find(|t| t.contains("Subject: Own")).unwrap();
    assert_eq!(field(&own, "List-Unsubscribe").as_deref(), Some("<https://app.other.test/unsub/1>"));
    assert!(field(&own, "List-Unsubscribe-Post").is_none());
}

#[tokio::test]
async fn mailto_unsubscribe_through_the_smtp_listener_and_bulk_logins() {
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("bob@dest.test", "pw", None).await;
    let src = TestDaemon::with(&format!(
        "[local]\ndomains = [\"sender.test\"]\n[routes]\n\"dest.test\" = \"{}\"\n\
         [unsubscribe]\nbulk_logins = [\"news@sender.test\"]\n",
        dest.smtp
    ))
    .await;
    src.add_user("news@sender.test", "pw", None).await;
    src.add_user("clerk@sender.test", "pw", None).await;
    let submit = |user: &'static str, subject: &'static str| {
        let src = &src;
        async move {
            let mut c = Client::connect(src.submission).await;
            c.cmd("EHLO client.test").await.expect("250");
            c.starttls(&src.cert_path()).await;
            c.cmd("EHLO client.test").await.expect("250");
            c.cmd(&format!("AUTH PLAIN {}", plain(user, "pw"))).await.expect("235");
            c.cmd(&format!("MAIL FROM:<{user}>")).await.expect("250");
            c.cmd("RCPT TO:<bob@dest.test>").await.expect("250");
            c.cmd("DATA").await.expect("354");
            c.send_raw(format!("From: {user}\r\nTo: bob@dest.test\r\nSubject: {subject}\r\n\r\nhi\r\n").as_bytes())
                .await;
            c.cmd(".").await
        }
    };
    submit("news@sender.test", "Bulk").await.expect("250");
    submit("clerk@sender.test", "Personal").await.expect("250");
    let files = dest.wait_maildir("dest.test", "bob", 2).await;
    let texts: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    let bulk = texts.iter().find(|t| t.contains("Subject: Bulk")).unwrap();
    let personal = texts.iter().find(|t| t.contains("Subject: Personal")).unwrap();
    assert!(field(personal, "List-Unsubscribe").is_none(), "only bulk logins get the fields");
    let (_, mailto) = uris(&field(bulk, "List-Unsubscribe").expect("bulk login's mail has List-Unsubscribe"));

    // A tampered mailto address is refused at RCPT.
    let mut c = Client::connect(src.smtp).await;
    c.cmd("EHLO mx.dest.test").await.expect("250");
    c.cmd("MAIL FROM:<bob@dest.test>").await.expect("250");
    let (local, domain) = mailto.split_once('@').unwrap();
    let mut b = local.as_bytes().to_vec();
    let last = b.len() - 1;
    b[last] = if b[last] == b'a' { b'b' } else { b'a' };
    let bad = format!("{}@{domain}", String::from_utf8(b).unwrap());
    let r = c.cmd(&format!("RCPT TO:<{bad}>")).await;
    assert_eq!(r.code, 550, "{r:?}");
    c.cmd("RSET").await.expect("250");
    // The real one: accepted from anyone, read, and the recipient is suppressed for sender.test.
    let r = c
        .send_mail("bob@dest.test", &[mailto.as_str()], "From: bob@dest.test\r\nSubject: unsubscribe\r\n\r\n\r\n")
        .await;
    assert_eq!(r.code, 250, "{r:?}");
    let store = src.store();
    let s = wait_suppressed(&store, "bob@dest.test", "sender.test").await;
    assert_eq!((s.reason.as_str(), s.scope), ("unsubscribed", mailerd::store::SuppressionScope::SenderDomain));
    assert!(
        store.suppression_for("bob@dest.test", Some(&Domain::parse("else.test").unwrap())).await.unwrap().is_none()
    );
    // Nothing was delivered anywhere for it: the message is read, not kept.
    assert!(src.maildir_files("sender.test", "news").is_empty());
}

#[tokio::test]
async fn a_person_clicks_the_button_in_a_real_browser() {
    let Some(b) = crate::harness::browser::Browser::start().await else { return };
    let dest = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    dest.add_user("carol@dest.test", "pw", None).await;
    let src = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[local]\ndomains = [\"sender.test\", \"other.test\"]\n\
         [relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[routes]\n\"dest.test\" = \"{}\"\n",
        dest.smtp
    ))
    .await;
    let api = src.http.expect("http listener");
    let store = src.store();
    let (admin, k) = mailerd::http::auth::generate("ops", Scope::All).unwrap();
    store.create_api_key(k).await.unwrap();
    let r = post_json(
        api,
        "/api/v1/messages",
        Some(&admin),
        &json!({"from": "news@sender.test", "to": ["carol@dest.test"], "subject": "News", "text": "Hello."}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let files = dest.wait_maildir("dest.test", "carol", 1).await;
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let (link, _) = uris(&field(&text, "List-Unsubscribe").expect("List-Unsubscribe"));
    let path = link.trim_start_matches("https://mx.local.test");
    assert!(path.starts_with("/u/"), "{link}");

    // A person follows the link: a page asks first, and only the button unsubscribes.
    b.go(&format!("http://{api}{path}")).await;
    assert_eq!(b.title().await, "Unsubscribe");
    assert!(b.source().await.contains("carol@dest.test"));
    b.screenshot("unsubscribe-confirm").await;
    assert!(store.suppression("carol@dest.test").await.unwrap().is_none(), "opening the page changes nothing");
    b.click("#unsubscribe").await;
    assert_eq!(b.title_after("Unsubscribe").await, "You are unsubscribed");
    b.screenshot("unsubscribe-done").await;
    let s = wait_suppressed(&store, "carol@dest.test", "sender.test").await;
    assert_eq!(s.scope, mailerd::store::SuppressionScope::SenderDomain);

    // The next send from that domain is refused at RCPT; another domain's goes.
    let mut c = Client::connect(src.smtp).await;
    c.cmd("EHLO app.test").await.expect("250");
    c.cmd("MAIL FROM:<news@sender.test>").await.expect("250");
    assert_eq!(c.cmd("RCPT TO:<carol@dest.test>").await.code, 550);
    c.cmd("RSET").await.expect("250");
    c.cmd("MAIL FROM:<hello@other.test>").await.expect("250");
    c.cmd("RCPT TO:<carol@dest.test>").await.expect("250");
    b.quit().await;
}
