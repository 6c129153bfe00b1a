//! Configuration: TOML → `RawConfig` (serde, a default for every key) → validated `Config`.
//!
//! Every key of DESIGN §3 has a default, so `mailerd serve` runs with no file at all.
//! Errors name the key and the problem (`ConfigError`), and the CLI exits 2 on them.
//! Must not: open files other than the config itself, bind sockets, or touch the store.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use thiserror::Error;

use crate::outbound::client::TlsMode;
use crate::outbound::route::{Hop, parse_next_hop};
use crate::smtp::address::{Domain, Mailbox};

#[derive(Debug, Error)]
pub enum ConfigError {
    /// Not a `#[source]`: the message already says the cause, once.
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{0}")]
    Syntax(String),
    #[error("key `{key}`: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), problem: problem.into() }
}

/// The validated configuration the daemon runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub hostname: String,
    pub data_dir: PathBuf,
    pub listen: Listen,
    pub store_url: String,
    pub limits: Limits,
    pub trusted_networks: Vec<IpNet>,
    pub queue: Queue,
    pub local: Local,
    pub tls: Tls,
    pub dns_nameservers: Vec<SocketAddr>,
    /// Static next hops by recipient domain, tried before MX lookup.
    pub routes: BTreeMap<String, Route>,
    pub outbound: Outbound,
    pub retry: Retry,
    pub bounce: Bounce,
    pub dkim: Option<Dkim>,
    pub check: CheckConfig,
    /// `[[webhooks]]`: endpoints that receive the event stream.
    pub webhooks: Vec<Webhook>,
    /// `[account]`: the hard-bounce breaker per SMTP login and API key.
    pub account: crate::bounce::breaker::BreakerConfig,
    /// `[dashboard]`: who may log in to `/dashboard`.
    pub dashboard: Dashboard,
    /// `relay.sender_login_match` and `[[senders]]`: the senders an SMTP login may use.
    pub senders: crate::inbound::senders::Senders,
    /// `[log]`: how log lines are written.
    pub log: Log,
}

/// `[log]`: the lines on stderr (`logging`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Log {
    pub format: LogFormat,
}

/// `log.format`: `text` (logfmt after the time, level and verb) or `json` (one object a line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[dashboard]`: the web dashboard on `listen.http` under `/dashboard`.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    /// Mailbox logins (`mailerd user add`) allowed in, normalised; empty: the dashboard is off.
    pub admins: Vec<String>,
}

/// One webhook endpoint: events of `events` (all when empty) are POSTed as signed JSON.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// `http://host:port/path`.
    pub url: String,
    /// HMAC-SHA256 key for the `Mailerd-Signature` header.
    pub secret: String,
    pub events: Vec<String>,
}

/// Event types a webhook can ask for.
pub const WEBHOOK_EVENTS: &[&str] = &[
    "queued",
    "delivered",
    "deferred",
    "bounced",
    "expired",
    "delayed",
    "suppressed",
    "check",
    "forged_bounce",
    "account_paused",
    "deleted",
    "held",
    "released",
];

/// `[check]`: what `mailerd check` needs to know about the sending side.
#[derive(Debug, Clone, Default)]
pub struct CheckConfig {
    /// The public IPs outgoing mail leaves from; `check domain` tests SPF and reverse DNS for
    /// them (default: none, those checks are skipped with a note).
    pub outbound_ips: Vec<std::net::IpAddr>,
    /// `[check.policy]`: what the daemon does when a check of submitted mail warns or fails
    /// (every name of [`SUBMISSION_CHECKS`]; default `warn`).
    pub policy: BTreeMap<String, CheckPolicy>,
}

/// The checks run on every submitted message (relayed recipients and the message itself).
pub const SUBMISSION_CHECKS: &[&str] =
    &["typo", "literal", "size", "headers", "header_syntax", "line_length", "8bit", "text_alternative"];

/// What a check of submitted mail that warns or fails leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckPolicy {
    /// Refuse the recipient or the message, with the fix in the reply.
    Reject,
    /// Accept, and record the finding as an event of the message.
    Warn,
    /// Do not run the check.
    Off,
}

impl CheckConfig {
    /// The policy for `check` (`warn` when not configured).
    pub fn policy_for(&self, check: &str) -> CheckPolicy {
        self.policy.get(check).copied().unwrap_or(CheckPolicy::Warn)
    }
}

