//! `check domain`, the sender's side: what this mailerd does with the mail it sends, as the
//! mailbox providers' sender rules ask — TLS when transmitting, a listener certificate that
//! verifying senders accept, one-click unsubscribe on bulk mail, and the complaint rate of what
//! was delivered.
//!
//! Standards: RFC 3207 (STARTTLS), RFC 8461 §4.2 (a certificate valid for the host name,
//! chaining to a trusted root), RFC 8058 + RFC 2369 (one-click unsubscribe), the providers'
//! 0.3% user-reported spam rate (Gmail and Yahoo bulk-sender rules, 2024).
//! Must not: connect anywhere, or write the store; a missing store or certificate is
//! information, not a failure.

use std::path::PathBuf;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::resolver::Resolver;
use super::{Check, Status};
use crate::config::{TlsMode, Unsubscribe};
use crate::store::{RecipientState, Store};
use crate::time::Timestamp;
use crate::tlspolicy::TlsResult;

/// The complaint rate the providers refuse bulk mail above (Gmail, Yahoo: 0.3%).
pub const COMPLAINT_LIMIT: f64 = 0.003;
/// The rate Gmail asks senders to stay under.
pub const COMPLAINT_TARGET: f64 = 0.001;
/// The period the complaint rate covers (the dashboard chart's).
pub const COMPLAINT_DAYS: i64 = 30;

/// The listeners' certificate: the PEM chain file and the CA file trusted besides the system's.
#[derive(Debug, Clone)]
pub struct ListenerCertificate {
    pub chain: PathBuf,
    pub ca_file: Option<PathBuf>,
}

/// `outbound.tls`: mail leaves over TLS whenever the receiver offers it.
pub fn check_outbound_tls(mode: TlsMode) -> Check {
    match mode {
        TlsMode::Off => Check::new("tls_outbound", Status::Fail)
            .detail("outbound.tls = \"off\": mail leaves in clear text (Gmail marks it with an open padlock)")
            .fix("set outbound.tls = \"opportunistic\" (the default)"),
        mode => Check::ok("tls_outbound").detail(format!(
            "STARTTLS whenever the receiver offers it (outbound.tls = \"{}\"); MTA-STS policies are enforced",
            mode.as_str()
        )),
    }
}

/// Would a verifying sender (MTA-STS, DANE-TA) accept the listeners' certificate for `host`?
pub fn check_listener_certificate(cert: &ListenerCertificate, host: &str) -> Check {
    let path = cert.chain.display();
    let chain: Vec<CertificateDer<'static>> = match CertificateDer::pem_file_iter(&cert.chain) {
        Ok(certs) => certs.filter_map(Result::ok).collect(),
        Err(_) => {
            return Check::new("tls_listener", Status::Warn)
                .detail(format!("no certificate at {path} yet: the daemon makes a self-signed one when it starts"))
                .fix(format!(
                    "set tls.cert and tls.key to a certificate for {host} from a public CA (e.g. Let's Encrypt)"
                ));
        }
    };
    let trust = match crate::outbound::trust::Trust::load(cert.ca_file.as_deref()) {
        Ok(t) => t,
        Err(e) => return Check::new("tls_listener", Status::Unknown).detail(format!("could not check: {e}")),
    };
    let public_ca = format!("use a certificate for {host} from a public CA (e.g. Let's Encrypt): tls.cert and tls.key");
    match trust.check(host, &chain) {
        Ok(()) => Check::ok("tls_listener").detail(format!("the certificate at {path} verifies for {host}")),
        Err((TlsResult::CertificateExpired, e)) => Check::new("tls_listener", Status::Fail)
            .detail(format!("{e}: senders cannot deliver over TLS"))
            .fix(public_ca),
        Err((TlsResult::CertificateNotTrusted, _)) => Check::new("tls_listener", Status::Warn)
            .detail(format!(
                "the certificate at {path} is self-signed or from an unknown CA: opportunistic senders use it, \
                 senders that verify (MTA-STS, DANE) do not"
            ))
            .fix(public_ca),
        Err((_, e)) => Check::new("tls_listener", Status::Warn)
            .detail(format!("{e}: senders that verify (MTA-STS, DANE) do not deliver here"))
            .fix(public_ca),
    }
}

