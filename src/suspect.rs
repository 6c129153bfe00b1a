//! Compromised-account detection: per sending account (an SMTP login `user:ADDRESS`, an API key
//! `apikey:ID`), a rolling baseline of its messages and distinct recipient domains per hour, the
//! From domains it used and the networks it logged in from. After `[account] warmup`, a message
//! that would take the hour beyond `burst_factor` × the baseline (the busiest hour of
//! `baseline_window`; never below `burst_min_messages` / `burst_min_domains`), or a login from a
//! network it never used (with `new_network`; the client address cut to `network_prefix_v4/v6`),
//! pauses the account like the hard-bounce breaker (the store's pause: 451 4.7.1 at SMTP, 403 on
//! the API) and writes an `account_suspected` event naming the signal and its numbers.
//!
//! `Baselines` is the pure part (time is an argument; a week of traffic runs in a test in
//! milliseconds); `Detector` holds it behind a lock with the store and a `time::Clock`.
//! Counts live in memory per node and reach the store in batches (`Detector::flush`, once a
//! minute), which sums messages across nodes and brings the other nodes' counts back; an
//! account's history is read from the store once, when the node first meets it.
//! Must not: make a store round trip per message, hold its lock across an await, refuse mail
//! because the store cannot be read (it fails open), or grow without bound.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use tracing::warn;

use crate::config::SuspectConfig;
use crate::smtp::address::{Domain, ReversePath};
use crate::store::{
    AccountActivity, AccountHistory, AccountPause, Hour, HourCount, NewRecipient, Seen, SeenAt, Store, Transport,
};
use crate::time::{Clock, Timestamp};

/// Accounts kept in memory; idle ones are dropped (after their flush) beyond it.
const MAX_ACCOUNTS: usize = 100_000;
/// Distinct recipient domains remembered per account and hour (the count stops there).
const MAX_DOMAINS_PER_HOUR: usize = 10_000;
/// Networks and From domains remembered per account (the least recently seen go first).
const MAX_SEEN: usize = 1_000;
/// An account idle this long (and flushed) leaves memory; the store keeps it.
const IDLE_MS: i64 = 2 * Hour::MS;

/// What tripped the detector, with its numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Messages in the current hour (this one included) over the limit.
    MessagesPerHour { count: u64, baseline: u64, limit: u64 },
    /// Distinct recipient domains in the current hour over the limit.
    DomainsPerHour { count: u64, baseline: u64, limit: u64 },
    /// A login from a network the account never used; `known` networks it did use.
    NewNetwork { network: IpNet, known: usize },
    /// Mail from a From domain the account never used.
    NewFromDomain { domain: Domain, known: usize },
}

impl Signal {
    /// The signal's name in events and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Signal::MessagesPerHour { .. } => "messages_per_hour",
            Signal::DomainsPerHour { .. } => "domains_per_hour",
            Signal::NewNetwork { .. } => "new_network",
            Signal::NewFromDomain { .. } => "new_from_domain",
        }
    }

    /// One line for the event, the pause and the dashboard.
    pub fn describe(&self, config: &SuspectConfig) -> String {
        let hours = config.baseline_window.as_secs() / 3600;
        let burst = |what: &str, count: u64, baseline: u64, limit: u64, floor: u64, floor_key: &str| {
            let why = if limit > floor {
                format!(
                    "{} x the baseline of {baseline} (the busiest hour of the last {hours} h), account.burst_factor",
                    config.burst_factor
                )
            } else {
                format!("the floor {floor_key} (baseline {baseline} in the last {hours} h)")
            };
            format!("{}: {count} {what} this hour, over the limit {limit} = {why}", self.name())
        };
        match self {
            Signal::MessagesPerHour { count, baseline, limit } => {
                burst("messages", *count, *baseline, *limit, config.min_messages_per_hour, "account.burst_min_messages")
            }
            Signal::DomainsPerHour { count, baseline, limit } => burst(
                "recipient domains",
                *count,
                *baseline,
                *limit,
                config.min_domains_per_hour,
                "account.burst_min_domains",
            ),
            Signal::NewNetwork { network, known } => {
                format!("{}: login from {network}, never seen for this account ({known} known networks)", self.name())
            }
            Signal::NewFromDomain { domain, known } => {
                format!("{}: mail from {domain}, never used by this account ({known} known From domains)", self.name())
            }
        }
    }
}

