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
//! Credentials: at SMTP AUTH an app password of the login (`inbound::password`, looked up by
//! its SHA-256, no argon2) is tried first; the main password is checked unless
//! `login.smtp_requires_app_password` bars it from SMTP. The dashboard takes the main password
//! only. A right main password whose hash was made with another argon2 cost than `[login]`
//! says is re-hashed there and then; one older than `login.password_max_age` is reported.
//! With `auth.backend = "dovecot"` SMTP AUTH passwords are checked by Dovecot's auth service
//! (`inbound::dovecot_auth`), behind the same limiter; a Dovecot that cannot be reached or
//! answers `temp_fail` is [`Attempt::Unavailable`] (454 4.7.0), charged to no one. The dashboard
//! keeps mailerd's own logins (its second factor lives in mailerd's store).
//! Must not: log passwords, or accept AUTH outside TLS (the connection enforces that).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::config::{AuthBackend, Login};
use crate::inbound::dovecot_auth::{ClientInfo, DovecotAuth, Verdict};
use crate::inbound::password::{self, SecretKind};
use crate::inbound::totp;
use crate::metrics::{LoginDoor, LoginStats};
use crate::smtp::address::Mailbox;
use crate::store::{MailboxRecord, Store};
use crate::time::Timestamp;

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

/// Which credential of a login was presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The main password (`mailerd user add|passwd`).
    Password,
    /// The app password of this name (`mailerd user app-password add`).
    AppPassword(String),
}

/// A right credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The normalised login (its mailbox key).
    pub user: String,
    pub credential: Credential,
    /// The main password is older than `login.password_max_age`.
    pub password_due: bool,
}

/// How often a login whose password is due gets its log line (it may log in every minute).
const DUE_LOG_EVERY: Duration = Duration::from_secs(86_400);
/// How often a use of an app password from the same address is written to the store.
const TOUCH_EVERY_MS: i64 = 60_000;

/// Which second factor was right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorUsed {
    /// A TOTP code of this time step (already recorded as used).
    Totp(u64),
    /// A recovery code (now used up).
    RecoveryCode,
}

/// The outcome of one second-factor attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactorAttempt {
    Accepted(FactorUsed),
    /// A wrong, replayed or used-up code, or a login without a second factor.
    Refused,
    /// Too many failures (passwords or codes) from this network or for this login.
    Throttled {
        retry_after: Duration,
    },
}

/// The outcome of one login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The credential is right.
    Accepted(Granted),
    /// A wrong password, an unknown login, or a login that is not an address.
    Refused,
    /// Too many failures from this network or for this login: the password was not checked.
    Throttled { retry_after: Duration },
    /// The password could not be checked now (Dovecot's auth service down or undecided).
    Unavailable,
}

/// What a password check found.
enum Checked {
    Right(Granted),
    Wrong,
    /// Nobody could say (Dovecot down or undecided).
    Undecided,
}

