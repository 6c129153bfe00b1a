//! Complaint feedback loops end to end over loopback: mail goes out from one mailerd to a
//! second; realistic ARF reports about it (tests/data/arf: Yahoo, Microsoft JMRP with the
//! recipient redacted, AOL with `Redacted-Address`, a plain RFC 5965 report, an RFC 6590
//! redacted one) come back through the SMTP listener, to the configured complaint address or to
//! the signed return path; each complained-about recipient is found (by the return path's
//! token, by Message-ID and the sent log, by the redacted address's domain), suppressed for
//! every sender with reason `complaint`, and a `complained` event is written. A `not-spam`
//! report, and one about mail we never sent, change nothing. `mailerd bounce parse` shows the
//! feedback type.
//!
//! Must not: use any address outside 127.0.0.0/8.

use std::process::Command;
use std::time::Duration;

use mailerd::smtp::address::Domain;
use mailerd::store::{EventKind, Scope, Store, SuppressionScope};

use crate::harness::{Client, TestDaemon};

/// The sample's stand-ins, replaced by what the test's own mail carried.
const SAMPLE_TOKEN: &str = "0190A1B2C3D4E5F60718-1-20500-a1b2c3d4e5f6";
const SAMPLE_MESSAGE_ID: &str = "20261206101500.4711@sender.test";

