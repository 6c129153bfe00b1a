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

use hickory_resolver::proto::rr::RData;
use mail_auth::MessageAuthenticator;

use crate::dns::{DnsFailure, MxRecords, failure};

#[derive(Debug, thiserror::Error)]
#[error("cannot build the DNS resolver: {0}")]
pub struct ResolverError(String);

pub struct Resolver {
    auth: MessageAuthenticator,
}

impl Resolver {
    /// The given name servers (UDP and TCP on their ports), or the system's when empty.
    pub fn new(nameservers: &[SocketAddr]) -> Result<Resolver, ResolverError> {
        Resolver::with_timeout(nameservers, Duration::from_secs(5), 2)
    }

    /// With a per-query timeout and attempts of its own (a web page answers within seconds).
    pub fn with_timeout(
        nameservers: &[SocketAddr],
        timeout: Duration,
        attempts: usize,
    ) -> Result<Resolver, ResolverError> {
        let auth = crate::dns::Dns::authenticator(nameservers, timeout, attempts).map_err(ResolverError)?;
        Ok(Resolver { auth })
    }

    pub fn authenticator(&self) -> &MessageAuthenticator {
        &self.auth
    }

    /// Every TXT record at `name`, each with its strings joined.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsFailure> {
        crate::dns::txt(self.auth.resolver(), name).await
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
        crate::dns::mx(self.auth.resolver(), domain).await
    }

    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsFailure> {
        crate::dns::addresses(self.auth.resolver(), host).await
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