/// An account the detector paused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspicion {
    pub account: String,
    pub signal: Signal,
    pub detail: String,
}

/// What the detector counts of a message: its envelope sender's domain and the domains of its
/// remote recipients (mail that leaves).
pub fn message_parts(from: &ReversePath, recipients: &[NewRecipient]) -> (Option<Domain>, Vec<Domain>) {
    let domains = recipients
        .iter()
        .filter(|r| r.transport() == Transport::Remote)
        .filter_map(|r| r.address.rsplit_once('@').and_then(|(_, d)| Domain::parse(d).ok()))
        .collect();
    (crate::store::path_domain(from), domains)
}

/// One hour of one account on this node.
#[derive(Debug, Default)]
struct HourState {
    /// The store's counts at the last read (every node's flushed messages).
    stored_messages: u64,
    stored_domains: u64,
    /// Messages of this node being flushed now.
    in_flight: u64,
    /// Messages of this node not flushed yet.
    added: u64,
    /// Distinct recipient domains this node saw (capped).
    domains: HashSet<Domain>,
}

impl HourState {
    fn messages(&self) -> u64 {
        self.stored_messages + self.in_flight + self.added
    }

    fn domain_count(&self) -> u64 {
        self.stored_domains.max(self.domains.len() as u64)
    }
}

#[derive(Debug)]
struct Account {
    first_seen: Timestamp,
    hours: BTreeMap<Hour, HourState>,
    /// Networks and From domains it used, with when they were last seen.
    known: HashMap<Seen, Timestamp>,
    /// Known values seen again or first since the last flush.
    touched: HashSet<Seen>,
    /// The hour this node tripped the burst check in: after a resume the rest of that hour
    /// is not checked again (the admin said the burst was wanted).
    tripped: Option<Hour>,
    last_active: Timestamp,
    /// Something to flush (new account, counts or seen values).
    dirty: bool,
}

impl Account {
    fn new(now: Timestamp) -> Account {
        Account {
            first_seen: now,
            hours: BTreeMap::new(),
            known: HashMap::new(),
            touched: HashSet::new(),
            tripped: None,
            last_active: now,
            dirty: true,
        }
    }

    fn warmed_up(&self, config: &SuspectConfig, now: Timestamp) -> bool {
        now.millis().saturating_sub(self.first_seen.millis()) >= config.warmup.as_millis() as i64
    }

    /// The busiest completed hour of the window before `hour`: (messages, domains).
    fn baseline(&self, hour: Hour, window: i64) -> (u64, u64) {
        self.hours
            .range(Hour(hour.0 - window)..hour)
            .fold((0, 0), |(m, d), (_, h)| (m.max(h.messages()), d.max(h.domain_count())))
    }

    fn count_known(&self, network: bool) -> usize {
        self.known.keys().filter(|s| matches!(s, Seen::Network(_)) == network).count()
    }

    fn see(&mut self, value: Seen, now: Timestamp) {
        if self.known.len() >= MAX_SEEN
            && !self.known.contains_key(&value)
            && let Some(oldest) = self.known.iter().min_by_key(|(_, t)| **t).map(|(s, _)| s.clone())
        {
            self.known.remove(&oldest);
        }
        self.known.insert(value.clone(), now);
        self.touched.insert(value);
        self.dirty = true;
    }

    fn forget_before(&mut self, hour: Hour) {
        self.hours = self.hours.split_off(&hour);
    }
}

/// The detector's state, pure: every method takes `now`.
#[derive(Debug)]
pub struct Baselines {
    config: SuspectConfig,
    accounts: HashMap<String, Account>,
}

impl Baselines {
    pub fn new(config: SuspectConfig) -> Baselines {
        Baselines { config, accounts: HashMap::new() }
    }

