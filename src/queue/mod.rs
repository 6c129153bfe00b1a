//! Holding and scheduling: when to try each recipient, and recording what happened.
//!
//! `scheduler` leases due recipients from the store and hands them to a transport; `retry`
//! is the pure backoff policy; `outcome` is the value every transport returns.
//! Must not: speak SMTP or write Maildirs itself.

pub mod outcome;
pub mod retry;
pub mod return_path;
pub mod scheduler;

use tokio::sync::Notify;

/// Wakes the scheduler's loops when new work is stored (each loop keeps one pending wakeup).
#[derive(Debug, Default)]
pub struct Wakeup {
    pub local: Notify,
    pub remote: Notify,
    pub feedback: Notify,
}

impl Wakeup {
    pub fn poke(&self) {
        self.local.notify_one();
        self.remote.notify_one();
        self.feedback.notify_one();
    }
}
