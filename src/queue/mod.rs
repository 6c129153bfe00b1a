//! Holding and scheduling: when to try each recipient, and recording what happened.
//!
//! `scheduler` leases due recipients from the store and hands them to a transport; `retry`
//! is the pure backoff policy; `outcome` is the value every transport returns.
//! Must not: speak SMTP or write Maildirs itself.

pub mod outcome;
pub mod retry;
pub mod scheduler;
