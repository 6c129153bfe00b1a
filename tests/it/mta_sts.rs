//! MTA-STS (RFC 8461) end to end on loopback: dnsmasq serves the MX, `_mta-sts` TXT and
//! `mta-sts.DOMAIN` records, an HTTPS server with a test-CA certificate serves the policies,
//! and the destinations are mailerd peers with test-CA certificates (127.0.0.2, 127.0.0.3)
//! and a sink without STARTTLS (127.0.0.4), all on one MX port. The sender trusts the test CA
//! through `tls.ca_file`.

use std::net::SocketAddr;
use std::time::Duration;

use mailerd::store::{MessageId, RecipientState, RecipientView, Store};
use mailerd::tlspolicy::TlsResult;

use crate::harness::dns::TestDns;
use crate::harness::sink::Sink;
use crate::harness::sts::{PolicyServer, TestCa};
use crate::harness::{Client, TestDaemon};

/// A port free on 127.0.0.2, .3 and .4 alike (the one MX port of every peer).
pub(crate) fn common_port() -> u16 {
    for _ in 0..50 {
        let a = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        let port = a.local_addr().unwrap().port();
        let free = ["127.0.0.3", "127.0.0.4"].iter().all(|ip| std::net::TcpListener::bind((*ip, port)).is_ok());
        if free {
            return port;
        }
    }
    panic!("no common free port");
}

pub(crate) fn enforce(mx: &[&str]) -> String {
    policy("enforce", mx)
}

pub(crate) fn policy(mode: &str, mx: &[&str]) -> String {
    let mx: String = mx.iter().map(|m| format!("mx: {m}\r\n")).collect();
    format!("version: STSv1\r\nmode: {mode}\r\n{mx}max_age: 86400\r\n")
}

/// dnsmasq records of a domain with MTA-STS: MX hosts (name, address), the TXT record with
/// `id`, and `mta-sts.DOMAIN` on 127.0.0.1.
pub(crate) fn zone(domain: &str, id: &str, mx: &[(&str, &str)]) -> Vec<String> {
    let mut r = vec![
        format!("--txt-record=_mta-sts.{domain},v=STSv1; id={id}"),
        format!("--host-record=mta-sts.{domain},127.0.0.1"),
    ];
    for (i, (host, ip)) in mx.iter().enumerate() {
        r.push(format!("--mx-host={domain},{host},{}", 10 * (i + 1)));
        r.push(format!("--host-record={host},{ip}"));
    }
    r
}

/// A mailerd peer at `ip`:`port` with a test-CA certificate for `names`, receiving for `domains`.
pub(crate) async fn peer(
    ca: &TestCa,
    label: &str,
    ip: &str,
    port: u16,
    names: &[&str],
    domains: &[&str],
) -> TestDaemon {
    let (cert, key) = ca.issue(label, names);
    let domains: Vec<String> = domains.iter().map(|d| format!("\"{d}\"")).collect();
    TestDaemon::with(&format!(
        "[listen]\nsmtp = \"{ip}:{port}\"\n[local]\ndomains = [{}]\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        domains.join(", "),
        cert.display(),
        key.display()
    ))
    .await
}

async fn sender(dns: SocketAddr, port: u16, https: SocketAddr, ca: &TestCa, extra: &str) -> TestDaemon {
    let src = TestDaemon::with(&format!(
        "[local]\ndomains = [\"sender.test\"]\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n\
         [dns]\nnameservers = [\"{dns}\"]\n[outbound]\nmx_port = {port}\nmta_sts_port = {}\nmta_sts_timeout = 5\n{extra}\
         [tls]\nca_file = \"{}\"\n",
        https.port(),
        ca.ca_file.display()
    ))
    .await;
    src.add_user("app@sender.test", "pw", None).await;
    src
}

pub(crate) async fn send(src: &TestDaemon, rcpts: &[&str], subject: &str) -> String {
    let body = format!("From: app@sender.test\r\nSubject: {subject}\r\n\r\nhello\r\n");
    let reply = Client::connect(src.smtp).await.send_mail("app@sender.test", rcpts, &body).await;
    reply.expect("250");
    reply.queue_id()
}

