//! The store: the only shared state of the daemon and the only place SQL lives.
//!
//! `Store` is the contract every backend implements (SQLite, and PostgreSQL for clusters); it
//! has no default bodies but for conveniences built on other methods, so a backend that lacks
//! a method does not compile. `ClusterStore` is the narrow part only a store shared by several
//! nodes has (PostgreSQL): connection slots and cluster secrets, reached through
//! `Store::cluster`. The store never assumes a single process: work is handed out as leases
//! that expire (`claim_due`), not as in-memory locks, so several processes may share one store.
//! Must not: decide policy, talk SMTP, or return from `insert_message` before the message
//! and its recipients are durable (fsync'd; backends group-commit concurrent writers).

mod codec;
pub mod learner;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::smtp::address::{Domain, ReversePath};
use crate::smtp::command::{Notify, Ret};
use crate::smtp::reply::EnhancedStatus;
use crate::time::Timestamp;
use crate::tlspolicy::{CachedPolicy, Day, LastResult, TlsCount};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// Not a `#[source]`: the message already carries the whole cause, once.
    #[error("PostgreSQL: {}", postgres_message(.0))]
    Postgres(tokio_postgres::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the store is closed")]
    Closed,
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("already reported")]
    AlreadyReported,
    /// The message's idempotency key already has a live record (`NewMessage::idempotency`):
    /// nothing was stored; the caller reads the record and replays it.
    #[error("idempotency key already used")]
    IdempotencyKeyTaken,
    /// One failure of a statement that carried the writes of several callers.
    #[error("{0}")]
    Shared(std::sync::Arc<StoreError>),
}

impl StoreError {
    /// Whether the store failed for want of disk space (SQLite's SQLITE_FULL, ENOSPC,
    /// PostgreSQL's class 53 "insufficient resources" disk_full), rather than being away.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            StoreError::Database(rusqlite::Error::SqliteFailure(e, _)) => e.code == rusqlite::ErrorCode::DiskFull,
            StoreError::Io(e) => e.raw_os_error() == Some(28), // ENOSPC
            StoreError::Postgres(e) => e.code() == Some(&tokio_postgres::error::SqlState::DISK_FULL),
            StoreError::Shared(e) => e.is_out_of_space(),
            _ => false,
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Postgres(e)
    }
}

/// tokio-postgres says only "db error" or "error connecting to server" in its `Display`; the
/// server's message (with its SQLSTATE) or the I/O cause is what an operator needs.
fn postgres_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    // The chain, without the repeats tokio-postgres makes when it wraps its own errors.
    let mut parts = vec![e.to_string()];
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}

/// A `LIKE … ESCAPE '\'` pattern matching addresses that contain `query` (case-insensitive:
/// addresses are stored lower-case), with `%`, `_` and `\` in the query taken literally.
pub(crate) fn like_contains(query: &str) -> String {
    format!("%{}%", query.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

/// Whether `url` names a PostgreSQL store (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store `config.store_url` names: PostgreSQL for `postgres://…` (cluster mode),
/// otherwise the SQLite file (the default). Creates or migrates the schema.
pub async fn open(config: &crate::config::Config) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres_url(&config.store_url) {
        Ok(Arc::new(postgres::PgStore::connect(&config.store_url).await?))
    } else {
        Ok(Arc::new(sqlite::SqliteStore::open(&config.sqlite_path())?))
    }
}

/// A queue id, unique across processes and nodes: 12 hex digits of milliseconds + 8 random.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub String);

impl MessageId {
    /// The id of a message stored at `now`. The 8 digits after the time come from a per-thread
    /// Weyl sequence that starts at a random point: no getrandom call per id (a system call,
    /// a microsecond of a batch message's time), and one thread never repeats them within
    /// 2^32 ids, where 32 fresh random bits per id could meet again (birthday) within a batch.
    pub fn generate(now: Timestamp) -> Self {
        use std::cell::Cell;
        thread_local! {
            static NEXT: Cell<u32> = Cell::new({
                let mut r = [0u8; 4];
                if getrandom::fill(&mut r).is_err() {
                    // No entropy: the time and the thread's address still differ between threads.
                    let here = &r as *const _ as usize as i64;
                    r = ((Timestamp::now().millis() ^ here) as u32).wrapping_mul(2_654_435_761).to_le_bytes();
                }
                u32::from_le_bytes(r)
            });
        }
        // An odd step: the sequence visits every u32 once before it repeats.
        let suffix = NEXT.with(|n| {
            let v = n.get();
            n.set(v.wrapping_add(0x9E37_79B9));
            v
        });
        MessageId(format!("{:012X}{:08X}", now.millis() & 0xFFFF_FFFF_FFFF, suffix))
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecipientId(pub i64);

/// Who delivers a recipient: this host's mailboxes, or the outbound SMTP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Local,
    Remote,
    /// A bounce for one of our signed return paths: read by `feedback`, not delivered.
    Feedback,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Local => "local",
            Transport::Remote => "remote",
            Transport::Feedback => "feedback",
        }
    }
}

/// The one outcome vocabulary, shared by store, events, logs and CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientState {
    Queued,
    Deferred,
    Delivered,
    Bounced,
    Expired,
    /// Put on hold by an operator (`mailerd queue hold`): kept, never claimed for delivery
    /// (the due index covers queued and deferred rows only) until `queue release` makes it
    /// queued again (deferred when it was tried before), due at once.
    Held,
}

impl RecipientState {
    pub const ALL: [RecipientState; 6] = [
        RecipientState::Queued,
        RecipientState::Deferred,
        RecipientState::Delivered,
        RecipientState::Bounced,
        RecipientState::Expired,
        RecipientState::Held,
    ];

    /// The states of a recipient still in the queue (not final).
    pub const WAITING: [RecipientState; 3] = [RecipientState::Queued, RecipientState::Deferred, RecipientState::Held];

    /// Whether the recipient is still in the queue (queued, deferred or held).
    pub fn is_waiting(self) -> bool {
        Self::WAITING.contains(&self)
    }

    /// A state read back from a store: an unknown word is a corrupt record.
    pub(crate) fn decode(s: &str) -> Result<Self, StoreError> {
        Self::parse(s).ok_or_else(|| StoreError::Corrupt(format!("state {s}")))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecipientState::Queued => "queued",
            RecipientState::Deferred => "deferred",
            RecipientState::Delivered => "delivered",
            RecipientState::Bounced => "bounced",
            RecipientState::Expired => "expired",
            RecipientState::Held => "held",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => RecipientState::Queued,
            "deferred" => RecipientState::Deferred,
            "delivered" => RecipientState::Delivered,
            "bounced" => RecipientState::Bounced,
            "expired" => RecipientState::Expired,
            "held" => RecipientState::Held,
            _ => return None,
        })
    }
}

