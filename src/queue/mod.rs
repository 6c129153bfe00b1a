//! Holding and scheduling: when to try each recipient, and recording what happened.
//!
//! `scheduler` leases due recipients from the store and hands them to a transport; `retry`
//! is the pure retry decision; the scheduler sleeps on `accept::Wakeup`. The value every transport returns is
//! `outbound::outcome::DeliveryOutcome` (queue imports it; transports never import queue).
//! Must not: speak SMTP or write Maildirs itself.

pub mod retry;
pub mod scheduler;