/// How long a login may take at Dovecot (its `auth_failure_delay` is 2 s by default).
pub const DOVECOT_TIMEOUT: Duration = Duration::from_secs(30);

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

    /// Takes back the charges of an attempt whose password could not be checked.
    fn refund(&mut self, net: ClientNet, login: Option<&str>) {
        self.nets.refund(&net);
        if let Some(login) = login {
            self.logins.refund(&login.to_string());
        }
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
    policy: Login,
    limit: Limit,
    limiter: Mutex<Limiter>,
    stats: LoginStats,
    dummy_hash: String,
    /// Logins whose due password was last logged, and when (bounded like the limiter's tables).
    due_logged: Mutex<HashMap<String, Instant>>,
    /// Dovecot's auth service, when it checks SMTP passwords (`auth.backend = "dovecot"`).
    dovecot: Option<DovecotAuth>,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, policy: Login, max_failures: u32, window: Duration) -> Self {
        // The dummy costs what a real check costs.
        let dummy_hash = password::hash(policy.argon2, "dummy password for unknown users").unwrap_or_default();
        Self {
            store,
            policy,
            limit: Limit { max_failures, window },
            limiter: Mutex::new(Limiter::default()),
            stats: LoginStats::default(),
            dummy_hash,
            due_logged: Mutex::new(HashMap::new()),
            dovecot: None,
        }
    }

    /// Checks SMTP passwords where `backend` says.
    pub fn with_backend(mut self, backend: &AuthBackend) -> Self {
        self.dovecot = match backend {
            AuthBackend::Mailerd => None,
            AuthBackend::Dovecot { socket } => Some(DovecotAuth::new(socket.clone(), DOVECOT_TIMEOUT)),
        };
        self
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
        let client = ClientInfo { remote: std::net::SocketAddr::new(ip, 0), local: None, secured: true };
        self.attempt_from(door, &client, user, password).await
    }

    /// [`Self::attempt`] of an SMTP client, whose addresses Dovecot is told when it checks.
    pub async fn attempt_from(&self, door: LoginDoor, client: &ClientInfo, user: &str, password: &str) -> Attempt {
        let ip = client.remote.ip();
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
        let checked = match (&self.dovecot, door) {
            (Some(dovecot), LoginDoor::Smtp) => self.verify_at_dovecot(dovecot, client, user, password).await,
            _ => match self.verify(door, ip, user, password).await {
                Some(granted) => Checked::Right(granted),
                None => Checked::Wrong,
            },
        };
        match checked {
            Checked::Undecided => {
                if let Ok(mut limiter) = self.limiter.lock() {
                    limiter.refund(net, login.as_deref());
                }
                Attempt::Unavailable
            }
            Checked::Right(granted) => {
                if let Ok(mut limiter) = self.limiter.lock() {
                    limiter.succeeded(net, &granted.user, Instant::now());
                }
                Attempt::Accepted(granted)
            }
            Checked::Wrong => {
                self.stats.failed(door);
                Attempt::Refused
            }
        }
    }

    /// One second-factor attempt for `login` (a mailbox key whose password was right) from
    /// `ip`: counted by the same limiter as passwords, so wrong codes lock like wrong
    /// passwords. Without `pending`, the login's stored factor decides (a TOTP code of a step
    /// not used before, or an unused recovery code; both are used up here); with `pending`
    /// (enrolment: the secret the person just scanned), only a TOTP code of that secret.
    pub async fn second_factor(
        &self,
        door: LoginDoor,
        ip: IpAddr,
        login: &str,
        typed: &str,
        pending: Option<&crate::store::TotpSecret>,
    ) -> FactorAttempt {
        let net = ClientNet::of(ip);
        let admitted = match self.limiter.lock() {
            Ok(mut limiter) => limiter.admit(net, Some(login), self.limit, Instant::now()),
            Err(_) => Err(self.limit.window),
        };
        if let Err(retry_after) = admitted {
            self.stats.throttled(door);
            return FactorAttempt::Throttled { retry_after };
        }
        self.stats.checked(door);
        let now = Timestamp::now();
        let secs = u64::try_from(now.millis() / 1000).unwrap_or(0);
        let used = match pending {
            Some(secret) => match totp::check(secret, typed, secs) {
                totp::Code::Totp(step) => Some(FactorUsed::Totp(step)),
                _ => None,
            },
            None => match self.store.second_factor(login).await {
                Ok(Some(factor)) => match totp::check(&factor.secret, typed, secs) {
                    totp::Code::Totp(step) => {
                        self.store.use_totp_step(login, step).await.unwrap_or(false).then_some(FactorUsed::Totp(step))
                    }
                    totp::Code::Recovery(hash) => self
                        .store
                        .use_recovery_code(login, &hash, now)
                        .await
                        .unwrap_or(false)
                        .then_some(FactorUsed::RecoveryCode),
                    totp::Code::Wrong => None,
                },
                _ => None,
            },
        };
        match used {
            Some(u) => {
                if let Ok(mut limiter) = self.limiter.lock() {
                    limiter.succeeded(net, login, Instant::now());
                }
                FactorAttempt::Accepted(u)
            }
            None => {
                self.stats.failed(door);
                FactorAttempt::Refused
            }
        }
    }

    /// Checks a login: at SMTP an app password first (one indexed read), then the main
    /// password (one argon2 verification, also for unknown users) unless barred from SMTP.
    /// No limiter: callers go through [`Self::attempt`].
    async fn verify(&self, door: LoginDoor, ip: IpAddr, user: &str, secret: &str) -> Option<Granted> {
        let key = Mailbox::parse(user).ok().map(|m| m.key());
        if door == LoginDoor::Smtp {
            if let (Some(k), Some(hash)) = (&key, SecretKind::AppPassword.hash(secret))
                && let Ok(Some(app)) = self.store.app_password(k, &hash).await
            {
                let name = app.name.clone();
                self.touch_app_password(app, ip);
                return Some(Granted {
                    user: k.clone(),
                    credential: Credential::AppPassword(name),
                    password_due: false,
                });
            }
            if self.policy.smtp_requires_app_password {
                tracing::debug!(user = %user, "AUTH: the main password is not accepted for SMTP (login.smtp_requires_app_password)");
                return None;
            }
        }
        let record = match &key {
            Some(k) => self.store.mailbox(k).await.ok().flatten(),
            None => None,
        };
        let stored = record.as_ref().and_then(|r| r.password_hash.clone());
        let known = stored.is_some();
        let hash = stored.clone().unwrap_or_else(|| self.dummy_hash.clone());
        let typed = secret.to_string();
        let ok = tokio::task::spawn_blocking(move || password::verify(&hash, &typed)).await.unwrap_or(false);
        let (true, true, Some(key), Some(record), Some(stored)) = (ok, known, key, record, stored) else {
            return None;
        };
        if password::needs_rehash(self.policy.argon2, &stored) {
            self.rehash(&key, &stored, secret).await;
        }
        let password_due = self.is_due(&record, Timestamp::now());
        if password_due {
            self.log_due(&key, door);
        }
        Some(Granted { user: key, credential: Credential::Password, password_due })
    }

    /// Checks a login with Dovecot's auth service; Undecided when it could not decide. The login is
    /// the name Dovecot returns, as a mailbox key when it is an address (so sender-login
    /// binding compares it like one of mailerd's logins).
    async fn verify_at_dovecot(&self, dovecot: &DovecotAuth, client: &ClientInfo, user: &str, secret: &str) -> Checked {
        match dovecot.login(client, user, secret).await {
            Ok(Verdict::Accepted { user: name }) => {
                let user = Mailbox::parse(&name).map(|m| m.key()).unwrap_or(name);
                Checked::Right(Granted { user, credential: Credential::Password, password_due: false })
            }
            Ok(Verdict::Refused) => Checked::Wrong,
            Ok(Verdict::TryLater { reason }) => {
                tracing::warn!(user = %user, reason = reason.as_deref().unwrap_or(""), "AUTH: Dovecot could not check the password now");
                Checked::Undecided
            }
            Err(e) => {
                tracing::warn!(socket = %dovecot.socket().display(), error = %e, "AUTH: Dovecot's auth service unavailable");
                Checked::Undecided
            }
        }
    }

    /// Re-hashes a right password with the configured cost (a failure only logs: the login
    /// stands, and the next one tries again).
    async fn rehash(&self, key: &str, stored: &str, secret: &str) {
        let (cost, typed) = (self.policy.argon2, secret.to_string());
        let new = match tokio::task::spawn_blocking(move || password::hash(cost, &typed)).await {
            Ok(Ok(h)) => h,
            _ => return,
        };
        match self.store.rehash_password(key, stored, &new).await {
            Ok(true) => {
                tracing::info!(user = %key, m = cost.memory_kib, t = cost.iterations, p = cost.parallelism, "password re-hashed")
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(user = %key, error = %e, "password re-hash not stored"),
        }
    }

    /// Whether a login's main password is older than `login.password_max_age` at `now`.
    pub fn is_due(&self, record: &MailboxRecord, now: Timestamp) -> bool {
        match (self.policy.password_max_age, record.password_changed_at) {
            (Some(max), Some(at)) => at.plus(max) < now,
            _ => false,
        }
    }

    /// Logs that `key`'s password is due, unless it was logged within [`DUE_LOG_EVERY`];
    /// returns whether it logged.
    fn log_due(&self, key: &str, door: LoginDoor) -> bool {
        let Ok(mut logged) = self.due_logged.lock() else { return false };
        let now = Instant::now();
        if logged.get(key).is_some_and(|at| now.saturating_duration_since(*at) < DUE_LOG_EVERY) {
            return false;
        }
        if logged.len() >= MAX_TRACKED {
            logged.clear();
        }
        logged.insert(key.to_string(), now);
        tracing::warn!(user = %key, door = door.as_str(), "password due for a change (older than login.password_max_age)");
        true
    }

    /// Records a use of an app password, off the login's path, at most once a minute per
    /// password and address.
    fn touch_app_password(&self, app: crate::store::AppPassword, ip: IpAddr) {
        let now = Timestamp::now();
        let recent = app.last_used_at.is_some_and(|at| now.millis().saturating_sub(at.millis()) < TOUCH_EVERY_MS);
        if recent && app.last_used_ip == Some(ip) {
            return;
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_app_password(&app.address, &app.name, now, ip).await {
                tracing::warn!(user = %app.address, name = %app.name, error = %e, "app password use not recorded");
            }
        });
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
    fn passwords_older_than_max_age_are_due_and_logged_once_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(crate::store::sqlite::SqliteStore::open(&dir.path().join("t.db")).unwrap());
        let mut policy = crate::config::Config::from_toml("").unwrap().login;
        let record = |at: Option<i64>| MailboxRecord {
            address: "a@local.test".into(),
            password_hash: Some("x".into()),
            quota: None,
            used_bytes: 0,
            password_changed_at: at.map(Timestamp),
        };
        let now = Timestamp(100 * 86_400_000);
        let off = Authenticator::new(store.clone(), policy.clone(), 5, Duration::from_secs(60));
        assert!(!off.is_due(&record(Some(0)), now), "no max age: never due");
        policy.password_max_age = Some(Duration::from_secs(86_400));
        let a = Authenticator::new(store, policy, 5, Duration::from_secs(60));
        assert!(a.is_due(&record(Some(now.millis() - 2 * 86_400_000)), now));
        assert!(!a.is_due(&record(Some(now.millis() - 3_600_000)), now));
        assert!(!a.is_due(&record(None), now), "an unknown age is not due");
        assert!(a.log_due("a@local.test", LoginDoor::Smtp));
        assert!(!a.log_due("a@local.test", LoginDoor::Dashboard), "once a day per login");
        assert!(a.log_due("b@local.test", LoginDoor::Smtp));
    }

    #[tokio::test]
    async fn an_unreachable_dovecot_is_unavailable_and_charged_to_no_one() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(crate::store::sqlite::SqliteStore::open(&dir.path().join("t.db")).unwrap());
        let policy = crate::config::Config::from_toml("").unwrap().login;
        let backend = AuthBackend::Dovecot { socket: dir.path().join("no-such-socket") };
        let a = Authenticator::new(store, policy, 2, Duration::from_secs(60)).with_backend(&backend);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..5 {
            assert_eq!(a.attempt_from(LoginDoor::Smtp, &client(ip), "bob@a.test", "pw").await, Attempt::Unavailable);
        }
        assert!(!a.is_blocked(ip), "outages are no failures");
        // The dashboard keeps mailerd's own logins: an unknown user is refused, not unavailable.
        assert_eq!(a.attempt(LoginDoor::Dashboard, ip, "bob@a.test", "pw").await, Attempt::Refused);
    }

    fn client(ip: IpAddr) -> ClientInfo {
        ClientInfo { remote: std::net::SocketAddr::new(ip, 4000), local: None, secured: true }
    }

    #[test]
    fn hashes_verify() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(password::verify(&h, "s3cret"));
        assert!(!password::verify(&h, "wrong"));
    }
}
