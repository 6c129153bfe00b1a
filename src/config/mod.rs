//! Configuration: TOML → `RawConfig` (serde, a default for every key) → validated `Config`.
//!
//! One file per section of the file (`listen`, `store`, `limits`, `relay` and `senders`,
//! `queue`, `local`, `tls`, `dns`, `outbound` and `routes`, `retry`, `bounce`, `dkim`, `check`,
//! `account`, `webhooks`, `dashboard`, `log`, `login`, `unsubscribe`, `auth`, `dovecot`), each with its raw (serde) type, its validated
//! type, its `validate` and its part of `Config::effective`; this file holds `Config`, `load`,
//! the top-level keys (`hostname`, `data_dir`), the errors and the helpers sections share.
//! Every type is re-exported here, so `crate::config::Name` is the one path to it.
//! Every key of DESIGN §3 has a default, so `mailerd serve` runs with no file at all.
//! Errors name the key and the problem (`ConfigError`), and the CLI exits 2 on them.
//! Must not: import a stage (inbound, outbound, queue, bounce, feedback, accept, http, local,
//! checklist, cli, daemon) — the values config and a stage share are defined here (or in
//! `smtp/`, protocol vocabulary) and the stage imports them; open files other than the config
//! itself, bind sockets, or touch the store.

mod account;
mod auth;
mod bounce;
mod check;
mod dashboard;
mod dkim;
mod dovecot;
mod dns;
mod limits;
mod listen;
mod local;
mod log;
mod login;
mod outbound;
mod queue;
mod relay;
mod retry;
mod routes;
mod senders;
mod store;
mod tls;
mod unsubscribe;
mod webhooks;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use thiserror::Error;

pub use self::account::{BreakerConfig, SuspectConfig};
pub use self::auth::AuthBackend;
pub use self::bounce::{Bounce, Learner};
pub use self::check::{CheckConfig, CheckName, CheckPolicy};
pub use self::dashboard::Dashboard;
pub use self::dkim::Dkim;
pub use self::dns::Dnssec;
pub use self::dovecot::Dovecot;
pub use self::limits::Limits;
pub use self::listen::Listen;
pub use self::local::{LmtpTarget, Local, LocalTransport};
pub use self::log::{Log, LogFormat};
pub use self::login::{Argon2Cost, Login, MAX_PASSWORD_LENGTH};
pub use self::outbound::{Outbound, TlsMode};
pub use self::queue::Queue;
pub use self::retry::Retry;
pub use self::routes::{Hop, Route};
pub use self::senders::{Grant, Senders};
pub use self::store::mask_url;
pub use self::tls::Tls;
pub use self::unsubscribe::Unsubscribe;
pub use self::webhooks::{Endpoint, WEBHOOK_EVENTS, Webhook};
use crate::smtp::address::Domain;

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

