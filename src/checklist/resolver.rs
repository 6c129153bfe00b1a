//! DNS for the domain and message checks: one hickory resolver (from `[dns] nameservers`, or the
//! system's) wrapped in mail-auth's `MessageAuthenticator`, so SPF evaluation and DKIM
//! verification ask the same servers as the raw TXT, MX, address and PTR lookups here.
//!
//! Standards: RFC 1035 (TXT strings are concatenated per record), RFC 2308 (NXDOMAIN vs no
//! data). Failures are reduced to `crate::dns::DnsFailure` so callers can say "could not check"
//! for temporary trouble instead of "bad".
//! Must not: cache across calls or retry beyond the resolver's own attempts.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;
use mail_auth::MessageAuthenticator;

use crate::dns::{DnsFailure, MxRecords};

#[derive(Debug, thiserror::Error)]
#[error("cannot build the DNS resolver: {0}")]
pub struct ResolverError(String);

pub struct Resolver {
    auth: MessageAuthenticator,
}

impl Resolver {
    /// The given name servers (UDP and TCP on their ports), or the system's when empty.
    pub fn new(nameservers: &[SocketAddr]) -> Result<Resolver, ResolverError> {
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_secs(5);
        opts.attempts = 2;
        opts.ndots = 0;
        let auth = if nameservers.is_empty() {
            let (config, mut sys) = hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| ResolverError(format!("system resolver: {e}")))?;
            sys.timeout = opts.timeout;
            sys.attempts = opts.attempts;
            MessageAuthenticator::new(config, sys)
        } else {
            let servers = nameservers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            MessageAuthenticator::new(ResolverConfig::from_parts(None, vec![], servers), opts)
        }
        .map_err(|e| ResolverError(e.to_string()))?;
        Ok(Resolver { auth })
    }

    pub fn authenticator(&self) -> &MessageAuthenticator {
        &self.auth
    }

    /// Every TXT record at `name`, each with its strings joined.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsFailure> {
        let lookup = self.auth.resolver().txt_lookup(fqdn(name)).await.map_err(failure)?;
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

    /// TXT records at `name` that start with `prefix` (case-insensitive), e.g. `v=spf1`.
    pub async fn txt_with_prefix(&self, name: &str, prefix: &str) -> Result<Vec<String>, DnsFailure> {
        let all = match self.txt(name).await {
            Ok(all) => all,
            Err(DnsFailure::NoRecords) => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(all
            .into_iter()
            .filter(|t| {
                t.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
                    && t.as_bytes().get(prefix.len()).is_none_or(|&b| b == b' ' || b == b';')
            })
            .collect())
    }

    pub async fn mx(&self, domain: &str) -> Result<MxRecords, DnsFailure> {
        let lookup = self.auth.resolver().mx_lookup(fqdn(domain)).await.map_err(failure)?;
        let mut out: MxRecords = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => {
                    Some((mx.preference, mx.exchange.to_ascii().trim_end_matches('.').to_ascii_lowercase()))
                }
                _ => None,
            })
            .collect();
        if out.is_empty() {
            return Err(DnsFailure::NoRecords);
        }
        out.sort();
        Ok(out)
    }

    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsFailure> {
        let lookup = self.auth.resolver().lookup_ip(fqdn(host)).await.map_err(failure)?;
        let ips: Vec<IpAddr> = lookup.iter().collect();
        if ips.is_empty() { Err(DnsFailure::NoRecords) } else { Ok(ips) }
    }

    /// PTR names of `ip`, lower case without the trailing dot.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsFailure> {
        let lookup = self.auth.resolver().reverse_lookup(ip).await.map_err(failure)?;
        let names: Vec<String> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(p) => Some(p.to_ascii().trim_end_matches('.').to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        if names.is_empty() { Err(DnsFailure::NoRecords) } else { Ok(names) }
    }
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') { name.to_string() } else { format!("{name}.") }
}

fn failure(e: NetError) -> DnsFailure {
    if e.is_nx_domain() {
        DnsFailure::NxDomain
    } else if e.is_no_records_found() {
        DnsFailure::NoRecords
    } else {
        DnsFailure::Temporary(e.to_string())
    }
}
