//! DANE for SMTP: the TLSA records of an MX host as its TLS policy, and the check of the
//! certificate chain a server showed against them, after the handshake (like `trust`).
//!
//! Standards: RFC 7672 §3.1 (DANE-EE(3): the leaf matches, its names and dates are not
//! checked; DANE-TA(2): a certificate of the chain the server showed matches, the leaf chains
//! to it and is valid for the TLSA base domain, dates checked; PKIX-TA(0) and PKIX-EE(1) are
//! unusable), §3.2 (names: the TLSA base domain, wildcards per RFC 6125, by webpki), RFC 6698
//! §2.1 (selector 0: the whole certificate, 1: its SubjectPublicKeyInfo; matching type 0:
//! exact, 1: SHA-256, 2: SHA-512), RFC 7672 §2.2 (a secure TLSA RRset with no usable record
//! still makes TLS mandatory, unauthenticated).
//! The TLSA matching is ours; certificates are parsed by rustls-webpki (`spki`), and DANE-TA's
//! chain and name check is webpki's too, with the matched certificate as the only anchor.
//! Must not: resolve (the caller passes secure TLSA records), connect, or decide outcomes.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256, Sha512};

use super::trust::failure_kind;
use crate::tlspolicy::{DANE_EE, DANE_TA, PolicyType, ReportPolicy, TlsResult, Tlsa};

/// The DANE policy of one MX host: the secure TLSA RRset at `_25._tcp.<base>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaneHost {
    /// The TLSA base domain: the MX host name (RFC 7672 §2.2.3).
    pub base: String,
    pub records: Vec<Tlsa>,
}

impl DaneHost {
    /// The owner name of the records.
    pub fn owner(&self) -> String {
        format!("_25._tcp.{}", self.base)
    }

    /// Whether a record can authenticate the server; if none can, TLS is still required but
    /// not authenticated (RFC 7672 §2.2).
    pub fn authenticates(&self) -> bool {
        self.records.iter().any(Tlsa::usable)
    }

    /// `DANE, TLSA _25._tcp.mx.a.test (3 1 1)`: the policy as the journey and `tls status` name it.
    pub fn describe(&self) -> String {
        let mut kinds: Vec<String> =
            self.records.iter().map(|r| format!("{} {} {}", r.usage, r.selector, r.matching)).collect();
        kinds.dedup();
        let unusable = if self.authenticates() { "" } else { ", none usable: encryption only" };
        format!("DANE, TLSA {} ({}{unusable})", self.owner(), kinds.join(", "))
    }

    /// The records as a TLS report names the policy (RFC 8460 §4.4: `policy-string`, one
    /// record per line in presentation form).
    pub fn report_policy(&self) -> ReportPolicy {
        let body: Vec<String> = self.records.iter().map(|r| format!("{} IN TLSA {r}", self.owner())).collect();
        ReportPolicy { kind: PolicyType::Tlsa, id: self.base.clone(), body: body.join("\n") }
    }

