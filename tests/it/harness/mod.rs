//! Test harness: an in-process daemon on 127.0.0.1:0 ports, a child-process daemon for crash
//! tests, and a transcript SMTP client.

pub mod browser;
pub mod daemon;
pub mod dns;
pub mod dovecot;
pub mod http;
pub mod nsd;
pub mod postfix;
pub mod postgres;
pub mod sink;
pub mod sts;
pub mod smtp;

pub use daemon::TestDaemon;
pub use smtp::Client;
