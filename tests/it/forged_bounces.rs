//! Forged-bounce detection (`feedback::verify` with `evidence::Verifier`) measured on three
//! sets: genuine DSNs for our own sent mail (rendered by mailerd's DSN writer, addressed to our
//! signed return path), corpus bounces replayed against a sent log seeded from their quoted
//! originals, and forgeries built here (backscatter for mail never sent, tampered and expired
//! tokens, phishing "mailer-daemon" notices, vague notices). Prints precision and recall of
//! `forged`; fails when a genuine bounce is called forged or fewer than 95% of forgeries are
//! caught. Also the daemon path: a forged bounce to a local mailbox is dropped, an auto-reply
//! is delivered, a genuine DSN from another mailerd is recorded.
//!
//! Must not: special-case a corpus file; it only measures.

use std::path::PathBuf;
use std::time::Duration;

use mailerd::bounce::dsn::{self, Action, Dsn, DsnRecipient};
use mailerd::bounce::notify::ReportKind;
use mailerd::bounce::reason::Reason;
use mailerd::bounce::return_path::Signer;
use mailerd::feedback::evidence::{Envelope, Verifier};
use mailerd::feedback::verify::Verdict;
use mailerd::smtp::address::Mailbox;
use mailerd::store::sqlite::SqliteStore;
use mailerd::store::{Destination, MessageId, NewMessage, NewRecipient, Origin, RecipientState, Store, Transport};
use mailerd::time::Timestamp;

use crate::harness::daemon::TestDaemon;
use crate::harness::smtp::Client;

const SECRET: &[u8] = b"forged-bounce-test-secret-0123456789";
const RP_DOMAIN: &str = "mx.sender.test";

fn verifier(all_signed: bool) -> Verifier {
    Verifier {
        signer: Some(Signer { secret: SECRET.to_vec(), domain: RP_DOMAIN.into(), previous: Vec::new() }),
        all_signed,
        authenticator: None,
        hostname: RP_DOMAIN.into(),
        learner: None,
    }
}

fn corpus_dir() -> PathBuf {
    match std::env::var_os("MAILERD_CORPUS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/bounces"),
    }
}

async fn insert_sent(store: &SqliteStore, id: &str, header_id: &str, rcpts: &[String], body: Vec<u8>) {
    store
        .insert_message(NewMessage {
            id: MessageId(id.into()),
            reverse_path: mailerd::smtp::address::ReversePath::Mailbox(
                mailerd::smtp::address::Mailbox::parse("app@sender.test").expect("address"),
            ),
            envid: None,
            ret: None,
            received_at: Timestamp::now(),
            origin: Origin::default(),
            body,
            header_message_id: Some(header_id.into()),
            recipients: rcpts
                .iter()
                .map(|a| NewRecipient {
                    address: a.clone(),
                    orcpt: None,
                    notify: None,
                    destination: Destination::Remote,
                })
                .collect(),
            reports: Vec::new(),
            notes: Vec::new(),
            rejected: Vec::new(),
            idempotency: None,
        })
        .await
        .expect("insert");
}

/// Tallies verdicts for one set.
#[derive(Default, Debug)]
struct Tally {
    genuine: usize,
    forged: usize,
    unknown: usize,
}

impl Tally {
    fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Genuine => self.genuine += 1,
            Verdict::Forged => self.forged += 1,
            // No learned filter here (`learner: None`): these cannot occur.
            Verdict::Unknown | Verdict::LikelyForged | Verdict::LikelyGenuine => self.unknown += 1,
        }
    }
    fn total(&self) -> usize {
        self.genuine + self.forged + self.unknown
    }
}

/// A DSN as mailerd writes it, about message `queue_id` (Message-ID `<n@sender.test>`).
fn our_dsn(n: usize, rcpt: &str, status: &str, to: &str) -> Vec<u8> {
    let original = format!(
        "From: App <app@sender.test>\r\nTo: <{rcpt}>\r\nSubject: order {n}\r\nMessage-ID: <{n}@sender.test>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n\r\nHello\r\n"
    );
    let to = Mailbox::parse(to).expect("signed address parses");
    let reason = if status.starts_with("5.1") { Reason::UserUnknown } else { Reason::MailboxFull };
    let d = Dsn {
        reporting_mta: "mx.remote.test",
        to: &to,
        queue_id: "REMOTEQ",
        envid: None,
        arrival: Timestamp::now(),
        recipients: vec![DsnRecipient {
            final_recipient: rcpt.into(),
            original_recipient: None,
            action: Action::Failed,
            status: status.into(),
            remote_mta: Some("mx.remote.test".into()),
            diagnostic: Some(format!("550 {status} <{rcpt}>: rejected")),
            diagnostic_is_smtp: true,
            last_attempt: Some(Timestamp::now()),
            reason,
            hard: Some(status.starts_with("5.1")),
        }],
        original: original.as_bytes(),
        return_full: false,
        kind: ReportKind::Failure,
        retry_until: None,
    };
    dsn::render(&d, Timestamp::now(), &format!("u{n}"))
}

