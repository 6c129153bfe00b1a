//! Telling the sender: the reason table (shared with bounce parsing), when to notify, the
//! DSN text, and the reporter that decides after each delivery attempt.
//!
//! Must not: deliver anything; DSNs enter the queue through `accept` like any mail.

pub mod breaker;
pub mod dsn;
pub mod notify;
pub mod reason;
pub mod report;
pub mod return_path;
pub mod unsubscribe;
