//! DANE (RFC 7672) end to end on loopback: NSD serves a DNSSEC-signed root zone (the trust
//! anchor is its key, signed at test time) with MX, address and TLSA records, an unsigned
//! child zone `insecure.test`, and one TLSA record changed after signing (bogus). The
//! destinations are mailerd peers: 127.0.0.2 with a test-CA certificate for mx.ee.test only,
//! 127.0.0.3 with one for mx.ta.test sent with the CA certificate (the DANE-TA anchor), and a
//! sink without STARTTLS on 127.0.0.4.

use std::time::Duration;

use mailerd::dns::{Dns, DnsFailure};
use mailerd::store::{RecipientState, Store};
use mailerd::time::Timestamp;
use mailerd::tlspolicy::{Day, PolicyType, TlsResult, Tlsa};
use sha2::{Digest, Sha256};

use crate::harness::TestDaemon;
use crate::harness::nsd::{SignedDns, Unsigned};
use crate::harness::sink::Sink;
use crate::harness::sts::{PolicyServer, TestCa};
use crate::mta_sts::{common_port, enforce, peer, send, wait_for};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of the SubjectPublicKeyInfo of the key in `key_file` (PEM): the data of a
/// `3 1 1` record for a certificate of that key.
fn spki_sha256(key_file: &std::path::Path) -> Vec<u8> {
    let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(key_file).unwrap()).unwrap();
    Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key)).to_vec()
}

/// The SHA-256 of the test CA's certificate (DER): the data of a `2 0 1` record.
fn ca_sha256(ca: &TestCa) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_file(&ca.ca_file).unwrap();
    Sha256::digest(der.as_ref()).to_vec()
}

/// A signed domain whose one MX host `mx.DOMAIN` is at `ip`, with TLSA `tlsa` (when given).
fn signed(domain: &str, ip: &str, tlsa: Option<String>) -> Vec<String> {
    let mut r = vec![format!("{domain}. IN MX 10 mx.{domain}."), format!("mx.{domain}. IN A {ip}")];
    if let Some(t) = tlsa {
        r.push(format!("_25._tcp.mx.{domain}. IN TLSA {t}"));
    }
    r
}

