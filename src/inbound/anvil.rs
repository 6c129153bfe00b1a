//! Per-client limits, like Postfix's anvil(8): concurrent SMTP sessions, new connections,
//! messages and recipients per client per minute, so one client cannot hold every slot.
//!
//! A client is an IPv4 address, or an IPv6 /64 (one subscriber's prefix); an IPv4-mapped
//! IPv6 address counts as its IPv4 address. Rates are counted in fixed one-minute windows
//! (Postfix's `anvil_rate_time_unit`). The table is bounded ([`MAX_CLIENTS`]): idle entries
//! are dropped first, and a full table of busy clients admits rather than grows.
//! Trusted networks are never counted (the caller does not ask).
//! Must not: do I/O, write reply text, or know about sessions beyond the counts.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most clients tracked at once.
pub const MAX_CLIENTS: usize = 100_000;
const WINDOW: Duration = Duration::from_secs(60);

/// The limits of one client (0 = no limit).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub sessions: usize,
    pub connections_per_minute: u32,
    pub messages_per_minute: u32,
    pub recipients_per_minute: u32,
}

/// Which limit a client reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    Sessions,
    ConnectionRate,
    MessageRate,
    RecipientRate,
}

impl Over {
    pub fn as_str(self) -> &'static str {
        match self {
            Over::Sessions => "sessions",
            Over::ConnectionRate => "connection_rate",
            Over::MessageRate => "message_rate",
            Over::RecipientRate => "recipient_rate",
        }
    }
}

/// The key a client is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    ClientKey(IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0)))
                }
            },
            v4 => ClientKey(v4),
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
            v4 => write!(f, "{v4}"),
        }
    }
}

#[derive(Debug)]
struct Entry {
    sessions: usize,
    window: Instant,
    connections: u32,
    messages: u32,
    recipients: u32,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Entry { sessions: 0, window: now, connections: 0, messages: 0, recipients: 0 }
    }

    /// Starts a new window when the current one is over.
    fn roll(&mut self, now: Instant) {
        if now.saturating_duration_since(self.window) >= WINDOW {
            self.window = now;
            self.connections = 0;
            self.messages = 0;
            self.recipients = 0;
        }
    }

    fn idle(&self, now: Instant) -> bool {
        self.sessions == 0 && now.saturating_duration_since(self.window) >= WINDOW
    }
}

/// The per-client counters of one daemon.
#[derive(Debug)]
pub struct Anvil {
    limits: Limits,
    clients: Mutex<HashMap<ClientKey, Entry>>,
}

/// A counted session; dropping it gives the slot back.
#[derive(Debug)]
pub struct Session {
    anvil: Arc<Anvil>,
    key: ClientKey,
}

impl Drop for Session {
    fn drop(&mut self) {
        let mut clients = self.anvil.lock();
        if let Some(e) = clients.get_mut(&self.key) {
            e.sessions = e.sessions.saturating_sub(1);
        }
    }
}

fn over(limit: u32, count: u32) -> bool {
    limit > 0 && count >= limit
}