    fn window_hours(&self) -> i64 {
        (self.config.baseline_window.as_secs() / 3600).max(1) as i64
    }

    fn account(&mut self, account: &str, now: Timestamp) -> &mut Account {
        if self.accounts.len() >= MAX_ACCOUNTS && !self.accounts.contains_key(account) {
            let cutoff = now.millis() - IDLE_MS;
            self.accounts.retain(|_, a| a.dirty || a.last_active.millis() > cutoff);
        }
        let a = self.accounts.entry(account.to_string()).or_insert_with(|| Account::new(now));
        a.last_active = now;
        a
    }

    /// The network of a client address: IPv4 (also IPv4-mapped IPv6) cut to the v4 prefix,
    /// IPv6 to the v6 prefix.
    pub fn network(&self, ip: IpAddr) -> IpNet {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let prefix = if ip.is_ipv4() { self.config.network_prefix_v4 } else { self.config.network_prefix_v6 };
        IpNet::new(ip, prefix).map(|n| n.trunc()).unwrap_or_else(|_| IpNet::from(ip))
    }

    /// A message of `account` from `from` to recipients in `domains` (repeats allowed): counted
    /// and Ok, or the signal that trips (the message is then not counted).
    pub fn message(
        &mut self,
        account: &str,
        from: Option<&Domain>,
        domains: &[Domain],
        now: Timestamp,
    ) -> Result<(), Signal> {
        let config = self.config;
        let window = self.window_hours();
        let hour = Hour::of(now);
        let a = self.account(account, now);
        let warm = a.warmed_up(&config, now);
        if let Some(from) = from {
            let value = Seen::FromDomain(from.clone());
            if !a.known.contains_key(&value) {
                let known = a.count_known(false);
                if config.new_from_domain && warm && known > 0 {
                    a.see(value, now); // known from now on: a resume lets it send
                    return Err(Signal::NewFromDomain { domain: from.clone(), known });
                }
            }
            a.see(value, now);
        }
        a.forget_before(Hour(hour.0 - window));
        let (base_messages, base_domains) = a.baseline(hour, window);
        let current = a.hours.entry(hour).or_default();
        let messages = current.messages() + 1;
        let new_domains = domains.iter().filter(|d| !current.domains.contains(*d)).collect::<HashSet<_>>();
        let domain_count = current.domain_count().max(current.domains.len() as u64 + new_domains.len() as u64);
        let checked = config.burst_factor > 0.0 && warm && a.tripped != Some(hour);
        if checked {
            let limit = |baseline: u64, floor: u64| ((config.burst_factor * baseline as f64).floor() as u64).max(floor);
            let limit_messages = limit(base_messages, config.min_messages_per_hour);
            if messages > limit_messages {
                a.tripped = Some(hour);
                return Err(Signal::MessagesPerHour {
                    count: messages,
                    baseline: base_messages,
                    limit: limit_messages,
                });
            }
            let limit_domains = limit(base_domains, config.min_domains_per_hour);
            if domain_count > limit_domains {
                a.tripped = Some(hour);
                return Err(Signal::DomainsPerHour {
                    count: domain_count,
                    baseline: base_domains,
                    limit: limit_domains,
                });
            }
        }
        let current = a.hours.entry(hour).or_default();
        current.added += 1;
        for d in new_domains {
            if current.domains.len() < MAX_DOMAINS_PER_HOUR {
                current.domains.insert(d.clone());
            }
        }
        a.dirty = true;
        Ok(())
    }

    /// A successful login of `account` from `ip` (SMTP AUTH, an API request): Ok, or the new
    /// network that trips (it is known from now on, so a resume lets it log in).
    pub fn login(&mut self, account: &str, ip: IpAddr, now: Timestamp) -> Result<(), Signal> {
        let config = self.config;
        let network = self.network(ip);
        let a = self.account(account, now);
        let value = Seen::Network(network);
        let new = !a.known.contains_key(&value);
        let known = a.count_known(true);
        let warm = a.warmed_up(&config, now);
        a.see(value, now);
        if new && config.new_network && warm && known > 0 {
            return Err(Signal::NewNetwork { network, known });
        }
        Ok(())
    }

