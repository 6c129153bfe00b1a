//! Logins: PLAIN and LOGIN decoding for SMTP AUTH, argon2 password checks for SMTP AUTH and
//! the dashboard alike, and the failure limiter both doors share.
//!
//! Standards: RFC 4954 (SMTP AUTH), RFC 4616 (PLAIN), draft-murchison-sasl-login (LOGIN),
//! RFC 9106 (Argon2id), OWASP Authentication Cheat Sheet (throttling by source and by account).
//! Unknown users cost as much as wrong passwords (a dummy hash is verified), so timing does not
//! reveal which addresses exist; the limiter counts every login name that is an address,
//! existing or not, for the same reason.
//! Limiter: failures count per client network ([`ClientNet`]: an IPv4 address, an IPv6 /64)
//! and per login, in a window of `limits.auth_failure_window` from the first failure; at
//! `limits.auth_max_failures` the network, or the login, is refused without a password check
//! until its window ends. An attempt is charged before its password is checked, so parallel
//! guesses cannot overrun the limit. A right password clears its network's count (as before
//! the dashboard shared the limiter) and takes back its own charge from the login's, and makes
//! its network known to the login for [`KNOWN_FOR`]: a login locked by guesses from elsewhere
//! is still checked from networks it logged in from before, so an attacker who keeps it
//! locked locks out only networks its owner never used. Every table is capped.
//! Must not: log passwords, or accept AUTH outside TLS (the connection enforces that).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::metrics::{LoginDoor, LoginStats};
use crate::smtp::address::Mailbox;
use crate::store::Store;

/// Upper bound of each limiter table (networks, logins, logins with known networks), so memory
/// stays bounded under attack. A full table first drops what is out of its window, then
/// everything: refilling it costs an attacker this many failures (for the login table, this
/// many password checks, each network allowed `auth_max_failures` of them), to win back at
/// most `auth_max_failures` guesses per network or login.
const MAX_TRACKED: usize = 100_000;
/// Networks remembered per login (the most recent ones).
const KNOWN_PER_LOGIN: usize = 8;
/// How long a network a login succeeded from stays exempt from that login's lock.
pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 86_400);

/// Hashes a password for storage (PHC string, Argon2id with the crate's defaults).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Where a client comes from, as the limiter counts it: an IPv4 address (IPv4-mapped IPv6
/// too), or the /64 of an IPv6 address (one subscriber's usual allocation, so a client
/// cannot step around its count by changing its interface identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientNet(IpAddr);

impl ClientNet {
    pub fn of(ip: IpAddr) -> ClientNet {
        match ip {
            IpAddr::V4(v4) => ClientNet(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientNet(IpAddr::V4(v4)),
                None => ClientNet(IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX)))),
            },
        }
    }
}

impl fmt::Display for ClientNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => v4.fmt(f),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// The outcome of one login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The password is right: the normalised login (its mailbox key).
    Accepted(String),
    /// A wrong password, an unknown login, or a login that is not an address.
    Refused,
    /// Too many failures from this network or for this login: the password was not checked.
    Throttled { retry_after: Duration },
}

/// The limiter's numbers: `auth_max_failures` within `auth_failure_window`.
#[derive(Debug, Clone, Copy)]
struct Limit {
    max_failures: u32,
    window: Duration,
}

#[derive(Debug)]
struct Failures {
    count: u32,
    since: Instant,
}

/// Failure counts by key, at most [`MAX_TRACKED`] of them.
#[derive(Debug)]
struct Table<K> {
    map: HashMap<K, Failures>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table { map: HashMap::new() }
    }
}

impl<K: Hash + Eq> Table<K> {
    /// How long `key` stays blocked, when it is.
    fn blocked_for(&self, key: &K, limit: Limit, now: Instant) -> Option<Duration> {
        let f = self.map.get(key)?;
        let age = now.saturating_duration_since(f.since);
        (f.count >= limit.max_failures && age < limit.window).then(|| limit.window.saturating_sub(age))
    }

