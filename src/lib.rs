//! mailerd: a mail delivery daemon that delivers, refuses properly, and explains.
//!
//! The modules are listed in the order mail flows through them (DESIGN §1–2).

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod cli; // the command line: one file per subcommand; exit codes 0/1/2
pub mod config; // TOML -> validated Config, one file per section (errors name the key; imports no stage)
pub mod daemon; // wiring: store, listeners, tasks, graceful shutdown
pub mod instance; // one daemon per data dir: the lock file
pub mod control; // the control socket: `mailerd status`, wakeups from local tools
pub mod logging; // log lines on stderr: the verb first, logfmt or JSON
pub mod budget; // file descriptors: raise the limit, size the listeners' pools

#[deny(clippy::indexing_slicing)]
pub mod smtp; // protocol vocabulary: replies, commands, addresses, headers, codec (imports nothing of the crate)
pub mod inbound; // 1. receive: listener, connection, session, policy, auth, tls, data, replies
pub mod checklist; // 2. pre-send checks: address, typo, domain, message -> CheckReport
pub mod suspect; // 2b. compromised-account detection: bursts over an account's baseline, new login networks
pub mod accept; // 3. the single door into the queue
pub mod queue; // 4. hold and schedule: scheduler (claim -> deliver -> record), retry (pure)
pub mod outbound; // 5a. deliver to other servers: route, client, pool, slots, outcome (the table)
pub mod local; // 5b. deliver here: mailboxes, aliases, Maildir, deliver
pub mod bounce; // 6. tell the sender: reason table, notify, DSN, reporter, breaker
pub mod feedback; // 7. read bounces others send: detect, parse, classify, verify, ingest
pub mod http; // the JSON API, the dashboard, webhooks, /metrics (listen.http)

pub mod dkim; // DKIM signing and key generation (mail-auth)
pub mod dns; // MX and address lookups (hickory)
pub mod tlspolicy; // outbound TLS policies as values: MTA-STS record, policy and mx patterns, TLS results (pure)
pub mod metrics; // counters for /metrics (Prometheus text)
pub mod store; // the only shared state and the only SQL
pub mod time; // Timestamp and RFC 5322 dates