/// A duration in whole seconds, at least one.
fn secs(key: &str, value: u64) -> Result<Duration, ConfigError> {
    if value == 0 {
        return Err(invalid(key, "must be at least 1 second"));
    }
    Ok(Duration::from_secs(value))
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
    /// `dns.dnssec` and `dns.trust_anchor`: delivery's lookups are DNSSEC-validated (DANE).
    pub dnssec: Dnssec,
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
    pub account: BreakerConfig,
    /// `[account]`'s compromised-account detector: bursts over the baseline, new networks.
    pub suspect: SuspectConfig,
    /// `[dashboard]`: who may log in to `/dashboard`.
    pub dashboard: Dashboard,
    /// `relay.sender_login_match` and `[[senders]]`: the senders an SMTP login may use.
    pub senders: Senders,
    /// `[log]`: how log lines are written.
    pub log: Log,
    /// `[login]`: password policy, password hashing, app-password-only SMTP.
    pub login: Login,
    /// `[unsubscribe]`: one-click unsubscribe for bulk mail.
    pub unsubscribe: Unsubscribe,
    /// `[auth]`: who checks SMTP AUTH passwords (mailerd, or Dovecot's auth socket).
    pub auth: AuthBackend,
    /// `[dovecot]`: the passwd-file `mailerd user` keeps for Dovecot.
    pub dovecot: Dovecot,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    hostname: Option<String>,
    data_dir: Option<PathBuf>,
    listen: listen::RawListen,
    store: store::RawStore,
    limits: limits::RawLimits,
    relay: relay::RawRelay,
    queue: queue::RawQueue,
    local: local::RawLocal,
    tls: tls::RawTls,
    dns: dns::RawDns,
    routes: BTreeMap<String, routes::RawRoute>,
    outbound: outbound::RawOutbound,
    retry: retry::RawRetry,
    bounce: bounce::RawBounce,
    dkim: dkim::RawDkim,
    check: check::RawCheck,
    webhooks: Vec<webhooks::RawWebhook>,
    account: account::RawAccount,
    dashboard: dashboard::RawDashboard,
    senders: Vec<senders::RawSenders>,
    log: log::RawLog,
    login: login::RawLogin,
    unsubscribe: unsubscribe::RawUnsubscribe,
    auth: auth::RawAuth,
    dovecot: dovecot::RawDovecot,
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

    /// Where the TLS certificate and key come from: `[tls]`'s paths, or the pair the daemon
    /// generates in the data dir.
    pub fn cert_paths(&self) -> (PathBuf, PathBuf) {
        match (&self.tls.cert, &self.tls.key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => (self.data_dir.join("tls/cert.pem"), self.data_dir.join("tls/key.pem")),
        }
    }

    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string().trim_end().to_string()))?;
        raw.validate()
    }
}

impl RawConfig {
    /// Validates section by section; the order decides which error a file with several gets.
    fn validate(self) -> Result<Config, ConfigError> {
        let hostname = match self.hostname {
            Some(h) => {
                Domain::parse(&h).map_err(|_| invalid("hostname", format!("`{h}` is not a host name")))?;
                h
            }
            None => system_hostname(),
        };
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from("./mailerd-data"));
        let store_url = self.store.validate(&data_dir)?;
        let limits = self.limits.validate()?;
        let trusted_networks = self.relay.trusted_networks()?;
        let local = self.local.validate()?;
        let (dns_nameservers, dnssec) = self.dns.validate()?;
        let outbound = self.outbound.validate(&hostname)?;
        let routes = routes::validate(self.routes, &outbound)?;
        let retry = self.retry.validate()?;
        let tls = self.tls.validate()?;
        let bounce = self.bounce.validate(&hostname)?;
        let dkim = self.dkim.validate()?;
        let check = self.check.validate()?;
        let (account, suspect) = self.account.validate()?;
        let webhooks = webhooks::validate(self.webhooks)?;
        let dashboard = self.dashboard.validate()?;
        let senders = senders::validate(self.relay.sender_login_match, &self.senders)?;
        let log = self.log.validate()?;
        let login = self.login.validate()?;
        let listen = self.listen.validate()?;
        let queue = self.queue.validate()?;
        let unsubscribe = self.unsubscribe.validate(&hostname, &bounce.return_path_domain)?;
        let auth = self.auth.validate(login.smtp_requires_app_password)?;
        let dovecot = self.dovecot.validate()?;
        Ok(Config {
            auth,
            dovecot,
            unsubscribe,
            log,
            login,
            hostname,
            data_dir,
            listen,
            store_url,
            limits,
            trusted_networks,
            queue,
            local,
            tls,
            dns_nameservers,
            dnssec,
            routes,
            outbound,
            retry,
            bounce,
            dkim,
            check,
            webhooks,
            account,
            suspect,
            dashboard,
            senders,
        })
    }
}

/// What stands for a secret in the effective configuration.
pub const MASKED: &str = "********";

/// The TOML values `Config::effective` is built of.
mod emit {
    use std::path::Path;
    use std::time::Duration;

    use toml::Value;

