//! MTA-STS for outbound delivery: which policy is in force for a recipient domain. Looks up
//! `_mta-sts.DOMAIN` TXT through the configured resolver, fetches
//! `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` over verified HTTPS when the id is new,
//! and keeps the policy in the store, where every node of a cluster finds it.
//!
//! Standards: RFC 8461 §3.1 (one `v=STSv1` TXT record, else no policy), §3.3 (HTTPS only, the
//! certificate valid for `mta-sts.DOMAIN`, status 200 and no redirects, `text/plain`, a bounded
//! size and time), §5.1 (a fresh cached policy with the same id is used without a fetch; a new
//! id means a fetch; when the fetch fails, or the TXT record is gone or unreadable, a fresh
//! cached policy is still used), §5 (mode none: as without a policy).
//! Must not: decide outcomes (`outcome` does) or write the store except its tables of TLS
//! policies and results (`put_sts_policy`, `record_tls_result`, `count_tls_sessions`); see
//! ARCHITECTURE's exception.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use thiserror::Error;
use tracing::{debug, warn};

use super::trust::Trust;
use crate::dns::{Dns, DnsFailure};
use crate::store::Store;
use crate::time::Timestamp;
use crate::tlspolicy::{
    CachedPolicy, Day, LastResult, MAX_POLICY_BYTES, Mode, PolicyError, PolicyType, ReportPolicy, TlsCount, TlsResult,
    select_record,
};

/// Why a policy could not be fetched.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("cannot resolve {0}: {1}")]
    Dns(String, String),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("HTTPS with {0} failed: {1}")]
    Tls(String, String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("the policy answered HTTP {0} (200 required, redirects are not followed)")]
    Status(u16),
    #[error("the policy's Content-Type is `{0}`, not text/plain")]
    ContentType(String),
    #[error("the policy is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge,
    #[error("the fetch took longer than {0:?}")]
    Timeout(Duration),
    #[error("the policy is invalid: {0}")]
    Invalid(#[from] PolicyError),
}

/// Where the policy in force came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Fetched now (a new id, or nothing cached).
    Fetched,
    /// The cached policy: its id is the one published.
    Cached,
    /// The cached policy, because a fetch or the TXT lookup failed (RFC 8461 §5.1).
    CachedDespite(String),
}

/// The MTA-STS policy in force for a domain (never mode none).
#[derive(Debug, Clone)]
pub struct InForce {
    pub cached: CachedPolicy,
    pub source: Source,
}

impl InForce {
    pub fn mode(&self) -> Mode {
        self.cached.policy.mode
    }

    pub fn allows(&self, host: &str) -> bool {
        self.cached.policy.allows(host)
    }

    /// The policy as a TLS report names it.
    pub fn report_policy(&self) -> ReportPolicy {
        ReportPolicy { kind: PolicyType::Sts, id: self.cached.id.clone(), body: self.cached.body.clone() }
    }

    /// `the MTA-STS policy (enforce, id 7)`, for outcomes and DSNs.
    pub fn describe(&self) -> String {
        format!("the MTA-STS policy ({}, id {})", self.mode(), self.cached.id)
    }
}

/// `MTA-STS enforce, id 7 (cached)`: the policy as the journey and `tls status` name it.
impl fmt::Display for InForce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Fetched => "fetched".to_string(),
            Source::Cached => "cached".to_string(),
            Source::CachedDespite(why) => format!("cached; {why}"),
        };
        write!(f, "MTA-STS {}, id {} ({source})", self.mode(), self.cached.id)
    }
}

/// How long a failed fetch of one policy id is not tried again: without it, a domain whose
/// policy host is down would cost every connection to it a fetch of up to `timeout`.
const FAILED_FETCH_BACKOFF: Duration = Duration::from_secs(300);
/// At most this many failed fetches are remembered (the map is cleared when it is full).
const FAILED_FETCHES_KEPT: usize = 10_000;

pub struct Sts {
    store: Arc<dyn Store>,
    dns: Dns,
    trust: Arc<Trust>,
    port: u16,
    timeout: Duration,
    /// (domain, policy id) of a failed fetch → when it failed and why.
    failed: std::sync::Mutex<std::collections::HashMap<(String, String), (std::time::Instant, String)>>,
    /// Count fetch failures for the TLS report (`outbound.tls_rpt`).
    counting: bool,
}

impl Sts {
    pub fn new(store: Arc<dyn Store>, dns: Dns, trust: Arc<Trust>, port: u16, timeout: Duration) -> Sts {
        Sts { store, dns, trust, port, timeout, failed: Default::default(), counting: false }
    }

    /// Counts policy fetch failures for the daily TLS report when `on`.
    pub fn counting(mut self, on: bool) -> Sts {
        self.counting = on;
        self
    }