/// What an event records; its `as_str` word is its `type` in the API and webhooks, and what
/// the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Queued,
    Delivered,
    Deferred,
    Bounced,
    Expired,
    /// A delay report received for a recipient we delivered.
    Delayed,
    Suppressed,
    /// A checklist finding recorded with the message.
    Check,
    ForgedBounce,
    AccountPaused,
    /// The compromised-account detector paused an account (a burst, a new network).
    AccountSuspected,
    Deleted,
    Held,
    Released,
    /// A recipient unsubscribed from a sender domain's mail (RFC 8058 one-click or mailto).
    Unsubscribed,
    /// A recipient reported a message as spam (an ARF feedback report).
    Complained,
    /// A recipient the send refused (API: suppressed, invalid, unknown here...), recorded with
    /// the message that went to the others.
    Rejected,
}

impl EventKind {
    pub const ALL: [EventKind; 17] = [
        EventKind::Queued,
        EventKind::Delivered,
        EventKind::Deferred,
        EventKind::Bounced,
        EventKind::Expired,
        EventKind::Delayed,
        EventKind::Suppressed,
        EventKind::Check,
        EventKind::ForgedBounce,
        EventKind::AccountPaused,
        EventKind::AccountSuspected,
        EventKind::Deleted,
        EventKind::Held,
        EventKind::Released,
        EventKind::Unsubscribed,
        EventKind::Complained,
        EventKind::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Queued => "queued",
            EventKind::Delivered => "delivered",
            EventKind::Deferred => "deferred",
            EventKind::Bounced => "bounced",
            EventKind::Expired => "expired",
            EventKind::Delayed => "delayed",
            EventKind::Suppressed => "suppressed",
            EventKind::Check => "check",
            EventKind::ForgedBounce => "forged_bounce",
            EventKind::AccountPaused => "account_paused",
            EventKind::AccountSuspected => "account_suspected",
            EventKind::Deleted => "deleted",
            EventKind::Held => "held",
            EventKind::Released => "released",
            EventKind::Unsubscribed => "unsubscribed",
            EventKind::Complained => "complained",
            EventKind::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The event a recipient's new state is recorded as.
impl From<RecipientState> for EventKind {
    fn from(state: RecipientState) -> EventKind {
        match state {
            RecipientState::Queued => EventKind::Queued,
            RecipientState::Deferred => EventKind::Deferred,
            RecipientState::Delivered => EventKind::Delivered,
            RecipientState::Bounced => EventKind::Bounced,
            RecipientState::Expired => EventKind::Expired,
            RecipientState::Held => EventKind::Held,
        }
    }
}

/// The door a message came in by; stored (in the origin's JSON), logged and shown as its
/// `as_str` word.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The MX listener.
    #[default]
    Smtp,
    /// The submission listener.
    Submission,
    /// The `sendmail` program of this host.
    Sendmail,
    /// The HTTP API.
    Api,
    /// A delivery status notification of our own.
    Dsn,
    /// A report of our own for other domains' postmasters (TLS-RPT, RFC 8460).
    Report,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Smtp => "smtp",
            Via::Submission => "submission",
            Via::Sendmail => "sendmail",
            Via::Api => "api",
            Via::Dsn => "dsn",
            Via::Report => "report",
        }
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a message came from, kept with it for logs, Received headers and events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub via: Via,
    pub client_ip: String,
    pub helo: String,
    pub auth_user: Option<String>,
    pub tls: bool,
    /// API: the caller's tags and metadata, returned with events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// API sandbox mode: the message was checked and recorded, its events carry
    /// `sandbox: true`, and its recipients are not stored, so nothing delivers it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sandbox: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Where a recipient goes, decided when it was accepted: what the scheduler does with it.
/// Each variant belongs to one transport (`transport`); the store keeps it in typed columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Delivered by MX to the recipient's own address.
    Remote,
    /// A local alias that points elsewhere: delivered by MX to this address instead.
    Forward(String),
    /// Delivered into this local mailbox (its key, after alias expansion).
    Mailbox(String),
    /// Mail to one of our signed return paths: a bounce about this message of ours, and about
    /// this recipient of it when the message had one (None: several; the bounce names them).
    /// Read by `feedback`, never delivered.
    BounceOf { queue_id: MessageId, rid: Option<RecipientId> },
    /// Null-sender mail to this local mailbox: read as a possible bounce first, and delivered
    /// into the mailbox when it is not a bounce about our mail (or `bounce.keep_in_mailbox`).
    NullSenderTo(String),
    /// Mail to one of our report addresses: an RFC 8058 unsubscribe mailto
    /// (`unsubscribe+TOKEN@...`) or a complaint feedback-loop address; the recipient address
    /// says which. Read by `feedback`, never delivered.
    Report,
}

impl Destination {
    /// The transport that handles a recipient going here.
    pub fn transport(&self) -> Transport {
        match self {
            Destination::Remote | Destination::Forward(_) => Transport::Remote,
            Destination::Mailbox(_) => Transport::Local,
            Destination::BounceOf { .. } | Destination::NullSenderTo(_) | Destination::Report => Transport::Feedback,
        }
    }