    fn charge(&mut self, key: K, limit: Limit, now: Instant) {
        if self.map.len() >= MAX_TRACKED && !self.map.contains_key(&key) {
            self.map.retain(|_, f| now.saturating_duration_since(f.since) < limit.window);
            if self.map.len() >= MAX_TRACKED {
                self.map.clear();
            }
        }
        let f = self.map.entry(key).or_insert(Failures { count: 0, since: now });
        if now.saturating_duration_since(f.since) >= limit.window {
            *f = Failures { count: 0, since: now };
        }
        f.count = f.count.saturating_add(1);
    }

    /// Takes back one charge (a check that turned out right).
    fn refund(&mut self, key: &K) {
        if let Some(f) = self.map.get_mut(key) {
            f.count = f.count.saturating_sub(1);
            if f.count == 0 {
                self.map.remove(key);
            }
        }
    }

    fn clear(&mut self, key: &K) {
        self.map.remove(key);
    }
}

/// The limiter's state; every method takes the time, so tests can move it.
#[derive(Debug, Default)]
struct Limiter {
    nets: Table<ClientNet>,
    logins: Table<String>,
    /// Networks each login succeeded from, with the last time (most recent last).
    known: HashMap<String, Vec<(ClientNet, Instant)>>,
}

impl Limiter {
    /// Admits an attempt and charges it as a failure in advance, or says how long to wait.
    fn admit(&mut self, net: ClientNet, login: Option<&str>, limit: Limit, now: Instant) -> Result<(), Duration> {
        if let Some(wait) = self.nets.blocked_for(&net, limit, now) {
            return Err(wait);
        }
        if let Some(login) = login {
            let key = login.to_string();
            if let Some(wait) = self.logins.blocked_for(&key, limit, now)
                && !self.is_known(login, net, now)
            {
                return Err(wait);
            }
            self.logins.charge(key, limit, now);
        }
        self.nets.charge(net, limit, now);
        Ok(())
    }

    /// A right password for `login` from `net`, admitted at `admit`.
    fn succeeded(&mut self, net: ClientNet, login: &str, now: Instant) {
        self.nets.clear(&net);
        self.logins.refund(&login.to_string());
        if self.known.len() >= MAX_TRACKED && !self.known.contains_key(login) {
            self.known.retain(|_, nets| nets.iter().any(|(_, at)| now.saturating_duration_since(*at) < KNOWN_FOR));
            if self.known.len() >= MAX_TRACKED {
                self.known.clear();
            }
        }
        let nets = self.known.entry(login.to_string()).or_default();
        nets.retain(|(n, _)| *n != net);
        nets.push((net, now));
        if nets.len() > KNOWN_PER_LOGIN {
            nets.remove(0);
        }
    }

    fn is_known(&self, login: &str, net: ClientNet, now: Instant) -> bool {
        self.known
            .get(login)
            .is_some_and(|nets| nets.iter().any(|(n, at)| *n == net && now.saturating_duration_since(*at) < KNOWN_FOR))
    }
}