    pub(super) fn table(pairs: Vec<(&str, Value)>) -> Value {
        Value::Table(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    pub(super) fn secs(d: Duration) -> Value {
        Value::Integer(d.as_secs() as i64)
    }

    pub(super) fn int(n: u64) -> Value {
        Value::Integer(n.min(i64::MAX as u64) as i64)
    }

    pub(super) fn text(s: &str) -> Value {
        Value::String(s.to_string())
    }

    pub(super) fn path(p: &Path) -> Value {
        Value::String(p.display().to_string())
    }

    pub(super) fn list(items: Vec<String>) -> Value {
        Value::Array(items.into_iter().map(Value::String).collect())
    }
}

impl Config {
    /// The configuration in force, every default filled in, as TOML that loads back to the
    /// same configuration (`mailerd config check`); with `mask`, secrets (webhook secrets, a
    /// password in `store.url`) are replaced by `********`.
    pub fn effective(&self, mask: bool) -> toml::Table {
        let mut t = toml::Table::new();
        t.insert("hostname".into(), emit::text(&self.hostname));
        t.insert("data_dir".into(), emit::path(&self.data_dir));
        t.insert("listen".into(), self.listen.effective());
        t.insert("store".into(), store::effective(&self.store_url, mask));
        t.insert("limits".into(), self.limits.effective());
        t.insert("relay".into(), relay::effective(&self.trusted_networks, self.senders.login_match));
        t.insert("queue".into(), self.queue.effective());
        t.insert("local".into(), self.local.effective());
        if let Some(tls) = self.tls.effective() {
            t.insert("tls".into(), tls);
        }
        t.insert("dns".into(), dns::effective(&self.dns_nameservers, &self.dnssec));
        t.insert("routes".into(), routes::effective(&self.routes));
        t.insert("outbound".into(), self.outbound.effective());
        t.insert("retry".into(), self.retry.effective());
        t.insert("bounce".into(), self.bounce.effective());
        if let Some(d) = &self.dkim {
            t.insert("dkim".into(), d.effective());
        }
        t.insert("check".into(), self.check.effective());
        t.insert("account".into(), self.account.effective(&self.suspect));
        t.insert("dashboard".into(), self.dashboard.effective());
        t.insert("webhooks".into(), webhooks::effective(&self.webhooks, mask));
        t.insert("log".into(), self.log.effective());
        t.insert("login".into(), self.login.effective());
        t.insert("unsubscribe".into(), self.unsubscribe.effective());
        t.insert("auth".into(), self.auth.effective());
        t.insert("dovecot".into(), self.dovecot.effective());
        if !self.senders.grants.is_empty() {
            t.insert("senders".into(), self.senders.effective());
        }
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
    fn dnssec_is_off_by_default_and_the_anchor_needs_it() {
        assert_eq!(Config::from_toml("").unwrap().dnssec, Dnssec::default());
        let c = Config::from_toml("[dns]\ndnssec = true\ntrust_anchor = \"/etc/mailerd/root.key\"").unwrap();
        assert!(c.dnssec.on);
        assert_eq!(c.dnssec.trust_anchor.as_deref(), Some(std::path::Path::new("/etc/mailerd/root.key")));
        let text = toml::to_string(&c.effective(false)).unwrap();
        assert_eq!(Config::from_toml(&text).unwrap().dnssec, c.dnssec, "{text}");
        let e = Config::from_toml("[dns]\ntrust_anchor = \"/k\"").unwrap_err().to_string();
        assert!(e.contains("dns.trust_anchor") && e.contains("dns.dnssec = true"), "{e}");
    }

    #[test]
    fn local_domains_are_normalised() {
        let c = Config::from_toml("[local]\ndomains = [\"Bücher.Test\"]").unwrap();
        assert_eq!(c.local.domains[0].as_str(), "xn--bcher-kva.test");
    }

    #[test]
    fn senders_of_logins() {
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
                    [relay]\nsender_login_match = false\n\
                    [[senders]]\nlogin = \"app@example.com\"\naddresses = [\"news@example.com\", \"shop.example\"]\n\
                    [[webhooks]]\nurl = \"http://127.0.0.1:9000/x\"\nsecret = \"whsec_0123456789abcdef\"\n";
        let c = Config::from_toml(text).unwrap();
        let plain = toml::to_string(&c.effective(false)).unwrap();
        let again = Config::from_toml(&plain).unwrap();
        assert_eq!(toml::to_string(&again.effective(false)).unwrap(), plain, "a fixed point");
        // Regression: the sender rules were missing, so the output loaded back with them on.
        assert!(!again.senders.login_match, "{plain}");
        assert_eq!(again.senders.grants, c.senders.grants, "{plain}");
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