    /// The local mailbox this destination delivers into, if any.
    pub fn mailbox(&self) -> Option<&str> {
        match self {
            Destination::Mailbox(key) | Destination::NullSenderTo(key) => Some(key),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewRecipient {
    /// The address as given at RCPT (normalised).
    pub address: String,
    pub orcpt: Option<String>,
    /// RFC 3461 NOTIFY, None when absent.
    pub notify: Option<Notify>,
    /// Where it goes (and so which transport delivers it).
    pub destination: Destination,
}

impl NewRecipient {
    pub fn transport(&self) -> Transport {
        self.destination.transport()
    }
}

/// A recipient an API send refused: its `rejected` event carries the refusal's status and
/// reply text (and, through the reason table, the advice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRcpt {
    pub address: String,
    pub status: EnhancedStatus,
    /// The reply the refusal would give over SMTP (`550 5.7.1 <a@b>: suppressed since ...`).
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: MessageId,
    pub reverse_path: ReversePath,
    pub envid: Option<String>,
    /// RFC 3461 RET, None when it was not given.
    pub ret: Option<Ret>,
    pub received_at: Timestamp,
    pub origin: Origin,
    pub body: Vec<u8>,
    /// The Message-ID header of the body: stored with the message (events and the journey
    /// show it as `message_id`) and, for remote recipients, in the sent log.
    pub header_message_id: Option<String>,
    pub recipients: Vec<NewRecipient>,
    /// For a DSN: the recipients of another message it reports on. The insert fails with
    /// `StoreError::AlreadyReported` (and stores nothing) if any of them was reported already,
    /// so concurrent workers never send the same report twice.
    pub reports: Vec<(RecipientId, ReportMark)>,
    /// Findings recorded as `check` events with the message (recipient, text).
    pub notes: Vec<(Option<String>, String)>,
    /// Recipients the send refused, recorded as `rejected` events with the message.
    pub rejected: Vec<RejectedRcpt>,
    /// An API request's idempotency record, committed with the message or not at all. The
    /// insert fails with `StoreError::IdempotencyKeyTaken` (and stores nothing) when the same
    /// (API key, Idempotency-Key) has a record that has not expired.
    pub idempotency: Option<IdempotencyRecord>,
}

/// What an `Idempotency-Key` of an API key made: the request's fingerprint and the response
/// to replay to a retry, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The API key's id (not its secret: a rotated key keeps its records).
    pub api_key: String,
    /// The `Idempotency-Key` header's value.
    pub key: String,
    /// Hex SHA-256 of the request body.
    pub request_hash: String,
    /// The queue id of the message the request made.
    pub message_id: MessageId,
    /// The response's HTTP status and JSON body.
    pub status: u16,
    pub response: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A bounce received for a recipient we delivered.
#[derive(Debug, Clone)]
pub struct Feedback {
    pub recipient: RecipientId,
    pub message: MessageId,
    pub address: String,
    /// True for a delay report (only an event is added).
    pub delay: bool,
    pub status: Option<EnhancedStatus>,
    pub detail: String,
    pub remote: Option<String>,
}

/// Which report a DSN gave for a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportMark {
    /// The final report: failure (or success when asked for).
    Final,
    /// The one delay warning.
    Delay,
}

/// What the DSN logic needs to know about a message after an attempt.
#[derive(Debug, Clone)]
pub struct ReportFacts {
    pub id: MessageId,
    pub reverse_path: ReversePath,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    pub received_at: Timestamp,
    pub origin_via: Via,
    pub recipients: Vec<RecipientFacts>,
}

#[derive(Debug, Clone)]
pub struct RecipientFacts {
    pub id: RecipientId,
    pub address: String,
    pub orcpt: Option<String>,
    pub notify: Option<Notify>,
    pub state: RecipientState,
    pub attempts: u32,
    pub status: Option<EnhancedStatus>,
    pub detail: Option<String>,
    pub reply_code: Option<u16>,
    pub remote_mta: Option<String>,
    pub updated_at: Timestamp,
    pub final_reported: bool,
    pub delay_reported: bool,
}

/// An entry of the suppression list. An address may have several, one per `domain`: a global
/// entry refuses the address at RCPT for everyone, a sender-domain entry (an unsubscribe) only
/// for mail from its `domain`; each is seen and removed only within its (API) scope.
#[derive(Debug, Clone, Serialize)]
pub struct Suppression {
    pub address: String,
    pub reason: String,
    pub status: Option<String>,
    pub detail: Option<String>,
    pub message_id: Option<String>,
    pub created_at: String,
    /// The sender domain of the entry (whose mail hard-bounced or was unsubscribed from), or
    /// the domain of the API key that added it: which scoped keys see it. None: seen and
    /// removed only by admins (and the CLI).
    pub domain: Option<Domain>,
    /// Whom the entry refuses the address for.
    pub scope: SuppressionScope,
}

/// What `GET /api/v1/messages` searches for: every condition given must hold; newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageSearch {
    /// A recipient of the message is in this state.
    pub state: Option<RecipientState>,
    /// A recipient of the message has this address (compared lower-cased; with `state`, the
    /// same recipient).
    pub recipient: Option<String>,
    /// The message was sent with this tag.
    pub tag: Option<String>,
    /// Received at or after.
    pub since: Option<Timestamp>,
    /// The cursor: only messages before this one (received_at, id) in the order.
    pub before: Option<(Timestamp, MessageId)>,
    pub limit: usize,
}

/// A message found by `search_messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageHit {
    /// The queue id.
    pub id: MessageId,
    /// The Message-ID header (None for messages stored before it was kept).
    pub message_id: Option<String>,
    pub reverse_path: String,
    pub received_at: String,
    /// The stored time (ms), for the cursor.
    #[serde(skip)]
    pub received_ms: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metadata: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_false")]
    pub sandbox: bool,
}

impl MessageHit {
    /// From a row's columns: id, reverse path, received_at (ms), origin (JSON), Message-ID.
    pub(crate) fn of(
        id: String,
        reverse_path: String,
        received_ms: i64,
        origin: Option<&str>,
        message_id: Option<String>,
    ) -> Result<Self, StoreError> {
        let origin = codec::origin(origin)?.unwrap_or_default();
        Ok(MessageHit {
            id: MessageId(id),
            message_id,
            reverse_path,
            received_at: Timestamp(received_ms).iso8601(),
            received_ms,
            tags: origin.tags,
            metadata: origin.metadata,
            sandbox: origin.sandbox,
        })
    }
}

/// Where a page of the suppression list ended (newest first): the last entry's time, address
/// and domain, the list's order. The API hands it out as an opaque `next` cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionCursor {
    /// Milliseconds (the stored precision; the entry's `created_at` shows seconds).
    pub created_at: i64,
    pub address: String,
    /// The entry's domain, `""` for none.
    pub domain: String,
}

/// Whom a suppression entry refuses an address for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionScope {
    /// Every sender (hard bounces, complaints, entries added by hand).
    Global,
    /// Only mail from the entry's `domain` (an unsubscribe from that sender domain's mail).
    SenderDomain,
}

impl SuppressionScope {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionScope::Global => "global",
            SuppressionScope::SenderDomain => "sender_domain",
        }
    }
}

impl Suppression {
    /// Whether this entry refuses its address for mail from `sender` (None: `<>`): a global
    /// entry always, a sender-domain entry when the sender's domain is its domain.
    pub fn refuses(&self, sender: Option<&Domain>) -> bool {
        match self.scope {
            SuppressionScope::Global => true,
            SuppressionScope::SenderDomain => matches!((sender, &self.domain), (Some(s), Some(d)) if s == d),
        }
    }
}

/// Whose rows a caller sees and changes: everything (admin API keys, the CLI, the daemon), or
/// the rows of some sender domains and their subdomains (an API key made with `--domain`).
/// A message belongs to the domain of its envelope sender (mail from `<>` to nobody's scope);
/// a suppression entry to its `domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Never empty when made by `mailerd apikey create`; an empty list covers nothing.
    Domains(Vec<Domain>),
}

impl Scope {
    /// Whether `domain` is one of the scope's domains or a subdomain of one.
    pub fn covers(&self, domain: &Domain) -> bool {
        match self {
            Scope::All => true,
            Scope::Domains(list) => list.iter().any(|d| is_within(domain.as_str(), d.as_str())),
        }
    }

    /// Whether a message from the envelope sender `reverse_path` (as stored: `local@domain`,
    /// empty for `<>`) is in the scope: by the domain after the last `@`, as the SQL of both
    /// stores reads it.
    pub fn covers_sender(&self, reverse_path: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Domains(_) => sender_domain(reverse_path).is_some_and(|d| self.covers(&d)),
        }
    }

    /// Whether a message from the envelope sender `path` is in the scope (`<>`: only `All`).
    pub fn covers_path(&self, path: &ReversePath) -> bool {
        match (self, path) {
            (Scope::All, _) => true,
            (_, ReversePath::Null) => false,
            (_, ReversePath::Mailbox(m)) => self.covers(m.domain()),
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Scope::All)
    }

    /// The domains as SQL parameters; None for every row.
    pub(crate) fn sql_domains(&self) -> Option<Vec<String>> {
        match self {
            Scope::All => None,
            Scope::Domains(list) => Some(list.iter().map(|d| d.as_str().to_string()).collect()),
        }
    }
}