impl Anvil {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Anvil { limits, clients: Mutex::new(HashMap::new()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Entry>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry of `key`, making room in a full table by dropping idle entries; `None`
    /// when the table is full of busy clients (the client is then admitted uncounted).
    fn entry(clients: &mut HashMap<ClientKey, Entry>, key: ClientKey, now: Instant) -> Option<&mut Entry> {
        if !clients.contains_key(&key) && clients.len() >= MAX_CLIENTS {
            clients.retain(|_, e| !e.idle(now));
            if clients.len() >= MAX_CLIENTS {
                return None;
            }
        }
        let e = clients.entry(key).or_insert_with(|| Entry::new(now));
        e.roll(now);
        Some(e)
    }

    /// A new connection from `ip`: a session slot, or the limit it would break.
    pub fn connect(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Option<Session>, Over> {
        let key = ClientKey::of(ip);
        let mut clients = self.lock();
        let Some(e) = Self::entry(&mut clients, key, now) else {
            return Ok(None);
        };
        if over(self.limits.connections_per_minute, e.connections) {
            return Err(Over::ConnectionRate);
        }
        e.connections += 1;
        if self.limits.sessions > 0 && e.sessions >= self.limits.sessions {
            return Err(Over::Sessions);
        }
        e.sessions += 1;
        crate::metrics::clients_tracked(clients.len());
        Ok(Some(Session { anvil: self.clone(), key }))
    }

    /// A MAIL command from `ip`.
    pub fn message(&self, ip: IpAddr, now: Instant) -> Result<(), Over> {
        self.count(ip, now, Over::MessageRate)
    }

    /// A RCPT command from `ip`.
    pub fn recipient(&self, ip: IpAddr, now: Instant) -> Result<(), Over> {
        self.count(ip, now, Over::RecipientRate)
    }

    fn count(&self, ip: IpAddr, now: Instant, what: Over) -> Result<(), Over> {
        let limit = match what {
            Over::MessageRate => self.limits.messages_per_minute,
            _ => self.limits.recipients_per_minute,
        };
        if limit == 0 {
            return Ok(());
        }
        let mut clients = self.lock();
        let Some(e) = Self::entry(&mut clients, ClientKey::of(ip), now) else {
            return Ok(());
        };
        let n = match what {
            Over::MessageRate => &mut e.messages,
            _ => &mut e.recipients,
        };
        if over(limit, *n) {
            return Err(what);
        }
        *n += 1;
        Ok(())
    }

    /// Clients tracked now (for /metrics).
    pub fn clients(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn sessions_per_client_are_capped_and_given_back() {
        let a = Anvil::new(Limits { sessions: 2, ..Limits::default() });
        let now = Instant::now();
        let s1 = a.connect(ip("192.0.2.1"), now);
        let s2 = a.connect(ip("192.0.2.1"), now);
        assert!(s1.is_ok() && s2.is_ok());
        assert_eq!(a.connect(ip("192.0.2.1"), now).err(), Some(Over::Sessions));
        // Another client is not affected.
        assert!(a.connect(ip("192.0.2.2"), now).is_ok());
        drop(s1);
        assert!(a.connect(ip("192.0.2.1"), now).is_ok());
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(ClientKey::of(ip("2001:db8:1:2::5")), ClientKey::of(ip("2001:db8:1:2:ffff::1")));
        assert_ne!(ClientKey::of(ip("2001:db8:1:2::5")), ClientKey::of(ip("2001:db8:1:3::5")));
        assert_eq!(ClientKey::of(ip("::ffff:192.0.2.7")), ClientKey::of(ip("192.0.2.7")));
        assert_eq!(ClientKey::of(ip("2001:db8:1:2::5")).to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn rates_hold_for_a_minute() {
        let a = Anvil::new(Limits { connections_per_minute: 3, messages_per_minute: 2, ..Limits::default() });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(a.connect(ip("192.0.2.1"), t0).is_ok());
        }
        assert_eq!(a.connect(ip("192.0.2.1"), t0).err(), Some(Over::ConnectionRate));
        assert!(a.message(ip("192.0.2.1"), t0).is_ok() && a.message(ip("192.0.2.1"), t0).is_ok());
        assert_eq!(a.message(ip("192.0.2.1"), t0), Err(Over::MessageRate));
        assert_eq!(a.recipient(ip("192.0.2.1"), t0), Ok(()), "no recipient limit set");
        let t1 = t0 + Duration::from_secs(61);
        assert!(a.connect(ip("192.0.2.1"), t1).is_ok());
        assert!(a.message(ip("192.0.2.1"), t1).is_ok());
    }

    #[test]
    fn the_table_is_bounded() {
        let a = Anvil::new(Limits { sessions: 10, ..Limits::default() });
        let t0 = Instant::now();
        for i in 0..MAX_CLIENTS as u32 {
            let _ = a.connect(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)), t0);
        }
        assert_eq!(a.clients(), MAX_CLIENTS);
        // A minute later the idle ones make room.
        let t1 = t0 + Duration::from_secs(61);
        assert!(a.connect(ip("192.0.2.9"), t1).is_ok());
        assert!(a.clients() <= MAX_CLIENTS);
    }
}
