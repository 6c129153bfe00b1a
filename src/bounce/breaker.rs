//! Account protection: a hard-bounce-rate and a complaint-rate breaker per sending account (an
//! SMTP login or an API key), and a complaint-rate breaker per sender domain (`domain:NAME`,
//! the envelope sender's domain, whoever sends from it). Relayed recipients count when accepted; hard bounces (the reason
//! table's verdict) and complaints (ARF reports, `feedback::reports`) count when they happen.
//! When, over the sliding window, the hard-bounce rate exceeds `hard_bounce_threshold` after at
//! least `min_messages` recipients, or the complaint rate exceeds `complaint_threshold` (0.3%,
//! Gmail's and Yahoo's limit for bulk senders) after at least `complaint_min_messages`, the
//! breaker trips: the caller pauses the account in the store (sending refused with 451 4.7.1 /
//! HTTP 403 and an `account_paused` event saying which rate) until an admin runs
//! `mailerd account resume`. A bad list or a stolen login stops within minutes, before the
//! sending domain's reputation does.
//!
//! The counts live in memory (per minute, per account; bounded by the window), the pause in the
//! store, so a restart forgets the counts but not the pause. `hard_per_message` counts the hard
//! bounces among recorded attempts; `Breaker::hard_bounced` turns a message's hard bounces into
//! the `AccountPause` to store when they trip the breaker. Its settings are `[account]`'s,
//! `config::BreakerConfig`.
//! Must not: pause anything itself (the caller writes the store), or grow without bound.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::config::BreakerConfig;
use crate::store::{AccountPause, Attempt, MessageId, RecipientState};
use crate::time::Timestamp;

const BUCKET_MS: i64 = 60_000;
/// Accounts tracked at once; the least recently active are dropped beyond it.
const MAX_ACCOUNTS: usize = 100_000;

/// Which rate tripped the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    HardBounces,
    Complaints,
}

/// Why an account was paused.
#[derive(Debug, Clone, PartialEq)]
pub struct Trip {
    pub account: String,
    pub cause: Cause,
    pub sent: u64,
    /// Hard bounces or complaints, as `cause` says.
    pub count: u64,
}

impl Trip {
    pub fn rate(&self) -> f64 {
        if self.sent == 0 { 0.0 } else { self.count as f64 / self.sent as f64 }
    }

    pub fn describe(&self, config: &BreakerConfig) -> String {
        let (what, threshold, key) = match self.cause {
            Cause::HardBounces => ("hard-bounce rate", config.threshold, "account.hard_bounce_threshold"),
            Cause::Complaints => ("complaint rate", config.complaint_threshold, "account.complaint_threshold"),
        };
        format!(
            "{what} {:.1}% ({} of {} recipients in the last {} h) over {key} {}%",
            self.rate() * 100.0,
            self.count,
            self.sent,
            config.window.as_secs() / 3600,
            threshold * 100.0
        )
    }
}

#[derive(Default)]
struct Window {
    /// (bucket start ms, sent, hard bounces, complaints), oldest first.
    buckets: VecDeque<(i64, u64, u64, u64)>,
    last_seen: i64,
}

impl Window {
    fn add(&mut self, now: i64, n: Counts, window_ms: i64) {
        let start = now - now.rem_euclid(BUCKET_MS);
        match self.buckets.back_mut() {
            Some(b) if b.0 == start => {
                b.1 += n.sent;
                b.2 += n.hard;
                b.3 += n.complaints;
            }
            _ => self.buckets.push_back((start, n.sent, n.hard, n.complaints)),
        }
        while self.buckets.front().is_some_and(|b| b.0 + window_ms <= now) {
            self.buckets.pop_front();
        }
        self.last_seen = now;
    }

    fn totals(&self) -> Counts {
        self.buckets.iter().fold(Counts::default(), |t, b| Counts {
            sent: t.sent + b.1,
            hard: t.hard + b.2,
            complaints: t.complaints + b.3,
        })
    }
}

/// What one event adds to a window, or a window's totals.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    sent: u64,
    hard: u64,
    complaints: u64,
}

pub struct Breaker {
    config: BreakerConfig,
    windows: Mutex<HashMap<String, Window>>,
}