    /// Whether `account` is in memory (its history was read, or it is new here).
    pub fn knows(&self, account: &str) -> bool {
        self.accounts.contains_key(account)
    }

    /// Takes in the store's view of `account`: its hours replace the stored counts (this
    /// node's unflushed messages stay on top), its first sight and seen values are merged.
    pub fn merge(&mut self, account: &str, history: AccountHistory, now: Timestamp) {
        let a = self.account(account, now);
        if let Some(first) = history.first_seen {
            a.first_seen = a.first_seen.min(first);
        }
        let stored: BTreeMap<Hour, HourCount> = history.hours.into_iter().map(|h| (h.hour, h)).collect();
        for (hour, h) in &mut a.hours {
            let s = stored.get(hour);
            h.stored_messages = s.map_or(0, |s| s.messages);
            h.stored_domains = s.map_or(0, |s| s.domains);
            h.in_flight = 0;
        }
        for (hour, s) in stored {
            let h = a.hours.entry(hour).or_default();
            h.stored_messages = s.messages;
            h.stored_domains = s.domains;
        }
        for v in history.seen {
            let t = a.known.entry(v.seen).or_insert(v.last);
            *t = (*t).max(v.last);
        }
    }

    /// What changed since the last call, per account; the messages move to `in_flight` until
    /// `merge` (after a successful write) or `restore` (after a failed one).
    pub fn take_activity(&mut self) -> Vec<AccountActivity> {
        let mut out = Vec::new();
        for (name, a) in self.accounts.iter_mut().filter(|(_, a)| a.dirty) {
            let hours = a
                .hours
                .iter_mut()
                .filter(|(_, h)| h.added > 0 || h.domains.len() as u64 > h.stored_domains)
                .map(|(hour, h)| {
                    let n = std::mem::take(&mut h.added);
                    h.in_flight += n;
                    HourCount { hour: *hour, messages: n, domains: h.domains.len() as u64 }
                })
                .collect();
            let seen = a
                .touched
                .drain()
                .filter_map(|s| a.known.get(&s).map(|t| SeenAt { seen: s.clone(), last: *t }))
                .collect();
            a.dirty = false;
            out.push(AccountActivity { account: name.clone(), first_seen: a.first_seen, hours, seen });
        }
        out
    }

    /// Puts back what `take_activity` took when the store did not take it.
    pub fn restore(&mut self, batch: Vec<AccountActivity>) {
        for act in batch {
            let Some(a) = self.accounts.get_mut(&act.account) else { continue };
            for h in act.hours {
                if let Some(state) = a.hours.get_mut(&h.hour) {
                    state.in_flight = state.in_flight.saturating_sub(h.messages);
                    state.added += h.messages;
                }
            }
            a.touched.extend(act.seen.into_iter().map(|s| s.seen));
            a.dirty = true;
        }
    }

    /// Drops accounts idle for a while with nothing left to flush.
    pub fn forget_idle(&mut self, now: Timestamp) {
        let cutoff = now.millis() - IDLE_MS;
        self.accounts.retain(|_, a| a.dirty || a.last_active.millis() > cutoff);
    }

    /// The hours the store keeps: from this one on.
    pub fn forget_before(&self, now: Timestamp) -> Hour {
        Hour(Hour::of(now).0 - self.window_hours() - 1)
    }
}

/// The detector the daemon runs: `Baselines` behind a lock, the store, the clock.
pub struct Detector {
    config: SuspectConfig,
    clock: Clock,
    store: Arc<dyn Store>,
    state: Mutex<Baselines>,
}

impl Detector {
    pub fn new(config: SuspectConfig, store: Arc<dyn Store>, clock: Clock) -> Detector {
        Detector { config, clock, store, state: Mutex::new(Baselines::new(config)) }
    }

