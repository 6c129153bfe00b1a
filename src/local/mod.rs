//! Local delivery: mailboxes of the local domains (users, aliases, quotas) and Maildir.
//!
//! Must not: write the store; delivery returns a `DeliveryOutcome` that the scheduler records.

pub mod mailbox;
pub mod maildir;