    /// Why the fetch of this policy id failed, while that is recent enough not to try again.
    fn recently_failed(&self, domain: &str, id: &str) -> Option<String> {
        let failed = self.failed.lock().ok()?;
        let (at, why) = failed.get(&(domain.to_string(), id.to_string()))?;
        (at.elapsed() < FAILED_FETCH_BACKOFF).then(|| why.clone())
    }

    fn remember_failure(&self, domain: &str, id: &str, why: String) {
        if let Ok(mut failed) = self.failed.lock() {
            if failed.len() >= FAILED_FETCHES_KEPT {
                failed.clear();
            }
            failed.insert((domain.to_string(), id.to_string()), (std::time::Instant::now(), why));
        }
    }

    /// The policy in force for `domain` at `now`, if any (RFC 8461 §5.1).
    pub async fn policy(&self, domain: &str, now: Timestamp) -> Option<InForce> {
        let cached = match self.store.sts_policy(domain).await {
            Ok(c) => c.filter(|c| c.is_fresh(now)),
            Err(e) => {
                warn!(domain, error = %e, "cannot read the cached MTA-STS policy");
                None
            }
        };
        let record = match self.dns.txt(&format!("_mta-sts.{domain}")).await {
            Ok(records) => select_record(&records).map_err(|e| e.to_string()),
            Err(DnsFailure::NxDomain | DnsFailure::NoRecords) => Err("no _mta-sts record".to_string()),
            Err(DnsFailure::Temporary(e)) => Err(format!("the _mta-sts lookup failed: {e}")),
        };
        let backoff = record.as_ref().ok().and_then(|r| self.recently_failed(domain, &r.id));
        let in_force = match (record, cached) {
            (Ok(r), Some(c)) if r.id == c.id => InForce { cached: c, source: Source::Cached },
            (Ok(_), cached) if backoff.is_some() => match (cached, backoff) {
                (Some(c), Some(why)) => {
                    InForce { cached: c, source: Source::CachedDespite(format!("fetch failed: {why}")) }
                }
                _ => return None,
            },
            (Ok(r), cached) => {
                match self.fetch(domain).await.and_then(|body| Ok(CachedPolicy::new(domain, &r.id, body, now)?)) {
                    Ok(fresh) => {
                        if let Err(e) = self.store.put_sts_policy(&fresh).await {
                            warn!(domain, error = %e, "cannot store the MTA-STS policy");
                        }
                        debug!(domain, id = %fresh.id, mode = %fresh.policy.mode, "MTA-STS policy fetched");
                        InForce { cached: fresh, source: Source::Fetched }
                    }
                    Err(e) => {
                        warn!(domain, error = %e, "MTA-STS policy fetch failed");
                        self.remember_failure(domain, &r.id, e.to_string());
                        let Some(c) = cached else {
                            let result = match e {
                                FetchError::Invalid(_) => TlsResult::StsPolicyInvalid,
                                FetchError::Tls(..) => TlsResult::StsWebpkiInvalid,
                                _ => TlsResult::StsPolicyFetchError,
                            };
                            self.record(domain, "MTA-STS (none in force)", result, e.to_string()).await;
                            let policy = ReportPolicy { kind: PolicyType::Sts, id: r.id.clone(), body: String::new() };
                            self.count(TlsCount {
                                day: Day::of(now),
                                domain: domain.to_string(),
                                policy,
                                result,
                                mx_host: None,
                                receiving_ip: None,
                                sending_ip: None,
                                count: 1,
                            })
                            .await;
                            return None;
                        };
                        InForce { cached: c, source: Source::CachedDespite(format!("fetch failed: {e}")) }
                    }
                }
            }
            (Err(why), Some(c)) => InForce { cached: c, source: Source::CachedDespite(why) },
            (Err(_), None) => return None,
        };
        (in_force.mode() != Mode::None).then_some(in_force)
    }

    /// Records the TLS result of a session to `domain` under `policy` (for `tls status`).
    pub async fn record(&self, domain: &str, policy: &str, result: TlsResult, detail: String) {
        let last =
            LastResult { domain: domain.to_string(), policy: policy.to_string(), result, detail, at: Timestamp::now() };
        if let Err(e) = self.store.record_tls_result(&last).await {
            warn!(domain, error = %e, "cannot record the TLS result");
        }
    }

    /// Adds a session to the day's TLS report counts (RFC 8460).
    pub async fn count(&self, count: TlsCount) {
        if !self.counting {
            return;
        }
        if let Err(e) = self.store.count_tls_sessions(&count).await {
            warn!(domain = %count.domain, error = %e, "cannot count the TLS session for the TLS report");
        }
    }

