//! DNS lookups for delivery: MX records and host addresses, through hickory-resolver built
//! from `[dns] nameservers` (empty: the system resolver).
//!
//! Standards: RFC 5321 §5.1 (MX, implicit MX), RFC 7505 (null MX), RFC 2308 (NXDOMAIN vs no data).
//! Answers are reduced to small values (`MxAnswer`, `DnsFailure`) so routing stays pure.
//! Must not: decide what a failure means for delivery; that is `outbound::route`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

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

#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// Builds a resolver: the given name servers (UDP and TCP on their ports), or the system's.
    pub fn new(nameservers: &[SocketAddr]) -> Result<Dns, String> {
        let mut builder = if nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| format!("system resolver: {e}"))?
        } else {
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], name_servers(nameservers)),
                TokioRuntimeProvider::default(),
            )
        };
        let opts = builder.options_mut();
        opts.timeout = Duration::from_secs(5);
        opts.attempts = 2;
        opts.ndots = 0;
        let resolver = builder.build().map_err(|e| format!("resolver: {e}"))?;
        Ok(Dns { resolver })
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
        mx(&self.resolver, domain).await
    }

    /// Every TXT record at `name`, each with its strings joined (RFC 1035).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsFailure> {
        txt(&self.resolver, name).await
    }

    /// A and AAAA addresses of a host (IPv4 first).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsFailure> {
        addresses(&self.resolver, host).await
    }
}

/// MX records of `domain`, by preference (the lookup behind `Dns::mx` and the checklist's).
pub(crate) async fn mx(resolver: &TokioResolver, domain: &str) -> Result<MxRecords, DnsFailure> {
    let lookup = resolver.mx_lookup(fqdn(domain)).await.map_err(failure)?;
    let mut out: MxRecords = lookup
        .answers()
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