const BOGUS_DATA: &str = "abababababababababababababababababababababababababababababababab";
const TAMPERED_DATA: &str = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resolver_tells_secure_insecure_and_bogus_answers_apart() {
    let mut records = signed("ee.test", "127.0.0.2", Some(format!("3 1 1 {}", "00".repeat(32))));
    records.extend(signed("bogus.test", "127.0.0.2", Some(format!("3 1 1 {BOGUS_DATA}"))));
    records.extend(signed("none.test", "127.0.0.2", None));
    let insecure = Unsigned {
        apex: "insecure.test",
        records: signed("insecure.test", "127.0.0.2", Some(format!("3 1 1 {}", "11".repeat(32)))),
    };
    let tamper = [(BOGUS_DATA.to_string(), TAMPERED_DATA.to_string())];
    let Some(zone) = SignedDns::start(&records, &[insecure], &tamper).await else { return };
    let dns = Dns::validating(&[zone.addr], Some(&zone.anchor)).unwrap();

    let mx = dns.mx_secured("ee.test").await.unwrap();
    assert_eq!((mx.records, mx.secure), (vec![(10, "mx.ee.test".to_string())], true));
    let a = dns.addresses_secured("mx.ee.test").await.unwrap();
    assert!(a.secure, "{a:?}");
    let tlsa = dns.tlsa("_25._tcp.mx.ee.test").await.unwrap();
    assert!(tlsa.secure);
    assert_eq!(tlsa.records, vec![Tlsa { usage: 3, selector: 1, matching: 1, data: vec![0; 32] }]);
    // A signed zone without TLSA: a (secure) denial, no records.
    assert!(matches!(dns.tlsa("_25._tcp.mx.none.test").await, Err(DnsFailure::NoRecords | DnsFailure::NxDomain)));

    // The unsigned child zone: answers, not secure.
    let mx = dns.mx_secured("insecure.test").await.unwrap();
    assert!(!mx.secure, "{mx:?}");
    let tlsa = dns.tlsa("_25._tcp.mx.insecure.test").await.unwrap();
    assert!(!tlsa.secure, "{tlsa:?}");

    // Changed after signing: bogus, a failed lookup and never an answer.
    match dns.tlsa("_25._tcp.mx.bogus.test").await {
        Err(DnsFailure::Temporary(e)) => assert!(e.contains("DNSSEC validation"), "{e}"),
        other => panic!("a bogus TLSA answer was taken: {other:?}"),
    }
    assert!(dns.mx_secured("bogus.test").await.unwrap().secure, "the rest of the zone still validates");

    // Another anchor: nothing in the zone validates.
    let other = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("ldns-keygen")
        .args(["-a", "ECDSAP256SHA256", "."])
        .current_dir(other.path())
        .output()
        .unwrap();
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let stranger = Dns::validating(&[zone.addr], Some(&other.path().join(format!("{key}.key")))).unwrap();
    assert!(matches!(stranger.mx_secured("ee.test").await, Err(DnsFailure::Temporary(_))));
    // Without validation nothing is secure, and nothing is bogus.
    let plain = Dns::new(&[zone.addr]).unwrap();
    assert!(!plain.tlsa("_25._tcp.mx.ee.test").await.unwrap().secure);
    assert!(!plain.tlsa("_25._tcp.mx.bogus.test").await.unwrap().secure);
    // A trust anchor file without a key is refused.
    let empty = other.path().join("empty.key");
    std::fs::write(&empty, "; nothing\n").unwrap();
    assert!(Dns::validating(&[zone.addr], Some(&empty)).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dane_decides_how_mail_goes_and_beats_mta_sts() {
    let ca = TestCa::new();
    let port = common_port();
    // Peer A: a test-CA certificate for mx.ee.test only. Peer B: mx.ta.test, with the CA in its chain.
    let a = peer(
        &ca,
        "a",
        "127.0.0.2",
        port,
        &["mx.ee.test"],
        &["ee.test", "mismatch.test", "insecure.test", "bogus.test", "both.test"],
    )
    .await;
    let (b_cert, b_key) = ca.issue("b", &["mx.ta.test"]);
    let chain = std::fs::read_to_string(&b_cert).unwrap() + &std::fs::read_to_string(&ca.ca_file).unwrap();
    std::fs::write(&b_cert, chain).unwrap();
    let b = TestDaemon::with(&format!(
        "[listen]\nsmtp = \"127.0.0.3:{port}\"\n[local]\ndomains = [\"ta.test\"]\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        b_cert.display(),
        b_key.display()
    ))
    .await;
    for user in ["ann@ee.test", "mia@mismatch.test", "ida@insecure.test", "bob@bogus.test", "bea@both.test"] {
        a.add_user(user, "pw", None).await;
    }
    b.add_user("tom@ta.test", "pw", None).await;
    let a_spki = spki_sha256(&ca.dir.path().join("a.key"));

    let mut records = signed("ee.test", "127.0.0.2", Some(format!("3 1 1 {}", hex(&a_spki))));
    records.extend(signed("mismatch.test", "127.0.0.2", Some(format!("3 1 1 {}", "00".repeat(32)))));
    records.extend(signed("ta.test", "127.0.0.3", Some(format!("2 0 1 {}", hex(&ca_sha256(&ca))))));
    records.extend(signed("bogus.test", "127.0.0.2", Some(format!("3 1 1 {BOGUS_DATA}"))));
    // both.test: an MTA-STS policy in enforce mode, which peer A's certificate (for another
    // name) does not meet, and a TLSA record it does.
    records.extend(signed("both.test", "127.0.0.2", Some(format!("3 1 1 {}", hex(&a_spki)))));
    records.push("_mta-sts.both.test. IN TXT \"v=STSv1; id=1\"".into());
    // plain.test: a TLSA record, and a server that does not offer STARTTLS.
    records.extend(signed("plain.test", "127.0.0.4", Some(format!("3 1 1 {}", hex(&a_spki)))));
    records.push("mta-sts.both.test. IN A 127.0.0.1".into());
    let insecure = Unsigned {
        apex: "insecure.test",
        records: signed("insecure.test", "127.0.0.2", Some(format!("3 1 1 {}", "00".repeat(32)))),
    };
    let tamper = [(BOGUS_DATA.to_string(), hex(&a_spki))];
    let Some(zone) = SignedDns::start(&records, &[insecure], &tamper).await else { return };
    let https = PolicyServer::start(&ca, &["both.test"]).await;
    https.set("both.test", 200, &enforce(&["mx.both.test"]));

    let src = TestDaemon::with(&format!(
        "[local]\ndomains = [\"sender.test\"]\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n\
         [dns]\nnameservers = [\"{}\"]\ndnssec = true\ntrust_anchor = \"{}\"\n\
         [outbound]\nmx_port = {port}\nmta_sts_port = {}\nmta_sts_timeout = 5\n\
         tls_rpt = true\ntls_rpt_from = \"tls-reports@sender.test\"\n\
         [retry]\nfirst = 1\nmax_age = 4\n[tls]\nca_file = \"{}\"\n",
        zone.addr,
        zone.anchor.display(),
        https.addr.port(),
        ca.ca_file.display()
    ))
    .await;
    src.add_user("app@sender.test", "pw", None).await;

    let plain = Sink::start_at(format!("127.0.0.4:{port}").parse().unwrap()).await;
    let rcpts = [
        "ann@ee.test",
        "mia@mismatch.test",
        "tom@ta.test",
        "ida@insecure.test",
        "bob@bogus.test",
        "bea@both.test",
        "pat@plain.test",
    ];
    let id = send(&src, &rcpts, "under DANE").await;
    let r = wait_for(&src, &id, |r| r.iter().all(|x| x.attempts > 0 || x.state == RecipientState::Delivered)).await;
    let by = |who: &str| r.iter().find(|x| x.address == who).unwrap().clone();

    // DANE-EE (3 1 1) matching peer A's key: delivered over TLS; the journey names DANE.
    let ann = by("ann@ee.test");
    assert_eq!(ann.state, RecipientState::Delivered, "{ann:?}");
    assert!(
        ann.last_detail.as_deref().unwrap().ends_with("(TLS policy: DANE, TLSA _25._tcp.mx.ee.test (3 1 1): success)"),
        "{ann:?}"
    );
    let text = std::fs::read_to_string(&a.wait_maildir("ee.test", "ann", 1).await[0]).unwrap();
    assert!(text.contains("with ESMTPS"), "received over TLS: {text}");

    // A TLSA record that matches nothing: deferred 4.7.5, the detail quotes host and record.
    let mia = by("mia@mismatch.test");
    assert_eq!((mia.state, mia.last_status.as_deref()), (RecipientState::Deferred, Some("4.7.5")), "{mia:?}");
    let detail = mia.last_detail.clone().unwrap();
    assert!(detail.contains("TLS is required by DANE (TLSA _25._tcp.mx.mismatch.test) of mismatch.test"), "{detail}");
    assert!(detail.contains("mx.mismatch.test[127.0.0.2]"), "{detail}");
    assert!(
        detail.contains(
            "no TLSA record of _25._tcp.mx.mismatch.test matches the certificate chain (3 1 1 0000000000000000…)"
        ),
        "{detail}"
    );
    assert!(a.maildir_files("mismatch.test", "mia").is_empty());

    // DANE-TA (2 0 1) of the test CA, which peer B sends: delivered.
    let tom = by("tom@ta.test");
    assert_eq!(tom.state, RecipientState::Delivered, "{tom:?}");
    assert!(
        tom.last_detail.as_deref().unwrap().contains("(TLS policy: DANE, TLSA _25._tcp.mx.ta.test (2 0 1): success)")
    );
    b.wait_maildir("ta.test", "tom", 1).await;

    // The unsigned zone: its (wrong) TLSA record is not used; opportunistic TLS as without DANE.
    let ida = by("ida@insecure.test");
    assert_eq!(ida.state, RecipientState::Delivered, "{ida:?}");
    assert!(!ida.last_detail.as_deref().unwrap().contains("TLS policy"), "{ida:?}");
    a.wait_maildir("insecure.test", "ida", 1).await;

    // Bogus (a record changed after signing, to one that would match): the host is not used.
    let bob = by("bob@bogus.test");
    assert_eq!((bob.state, bob.last_status.as_deref()), (RecipientState::Deferred, Some("4.7.5")), "{bob:?}");
    let detail = bob.last_detail.clone().unwrap();
    assert!(detail.contains("the TLSA lookup of _25._tcp.mx.bogus.test failed"), "{detail}");
    assert!(detail.contains("DNSSEC validation"), "{detail}");
    assert!(a.maildir_files("bogus.test", "bob").is_empty());

    // DANE before MTA-STS: the policy (fetched, so in force) would refuse peer A's
    // certificate, which is for mx.ee.test.
    assert_eq!(https.fetches("both.test"), 1);
    let bea = by("bea@both.test");
    assert_eq!(bea.state, RecipientState::Delivered, "{bea:?}");
    assert!(
        bea.last_detail.as_deref().unwrap().contains("(TLS policy: DANE, TLSA _25._tcp.mx.both.test (3 1 1): success)"),
        "{bea:?}"
    );

    // STARTTLS stripped: nothing is sent in the clear.
    let pat = by("pat@plain.test");
    assert_eq!((pat.state, pat.last_status.as_deref()), (RecipientState::Deferred, Some("4.7.5")), "{pat:?}");
    assert!(pat.last_detail.as_deref().unwrap().contains("does not offer STARTTLS"), "{pat:?}");
    assert!(plain.received.lock().unwrap().is_empty(), "the server without STARTTLS got nothing");

    // The last TLS result per domain, for `mailerd tls status`.
    let store = src.store();
    for (domain, result, policy) in [
        ("ee.test", TlsResult::Success, "DANE, TLSA _25._tcp.mx.ee.test (3 1 1)"),
        ("mismatch.test", TlsResult::TlsaInvalid, "DANE, TLSA _25._tcp.mx.mismatch.test (3 1 1)"),
        ("bogus.test", TlsResult::DnssecInvalid, "DANE (TLSA _25._tcp.mx.bogus.test)"),
        ("both.test", TlsResult::Success, "DANE, TLSA _25._tcp.mx.both.test (3 1 1)"),
        ("plain.test", TlsResult::StartTlsNotSupported, "DANE, TLSA _25._tcp.mx.plain.test (3 1 1)"),
    ] {
        let last = store.tls_result(domain).await.unwrap().unwrap_or_else(|| panic!("no result for {domain}"));
        assert_eq!((last.result, last.policy.as_str()), (result, policy), "{domain}: {last:?}");
    }
    assert!(store.tls_result("insecure.test").await.unwrap().is_none());
    let (code, out) = tls_status(&src, "ee.test", "[dns]\ndnssec = true\n");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("DANE         on: MX hosts with DNSSEC-secure TLSA records"), "{out}");
    assert!(out.contains("success at ") && out.contains("under DANE, TLSA _25._tcp.mx.ee.test (3 1 1)"), "{out}");
    let (_, out) = tls_status(&src, "ee.test", "");
    assert!(out.contains("DANE         off (dns.dnssec = false)"), "{out}");

    // After retry.max_age the deferred recipients expire; the DSN says DANE was why.
    let r = wait_for(&src, &id, |r| r.iter().all(|x| x.state != RecipientState::Deferred)).await;
    for who in ["mia@mismatch.test", "bob@bogus.test", "pat@plain.test"] {
        assert_eq!(r.iter().find(|x| x.address == who).unwrap().state, RecipientState::Expired, "{r:?}");
    }
    let mut dsn = String::new();
    for _ in 0..400 {
        dsn = src.maildir_files("sender.test", "app").iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
        if ["mia@mismatch.test", "bob@bogus.test"]
            .iter()
            .all(|r| dsn.contains(&format!("Final-Recipient: rfc822; {r}")))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let unfolded = dsn.replace("\r\n\t", " ").replace("\r\n            ", " ").replace("\r\n    ", " ");
    assert!(unfolded.contains("Status: 4.7.5"), "{dsn}");
    assert!(unfolded.contains("DANE (TLSA _25._tcp.mx.mismatch.test) of mismatch.test"), "{dsn}");
    assert!(unfolded.contains("no TLSA record of _25._tcp.mx.mismatch.test matches"), "{dsn}");
    assert!(unfolded.contains("Fix: TLS with the receiving server could not be set up or verified"), "{dsn}");
    assert!(unfolded.contains("DANE TLSA records"), "the advice names DANE: {dsn}");

    // The TLS report's counts (RFC 8460): policy type tlsa, the records as the policy string.
    let day = Day::of(Timestamp::now());
    let counts = |domain: &'static str| {
        let store = src.store();
        async move { store.take_tls_counts(day, domain).await.unwrap() }
    };
    let ee = counts("ee.test").await;
    assert_eq!(ee.len(), 1, "{ee:?}");
    assert_eq!((ee[0].policy.kind, ee[0].result, ee[0].count), (PolicyType::Tlsa, TlsResult::Success, 1));
    assert_eq!(ee[0].policy.body, format!("_25._tcp.mx.ee.test IN TLSA 3 1 1 {}", hex(&a_spki)));
    assert_eq!(ee[0].mx_host.as_deref(), Some("mx.ee.test"));
    let mismatch = counts("mismatch.test").await;
    assert!(!mismatch.is_empty() && mismatch.iter().all(|c| c.result == TlsResult::TlsaInvalid), "{mismatch:?}");
    assert!(mismatch.iter().all(|c| c.policy.kind == PolicyType::Tlsa && c.policy.id == "mx.mismatch.test"));
    assert_eq!(mismatch[0].receiving_ip, Some("127.0.0.2".parse().unwrap()));
    let bogus = counts("bogus.test").await;
    assert!(!bogus.is_empty() && bogus.iter().all(|c| c.result == TlsResult::DnssecInvalid), "{bogus:?}");
    assert!(bogus.iter().all(|c| c.policy.kind == PolicyType::Tlsa && c.receiving_ip.is_none()));
    let insecure = counts("insecure.test").await;
    assert_eq!(insecure.len(), 1, "{insecure:?}");
    assert_eq!((insecure[0].policy.kind, insecure[0].result), (PolicyType::NoPolicyFound, TlsResult::Success));
    let both = counts("both.test").await;
    assert_eq!(
        both.iter().map(|c| (c.policy.kind, c.result)).collect::<Vec<_>>(),
        [(PolicyType::Tlsa, TlsResult::Success)]
    );
}

/// `mailerd tls status DOMAIN` on the data dir of `src`, with `extra` configuration.
fn tls_status(src: &TestDaemon, domain: &str, extra: &str) -> (Option<i32>, String) {
    let config = src.dir.path().join("cli-dane.toml");
    let toml = format!("hostname = \"mx.local.test\"\ndata_dir = \"{}\"\n{extra}", src.dir.path().display());
    std::fs::write(&config, toml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .arg("--config")
        .arg(&config)
        .args(["tls", "status", domain])
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}
