//! DNS lookups for delivery: MX records and host addresses, through hickory-resolver built
//! from `[dns] nameservers` (empty: the system resolver).
//!
//! Standards: RFC 5321 §5.1 (MX, implicit MX), RFC 7505 (null MX), RFC 2308 (NXDOMAIN vs no data),
//! RFC 4033-4035 (DNSSEC: with `dns.dnssec` the delivery resolver validates answers itself
//! from the trust anchor, and says whether each is secure), RFC 7672 §2.1.1 (a bogus or
//! indeterminate answer is a failed lookup, never an answer), RFC 6698 (TLSA).
//! Answers are reduced to small values (`MxRecords`, `Secured`, `DnsFailure`) so routing stays pure.
//! Must not: decide what a failure means for delivery; that is `outbound::route`.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::rr::{RData, Record};

use crate::tlspolicy::Tlsa;

/// Why a lookup gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsFailure {
    /// The name does not exist (NXDOMAIN).
    NxDomain,
    /// The name exists but has no records of the type asked.
    NoRecords,
    /// SERVFAIL, timeout, refused, network trouble: try again later.
    Temporary(String),
}

/// MX records as (preference, exchange host without the trailing dot); exchange "" is the
/// root, i.e. a null MX.
pub type MxRecords = Vec<(u16, String)>;

/// An answer and whether DNSSEC proved it (RFC 4035 §4.3 "secure"); always false without
/// validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secured<T> {
    pub records: T,
    pub secure: bool,
}

#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
    /// Answers are DNSSEC-validated (`dns.dnssec`).
    validating: bool,
}

impl Dns {
    /// Builds a resolver: the given name servers (UDP and TCP on their ports), or the system's.
    pub fn new(nameservers: &[SocketAddr]) -> Result<Dns, String> {
        Dns::build(nameservers, None)
    }

    /// A resolver that validates DNSSEC itself (RFC 4035 §5), trusting the DNSKEY records of
    /// `trust_anchor` (a zone-file fragment; the root's or any zone's), or IANA's root keys when
    /// none is given. An unreadable or unparsable file is an error.
    pub fn validating(nameservers: &[SocketAddr], trust_anchor: Option<&Path>) -> Result<Dns, String> {
        let anchors = match trust_anchor {
            Some(path) => {
                let anchors =
                    TrustAnchors::from_file(path).map_err(|e| format!("dns.trust_anchor {}: {e}", path.display()))?;
                let text = std::fs::read_to_string(path).unwrap_or_default();
                if !text.lines().any(|l| l.split_whitespace().any(|w| w.eq_ignore_ascii_case("DNSKEY"))) {
                    return Err(format!("dns.trust_anchor {}: no DNSKEY record in it", path.display()));
                }
                anchors
            }
            None => TrustAnchors::default(),
        };
        Dns::build(nameservers, Some(Arc::new(anchors)))
    }