fn backscatter(n: usize, rcpt: &str) -> Vec<u8> {
    format!(
        "Received: from mx{n}.victim-isp.example (mx{n}.victim-isp.example [198.51.100.{n}]) by mx.sender.test (mailerd) with ESMTP id Q{n}; Sat, 28 Nov 2026 10:00:00 +0000\r\n\
         From: MAILER-DAEMON@victim-isp.example (Mail Delivery System)\r\nTo: app@sender.test\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx{n}.victim-isp.example.\r\n\r\n<{rcpt}>: host said: 550 5.1.1 User unknown\r\n\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx{n}.victim-isp.example\r\n\r\nFinal-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n\
         --b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: \"Cheap pills\" <app@sender.test>\r\nTo: {rcpt}\r\nMessage-ID: <spam{n}.x@botnet.example>\r\nSubject: cheap pills\r\n\r\n--b--\r\n"
    )
    .into_bytes()
}

fn phishing(n: usize) -> Vec<u8> {
    let (from, subject, body) = match n % 5 {
        0 => (
            "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
            "Delivery Status Notification (Failure)",
            "Your message wasn't delivered because your mailbox storage is full. Click here to upgrade your storage: https://g00gle-storage.example/upgrade?u=app@sender.test",
        ),
        1 => (
            "postmaster@sender.test",
            "Undeliverable: pending messages",
            "3 incoming messages are held. To release your messages, sign in with your password at http://sender-test-webmail.example/login",
        ),
        2 => (
            "Microsoft Outlook <MAILER-DAEMON@outlook.com>",
            "Undeliverable: Message failed",
            "Delivery has failed to these recipients. Your account will be suspended unless you verify your account within 24 hours: https://aka-ms.example/verify",
        ),
        3 => (
            "Mail Delivery System <MAILER-DAEMON@mail.example.org>",
            "Mail delivery failed: returning message to sender",
            "A message could not be delivered. Open the attached document to view the blocked messages.",
        ),
        _ => (
            "MAILER-DAEMON <mailer-daemon@yahoo.com>",
            "failure notice",
            "Sorry, we were unable to deliver your message. Confirm your identity and date of birth at www.yahoo-mail-verify.example",
        ),
    };
    let attach = if n % 5 == 3 {
        "--b\r\nContent-Type: application/zip; name=\"messages.zip\"\r\nContent-Disposition: attachment; filename=\"messages.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBBQAAAAIAA==\r\n"
    } else {
        ""
    };
    format!(
        "Received: from bulk{n}.cheap-vps.example (bulk{n}.cheap-vps.example [203.0.113.{n}]) by mx.sender.test (mailerd) with ESMTP id P{n}; Sat, 28 Nov 2026 10:00:00 +0000\r\n\
         From: {from}\r\nTo: app@sender.test\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n{attach}--b--\r\n"
    )
    .into_bytes()
}