    /// Checks the chain a server showed (end entity first) against the usable records, at
    /// `now`. Ok when one matches (or when none is usable: encryption was all that could be
    /// asked); else the RFC 8460 result and what failed, quoting the records.
    pub fn check(&self, certs: &[CertificateDer<'static>], now: UnixTime) -> Result<(), (TlsResult, String)> {
        let usable: Vec<&Tlsa> = self.records.iter().filter(|r| r.usable()).collect();
        if usable.is_empty() {
            return Ok(());
        }
        let Some(leaf) = certs.first() else {
            return Err((TlsResult::TlsaInvalid, "the server showed no certificate".into()));
        };
        if usable.iter().any(|r| r.usage == DANE_EE && matches(r, leaf)) {
            return Ok(());
        }
        // DANE-TA: a certificate the server sent (not the leaf) matches; the leaf must chain to it.
        let mut ta_failure = None;
        for ta in certs.iter().skip(1) {
            if !usable.iter().any(|r| r.usage == DANE_TA && matches(r, ta)) {
                continue;
            }
            match chains_to(leaf, &certs[1..], ta, &self.base, now) {
                Ok(()) => return Ok(()),
                Err(e) => ta_failure = Some(e),
            }
        }
        let records: Vec<String> = usable.iter().map(|r| abbreviated(r)).collect();
        Err(match ta_failure {
            Some((kind, why)) => (
                kind,
                format!("a certificate matches DANE-TA in {} but the chain does not verify: {why}", self.owner()),
            ),
            None => (
                TlsResult::TlsaInvalid,
                format!("no TLSA record of {} matches the certificate chain ({})", self.owner(), records.join("; ")),
            ),
        })
    }
}

/// `3 1 1 0a1b2c3d…`: a record with its data cut to 8 bytes, for details.
fn abbreviated(r: &Tlsa) -> String {
    let full = r.to_string();
    let head = format!("{} {} {} ", r.usage, r.selector, r.matching).len();
    if full.len() > head + 16 { format!("{}…", &full[..head + 16]) } else { full }
}

/// Whether `record` matches `cert` (RFC 6698 §2.1.2, §2.1.3).
pub fn matches(record: &Tlsa, cert: &[u8]) -> bool {
    let selected = match record.selector {
        0 => std::borrow::Cow::Borrowed(cert),
        1 => match spki(cert) {
            Some(s) => std::borrow::Cow::Owned(s),
            None => return false,
        },
        _ => return false,
    };
    let selected: &[u8] = &selected;
    match record.matching {
        0 => selected == record.data.as_slice(),
        1 => Sha256::digest(selected).as_slice() == record.data.as_slice(),
        2 => Sha512::digest(selected).as_slice() == record.data.as_slice(),
        _ => false,
    }
}

/// The leaf verifies with `ta` as the only trust anchor (the rest of the chain as
/// intermediates), for the name `base`, at `now`.
fn chains_to(
    leaf: &CertificateDer<'static>,
    intermediates: &[CertificateDer<'static>],
    ta: &CertificateDer<'static>,
    base: &str,
    now: UnixTime,
) -> Result<(), (TlsResult, String)> {
    let invalid = |e: String| (TlsResult::TlsaInvalid, e);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ta.clone()).map_err(|e| invalid(format!("the matched certificate is not a usable anchor: {e}")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| invalid(format!("trust anchor: {e}")))?;
    let name = ServerName::try_from(base.to_string()).map_err(|e| invalid(format!("`{base}`: {e}")))?;
    verifier
        .verify_server_cert(leaf, intermediates, &name, &[], now)
        .map(|_| ())
        .map_err(|e| (failure_kind(&e), e.to_string()))
}

/// The DER SubjectPublicKeyInfo of an X.509 certificate, as rustls-webpki parses it, or None
/// when it is not one webpki can read.
pub fn spki(cert: &[u8]) -> Option<Vec<u8>> {
    let der = CertificateDer::from(cert);
    let parsed = webpki::EndEntityCert::try_from(&der).ok()?;
    Some(parsed.subject_public_key_info().as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Issued {
        ca: CertificateDer<'static>,
        leaf: CertificateDer<'static>,
        leaf_spki: Vec<u8>,
        ca_spki: Vec<u8>,
    }

    /// A CA and a leaf it signed for `names`; an `expired` leaf was valid in 2001 only.
    fn issued(names: &[&str], expired: bool) -> Issued {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let ca_spki = rcgen::PublicKeyData::subject_public_key_info(&ca_key);
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2001, 1, 1);
            params.not_after = rcgen::date_time_ymd(2002, 1, 1);
        }
        let leaf = params.signed_by(&key, &issuer).unwrap();
        Issued {
            ca: ca_cert.der().clone(),
            leaf: leaf.der().clone(),
            leaf_spki: rcgen::PublicKeyData::subject_public_key_info(&key),
            ca_spki,
        }
    }

    fn tlsa(usage: u8, selector: u8, matching: u8, cert: &[u8]) -> Tlsa {
        let selected = if selector == 0 { cert.to_vec() } else { spki(cert).unwrap() };
        let data = match matching {
            0 => selected,
            1 => Sha256::digest(&selected).to_vec(),
            _ => Sha512::digest(&selected).to_vec(),
        };
        Tlsa { usage, selector, matching, data }
    }

    fn host(records: Vec<Tlsa>) -> DaneHost {
        DaneHost { base: "mx.a.test".into(), records }
    }

    #[test]
    fn the_spki_is_read_from_the_certificate() {
        let i = issued(&["mx.a.test"], false);
        assert_eq!(spki(&i.leaf).unwrap(), i.leaf_spki);
        assert_eq!(spki(&i.ca).unwrap(), i.ca_spki);
        assert_eq!(spki(b""), None);
        assert_eq!(spki(&i.leaf[..i.leaf.len() / 2]), None, "a truncated certificate");
        assert_eq!(spki(&[0x30, 0x03, 0x02, 0x01, 0x00]), None, "not a certificate");
    }

    #[test]
    fn every_selector_and_matching_type() {
        let i = issued(&["mx.a.test"], false);
        let other = issued(&["mx.a.test"], false);
        for selector in [0, 1] {
            for matching in [0, 1, 2] {
                let r = tlsa(3, selector, matching, &i.leaf);
                assert!(r.usable(), "{r}");
                assert!(matches(&r, &i.leaf), "{selector} {matching}");
                assert!(!matches(&r, &other.leaf), "{selector} {matching}");
            }
        }
        // The SPKI selector matches a new certificate for the same key; the full one does not.
        let mut r = tlsa(3, 1, 1, &i.leaf);
        r.selector = 0;
        assert!(!matches(&r, &i.leaf));
    }

    #[test]
    fn dane_ee_ignores_names_and_dates() {
        let i = issued(&["elsewhere.test"], true);
        let now = UnixTime::now();
        assert_eq!(host(vec![tlsa(3, 1, 1, &i.leaf)]).check(std::slice::from_ref(&i.leaf), now), Ok(()));
        let wrong = host(vec![tlsa(3, 1, 1, &i.ca)]);
        let (kind, detail) = wrong.check(&[i.leaf.clone(), i.ca.clone()], now).unwrap_err();
        assert_eq!(kind, TlsResult::TlsaInvalid);
        assert!(
            detail.starts_with("no TLSA record of _25._tcp.mx.a.test matches the certificate chain (3 1 1 "),
            "{detail}"
        );
        assert_eq!(wrong.check(&[], now).unwrap_err().0, TlsResult::TlsaInvalid);
    }

    #[test]
    fn dane_ta_needs_the_anchor_in_the_chain_the_name_and_the_dates() {
        let now = UnixTime::now();
        let i = issued(&["mx.a.test"], false);
        for (selector, matching) in [(0, 0), (1, 1), (0, 2)] {
            let h = host(vec![tlsa(2, selector, matching, &i.ca)]);
            assert_eq!(h.check(&[i.leaf.clone(), i.ca.clone()], now), Ok(()), "{selector} {matching}");
            // The server must send the anchor (RFC 7672 §3.1.2).
            assert_eq!(h.check(std::slice::from_ref(&i.leaf), now).unwrap_err().0, TlsResult::TlsaInvalid);
        }
        // A usage-2 record of the leaf itself is no anchor; usage 2 never matches the leaf.
        assert!(host(vec![tlsa(2, 1, 1, &i.leaf)]).check(&[i.leaf.clone(), i.ca.clone()], now).is_err());
        let named = issued(&["mx.b.test"], false);
        let h = host(vec![tlsa(2, 1, 1, &named.ca)]);
        let (kind, detail) = h.check(&[named.leaf.clone(), named.ca.clone()], now).unwrap_err();
        assert_eq!(kind, TlsResult::CertificateHostMismatch, "{detail}");
        assert!(detail.contains("matches DANE-TA in _25._tcp.mx.a.test"), "{detail}");
        let old = issued(&["mx.a.test"], true);
        let h = host(vec![tlsa(2, 1, 1, &old.ca)]);
        assert_eq!(h.check(&[old.leaf.clone(), old.ca.clone()], now).unwrap_err().0, TlsResult::CertificateExpired);
        // Another CA's leaf does not chain to the matched anchor.
        let h = host(vec![tlsa(2, 1, 1, &i.ca)]);
        let stranger = issued(&["mx.a.test"], false);
        assert_eq!(h.check(&[stranger.leaf, i.ca.clone()], now).unwrap_err().0, TlsResult::CertificateNotTrusted);
    }

    #[test]
    fn unusable_records_ask_for_encryption_only() {
        let i = issued(&["mx.a.test"], false);
        let pkix = host(vec![tlsa(1, 1, 1, &i.ca), tlsa(0, 0, 1, &i.ca)]);
        assert!(!pkix.authenticates());
        assert_eq!(pkix.check(std::slice::from_ref(&i.leaf), UnixTime::now()), Ok(()));
        assert_eq!(pkix.describe(), "DANE, TLSA _25._tcp.mx.a.test (1 1 1, 0 0 1, none usable: encryption only)");
        // With one usable record the unusable ones are ignored, not matched.
        let mixed = host(vec![tlsa(1, 1, 1, &i.leaf), tlsa(3, 1, 1, &i.ca)]);
        assert!(mixed.authenticates());
        assert!(mixed.check(std::slice::from_ref(&i.leaf), UnixTime::now()).is_err());
        let p = mixed.report_policy();
        assert_eq!((p.kind, p.id.as_str()), (PolicyType::Tlsa, "mx.a.test"));
        assert!(p.body.starts_with("_25._tcp.mx.a.test IN TLSA 1 1 1 "), "{}", p.body);
    }
}