    /// Fetches the policy body of `domain` (RFC 8461 §3.3), within the configured time.
    pub async fn fetch(&self, domain: &str) -> Result<String, FetchError> {
        let host = format!("mta-sts.{domain}");
        tokio::time::timeout(self.timeout, self.fetch_from(&host))
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))?
    }

    async fn fetch_from(&self, host: &str) -> Result<String, FetchError> {
        let ips = self.dns.addresses(host).await.map_err(|e| FetchError::Dns(host.into(), format!("{e:?}")))?;
        let mut tcp = None;
        let mut last = String::new();
        for ip in ips {
            match tokio::net::TcpStream::connect((ip, self.port)).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = format!("{ip}: {e}"),
            }
        }
        let tcp = tcp.ok_or_else(|| FetchError::Connect(host.into(), last))?;
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| FetchError::Tls(host.into(), e.to_string()))?;
        let tls =
            self.trust.https().connect(name, tcp).await.map_err(|e| FetchError::Tls(host.into(), e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        tokio::spawn(conn);
        let req = hyper::Request::get("/.well-known/mta-sts.txt")
            .header(hyper::header::HOST, host)
            .header(hyper::header::USER_AGENT, "mailerd")
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(|e| FetchError::Http(e.to_string()))?;
        if resp.status() != hyper::StatusCode::OK {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        let content_type = resp
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("text/plain") {
            return Err(FetchError::ContentType(content_type.chars().take(100).collect()));
        }
        let body = Limited::new(resp.into_body(), MAX_POLICY_BYTES).collect().await.map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                FetchError::TooLarge
            } else {
                FetchError::Http(e.to_string())
            }
        })?;
        String::from_utf8(body.to_bytes().to_vec()).map_err(|_| FetchError::Invalid(PolicyError::NotText))
    }
}

/// What `mailerd tls status DOMAIN` shows: the TLS policy in force for a destination and the
/// last result of a session there.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TlsStatus {
    pub domain: String,
    /// `mta-sts` (a cached policy in force), `none`, `route` (a static route: the route's TLS
    /// mode applies) or `off` (`outbound.mta_sts = false`).
    pub source: &'static str,
    /// One sentence on what applies.
    pub summary: String,
    /// Whether DANE (RFC 7672) applies: `on` (`dns.dnssec`: the TLSA records of the MX hosts
    /// are looked up at each delivery, and where they are secure they take precedence over
    /// MTA-STS), `off`, or `route` (a static route: not applied).
    pub dane: &'static str,
    pub policy: Option<PolicyView>,
    pub last_result: Option<ResultView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyView {
    pub mode: &'static str,
    pub id: String,
    pub fetched_at: String,
    pub expires_at: String,
    /// Past max_age: no longer in force (a new fetch is due at the next delivery).
    pub expired: bool,
    pub mx: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ResultView {
    pub result: &'static str,
    pub policy: String,
    pub detail: String,
    pub at: String,
}

/// The TLS status of `domain` from the configuration and the store, at `now`.
pub async fn status(
    config: &crate::config::Config,
    store: &dyn Store,
    domain: &str,
    now: Timestamp,
) -> Result<TlsStatus, crate::store::StoreError> {
    let cached = store.sts_policy(domain).await?;
    let last = store.tls_result(domain).await?;
    let policy = cached.as_ref().map(|c| PolicyView {
        mode: c.policy.mode.as_str(),
        id: c.id.clone(),
        fetched_at: c.fetched_at.iso8601(),
        expires_at: c.expires_at.iso8601(),
        expired: !c.is_fresh(now),
        mx: c.policy.mx.iter().map(|p| p.to_string()).collect(),
    });
    let (source, summary) = if let Some(route) = config.routes.get(domain) {
        (
            "route",
            format!(
                "static route to {}:{} with TLS {}; MTA-STS is not applied",
                route.hop.host,
                route.hop.port,
                route.tls.as_str()
            ),
        )
    } else if !config.outbound.mta_sts {
        ("off", format!("outbound.mta_sts is off: TLS is {} (outbound.tls)", config.outbound.tls.as_str()))
    } else {
        match &cached {
            Some(c) if c.is_fresh(now) && c.policy.mode != Mode::None => (
                "mta-sts",
                match c.policy.mode {
                    Mode::Enforce => format!("MTA-STS enforce: only {} over verified TLS", c.policy.mx_list()),
                    _ => format!(
                        "MTA-STS testing: delivered as without a policy, failures recorded ({})",
                        c.policy.mx_list()
                    ),
                },
            ),
            Some(c) if c.is_fresh(now) => ("none", "the domain withdrew its MTA-STS policy (mode none)".to_string()),
            Some(_) => ("none", "the cached MTA-STS policy expired; the next delivery looks again".to_string()),
            None => {
                ("none", format!("no MTA-STS policy known; TLS is {} (outbound.tls)", config.outbound.tls.as_str()))
            }
        }
    };
    let dane = if config.routes.contains_key(domain) {
        "route"
    } else if config.dnssec.on {
        "on"
    } else {
        "off"
    };
    Ok(TlsStatus {
        domain: domain.to_string(),
        source,
        summary,
        dane,
        policy,
        last_result: last.map(|l| ResultView {
            result: l.result.as_str(),
            policy: l.policy,
            detail: l.detail,
            at: l.at.iso8601(),
        }),
    })
}
