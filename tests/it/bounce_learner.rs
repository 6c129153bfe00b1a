//! The learned filter for mailer-daemon mail (`feedback::learn`, issue 19 item 5): measured on
//! a held-out split of corpus bounces that quote no Message-ID (genuine) and generated phishing
//! notices (forged); it never overrides a deterministic verdict; the daemon learns the bounces
//! it reads (with certain verdicts as labels), keeps the model across a restart, and takes the
//! operator's word from `mailerd bounce train` and `POST /api/v1/bounces/{id}/verdict` (scoped).
//!
//! Must not: special-case a corpus file; it only measures.

mod phishing;

use std::path::PathBuf;
use std::time::Duration;

use mailerd::bounce::return_path::Signer;
use mailerd::feedback::evidence::{Envelope, Verifier};
use mailerd::feedback::learn::{self, Settings};
use mailerd::feedback::verify::{Verdict, inspect};
use mailerd::smtp::address::Domain;
use mailerd::store::learner::{Label, Learned, LearnerLimits, TrainSource};
use mailerd::store::sqlite::SqliteStore;
use mailerd::store::{MessageId, Scope, Store};
use mailerd::time::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::daemon::base_toml;
use crate::harness::http::{post_json, request};
use crate::harness::smtp::Client;

fn corpus_dir() -> PathBuf {
    match std::env::var_os("MAILERD_CORPUS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/bounces"),
    }
}

const THRESHOLD: f64 = 0.99;

fn settings(min_trained: u64) -> Settings {
    Settings { threshold: THRESHOLD, min_trained, limits: LearnerLimits::default() }
}

fn verifier(learner: Option<Settings>) -> Verifier {
    Verifier {
        signer: Some(Signer {
            secret: b"learner-test-secret-0123456789abcdef".to_vec(),
            domain: "mx.sender.test".into(),
            previous: Vec::new(),
        }),
        all_signed: true,
        authenticator: None,
        hostname: "mx.sender.test".into(),
        learner,
    }
}

/// The split: by the SHA-256 of the file name, first byte even → training part.
fn in_training_part(name: &str) -> bool {
    Sha256::digest(name.as_bytes())[0] % 2 == 0
}

struct Item {
    name: String,
    raw: Vec<u8>,
    label: Label,
}

/// Corpus bounces quoting no Message-ID (genuine) and generated phishing notices (forged).
fn data_set() -> Vec<Item> {
    let mut items = Vec::new();
    let labels = std::fs::read_to_string(corpus_dir().join("labels.jsonl")).unwrap_or_default();
    for line in labels.lines() {
        let label: Value = serde_json::from_str(line).unwrap();
        if label["is_bounce"] != true {
            continue;
        }
        let file = label["file"].as_str().unwrap();
        let raw = std::fs::read(corpus_dir().join(file)).unwrap();
        if mailerd::feedback::parse_bounce(&raw).original.message_id.is_some() {
            continue;
        }
        items.push(Item { name: file.to_string(), raw, label: Label::Genuine });
    }
    for n in 0..400 {
        items.push(Item { name: format!("phish-{n:04}.eml"), raw: phishing::phishing(n), label: Label::Forged });
    }
    items
}

async fn train(store: &dyn Store, raw: &[u8], label: Label) -> Learned {
    let ins = inspect(raw);
    let sample = learn::sample(raw, ins.features, Some(label), TrainSource::Operator, Timestamp::now());
    store.learn(sample, LearnerLimits::default()).await.unwrap()
}

/// Three counts: (genuine, forged, unknown) or (correct, wrong, still unknown).
type Three = (usize, usize, usize);

/// What became of the test part's messages.
#[derive(Default, Debug)]
struct Figures {
    /// Per label (genuine, forged): deterministic genuine, forged, unknown.
    det: [Three; 2],
    /// Of the unknowns per label, at each threshold: correct, wrong, still unknown.
    learned: Vec<(f64, [Three; 2])>,
}

const SWEEP: &[f64] = &[0.9, 0.95, 0.99, 0.999];