fn sample(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/arf/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A report `name` about a message that carried `return_path` and `message_id`.
fn report_about(name: &str, return_path: &str, message_id: &str) -> String {
    let token = return_path.trim_start_matches("bounces+").split('@').next().unwrap();
    sample(name).replace(SAMPLE_TOKEN, token).replace(SAMPLE_MESSAGE_ID, message_id)
}

/// Sends one message from news@sender.test to `to`, with its own Message-ID.
async fn send(src: &TestDaemon, to: &[&str], message_id: &str) {
    let mut c = Client::connect(src.smtp).await;
    let body = format!(
        "From: Sender News <news@sender.test>\r\nTo: {}\r\nSubject: Weekly news from Sender\r\nMessage-ID: <{message_id}>\r\n\r\nThis week at Sender.\r\n",
        to.join(", ")
    );
    c.send_mail("news@sender.test", to, &body).await.expect("250");
}

/// The Return-Path (our signed envelope sender) of the message `local@domain` received.
async fn return_path(dest: &TestDaemon, domain: &str, local: &str) -> String {
    let files = dest.wait_maildir(domain, local, 1).await;
    let text = std::fs::read_to_string(&files[0]).unwrap();
    text.lines().next().unwrap().trim_start_matches("Return-Path: <").trim_end_matches('>').to_string()
}

/// Mails `report` from a feedback loop to `rcpt` through the MX listener.
async fn deliver_report(src: &TestDaemon, from: &str, rcpt: &str, report: &str) {
    let mut c = Client::connect(src.smtp).await;
    let r = c.send_mail(from, &[rcpt], report).await;
    assert_eq!(r.code, 250, "{r:?}");
}

async fn wait_complaint(store: &dyn Store, address: &str) -> mailerd::store::Suppression {
    for _ in 0..150 {
        if let Some(s) = store.suppression(address).await.unwrap()
            && s.reason == "complaint"
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{address} was never suppressed for a complaint");
}

#[tokio::test]
async fn arf_reports_suppress_the_complained_about_recipient() {
    let dest = TestDaemon::with(
        "[local]\ndomains = [\"yahoo.test\", \"outlook.test\", \"aol.test\", \"example.net\", \"redacted.test\"]",
    )
    .await;
    for u in ["alice@yahoo.test", "bob@outlook.test", "dave@aol.test", "erin@example.net", "carol@example.net"] {
        dest.add_user(u, "pw", None).await;
    }
    dest.add_user("xavier@redacted.test", "pw", None).await;
    let routes: String = ["yahoo.test", "outlook.test", "aol.test", "example.net", "redacted.test"]
        .iter()
        .map(|d| format!("\"{d}\" = \"{}\"\n", dest.smtp))
        .collect();
    let src = TestDaemon::with(&format!(
        "[local]\ndomains = [\"sender.test\"]\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[routes]\n{routes}\
         [bounce]\ncomplaint_addresses = [\"fbl@sender.test\"]\n"
    ))
    .await;

    send(&src, &["alice@yahoo.test"], "m1.yahoo@sender.test").await;
    send(&src, &["bob@outlook.test"], "m2.jmrp@sender.test").await;
    send(&src, &["dave@aol.test", "erin@example.net"], "m3.aol@sender.test").await;
    send(&src, &["carol@example.net"], "m4.generic@sender.test").await;
    send(&src, &["xavier@redacted.test"], "m5.redacted@sender.test").await;
    let rp_alice = return_path(&dest, "yahoo.test", "alice").await;
    let rp_bob = return_path(&dest, "outlook.test", "bob").await;
    let rp_erin = return_path(&dest, "example.net", "erin").await;
    let rp_carol = {
        let files = dest.wait_maildir("example.net", "carol", 1).await;
        let t = std::fs::read_to_string(&files[0]).unwrap();
        t.lines().next().unwrap().trim_start_matches("Return-Path: <").trim_end_matches('>').to_string()
    };
    dest.wait_maildir("aol.test", "dave", 1).await;
    dest.wait_maildir("redacted.test", "xavier", 1).await;

    // Reports that must change nothing, sent first: a not-spam report about erin, and an abuse
    // report about a Message-ID we never sent.
    let not_spam = report_about("rfc5965.eml", &rp_erin, "m3.aol@sender.test")
        .replace("Feedback-Type: abuse", "Feedback-Type: not-spam")
        .replace("carol@example.net", "erin@example.net");
    deliver_report(&src, "abusedesk@mail.example.test", &rp_erin, &not_spam).await;
    let stranger = sample("aol.eml").replace(SAMPLE_MESSAGE_ID, "never-sent@sender.test");
    deliver_report(&src, "scomp@aol.test", "fbl@sender.test", &stranger).await;

    // Yahoo: to the complaint address; Original-Rcpt-To and the signed Return-Path.
    deliver_report(
        &src,
        "feedback@arf.mail.yahoo.test",
        "fbl@sender.test",
        &report_about("yahoo.eml", &rp_alice, "m1.yahoo@sender.test"),
    )
    .await;
    // Microsoft JMRP: the recipient redacted; the return path's token names bob.
    deliver_report(
        &src,
        "staff@hotmail.test",
        "fbl@sender.test",
        &report_about("microsoft-jmrp.eml", &rp_bob, "m2.jmrp@sender.test"),
    )
    .await;
    // AOL: redacted to `redacted@aol.test`, no return path: the sent log and the domain tell
    // dave from erin, who got the same message.
    deliver_report(
        &src,
        "scomp@aol.test",
        "fbl@sender.test",
        &report_about("aol.eml", &rp_alice, "m3.aol@sender.test"),
    )
    .await;
    // A plain RFC 5965 report sent to the signed return path itself.
    deliver_report(
        &src,
        "abusedesk@mail.example.test",
        &rp_carol,
        &report_about("rfc5965.eml", &rp_carol, "m4.generic@sender.test"),
    )
    .await;
    // RFC 6590: the local part is a hash; one recipient of that message at that domain.
    deliver_report(
        &src,
        "fbl@isp.redacted.test",
        "fbl@sender.test",
        &report_about("redacted.eml", &rp_alice, "m5.redacted@sender.test"),
    )
    .await;

    let store = src.store();
    let other = Domain::parse("other.test").unwrap();
    for address in
        ["alice@yahoo.test", "bob@outlook.test", "dave@aol.test", "carol@example.net", "xavier@redacted.test"]
    {
        let s = wait_complaint(&store, address).await;
        assert_eq!(s.scope, SuppressionScope::Global, "{address}");
        assert_eq!(s.domain.as_ref().map(|d| d.as_str()), Some("sender.test"));
        assert!(store.suppression_for(address, Some(&other)).await.unwrap().is_some(), "every sender: {address}");
    }
    assert!(store.suppression("erin@example.net").await.unwrap().is_none(), "not-spam and the other AOL recipient");
    let events = store.events_after(0, Some(EventKind::Complained), &Scope::All, 100).await.unwrap();
    assert_eq!(events.len(), 5, "{events:?}");
    assert!(events.iter().all(|e| e.detail.as_deref().is_some_and(|d| d.starts_with("abuse complaint from"))));
    // The reports themselves were read, never delivered.
    assert!(src.maildir_files("sender.test", "fbl").is_empty());

    // The next send to a complainer is refused at RCPT, whoever sends it.
    let mut c = Client::connect(src.smtp).await;
    c.cmd("EHLO app.test").await.expect("250");
    c.cmd("MAIL FROM:<shop@sender.test>").await.expect("250");
    assert_eq!(c.cmd("RCPT TO:<alice@yahoo.test>").await.code, 550);
    c.cmd("RCPT TO:<erin@example.net>").await.expect("250");
}

#[test]
fn bounce_parse_shows_the_feedback_type() {
    let dir = format!("{}/tests/data/arf", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".eml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5);
    let out =
        Command::new(env!("CARGO_BIN_EXE_mailerd")).args(["bounce", "parse", "--json"]).args(&files).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    for l in &lines {
        assert_eq!(l["kind"], "feedback", "{l}");
        assert_eq!(l["reason"], "feedback");
        assert_eq!(l["feedback_type"], "abuse", "{l}");
        assert_eq!(l["is_bounce"], false);
    }
    let by_file = |name: &str| lines.iter().find(|l| l["file"].as_str().unwrap().ends_with(name)).unwrap();
    assert_eq!(by_file("yahoo.eml")["feedback"]["user_agent"], "Yahoo!-Mail-Feedback/2.0");
    assert_eq!(by_file("yahoo.eml")["feedback"]["recipients"][0], "alice@yahoo.test");
    assert_eq!(by_file("aol.eml")["feedback"]["redacted"], true);
    assert_eq!(by_file("redacted.eml")["feedback"]["redacted"], true);
    assert_eq!(by_file("microsoft-jmrp.eml")["feedback"]["recipients"], serde_json::json!([]));
    // People's output names it too.
    let out = Command::new(env!("CARGO_BIN_EXE_mailerd")).args(["bounce", "parse", &files[4]]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("feedback_type: abuse"));
}

/// The Return-Path and Message-ID of each message in a maildir.
fn delivered(files: &[std::path::PathBuf]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|f| {
            let t = std::fs::read_to_string(f).unwrap();
            let rp = t.lines().next().unwrap().trim_start_matches("Return-Path: <").trim_end_matches('>').to_string();
            let id = t
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .expect("Message-ID")
                .trim()
                .trim_matches(['<', '>'])
                .to_string();
            (rp, id)
        })
        .collect()
}

#[tokio::test]
async fn a_complaint_storm_pauses_the_account_at_the_threshold_and_not_before() {
    let dest = TestDaemon::with("[local]\ndomains = [\"yahoo.test\"]").await;
    dest.add_user("alice@yahoo.test", "pw", None).await;
    let src = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[local]\ndomains = [\"sender.test\"]\n[routes]\n\"yahoo.test\" = \"{}\"\n\
         [account]\ncomplaint_threshold = 0.05\ncomplaint_min_messages = 40\n[relay]\ntrusted_networks = [\"127.0.0.1\"]\n",
        dest.smtp
    ))
    .await;
    let api = src.http.unwrap();
    let store = src.store();
    let (key, record) = mailerd::http::auth::generate("newsletter", Scope::All).unwrap();
    let account = format!("apikey:{}", record.id);
    store.create_api_key(record).await.unwrap();
    for i in 0..40 {
        let r = crate::harness::http::post_json(
            api,
            "/api/v1/messages",
            Some(&key),
            &serde_json::json!({"from": "news@sender.test", "to": ["alice@yahoo.test"], "subject": format!("Issue {i}"), "text": "hi"}),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text);
    }
    let sent = delivered(&dest.wait_maildir("yahoo.test", "alice", 40).await);
    let complained = |n: usize| {
        let store = &store;
        async move {
            for _ in 0..150 {
                let e = store.events_after(0, Some(EventKind::Complained), &Scope::All, 100).await.unwrap();
                if e.len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("complaint {n} was never recorded");
        }
    };
    // 5% of 40 recipients is 2 complaints: the account keeps sending through them.
    for (k, (rp, id)) in sent.iter().take(2).enumerate() {
        let report = report_about("yahoo.eml", rp, id);
        deliver_report(&src, "feedback@arf.mail.yahoo.test", rp, &report).await;
        complained(k + 1).await;
        assert!(store.account_pause(&account).await.unwrap().is_none(), "{} complaint(s) of 40 is not over 5%", k + 1);
    }
    // The same complaint reported twice is one complaint.
    let (rp, id) = &sent[1];
    deliver_report(&src, "feedback@arf.mail.yahoo.test", rp, &report_about("yahoo.eml", rp, id)).await;
    let (rp, id) = &sent[2];
    deliver_report(&src, "feedback@arf.mail.yahoo.test", rp, &report_about("yahoo.eml", rp, id)).await;
    complained(3).await;
    let mut pause = None;
    for _ in 0..50 {
        pause = store.account_pause(&account).await.unwrap();
        if pause.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pause = pause.expect("the third complaint trips the breaker");
    assert_eq!(
        pause.detail,
        "complaint rate 7.5% (3 of 40 recipients in the last 24 h) over account.complaint_threshold 5%"
    );
    assert_eq!(store.events_after(0, Some(EventKind::Complained), &Scope::All, 100).await.unwrap().len(), 3);
    // The key and its sender domain both sent the 40: both windows trip (the domain's also
    // counts whoever else sends from it).
    let mut paused_events = store.events_after(0, Some(EventKind::AccountPaused), &Scope::All, 100).await.unwrap();
    for _ in 0..50 {
        if paused_events.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        paused_events = store.events_after(0, Some(EventKind::AccountPaused), &Scope::All, 100).await.unwrap();
    }
    let mut whys: Vec<&str> = paused_events.iter().map(|e| e.detail.as_deref().unwrap()).collect();
    whys.sort();
    assert_eq!(whys.len(), 2, "{whys:?}");
    assert!(whys[0].starts_with(&account) && whys[0].contains(": complaint rate 7.5%"), "{whys:?}");
    assert!(whys[1].starts_with("domain:sender.test") && whys[1].contains(": complaint rate 7.5%"), "{whys:?}");
    // Another key may not send from the paused domain either; from another domain it may.
    let (other, record) = mailerd::http::auth::generate("transactional", Scope::All).unwrap();
    store.create_api_key(record).await.unwrap();
    let r = crate::harness::http::post_json(
        api,
        "/api/v1/messages",
        Some(&other),
        &serde_json::json!({"from": "billing@sender.test", "to": ["bob@yahoo.test"], "text": "hi"}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let refused = r.json["recipients"][0]["detail"].as_str().unwrap();
    assert!(refused.starts_with("sending paused for domain:sender.test: complaint rate 7.5%"), "{}", r.text);
    // And over SMTP, from a trusted network without a login: refused at RCPT, temporarily.
    let mut c = Client::connect(src.smtp).await;
    assert_eq!(c.cmd("EHLO relay.test").await.code, 250);
    assert_eq!(c.cmd("MAIL FROM:<billing@sender.test>").await.code, 250);
    let r = c.cmd("RCPT TO:<bob@yahoo.test>").await;
    assert_eq!(r.code, 451, "{r:?}");
    assert!(format!("{r:?}").contains("4.7.1 sending paused for domain:sender.test"), "{r:?}");
    let r = crate::harness::http::post_json(
        api,
        "/api/v1/messages",
        Some(&other),
        &serde_json::json!({"from": "billing@other.test", "to": ["bob@yahoo.test"], "text": "hi"}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    // Paused like the hard-bounce breaker: the API refuses the key.
    let r = crate::harness::http::post_json(
        api,
        "/api/v1/messages",
        Some(&key),
        &serde_json::json!({"from": "news@sender.test", "to": ["bob@yahoo.test"], "text": "hi"}),
    )
    .await;
    assert_eq!((r.status, r.json["type"].as_str()), (403, Some("/problems/account-paused")), "{}", r.text);

    // The providers' spam-rate rule, read from the same store: 3 complaints of 40 delivered.
    let since = mailerd::time::Timestamp(mailerd::time::Timestamp::now().millis() - 86_400_000);
    assert_eq!(store.delivery_overview(since, 0).await.unwrap().complaints, 3);
    let r = crate::harness::http::post_json(
        api,
        "/api/v1/check/domain",
        Some(&key),
        &serde_json::json!({"domain": "sender.test"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rate = r.json["checks"].as_array().unwrap().iter().find(|c| c["name"] == "complaint_rate").unwrap();
    assert_eq!(rate["status"], "fail", "{rate}");
    assert!(rate["detail"].as_str().unwrap().starts_with("7.50% (3 complaints of 40 delivered recipients"), "{rate}");
    let rule = r.json["requirements"].as_array().unwrap().iter().find(|q| q["id"] == "complaint_rate").unwrap();
    assert_eq!((rule["status"].as_str(), rule["applies_to"].as_str()), (Some("fail"), Some("all")), "{rule}");
}