#[derive(Debug, Clone)]
pub struct Dkim {
    pub domain: String,
    pub selector: String,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Bounce {
    /// Age of a still-deferred message at which the sender gets one delay warning.
    pub delay_warning: Duration,
    /// Domain of the signed return paths (`bounces+TOKEN@domain`); it must route back here.
    pub return_path_domain: String,
    /// Rewrite the envelope sender of outgoing mail to a signed return path.
    pub sign_return_path: bool,
    /// Refuse relayed recipients on the suppression list at RCPT (the list is kept either way).
    pub enforce_suppression: bool,
    /// Null-sender mail to a local mailbox is read as a possible bounce first: a genuine one
    /// is recorded (and not delivered), a forged one dropped, anything else delivered.
    pub read_null_sender: bool,
    /// Also deliver genuine bounces (already recorded) to the local mailbox they came to.
    pub keep_in_mailbox: bool,
    /// Check SPF, DKIM and DMARC of incoming bounces (needs DNS).
    pub check_authentication: bool,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub hop: Hop,
    pub tls: TlsMode,
}

#[derive(Debug, Clone)]
pub struct Outbound {
    pub mx_port: u16,
    pub helo: String,
    pub tls: TlsMode,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub max_connections_per_destination: usize,
    pub max_messages_per_connection: u32,
    pub max_deliveries: usize,
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Retry {
    pub first: Duration,
    pub max_interval: Duration,
    pub max_age: Duration,
    /// Mailbox full (x.2.2) is retried for this long only.
    pub mailbox_full_max_age: Duration,
}

#[derive(Debug, Clone)]
pub struct Listen {
    pub smtp: Option<SocketAddr>,
    pub submission: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_size: u64,
    pub max_recipients: usize,
    /// Concurrent sessions of the MX (`listen.smtp`) listener.
    pub max_connections: usize,
    /// Concurrent sessions of the submission listener (its own pool).
    pub max_submission_connections: usize,
    /// Concurrent connections of the HTTP listener (its own pool).
    pub max_http_connections: usize,
    /// Concurrent SMTP sessions per client (an IPv4 address or an IPv6 /64); 0 = no limit.
    pub max_connections_per_ip: usize,
    /// New SMTP connections per client per minute; 0 = no limit.
    pub connection_rate_per_ip: u32,
    /// Messages (MAIL commands) per client per minute; 0 = no limit.
    pub messages_per_ip: u32,
    /// Recipients (RCPT commands) per client per minute; 0 = no limit.
    pub recipients_per_ip: u32,
    /// A whole command line must arrive within this (not just one read).
    pub command_timeout: Duration,
    /// Longest wait for one read during DATA.
    pub data_timeout: Duration,
    /// DATA must average at least this many bytes per second after a grace of
    /// `command_timeout` (0 = no floor): a slow client cannot stretch it for ever.
    pub min_data_rate: u64,
    pub max_errors: u32,
    /// NOOP, RSET, VRFY, HELP and EXPN beyond this many count as errors.
    pub junk_command_limit: u32,
    pub min_free_space: u64,
    pub auth_max_failures: u32,
    pub auth_failure_window: Duration,
    pub shutdown_grace: Duration,
    /// The HTTP request head must arrive within this; also how long an idle keep-alive
    /// connection is kept.
    pub http_header_timeout: Duration,
    /// A whole HTTP request (body and handler) must finish within this.
    pub http_request_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Queue {
    pub hold: bool,
    /// How long a claimed recipient stays ours without renewal; a node renews its leases
    /// every third of this while it works, so a dead node's work resumes after at most this.
    pub lease: Duration,
}

#[derive(Debug, Clone)]
pub struct Local {
    pub domains: Vec<Domain>,
    pub quota: u64,
    /// alias key (`local@domain`, normalised) → target mailbox.
    pub aliases: BTreeMap<String, Mailbox>,
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    hostname: Option<String>,
    data_dir: Option<PathBuf>,
    listen: RawListen,
    store: RawStore,
    limits: RawLimits,
    relay: RawRelay,
    queue: RawQueue,
    local: RawLocal,
    tls: RawTls,
    dns: RawDns,
    routes: BTreeMap<String, RawRoute>,
    outbound: RawOutbound,
    retry: RawRetry,
    bounce: RawBounce,
    dkim: RawDkim,
    check: RawCheck,
    webhooks: Vec<RawWebhook>,
    account: RawAccount,
    dashboard: RawDashboard,
    senders: Vec<RawSenders>,
    log: RawLog,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSenders {
    login: String,
    #[serde(default)]
    addresses: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDashboard {
    admins: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAccount {
    hard_bounce_threshold: f64,
    min_messages: u64,
    window: u64,
}

impl Default for RawAccount {
    fn default() -> Self {
        RawAccount { hard_bounce_threshold: 0.10, min_messages: 100, window: 86_400 }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    secret: String,
    #[serde(default)]
    events: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCheck {
    outbound_ips: Vec<String>,
    policy: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDkim {
    domain: Option<String>,
    selector: Option<String>,
    key: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawBounce {
    delay_warning: u64,
    return_path_domain: Option<String>,
    sign_return_path: bool,
    enforce_suppression: bool,
    read_null_sender: bool,
    keep_in_mailbox: bool,
    check_authentication: bool,
}

impl Default for RawBounce {
    fn default() -> Self {
        Self {
            delay_warning: 14_400,
            return_path_domain: None,
            sign_return_path: true,
            enforce_suppression: true,
            read_null_sender: true,
            keep_in_mailbox: false,
            check_authentication: true,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDns {
    nameservers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRoute {
    NextHop(String),
    Full {
        next_hop: String,
        #[serde(default)]
        tls: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOutbound {
    mx_port: u16,
    helo: Option<String>,
    tls: String,
    connect_timeout: u64,
    command_timeout: u64,
    max_connections_per_destination: usize,
    max_messages_per_connection: u32,
    max_deliveries: usize,
    idle_timeout: u64,
}

impl Default for RawOutbound {
    fn default() -> Self {
        Self {
            mx_port: 25,
            helo: None,
            tls: "opportunistic".into(),
            connect_timeout: 30,
            command_timeout: 300,
            max_connections_per_destination: 20,
            max_messages_per_connection: 100,
            max_deliveries: 200,
            idle_timeout: 10,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRetry {
    first: u64,
    max_interval: u64,
    max_age: u64,
    mailbox_full_max_age: u64,
}

impl Default for RawRetry {
    fn default() -> Self {
        Self { first: 300, max_interval: 14_400, max_age: 432_000, mailbox_full_max_age: 86_400 }
    }
}

fn tls_mode(key: &str, text: &str) -> Result<TlsMode, ConfigError> {
    match text {
        "opportunistic" => Ok(TlsMode::Opportunistic),
        "required" => Ok(TlsMode::Required),
        "off" => Ok(TlsMode::Off),
        other => Err(invalid(key, format!("`{other}`: use \"opportunistic\", \"required\" or \"off\""))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawListen {
    smtp: String,
    submission: String,
    http: String,
}

/// `listen.http` is off unless given (the README's promise): the API, the dashboard and
/// `/metrics` listen only where an operator chose to expose them.
impl Default for RawListen {
    fn default() -> Self {
        Self { smtp: "127.0.0.1:2525".into(), submission: "127.0.0.1:2587".into(), http: String::new() }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawStore {
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLimits {
    max_message_size: u64,
    max_recipients: usize,
    max_connections: usize,
    max_submission_connections: usize,
    max_http_connections: usize,
    max_connections_per_ip: usize,
    connection_rate_per_ip: u32,
    messages_per_ip: u32,
    recipients_per_ip: u32,
    command_timeout: u64,
    data_timeout: u64,
    min_data_rate: u64,
    max_errors: u32,
    junk_command_limit: u32,
    min_free_space: u64,
    auth_max_failures: u32,
    auth_failure_window: u64,
    shutdown_grace: u64,
    http_header_timeout: u64,
    http_request_timeout: u64,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            max_message_size: 26_214_400,
            max_recipients: 100,
            max_connections: 1000,
            max_submission_connections: 200,
            max_http_connections: 500,
            max_connections_per_ip: 50,
            connection_rate_per_ip: 0,
            messages_per_ip: 0,
            recipients_per_ip: 0,
            command_timeout: 300,
            data_timeout: 600,
            min_data_rate: 1024,
            max_errors: 20,
            junk_command_limit: 100,
            min_free_space: 0,
            auth_max_failures: 5,
            auth_failure_window: 300,
            shutdown_grace: 30,
            http_header_timeout: 10,
            http_request_timeout: 120,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRelay {
    trusted_networks: Vec<String>,
    sender_login_match: bool,
}

impl Default for RawRelay {
    fn default() -> Self {
        RawRelay { trusted_networks: Vec::new(), sender_login_match: true }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawQueue {
    hold: bool,
    lease: u64,
}

impl Default for RawQueue {
    fn default() -> Self {
        RawQueue { hold: false, lease: 60 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLocal {
    domains: Vec<String>,
    quota: u64,
    aliases: BTreeMap<String, String>,
}

impl Default for RawLocal {
    fn default() -> Self {
        Self { domains: Vec::new(), quota: 1_073_741_824, aliases: BTreeMap::new() }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

impl Config {
    /// Loads `path`, or the defaults when `path` is None.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|error| ConfigError::Read { path: p.into(), error })?;
                Config::from_toml(&text)
            }
            None => Config::from_toml(""),
        }
    }

    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string().trim_end().to_string()))?;
        raw.validate()
    }
}

fn listen_addr(key: &str, text: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| invalid(key, format!("`{text}` is not an address:port (use \"\" to disable)")))
}

fn secs(key: &str, value: u64) -> Result<Duration, ConfigError> {
    if value == 0 {
        return Err(invalid(key, "must be at least 1 second"));
    }
    Ok(Duration::from_secs(value))
}

/// A lease must outlast the renewal interval and the longest store round trip by far.
fn queue_lease(value: u64) -> Result<Duration, ConfigError> {
    if !(6..=86_400).contains(&value) {
        return Err(invalid("queue.lease", "seconds between 6 and 86400, e.g. 60"));
    }
    Ok(Duration::from_secs(value))
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let hostname = match self.hostname {
            Some(h) => {
                Domain::parse(&h).map_err(|_| invalid("hostname", format!("`{h}` is not a host name")))?;
                h
            }
            None => system_hostname(),
        };
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from("./mailerd-data"));
        let store_url = match self.store.url {
            Some(url) if url.starts_with("sqlite://") => url,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => url,
            Some(url) => {
                return Err(invalid(
                    "store.url",
                    format!("`{url}`: use sqlite://PATH or postgres://USER@HOST/DATABASE"),
                ));
            }
            None => format!("sqlite://{}", data_dir.join("mailerd.db").display()),
        };
        let l = self.limits;
        if l.max_message_size < 1024 {
            return Err(invalid("limits.max_message_size", "must be at least 1024 bytes"));
        }
        if l.max_recipients == 0 {
            return Err(invalid("limits.max_recipients", "must be at least 1"));
        }
        for (key, n) in [
            ("limits.max_connections", l.max_connections),
            ("limits.max_submission_connections", l.max_submission_connections),
            ("limits.max_http_connections", l.max_http_connections),
        ] {
            if n == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        let limits = Limits {
            max_message_size: l.max_message_size,
            max_recipients: l.max_recipients,
            max_connections: l.max_connections,
            max_submission_connections: l.max_submission_connections,
            max_http_connections: l.max_http_connections,
            max_connections_per_ip: l.max_connections_per_ip,
            connection_rate_per_ip: l.connection_rate_per_ip,
            messages_per_ip: l.messages_per_ip,
            recipients_per_ip: l.recipients_per_ip,
            command_timeout: secs("limits.command_timeout", l.command_timeout)?,
            data_timeout: secs("limits.data_timeout", l.data_timeout)?,
            min_data_rate: l.min_data_rate,
            max_errors: l.max_errors.max(1),
            junk_command_limit: l.junk_command_limit,
            min_free_space: l.min_free_space,
            auth_max_failures: l.auth_max_failures.max(1),
            auth_failure_window: secs("limits.auth_failure_window", l.auth_failure_window)?,
            shutdown_grace: secs("limits.shutdown_grace", l.shutdown_grace)?,
            http_header_timeout: secs("limits.http_header_timeout", l.http_header_timeout)?,
            http_request_timeout: secs("limits.http_request_timeout", l.http_request_timeout)?,
        };
        let trusted_networks = self
            .relay
            .trusted_networks
            .iter()
            .map(|n| {
                n.parse::<IpNet>().or_else(|_| n.parse::<std::net::IpAddr>().map(IpNet::from)).map_err(|_| {
                    invalid("relay.trusted_networks", format!("`{n}` is not a network (e.g. 127.0.0.0/8)"))
                })
            })
            .collect::<Result<_, _>>()?;
        let domains = self
            .local
            .domains
            .iter()
            .map(|d| Domain::parse(d).map_err(|_| invalid("local.domains", format!("`{d}` is not a domain"))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut aliases = BTreeMap::new();
        for (from, to) in &self.local.aliases {
            let key = format!("local.aliases.\"{from}\"");
            let alias = Mailbox::parse(from).map_err(|e| invalid(&key, format!("`{from}`: {e}")))?;
            if !domains.contains(alias.domain()) {
                return Err(invalid(&key, format!("`{from}` is not in a local domain")));
            }
            let target = Mailbox::parse(to).map_err(|e| invalid(&key, format!("target `{to}`: {e}")))?;
            aliases.insert(alias.key(), target);
        }
        let dns_nameservers = self
            .dns
            .nameservers
            .iter()
            .map(|n| {
                n.parse::<SocketAddr>()
                    .or_else(|_| n.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| invalid("dns.nameservers", format!("`{n}` is not an address (e.g. 127.0.0.1:5353)")))
            })
            .collect::<Result<_, _>>()?;
        let o = self.outbound;
        let outbound = Outbound {
            mx_port: o.mx_port,
            helo: o.helo.unwrap_or_else(|| hostname.clone()),
            tls: tls_mode("outbound.tls", &o.tls)?,
            connect_timeout: secs("outbound.connect_timeout", o.connect_timeout)?,
            command_timeout: secs("outbound.command_timeout", o.command_timeout)?,
            max_connections_per_destination: o.max_connections_per_destination.max(1),
            max_messages_per_connection: o.max_messages_per_connection.max(1),
            max_deliveries: o.max_deliveries.max(1),
            idle_timeout: secs("outbound.idle_timeout", o.idle_timeout)?,
        };
        let mut routes = BTreeMap::new();
        for (domain, route) in self.routes {
            let key = format!("routes.\"{domain}\"");
            let d = Domain::parse(&domain).map_err(|_| invalid(&key, format!("`{domain}` is not a domain")))?;
            let (hop, tls) = match route {
                RawRoute::NextHop(h) => (h, None),
                RawRoute::Full { next_hop, tls } => (next_hop, tls),
            };
            let hop = parse_next_hop(&hop, outbound.mx_port)
                .ok_or_else(|| invalid(&key, format!("`{hop}` is not host[:port]")))?;
            let tls = match tls {
                Some(t) => tls_mode(&key, &t)?,
                None => outbound.tls,
            };
            routes.insert(d.as_str().to_string(), Route { hop, tls });
        }
        let r = self.retry;
        let retry = Retry {
            first: secs("retry.first", r.first)?,
            max_interval: secs("retry.max_interval", r.max_interval)?,
            max_age: secs("retry.max_age", r.max_age)?,
            mailbox_full_max_age: secs("retry.mailbox_full_max_age", r.mailbox_full_max_age)?,
        };
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(invalid("tls.cert", "tls.cert and tls.key must be set together"));
        }
        let bounce = Bounce {
            delay_warning: Duration::from_secs(self.bounce.delay_warning),
            return_path_domain: match self.bounce.return_path_domain {
                Some(d) => Domain::parse(&d)
                    .map_err(|_| invalid("bounce.return_path_domain", format!("`{d}` is not a domain")))?
                    .as_str()
                    .to_string(),
                None => hostname.to_ascii_lowercase(),
            },
            sign_return_path: self.bounce.sign_return_path,
            enforce_suppression: self.bounce.enforce_suppression,
            read_null_sender: self.bounce.read_null_sender,
            keep_in_mailbox: self.bounce.keep_in_mailbox,
            check_authentication: self.bounce.check_authentication,
        };
        let dkim = match (self.dkim.domain, self.dkim.selector, self.dkim.key) {
            (None, None, None) => None,
            (Some(domain), Some(selector), Some(key)) => {
                let d = Domain::parse(&domain)
                    .map_err(|_| invalid("dkim.domain", format!("`{domain}` is not a domain")))?;
                if selector.is_empty() || !selector.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                {
                    return Err(invalid("dkim.selector", format!("`{selector}` is not a selector")));
                }
                Some(Dkim { domain: d.as_str().to_string(), selector, key })
            }
            _ => {
                return Err(invalid("dkim", "set domain, selector and key together (mailerd dkim keygen makes a key)"));
            }
        };
        let check = CheckConfig {
            outbound_ips: self
                .check
                .outbound_ips
                .iter()
                .map(|ip| ip.parse().map_err(|_| invalid("check.outbound_ips", format!("`{ip}` is not an IP address"))))
                .collect::<Result<_, _>>()?,
            policy: self
                .check
                .policy
                .iter()
                .map(|(name, value)| {
                    let key = format!("check.policy.{name}");
                    if !SUBMISSION_CHECKS.contains(&name.as_str()) {
                        return Err(invalid(&key, format!("no such check (one of {})", SUBMISSION_CHECKS.join(", "))));
                    }
                    let policy = match value.as_str() {
                        "reject" => CheckPolicy::Reject,
                        "warn" => CheckPolicy::Warn,
                        "off" => CheckPolicy::Off,
                        other => return Err(invalid(&key, format!("`{other}` is not reject, warn or off"))),
                    };
                    Ok((name.clone(), policy))
                })
                .collect::<Result<_, _>>()?,
        };
        let a = &self.account;
        if !(0.0..=1.0).contains(&a.hard_bounce_threshold) {
            return Err(invalid("account.hard_bounce_threshold", "a rate between 0 (off) and 1, e.g. 0.10"));
        }
        if a.window == 0 {
            return Err(invalid("account.window", "seconds, more than 0"));
        }
        let account = crate::bounce::breaker::BreakerConfig {
            threshold: a.hard_bounce_threshold,
            min_messages: a.min_messages,
            window: Duration::from_secs(a.window),
        };
        let mut webhooks = Vec::new();
        for (i, w) in self.webhooks.into_iter().enumerate() {
            let key = |k: &str| format!("webhooks[{i}].{k}");
            let rest = w.url.strip_prefix("http://").ok_or_else(|| {
                invalid(key("url"), format!("`{}`: only http:// (put a TLS proxy in front for https)", w.url))
            })?;
            let authority = rest.split('/').next().unwrap_or("");
            if authority.is_empty() || !authority.contains(':') && authority.parse::<std::net::IpAddr>().is_ok() {
                return Err(invalid(key("url"), format!("`{}` has no host:port", w.url)));
            }
            if w.secret.len() < 16 {
                return Err(invalid(key("secret"), "at least 16 characters"));
            }
            if let Some(e) = w.events.iter().find(|e| !WEBHOOK_EVENTS.contains(&e.as_str())) {
                return Err(invalid(key("events"), format!("`{e}` is not one of {}", WEBHOOK_EVENTS.join(", "))));
            }
            webhooks.push(Webhook { url: w.url, secret: w.secret, events: w.events });
        }
        let mut admins = Vec::new();
        for (i, a) in self.dashboard.admins.iter().enumerate() {
            let m = Mailbox::parse(a.trim())
                .map_err(|e| invalid(format!("dashboard.admins[{i}]"), format!("`{a}`: {e}")))?;
            admins.push(m.key());
        }
        let mut senders =
            crate::inbound::senders::Senders { login_match: self.relay.sender_login_match, ..Default::default() };
        for (i, entry) in self.senders.iter().enumerate() {
            let login = Mailbox::parse(entry.login.trim())
                .map_err(|e| invalid(format!("senders[{i}].login"), format!("`{}`: {e}", entry.login)))?;
            if entry.addresses.is_empty() {
                return Err(invalid(format!("senders[{i}].addresses"), "list at least one address or domain"));
            }
            let grants = senders.grants.entry(login.key()).or_default();
            for (j, a) in entry.addresses.iter().enumerate() {
                let grant = crate::inbound::senders::Grant::parse(a).map_err(|e| {
                    invalid(format!("senders[{i}].addresses[{j}]"), format!("`{a}`: {e} (an address or a domain)"))
                })?;
                grants.push(grant);
            }
        }
        let log = Log {
            format: match self.log.format.as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => return Err(invalid("log.format", format!("`{other}`: use \"text\" or \"json\""))),
            },
        };
        Ok(Config {
            log,
            hostname,
            data_dir,
            listen: Listen {
                smtp: listen_addr("listen.smtp", &self.listen.smtp)?,
                submission: listen_addr("listen.submission", &self.listen.submission)?,
                http: listen_addr("listen.http", &self.listen.http)?,
            },
            store_url,
            limits,
            trusted_networks,
            queue: Queue { hold: self.queue.hold, lease: queue_lease(self.queue.lease)? },
            local: Local { domains, quota: self.local.quota, aliases },
            tls: Tls { cert: self.tls.cert, key: self.tls.key },
            dns_nameservers,
            routes,
            outbound,
            retry,
            bounce,
            dkim,
            check,
            webhooks,
            account,
            dashboard: Dashboard { admins },
            senders,
        })
    }
}

/// What stands for a secret in the effective configuration.
pub const MASKED: &str = "********";

/// `url` without its password (`postgres://user:PASSWORD@host`, `?password=`).
pub fn mask_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..].find(['/', '?']).map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@').map(|i| rest_start + i)
            && let Some(colon) = out[rest_start..at].find(':').map(|i| rest_start + i)
        {
            out.replace_range(colon + 1..at, MASKED);
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let masked: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}={MASKED}"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", masked.join("&"));
    }
    out
}

impl Config {
    /// The configuration in force, every default filled in, as TOML that loads back to the
    /// same configuration (`mailerd config check`); with `mask`, secrets (webhook secrets, a
    /// password in `store.url`) are replaced by `********`.
    pub fn effective(&self, mask: bool) -> toml::Table {
        use toml::Value as V;
        fn table(pairs: Vec<(&str, V)>) -> V {
            V::Table(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        }
        let secs = |d: Duration| V::Integer(d.as_secs() as i64);
        let int = |n: u64| V::Integer(n.min(i64::MAX as u64) as i64);
        let text = |s: &str| V::String(s.to_string());
        let path = |p: &Path| V::String(p.display().to_string());
        let list = |items: Vec<String>| V::Array(items.into_iter().map(V::String).collect());
        let addr = |a: Option<SocketAddr>| V::String(a.map(|a| a.to_string()).unwrap_or_default());
        let tls = |m: TlsMode| {
            text(match m {
                TlsMode::Opportunistic => "opportunistic",
                TlsMode::Required => "required",
                TlsMode::Off => "off",
            })
        };
        let l = &self.limits;
        let o = &self.outbound;
        let b = &self.bounce;
        let mut t = toml::Table::new();
        t.insert("hostname".into(), text(&self.hostname));
        t.insert("data_dir".into(), path(&self.data_dir));
        t.insert(
            "listen".into(),
            table(vec![
                ("smtp", addr(self.listen.smtp)),
                ("submission", addr(self.listen.submission)),
                ("http", addr(self.listen.http)),
            ]),
        );
        let url = if mask { mask_url(&self.store_url) } else { self.store_url.clone() };
        t.insert("store".into(), table(vec![("url", V::String(url))]));
        t.insert(
            "limits".into(),
            table(vec![
                ("max_message_size", int(l.max_message_size)),
                ("max_recipients", int(l.max_recipients as u64)),
                ("max_connections", int(l.max_connections as u64)),
                ("max_submission_connections", int(l.max_submission_connections as u64)),
                ("max_http_connections", int(l.max_http_connections as u64)),
                ("max_connections_per_ip", int(l.max_connections_per_ip as u64)),
                ("connection_rate_per_ip", int(l.connection_rate_per_ip.into())),
                ("messages_per_ip", int(l.messages_per_ip.into())),
                ("recipients_per_ip", int(l.recipients_per_ip.into())),
                ("command_timeout", secs(l.command_timeout)),
                ("data_timeout", secs(l.data_timeout)),
                ("min_data_rate", int(l.min_data_rate)),
                ("max_errors", int(l.max_errors.into())),
                ("junk_command_limit", int(l.junk_command_limit.into())),
                ("min_free_space", int(l.min_free_space)),
                ("auth_max_failures", int(l.auth_max_failures.into())),
                ("auth_failure_window", secs(l.auth_failure_window)),
                ("shutdown_grace", secs(l.shutdown_grace)),
                ("http_header_timeout", secs(l.http_header_timeout)),
                ("http_request_timeout", secs(l.http_request_timeout)),
            ]),
        );
        t.insert(
            "relay".into(),
            table(vec![("trusted_networks", list(self.trusted_networks.iter().map(|n| n.to_string()).collect()))]),
        );
        t.insert("queue".into(), table(vec![("hold", V::Boolean(self.queue.hold)), ("lease", secs(self.queue.lease))]));
        let aliases = self.local.aliases.iter().map(|(k, v)| (k.clone(), V::String(v.to_string()))).collect();
        t.insert(
            "local".into(),
            table(vec![
                ("domains", list(self.local.domains.iter().map(|d| d.as_str().to_string()).collect())),
                ("quota", int(self.local.quota)),
                ("aliases", V::Table(aliases)),
            ]),
        );
        if let (Some(cert), Some(key)) = (&self.tls.cert, &self.tls.key) {
            t.insert("tls".into(), table(vec![("cert", path(cert)), ("key", path(key))]));
        }
        t.insert(
            "dns".into(),
            table(vec![("nameservers", list(self.dns_nameservers.iter().map(|n| n.to_string()).collect()))]),
        );
        let routes = self
            .routes
            .iter()
            .map(|(d, r)| {
                let hop = format!("{}:{}", r.hop.host, r.hop.port);
                (d.clone(), table(vec![("next_hop", V::String(hop)), ("tls", tls(r.tls))]))
            })
            .collect();
        t.insert("routes".into(), V::Table(routes));
        t.insert(
            "outbound".into(),
            table(vec![
                ("mx_port", int(o.mx_port.into())),
                ("helo", text(&o.helo)),
                ("tls", tls(o.tls)),
                ("connect_timeout", secs(o.connect_timeout)),
                ("command_timeout", secs(o.command_timeout)),
                ("max_connections_per_destination", int(o.max_connections_per_destination as u64)),
                ("max_messages_per_connection", int(o.max_messages_per_connection.into())),
                ("max_deliveries", int(o.max_deliveries as u64)),
                ("idle_timeout", secs(o.idle_timeout)),
            ]),
        );
        let r = &self.retry;
        t.insert(
            "retry".into(),
            table(vec![
                ("first", secs(r.first)),
                ("max_interval", secs(r.max_interval)),
                ("max_age", secs(r.max_age)),
                ("mailbox_full_max_age", secs(r.mailbox_full_max_age)),
            ]),
        );
        t.insert(
            "bounce".into(),
            table(vec![
                ("delay_warning", secs(b.delay_warning)),
                ("return_path_domain", text(&b.return_path_domain)),
                ("sign_return_path", V::Boolean(b.sign_return_path)),
                ("enforce_suppression", V::Boolean(b.enforce_suppression)),
                ("read_null_sender", V::Boolean(b.read_null_sender)),
                ("keep_in_mailbox", V::Boolean(b.keep_in_mailbox)),
                ("check_authentication", V::Boolean(b.check_authentication)),
            ]),
        );
        if let Some(d) = &self.dkim {
            t.insert(
                "dkim".into(),
                table(vec![("domain", text(&d.domain)), ("selector", text(&d.selector)), ("key", path(&d.key))]),
            );
        }
        let policy = SUBMISSION_CHECKS
            .iter()
            .map(|name| {
                let p = match self.check.policy_for(name) {
                    CheckPolicy::Reject => "reject",
                    CheckPolicy::Warn => "warn",
                    CheckPolicy::Off => "off",
                };
                (name.to_string(), text(p))
            })
            .collect();
        t.insert(
            "check".into(),
            table(vec![
                ("outbound_ips", list(self.check.outbound_ips.iter().map(|ip| ip.to_string()).collect())),
                ("policy", V::Table(policy)),
            ]),
        );
        t.insert(
            "account".into(),
            table(vec![
                ("hard_bounce_threshold", V::Float(self.account.threshold)),
                ("min_messages", int(self.account.min_messages)),
                ("window", secs(self.account.window)),
            ]),
        );
        t.insert("dashboard".into(), table(vec![("admins", list(self.dashboard.admins.clone()))]));
        let hooks = self
            .webhooks
            .iter()
            .map(|w| {
                let secret = if mask { MASKED.to_string() } else { w.secret.clone() };
                table(vec![("url", text(&w.url)), ("secret", V::String(secret)), ("events", list(w.events.clone()))])
            })
            .collect();
        t.insert("webhooks".into(), V::Array(hooks));
        let format = match self.log.format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        t.insert("log".into(), table(vec![("format", text(format))]));
        t
    }

    /// The SQLite path of `store.url` (meaningless for a PostgreSQL URL: see `store::open`).
    pub fn sqlite_path(&self) -> PathBuf {
        PathBuf::from(self.store_url.trim_start_matches("sqlite://"))
    }

    pub fn is_local_domain(&self, domain: &Domain) -> bool {
        self.local.domains.contains(domain)
    }
}

/// The machine's host name, or `localhost` when it cannot be read.
fn system_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length and gethostname NUL-terminates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(buf.get(..end).unwrap_or(&[])).to_string();
    if Domain::parse(&name).is_ok() { name } else { "localhost".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_has_every_default() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.listen.smtp, Some("127.0.0.1:2525".parse().unwrap()));
        assert_eq!(c.limits.max_message_size, 26_214_400);
        assert_eq!(c.limits.max_connections, 1000);
        assert!(c.trusted_networks.is_empty());
        assert!(!c.queue.hold);
        assert_eq!(c.store_url, "sqlite://./mailerd-data/mailerd.db");
        // Regression: an omitted listen.http used to listen on 127.0.0.1:8025.
        assert_eq!(c.listen.http, None);
        let c = Config::from_toml("[listen]\nsmtp = \"127.0.0.1:25\"").unwrap();
        assert_eq!((c.listen.http, c.listen.submission), (None, Some("127.0.0.1:2587".parse().unwrap())));
        let c = Config::from_toml("[listen]\nhttp = \"127.0.0.1:8025\"").unwrap();
        assert_eq!(c.listen.http, Some("127.0.0.1:8025".parse().unwrap()));
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::from_toml("[relay]\ntrusted_networks = [\"nonsense\"]").unwrap_err().to_string();
        assert!(e.contains("relay.trusted_networks"), "{e}");
        let e = Config::from_toml("[listen]\nsmtp = \"nowhere\"").unwrap_err().to_string();
        assert!(e.contains("listen.smtp"), "{e}");
        let e = Config::from_toml("[limits]\nmax_connections = \"many\"").unwrap_err().to_string();
        assert!(e.contains("max_connections"), "{e}");
        let e = Config::from_toml("[limits]\nmax_conections = 3").unwrap_err().to_string();
        assert!(e.contains("max_conections"), "{e}");
        let e = Config::from_toml("[local]\ndomains = [\"a.test\"]\naliases = { \"x@b.test\" = \"y@a.test\" }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("local.aliases"), "{e}");
    }

    #[test]
    fn routes_and_outbound() {
        let c = Config::from_toml(
            "[routes]\n\"Rcpt.Test\" = \"127.0.0.20:2526\"\n\"tls.test\" = { next_hop = \"mx.tls.test\", tls = \"required\" }\n\
             [outbound]\nmx_port = 2525\n[dns]\nnameservers = [\"127.0.0.1:5353\"]",
        )
        .unwrap();
        assert_eq!(c.routes["rcpt.test"].hop, Hop { host: "127.0.0.20".into(), port: 2526 });
        assert_eq!(c.routes["tls.test"].hop, Hop { host: "mx.tls.test".into(), port: 2525 });
        assert_eq!(c.routes["tls.test"].tls, TlsMode::Required);
        assert_eq!(c.dns_nameservers, vec!["127.0.0.1:5353".parse::<SocketAddr>().unwrap()]);
        let e =
            Config::from_toml("[routes]\n\"x.test\" = { next_hop = \"a\", tls = \"maybe\" }").unwrap_err().to_string();
        assert!(e.contains("routes.\"x.test\""), "{e}");
    }

    #[test]
    fn local_domains_are_normalised() {
        let c = Config::from_toml("[local]\ndomains = [\"Bücher.Test\"]").unwrap();
        assert_eq!(c.local.domains[0].as_str(), "xn--bcher-kva.test");
    }

    #[test]
    fn senders_of_logins() {
        use crate::inbound::senders::Grant;
        let c = Config::from_toml("").unwrap();
        assert!(c.senders.login_match && c.senders.grants.is_empty(), "checked by default");
        let c = Config::from_toml(
            "[relay]\nsender_login_match = false\n[[senders]]\nlogin = \"App@Example.com\"\naddresses = [\"example.org\"]\n\
             [[senders]]\nlogin = \"app@example.com\"\naddresses = [\"a@example.net\"]",
        )
        .unwrap();
        assert!(!c.senders.login_match);
        let grants = &c.senders.grants["app@example.com"];
        assert_eq!(grants.len(), 2, "entries of one login are merged");
        assert_eq!(grants[0], Grant::Domain(Domain::parse("example.org").unwrap()));
        for (toml, key) in [
            ("[[senders]]\nlogin = \"nobody\"\naddresses = [\"x.test\"]", "senders[0].login"),
            ("[[senders]]\nlogin = \"a@x.test\"", "senders[0].addresses"),
            ("[[senders]]\nlogin = \"a@x.test\"\naddresses = [\"x.test\", \"@y.test\"]", "senders[0].addresses[1]"),
            ("[[senders]]\nlogin = \"a@x.test\"\naddresses = [\"x.test\"]\nadresses = []", "adresses"),
            ("[[senders]]\naddresses = [\"x.test\"]", "login"),
            ("[relay]\nsender_login_match = \"yes\"", "sender_login_match"),
        ] {
            let e = Config::from_toml(toml).unwrap_err().to_string();
            assert!(e.contains(key), "{key} in {e}");
        }
    }

    #[test]
    fn the_effective_configuration_loads_back_and_masks_secrets() {
        let text = "hostname = \"mx.example.com\"\n[store]\nurl = \"postgres://mailerd:s3cret@db/mail?password=x&sslmode=off\"\n\
                    [local]\ndomains = [\"example.com\"]\naliases = { \"info@example.com\" = \"bob@example.net\" }\n\
                    [routes]\n\"b.test\" = { next_hop = \"127.0.0.2:2526\", tls = \"required\" }\n\
                    [dkim]\ndomain = \"example.com\"\nselector = \"s1\"\nkey = \"/k.pem\"\n\
                    [check.policy]\ntypo = \"reject\"\n\
                    [[webhooks]]\nurl = \"http://127.0.0.1:9000/x\"\nsecret = \"whsec_0123456789abcdef\"\n";
        let c = Config::from_toml(text).unwrap();
        let plain = toml::to_string(&c.effective(false)).unwrap();
        let again = Config::from_toml(&plain).unwrap();
        assert_eq!(toml::to_string(&again.effective(false)).unwrap(), plain, "a fixed point");
        assert!(plain.contains("http = \"\""), "{plain}");
        let masked = toml::to_string(&c.effective(true)).unwrap();
        assert!(!masked.contains("s3cret") && !masked.contains("whsec_0123") && !masked.contains("password=x"));
        assert!(masked.contains("postgres://mailerd:********@db/mail?password=********&sslmode=off"), "{masked}");
        assert_eq!(mask_url("sqlite://./d/mailerd.db"), "sqlite://./d/mailerd.db");
        assert_eq!(mask_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn check_outbound_ips() {
        assert!(Config::from_toml("").unwrap().check.outbound_ips.is_empty());
        let c = Config::from_toml("[check]\noutbound_ips = [\"192.0.2.1\", \"2001:db8::1\"]").unwrap();
        assert_eq!(c.check.outbound_ips.len(), 2);
        let e = Config::from_toml("[check]\noutbound_ips = [\"nope\"]").unwrap_err().to_string();
        assert!(e.contains("check.outbound_ips"), "{e}");
    }
}