pub struct Authenticator {
    store: Arc<dyn Store>,
    limit: Limit,
    limiter: Mutex<Limiter>,
    stats: LoginStats,
    dummy_hash: String,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, max_failures: u32, window: Duration) -> Self {
        let dummy_hash = hash_password("dummy password for unknown users").unwrap_or_default();
        Self {
            store,
            limit: Limit { max_failures, window },
            limiter: Mutex::new(Limiter::default()),
            stats: LoginStats::default(),
            dummy_hash,
        }
    }

    /// The login counters, for `/metrics`.
    pub fn stats(&self) -> &LoginStats {
        &self.stats
    }

    /// True when the network of `ip` failed too often within the window.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        let Ok(limiter) = self.limiter.lock() else {
            return true;
        };
        limiter.nets.blocked_for(&ClientNet::of(ip), self.limit, Instant::now()).is_some()
    }

    /// [`Self::is_blocked`], counted as a throttled attempt at `door` when true.
    pub fn throttles(&self, door: LoginDoor, ip: IpAddr) -> bool {
        let blocked = self.is_blocked(ip);
        if blocked {
            self.stats.throttled(door);
        }
        blocked
    }

    /// A failure of the network of `ip` that is no password check (e.g. undecodable AUTH).
    pub fn record_failure(&self, ip: IpAddr) {
        if let Ok(mut limiter) = self.limiter.lock() {
            limiter.nets.charge(ClientNet::of(ip), self.limit, Instant::now());
        }
    }

    /// One login attempt from `ip` at `door`: throttled without a check, or checked and
    /// counted (see the module's limiter rules).
    pub async fn attempt(&self, door: LoginDoor, ip: IpAddr, user: &str, password: &str) -> Attempt {
        let net = ClientNet::of(ip);
        let login = Mailbox::parse(user).ok().map(|m| m.key());
        let admitted = match self.limiter.lock() {
            Ok(mut limiter) => limiter.admit(net, login.as_deref(), self.limit, Instant::now()),
            Err(_) => Err(self.limit.window),
        };
        if let Err(retry_after) = admitted {
            self.stats.throttled(door);
            return Attempt::Throttled { retry_after };
        }
        self.stats.checked(door);
        match self.verify(user, password).await {
            Some(name) => {
                if let Ok(mut limiter) = self.limiter.lock() {
                    limiter.succeeded(net, &name, Instant::now());
                }
                Attempt::Accepted(name)
            }
            None => {
                self.stats.failed(door);
                Attempt::Refused
            }
        }
    }

    /// Checks a login (one argon2 verification, also for unknown users); returns the
    /// normalised user name on success. No limiter: callers go through [`Self::attempt`].
    async fn verify(&self, user: &str, password: &str) -> Option<String> {
        let key = Mailbox::parse(user).ok().map(|m| m.key());
        let record = match &key {
            Some(k) => self.store.mailbox(k).await.ok().flatten(),
            None => None,
        };
        let hash = record.as_ref().and_then(|r| r.password_hash.clone());
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || {
            Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok()
        })
        .await
        .unwrap_or(false);
        if ok && known { key } else { None }
    }
}

/// Decodes a PLAIN response: `authzid NUL authcid NUL passwd`. An authzid other than the
/// authcid is refused (no proxy logins).
pub fn decode_plain(b64: &str) -> Option<(String, String)> {
    let raw = B64.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.split('\0');
    let (authz, authc, pass) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authc.is_empty() || (!authz.is_empty() && authz != authc) {
        return None;
    }
    Some((authc.to_string(), pass.to_string()))
}

/// Decodes one base64 line of a LOGIN exchange.
pub fn decode_line(b64: &str) -> Option<String> {
    String::from_utf8(B64.decode(b64.trim()).ok()?).ok()
}