/// `admin`, or the domains, comma-separated.
impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::All => f.write_str("admin"),
            Scope::Domains(list) => {
                let names: Vec<&str> = list.iter().map(|d| d.as_str()).collect();
                f.write_str(&names.join(", "))
            }
        }
    }
}

/// The domain of a stored envelope sender (`local@domain`; None for `<>`): the text after the
/// last `@` (a quoted local part may hold one), as the SQL of both stores reads it.
pub fn sender_domain(reverse_path: &str) -> Option<Domain> {
    reverse_path.rsplit_once('@').and_then(|(_, d)| Domain::parse(d).ok())
}

/// The domain of an envelope sender (None for `<>`): the scope its message belongs to.
pub fn path_domain(path: &ReversePath) -> Option<Domain> {
    match path {
        ReversePath::Null => None,
        ReversePath::Mailbox(m) => Some(m.domain().clone()),
    }
}

/// `domain` is `parent` or one of its subdomains (both normalised: lower-case A-labels).
fn is_within(domain: &str, parent: &str) -> bool {
    domain == parent || domain.strip_suffix(parent).is_some_and(|head| head.ends_with('.'))
}

/// An API key as stored: the secret itself is never kept, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub hash: String,
    /// What the key may see and change, and the sender domains it may send from (`All`: an
    /// admin key, made with `--admin`, or a key made before keys had to say which).
    pub scope: Scope,
    pub created_at: String,
    /// When a request last presented the key (recorded at most once a minute per key).
    pub last_used_at: Option<Timestamp>,
    /// A sandbox key (`mailerd apikey create --sandbox`): every send of it is a sandbox send,
    /// checked and recorded but never delivered, whatever the request says.
    pub sandbox: bool,
}

impl Scope {
    /// The stored form of a key's scope: (admin, JSON list of domains).
    pub(crate) fn to_stored(&self) -> Result<(bool, String), StoreError> {
        let domains = self.sql_domains();
        let json = serde_json::to_string(&domains.clone().unwrap_or_default())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok((domains.is_none(), json))
    }

    /// A key's scope read back from its stored form.
    pub(crate) fn from_stored(admin: bool, domains: &str) -> Result<Scope, StoreError> {
        if admin {
            return Ok(Scope::All);
        }
        let list: Vec<String> = serde_json::from_str(domains).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        list.iter()
            .map(|d| Domain::parse(d).map_err(|e| StoreError::Corrupt(format!("API key domain {d}: {e}"))))
            .collect::<Result<_, _>>()
            .map(Scope::Domains)
    }
}

/// A domain read back from a store column.
pub(crate) fn stored_domain(text: Option<String>) -> Result<Option<Domain>, StoreError> {
    text.map(|d| Domain::parse(&d).map_err(|e| StoreError::Corrupt(format!("domain {d}: {e}")))).transpose()
}

/// A message template of an API key (`/api/v1/templates`): minijinja sources of the parts a
/// send fills in, stored by name per API key id (another key never sees it; a rotated key
/// keeps it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub api_key: String,
    pub name: String,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An account the hard-bounce breaker paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountPause {
    /// `user:ADDRESS` or `apikey:ID`.
    pub account: String,
    pub detail: String,
    /// The message whose bounce tripped the breaker.
    pub message_id: Option<String>,
    pub paused_at: String,
}

/// An hour since the Unix epoch (UTC): the compromised-account detector's unit of activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hour(pub i64);

impl Hour {
    pub const MS: i64 = 3_600_000;

    pub fn of(t: Timestamp) -> Hour {
        Hour(t.millis().div_euclid(Hour::MS))
    }

    pub fn start(self) -> Timestamp {
        Timestamp(self.0.saturating_mul(Hour::MS))
    }
}

/// An account's messages and distinct recipient domains in one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourCount {
    pub hour: Hour,
    pub messages: u64,
    pub domains: u64,
}

/// Something an account was seen using: a network it logged in from, a From domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seen {
    /// A client address cut to `[account] network_prefix_v4/v6`.
    Network(ipnet::IpNet),
    FromDomain(Domain),
}

/// A `Seen` value and when it was last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenAt {
    pub seen: Seen,
    pub last: Timestamp,
}

/// What the store keeps of an account for the compromised-account detector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountHistory {
    /// Its first message or login, on any node.
    pub first_seen: Option<Timestamp>,
    /// Hours with activity, oldest first.
    pub hours: Vec<HourCount>,
    pub seen: Vec<SeenAt>,
}

/// One account's activity on one node since its last flush: `hours` carry the messages added
/// (summed into the stored hour) and this node's distinct recipient domains (the stored hour
/// keeps the larger count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountActivity {
    pub account: String,
    pub first_seen: Timestamp,
    pub hours: Vec<HourCount>,
    pub seen: Vec<SeenAt>,
}

/// One event of the stream (`GET /api/v1/events`): `event_id` is the cursor; `id` and
/// `message_id` name the message as the send reply does (queue id, Message-ID header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRecord {
    pub event_id: i64,
    pub at: String,
    /// The queue id of the message (empty for an event of no message: `account_suspected`).
    pub id: String,
    /// The message's Message-ID header; None for messages stored before it was kept, and
    /// for events of no message.
    pub message_id: Option<String>,
    pub recipient: Option<String>,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub status: Option<String>,
    pub detail: Option<String>,
    pub remote: Option<String>,
    /// An event of a sandbox send (nothing was delivered); absent for real mail.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sandbox: bool,
    /// The tags and metadata the message was sent with (API), for filtering by the app.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// For `deferred` and `expired` events: which delivery attempt of the recipient this was
    /// (1 = the first), counted from its `deferred`/`expired` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// For `deferred` and `expired` events: when the recipient's first attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_attempt_at: Option<String>,
}

/// One recipient of a message we sent, as the sent log remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEntry {
    pub queue_id: MessageId,
    /// Lower-cased.
    pub recipient: String,
    pub sent_at: Timestamp,
}

/// The sent log's key for a Message-ID header: without angle brackets and spaces, lower-cased
/// (some MTAs change the case when they quote it).
pub fn normalize_header_id(raw: &str) -> String {
    raw.trim().trim_start_matches('<').trim_end_matches('>').trim().to_lowercase()
}

/// A recipient leased to one worker until `lease_until`.
#[derive(Debug, Clone)]
pub struct Claim {
    pub recipient: RecipientId,
    pub message: MessageId,
    pub address: String,
    /// Where it goes, as accepted (of the claimed transport).
    pub destination: Destination,
    pub attempts: u32,
    pub size: u64,
    pub received_at: Timestamp,
    pub reverse_path: ReversePath,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    pub notify: Option<Notify>,
    pub orcpt: Option<String>,
    /// The body, when the store handed it over with the claim (PostgreSQL does so for small
    /// messages, saving a round trip per delivery); otherwise `load_body` reads it.
    pub body: Option<std::sync::Arc<Vec<u8>>>,
}