/// One-click unsubscribe: the headers mailerd adds to API and bulk-login mail, their link's host,
/// and the DKIM signature that must cover them.
pub async fn check_unsubscribe(u: &Unsubscribe, dkim_signs: bool, dns: &Resolver) -> Check {
    if !u.enabled {
        return Check::new("unsubscribe", Status::Warn)
            .detail("unsubscribe.enabled = false: mailerd adds no List-Unsubscribe; Gmail and Yahoo require one-click unsubscribe on bulk mail")
            .fix("set unsubscribe.enabled = true, or have every app send List-Unsubscribe and List-Unsubscribe-Post itself");
    }
    let host = u.base_url.trim_start_matches("https://").split(['/', ':']).next().unwrap_or("").to_string();
    if let Err(crate::dns::DnsFailure::NxDomain | crate::dns::DnsFailure::NoRecords) = dns.addresses(&host).await {
        return Check::new("unsubscribe", Status::Fail)
            .detail(format!("the unsubscribe link's host {host} has no address: every click and one-click POST fails"))
            .fix(format!("give {host} an A/AAAA record pointing at the HTTPS proxy in front of listen.http, or set unsubscribe.url"));
    }
    if !dkim_signs {
        return Check::new("unsubscribe", Status::Fail)
            .detail("List-Unsubscribe is added but not DKIM-signed (no [dkim] key): Gmail ignores it unsigned")
            .fix("run mailerd dkim keygen and set [dkim]");
    }
    let logins = match u.bulk_logins.len() {
        0 => String::new(),
        n => format!(" and {n} bulk login{}", if n == 1 { "" } else { "s" }),
    };
    Check::ok("unsubscribe").detail(format!(
        "API mail{logins} get List-Unsubscribe (<{}/u/…>, mailto) and List-Unsubscribe-Post, DKIM-signed; honoured at once",
        u.base_url
    ))
}

/// Complaints (ARF reports) against delivered recipients over the last `COMPLAINT_DAYS`.
pub async fn check_complaint_rate(store: &dyn Store, now: Timestamp) -> Check {
    let since = Timestamp(now.millis() - COMPLAINT_DAYS * 86_400_000);
    let o = match store.delivery_overview(since, 0).await {
        Ok(o) => o,
        Err(e) => return Check::new("complaint_rate", Status::Unknown).detail(format!("could not check: {e}")),
    };
    let delivered: u64 = o.daily.iter().filter(|d| d.state == RecipientState::Delivered).map(|d| d.count).sum();
    complaint_rate(o.complaints, delivered)
}

/// The check of `complaints` against `delivered` recipients.
pub fn complaint_rate(complaints: u64, delivered: u64) -> Check {
    if delivered == 0 {
        return Check::new("complaint_rate", Status::Info)
            .detail(format!("nothing delivered in the last {COMPLAINT_DAYS} days"));
    }
    let rate = complaints as f64 / delivered as f64;
    let found = format!(
        "{:.2}% ({complaints} complaints of {delivered} delivered recipients, last {COMPLAINT_DAYS} days, all senders)",
        rate * 100.0
    );
    let fix = "send only to people who asked for the mail, make unsubscribing easy, and stop mailing those who do not open it";
    if rate >= COMPLAINT_LIMIT {
        Check::new("complaint_rate", Status::Fail)
            .detail(format!("{found}: at or over the providers' 0.3%, bulk mail is refused or junked"))
            .fix(fix)
    } else if rate >= COMPLAINT_TARGET {
        Check::new("complaint_rate", Status::Warn).detail(format!("{found}: Gmail asks for under 0.1%")).fix(fix)
    } else {
        Check::ok("complaint_rate").detail(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complaint_rate_bands() {
        assert_eq!(complaint_rate(0, 0).status, Status::Info);
        assert_eq!(complaint_rate(0, 10_000).status, Status::Ok);
        assert_eq!(complaint_rate(9, 10_000).status, Status::Ok);
        assert_eq!(complaint_rate(10, 10_000).status, Status::Warn, "0.1%");
        assert_eq!(complaint_rate(29, 10_000).status, Status::Warn);
        let c = complaint_rate(30, 10_000);
        assert_eq!(c.status, Status::Fail, "0.3%");
        assert!(c.detail.unwrap().starts_with("0.30% (30 complaints of 10000"));
    }

    #[test]
    fn outbound_tls_off_fails() {
        assert_eq!(check_outbound_tls(TlsMode::Off).status, Status::Fail);
        assert_eq!(check_outbound_tls(TlsMode::Opportunistic).status, Status::Ok);
        assert_eq!(check_outbound_tls(TlsMode::Required).status, Status::Ok);
    }

    #[test]
    fn listener_certificate_self_signed_is_a_warning_and_a_missing_one_too() {
        let dir = tempfile::tempdir().unwrap();
        let cert = ListenerCertificate { chain: dir.path().join("none.pem"), ca_file: None };
        assert_eq!(check_listener_certificate(&cert, "mx.a.test").status, Status::Warn);
        let made = rcgen::generate_simple_self_signed(vec!["mx.a.test".to_string()]).unwrap();
        std::fs::write(dir.path().join("self.pem"), made.cert.pem()).unwrap();
        let cert = ListenerCertificate { chain: dir.path().join("self.pem"), ca_file: None };
        let c = check_listener_certificate(&cert, "mx.a.test");
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(c.detail.unwrap().contains("self-signed"));
        // Trusted through the CA file (the certificate is its own CA here): verifies by name.
        let cert =
            ListenerCertificate { chain: dir.path().join("self.pem"), ca_file: Some(dir.path().join("self.pem")) };
        let c = check_listener_certificate(&cert, "mx.b.test");
        assert_eq!(c.status, Status::Warn, "another name: {c:?}");
    }
}
