//! Local delivery: mailboxes of the local domains (users, aliases, quotas), Maildir, and the
//! delivery of one claimed recipient into it.
//!
//! Must not: write the store; delivery returns a `DeliveryOutcome` (from `outbound::outcome`,
//! the one outcome table) that the scheduler records.

pub mod deliver;
pub mod mailbox;
pub mod maildir;