/// What one delivery attempt came to, as the scheduler records it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub recipient: RecipientId,
    /// The message of the recipient (for the reports that follow an attempt).
    pub message: MessageId,
    pub state: RecipientState,
    /// RFC 3463 status of the outcome.
    pub status: EnhancedStatus,
    pub detail: String,
    pub reply_code: Option<u16>,
    /// `host[ip]:port` of the server that answered.
    pub remote: Option<String>,
    /// When to try again (deferred only).
    pub next_attempt_at: Option<Timestamp>,
    /// Bytes added to a local mailbox (counts against its quota).
    pub mailbox_bytes: Option<(String, u64)>,
    /// The event to record instead of the state's (e.g. `ForgedBounce`).
    pub event: Option<EventKind>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueEntry {
    pub id: MessageId,
    pub reverse_path: String,
    pub size: u64,
    pub received_at: String,
    pub recipients: Vec<RecipientView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecipientView {
    pub address: String,
    pub state: RecipientState,
    pub transport: Transport,
    pub attempts: u32,
    #[serde(serialize_with = "codec::notify_json")]
    pub notify: Option<Notify>,
    pub orcpt: Option<String>,
    pub last_status: Option<String>,
    pub last_detail: Option<String>,
    pub remote_mta: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageDetail {
    #[serde(flatten)]
    pub entry: QueueEntry,
    /// The Message-ID header (None for messages stored before it was kept): `id` is the queue
    /// id and `message_id` the header, as in the send reply and the events.
    pub message_id: Option<String>,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    pub origin: Origin,
    pub events: Vec<EventView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub at: String,
    /// `type`, as in the event stream and webhooks (one vocabulary).
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub recipient: Option<String>,
    pub status: Option<String>,
    pub detail: Option<String>,
    pub remote: Option<String>,
}

// --- the dashboard's queries (aggregated by the store, never loaded event by event) ---

/// Recipients in one state with one last status (the overview's counts and bounce reasons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateStatusCount {
    pub state: RecipientState,
    pub status: Option<String>,
    pub count: u64,
}

/// Recipients that reached a state on one UTC day (by their last update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyCount {
    /// Midnight UTC of the day.
    pub day: Timestamp,
    pub state: RecipientState,
    pub count: u64,
}

/// A destination domain with failing recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainFailures {
    pub domain: String,
    /// Bounced or expired.
    pub failed: u64,
    pub deferred: u64,
}

/// The dashboard overview's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryOverview {
    pub by_state_status: Vec<StateStatusCount>,
    /// Delivered, bounced and expired recipients per day since the requested time.
    pub daily: Vec<DailyCount>,
    /// The domains with the most failed and deferred recipients, most first.
    pub failing_domains: Vec<DomainFailures>,
    /// Complaint reports (`complained` events) since the requested time.
    pub complaints: u64,
}

/// Which recipients the dashboard's queue page lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFilter {
    /// Empty: every state.
    pub states: Vec<RecipientState>,
    /// The recipient domain (lower-case), if any.
    pub domain: Option<String>,
    pub limit: usize,
}

/// One recipient on the queue page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRow {
    pub recipient: RecipientId,
    pub message: MessageId,
    pub reverse_path: String,
    pub address: String,
    pub state: RecipientState,
    pub attempts: u32,
    pub last_status: Option<String>,
    pub last_detail: Option<String>,
    pub updated_at: Timestamp,
}

/// Which recipients a queue operation acts on (`mailerd queue flush|hold|release|delete`):
/// every condition given must hold; each operation adds the states it applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// One message; None: every message.
    pub message: Option<MessageId>,
    /// Only recipients in this state; None: every state the operation applies to.
    pub state: Option<RecipientState>,
    /// Only recipients at this domain (lower-case, as `Domain` spells it).
    pub domain: Option<String>,
}

impl Selection {
    /// Every recipient the operation applies to.
    pub fn all() -> Selection {
        Selection::default()
    }

    /// The recipients of one message.
    pub fn message(id: &MessageId) -> Selection {
        Selection { message: Some(id.clone()), ..Selection::default() }
    }
}

/// The queue as `mailerd status` shows it (feedback recipients, bounces being read, are not
/// counted: they are not mail we send).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSummary {
    /// Recipients queued, deferred and held (every waiting state, zeros included).
    pub by_state: Vec<StateCount>,
    /// The destination domains with the most waiting recipients, most first.
    pub top_domains: Vec<DomainQueue>,
    /// The deferred recipient of the oldest message.
    pub oldest_deferred: Option<OldestDeferred>,
    /// Recipients delivered in the last minute and in the last five minutes (by their last
    /// update; on a shared store, by every node).
    pub delivered_last_minute: u64,
    pub delivered_last_5_minutes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCount {
    pub state: RecipientState,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainQueue {
    pub domain: String,
    pub queued: u64,
    pub deferred: u64,
    pub held: u64,
}

impl DomainQueue {
    /// The domain's recipients in `state` (0 for a state that is not waiting).
    pub fn count(&self, state: RecipientState) -> u64 {
        match state {
            RecipientState::Queued => self.queued,
            RecipientState::Deferred => self.deferred,
            RecipientState::Held => self.held,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OldestDeferred {
    pub message: MessageId,
    pub address: String,
    /// When the message was received (ISO 8601).
    pub received_at: String,
    pub attempts: u32,
    pub last_detail: Option<String>,
}

/// A local mailbox: a login (when it has a password) and a quota account.
#[derive(Debug, Clone)]
pub struct MailboxRecord {
    pub address: String,
    pub password_hash: Option<String>,
    pub quota: Option<u64>,
    pub used_bytes: u64,
    /// When the password was last set (`user add`, `user passwd`; a re-hash keeps it).
    pub password_changed_at: Option<Timestamp>,
}

/// A named SMTP credential of a login (`mailerd user app-password`): only the SHA-256 of its
/// random secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppPassword {
    pub address: String,
    pub name: String,
    #[serde(skip)]
    pub hash: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub last_used_ip: Option<std::net::IpAddr>,
}

/// A TOTP shared secret (RFC 6238): the raw key bytes; its `Debug` does not show them.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(pub Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TotpSecret({} bytes)", self.0.len())
    }
}

/// A login's second factor: its TOTP secret and recovery codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondFactor {
    pub address: String,
    pub secret: TotpSecret,
    pub enabled_at: Timestamp,
    /// The last time step whose code was accepted (a code counts once).
    pub last_step: Option<u64>,
    pub recovery_codes: Vec<RecoveryCode>,
}

