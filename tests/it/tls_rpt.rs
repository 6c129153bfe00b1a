//! TLS reporting (RFC 8460) end to end on loopback: deliveries under an MTA-STS policy
//! (verified TLS, and a destination whose STARTTLS is stripped) and without one are counted;
//! when the test moves the daemon's clock past midnight, the daily reports go by mail through
//! the queue to a mailerd peer for `reports.test` (DKIM-signed) and by HTTPS POST to a local
//! receiver with a test-CA certificate; each is gunzipped, parsed, and its counts compared
//! with the sessions.

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use mail_auth::{AuthenticatedMessage, DkimResult};
use mail_parser::MimeHeaders as _;
use mailerd::store::{RecipientState, RecipientView, Store};
use mailerd::time::{Clock, Timestamp};
use mailerd::tlspolicy::Day;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use crate::harness::TestDaemon;
use crate::harness::dns::TestDns;
use crate::harness::sink::Sink;
use crate::harness::sts::{PolicyServer, TestCa};
use crate::mta_sts::{common_port, enforce, peer, send, wait_for, zone};

/// What the receiver got: (path, Content-Type, body) per POST.
type Posts = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// An HTTPS server on 127.0.0.1 (certificate for `name` from the test CA) that answers 200 to
/// every POST and keeps each request's path, Content-Type and body.
struct Receiver {
    addr: SocketAddr,
    posts: Posts,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(ca: &TestCa, name: &str) -> Receiver {
        let (cert, key) = ca.issue("rua", &[name]);
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(&cert).unwrap().map(|c| c.unwrap()).collect();
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, PrivateKeyDer::from_pem_file(&key).unwrap())
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let posts: Posts = Arc::default();
        let kept = posts.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, kept) = (acceptor.clone(), kept.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let kept = kept.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            let ctype = req
                                .headers()
                                .get(hyper::header::CONTENT_TYPE)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string();
                            let status = if req.method() == hyper::Method::POST { 200 } else { 405 };
                            let body =
                                req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
                            kept.lock().unwrap().push((path, ctype, body));
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder().status(status).body(Full::new(Bytes::new())).unwrap(),
                            )
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        Receiver { addr, posts, task }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn gunzip_json(gz: &[u8]) -> Value {
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz).read_to_string(&mut text).expect("gzip");
    serde_json::from_str(&text).expect("JSON report")
}

/// The one policy entry of `report` of the given type.
fn policy<'a>(report: &'a Value, kind: &str) -> &'a Value {
    let all: Vec<&Value> =
        report["policies"].as_array().unwrap().iter().filter(|p| p["policy"]["policy-type"] == kind).collect();
    assert_eq!(all.len(), 1, "one {kind} policy in {report:#}");
    all[0]
}