fn vague(n: usize) -> Vec<u8> {
    format!(
        "Received: from relay{n}.somewhere.example ([192.0.2.{n}]) by mx.sender.test (mailerd) with ESMTP id V{n}; Sat, 28 Nov 2026 10:00:00 +0000\r\n\
         From: Mail Delivery System <postmaster@somewhere.example>\r\nTo: app@sender.test\r\nSubject: Returned mail: see transcript for details\r\n\r\n\
         Your message could not be delivered to one or more recipients. Please try again later or contact your administrator.\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn forged_bounces_are_caught_and_ours_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).unwrap();
    let v = verifier(true);
    let signer = v.signer.clone().unwrap();
    let later = Timestamp::now().plus(Duration::from_secs(86_400 * 5));
    let (mut ours, mut replay, mut forged) = (Tally::default(), Tally::default(), Tally::default());
    let mut misses: Vec<String> = Vec::new();

    // 1. Genuine DSNs for our own sent mail, to our signed return path.
    for n in 0..40 {
        let rcpt = format!("user{n}@remote.test");
        let qid = format!("OURS{n:08}");
        insert_sent(&store, &qid, &format!("{n}@sender.test"), std::slice::from_ref(&rcpt), b"x".to_vec()).await;
        let to = signer.sign(&qid, 0, later);
        let status = if n % 3 == 0 { "4.2.2" } else { "5.1.1" };
        let raw = our_dsn(n, &rcpt, status, &to);
        let env = Envelope { rcpt: Some(to), ..Default::default() };
        let got = v.verify(&store, &raw, &env).await.unwrap();
        if got.verdict != Verdict::Genuine {
            misses.push(format!("ours #{n}: {}", got.summary()));
        }
        ours.add(got.verdict);
    }

    // 2. Corpus bounces replayed against a sent log seeded from their quoted originals
    //    (those were not sent with our tokens: all_signed = false).
    let labels = std::fs::read_to_string(corpus_dir().join("labels.jsonl")).unwrap_or_default();
    let unsigned = verifier(false);
    let mut corpus_backscatter = Tally::default();
    let mut no_message_id = Tally::default();
    let empty_dir = tempfile::tempdir().unwrap();
    let empty = SqliteStore::open(&empty_dir.path().join("db")).unwrap();
    for (i, line) in labels.lines().enumerate() {
        let label: serde_json::Value = serde_json::from_str(line).unwrap();
        if label["is_bounce"] != true {
            continue;
        }
        let file = label["file"].as_str().unwrap();
        let raw = std::fs::read(corpus_dir().join(file)).unwrap();
        let report = mailerd::feedback::parse_bounce(&raw);
        let Some(mid) = report.original.message_id.clone() else {
            // Quotes nothing we could look up: as backscatter it can only be judged on its form.
            no_message_id.add(v.verify(&empty, &raw, &Envelope::default()).await.unwrap().verdict);
            continue;
        };
        let mut rcpts: Vec<String> =
            label["recipients"].as_array().unwrap().iter().filter_map(|r| r.as_str().map(str::to_string)).collect();
        rcpts.extend(report.recipients.iter().map(|r| r.address.clone()));
        if rcpts.is_empty() {
            // Nobody to have sent it to: the quoted original's To stands in.
            rcpts = mailerd::feedback::parse::addresses_in(report.original.to.as_deref().unwrap_or(""));
        }
        if rcpts.is_empty() {
            continue;
        }
        insert_sent(&store, &format!("CORPUS{i:06}"), &mid, &rcpts, raw.clone()).await;
        let got = unsigned.verify(&store, &raw, &Envelope::default()).await.unwrap();
        if got.verdict == Verdict::Forged {
            misses.push(format!("corpus {file} called forged: {}", got.summary()));
        }
        if got.verdict == Verdict::Unknown {
            misses.push(format!("corpus {file} unknown: {}", got.summary()));
        }
        replay.add(got.verdict);
        // The same bounce against a sent log that never saw it: backscatter.
        let got = v.verify(&empty, &raw, &Envelope::default()).await.unwrap();
        corpus_backscatter.add(got.verdict);
        if got.verdict != Verdict::Forged {
            misses.push(format!("corpus backscatter {file} not caught: {}", got.summary()));
        }
    }

    // 3. Forgeries built here.
    let mut built = Vec::new();
    for n in 1..=20 {
        built.push(("backscatter", backscatter(n, &format!("victim{n}@victim-isp.example")), None));
        built.push(("phishing", phishing(n), None));
        built.push(("vague", vague(n), None));
        // Our format, a signature that does not verify (made up, or tampered with).
        let good = signer.sign(&format!("OURS{n:08}"), 0, later);
        let tampered = good.replacen("-0-", "-7-", 1);
        built.push(("tampered", our_dsn(n, &format!("user{n}@remote.test"), "5.1.1", &tampered), Some(tampered)));
        // A genuine token that ran out long ago, replayed.
        let old = signer.sign(&format!("OURS{n:08}"), 0, Timestamp(Timestamp::now().millis() - 30 * 86_400_000));
        built.push(("expired", our_dsn(1000 + n, &format!("x{n}@remote.test"), "5.1.1", &old), Some(old)));
    }
    let mut by_kind: std::collections::BTreeMap<&str, Tally> = Default::default();
    for (kind, raw, rcpt) in &built {
        let env = Envelope { rcpt: rcpt.clone(), ..Default::default() };
        let got = v.verify(&store, raw, &env).await.unwrap();
        by_kind.entry(kind).or_default().add(got.verdict);
        forged.add(got.verdict);
        if got.verdict != Verdict::Forged {
            misses.push(format!("{kind} not caught: {}", got.summary()));
        }
    }

    // Precision and recall of `forged` over everything verified.
    let true_forged = forged.forged + corpus_backscatter.forged;
    let all_forged = forged.total() + corpus_backscatter.total();
    let false_forged = ours.forged + replay.forged;
    let precision = 100.0 * true_forged as f64 / (true_forged + false_forged).max(1) as f64;
    let recall = 100.0 * true_forged as f64 / all_forged.max(1) as f64;
    let built_recall = 100.0 * forged.forged as f64 / forged.total().max(1) as f64;
    println!("forged-bounce detection (verdicts genuine/forged/unknown):");
    println!("  our own DSNs            {:>3} / {:>3} / {:>3}", ours.genuine, ours.forged, ours.unknown);
    println!("  corpus, sent log seeded {:>3} / {:>3} / {:>3}", replay.genuine, replay.forged, replay.unknown);
    println!(
        "  corpus as backscatter   {:>3} / {:>3} / {:>3}",
        corpus_backscatter.genuine, corpus_backscatter.forged, corpus_backscatter.unknown
    );
    println!(
        "  corpus quoting no Message-ID, as backscatter (not counted) {:>3} / {:>3} / {:>3}",
        no_message_id.genuine, no_message_id.forged, no_message_id.unknown
    );
    for (k, t) in &by_kind {
        println!("  built: {k:<16} {:>3} / {:>3} / {:>3}", t.genuine, t.forged, t.unknown);
    }
    println!(
        "  forged: precision {precision:.1}%, recall {recall:.1}% ({true_forged}/{all_forged}); built forgeries caught {built_recall:.1}%"
    );
    if std::env::var_os("MAILERD_VERIFY_MISSES").is_some() {
        for m in &misses {
            println!("  miss: {m}");
        }
    }
    assert_eq!(ours.genuine, ours.total(), "every DSN for our own mail is genuine: {misses:#?}");
    assert_eq!(replay.forged, 0, "no genuine corpus bounce is called forged: {misses:#?}");
    assert!(built_recall >= 95.0, "built forgeries caught {built_recall:.1}% < 95%");
    if corpus_backscatter.total() > 0 {
        assert!(recall >= 95.0, "forged recall {recall:.1}% < 95%");
    }
}

/// The daemon: a genuine DSN written by another mailerd is recorded; backscatter to a local
/// mailbox is dropped (event `forged_bounce`); an auto-reply from `<>` is still delivered.
#[tokio::test]
async fn the_daemon_records_genuine_bounces_and_drops_forged_ones() {
    // C refuses the recipient; B relays to C and writes the DSN; A sent the mail.
    let c = TestDaemon::with("[local]\ndomains = [\"dest.test\"]").await;
    let a_dir_sections = |b: &str| {
        format!(
            "[local]\ndomains = [\"sender.test\"]\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[routes]\n\"dest.test\" = \"{b}\"\n"
        )
    };
    // A needs B's address, and B needs A's (for the DSN to the signed return path, whose
    // domain is the test host name mx.local.test): start B first with a placeholder route to
    // A filled once A is up. The route table is static, so start A on a reserved port.
    let a_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let b = TestDaemon::with(&format!(
        "[local]\ndomains = [\"relay.test\"]\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[routes]\n\"dest.test\" = \"{}\"\n\"mx.local.test\" = \"{a_port}\"\n",
        c.smtp
    ))
    .await;
    let a = TestDaemon::with(&format!("{}[listen]\nsmtp = \"{a_port}\"\n", a_dir_sections(&b.smtp.to_string()))).await;
    a.add_user("app@sender.test", "pw", None).await;

    let mut s = Client::connect(a.smtp).await;
    let body = "From: App <app@sender.test>\r\nTo: <nobody@dest.test>\r\nMessage-ID: <order-42@sender.test>\r\nSubject: your order\r\n\r\nThanks\r\n";
    let r = s.send_mail("app@sender.test", &["nobody@dest.test"], body).await;
    let id = r.queue_id();

    // B's DSN comes back to A's signed return path: genuine, recorded, suppressed.
    let store = a.store();
    let mut bounced = false;
    for _ in 0..400 {
        let m = store.message_detail(&MessageId(id.clone())).await.unwrap().unwrap();
        if m.entry.recipients[0].state == RecipientState::Bounced
            && store.suppression("nobody@dest.test").await.unwrap().is_some()
        {
            bounced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(bounced, "A recorded the bounce B wrote");
    // The feedback message at A says what it was judged.
    let queue = store.queue_list(100).await.unwrap();
    assert!(queue.iter().all(|e| e.recipients.iter().all(|r| r.transport != Transport::Feedback)), "{queue:?}");

    // Backscatter to a local mailbox: dropped, with an event.
    let mut f = Client::connect(a.smtp).await;
    let forged = backscatter(7, "victim@victim-isp.example");
    let r = f.send_mail("", &["app@sender.test"], std::str::from_utf8(&forged).unwrap()).await;
    let forged_id = r.queue_id();
    // An auto-reply from <> to the same mailbox: not a bounce, delivered.
    let vacation = "From: bob@elsewhere.test\r\nTo: app@sender.test\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\nI am away until Monday.\r\n";
    f.send_mail("", &["app@sender.test"], vacation).await;
    let files = a.wait_maildir("sender.test", "app", 2).await;
    let texts: Vec<String> = files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    assert!(texts.iter().any(|t| t.contains("Out of office")), "the auto-reply was delivered");
    assert!(texts.iter().all(|t| !t.contains("cheap pills")), "the backscatter was not delivered");
    let mut dropped = false;
    for _ in 0..200 {
        let d = store.message_detail(&MessageId(forged_id.clone())).await.unwrap().unwrap();
        if d.events
            .iter()
            .any(|e| e.kind.as_str() == "forged_bounce" && e.detail.as_deref().unwrap_or("").contains("never sent"))
        {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(dropped, "the backscatter was judged forged and dropped");
}

/// `mailerd bounce verify` on a file: exit 1 and the evidence for a forged one.
#[test]
fn bounce_verify_cli_explains_a_forged_bounce() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("phish.eml");
    std::fs::write(&file, phishing(1)).unwrap();
    let config = dir.path().join("mailerd.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\n", dir.path().join("data").display())).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .args(["--config", config.to_str().unwrap(), "bounce", "verify", "--no-dns", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "forged");
    let evidence = v["evidence"].as_array().unwrap();
    assert!(evidence.iter().any(|e| e["check"] == "personal_data" && e["ok"] == false), "{v}");
    assert!(evidence.iter().any(|e| e["check"] == "links" && e["ok"] == false), "{v}");
}

/// (g): SPF and DMARC of the bounce itself, against records served by dnsmasq: a bounce whose
/// sending host fails the reporter's SPF, under a DMARC policy of reject, is forged.
#[tokio::test]
async fn spf_and_dmarc_of_the_bounce_count() {
    let Some(dns) = crate::harness::dns::TestDns::start(&[
        "--txt-record=mx.bigbank.test,v=spf1 ip4:192.0.2.1 -all".to_string(),
        "--txt-record=_dmarc.bigbank.test,v=DMARC1; p=reject".to_string(),
    ])
    .await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bounce.eml");
    std::fs::write(
        &file,
        "Received: from mx.bigbank.test (mx.bigbank.test [127.0.0.1]) by mx.local.test (mailerd) with ESMTP id X; Sat, 28 Nov 2026 10:00:00 +0000\r\n\
         From: MAILER-DAEMON@bigbank.test\r\nTo: app@local.test\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\n\
         <someone@bigbank.test>: host mx.bigbank.test said: 550 5.1.1 user unknown\r\n",
    )
    .unwrap();
    let config = dir.path().join("mailerd.toml");
    std::fs::write(
        &config,
        format!("data_dir = \"{}\"\n[dns]\nnameservers = [\"{}\"]\n", dir.path().join("data").display(), dns.addr),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mailerd"))
            .args(["--config", config.to_str().unwrap(), "bounce", "verify", "--json"])
            .arg(&file)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let check = |name: &str| v["evidence"].as_array().and_then(|e| e.iter().find(|c| c["check"] == name).cloned());
    assert_eq!(check("spf").map(|c| c["ok"].clone()), Some(serde_json::json!(false)), "{v}");
    assert_eq!(check("dmarc").map(|c| c["ok"].clone()), Some(serde_json::json!(false)), "{v}");
    assert_eq!(v["verdict"], "forged", "{v}");
    assert_eq!(out.status.code(), Some(1));
}
