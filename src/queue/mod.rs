//! Holding and scheduling: when to try each recipient, and recording what happened.
//!
//! `scheduler` leases due recipients from the store and hands them to a transport; `retry`
//! is the pure retry decision. The value every transport returns is
//! `outbound::outcome::DeliveryOutcome` (queue imports it; transports never import queue).
//! Must not: speak SMTP or write Maildirs itself.

pub mod retry;
pub mod return_path;
pub mod scheduler;

use tokio::sync::Notify;

use crate::store::Transport;

/// Wakes the scheduler's loops when new work is stored (each loop keeps one pending wakeup).
#[derive(Debug, Default)]
pub struct Wakeup {
    pub local: Notify,
    pub remote: Notify,
    pub feedback: Notify,
}

impl Wakeup {
    /// The wakeup of the loop that handles `transport`.
    pub fn of(&self, transport: Transport) -> &Notify {
        match transport {
            Transport::Local => &self.local,
            Transport::Remote => &self.remote,
            Transport::Feedback => &self.feedback,
        }
    }

    /// Wakes the loops of these transports only (a loop woken for nothing costs a claim; a
    /// loop poked twice still keeps a single wakeup).
    pub fn poke_for(&self, transports: impl IntoIterator<Item = Transport>) {
        for t in transports {
            self.of(t).notify_one();
        }
    }

    /// Wakes every loop.
    pub fn poke(&self) {
        self.local.notify_one();
        self.remote.notify_one();
        self.feedback.notify_one();
    }
}