/// Trains on one part, tests on the other; `train_part` is which part trains.
async fn measure(items: &[Item], train_part: bool) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).unwrap();
    for it in items.iter().filter(|i| in_training_part(&i.name) == train_part) {
        train(&store, &it.raw, it.label).await;
    }
    let v = verifier(Some(settings(10)));
    let mut f = Figures { learned: SWEEP.iter().map(|t| (*t, Default::default())).collect(), ..Default::default() };
    for it in items.iter().filter(|i| in_training_part(&i.name) != train_part) {
        let got = v.verify(&store, &it.raw, &Envelope::default()).await.unwrap();
        let li = usize::from(it.label == Label::Forged);
        let det = &mut f.det[li];
        match got.verdict {
            Verdict::Genuine => det.0 += 1,
            Verdict::Forged => det.1 += 1,
            Verdict::Unknown | Verdict::LikelyForged | Verdict::LikelyGenuine => {
                det.2 += 1;
                let p = got.learned.map(|p| p.probability_forged);
                for (t, counts) in f.learned.iter_mut() {
                    let c = &mut counts[li];
                    match p {
                        Some(p) if p >= *t => {
                            if it.label == Label::Forged {
                                c.0 += 1
                            } else {
                                c.1 += 1
                            }
                        }
                        Some(p) if p <= 1.0 - *t => {
                            if it.label == Label::Genuine {
                                c.0 += 1
                            } else {
                                c.1 += 1
                            }
                        }
                        _ => c.2 += 1,
                    }
                }
                // The verdict the daemon gives is the one at its threshold.
                let at_threshold = match p {
                    Some(p) if p >= THRESHOLD => Verdict::LikelyForged,
                    Some(p) if p <= 1.0 - THRESHOLD => Verdict::LikelyGenuine,
                    _ => Verdict::Unknown,
                };
                assert_eq!(got.verdict, at_threshold, "{}", it.name);
            }
        }
    }
    f
}

#[tokio::test]
async fn learned_filter_on_a_held_out_split() {
    let items = data_set();
    let corpus = items.iter().filter(|i| i.label == Label::Genuine).count();
    if corpus == 0 {
        println!("SKIP learned filter figures: no corpus at {}", corpus_dir().display());
        return;
    }
    let phish = items.len() - corpus;
    println!(
        "learned filter: {corpus} corpus bounces quoting no Message-ID (genuine) + {phish} generated phishing notices (forged); \
         split by SHA-256 of the file name (first byte even = part A)"
    );
    let mut wrong_at_threshold = 0;
    for (train_part, name) in [(true, "train A, test B"), (false, "train B, test A")] {
        let f = measure(&items, train_part).await;
        println!("  {name}:");
        for (li, what) in [(0, "genuine (corpus)"), (1, "forged (phishing)")] {
            let (g, fo, u) = f.det[li];
            println!("    {what:<18} deterministic verdicts genuine/forged/unknown: {g}/{fo}/{u}");
        }
        for (t, counts) in &f.learned {
            let [(cg, wg, ug), (cf, wf, uf)] = *counts;
            println!(
                "    threshold {t:<5}: of the unknowns, correct {} (genuine {cg}, forged {cf}), wrong {} (genuine called forged {wg}, forged called genuine {wf}), still unknown {}",
                cg + cf,
                wg + wf,
                ug + uf
            );
            if *t == THRESHOLD {
                wrong_at_threshold += wg + wf;
                assert!(cg + cf > 0, "the filter decides some unknowns at {t}");
            }
        }
    }
    assert_eq!(wrong_at_threshold, 0, "no wrong confident verdict at the chosen threshold {THRESHOLD}");
}

/// A phishing notice with a status code and without credential phrases or lures: the
/// deterministic checks leave it `unknown`.
fn quiet_phish(n: u64) -> Vec<u8> {
    format!(
        "Received: from mta{n}.mail-support-desk.example (mta{n}.mail-support-desk.example [198.51.100.{n}]) by mx.local.test (mailerd) with ESMTP id Q{n}; Sat, 28 Nov 2026 10:00:00 +0000\r\n\
         From: Mailbox Support <mailer-daemon@mail-support-desk.example>\r\nTo: app@local.test\r\n\
         Subject: Returned mail: mailbox quota exceeded\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\r\n\r\n\
         --R\r\nContent-Type: text/plain\r\n\r\nYour mailbox storage is at 9{n}% of its limit; new messages are being returned to their senders.\r\n\
         Upgrade storage to keep receiving mail. Storage upgrade desk\r\n\
         --R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mta{n}.mail-support-desk.example\r\n\r\n\
         Final-Recipient: rfc822; app@local.test\r\nAction: failed\r\nStatus: 5.2.2\r\nDiagnostic-Code: smtp; 552 5.2.2 quota exceeded\r\n--R--\r\n"
    )
    .into_bytes()
}

