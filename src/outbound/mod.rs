//! Delivering to other servers: route (where), client (SMTP conversation), pool (reuse and
//! limits), outcome (the outcome table: what a reply or a failure means, for every transport). `deliver` runs one job: one message to the
//! recipients of one destination, in one transaction.
//!
//! Standards: RFC 5321 §5 (try MX hosts in order, fall back on connection errors and 4xx
//! greetings), RFC 7505, RFC 2920, RFC 3207.
//! RFC 8461 (MTA-STS: in enforce mode only MX hosts the policy names, over TLS verified for
//! the MX name; in testing mode delivered as before and the result recorded).
//! RFC 7672 §2.2 (DANE, with `dns.dnssec`: an MX host with secure TLSA records, found through
//! a secure MX answer and secure addresses, is used only over TLS its records authenticate,
//! whatever MTA-STS says of it; a failed or bogus TLSA lookup makes the host unusable).
//! Must not: write the store (but the TLS policy cache and results, through `sts`, and the
//! cluster's slots); it returns one `DeliveryOutcome` per recipient.

pub mod client;
pub mod dane;
pub mod outcome;
pub mod pool;
pub mod route;
pub mod slots;
pub mod sts;
pub mod tlsrpt;
pub mod trust;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tracing::debug;

use self::client::{Check, ClientError, Connection, Envelope, RcptSpec, RemoteHost, Timeouts, Verify};
use self::dane::DaneHost;
use self::outcome::DeliveryOutcome;
use self::outcome::Stage;
use self::pool::Pool;
use self::route::RouteFailure;
use self::slots::{SlotError, SlotGuard, Slots};
use self::sts::{InForce, Sts};
use self::trust::Trust;
use crate::config::{Config, Hop, TlsMode};
use crate::dns::{Dns, DnsFailure};
use crate::smtp::command::{Notify, Ret};
use crate::store::Store;
use crate::time::Clock;
use crate::tlspolicy::{Day, Mode, PolicyType, ReportPolicy, TlsCount, TlsResult};

/// Where a counted session went: the MX host and both ends' addresses, when known.
#[derive(Default)]
struct TlsPath {
    mx: Option<String>,
    receiving: Option<IpAddr>,
    sending: Option<IpAddr>,
}

/// What DANE asks of one MX host (RFC 7672 §2.2).
enum HopDane {
    /// No secure TLSA records (DANE off, an insecure MX, address or TLSA answer, or none
    /// published): MTA-STS or opportunistic TLS applies.
    None,
    /// Secure TLSA records: STARTTLS required, the chain checked against them.
    Dane(DaneHost),
    /// The TLSA lookup failed or was bogus: the host is not used (§2.2.3).
    Failed(String),
}

/// An MX host, its addresses, and what DANE asks of it.
struct PlannedHop {
    hop: Hop,
    addrs: Result<Vec<SocketAddr>, DnsFailure>,
    dane: HopDane,
}

/// One delivery job: a message and its recipients at one destination.
pub struct Job {
    /// The recipient domain (all recipients share it).
    pub domain: String,
    pub reverse_path: String,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    pub recipients: Vec<JobRecipient>,
    pub message: Arc<Vec<u8>>,
}

pub struct JobRecipient {
    pub address: String,
    pub notify: Option<Notify>,
    pub orcpt: Option<String>,
}

pub struct Outbound {
    config: Arc<Config>,
    dns: Dns,
    pub pool: Pool,
    tls: tokio_rustls::TlsConnector,
    /// Cluster-wide connection slots, when the store is shared by several nodes.
    pub slots: Option<Arc<Slots>>,
    /// The roots certificates are verified against (`tls.ca_file` and the system's).
    trust: Arc<Trust>,
    /// MTA-STS, when `outbound.mta_sts` is on and a store keeps the policies.
    sts: Option<Sts>,
    /// The time policies and TLS report counts are taken at (a test's clock in tests).
    clock: Clock,
}