pub fn encode(text: &str) -> String {
    B64.encode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_decoding() {
        assert_eq!(decode_plain(&encode("\0bob@a.test\0pw")), Some(("bob@a.test".into(), "pw".into())));
        assert_eq!(decode_plain(&encode("bob@a.test\0bob@a.test\0pw")), Some(("bob@a.test".into(), "pw".into())));
        assert_eq!(decode_plain(&encode("eve@a.test\0bob@a.test\0pw")), None);
        assert_eq!(decode_plain("!!!"), None);
        assert_eq!(decode_plain(&encode("nonul")), None);
    }

    const LIMIT: Limit = Limit { max_failures: 3, window: Duration::from_secs(300) };

    fn net(ip: &str) -> ClientNet {
        ClientNet::of(ip.parse().unwrap())
    }

    #[test]
    fn networks_are_ipv4_addresses_and_ipv6_slash_64s() {
        assert_eq!(net("2001:db8:1:2::1"), net("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(net("2001:db8:1:2::1"), net("2001:db8:1:3::1"));
        assert_eq!(net("::ffff:127.0.0.1"), net("127.0.0.1"));
        assert_ne!(net("127.0.0.1"), net("127.0.0.2"));
        assert_eq!(net("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn a_network_is_blocked_for_the_rest_of_its_window() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(l.admit(net("127.0.0.1"), Some(&format!("u{i}@a.test")), LIMIT, t0), Ok(()));
        }
        let later = t0 + Duration::from_secs(100);
        assert_eq!(l.admit(net("127.0.0.1"), None, LIMIT, later), Err(Duration::from_secs(200)));
        assert_eq!(l.admit(net("127.0.0.2"), None, LIMIT, later), Ok(()), "another network");
        assert_eq!(l.admit(net("127.0.0.1"), None, LIMIT, t0 + LIMIT.window), Ok(()), "a new window");
    }

    #[test]
    fn a_login_is_blocked_from_networks_it_never_succeeded_from() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        let admin = Some("admin@a.test");
        // The owner logs in once from home: that network is known to the login.
        assert_eq!(l.admit(net("127.0.0.1"), admin, LIMIT, t0), Ok(()));
        l.succeeded(net("127.0.0.1"), "admin@a.test", t0);
        assert!(l.logins.map.is_empty(), "a right password takes its charge back");
        // Three bots, one guess each: the login is locked.
        for bot in ["127.0.0.11", "127.0.0.12", "127.0.0.13"] {
            assert_eq!(l.admit(net(bot), admin, LIMIT, t0), Ok(()));
        }
        assert!(l.admit(net("127.0.0.14"), admin, LIMIT, t0).is_err(), "a fourth bot");
        assert!(l.admit(net("127.0.0.14"), Some("other@a.test"), LIMIT, t0).is_ok(), "other logins are not");
        // The owner still gets a check from home; a right password there does not unlock
        // the login for everyone (else each login of a busy account would renew the bots' budget).
        assert_eq!(l.admit(net("127.0.0.1"), admin, LIMIT, t0), Ok(()));
        l.succeeded(net("127.0.0.1"), "admin@a.test", t0);
        assert!(l.admit(net("127.0.0.15"), admin, LIMIT, t0).is_err());
        // Until the window ends; a known network is forgotten after KNOWN_FOR.
        assert!(l.admit(net("127.0.0.15"), admin, LIMIT, t0 + LIMIT.window).is_ok());
        let much_later = t0 + KNOWN_FOR + LIMIT.window;
        for bot in ["127.0.0.11", "127.0.0.12", "127.0.0.13"] {
            assert_eq!(l.admit(net(bot), admin, LIMIT, much_later), Ok(()));
        }
        assert!(l.admit(net("127.0.0.1"), admin, LIMIT, much_later).is_err());
    }

    #[test]
    fn known_networks_and_tables_are_bounded() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        for i in 0..20u8 {
            l.succeeded(net(&format!("127.0.1.{i}")), "a@a.test", t0 + Duration::from_secs(i.into()));
        }
        let nets = &l.known["a@a.test"];
        assert_eq!(nets.len(), KNOWN_PER_LOGIN);
        assert_eq!(nets.last().map(|(n, _)| *n), Some(net("127.0.1.19")), "the most recent kept");
        for i in 0..MAX_TRACKED as u32 + 10 {
            l.admit(ClientNet(IpAddr::V4(i.into())), Some(&format!("u{i}@a.test")), LIMIT, t0).ok();
        }
        assert!(l.nets.map.len() <= MAX_TRACKED && l.logins.map.len() <= MAX_TRACKED);
    }

    #[test]
    fn hashes_verify() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(Argon2::default().verify_password(b"s3cret", h.as_str()).is_ok());
        assert!(Argon2::default().verify_password(b"wrong", h.as_str()).is_err());
    }
}