/// A plain genuine-looking bounce of another server, quoting no Message-ID.
fn plain_bounce(n: u64) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@mx{n}.remote.test\r\nTo: app@local.test\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx{n}.remote.test.\r\n\r\n\
         I'm sorry to have to inform you that your message could not be delivered to one or more recipients.\r\n\r\n\
         <user{n}@remote.test>: host mx{n}.remote.test said: 550 5.1.1 <user{n}@remote.test>: Recipient address rejected: User unknown\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx{n}.remote.test\r\n\r\n\
         Final-Recipient: rfc822; user{n}@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n--B--\r\n"
    )
    .into_bytes()
}

/// A credential-phishing notice: damning deterministic evidence.
fn credential_phish(n: u64) -> Vec<u8> {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx{n}.remote.test>\r\nTo: app@local.test\r\nSubject: Undeliverable: messages on hold\r\n\r\n\
         550 5.7.1 delivery suspended. Enter your password at https://mx{n}.remote-login.example/ to release the messages.\r\n"
    )
    .into_bytes()
}

/// Trained to believe the opposite of the evidence, the filter still changes no verdict the
/// evidence made; it speaks only for `unknown` ones.
#[tokio::test]
async fn the_learner_never_overrides_a_deterministic_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db")).unwrap();
    // Poisoned model: credential phishing taught as genuine, plain bounces as forged.
    for n in 0..15 {
        train(&store, &credential_phish(n), Label::Genuine).await;
        train(&store, &plain_bounce(n), Label::Forged).await;
    }
    let v = verifier(Some(settings(5)));
    let det = verifier(None);
    // Damning evidence: forged, whatever the model says.
    let raw = credential_phish(99);
    let got = v.verify(&store, &raw, &Envelope::default()).await.unwrap();
    assert_eq!(got.verdict, Verdict::Forged, "{:?}", got.evidence);
    assert!(got.learned.is_none() && !got.evidence.iter().any(|e| e.check == "learner"));
    // Backscatter: a bounce quoting a Message-ID we never sent is forged, though the model
    // has learned plain bounces as forged and would agree anyway: it is not asked.
    let with_mid = String::from_utf8(plain_bounce(98)).unwrap().replace(
        "--B--",
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: app@local.test\r\nMessage-ID: <never@local.test>\r\n--B--",
    );
    let got = v.verify(&store, with_mid.as_bytes(), &Envelope::default()).await.unwrap();
    assert_eq!(got.verdict, Verdict::Forged);
    assert!(got.learned.is_none());
    // Unknown to the evidence: now the (poisoned) model decides.
    let raw = plain_bounce(97);
    assert_eq!(det.verify(&store, &raw, &Envelope::default()).await.unwrap().verdict, Verdict::Unknown);
    let got = v.verify(&store, &raw, &Envelope::default()).await.unwrap();
    assert_eq!(got.verdict, Verdict::LikelyForged, "{:?}", got.evidence);
    let e = got.evidence.iter().find(|e| e.check == "learner").expect("learner evidence");
    assert!(!e.ok && e.detail.contains("probability"), "{e:?}");
    let j = got.to_json("x.eml");
    assert_eq!(j["verdict"], "likely_forged");
    assert!(j["learner"]["probability_forged"].as_f64().unwrap() >= THRESHOLD, "{j}");
    // Ordinary mail is not a bounce: never judged by the filter.
    let got =
        v.verify(&store, b"From: a@b.test\r\nSubject: lunch\r\n\r\nnoon?\r\n", &Envelope::default()).await.unwrap();
    assert_eq!(got.verdict, Verdict::Unknown);
}

async fn start(dir: &std::path::Path, sections: &str) -> (mailerd::daemon::Handle, String) {
    let toml = base_toml(dir, sections);
    let config = mailerd::config::Config::from_toml(&toml).unwrap();
    (mailerd::daemon::start(config).await.expect("daemon starts"), toml)
}

fn cli(toml: &str, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let config = dir.join("cli.toml");
    std::fs::write(&config, toml).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_mailerd")).arg("--config").arg(&config).args(args).output().unwrap()
}

