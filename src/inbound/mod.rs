//! Receiving mail: the SMTP server of the `smtp` (MX) and `submission` listeners.
//!
//! A listener accepts connections (`listener`), each connection runs one task that reads
//! commands and writes replies (`connection`), driven by a pure state machine (`session`),
//! asking `policy` about senders and recipients (`senders`: which addresses a login owns),
//! `auth` about logins, and handing complete messages to `accept`. Reply text comes from `replies` only.
//! Must not: write to the store except through `accept`.

pub mod anvil;
pub mod auth;
pub mod checks;
pub mod connection;
pub mod data;
pub mod dovecot_auth;
pub mod listener;
pub mod local;
pub mod password;
pub mod policy;
pub mod replies;
pub mod senders;
pub mod session;
pub mod tls;
pub mod totp;
pub mod unsubscribe;

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Config;
use crate::store::Store;

/// Which door a client came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// Port 25 role: mail for local domains from anyone; relaying only for trusted networks.
    Smtp,
    /// Port 587 role: STARTTLS, then AUTH, then relaying.
    Submission,
    /// Local programs through `sendmail` (`-bs` or a message on standard input): the local
    /// user is the login, so they may relay; no TLS, no AUTH, no network.
    Local,
}

impl ListenerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerKind::Smtp => "smtp",
            ListenerKind::Submission => "submission",
            ListenerKind::Local => "sendmail",
        }
    }

    /// The door a message taken by this listener came in by.
    pub fn via(self) -> crate::store::Via {
        match self {
            ListenerKind::Smtp => crate::store::Via::Smtp,
            ListenerKind::Submission => crate::store::Via::Submission,
            ListenerKind::Local => crate::store::Via::Sendmail,
        }
    }
}

/// Everything a session needs, shared by all connections.
pub struct Context {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub auth: auth::Authenticator,
    /// Flips to true on SIGTERM: new connections get 421, idle sessions are closed.
    pub shutdown: watch::Receiver<bool>,
    /// Poked after every accepted message so delivery starts at once.
    pub queue_wakeup: Arc<crate::accept::Wakeup>,
    /// Verifies the signed return paths that bounces come back to.
    pub return_path: Arc<crate::bounce::return_path::Signer>,
    /// Signs and verifies the one-click unsubscribe tokens (derived from the return-path key).
    pub unsubscribe: Arc<crate::bounce::unsubscribe::Keys>,
    /// Signs outgoing mail of the `[dkim]` domain.
    pub dkim: Option<Arc<crate::dkim::Signer>>,
    /// Resolver for the submission check "does the recipient's domain exist".
    pub dns: Option<Arc<crate::dns::Dns>>,
    /// Hard-bounce rates per account (shared with the scheduler).
    pub breaker: Arc<crate::bounce::breaker::Breaker>,
    /// Per-client limits (sessions, connection, message and recipient rates).
    pub anvil: Arc<anvil::Anvil>,
    /// Compromised-account detection: bursts over the baseline, new login networks.
    pub suspect: Arc<crate::suspect::Detector>,
}

impl Context {
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}
