//! The running counts of schema v5 (`stats_state`, `stats_domain`, `stats_daily`) for the
//! writes that count themselves: inserts of messages and records of delivery attempts, the two
//! writes every message goes through. Triggers on `recipients` used to count every row they
//! insert or change, three to six small statements a row, the largest part of an insert's or a
//! record's cost in the writer. These two now add up their changes in memory and write one upsert
//! per changed count per group commit (schema v19); every other change (hold, release, a bounce
//! received, delete) is still counted by the triggers.
//!
//! Must not: leave counts unwritten when another kind of write runs in the same transaction
//! (its triggers must find the rows they decrement: `flush` first), or at COMMIT.

use std::collections::HashMap;

use rusqlite::types::ToSql;
use rusqlite::{Transaction, params};

use crate::store::{RecipientState, StoreError, Transport};

/// A recipient's counted columns before or after a change.
pub(super) struct Counted<'a> {
    pub address: &'a str,
    pub state: &'a str,
    /// `last_status`; None before any attempt.
    pub status: Option<&'a str>,
    /// `updated_at`, in milliseconds.
    pub at: i64,
}

/// Changes to the running counts not yet written.
#[derive(Default)]
pub(super) struct Counts {
    state: HashMap<(String, String), i64>,
    domain: HashMap<(String, String), i64>,
    daily: HashMap<(i64, String), i64>,
}

/// Final outcomes (the states that no longer wait), counted per day too.
fn is_final(state: &str) -> bool {
    RecipientState::parse(state).is_some_and(|s| !s.is_waiting())
}

/// The UTC day of `stats_daily` for a time in milliseconds.
fn day(at: i64) -> i64 {
    at / 86_400_000
}

/// The domain the triggers compute in SQL: `lower(substr(address, instr(address, '@') + 1))`
/// (SQLite's `lower` folds ASCII only; an address without `@` is its own domain).
fn domain(address: &str) -> String {
    address.find('@').map_or(address, |at| &address[at + 1..]).to_ascii_lowercase()
}

impl Counts {
    /// A new recipient (`queued`, no status) of `transport`.
    pub fn inserted(&mut self, address: &str, transport: Transport) {
        if transport != Transport::Feedback {
            self.add(&Counted { address, state: RecipientState::Queued.as_str(), status: None, at: 0 }, 1);
        }
    }

    /// A recipient of `transport` changed from `old` to `new`: counted when its state or status
    /// changed, or a final state moved to another day (the update trigger's condition).
    pub fn changed(&mut self, transport: &str, old: &Counted<'_>, new: &Counted<'_>) {
        let moved =
            old.state != new.state || old.status != new.status || (is_final(new.state) && day(old.at) != day(new.at));
        if transport != Transport::Feedback.as_str() && moved {
            self.add(old, -1);
            self.add(new, 1);
        }
    }

    fn add(&mut self, c: &Counted<'_>, n: i64) {
        *self.state.entry((c.state.to_string(), c.status.unwrap_or_default().to_string())).or_default() += n;
        *self.domain.entry((domain(c.address), c.state.to_string())).or_default() += n;
        if is_final(c.state) {
            *self.daily.entry((day(c.at), c.state.to_string())).or_default() += n;
        }
    }

    /// Writes the changes (one upsert per changed count) and forgets them.
    pub fn flush(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        upsert(tx, "stats_state", self.state.drain())?;
        upsert(tx, "stats_domain", self.domain.drain())?;
        upsert(tx, "stats_daily", self.daily.drain())
    }
}

/// Adds each change to its row of `table` (two key columns, then `n`); changes that cancel out
/// are skipped.
fn upsert<A: ToSql, B: ToSql>(
    tx: &Transaction<'_>,
    table: &str,
    changes: impl Iterator<Item = ((A, B), i64)>,
) -> Result<(), StoreError> {
    let mut changes = changes.filter(|(_, n)| *n != 0).peekable();
    if changes.peek().is_none() {
        return Ok(());
    }
    let sql = format!("INSERT INTO {table} VALUES (?1, ?2, ?3) ON CONFLICT DO UPDATE SET n = n + excluded.n");
    let mut stmt = tx.prepare_cached(&sql)?;
    for ((a, b), n) in changes {
        stmt.execute(params![a, b, n])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted<'a>(state: &'a str, status: Option<&'a str>, at: i64) -> Counted<'a> {
        Counted { address: "a@Ex.Test", state, status, at }
    }

    #[test]
    fn changes_are_counted_as_the_update_trigger_counted_them() {
        let mut c = Counts::default();
        c.inserted("a@Ex.Test", Transport::Remote);
        c.inserted("fb@ex.test", Transport::Feedback);
        c.changed("remote", &counted("queued", None, 5), &counted("delivered", Some("2.0.0"), 86_400_000));
        // Unchanged state and status on the same day: nothing.
        c.changed("remote", &counted("deferred", Some("4.4.1"), 1), &counted("deferred", Some("4.4.1"), 2));
        c.changed("feedback", &counted("queued", None, 5), &counted("delivered", Some("2.0.0"), 5));
        let state: HashMap<_, _> = c.state.iter().filter(|(_, n)| **n != 0).collect();
        assert_eq!(state, HashMap::from([(&("delivered".to_string(), "2.0.0".to_string()), &1)]));
        assert_eq!(c.domain[&("ex.test".to_string(), "delivered".to_string())], 1);
        assert_eq!(c.domain[&("ex.test".to_string(), "queued".to_string())], 0);
        assert_eq!(c.daily, HashMap::from([((1, "delivered".to_string()), 1)]));
        // A final state moved to another day moves between days.
        let mut c = Counts::default();
        c.changed("remote", &counted("bounced", Some("5.1.1"), 0), &counted("bounced", Some("5.1.1"), 86_400_000));
        assert_eq!(c.daily, HashMap::from([((0, "bounced".to_string()), -1), ((1, "bounced".to_string()), 1)]));
    }

    #[test]
    fn domains_are_folded_as_sqlite_folds_them() {
        assert_eq!(domain("a@Mixed.Test"), "mixed.test");
        assert_eq!(domain("c@ÜNI.test"), "Üni.test");
        assert_eq!(domain("d@x@Two.Test"), "x@two.test");
        assert_eq!(domain("NoAt"), "noat");
    }
}