/// `mailerd bounce train` teaches the daemon's model (the store), which the API's verification
/// then uses; the model is still there after a restart; training again with the other label
/// relabels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_training_persists_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sections = "[listen]\nhttp = \"127.0.0.1:0\"\n[bounce]\nlearner_min_trained = 3\n";
    let (handle, toml) = start(dir.path(), sections).await;
    let files = tempfile::tempdir().unwrap();
    let mut forged = Vec::new();
    let mut genuine = Vec::new();
    for n in 0..6 {
        let f = files.path().join(format!("phish{n}.eml"));
        std::fs::write(&f, quiet_phish(n)).unwrap();
        forged.push(f.display().to_string());
        let g = files.path().join(format!("bounce{n}.eml"));
        std::fs::write(&g, plain_bounce(n)).unwrap();
        genuine.push(g.display().to_string());
    }
    for (label, list) in [("forged", &forged), ("genuine", &genuine)] {
        let mut args = vec!["bounce", "train", label, "--json"];
        args.extend(list.iter().map(String::as_str));
        let out = cli(&toml, dir.path(), &args);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let lines: Vec<Value> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 6);
        assert!(lines.iter().all(|l| l["learned"] == "trained" && l["label"] == label), "{lines:?}");
    }
    let store = SqliteStore::open(&dir.path().join("mailerd.db")).unwrap();
    let (secret, key) = mailerd::http::auth::generate("ops", Scope::All).unwrap();
    store.create_api_key(key).await.unwrap();
    let verify = |api, raw: Vec<u8>, secret: String| async move {
        request(api, "POST", "/api/v1/bounces/verify", Some(&secret), Some(("message/rfc822", raw))).await
    };
    let api = handle.http.unwrap();
    let r = verify(api, quiet_phish(42), secret.clone()).await;
    assert_eq!(r.json["verdict"], "likely_forged", "{}", r.text);
    let r = verify(api, plain_bounce(42), secret.clone()).await;
    assert_eq!(r.json["verdict"], "likely_genuine", "{}", r.text);
    let p_before = r.json["learner"]["probability_forged"].as_f64().unwrap();

    handle.shutdown().await.unwrap();
    let (handle, _) = start(dir.path(), sections).await;
    let api = handle.http.unwrap();
    let r = verify(api, quiet_phish(42), secret.clone()).await;
    assert_eq!(r.json["verdict"], "likely_forged", "after a restart: {}", r.text);
    let r = verify(api, plain_bounce(42), secret.clone()).await;
    assert_eq!(r.json["verdict"], "likely_genuine", "after a restart: {}", r.text);
    assert_eq!(r.json["learner"]["probability_forged"].as_f64().unwrap(), p_before);

    // The same file with the other label: relabelled, not counted twice.
    let out = cli(&toml, dir.path(), &["bounce", "train", "genuine", &forged[0]]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("relabelled as genuine"), "{:?}", out);
    let m = store.learner_model(&[]).await.unwrap();
    assert_eq!((m.forged_messages, m.genuine_messages), (5, 7));
    // A bad label is a usage error.
    let out = cli(&toml, dir.path(), &["bounce", "train", "spam", &forged[0]]);
    assert_eq!(out.status.code(), Some(2));
    handle.shutdown().await.unwrap();
}

async fn queued_id(c: &mut Client, from: &str, to: &str, raw: &[u8]) -> String {
    let r = c.send_mail(from, &[to], std::str::from_utf8(raw).unwrap()).await;
    r.queue_id()
}