impl Outbound {
    pub fn new(config: Arc<Config>) -> Result<Outbound, String> {
        let o = &config.outbound;
        let pool = Pool::new(o.max_connections_per_destination, o.max_messages_per_connection, o.idle_timeout);
        let dns = if config.dnssec.on {
            Dns::validating(&config.dns_nameservers, config.dnssec.trust_anchor.as_deref())?
        } else {
            Dns::new(&config.dns_nameservers)?
        };
        let trust = Arc::new(Trust::load(config.tls.ca_file.as_deref())?);
        Ok(Outbound {
            config,
            dns,
            pool,
            tls: client::opportunistic_tls(),
            slots: None,
            trust,
            sts: None,
            clock: Clock::system(),
        })
    }

    /// Honours MTA-STS policies (when `outbound.mta_sts` is on), cached in `store`, where the
    /// TLS results of MTA-STS and DANE sessions are kept too.
    pub fn with_policies(mut self, store: Arc<dyn Store>) -> Outbound {
        let o = &self.config.outbound;
        let sts = Sts::new(store, self.dns.clone(), self.trust.clone(), o.mta_sts_port, o.mta_sts_timeout);
        self.sts = Some(sts.counting(o.tls_rpt));
        self
    }

    /// The roots certificates are verified against (for the TLS report's HTTPS POSTs too).
    pub fn trust(&self) -> Arc<Trust> {
        self.trust.clone()
    }

    /// Reads the time from `clock` (policy freshness, the day of TLS report counts).
    pub fn with_clock(mut self, clock: Clock) -> Outbound {
        self.clock = clock;
        self
    }

    /// The MTA-STS policy in force for `domain`: none for a static route (the operator chose
    /// the host) or with MTA-STS off.
    async fn policy(&self, domain: &str) -> Option<InForce> {
        if self.config.routes.contains_key(domain) || !self.config.outbound.mta_sts {
            return None;
        }
        self.sts.as_ref()?.policy(domain, self.clock.now()).await
    }

    /// Records a session's TLS result under `policy` (as the journey names it).
    async fn record_tls(&self, domain: &str, policy: &str, result: TlsResult, detail: String) {
        if let Some(sts) = &self.sts {
            sts.record(domain, policy, result, detail).await;
        }
    }

    /// Counts a session (or an attempt that ended before one) toward `domain` for the daily TLS
    /// report: under `policy`, or as no-policy-found (RFC 8460 §4.4). Not for static routes, and
    /// not when `outbound.tls_rpt` is off.
    async fn count_tls(&self, domain: &str, policy: Option<ReportPolicy>, result: TlsResult, path: TlsPath) {
        let Some(sts) = &self.sts else { return };
        // Counted only when reports are sent (`Sts::counting`): nothing else takes the rows.
        if self.config.routes.contains_key(domain) {
            return;
        }
        sts.count(TlsCount {
            day: Day::of(self.clock.now()),
            domain: domain.to_ascii_lowercase(),
            policy: policy.unwrap_or_else(ReportPolicy::none),
            result,
            mx_host: path.mx,
            receiving_ip: path.receiving,
            sending_ip: path.sending,
            count: 1,
        })
        .await;
    }

    /// Counts connections per destination across the cluster that shares `slots`' store.
    pub fn with_slots(mut self, slots: Arc<Slots>) -> Outbound {
        self.slots = Some(slots);
        self
    }

    /// The pool key and TLS mode of a domain: its static route, or the domain itself.
    fn destination(&self, domain: &str) -> (String, TlsMode) {
        match self.config.routes.get(domain) {
            Some(r) => (format!("[{}]:{}", r.hop.host, r.hop.port), r.tls),
            None => (domain.to_string(), self.config.outbound.tls),
        }
    }

    /// The hops of `domain`, and whether DANE may apply to them: DNSSEC validation is on, no
    /// static route applies, and the MX answer is secure (RFC 7672 §2.2.1) or there is none
    /// (implicit MX, §2.2.2: the domain's own addresses must then be secure).
    async fn hops(&self, domain: &str) -> Result<(Vec<Hop>, bool), RouteFailure> {
        if let Some(r) = self.config.routes.get(domain) {
            return Ok((vec![r.hop.clone()], false));
        }
        let port = self.config.outbound.mx_port;
        if !self.dns.is_validating() {
            return route::from_mx(domain, self.dns.mx(domain).await, port).map(|h| (h, false));
        }
        let answer = self.dns.mx_secured(domain).await;
        let secure = match &answer {
            Ok(a) => a.secure,
            Err(e) => *e == DnsFailure::NoRecords,
        };
        route::from_mx(domain, answer.map(|a| a.records), port).map(|h| (h, secure))
    }

