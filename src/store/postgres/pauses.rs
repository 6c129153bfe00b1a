//! The pause lookup at RCPT, remembered for a second.
//!
//! Every RCPT to a remote domain asks whether its accounts (the login's, the sender domain's)
//! are paused. On SQLite that is a local index probe; on PostgreSQL it was a statement and a
//! round trip per RCPT, about a fifth of a node's statements, for a table that changes when a
//! breaker trips or an operator resumes. This node keeps what it read of each account for
//! `FRESH`: its own pauses and resumes (and the detector's) forget the account at once, and a
//! pause made on another node of the cluster is seen here within `FRESH`, the time a cached
//! "not paused" lives. Measured with `bench/cluster.sh`: see `docs/ARCHITECTURE.md`.
//! Must not: answer from an entry older than `FRESH`, or keep an account this node changed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::AccountPause;

/// How long a read pause (or its absence) is taken as current.
pub(super) const FRESH: Duration = Duration::from_secs(1);
/// Accounts remembered at most; beyond, the cache starts over (sender domains of trusted
/// networks are as many as their senders use).
const MAX_ACCOUNTS: usize = 10_000;

#[derive(Default)]
pub(super) struct Pauses {
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    accounts: HashMap<String, (Instant, Option<AccountPause>)>,
    /// Counts `forget`s: a read that began before one may predate the change it forgot.
    changes: u64,
}

impl Pauses {
    /// The first of `accounts` that is paused, when every one of them was read within `FRESH`;
    /// None when any must be read again.
    pub fn first(&self, accounts: &[String], now: Instant) -> Option<Option<AccountPause>> {
        let known = self.known.lock().ok()?;
        let mut first = None;
        for a in accounts {
            let (at, pause) = known.accounts.get(a)?;
            if now.duration_since(*at) >= FRESH {
                return None;
            }
            if first.is_none() {
                first = pause.clone();
            }
        }
        Some(first)
    }

    /// Taken before a read: `learn` keeps its result only if nothing was forgotten meanwhile.
    pub fn before_read(&self) -> u64 {
        self.known.lock().map(|k| k.changes).unwrap_or(u64::MAX)
    }

    /// What a read of `accounts` found paused (the rest are not), as of `at` (taken before
    /// the read began, so an entry never looks newer than the data behind it); `changes` is
    /// `before_read`'s.
    pub fn learn(&self, accounts: &[String], paused: &[AccountPause], at: Instant, changes: u64) {
        let Ok(mut known) = self.known.lock() else { return };
        if known.changes != changes {
            return;
        }
        if known.accounts.len() + accounts.len() > MAX_ACCOUNTS {
            known.accounts.clear();
        }
        for a in accounts {
            known.accounts.insert(a.clone(), (at, paused.iter().find(|p| &p.account == a).cloned()));
        }
    }

    /// This node paused or resumed `account`: the next lookup reads it, and a read already
    /// under way is not kept.
    pub fn forget(&self, account: &str) {
        if let Ok(mut known) = self.known.lock() {
            known.accounts.remove(account);
            known.changes += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pause(account: &str) -> AccountPause {
        AccountPause { account: account.into(), detail: "test".into(), message_id: None, paused_at: String::new() }
    }

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn answers_only_what_it_read_within_a_second() {
        let p = Pauses::default();
        let t0 = Instant::now();
        let both = keys(&["user:a@x.test", "domain:x.test"]);
        assert_eq!(p.first(&both, t0), None, "nothing read yet");
        p.learn(&both, &[pause("domain:x.test")], t0, p.before_read());
        assert_eq!(p.first(&both, t0).unwrap().unwrap().account, "domain:x.test");
        assert_eq!(p.first(&keys(&["user:a@x.test"]), t0), Some(None), "read: not paused");
        assert_eq!(p.first(&keys(&["user:b@x.test", "domain:x.test"]), t0), None, "one account unread");
        assert_eq!(p.first(&both, t0 + FRESH), None, "stale after FRESH");
    }

    #[test]
    fn the_first_paused_account_in_the_callers_order() {
        let p = Pauses::default();
        let t0 = Instant::now();
        let both = keys(&["user:a@x.test", "domain:x.test"]);
        p.learn(&both, &[pause("domain:x.test"), pause("user:a@x.test")], t0, p.before_read());
        assert_eq!(p.first(&both, t0).unwrap().unwrap().account, "user:a@x.test");
    }

    #[test]
    fn a_change_made_here_is_read_again() {
        let p = Pauses::default();
        let t0 = Instant::now();
        let one = keys(&["user:a@x.test"]);
        p.learn(&one, &[], t0, p.before_read());
        p.forget("user:a@x.test");
        assert_eq!(p.first(&one, t0), None);
        // A read that began before the change is not kept.
        let changes = p.before_read();
        p.forget("user:a@x.test");
        p.learn(&one, &[], t0, changes);
        assert_eq!(p.first(&one, t0), None);
    }
}