async fn sample_of(store: &SqliteStore, id: &str) -> mailerd::store::learner::Sample {
    for _ in 0..1200 {
        if let Some(s) = store.learner_sample(&MessageId(id.into())).await.unwrap() {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let detail = store.message_detail(&MessageId(id.into())).await.unwrap();
    panic!("the daemon recorded no sample of bounce {id}: {detail:?}");
}

/// The daemon records every mailer-daemon message it reads, labelled when the evidence is
/// certain (backscatter and credential requests: forged); the operator labels the others by
/// id over the API, a scoped key only bounces about its own mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_bounces_are_learned_and_labelled_through_the_api() {
    let d = crate::harness::TestDaemon::with(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[routes]\n\"dest.test\" = \"127.0.0.1:9\"\n",
    )
    .await;
    d.add_user("app@local.test", "pw", None).await;
    let store = d.store();
    let mut secrets = Vec::new();
    for (name, s) in [
        ("ops", Scope::All),
        ("shop-a", Scope::Domains(vec![Domain::parse("a.example").unwrap()])),
        ("shop-b", Scope::Domains(vec![Domain::parse("b.example").unwrap()])),
    ] {
        let (secret, key) = mailerd::http::auth::generate(name, s).unwrap();
        store.create_api_key(key).await.unwrap();
        secrets.push(secret);
    }
    let (admin, key_a, key_b) = (secrets[0].clone(), secrets[1].clone(), secrets[2].clone());
    let api = d.http.unwrap();
    let sent = post_json(
        api,
        "/api/v1/messages",
        Some(&key_a),
        &json!({"from": "app@a.example", "to": ["x0@dest.test"], "subject": "hi", "text": "hello"}),
    )
    .await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let mid = sent.json["message_id"].as_str().unwrap().to_string();
    let sent_id = sent.json["id"].as_str().unwrap().to_string();

    let mut c = Client::connect(d.smtp).await;
    // A bounce about a's message (the sent log knows it): genuine, but not certain (no token).
    let about_a = String::from_utf8(plain_bounce(1)).unwrap().replace(
        "--B--",
        &format!(
            "--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: app@a.example\r\nTo: user1@remote.test\r\nMessage-ID: {mid}\r\n--B--"
        ),
    );
    let about_a = about_a.replace("user1@remote.test", "x0@dest.test");
    let id_a = queued_id(&mut c, "", "app@local.test", about_a.as_bytes()).await;
    // Unknown to the evidence, about no message of ours.
    let mut c = Client::connect(d.smtp).await;
    let id_quiet = queued_id(&mut c, "", "app@local.test", &quiet_phish(3)).await;
    // Certain: backscatter for mail never sent, and a request for credentials.
    let backscatter = String::from_utf8(plain_bounce(2)).unwrap().replace(
        "--B--",
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: app@local.test\r\nMessage-ID: <never-sent@local.test>\r\n--B--",
    );
    let mut c = Client::connect(d.smtp).await;
    let id_back = queued_id(&mut c, "", "app@local.test", backscatter.as_bytes()).await;
    let mut c = Client::connect(d.smtp).await;
    let id_cred = queued_id(&mut c, "", "app@local.test", &credential_phish(4)).await;

    let s = sample_of(&store, &id_a).await;
    assert_eq!((s.label, s.original.as_ref().map(|o| o.0.as_str())), (None, Some(sent_id.as_str())));
    assert!(!s.tokens.is_empty());
    let s = sample_of(&store, &id_quiet).await;
    assert_eq!((s.label, s.original.clone()), (None, None));
    for id in [&id_back, &id_cred] {
        let s = sample_of(&store, id).await;
        assert_eq!((s.label, s.source), (Some(Label::Forged), TrainSource::Auto), "bounce {id}");
    }
    let m = store.learner_model(&[]).await.unwrap();
    assert_eq!((m.forged_messages, m.genuine_messages), (2, 0), "auto-trained from the certain verdicts only");

    let verdict = |id: String, key: Option<String>, body: Value| async move {
        post_json(api, &format!("/api/v1/bounces/{id}/verdict"), key.as_deref(), &body).await
    };
    let genuine = json!({"verdict": "genuine"});
    let forged = json!({"verdict": "forged"});
    // Scopes: b's key does not know a's bounce; a's key labels it.
    let r = verdict(id_a.clone(), Some(key_b.clone()), genuine.clone()).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = verdict(id_a.clone(), Some(key_a.clone()), genuine.clone()).await;
    assert_eq!((r.status, r.json["learned"].as_str()), (200, Some("trained")), "{}", r.text);
    let r = verdict(id_a.clone(), Some(key_a.clone()), genuine.clone()).await;
    assert_eq!(r.json["learned"], "unchanged", "{}", r.text);
    let r = verdict(id_a.clone(), Some(admin.clone()), forged.clone()).await;
    assert_eq!(r.json["learned"], "relabelled", "{}", r.text);
    // A bounce about no message of ours: only an admin key may label it.
    let r = verdict(id_quiet.clone(), Some(key_a.clone()), forged.clone()).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = verdict(id_quiet.clone(), Some(admin.clone()), forged.clone()).await;
    assert_eq!((r.status, r.json["learned"].as_str()), (200, Some("trained")), "{}", r.text);
    // The operator overrides an automatic label.
    let r = verdict(id_back.clone(), Some(admin.clone()), genuine.clone()).await;
    assert_eq!(r.json["learned"], "relabelled", "{}", r.text);
    let m = store.learner_model(&[]).await.unwrap();
    assert_eq!((m.forged_messages, m.genuine_messages), (3, 1));
    // Errors.
    let r = verdict("NOSUCHBOUNCE".into(), Some(admin.clone()), forged.clone()).await;
    assert_eq!(r.status, 404);
    let r = verdict(id_a.clone(), Some(admin.clone()), json!({"verdict": "spam"})).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("verdict")), "{}", r.text);
    let r = verdict(id_a.clone(), None, forged.clone()).await;
    assert_eq!(r.status, 401, "{}", r.text);
}