/// The recipients of `id` once `done` says they are where the test wants them.
pub(crate) async fn wait_for(
    src: &TestDaemon,
    id: &str,
    done: impl Fn(&[RecipientView]) -> bool,
) -> Vec<RecipientView> {
    let store = src.store();
    for _ in 0..600 {
        let m = store.message_detail(&MessageId(id.into())).await.unwrap().expect("message");
        if done(&m.entry.recipients) {
            return m.entry.recipients;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let m = store.message_detail(&MessageId(id.into())).await.unwrap().expect("message");
    panic!("recipients of {id} never got there: {:#?}", m.entry.recipients);
}

/// `mailerd tls status DOMAIN [--json]` on the data dir of `src`: exit code and output.
fn tls_status(src: &TestDaemon, domain: &str, json: bool) -> (Option<i32>, String) {
    let config = src.dir.path().join("cli.toml");
    let toml = format!("hostname = \"mx.local.test\"\ndata_dir = \"{}\"\n", src.dir.path().display());
    std::fs::write(&config, toml).unwrap();
    let mut args = vec!["tls", "status", domain];
    if json {
        args.push("--json");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .arg("--config")
        .arg(&config)
        .args(&args)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn tried(r: &RecipientView) -> bool {
    r.attempts > 0 || !matches!(r.state, RecipientState::Queued | RecipientState::Deferred)
}

fn by<'a>(rcpts: &'a [RecipientView], address: &str) -> &'a RecipientView {
    rcpts.iter().find(|r| r.address == address).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_and_testing_modes_decide_where_and_how_mail_goes() {
    let ca = TestCa::new();
    let port = common_port();
    let domains = ["good.test", "other.test", "nomatch.test", "mismatch.test", "plain.test", "testing.test"];
    let https = PolicyServer::start(&ca, &domains).await;
    https.set("good.test", 200, &enforce(&["mx.good.test"]));
    // other.test's first MX (a working server with a valid certificate) is not in its policy.
    https.set("other.test", 200, &enforce(&["*.other.test.example", "mx2.other.test"]));
    https.set("nomatch.test", 200, &enforce(&["mx.elsewhere.test"]));
    https.set("mismatch.test", 200, &enforce(&["mx.mismatch.test"]));
    https.set("plain.test", 200, &enforce(&["mx.plain.test"]));
    https.set("testing.test", 200, &policy("testing", &["mx.testing.test"]));
    let mut records = Vec::new();
    records.extend(zone("good.test", "1", &[("mx.good.test", "127.0.0.2")]));
    records.extend(zone("other.test", "1", &[("mx1.other.test", "127.0.0.3"), ("mx2.other.test", "127.0.0.2")]));
    records.extend(zone("nomatch.test", "1", &[("mx.nomatch.test", "127.0.0.2")]));
    records.extend(zone("mismatch.test", "1", &[("mx.mismatch.test", "127.0.0.3")]));
    records.extend(zone("plain.test", "1", &[("mx.plain.test", "127.0.0.4")]));
    records.extend(zone("testing.test", "1", &[("mx.testing.test", "127.0.0.4")]));
    let Some(dns) = TestDns::start(&records).await else { return };

    let a = peer(
        &ca,
        "a",
        "127.0.0.2",
        port,
        &["mx.good.test", "mx2.other.test", "mx.nomatch.test"],
        &["good.test", "other.test", "nomatch.test"],
    )
    .await;
    let b = peer(&ca, "b", "127.0.0.3", port, &["mx1.other.test"], &["other.test", "mismatch.test"]).await;
    for (d, user) in [(&a, "alice@good.test"), (&a, "bob@other.test"), (&a, "carol@nomatch.test")] {
        d.add_user(user, "pw", None).await;
    }
    b.add_user("bob@other.test", "pw", None).await;
    b.add_user("dave@mismatch.test", "pw", None).await;
    let plain = Sink::start_at(format!("127.0.0.4:{port}").parse().unwrap()).await;
    let src = sender(dns.addr, port, https.addr, &ca, "[retry]\nfirst = 1\nmax_age = 4\n").await;

    let rcpts = [
        "alice@good.test",
        "bob@other.test",
        "carol@nomatch.test",
        "dave@mismatch.test",
        "erin@plain.test",
        "frank@testing.test",
    ];
    let id = send(&src, &rcpts, "under policy").await;
    let r = wait_for(&src, &id, |r| r.iter().all(tried)).await;

    // enforce + valid: delivered over TLS verified for mx.good.test; the journey names the policy.
    let alice = by(&r, "alice@good.test");
    assert_eq!(alice.state, RecipientState::Delivered, "{alice:?}");
    assert!(
        alice.last_detail.as_deref().unwrap().ends_with("(TLS policy: MTA-STS enforce, id 1 (fetched): success)"),
        "{alice:?}"
    );
    let text = std::fs::read_to_string(&a.wait_maildir("good.test", "alice", 1).await[0]).unwrap();
    assert!(text.contains("with ESMTPS"), "received over TLS: {text}");

    // enforce + MX not in the policy: mx1.other.test is skipped although it answers.
    let bob = by(&r, "bob@other.test");
    assert_eq!(bob.state, RecipientState::Delivered, "{bob:?}");
    assert!(bob.remote_mta.as_deref().unwrap().starts_with("mx2.other.test[127.0.0.2]"), "{bob:?}");
    a.wait_maildir("other.test", "bob", 1).await;
    assert!(b.maildir_files("other.test", "bob").is_empty(), "the host outside the policy got nothing");

    // enforce + no MX in the policy: not delivered anywhere, deferred 4.7.5.
    let carol = by(&r, "carol@nomatch.test");
    assert_eq!(carol.last_status.as_deref(), Some("4.7.5"), "{carol:?}");
    assert!(carol.last_detail.as_deref().unwrap().contains("matches the policy's mx (mx.elsewhere.test)"), "{carol:?}");
    // enforce + a certificate for another name: deferred 4.7.5.
    let dave = by(&r, "dave@mismatch.test");
    assert_eq!(dave.last_status.as_deref(), Some("4.7.5"), "{dave:?}");
    assert!(
        dave.last_detail.as_deref().unwrap().contains("certificate not valid for name \"mx.mismatch.test\""),
        "{dave:?}"
    );
    // enforce + no STARTTLS: deferred 4.7.5, nothing sent in the clear.
    let erin = by(&r, "erin@plain.test");
    assert_eq!(erin.last_status.as_deref(), Some("4.7.5"), "{erin:?}");
    assert!(erin.last_detail.as_deref().unwrap().contains("does not offer STARTTLS"), "{erin:?}");
    // testing: delivered to the same server without TLS, and reported.
    let frank = by(&r, "frank@testing.test");
    assert_eq!(frank.state, RecipientState::Delivered, "{frank:?}");
    assert!(
        frank.last_detail.as_deref().unwrap().contains(
            "(TLS policy: MTA-STS testing, id 1 (fetched): starttls-not-supported, delivered anyway (testing))"
        ),
        "{frank:?}"
    );
    let got: Vec<Vec<String>> = plain.received.lock().unwrap().iter().map(|m| m.rcpts.clone()).collect();
    assert_eq!(got, vec![vec!["frank@testing.test".to_string()]], "the sink got the testing domain's mail only");

    // The last result per domain, for `mailerd tls status`.
    let store = src.store();
    for (domain, result) in [
        ("good.test", TlsResult::Success),
        ("other.test", TlsResult::Success),
        ("nomatch.test", TlsResult::MxNotInPolicy),
        ("mismatch.test", TlsResult::CertificateHostMismatch),
        ("plain.test", TlsResult::StartTlsNotSupported),
        ("testing.test", TlsResult::StartTlsNotSupported),
    ] {
        let last = store.tls_result(domain).await.unwrap().unwrap_or_else(|| panic!("no result for {domain}"));
        assert_eq!(last.result, result, "{domain}: {last:?}");
    }

    // `outbound.tls_rpt` is off: no session was counted for a TLS report.
    let nothing = store.tls_report_due(mailerd::tlspolicy::Day(i64::MAX)).await.unwrap();
    assert!(nothing.is_empty(), "{nothing:?}");

    // `mailerd tls status`: the policy in force and the last result, from the store.
    let (code, out) = tls_status(&src, "other.test", true);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["source"].as_str(), v["policy"]["mode"].as_str(), v["policy"]["id"].as_str()),
        (Some("mta-sts"), Some("enforce"), Some("1"))
    );
    assert_eq!(v["policy"]["mx"], serde_json::json!(["*.other.test.example", "mx2.other.test"]));
    assert_eq!(v["policy"]["expired"], false);
    assert_eq!(v["last_result"]["result"], "success");
    assert!(v["last_result"]["detail"].as_str().unwrap().contains("mx2.other.test"), "{v}");
    let (code, out) = tls_status(&src, "Plain.Test", false);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("MTA-STS enforce: only mx.plain.test over verified TLS"), "{out}");
    assert!(out.contains("starttls-not-supported"), "{out}");
    let (_, out) = tls_status(&src, "unknown.test", true);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["source"].as_str(), &v["policy"], &v["last_result"]),
        (Some("none"), &serde_json::Value::Null, &serde_json::Value::Null)
    );
    assert_eq!(tls_status(&src, "not a domain", false).0, Some(2));

    // After retry.max_age the deferred recipients expire; the DSN explains the TLS policy.
    let r = wait_for(&src, &id, |r| r.iter().all(|x| x.state != RecipientState::Deferred)).await;
    for who in ["carol@nomatch.test", "dave@mismatch.test", "erin@plain.test"] {
        assert_eq!(by(&r, who).state, RecipientState::Expired, "{r:?}");
    }
    // The recipients expire one by one: their DSNs may be one or several.
    let mut dsn = String::new();
    for _ in 0..400 {
        let files = src.maildir_files("sender.test", "app");
        dsn = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
        if ["carol@nomatch.test", "dave@mismatch.test", "erin@plain.test"]
            .iter()
            .all(|r| dsn.contains(&format!("Final-Recipient: rfc822; {r}")))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let unfolded = dsn.replace("\r\n\t", " ").replace("\r\n            ", " ").replace("\r\n    ", " ");
    assert!(unfolded.contains("MTA-STS policy (enforce, id 1) of plain.test"), "{dsn}");
    assert!(unfolded.contains("Status: 4.7.5"), "{dsn}");
    assert!(!unfolded.contains("Status: 4.4.7"), "{dsn}");
    assert!(unfolded.contains("does not offer STARTTLS"), "{dsn}");
    assert!(unfolded.contains("certificate not valid for name"), "{dsn}");
    assert!(
        unfolded.contains("Fix: TLS with the receiving server could not be set up or verified as required"),
        "the TLS advice: {dsn}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cached_policy_is_used_refreshed_on_a_new_id_and_kept_when_a_fetch_fails() {
    let ca = TestCa::new();
    let port = common_port();
    let https = PolicyServer::start(&ca, &["good.test"]).await;
    https.set("good.test", 200, &enforce(&["mx.good.test"]));
    let mx = [("mx.good.test", "127.0.0.2")];
    let Some(mut dns) = TestDns::start(&zone("good.test", "1", &mx)).await else { return };
    let a = peer(&ca, "a", "127.0.0.2", port, &["mx.good.test"], &["good.test"]).await;
    a.add_user("alice@good.test", "pw", None).await;
    // One message per connection: every delivery asks for the policy in force.
    let src = sender(dns.addr, port, https.addr, &ca, "max_messages_per_connection = 1\n").await;
    let delivered = |r: &[RecipientView]| r.iter().all(|x| x.state == RecipientState::Delivered);
    let detail = |r: Vec<RecipientView>| r[0].last_detail.clone().unwrap();

    let first = detail(wait_for(&src, &send(&src, &["alice@good.test"], "1").await, delivered).await);
    assert!(first.ends_with("(TLS policy: MTA-STS enforce, id 1 (fetched): success)"), "{first}");
    assert_eq!(https.fetches("good.test"), 1);
    let second = detail(wait_for(&src, &send(&src, &["alice@good.test"], "2").await, delivered).await);
    assert!(second.ends_with("(TLS policy: MTA-STS enforce, id 1 (cached): success)"), "{second}");
    assert_eq!(https.fetches("good.test"), 1, "the same id: no fetch");

    // A new id: fetched again, and the store holds the new policy.
    https.set("good.test", 200, &enforce(&["mx.good.test", "*.good.test"]));
    dns.restart(&zone("good.test", "2", &mx)).await;
    let third = detail(wait_for(&src, &send(&src, &["alice@good.test"], "3").await, delivered).await);
    assert!(third.ends_with("(TLS policy: MTA-STS enforce, id 2 (fetched): success)"), "{third}");
    assert_eq!(https.fetches("good.test"), 2);
    let cached = src.store().sts_policy("good.test").await.unwrap().unwrap();
    assert_eq!((cached.id.as_str(), cached.policy.mx_list().as_str()), ("2", "mx.good.test, *.good.test"));

    // Another id whose policy cannot be fetched: the cached policy (id 2) stays in force.
    https.set("good.test", 500, "oops");
    dns.restart(&zone("good.test", "3", &mx)).await;
    let fourth = detail(wait_for(&src, &send(&src, &["alice@good.test"], "4").await, delivered).await);
    assert!(fourth.contains("MTA-STS enforce, id 2 (cached; fetch failed: the policy answered HTTP 500"), "{fourth}");
    assert_eq!(https.fetches("good.test"), 3);
    assert_eq!(src.store().sts_policy("good.test").await.unwrap().unwrap().id, "2");
    assert_eq!(a.wait_maildir("good.test", "alice", 4).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_fetches_are_bounded_strict_and_verified() {
    use std::sync::Arc;

    use mailerd::dns::Dns;
    use mailerd::outbound::sts::{FetchError, Sts};
    use mailerd::outbound::trust::Trust;
    use mailerd::store::sqlite::SqliteStore;

    let ca = TestCa::new();
    let served = ["big.test", "html.test", "moved.test", "invalid.test", "ok.test"];
    let https = PolicyServer::start(&ca, &served).await;
    https.set("big.test", 200, &"x".repeat(70 * 1024));
    https.set_typed("html.test", 200, "text/html", &enforce(&["mx.html.test"]));
    https.set("moved.test", 301, &enforce(&["mx.moved.test"]));
    https.set("invalid.test", 200, "version: STSv1\nmode: sometimes\nmx: mx.invalid.test\nmax_age: 60\n");
    https.set("ok.test", 200, &enforce(&["mx.ok.test"]));
    let mut records = Vec::new();
    // uncovered.test: its policy host is the same server, whose certificate does not name it.
    for d in served.iter().chain(&["uncovered.test"]) {
        records.extend(zone(d, "1", &[]));
    }
    let Some(dns) = TestDns::start(&records).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("mailerd.db")).unwrap());
    let trust = Arc::new(Trust::load(Some(&ca.ca_file)).unwrap());
    let resolver = Dns::new(&[dns.addr]).unwrap();
    let sts = Sts::new(store.clone(), resolver.clone(), trust.clone(), https.addr.port(), Duration::from_secs(5));

    assert!(sts.fetch("ok.test").await.unwrap().contains("mx: mx.ok.test"));
    assert!(matches!(sts.fetch("big.test").await, Err(FetchError::TooLarge)));
    assert!(matches!(sts.fetch("html.test").await, Err(FetchError::ContentType(t)) if t == "text/html"));
    assert!(matches!(sts.fetch("moved.test").await, Err(FetchError::Status(301))));
    let uncovered = sts.fetch("uncovered.test").await;
    assert!(matches!(&uncovered, Err(FetchError::Tls(..))), "{uncovered:?}");
    // Without the test CA the policy server's certificate is not trusted.
    let system = Sts::new(
        store.clone(),
        resolver.clone(),
        Arc::new(Trust::load(None).unwrap()),
        https.addr.port(),
        Duration::from_secs(5),
    );
    assert!(matches!(system.fetch("ok.test").await, Err(FetchError::Tls(..))));

    // An invalid policy is no policy, and says so in the TLS results.
    let now = mailerd::time::Timestamp::now();
    assert!(sts.policy("invalid.test", now).await.is_none());
    assert_eq!(store.tls_result("invalid.test").await.unwrap().unwrap().result, TlsResult::StsPolicyInvalid);
    assert!(sts.policy("moved.test", now).await.is_none());
    assert_eq!(store.tls_result("moved.test").await.unwrap().unwrap().result, TlsResult::StsPolicyFetchError);
    assert!(store.sts_policy("moved.test").await.unwrap().is_none(), "nothing cached");
    // A failed fetch of that id is not tried again at once (each would cost up to the timeout).
    let tried = https.fetches("moved.test");
    assert!(sts.policy("moved.test", now).await.is_none());
    assert_eq!(https.fetches("moved.test"), tried, "no second fetch within the back-off");

    // A server that accepts and never answers: the fetch gives up after mta_sts_timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            kept.push(s);
        }
    });
    let slow = Sts::new(store, resolver, trust, port, Duration::from_secs(1));
    let started = std::time::Instant::now();
    assert!(matches!(slow.fetch("ok.test").await, Err(FetchError::Timeout(_))));
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    hold.abort();
}