    pub fn config(&self) -> &SuspectConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Baselines> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the account's history once per node (not per message).
    async fn load(&self, account: &str) {
        if self.lock().knows(account) {
            return;
        }
        let now = self.clock.now();
        let since = self.lock().forget_before(now);
        match self.store.account_history(account, since).await {
            Ok(history) => self.lock().merge(account, history, now),
            Err(e) => warn!(account, error = %e, "account history not readable: watching it from now on"),
        }
    }

    /// A message about to be accepted for `account`: Ok (counted), or the suspicion that
    /// paused the account (refuse the message).
    pub async fn admit(&self, account: &str, from: Option<&Domain>, domains: &[Domain]) -> Result<(), Suspicion> {
        if !self.config.enabled() {
            return Ok(());
        }
        self.load(account).await;
        let now = self.clock.now();
        let verdict = self.lock().message(account, from, domains, now);
        match verdict {
            Ok(()) => Ok(()),
            Err(signal) => Err(self.pause(account, signal).await),
        }
    }

    /// A successful login of `account` from `ip`: None, or the suspicion that paused it.
    pub async fn login(&self, account: &str, ip: IpAddr) -> Option<Suspicion> {
        if !self.config.enabled() {
            return None;
        }
        self.load(account).await;
        let now = self.clock.now();
        let verdict = self.lock().login(account, ip, now);
        match verdict {
            Ok(()) => None,
            Err(signal) => Some(self.pause(account, signal).await),
        }
    }

    async fn pause(&self, account: &str, signal: Signal) -> Suspicion {
        let detail = signal.describe(&self.config);
        warn!(account, signal = signal.name(), detail = %detail, "account suspected: sending paused");
        let pause = AccountPause {
            account: account.to_string(),
            detail: detail.clone(),
            message_id: None,
            paused_at: String::new(),
        };
        if let Err(e) = self.store.suspect_account(pause).await {
            warn!(account, error = %e, "account suspected but the pause could not be stored");
        }
        Suspicion { account: account.to_string(), signal, detail }
    }

