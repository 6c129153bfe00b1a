//! Local delivery: mailboxes of the local domains (users, aliases, quotas), Maildir, and the
//! delivery of one claimed recipient into it, or over LMTP to a mailbox server (Dovecot).
//!
//! Must not: write the store; delivery returns a `DeliveryOutcome` (from `outbound::outcome`,
//! the one outcome table) that the scheduler records.

pub mod deliver;
pub mod lmtp;
pub mod mailbox;
pub mod maildir;
pub mod passwd_file;
pub mod quota;