    /// The addresses of a hop, and whether they are secure.
    async fn addresses(&self, hop: &Hop) -> Result<(Vec<SocketAddr>, bool), DnsFailure> {
        if let Ok(ip) = hop.host.parse::<IpAddr>() {
            return Ok((vec![SocketAddr::new(ip, hop.port)], false));
        }
        let ips = self.dns.addresses_secured(&hop.host).await?;
        Ok((ips.records.into_iter().map(|ip| SocketAddr::new(ip, hop.port)).collect(), ips.secure))
    }

    /// What DANE asks of `host` (RFC 7672 §2.2.3): the TLSA records at `_25._tcp.HOST` when
    /// they are secure; nothing when they are insecure or absent; the host is unusable when the
    /// lookup failed or was bogus.
    async fn dane_of(&self, host: &str) -> HopDane {
        let owner = format!("_25._tcp.{host}");
        match self.dns.tlsa(&owner).await {
            Ok(answer) if answer.secure => HopDane::Dane(DaneHost { base: host.to_string(), records: answer.records }),
            Ok(_) | Err(DnsFailure::NoRecords | DnsFailure::NxDomain) => HopDane::None,
            Err(DnsFailure::Temporary(e)) => HopDane::Failed(format!("the TLSA lookup of {owner} failed: {e}")),
        }
    }

    /// Each hop with its addresses and DANE policy, in order.
    async fn plan(&self, hops: Vec<Hop>, mx_secure: bool) -> Vec<PlannedHop> {
        let mut planned = Vec::with_capacity(hops.len());
        for hop in hops {
            let (addrs, dane) = match self.addresses(&hop).await {
                Ok((addrs, true)) if mx_secure => (Ok(addrs), self.dane_of(&hop.host).await),
                Ok((addrs, _)) => (Ok(addrs), HopDane::None),
                Err(e) => (Err(e), HopDane::None),
            };
            planned.push(PlannedHop { hop, addrs, dane });
        }
        planned
    }