    /// Writes what changed since the last flush in one batch, then reads back the flushed
    /// accounts (with the other nodes' counts).
    pub async fn flush(&self) {
        let now = self.clock.now();
        let (batch, forget) = {
            let mut s = self.lock();
            (s.take_activity(), s.forget_before(now))
        };
        if batch.is_empty() {
            self.lock().forget_idle(now);
            return;
        }
        let accounts: Vec<String> = batch.iter().map(|a| a.account.clone()).collect();
        if let Err(e) = self.store.record_account_activity(batch.clone(), forget).await {
            warn!(error = %e, accounts = accounts.len(), "account activity not stored: kept for the next flush");
            self.lock().restore(batch);
            return;
        }
        for account in accounts {
            match self.store.account_history(&account, forget).await {
                Ok(history) => self.lock().merge(&account, history, now),
                Err(e) => warn!(account, error = %e, "account history not readable after a flush"),
            }
        }
        self.lock().forget_idle(now);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const T0: i64 = 1_800_000_000_000 - 1_800_000_000_000 % Hour::MS;

    fn config() -> SuspectConfig {
        SuspectConfig {
            burst_factor: 4.0,
            warmup: Duration::from_secs(3 * 3600),
            baseline_window: Duration::from_secs(24 * 3600),
            min_messages_per_hour: 10,
            min_domains_per_hour: 5,
            new_network: true,
            new_from_domain: false,
            network_prefix_v4: 24,
            network_prefix_v6: 48,
        }
    }

    fn at(hour: i64, minute: i64) -> Timestamp {
        Timestamp(T0 + hour * Hour::MS + minute * 60_000)
    }

    fn d(name: &str) -> Domain {
        Domain::parse(name).unwrap()
    }

    #[test]
    fn a_burst_trips_exactly_past_the_factor_after_warm_up() {
        let mut b = Baselines::new(config());
        let to = [d("example.net")];
        // Warm-up: 3 hours of 5 messages; the 40 of hour 2 would trip later, not now.
        for h in 0..3 {
            for _ in 0..(if h == 2 { 40 } else { 5 }) {
                assert_eq!(b.message("user:a@x.test", None, &to, at(h, 1)), Ok(()));
            }
        }
        // Baseline 40 (busiest hour), factor 4: 160 go, the 161st trips.
        for i in 0..160 {
            assert_eq!(b.message("user:a@x.test", None, &to, at(3, 2)), Ok(()), "message {i}");
        }
        assert_eq!(
            b.message("user:a@x.test", None, &to, at(3, 3)),
            Err(Signal::MessagesPerHour { count: 161, baseline: 40, limit: 160 })
        );
        // Resumed within the hour: not tripped again in it.
        assert_eq!(b.message("user:a@x.test", None, &to, at(3, 4)), Ok(()));
    }

    #[test]
    fn the_floor_lets_small_accounts_send_and_domains_trip_on_their_own() {
        let mut b = Baselines::new(config());
        for h in 0..4 {
            assert_eq!(b.message("apikey:k", None, &[d("a.test")], at(h, 0)), Ok(()));
        }
        // Baseline 1 message and 1 domain: floors 10 messages, 5 domains.
        for i in 0..5 {
            assert_eq!(b.message("apikey:k", None, &[d(&format!("d{i}.test"))], at(5, 0)), Ok(()));
        }
        let trip = b.message("apikey:k", None, &[d("d5.test")], at(5, 1));
        assert_eq!(trip, Err(Signal::DomainsPerHour { count: 6, baseline: 1, limit: 5 }));
        assert!(trip.unwrap_err().describe(&config()).contains("account.burst_min_domains"));
    }

    #[test]
    fn a_new_network_trips_only_after_warm_up_and_is_known_afterwards() {
        let mut b = Baselines::new(config());
        let office: IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(b.login("user:a@x.test", office, at(0, 0)), Ok(()));
        assert_eq!(b.login("user:a@x.test", "198.51.100.7".parse().unwrap(), at(1, 0)), Ok(()), "warm-up: learnt");
        assert_eq!(b.login("user:a@x.test", "192.0.2.99".parse().unwrap(), at(4, 0)), Ok(()), "same /24");
        assert_eq!(b.login("user:a@x.test", "::ffff:192.0.2.1".parse().unwrap(), at(4, 0)), Ok(()), "mapped v4");
        let stranger: IpAddr = "203.0.113.5".parse().unwrap();
        assert_eq!(
            b.login("user:a@x.test", stranger, at(4, 1)),
            Err(Signal::NewNetwork { network: "203.0.113.0/24".parse().unwrap(), known: 2 })
        );
        assert_eq!(b.login("user:a@x.test", stranger, at(4, 2)), Ok(()), "known after the trip");
        assert_eq!(b.network("2001:db8:1:2::5".parse().unwrap()), "2001:db8:1::/48".parse::<IpNet>().unwrap());
    }

    #[test]
    fn activity_is_taken_once_and_merged_back_without_double_counting() {
        let mut b = Baselines::new(config());
        for _ in 0..3 {
            b.message("user:a@x.test", Some(&d("x.test")), &[d("n.test")], at(0, 0)).unwrap();
        }
        let batch = b.take_activity();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].hours, vec![HourCount { hour: Hour::of(at(0, 0)), messages: 3, domains: 1 }]);
        assert_eq!(batch[0].seen.len(), 1);
        assert!(b.take_activity().is_empty(), "nothing new");
        // Still counted while in flight; another node added 4 meanwhile.
        b.message("user:a@x.test", None, &[], at(0, 1)).unwrap();
        let history = AccountHistory {
            first_seen: Some(at(0, 0)),
            hours: vec![HourCount { hour: Hour::of(at(0, 0)), messages: 7, domains: 1 }],
            seen: vec![],
        };
        b.merge("user:a@x.test", history, at(0, 2));
        let a = &b.accounts["user:a@x.test"];
        assert_eq!(a.hours[&Hour::of(at(0, 0))].messages(), 8, "7 stored + 1 not flushed");
        // A failed write is put back.
        let batch = b.take_activity();
        b.restore(batch);
        assert_eq!(b.take_activity()[0].hours[0].messages, 1);
    }
}