fn summary(p: &Value) -> (u64, u64) {
    let s = &p["summary"];
    (s["total-successful-session-count"].as_u64().unwrap(), s["total-failure-session-count"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_report_counts_the_sessions_and_goes_by_mail_and_https() {
    let ca = TestCa::new();
    let port = common_port();
    let https = PolicyServer::start(&ca, &["good.test", "plain.test", "broken.test"]).await;
    https.set("good.test", 200, &enforce(&["mx.good.test"]));
    https.set("plain.test", 200, &enforce(&["mx.plain.test"]));
    // broken.test announces a policy its server cannot give: delivered as without one.
    https.set("broken.test", 500, "oops");
    let receiver = Receiver::start(&ca, "rua.reports.test").await;
    let rua_https = format!("https://rua.reports.test:{}/v1/tlsrpt", receiver.addr.port());

    let keys = tempfile::tempdir().unwrap();
    let (key_file, dkim_record) = crate::harness::dns::dkim_key(keys.path());
    let mut records = vec![dkim_record];
    records.extend(zone("good.test", "1", &[("mx.good.test", "127.0.0.2")]));
    records.extend(zone("plain.test", "1", &[("mx.plain.test", "127.0.0.4")]));
    records.extend(zone("broken.test", "9", &[("mx.broken.test", "127.0.0.2")]));
    records.extend([
        "--mx-host=nopolicy.test,mx.nopolicy.test,10".to_string(),
        "--host-record=mx.nopolicy.test,127.0.0.2".to_string(),
        "--mx-host=reports.test,mx.reports.test,10".to_string(),
        "--host-record=mx.reports.test,127.0.0.3".to_string(),
        "--host-record=rua.reports.test,127.0.0.1".to_string(),
        // dnsmasq cannot put a comma in a TXT record, so each domain has one rua here (lists
        // of them are parsed in `tlspolicy`'s unit tests).
        "--txt-record=_smtp._tls.good.test,v=TLSRPTv1; rua=mailto:tlsrpt@reports.test".to_string(),
        format!("--txt-record=_smtp._tls.plain.test,v=TLSRPTv1;rua={rua_https}"),
        "--txt-record=_smtp._tls.nopolicy.test,v=TLSRPTv1; rua=mailto:tlsrpt@reports.test".to_string(),
        "--txt-record=_smtp._tls.broken.test,v=TLSRPTv1; rua=mailto:tlsrpt@reports.test".to_string(),
    ]);
    let Some(dns) = TestDns::start(&records).await else { return };

    let names = ["mx.good.test", "mx.nopolicy.test", "mx.broken.test"];
    let a = peer(&ca, "a", "127.0.0.2", port, &names, &["good.test", "nopolicy.test", "broken.test"]).await;
    a.add_user("alice@good.test", "pw", None).await;
    a.add_user("bob@broken.test", "pw", None).await;
    a.add_user("nina@nopolicy.test", "pw", None).await;
    let b = peer(&ca, "b", "127.0.0.3", port, &["mx.reports.test"], &["reports.test"]).await;
    b.add_user("tlsrpt@reports.test", "pw", None).await;
    // plain.test's MX offers no STARTTLS: what an attacker stripping it looks like.
    let _plain = Sink::start_at(format!("127.0.0.4:{port}").parse().unwrap()).await;

    let start = Timestamp::now();
    let clock = Clock::manual(start);
    let src = TestDaemon::with_clock(
        &format!(
            "[local]\ndomains = [\"sender.test\"]\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n\
             [dns]\nnameservers = [\"{}\"]\n[outbound]\nmx_port = {port}\nmta_sts_port = {}\nmta_sts_timeout = 5\n\
             max_messages_per_connection = 1\ntls_rpt = true\ntls_rpt_from = \"tls-reports@sender.test\"\n\
             tls_rpt_organization = \"Sender Test Org\"\n[retry]\nfirst = 3600\n[tls]\nca_file = \"{}\"\n\
             [dkim]\ndomain = \"sender.test\"\nselector = \"s1\"\nkey = \"{}\"\n",
            dns.addr,
            https.addr.port(),
            ca.ca_file.display(),
            key_file.display()
        ),
        clock.clone(),
    )
    .await;
    src.add_user("app@sender.test", "pw", None).await;

    // Sessions of the day: good.test twice over verified TLS (one message per connection),
    // plain.test once with STARTTLS stripped (deferred under enforce), nopolicy.test once, and
    // broken.test once after its policy fetch failed.
    let tried = |r: &[RecipientView]| r.iter().all(|x| x.attempts > 0 || x.state == RecipientState::Delivered);
    let rcpts = ["alice@good.test", "erin@plain.test", "nina@nopolicy.test", "bob@broken.test"];
    let first = wait_for(&src, &send(&src, &rcpts, "counted").await, tried).await;
    let state = |who: &str| first.iter().find(|r| r.address == who).unwrap().state;
    assert_eq!(
        [state("alice@good.test"), state("erin@plain.test"), state("nina@nopolicy.test"), state("bob@broken.test")],
        [RecipientState::Delivered, RecipientState::Deferred, RecipientState::Delivered, RecipientState::Delivered],
        "{first:#?}"
    );
    let second = wait_for(&src, &send(&src, &["alice@good.test"], "counted").await, tried).await;
    assert_eq!(second[0].state, RecipientState::Delivered, "{second:?}");

    let day = Day::of(start);
    let store = src.store();
    let due = store.tls_report_due(day.next()).await.unwrap();
    for d in ["broken.test", "good.test", "nopolicy.test", "plain.test"] {
        assert!(due.contains(&(day, d.to_string())), "{d} counted: {due:?}");
    }
    assert!(b.maildir_files("reports.test", "tlsrpt").is_empty(), "nothing before the day is over");

    // Past midnight: the day's reports go out.
    clock.set(day.next().start().plus(Duration::from_secs(1800)));
    let mails = b.wait_maildir("reports.test", "tlsrpt", 3).await;
    for _ in 0..400 {
        if !receiver.posts.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let verifier = dns.authenticator();

    let mut by_mail = std::collections::BTreeMap::new();
    for file in &mails {
        let raw = std::fs::read(file).unwrap();
        let auth = AuthenticatedMessage::parse(&raw).expect("message parses");
        let dkim = verifier.verify_dkim(&auth).await;
        assert!(dkim.iter().any(|r| r.result() == &DkimResult::Pass), "DKIM-signed: {dkim:?}");
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let header = |name: &str| m.header_raw(name).map(|v| v.trim().to_string()).unwrap_or_default();
        let domain = header("TLS-Report-Domain");
        assert_eq!(header("TLS-Report-Submitter"), "sender.test");
        assert_eq!(header("From"), "tls-reports@sender.test");
        let subject = m.subject().unwrap().to_string();
        assert!(
            subject.starts_with(&format!("Report Domain: {domain} Submitter: sender.test Report-ID: <")),
            "{subject}"
        );
        let ctype = m.content_type().unwrap();
        assert_eq!(
            (ctype.ctype(), ctype.subtype(), ctype.attribute("report-type")),
            ("multipart", Some("report"), Some("tlsrpt"))
        );
        let attachment = m.attachments().next().expect("the report attached");
        let actype = attachment.content_type().unwrap();
        assert_eq!((actype.ctype(), actype.subtype()), ("application", Some("tlsrpt+gzip")));
        let name = attachment.attachment_name().unwrap().to_string();
        let (begin, end) = (day.start().millis() / 1000, day.last_second().millis() / 1000);
        assert_eq!(name, format!("sender.test!{domain}!{begin}!{end}.json.gz"));
        let report = gunzip_json(attachment.contents());
        assert!(subject.ends_with(&format!("<{}>", report["report-id"].as_str().unwrap())), "{subject}");
        by_mail.insert(domain, report);
    }
    let domains: Vec<&String> = by_mail.keys().collect();
    assert_eq!(domains, ["broken.test", "good.test", "nopolicy.test"], "one mail per mailto: rua");

    let good = &by_mail["good.test"];
    assert_eq!(good["organization-name"], "Sender Test Org");
    assert_eq!(good["contact-info"], "tls-reports@sender.test");
    assert_eq!(good["date-range"]["start-datetime"].as_str().unwrap(), day.start().iso8601());
    assert_eq!(good["date-range"]["end-datetime"].as_str().unwrap(), day.last_second().iso8601());
    assert_eq!(good["policies"].as_array().unwrap().len(), 1, "{good:#}");
    let sts = policy(good, "sts");
    assert_eq!(summary(sts), (2, 0), "two verified sessions: {good:#}");
    assert_eq!(sts["policy"]["policy-domain"], "good.test");
    assert_eq!(sts["policy"]["mx-host"], serde_json::json!(["mx.good.test"]));
    assert_eq!(
        sts["policy"]["policy-string"],
        serde_json::json!(["version: STSv1", "mode: enforce", "mx: mx.good.test", "max_age: 86400"])
    );
    let none = policy(&by_mail["nopolicy.test"], "no-policy-found");
    assert_eq!(summary(none), (1, 0), "TLS without a policy: {none:#}");
    assert!(none["policy"].get("policy-string").is_none(), "{none:#}");
    // broken.test: the failed fetch under its announced policy, then the session without one.
    let broken = &by_mail["broken.test"];
    let fetch = policy(broken, "sts");
    assert_eq!(summary(fetch), (0, 1), "{broken:#}");
    assert_eq!(fetch["failure-details"][0]["result-type"], "sts-policy-fetch-error", "{broken:#}");
    assert_eq!(fetch["policy"]["policy-string"], serde_json::json!([]), "nothing was fetched");
    assert_eq!(summary(policy(broken, "no-policy-found")), (1, 0), "{broken:#}");

    // HTTPS: plain.test's report, POSTed gzipped.
    let posts = receiver.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "{:?}", posts.iter().map(|p| &p.0).collect::<Vec<_>>());
    let (path, ctype, body) = &posts[0];
    assert_eq!((path.as_str(), ctype.as_str()), ("/v1/tlsrpt", "application/tlsrpt+gzip"));
    let report = gunzip_json(body);
    assert_eq!(report["organization-name"], "Sender Test Org");
    let plain = policy(&report, "sts");
    assert_eq!(plain["policy"]["policy-domain"], "plain.test");
    assert_eq!(summary(plain), (0, 1), "{plain:#}");
    let details = plain["failure-details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{plain:#}");
    assert_eq!(details[0]["result-type"], "starttls-not-supported");
    assert_eq!(details[0]["receiving-mx-hostname"], "mx.plain.test");
    assert_eq!(details[0]["receiving-ip"], "127.0.0.4");
    assert_eq!(details[0]["sending-mta-ip"], "127.0.0.1", "our end of the stripped session");
    assert_eq!(details[0]["failed-session-count"], 1);

    // The counts were taken: the same day is not reported again.
    assert!(store.tls_report_due(day.next()).await.unwrap().is_empty());
    clock.set(day.next().start().plus(Duration::from_secs(3600)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.maildir_files("reports.test", "tlsrpt").len(), 3);
    assert_eq!(receiver.posts.lock().unwrap().len(), 1);
}