    /// Opens a connection to the first host that answers with a 220, trying MX hosts (and each
    /// of their addresses) in order. Errors: the route failure, or the last host's error.
    /// A host with secure TLSA records is used only over TLS they authenticate (DANE), and
    /// MTA-STS does not apply to it; a host whose TLSA lookup failed is not used.
    /// Under an MTA-STS policy in enforce mode only hosts the policy names are tried, and only
    /// over TLS verified for the host name; in testing mode any host as before, and the result
    /// is recorded.
    async fn connect(
        &self,
        domain: &str,
        tls: TlsMode,
        policy: Option<&InForce>,
    ) -> Result<Connection, DeliveryOutcome> {
        let (hops, mx_secure) = self.hops(domain).await.map_err(|f| DeliveryOutcome::from_route(domain, &f))?;
        let mut planned = self.plan(hops, mx_secure).await;
        let enforce = policy.is_some_and(|p| p.mode() == Mode::Enforce);
        if let (Some(p), true) = (policy, enforce) {
            let all: Vec<String> = planned.iter().map(|h| h.hop.host.clone()).collect();
            planned.retain(|h| !matches!(h.dane, HopDane::None) || p.allows(&h.hop.host));
            if planned.is_empty() {
                let patterns = p.cached.policy.mx_list();
                let detail = format!("MX hosts {} not in the policy's mx ({patterns})", all.join(", "));
                self.record_tls(domain, &p.to_string(), TlsResult::MxNotInPolicy, detail).await;
                let path = TlsPath { mx: all.first().cloned(), ..TlsPath::default() };
                self.count_tls(domain, Some(p.report_policy()), TlsResult::MxNotInPolicy, path).await;
                return Err(DeliveryOutcome::mx_outside_policy(domain, &p.describe(), &all, &patterns));
            }
        }
        // What each host that a policy required TLS of did, and the policies that required it.
        let mut policy_failures: Vec<String> = Vec::new();
        let mut unmet_policies: Vec<String> = Vec::new();
        // The last such failure: its result, detail and policy (as the journey names it).
        let mut last_policy_result: Option<(TlsResult, String, String)> = None;
        let o = &self.config.outbound;
        let timeouts = Timeouts { connect: o.connect_timeout, command: o.command_timeout, ..Timeouts::default() };
        let mut last: Option<DeliveryOutcome> = None;
        let mut dns_trouble = None;
        for PlannedHop { hop, addrs, dane } in &planned {
            let addrs = match addrs {
                Ok(a) => a,
                Err(e) => {
                    debug!(host = %hop.host, error = ?e, "no address for MX host");
                    dns_trouble.get_or_insert(e.clone());
                    continue;
                }
            };
            let dane = match dane {
                HopDane::Failed(why) => {
                    debug!(host = %hop.host, error = %why, "MX host not used: its TLSA records are unknown");
                    let name = format!("DANE (TLSA _25._tcp.{})", hop.host);
                    policy_failures.push(format!("{}: {why}", hop.host));
                    if !unmet_policies.contains(&name) {
                        unmet_policies.push(name.clone());
                    }
                    let path = TlsPath { mx: Some(hop.host.clone()), ..TlsPath::default() };
                    let report = ReportPolicy { kind: PolicyType::Tlsa, id: hop.host.clone(), body: String::new() };
                    self.count_tls(domain, Some(report), TlsResult::DnssecInvalid, path).await;
                    last_policy_result = Some((TlsResult::DnssecInvalid, format!("{}: {why}", hop.host), name));
                    continue;
                }
                HopDane::Dane(d) => Some(d),
                HopDane::None => None,
            };
            // The policy this host is held to: DANE before MTA-STS (RFC 8461 §2).
            let (policy_name, report_policy) = match (dane, policy) {
                (Some(d), _) => (Some(d.describe()), Some(d.report_policy())),
                (None, Some(p)) => (Some(p.to_string()), Some(p.report_policy())),
                (None, None) => (None, None),
            };
            for &addr in addrs {
                let remote = RemoteHost { name: hop.host.clone(), addr };
                let verify = match (dane, policy) {
                    (Some(d), _) => Some(Verify { check: Check::Dane(d), enforce: true }),
                    (None, Some(p)) => {
                        Some(Verify { check: Check::Pkix(&self.trust), enforce: p.mode() == Mode::Enforce })
                    }
                    (None, None) => None,
                };
                let strict = verify.as_ref().is_some_and(|v| v.enforce);
                match Connection::open(remote.clone(), &o.helo, tls, &self.tls, verify, timeouts.clone()).await {
                    Ok(mut c) => {
                        let path = TlsPath {
                            mx: Some(hop.host.clone()),
                            receiving: Some(addr.ip()),
                            sending: c.local.map(|l| l.ip()),
                        };
                        if let (Some(name), Some(report)) = (&policy_name, &report_policy) {
                            let allowed = dane.is_some() || policy.is_none_or(|p| p.allows(&hop.host));
                            let (result, how) = match (&c.tls_check, allowed) {
                                (_, false) => (TlsResult::MxNotInPolicy, format!("{remote} is not in the policy's mx")),
                                (Some(Ok(())), true) => (TlsResult::Success, format!("verified TLS with {remote}")),
                                (Some(Err((r, d))), true) => (*r, d.clone()),
                                (None, true) => (TlsResult::StartTlsNotSupported, format!("{remote}: no TLS")),
                            };
                            let anyway = if result == TlsResult::Success { "" } else { ", delivered anyway (testing)" };
                            c.tls_policy = Some(format!("{name}: {}{anyway}", result.as_str()));
                            self.record_tls(domain, name, result, how).await;
                            self.count_tls(domain, Some(report.clone()), result, path).await;
                        } else {
                            let result = if c.tls { TlsResult::Success } else { TlsResult::StartTlsNotSupported };
                            self.count_tls(domain, None, result, path).await;
                        }
                        return Ok(c);
                    }
                    Err(e) => {
                        debug!(remote = %remote, error = %e, "connection failed, trying the next host");
                        if strict {
                            policy_failures.push(e.to_string());
                            if let (ClientError::TlsPolicy { result, detail, local }, Some(name)) = (&e, &policy_name) {
                                let failed_under = match dane {
                                    Some(d) => format!("DANE (TLSA {})", d.owner()),
                                    None => policy.map(InForce::describe).unwrap_or_default(),
                                };
                                if !unmet_policies.contains(&failed_under) {
                                    unmet_policies.push(failed_under);
                                }
                                last_policy_result = Some((*result, detail.clone(), name.clone()));
                                let sending = local.map(|l| l.ip());
                                let path = TlsPath { mx: Some(hop.host.clone()), receiving: Some(addr.ip()), sending };
                                self.count_tls(domain, report_policy.clone(), *result, path).await;
                            }
                        }
                        last = Some(DeliveryOutcome::from_error(&e, Some(&remote)));
                    }
                }
            }
        }
        if let Some((result, detail, name)) = last_policy_result {
            self.record_tls(domain, &name, result, detail).await;
            return Err(DeliveryOutcome::tls_policy_unmet(domain, &unmet_policies.join(" and "), &policy_failures));
        }
        Err(last.unwrap_or_else(|| match dns_trouble {
            Some(DnsFailure::Temporary(e)) => DeliveryOutcome::mx_hosts_unresolved(domain, e),
            _ => DeliveryOutcome::mx_hosts_without_address(domain),
        }))
    }