/// One recovery code of a second factor: the SHA-256 of the code, and when it was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCode {
    pub hash: String,
    pub used_at: Option<Timestamp>,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Stores a message and its recipients; returns only once both are durable.
    async fn insert_message(&self, msg: NewMessage) -> Result<(), StoreError>;

    /// Stores several messages (an API batch) in one transaction: all of them or none, in one
    /// durable commit. Whatever fails one insert alone (a taken id, a live idempotency key, a
    /// report already made) fails them all, with that error.
    async fn insert_messages(&self, msgs: Vec<NewMessage>) -> Result<(), StoreError>;

    /// Leases up to `limit` due recipients of `transport` to `owner` for `lease`.
    /// A lease that runs out (its worker died) makes the recipient due again.
    async fn claim_due(
        &self,
        transport: Transport,
        now: Timestamp,
        limit: usize,
        lease: Duration,
        owner: &str,
    ) -> Result<Vec<Claim>, StoreError>;

    /// Records attempts for recipients leased to `owner`; others' leases are left alone.
    /// Returns the messages this record settled in its own transaction: every recipient now
    /// delivered and none asking for a success report (NOTIFY=SUCCESS), so there is nothing
    /// to report and the body was released with the record. The caller reads report facts
    /// only for the other messages. Of two callers finishing one message's recipients at
    /// once (two nodes), neither may settle it; the facts read after them then finds it done.
    async fn record_attempts(&self, owner: &str, attempts: Vec<Attempt>) -> Result<Vec<MessageId>, StoreError>;

    /// Extends to `until` the leases `owner` still holds among `ids` (a node renews what it is
    /// working on); returns how many it still held. A lease already taken over is not touched.
    async fn renew_leases(&self, owner: &str, ids: &[RecipientId], until: Timestamp) -> Result<usize, StoreError>;

    /// The cluster-only operations when other processes share this store (PostgreSQL): then
    /// limits that must hold across the cluster (connections per destination) and the secrets
    /// all nodes use are kept in it. None for a store of one process (SQLite), whose node keeps
    /// its own.
    fn cluster(self: Arc<Self>) -> Option<Arc<dyn ClusterStore>>;

    async fn load_body(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError>;

    /// The record of `key` for the API key `api_key`, unless it expired by `now`.
    async fn idempotency(
        &self,
        api_key: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Messages that still have waiting recipients (queued, deferred or held), oldest first.
    async fn queue_list(&self, limit: usize) -> Result<Vec<QueueEntry>, StoreError>;

    async fn message_detail(&self, id: &MessageId) -> Result<Option<MessageDetail>, StoreError>;

    /// Creates or updates a mailbox login; `quota` None keeps the default.
    async fn upsert_mailbox(
        &self,
        address: &str,
        password_hash: Option<String>,
        quota: Option<u64>,
    ) -> Result<(), StoreError>;

    async fn mailbox(&self, address: &str) -> Result<Option<MailboxRecord>, StoreError>;

    /// Deletes a login and its mailbox record, with its app passwords, second factor and
    /// recovery codes, in one transaction; returns whether it existed. Mail already delivered
    /// stays in its Maildir.
    async fn delete_mailbox(&self, address: &str) -> Result<bool, StoreError>;

    // --- account protection ---

    /// Replaces the password hash of `address` with `new_hash` if it is still `old_hash` (a
    /// re-hash with new argon2 parameters after a login: a `passwd` that ran meanwhile wins);
    /// the password's age is kept. Returns whether it replaced it.
    async fn rehash_password(&self, address: &str, old_hash: &str, new_hash: &str) -> Result<bool, StoreError>;

    /// Stores an app password; false when the login has one of that name already.
    async fn add_app_password(&self, app: AppPassword) -> Result<bool, StoreError>;

    /// The app passwords of a login, by name.
    async fn app_passwords(&self, address: &str) -> Result<Vec<AppPassword>, StoreError>;

    /// The app password of `address` whose secret's SHA-256 is `hash`.
    async fn app_password(&self, address: &str, hash: &str) -> Result<Option<AppPassword>, StoreError>;

    /// Deletes an app password; returns whether it existed. It stops working at once.
    async fn revoke_app_password(&self, address: &str, name: &str) -> Result<bool, StoreError>;

    /// Records a use of an app password at `at` from `ip`.
    async fn touch_app_password(
        &self,
        address: &str,
        name: &str,
        at: Timestamp,
        ip: std::net::IpAddr,
    ) -> Result<(), StoreError>;

    /// The second factor of a login, with its recovery codes.
    async fn second_factor(&self, address: &str) -> Result<Option<SecondFactor>, StoreError>;

    /// Enables (or replaces) a login's second factor: the secret, and the recovery codes' hashes
    /// (earlier codes are deleted).
    async fn enable_second_factor(
        &self,
        address: &str,
        secret: &TotpSecret,
        recovery_hashes: &[String],
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Removes a login's second factor and its recovery codes; returns whether it had one.
    async fn disable_second_factor(&self, address: &str) -> Result<bool, StoreError>;

    /// Records that the code of time step `step` was used, if no code of this or a later step
    /// was: false means a replay (one statement, so two nodes cannot both accept it).
    async fn use_totp_step(&self, address: &str, step: u64) -> Result<bool, StoreError>;

    /// Marks an unused recovery code used; false when there is none such (unknown or used).
    async fn use_recovery_code(&self, address: &str, hash: &str, at: Timestamp) -> Result<bool, StoreError>;

    // --- reports (DSNs) ---

    /// The state of a message and its recipients, for deciding which report to send.
    async fn report_facts(&self, id: &MessageId) -> Result<Option<ReportFacts>, StoreError>;

    /// The report facts of several messages (those that exist), in one go where the store can
    /// (PostgreSQL reads those of concurrent callers in one statement).
    async fn report_facts_of(&self, ids: &[MessageId]) -> Result<Vec<ReportFacts>, StoreError> {
        let mut facts = Vec::with_capacity(ids.len());
        for id in ids {
            facts.extend(self.report_facts(id).await?);
        }
        Ok(facts)
    }

    /// Drops the body of a message whose recipients are all final (history stays).
    async fn release_body(&self, id: &MessageId) -> Result<(), StoreError>;

    // --- suppression list ---

    /// Adds (or refreshes) an entry; an address has at most one entry per `domain`. A
    /// suppression caused by a message is also a `suppressed` event of that message. Returns
    /// whether the list changed: an entry identical to the one stored (reason, status, detail,
    /// message) changes nothing and records no event, so two workers reporting one bounce at
    /// once record it once.
    async fn suppress(&self, entry: Suppression) -> Result<bool, StoreError> {
        let detail = format!("suppressed after a hard bounce ({})", entry.reason);
        self.suppress_as(entry, EventKind::Suppressed, detail).await
    }

    /// `suppress`, recording the change as an `event` of the entry's message with `detail`
    /// (`unsubscribed`, `complained`) instead of `suppressed`; an entry never narrows a
    /// global entry of the same address and domain to a sender-domain one.
    async fn suppress_as(&self, entry: Suppression, event: EventKind, detail: String) -> Result<bool, StoreError>;

    /// Removes the entries of an address within `scope` (`Scope::All`: every entry of it);
    /// returns whether there was one.
    async fn unsuppress(&self, address: &str, scope: &Scope) -> Result<bool, StoreError>;

    /// An entry of the address, whatever its scope (checks and tools; the RCPT check is
    /// `suppression_for`); the oldest when there are several.
    async fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError>;

    /// The entry that refuses the address for mail from `sender`'s domain (None: `<>`): a
    /// global entry, or a sender-domain entry of that domain (`Suppression::refuses`); the
    /// oldest when there are several. The RCPT check.
    async fn suppression_for(&self, address: &str, sender: Option<&Domain>) -> Result<Option<Suppression>, StoreError>;

    /// Every entry of each of `addresses`, whatever its scope, oldest first: one read for
    /// many recipients (an API batch), which the caller filters with `Suppression::refuses`
    /// as `suppression_for` does.
    async fn suppressions_of(&self, addresses: Vec<String>) -> Result<Vec<Suppression>, StoreError>;

    /// Stores a template (a new one, or new sources for the key's template of that name,
    /// keeping its `created_at`).
    async fn put_template(&self, template: Template) -> Result<(), StoreError>;

    /// The API key's template of that name.
    async fn template(&self, api_key: &str, name: &str) -> Result<Option<Template>, StoreError>;

    /// The API key's templates by name, after the name `after` (the cursor), at most `limit`.
    async fn templates(&self, api_key: &str, after: Option<&str>, limit: usize) -> Result<Vec<Template>, StoreError>;

    /// Deletes the API key's template of that name; returns whether there was one.
    async fn delete_template(&self, api_key: &str, name: &str) -> Result<bool, StoreError>;

    /// The entries of an address within `scope`, oldest first.
    async fn suppression_entries(&self, address: &str, scope: &Scope) -> Result<Vec<Suppression>, StoreError>;

    /// Entries within `scope`, newest first.
    async fn suppressions(&self, scope: &Scope, limit: usize) -> Result<Vec<Suppression>, StoreError>;
    /// Messages sent from within `scope` that match `q`, newest first (received_at, then id).
    async fn search_messages(&self, scope: &Scope, q: &MessageSearch) -> Result<Vec<MessageHit>, StoreError>;
    /// One page of the list within `scope`, newest first, after `after` (from the start when
    /// None), and the cursor of its last entry (None when the page is empty).
    async fn suppressions_after(
        &self,
        scope: &Scope,
        limit: usize,
        after: Option<&SuppressionCursor>,
    ) -> Result<(Vec<Suppression>, Option<SuppressionCursor>), StoreError>;

    // --- sent log ---

    /// Who a message with this Message-ID header was sent to from here (remote recipients),
    /// whatever has become of the message since. Empty when we never sent it.
    async fn sent_log(&self, header_id: &str) -> Result<Vec<SentEntry>, StoreError>;

    // --- queue operations ---

    /// Makes the queued and deferred recipients of a message due now; returns how many.
    async fn retry_now(&self, id: &MessageId) -> Result<usize, StoreError> {
        self.flush(&Selection::message(id), Timestamp::now()).await
    }

    /// Makes queued and deferred recipients matching `selection` due at `now` (`queue flush`,
    /// `queue retry`); recipients being delivered (leased) are left alone. Returns how many.
    async fn flush(&self, selection: &Selection, now: Timestamp) -> Result<usize, StoreError>;

    /// Puts queued and deferred recipients matching `selection` on hold (state `held`, a `held`
    /// event each); a recipient being delivered now (an unexpired lease) is left alone, its
    /// outcome is recorded as usual. Returns how many were held.
    async fn hold(&self, selection: &Selection, now: Timestamp) -> Result<usize, StoreError>;

    /// Releases held recipients matching `selection`: queued again (deferred when they were
    /// tried before), due at `now`, a `released` event each. Returns how many.
    async fn release(&self, selection: &Selection, now: Timestamp) -> Result<usize, StoreError>;

    /// Deletes the whole messages that have a waiting (queued, deferred or held) recipient
    /// matching `selection`, with a `deleted` event each, as `delete_message` does. Returns
    /// how many messages.
    async fn delete_messages(&self, selection: &Selection, now: Timestamp) -> Result<usize, StoreError>;

    /// The queue by state and by top domains, the oldest deferred message and the recent
    /// delivery rate, as of `now` (`mailerd status`).
    async fn queue_summary(&self, now: Timestamp, top: usize) -> Result<QueueSummary, StoreError>;

    /// The deferred recipient of the oldest message (what `queue_summary` reports, alone: the
    /// age gauge of `/metrics`).
    async fn oldest_deferred(&self) -> Result<Option<OldestDeferred>, StoreError>;

    /// Deletes a message and its recipients; returns whether it existed.
    async fn delete_message(&self, id: &MessageId) -> Result<bool, StoreError>;

    /// Records a bounce that came back after delivery: a delivered recipient becomes bounced
    /// (with the bounce's status and words); a delay report only adds an event.
    /// Returns whether the recipient's state changed.
    async fn record_feedback(&self, feedback: Feedback) -> Result<bool, StoreError>;

    // --- HTTP API ---

    /// The last event id sent to a webhook endpoint (0: none yet).
    async fn webhook_cursor(&self, endpoint: &str) -> Result<i64, StoreError>;

    /// Records that `endpoint` has been sent every event up to `last_event`.
    async fn set_webhook_cursor(&self, endpoint: &str, last_event: i64) -> Result<(), StoreError>;

    /// Pauses an account (the breaker tripped); with `message_id`, an `account_paused` event is
    /// added to that message. Returns false when it was paused already.
    async fn pause_account(&self, pause: AccountPause) -> Result<bool, StoreError>;

    async fn account_pause(&self, account: &str) -> Result<Option<AccountPause>, StoreError>;

    /// The pause of the first of `accounts` that is paused (a login and its sender domain at
    /// RCPT): backends answer it in one read.
    async fn first_pause(&self, accounts: Vec<String>) -> Result<Option<AccountPause>, StoreError>;

    /// Lifts a pause; returns whether there was one.
    async fn resume_account(&self, account: &str) -> Result<bool, StoreError>;

    async fn paused_accounts(&self) -> Result<Vec<AccountPause>, StoreError>;

    /// Pauses an account the compromised-account detector suspects, with an
    /// `account_suspected` event (of `message_id`, or of no message: an empty id). Returns false
    /// when it was paused already (no event then).
    async fn suspect_account(&self, pause: AccountPause) -> Result<bool, StoreError>;

    /// What the detector needs of an account: first seen, hours from `since`, seen values.
    async fn account_history(&self, account: &str, since: Hour) -> Result<AccountHistory, StoreError>;

    /// Adds a batch of accounts' activity (one transaction) and forgets their hours before
    /// `forget_before`.
    async fn record_account_activity(&self, batch: Vec<AccountActivity>, forget_before: Hour)
    -> Result<(), StoreError>;

    /// Recipients still to deliver (queued or deferred), for `/metrics`.
    async fn queue_depth(&self) -> Result<u64, StoreError>;

    /// Messages with a recipient still waiting: queued, deferred or held (what `queue_list`
    /// lists, uncapped).
    async fn queued_messages(&self) -> Result<u64, StoreError>;

    /// Stores an API key (only its hash).
    async fn create_api_key(&self, key: ApiKey) -> Result<(), StoreError>;

    /// The API key whose SHA-256 is `hash` (hex).
    async fn api_key(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;

    /// Every API key, oldest first.
    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;

    /// Deletes a key; returns whether it existed. Its secret stops working at once.
    async fn revoke_api_key(&self, id: &str) -> Result<bool, StoreError>;

    /// Gives a key a new secret (its SHA-256 `hash`), keeping id, name and scope; the old
    /// secret stops working at once. Returns whether the key exists.
    async fn rotate_api_key(&self, id: &str, hash: &str) -> Result<bool, StoreError>;

    /// Records that a key was used at `at`.
    async fn touch_api_key(&self, id: &str, at: Timestamp) -> Result<(), StoreError>;

    /// Events after the cursor `after` (an event id), oldest first, optionally of one kind,
    /// of messages within `scope` (filtered by the query, so a page is full whenever enough
    /// events of the scope follow the cursor).
    async fn events_after(
        &self,
        after: i64,
        kind: Option<EventKind>,
        scope: &Scope,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError>;

    // --- outbound TLS policies ---

    /// The cached MTA-STS policy of `domain`, expired or not (the caller decides).
    async fn sts_policy(&self, domain: &str) -> Result<Option<CachedPolicy>, StoreError>;

    /// Stores (or replaces) the cached MTA-STS policy of its domain.
    async fn put_sts_policy(&self, policy: &CachedPolicy) -> Result<(), StoreError>;

    /// Records the TLS result of the last delivery session to a domain (replacing the one before).
    async fn record_tls_result(&self, result: &LastResult) -> Result<(), StoreError>;

    /// The last TLS result recorded for `domain`.
    async fn tls_result(&self, domain: &str) -> Result<Option<LastResult>, StoreError>;

    // --- the learning filter for mailer-daemon mail (`feedback::learn`) ---

    /// Records, trains or relabels one sample as `learner::step` decides (a sample already
    /// stored keeps its own tokens), then prunes the model to `limits`; all in one transaction.
    async fn learn(
        &self,
        sample: learner::Sample,
        limits: learner::LearnerLimits,
    ) -> Result<learner::Learned, StoreError>;

    /// The sample of a received bounce (our queue id of it), if one was recorded and kept.
    async fn learner_sample(&self, bounce: &MessageId) -> Result<Option<learner::Sample>, StoreError>;

    /// The trained totals, the counts of those of `tokens` the model knows, and its size.
    async fn learner_model(&self, tokens: &[String]) -> Result<learner::Model, StoreError>;
    /// Adds `count.count` sessions to the aggregate row of its day, domain, policy, result and
    /// path (RFC 8460 reporting), creating it; the row keeps the latest policy body.
    async fn count_tls_sessions(&self, count: &TlsCount) -> Result<(), StoreError>;

    /// The (day, policy domain) pairs holding counts of a day before `before`, oldest first.
    async fn tls_report_due(&self, before: Day) -> Result<Vec<(Day, String)>, StoreError>;

    /// Reads and deletes, in one statement, the counts of `domain` on `day`: of several
    /// nodes, one gets them, and the others get none (so one report is sent).
    async fn take_tls_counts(&self, day: Day, domain: &str) -> Result<Vec<TlsCount>, StoreError>;

    // --- dashboard ---

    /// Counts by state and status, outcomes per day since `since`, and the `top` failing
    /// domains: aggregated with indexed queries, whatever the number of events.
    async fn delivery_overview(&self, since: Timestamp, top: usize) -> Result<DeliveryOverview, StoreError>;

    /// Recipients matching `filter`, most recently changed first.
    async fn queue_search(&self, filter: QueueFilter) -> Result<Vec<QueueRow>, StoreError>;

    /// Suppressed addresses containing `query` (case-insensitive), newest first.
    async fn search_suppressions(&self, query: &str, limit: usize) -> Result<Vec<Suppression>, StoreError>;
}

/// What only a store shared by several nodes does (PostgreSQL): connection slots leased across
/// nodes and the secrets every node uses. A store of one process does not implement it (its
/// `Store::cluster` is None): the node's semaphore is its connection limit and its key file
/// its secret.
#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// A secret all nodes use, stored as `candidate` if none is yet (the first caller wins,
    /// and every caller gets the winner's); with no candidate, only read: `None` when none is
    /// stored yet.
    async fn cluster_secret(&self, name: &str, candidate: Option<&[u8]>) -> Result<Option<Vec<u8>>, StoreError>;

    /// Takes a free one of the `limit` connection slots of `destination` for `owner` until
    /// `until` (a slot whose lease ended before `now` is free); None when all are taken.
    async fn acquire_slot(
        &self,
        destination: &str,
        limit: u32,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<u32>, StoreError>;

    /// Gives back a slot `owner` holds.
    async fn release_slot(&self, destination: &str, slot: u32, owner: &str) -> Result<(), StoreError>;

    /// Extends to `until` those of `slots` (destination, slot) that `owner` still holds;
    /// returns the ones it did (a slot whose lease ran out and was taken is not among them).
    async fn renew_slots(
        &self,
        owner: &str,
        slots: &[(String, u32)],
        until: Timestamp,
    ) -> Result<Vec<(String, u32)>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(domains: &[&str]) -> Scope {
        Scope::Domains(domains.iter().map(|d| Domain::parse(d).unwrap()).collect())
    }

    #[test]
    fn queue_ids_of_one_millisecond_differ() {
        let now = Timestamp(1_700_000_000_123);
        let ids: std::collections::HashSet<MessageId> = (0..200_000).map(|_| MessageId::generate(now)).collect();
        assert_eq!(ids.len(), 200_000, "one thread repeats no suffix");
        let other = std::thread::spawn(move || MessageId::generate(now)).join().unwrap();
        assert!(!ids.contains(&other), "another thread starts at another random point");
        let id = MessageId::generate(now);
        assert_eq!(id.0.len(), 20);
        assert!(id.0.starts_with("018BCFE5687B"), "{id}");
        assert!(id.0.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase()));
    }

    #[test]
    fn event_kinds_are_the_webhook_types() {
        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, crate::config::WEBHOOK_EVENTS);
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(EventKind::parse("nope"), None);
    }

    #[test]
    fn a_scope_covers_its_domains_and_their_subdomains_only() {
        let s = scope(&["a.example"]);
        assert!(s.covers_sender("x@a.example") && s.covers_sender("x@mail.a.example"));
        assert!(s.covers_sender("\"q@b.example\"@a.example"), "the domain is after the last @");
        assert!(!s.covers_sender("x@ba.example") && !s.covers_sender("x@a.example.net"));
        assert!(!s.covers_sender("x@b.example") && !s.covers_sender(""), "<> is nobody's");
        assert!(!scope(&[]).covers_sender("x@a.example"), "an empty list covers nothing");
        assert!(Scope::All.covers_sender("") && Scope::All.covers(&Domain::parse("b.example").unwrap()));
        assert!(scope(&["b.example", "a.example"]).covers(&Domain::parse("A.Example").unwrap()));
    }
}