/// The breaker's key of a sender domain (the envelope sender's): its complaint rate has a
/// window of its own, whoever sends, and a pause under this key stops mail from the domain.
pub fn domain_account(domain: &str) -> String {
    format!("domain:{}", domain.to_ascii_lowercase())
}

/// The account of an `Origin::auth_user`: `apikey:ID` for the API, `user:ADDRESS` for SMTP.
pub fn account_of(auth_user: &str) -> String {
    match auth_user.strip_prefix("apikey:") {
        Some(rest) => format!("apikey:{}", rest.split_whitespace().next().unwrap_or(rest)),
        None => format!("user:{}", auth_user.to_lowercase()),
    }
}

/// Hard bounces among recorded attempts, per message in order of first appearance: failed
/// (bounced or expired) recipients whose outcome the classifier calls a hard bounce.
pub fn hard_per_message(attempts: &[Attempt]) -> Vec<(MessageId, u64)> {
    let mut hard: Vec<(MessageId, u64)> = Vec::new();
    for a in attempts {
        let failed = matches!(a.state, RecipientState::Bounced | RecipientState::Expired);
        if failed && is_hard(a) {
            match hard.iter_mut().find(|(m, _)| *m == a.message) {
                Some((_, n)) => *n += 1,
                None => hard.push((a.message.clone(), 1)),
            }
        }
    }
    hard
}