    /// One of `destination`'s cluster-wide slots (None without a cluster), or why there is none.
    async fn cluster_slot(&self, destination: &str) -> Result<Option<SlotGuard>, DeliveryOutcome> {
        let Some(slots) = &self.slots else { return Ok(None) };
        let limit = self.config.outbound.max_connections_per_destination as u32;
        slots.acquire(destination, limit).await.map(Some).map_err(|e| match e {
            SlotError::Busy => DeliveryOutcome::destination_busy(destination, limit),
            SlotError::Store(e) => DeliveryOutcome::local_trouble(Stage::Connect, format!("connection slot: {e}")),
        })
    }

    /// Delivers `job` and returns one outcome per recipient, in order.
    pub async fn deliver(&self, job: &Job) -> Vec<DeliveryOutcome> {
        let (destination, tls) = self.destination(&job.domain);
        let limit = self.pool.limit(&destination);
        let Ok(_permit) = limit.acquire().await else {
            return vec![DeliveryOutcome::shutting_down(); job.recipients.len()];
        };
        // In a cluster, the delivery also holds one of the destination's slots in the store
        // (handed back when `_slot` drops, at the end of this delivery).
        let _slot = match self.cluster_slot(&destination).await {
            Ok(slot) => slot,
            Err(outcome) => return vec![outcome; job.recipients.len()],
        };
        let envelope = Envelope {
            reverse_path: &job.reverse_path,
            recipients: job
                .recipients
                .iter()
                .map(|r| RcptSpec { address: &r.address, notify: r.notify, orcpt: r.orcpt.as_deref() })
                .collect(),
            envid: job.envid.as_deref(),
            ret: job.ret,
            message: &job.message,
        };
        // A pooled connection may have been closed by the server meanwhile: one retry on a new one.
        // It was opened under the domain's policy, checked then.
        let mut reused = self.pool.take(&destination);
        // The policy is looked up when a new connection is needed, once.
        let mut policy: Option<Option<InForce>> = None;
        loop {
            let was_reused = reused.is_some();
            let mut conn = match reused.take() {
                Some(c) => c,
                None => {
                    if policy.is_none() {
                        policy = Some(self.policy(&job.domain).await);
                    }
                    match self.connect(&job.domain, tls, policy.as_ref().and_then(Option::as_ref)).await {
                        Ok(c) => c,
                        Err(o) => return vec![o; job.recipients.len()],
                    }
                }
            };
            match conn.send(&envelope).await {
                Ok(result) => {
                    let mut outcomes = DeliveryOutcome::from_transaction(&result, &conn.remote);
                    if let Some(note) = &conn.tls_policy {
                        for o in outcomes.iter_mut().filter(|o| matches!(o, DeliveryOutcome::Delivered(_))) {
                            o.set_tls_policy(note.clone());
                        }
                    }
                    self.pool.put(&destination, conn);
                    return outcomes;
                }
                Err(ClientError::Io(..)) | Err(ClientError::Protocol(..)) if was_reused => continue,
                Err(e) => {
                    let o = DeliveryOutcome::from_error(&e, Some(&conn.remote));
                    return vec![o; job.recipients.len()];
                }
            }
        }
    }
}