    fn build(nameservers: &[SocketAddr], anchors: Option<Arc<TrustAnchors>>) -> Result<Dns, String> {
        let mut builder = if nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| format!("system resolver: {e}"))?
        } else {
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], name_servers(nameservers)),
                TokioRuntimeProvider::default(),
            )
        };
        let validating = anchors.is_some();
        if let Some(anchors) = anchors {
            builder = builder.with_trust_anchor(anchors);
        }
        let opts = builder.options_mut();
        opts.timeout = Duration::from_secs(5);
        opts.attempts = 2;
        opts.ndots = 0;
        let resolver = builder.build().map_err(|e| format!("resolver: {e}"))?;
        Ok(Dns { resolver, validating })
    }

    /// Whether answers are DNSSEC-validated.
    pub fn is_validating(&self) -> bool {
        self.validating
    }

    /// MX records of `domain` and whether they are secure. A bogus answer is a failure.
    pub async fn mx_secured(&self, domain: &str) -> Result<Secured<MxRecords>, DnsFailure> {
        let lookup = self.resolver.mx_lookup(fqdn(domain)).await.map_err(failure)?;
        let secure = self.proven(domain, "MX", lookup.answers())?;
        Ok(Secured { records: mx_records(lookup.answers())?, secure })
    }

    /// A and AAAA addresses of `host` (IPv4 first) and whether all of them are secure.
    pub async fn addresses_secured(&self, host: &str) -> Result<Secured<Vec<IpAddr>>, DnsFailure> {
        let lookup = self.resolver.lookup_ip(fqdn(host)).await.map_err(failure)?;
        let secure = self.proven(host, "A/AAAA", lookup.as_lookup().answers())?;
        let mut ips: Vec<IpAddr> = lookup.iter().collect();
        if ips.is_empty() {
            return Err(DnsFailure::NoRecords);
        }
        ips.sort_by_key(|ip| ip.is_ipv6());
        Ok(Secured { records: ips, secure })
    }

    /// The TLSA records at `name` (e.g. `_25._tcp.mx.example.com`, RFC 7672 §2.2.3) and
    /// whether they are secure.
    pub async fn tlsa(&self, name: &str) -> Result<Secured<Vec<Tlsa>>, DnsFailure> {
        let lookup = self.resolver.tlsa_lookup(fqdn(name)).await.map_err(failure)?;
        let secure = self.proven(name, "TLSA", lookup.answers())?;
        let records: Vec<Tlsa> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TLSA(t) => Some(Tlsa {
                    usage: t.cert_usage.into(),
                    selector: t.selector.into(),
                    matching: t.matching.into(),
                    data: t.cert_data.clone(),
                }),
                _ => None,
            })
            .collect();
        if records.is_empty() { Err(DnsFailure::NoRecords) } else { Ok(Secured { records, secure }) }
    }

    /// Whether `answers` are secure; a bogus or indeterminate one is a failure (RFC 7672
    /// §2.1.1). Never secure without validation.
    fn proven(&self, name: &str, kind: &str, answers: &[Record]) -> Result<bool, DnsFailure> {
        if !self.validating || answers.is_empty() {
            return Ok(false);
        }
        if let Some(bad) = answers.iter().find(|r| matches!(r.proof, Proof::Bogus | Proof::Indeterminate)) {
            return Err(DnsFailure::Temporary(format!(
                "DNSSEC validation of the {kind} records of {name} failed ({})",
                bad.proof
            )));
        }
        Ok(answers.iter().all(|r| r.proof == Proof::Secure))
    }

    /// mail-auth's verifier (SPF, DKIM, DMARC) on the same name servers (the system's when
    /// empty), with the given per-query timeout and attempts. Its resolver also serves the
    /// checklist's lookups (`checklist::resolver`).
    pub fn authenticator(
        nameservers: &[SocketAddr],
        timeout: Duration,
        attempts: usize,
    ) -> Result<mail_auth::MessageAuthenticator, String> {
        let (config, mut opts) = if nameservers.is_empty() {
            hickory_resolver::system_conf::read_system_conf().map_err(|e| format!("system resolver: {e}"))?
        } else {
            let mut opts = ResolverOpts::default();
            opts.ndots = 0;
            (ResolverConfig::from_parts(None, vec![], name_servers(nameservers)), opts)
        };
        opts.timeout = timeout;
        opts.attempts = attempts;
        mail_auth::MessageAuthenticator::new(config, opts).map_err(|e| format!("resolver: {e}"))
    }

    pub async fn mx(&self, domain: &str) -> Result<MxRecords, DnsFailure> {
        if self.validating {
            return self.mx_secured(domain).await.map(|s| s.records);
        }
        mx(&self.resolver, domain).await
    }

    /// Every TXT record at `name`, each with its strings joined (RFC 1035).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsFailure> {
        if self.validating {
            let lookup = self.resolver.txt_lookup(fqdn(name)).await.map_err(failure)?;
            self.proven(name, "TXT", lookup.answers())?;
        }
        txt(&self.resolver, name).await
    }

    /// A and AAAA addresses of a host (IPv4 first).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsFailure> {
        if self.validating {
            return self.addresses_secured(host).await.map(|s| s.records);
        }
        addresses(&self.resolver, host).await
    }
}

/// MX records of `domain`, by preference (the lookup behind `Dns::mx` and the checklist's).
pub(crate) async fn mx(resolver: &TokioResolver, domain: &str) -> Result<MxRecords, DnsFailure> {
    let lookup = resolver.mx_lookup(fqdn(domain)).await.map_err(failure)?;
    mx_records(lookup.answers())
}

/// The MX records among `answers`, by preference.
fn mx_records(answers: &[Record]) -> Result<MxRecords, DnsFailure> {
    let mut out: MxRecords = answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii().trim_end_matches('.').to_ascii_lowercase())),
            _ => None,
        })
        .collect();
    if out.is_empty() {
        return Err(DnsFailure::NoRecords);
    }
    out.sort();
    Ok(out)
}

/// Every TXT record at `name`, each with its strings joined (the lookup behind `Dns::txt` and
/// the checklist's).
pub(crate) async fn txt(resolver: &TokioResolver, name: &str) -> Result<Vec<String>, DnsFailure> {
    let lookup = resolver.txt_lookup(fqdn(name)).await.map_err(failure)?;
    let out: Vec<String> = lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => {
                Some(txt.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect::<String>())
            }
            _ => None,
        })
        .collect();
    if out.is_empty() { Err(DnsFailure::NoRecords) } else { Ok(out) }
}

/// A and AAAA addresses of `host`, IPv4 first.
pub(crate) async fn addresses(resolver: &TokioResolver, host: &str) -> Result<Vec<IpAddr>, DnsFailure> {
    let lookup = resolver.lookup_ip(fqdn(host)).await.map_err(failure)?;
    let mut ips: Vec<IpAddr> = lookup.iter().collect();
    if ips.is_empty() {
        return Err(DnsFailure::NoRecords);
    }
    ips.sort_by_key(|ip| ip.is_ipv6());
    Ok(ips)
}

/// Each address as a name server on its own port, UDP and TCP.
fn name_servers(addrs: &[SocketAddr]) -> Vec<NameServerConfig> {
    addrs
        .iter()
        .map(|addr| {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
        })
        .collect()
}

pub(crate) fn fqdn(name: &str) -> String {
    if name.ends_with('.') { name.to_string() } else { format!("{name}.") }
}

pub(crate) fn failure(e: NetError) -> DnsFailure {
    if e.is_nx_domain() {
        DnsFailure::NxDomain
    } else if e.is_no_records_found() {
        DnsFailure::NoRecords
    } else {
        DnsFailure::Temporary(e.to_string())
    }
}