/// Whether an outcome means the address itself is bad (the classifier's one verdict).
fn is_hard(a: &Attempt) -> bool {
    crate::feedback::classify::of_status(Some(a.status), a.reply_code, Some(&a.detail)).hard_bounce == Some(true)
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker { config, windows: Mutex::new(HashMap::new()) }
    }

    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    /// `n` relayed recipients accepted for `account`.
    pub fn sent(&self, account: &str, n: u64, now: Timestamp) {
        self.record(account, Counts { sent: n, ..Counts::default() }, now);
    }

    /// `n` hard bounces for `account`; Some when this trips the breaker (the window is then
    /// cleared, so after a resume the account starts afresh).
    pub fn hard_bounces(&self, account: &str, n: u64, now: Timestamp) -> Option<Trip> {
        self.record(account, Counts { hard: n, ..Counts::default() }, now)
    }

    /// `n` complaints for `account`; Some when this trips the breaker (the window is cleared).
    pub fn complaints(&self, account: &str, n: u64, now: Timestamp) -> Option<Trip> {
        self.record(account, Counts { complaints: n, ..Counts::default() }, now)
    }

    /// Recipients sent by `auth_user` (None: not an account) from `sender_domain` (None: the
    /// null sender): counted in the account's window and in the sender domain's.
    pub fn sent_by(&self, auth_user: Option<&str>, sender_domain: Option<&str>, n: u64, now: Timestamp) {
        if n == 0 {
            return;
        }
        if let Some(user) = auth_user {
            self.sent(&account_of(user), n, now);
        }
        if let Some(domain) = sender_domain {
            self.sent(&domain_account(domain), n, now);
        }
    }

    /// A complaint about `message`, sent by `auth_user` (None: not an account) from
    /// `sender_domain`: counted against both; the pauses to store for those it trips.
    pub fn complained(
        &self,
        auth_user: Option<&str>,
        sender_domain: Option<&str>,
        message: &MessageId,
        now: Timestamp,
    ) -> Vec<AccountPause> {
        let keys = auth_user.map(account_of).into_iter().chain(sender_domain.map(domain_account));
        keys.filter_map(|account| {
            let trip = self.complaints(&account, 1, now)?;
            Some(AccountPause {
                account,
                detail: trip.describe(&self.config),
                message_id: Some(message.0.clone()),
                paused_at: String::new(),
            })
        })
        .collect()
    }

    /// `n` hard bounces of `message`, sent by `auth_user` (None: not an account); Some with
    /// the pause to store when they trip the breaker.
    pub fn hard_bounced(
        &self,
        auth_user: Option<&str>,
        message: &MessageId,
        n: u64,
        now: Timestamp,
    ) -> Option<AccountPause> {
        let account = account_of(auth_user?);
        let trip = self.hard_bounces(&account, n, now)?;
        Some(AccountPause {
            account,
            detail: trip.describe(&self.config),
            message_id: Some(message.0.clone()),
            paused_at: String::new(),
        })
    }

    fn record(&self, account: &str, n: Counts, now: Timestamp) -> Option<Trip> {
        let c = &self.config;
        if c.threshold <= 0.0 && c.complaint_threshold <= 0.0 {
            return None;
        }
        let window_ms = i64::try_from(self.config.window.as_millis()).unwrap_or(i64::MAX);
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ACCOUNTS && !map.contains_key(account) {
            let cutoff = now.millis().saturating_sub(window_ms);
            map.retain(|_, w| w.last_seen > cutoff);
            if map.len() >= MAX_ACCOUNTS {
                return None; // over the bound even after pruning: do not track more
            }
        }
        let w = map.entry(account.to_string()).or_default();
        w.add(now.millis(), n, window_ms);
        let t = w.totals();
        let over = |count: u64, threshold: f64, min: u64| {
            threshold > 0.0 && t.sent >= min && count as f64 > threshold * t.sent as f64
        };
        let trip = if n.hard > 0 && over(t.hard, c.threshold, c.min_messages) {
            Some((Cause::HardBounces, t.hard))
        } else if n.complaints > 0 && over(t.complaints, c.complaint_threshold, c.complaint_min_messages) {
            Some((Cause::Complaints, t.complaints))
        } else {
            None
        };
        let (cause, count) = trip?;
        map.remove(account);
        Some(Trip { account: account.to_string(), cause, sent: t.sent, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn breaker() -> Breaker {
        Breaker::new(config(0.10, 100, 86_400))
    }

    #[test]
    fn trips_over_the_threshold_only_after_enough_messages() {
        let b = breaker();
        let t = Timestamp(1_800_000_000_000);
        b.sent("user:a@x", 50, t);
        assert!(b.hard_bounces("user:a@x", 20, t).is_none(), "40% but only 50 messages");
        b.sent("user:a@x", 50, t);
        let trip = b.hard_bounces("user:a@x", 1, t).expect("21 of 100 > 10%");
        assert_eq!((trip.sent, trip.count, trip.cause), (100, 21, Cause::HardBounces));
        // Cleared: a resumed account starts afresh.
        assert!(b.hard_bounces("user:a@x", 1, t).is_none());
    }

    #[test]
    fn stays_closed_under_the_threshold_and_forgets_old_bounces() {
        let b = breaker();
        let t = Timestamp(1_800_000_000_000);
        b.sent("apikey:k1", 1000, t);
        assert!(b.hard_bounces("apikey:k1", 100, t).is_none(), "exactly 10% is not over");
        // A day later the old window is gone.
        let later = Timestamp(t.millis() + 86_400_000 + 60_000);
        b.sent("apikey:k1", 100, later);
        assert!(b.hard_bounces("apikey:k1", 5, later).is_none(), "5% of the new window");
        assert_eq!(account_of("apikey:key_ab12 (shop)"), "apikey:key_ab12");
        assert_eq!(account_of("App@Example.com"), "user:app@example.com");
    }

    fn attempt(message: &str, state: RecipientState, status: &str, detail: &str) -> Attempt {
        Attempt {
            recipient: crate::store::RecipientId(1),
            message: MessageId(message.into()),
            state,
            status: crate::smtp::reply::EnhancedStatus::parse(status).expect("status"),
            detail: detail.into(),
            reply_code: Some(550),
            remote: None,
            next_attempt_at: None,
            mailbox_bytes: None,
            event: None,
        }
    }

    #[test]
    fn hard_bounces_are_counted_per_message_from_failed_attempts() {
        let unknown = "550 5.1.1 <a@x.test>: user unknown";
        let attempts = [
            attempt("M1", RecipientState::Bounced, "5.1.1", unknown),
            attempt("M2", RecipientState::Bounced, "5.2.2", "552 5.2.2 mailbox full"),
            attempt("M1", RecipientState::Bounced, "5.1.1", unknown),
            attempt("M2", RecipientState::Deferred, "5.1.1", unknown),
            attempt("M3", RecipientState::Bounced, "5.1.1", unknown),
        ];
        let counted = hard_per_message(&attempts);
        assert_eq!(counted, vec![(MessageId("M1".into()), 2), (MessageId("M3".into()), 1)]);
    }

    #[test]
    fn a_trip_is_the_pause_to_store() {
        let b = Breaker::new(config(0.10, 10, 3600));
        let t = Timestamp(1_800_000_000_000);
        let m = MessageId("M1".into());
        assert!(b.hard_bounced(None, &m, 50, t).is_none(), "a relay without login is no account");
        b.sent("user:app@x.test", 10, t);
        let pause = b.hard_bounced(Some("App@x.test"), &m, 2, t).expect("20% of 10 trips");
        assert_eq!((pause.account.as_str(), pause.message_id.as_deref()), ("user:app@x.test", Some("M1")));
        assert_eq!(
            pause.detail,
            "hard-bounce rate 20.0% (2 of 10 recipients in the last 1 h) over account.hard_bounce_threshold 10%"
        );
    }

    #[test]
    fn complaints_trip_over_the_threshold_after_the_minimum_volume() {
        let b = breaker();
        let t = Timestamp(1_800_000_000_000);
        let m = MessageId("M9".into());
        b.sent("user:news@x.test", 999, t);
        for _ in 0..5 {
            assert!(b.complained(Some("news@x.test"), None, &m, t).is_empty(), "under 1,000 recipients nothing counts");
        }
        b.sent("user:news@x.test", 1, t);
        // 5 of 1,000 is 0.5%: the next complaint is the first counted over the minimum volume.
        let pauses = b.complained(Some("news@x.test"), None, &m, t);
        assert_eq!(pauses.len(), 1, "6 of 1,000 > 0.3%");
        assert_eq!(
            pauses[0].detail,
            "complaint rate 0.6% (6 of 1000 recipients in the last 24 h) over account.complaint_threshold 0.3%"
        );
        // At the threshold exactly, and below it, the account keeps sending.
        b.sent("apikey:k2", 2000, t);
        for i in 1..=6 {
            assert!(b.complaints("apikey:k2", 1, t).is_none(), "{i} of 2,000");
        }
        assert_eq!(b.complaints("apikey:k2", 1, t).map(|t| (t.cause, t.count)), Some((Cause::Complaints, 7)));
        // Complaints do not count toward the hard-bounce rate, nor the reverse.
        b.sent("user:a@x.test", 100, t);
        assert!(b.complaints("user:a@x.test", 9, t).is_none() && b.hard_bounces("user:a@x.test", 9, t).is_none());
    }

    #[test]
    fn a_sender_domain_has_a_complaint_window_of_its_own() {
        let b = breaker();
        let t = Timestamp(1_800_000_000_000);
        let m = MessageId("M7".into());
        // Two logins and the unauthenticated relay send 1,000 recipients from one domain.
        b.sent_by(Some("a@News.test"), Some("News.test"), 400, t);
        b.sent_by(Some("b@news.test"), Some("news.test"), 400, t);
        b.sent_by(None, Some("news.test"), 200, t);
        for i in 0..3 {
            let logins = [Some("a@news.test"), Some("b@news.test"), None];
            assert!(b.complained(logins[i % 3], Some("news.test"), &m, t).is_empty(), "complaint {}", i + 1);
        }
        // The 4th of 1,000 is over 0.3% for the domain; neither login (400 each, under the
        // minimum volume) trips.
        let pauses = b.complained(Some("a@news.test"), Some("NEWS.test"), &m, t);
        assert_eq!(pauses.iter().map(|p| p.account.as_str()).collect::<Vec<_>>(), ["domain:news.test"]);
        assert!(pauses[0].detail.starts_with("complaint rate 0.4% (4 of 1000 recipients"), "{}", pauses[0].detail);
        // Nothing sent by no one counts nothing.
        b.sent_by(None, None, 5, t);
    }

    fn config(threshold: f64, min_messages: u64, window: u64) -> BreakerConfig {
        BreakerConfig {
            threshold,
            min_messages,
            window: Duration::from_secs(window),
            complaint_threshold: 0.003,
            complaint_min_messages: 1000,
        }
    }
}
