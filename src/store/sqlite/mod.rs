//! SQLite backend of `Store`: one writer thread with group commit, a few reader connections.
//!
//! Durability: WAL journal with `synchronous = FULL`, so a COMMIT returns after the WAL is
//! fsync'd. All writes go through one thread that drains every request waiting on its
//! channel into one transaction (`writes::run_batch`; a savepoint per request only after a
//! failure), so N concurrent sessions share one fsync. Reads use separate connections
//! (`READERS`; WAL readers never block). Other processes (the CLI, a second daemon) may open
//! the same file: claims are leases.
//! Must not: hold the writer across an await, or answer a write before its COMMIT returned.

mod counts;
mod learner;
mod reads;
mod writes;
mod wal_writes;

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{
    Attempt, Claim, ClusterStore, IdempotencyRecord, MailboxRecord, MessageDetail, MessageId, NewMessage, QueueEntry,
    QueueSummary, RecipientId, ReportFacts, Scope, Selection, SentEntry, Store, StoreError, Suppression, Transport,
};
use crate::smtp::address::Domain;
use crate::store::EventKind;
use crate::store::learner as learner_types;
use crate::time::Timestamp;

const SCHEMA_VERSION: i32 = 19;
/// Upper bound of requests folded into one transaction.
const MAX_BATCH: usize = 512;

/// WAL frames after which the checkpoint thread is asked to copy them into the database file
/// (where SQLite's automatic checkpoint would run, in the committing thread).
const CHECKPOINT_FRAMES: i32 = 1000;
/// WAL frames after which the writer checkpoints itself: the checkpoint thread fell behind.
const CHECKPOINT_FRAMES_MAX: i32 = 16_384;

thread_local! {
    /// The frames in the WAL after this thread's last commit (set by `count_frames`; each
    /// writer is a thread of its own, and SQLite's WAL hook takes no state of ours).
    static WAL_FRAMES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// The writer's WAL hook (it replaces SQLite's automatic checkpoint): only counts.
fn count_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|f| f.set(frames));
    Ok(())
}

/// A write request for the writer thread.
enum Write {
    /// One or more messages in one savepoint: all or none. The messages go back with the
    /// answer, to be freed on the caller's thread (where they were allocated) rather than by
    /// the writer, the one thread every write waits for.
    Insert(Vec<NewMessage>, oneshot::Sender<(Result<(), StoreError>, Vec<NewMessage>)>),
    Claim {
        transport: Transport,
        now: Timestamp,
        limit: usize,
        lease_until: Timestamp,
        owner: String,
        reply: oneshot::Sender<Result<Vec<Claim>, StoreError>>,
    },
    Record(String, Vec<Attempt>, oneshot::Sender<Result<Vec<MessageId>, StoreError>>),
    Mailbox {
        address: String,
        password_hash: Option<String>,
        quota: Option<u64>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Small one-statement writes: suppression, release, retry, delete.
    Simple(Simple, oneshot::Sender<Result<usize, StoreError>>),
    /// One sample of the learning filter, and the model's bounds.
    Learn(
        Box<learner_types::Sample>,
        learner_types::LearnerLimits,
        oneshot::Sender<Result<learner_types::Learned, StoreError>>,
    ),
    /// Read and delete a day's TLS counts of a domain.
    TakeTlsCounts(crate::tlspolicy::Day, String, oneshot::Sender<Result<Vec<crate::tlspolicy::TlsCount>, StoreError>>),
}

impl Write {
    /// Whether this request counts its own changes to the running counts (`counts.rs`) instead
    /// of leaving them to the triggers: inserts of messages and records of attempts.
    fn counts_itself(&self) -> bool {
        matches!(self, Write::Insert(..) | Write::Record(..))
    }
}

enum Simple {
    /// An entry, the kind of event its change is, and that event's detail.
    Suppress(Suppression, EventKind, String),
    /// An address and the scope (`reads::in_scope`'s parameter) of the entries to remove.
    Unsuppress(String, Option<String>),
    ReleaseBody(MessageId),
    ApiKey(super::ApiKey),
    RevokeKey(String),
    /// A key's id and the hash of its new secret.
    RotateKey(String, String),
    TouchKey(String, Timestamp),
    PutTemplate(super::Template),
    /// API key id, name.
    DeleteTemplate(String, String),
    WebhookCursor(String, i64),
    Pause(super::AccountPause),
    /// A pause of the compromised-account detector, with its `account_suspected` event.
    Suspect(super::AccountPause),
    /// Accounts' activity, and the hour before which their hours are forgotten.
    AccountActivity(Vec<super::AccountActivity>, super::Hour),
    Resume(String),
    RenewLeases(String, Vec<RecipientId>, Timestamp),
    Delete(MessageId),
    /// Queue operations on a selection of recipients, at a time.
    Flush(Selection, Timestamp),
    Hold(Selection, Timestamp),
    Release(Selection, Timestamp),
    DeleteAll(Selection, Timestamp),
    Feedback(super::Feedback),
    StsPolicy(crate::tlspolicy::CachedPolicy),
    TlsResult(crate::tlspolicy::LastResult),
    TlsCount(crate::tlspolicy::TlsCount),
    /// Address, old hash, new hash.
    Rehash(String, String, String),
    AddAppPassword(super::AppPassword),
    /// Address, name.
    RevokeAppPassword(String, String),
    TouchAppPassword(String, String, Timestamp, std::net::IpAddr),
    EnableSecondFactor(String, super::TotpSecret, Vec<String>, Timestamp),
    DisableSecondFactor(String),
    DeleteMailbox(String),
    UseTotpStep(String, u64),
    UseRecoveryCode(String, String, Timestamp),
}

pub struct SqliteStore {
    writer: Mutex<mpsc::Sender<Write>>,
    readers: Arc<Readers>,
}

/// Reader connections: WAL lets each read at once, so concurrent reads (a suppression lookup
/// per RCPT of every session) do not queue behind one connection's lock.
struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: std::sync::atomic::AtomicUsize,
}

/// Reader connections per store: as many reads at once as the blocking pool will run cheaply.
const READERS: usize = 4;

impl Readers {
    fn open(path: &Path) -> Result<Readers, StoreError> {
        let conns = (0..READERS).map(|_| open_connection(path).map(Mutex::new)).collect::<Result<_, _>>()?;
        Ok(Readers { conns, next: std::sync::atomic::AtomicUsize::new(0) })
    }

    /// A free connection, if there is one now.
    fn free(&self) -> Option<std::sync::MutexGuard<'_, Connection>> {
        self.conns.iter().find_map(|conn| conn.try_lock().ok())
    }

    /// A free connection if there is one, else the next in turn (waiting for it).
    fn get(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        if let Some(c) = self.free() {
            return Ok(c);
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.conns.len();
        self.conns[i].lock().map_err(|_| StoreError::Closed)
    }
}

/// Bodies up to this size are loaded on the calling task (`load_body`).
const INLINE_BODY: i64 = 64 * 1024;

/// Prepared statements kept per connection (the store has about 130 distinct ones).
const STATEMENT_CACHE: usize = 256;

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    configure(Connection::open(path)?)
}

/// The settings of every connection; `wal_writes`' connections need its `synchronous = FULL`.
fn configure(conn: Connection) -> Result<Connection, StoreError> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Statement journals (a statement with triggers, a SAVEPOINT per request after a failure)
    // and sorters in memory: on disk, every batch wrote its changed pages a second time to a
    // temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Every statement the store runs stays prepared: rusqlite keeps 16 by default, fewer than
    // one group commit of claims, records and inserts uses, so statements were evicted and
    // parsed again all the time.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 1 {
        tx.execute_batch(include_str!("schema.sql"))?;
    }
    if version < 2 {
        tx.execute_batch(include_str!("schema_v2.sql"))?;
    }
    if version < 3 {
        tx.execute_batch(include_str!("schema_v3.sql"))?;
    }
    if version < 4 {
        tx.execute_batch(include_str!("schema_v4.sql"))?;
    }
    if version < 5 {
        tx.execute_batch(include_str!("schema_v5.sql"))?;
    }
    if version < 6 {
        tx.execute_batch(include_str!("schema_v6.sql"))?;
    }
    if version < 7 {
        tx.execute_batch(include_str!("schema_v7.sql"))?;
    }
    if version < 8 {
        tx.execute_batch(include_str!("schema_v8.sql"))?;
    }
    if version < 9 {
        tx.execute_batch(include_str!("schema_v9.sql"))?;
    }
    if version < 10 {
        tx.execute_batch(include_str!("schema_v10.sql"))?;
    }
    if version < 11 {
        tx.execute_batch(include_str!("schema_v11.sql"))?;
    }
    if version < 12 {
        tx.execute_batch(include_str!("schema_v12.sql"))?;
    }
    if version < 13 {
        tx.execute_batch(include_str!("schema_v13.sql"))?;
    }
    if version < 14 {
        tx.execute_batch(include_str!("schema_v14.sql"))?;
    }
    if version < 15 {
        tx.execute_batch(include_str!("schema_v15.sql"))?;
    }
    if version < 16 {
        tx.execute_batch(include_str!("schema_v16.sql"))?;
    }
    if version < 17 {
        tx.execute_batch(include_str!("schema_v17.sql"))?;
    }
    if version < 18 {
        tx.execute_batch(include_str!("schema_v18.sql"))?;
    }
    if version < 19 {
        tx.execute_batch(include_str!("schema_v19.sql"))?;
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "schema version {version} is newer than this mailerd ({SCHEMA_VERSION})"
        )));
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

impl SqliteStore {
    /// Opens (and creates or migrates) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        // The writer's and the checkpoint's page writes are coalesced (`wal_writes`).
        let mut writer = configure(wal_writes::open_writer(path)?)?;
        migrate(&mut writer)?;
        let readers = Readers::open(path)?;
        // Checkpoints on a thread of their own: the copy into the database file and its fsync
        // overlap the writer's next group commit instead of stalling it (an API batch commit
        // of 800 messages filled a WAL of 1,000 pages, so nearly every commit checkpointed).
        writer.wal_hook(Some(count_frames));
        let checkpointer = configure(wal_writes::open_checkpointer(path)?)?;
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new().name("store-checkpoint".into()).spawn(move || {
            while woken.recv().is_ok() {
                checkpoint(&checkpointer);
                // Commits during the checkpoint asked for the frames it just copied; the WAL
                // starts over at the next commit, which asks again when it has filled.
                while woken.try_recv().is_ok() {}
            }
        })?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("store-writer".into()).spawn(move || writer_loop(writer, rx, wake))?;
        Ok(SqliteStore { writer: Mutex::new(tx), readers: Arc::new(readers) })
    }

    fn send(&self, w: Write) -> Result<(), StoreError> {
        let tx = self.writer.lock().map_err(|_| StoreError::Closed)?;
        tx.send(w).map_err(|_| StoreError::Closed)
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.get()?;
            f(&conn)
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// A point read (a primary-key or unique-index probe of a row or two, on every RCPT) runs
    /// on the calling task when a reader is free: it takes microseconds, less than handing it
    /// to a blocking thread and waking the task again. WAL readers do not wait for the writer.
    /// With every reader busy it goes to a blocking thread like any read.
    async fn probe<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if let Some(conn) = self.readers.free() {
            return f(&conn);
        }
        self.read(f).await
    }
}

impl SqliteStore {
    async fn simple(&self, op: Simple) -> Result<usize, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Write::Simple(op, reply))?;
        wait(rx).await
    }
}

async fn wait<T>(rx: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
    rx.await.map_err(|_| StoreError::Closed)?
}

/// The group-commit loop: block for one request, take every other waiting one, run them all
/// in one transaction, commit (one fsync), then answer each.
/// After a commit that left `CHECKPOINT_FRAMES` in the WAL, the checkpoint thread is woken
/// (a wake-up already pending covers this one too).
fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Write>, checkpoint_due: mpsc::SyncSender<()>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        writes::run_batch(&mut conn, batch);
        match WAL_FRAMES.with(std::cell::Cell::get) {
            f if f >= CHECKPOINT_FRAMES_MAX => checkpoint(&conn),
            f if f >= CHECKPOINT_FRAMES => drop(checkpoint_due.try_send(())),
            _ => {}
        }
    }
}

/// Copies the WAL's committed frames into the database file, as far as no reader still needs
/// them (PASSIVE: it waits for no one); the next commit then starts the WAL over.
fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "WAL checkpoint failed");
    }
    // A checkpoint that failed may have left pages kept in memory (`wal_writes`); its lock is
    // released now, and they must not reach the file after another process's checkpoint.
    wal_writes::forget_checkpoint(conn);
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_message(&self, msg: NewMessage) -> Result<(), StoreError> {
        self.insert_messages(vec![msg]).await
    }

    async fn insert_messages(&self, msgs: Vec<NewMessage>) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Write::Insert(msgs, reply))?;
        let (result, msgs) = rx.await.map_err(|_| StoreError::Closed)?;
        drop(msgs);
        result
    }

    async fn claim_due(
        &self,
        transport: Transport,
        now: Timestamp,
        limit: usize,
        lease: Duration,
        owner: &str,
    ) -> Result<Vec<Claim>, StoreError> {
        let (reply, rx) = oneshot::channel();
        let lease_until = now.plus(lease);
        self.send(Write::Claim { transport, now, limit, lease_until, owner: owner.into(), reply })?;
        wait(rx).await
    }

    async fn record_attempts(&self, owner: &str, attempts: Vec<Attempt>) -> Result<Vec<MessageId>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Write::Record(owner.into(), attempts, reply))?;
        wait(rx).await
    }

    async fn renew_leases(&self, owner: &str, ids: &[RecipientId], until: Timestamp) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.simple(Simple::RenewLeases(owner.into(), ids.to_vec(), until)).await
    }

    /// One process's store: no slots or secrets shared with other nodes.
    fn cluster(self: Arc<Self>) -> Option<Arc<dyn ClusterStore>> {
        None
    }

    async fn load_body(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        // A body up to INLINE_BODY is read on the calling task when a reader is free (a copy of
        // a few pages, less than a hand-off to a blocking thread and back); a larger one, or
        // any with every reader busy, on a blocking thread.
        if let Some(conn) = self.readers.free()
            && let Some(body) = reads::load_body_up_to(&conn, id, INLINE_BODY)?
        {
            return Ok(body);
        }
        let id = id.clone();
        self.read(move |c| reads::load_body(c, &id)).await
    }

    async fn idempotency(
        &self,
        api_key: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let (api_key, key) = (api_key.to_string(), key.to_string());
        self.read(move |c| reads::idempotency(c, &api_key, &key, now)).await
    }

    async fn queue_list(&self, limit: usize) -> Result<Vec<QueueEntry>, StoreError> {
        self.read(move |c| reads::queue_list(c, limit)).await
    }

    async fn message_detail(&self, id: &MessageId) -> Result<Option<MessageDetail>, StoreError> {
        let id = id.clone();
        self.read(move |c| reads::message_detail(c, &id)).await
    }

    async fn upsert_mailbox(
        &self,
        address: &str,
        password_hash: Option<String>,
        quota: Option<u64>,
    ) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Write::Mailbox { address: address.into(), password_hash, quota, reply })?;
        wait(rx).await
    }

    async fn mailbox(&self, address: &str) -> Result<Option<MailboxRecord>, StoreError> {
        let address = address.to_string();
        self.read(move |c| reads::mailbox(c, &address)).await
    }

    async fn delete_mailbox(&self, address: &str) -> Result<bool, StoreError> {
        self.simple(Simple::DeleteMailbox(address.into())).await.map(|n| n > 0)
    }

    async fn rehash_password(&self, address: &str, old_hash: &str, new_hash: &str) -> Result<bool, StoreError> {
        let op = Simple::Rehash(address.into(), old_hash.into(), new_hash.into());
        self.simple(op).await.map(|n| n > 0)
    }

    async fn add_app_password(&self, app: super::AppPassword) -> Result<bool, StoreError> {
        self.simple(Simple::AddAppPassword(app)).await.map(|n| n > 0)
    }

    async fn app_passwords(&self, address: &str) -> Result<Vec<super::AppPassword>, StoreError> {
        let address = address.to_string();
        self.read(move |c| reads::app_passwords(c, &address, None)).await
    }

    async fn app_password(&self, address: &str, hash: &str) -> Result<Option<super::AppPassword>, StoreError> {
        let (address, hash) = (address.to_string(), hash.to_string());
        self.read(move |c| reads::app_passwords(c, &address, Some(&hash)).map(|mut v| v.pop())).await
    }

    async fn revoke_app_password(&self, address: &str, name: &str) -> Result<bool, StoreError> {
        self.simple(Simple::RevokeAppPassword(address.into(), name.into())).await.map(|n| n > 0)
    }

    async fn touch_app_password(
        &self,
        address: &str,
        name: &str,
        at: Timestamp,
        ip: std::net::IpAddr,
    ) -> Result<(), StoreError> {
        self.simple(Simple::TouchAppPassword(address.into(), name.into(), at, ip)).await.map(|_| ())
    }

    async fn second_factor(&self, address: &str) -> Result<Option<super::SecondFactor>, StoreError> {
        let address = address.to_string();
        self.read(move |c| reads::second_factor(c, &address)).await
    }

    async fn enable_second_factor(
        &self,
        address: &str,
        secret: &super::TotpSecret,
        recovery_hashes: &[String],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let op = Simple::EnableSecondFactor(address.into(), secret.clone(), recovery_hashes.to_vec(), at);
        self.simple(op).await.map(|_| ())
    }

    async fn disable_second_factor(&self, address: &str) -> Result<bool, StoreError> {
        self.simple(Simple::DisableSecondFactor(address.into())).await.map(|n| n > 0)
    }

    async fn use_totp_step(&self, address: &str, step: u64) -> Result<bool, StoreError> {
        self.simple(Simple::UseTotpStep(address.into(), step)).await.map(|n| n > 0)
    }

    async fn use_recovery_code(&self, address: &str, hash: &str, at: Timestamp) -> Result<bool, StoreError> {
        self.simple(Simple::UseRecoveryCode(address.into(), hash.into(), at)).await.map(|n| n > 0)
    }

    async fn report_facts(&self, id: &MessageId) -> Result<Option<ReportFacts>, StoreError> {
        // A message row and its recipients' rows by index, read after every delivery.
        let id = id.clone();
        self.probe(move |c| reads::report_facts(c, &id)).await
    }

    async fn release_body(&self, id: &MessageId) -> Result<(), StoreError> {
        self.simple(Simple::ReleaseBody(id.clone())).await.map(|_| ())
    }

    async fn suppress_as(&self, entry: Suppression, event: EventKind, detail: String) -> Result<bool, StoreError> {
        self.simple(Simple::Suppress(entry, event, detail)).await.map(|n| n > 0)
    }

    async fn unsuppress(&self, address: &str, scope: &Scope) -> Result<bool, StoreError> {
        self.simple(Simple::Unsuppress(address.to_string(), reads::scope_param(scope)?)).await.map(|n| n > 0)
    }

    async fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
        let address = address.to_string();
        self.read(move |c| reads::suppression(c, &address)).await
    }

    async fn suppression_for(&self, address: &str, sender: Option<&Domain>) -> Result<Option<Suppression>, StoreError> {
        let (address, sender) = (address.to_string(), sender.cloned());
        self.probe(move |c| reads::suppression_for(c, &address, sender.as_ref())).await
    }

    async fn suppressions_of(&self, addresses: Vec<String>) -> Result<Vec<Suppression>, StoreError> {
        self.read(move |c| reads::suppressions_of(c, &addresses)).await
    }

    async fn put_template(&self, template: super::Template) -> Result<(), StoreError> {
        self.simple(Simple::PutTemplate(template)).await.map(|_| ())
    }

    async fn template(&self, api_key: &str, name: &str) -> Result<Option<super::Template>, StoreError> {
        let (api_key, name) = (api_key.to_string(), name.to_string());
        self.read(move |c| Ok(reads::templates(c, &api_key, Some(&name), None, 1)?.pop())).await
    }

    async fn templates(
        &self,
        api_key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<super::Template>, StoreError> {
        let (api_key, after) = (api_key.to_string(), after.map(str::to_string));
        self.read(move |c| reads::templates(c, &api_key, None, after.as_deref(), limit)).await
    }

    async fn delete_template(&self, api_key: &str, name: &str) -> Result<bool, StoreError> {
        self.simple(Simple::DeleteTemplate(api_key.to_string(), name.to_string())).await.map(|n| n > 0)
    }

    async fn suppression_entries(&self, address: &str, scope: &Scope) -> Result<Vec<Suppression>, StoreError> {
        let (address, scope) = (address.to_string(), scope.clone());
        self.read(move |c| reads::suppression_entries(c, &address, &scope)).await
    }

    async fn suppressions(&self, scope: &Scope, limit: usize) -> Result<Vec<Suppression>, StoreError> {
        Ok(self.suppressions_after(scope, limit, None).await?.0)
    }

    async fn search_messages(
        &self,
        scope: &Scope,
        q: &super::MessageSearch,
    ) -> Result<Vec<super::MessageHit>, StoreError> {
        let (scope, q) = (scope.clone(), q.clone());
        self.read(move |c| reads::search_messages(c, &scope, &q)).await
    }

    async fn suppressions_after(
        &self,
        scope: &Scope,
        limit: usize,
        after: Option<&super::SuppressionCursor>,
    ) -> Result<(Vec<Suppression>, Option<super::SuppressionCursor>), StoreError> {
        let (scope, after) = (scope.clone(), after.cloned());
        self.read(move |c| reads::suppressions(c, &scope, limit, after.as_ref())).await
    }

    async fn webhook_cursor(&self, endpoint: &str) -> Result<i64, StoreError> {
        let endpoint = endpoint.to_string();
        self.read(move |c| {
            use rusqlite::OptionalExtension as _;
            let n: Option<i64> = c
                .prepare_cached("SELECT last_event FROM webhook_cursors WHERE endpoint = ?1")?
                .query_row([&endpoint], |r| r.get(0))
                .optional()?;
            Ok(n.unwrap_or(0))
        })
        .await
    }

    async fn sts_policy(&self, domain: &str) -> Result<Option<crate::tlspolicy::CachedPolicy>, StoreError> {
        let domain = domain.to_string();
        self.read(move |c| reads::sts_policy(c, &domain)).await
    }

    async fn put_sts_policy(&self, policy: &crate::tlspolicy::CachedPolicy) -> Result<(), StoreError> {
        self.simple(Simple::StsPolicy(policy.clone())).await.map(|_| ())
    }

    async fn record_tls_result(&self, result: &crate::tlspolicy::LastResult) -> Result<(), StoreError> {
        self.simple(Simple::TlsResult(result.clone())).await.map(|_| ())
    }

    async fn tls_result(&self, domain: &str) -> Result<Option<crate::tlspolicy::LastResult>, StoreError> {
        let domain = domain.to_string();
        self.read(move |c| reads::tls_result(c, &domain)).await
    }

    async fn count_tls_sessions(&self, count: &crate::tlspolicy::TlsCount) -> Result<(), StoreError> {
        self.simple(Simple::TlsCount(count.clone())).await.map(|_| ())
    }

    async fn tls_report_due(
        &self,
        before: crate::tlspolicy::Day,
    ) -> Result<Vec<(crate::tlspolicy::Day, String)>, StoreError> {
        self.read(move |c| reads::tls_report_due(c, before)).await
    }

    async fn take_tls_counts(
        &self,
        day: crate::tlspolicy::Day,
        domain: &str,
    ) -> Result<Vec<crate::tlspolicy::TlsCount>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Write::TakeTlsCounts(day, domain.to_string(), reply))?;
        wait(rx).await
    }

    async fn set_webhook_cursor(&self, endpoint: &str, last_event: i64) -> Result<(), StoreError> {
        self.simple(Simple::WebhookCursor(endpoint.to_string(), last_event)).await.map(|_| ())
    }

    async fn pause_account(&self, pause: super::AccountPause) -> Result<bool, StoreError> {
        self.simple(Simple::Pause(pause)).await.map(|n| n > 0)
    }

    async fn account_pause(&self, account: &str) -> Result<Option<super::AccountPause>, StoreError> {
        let account = account.to_string();
        self.read(move |c| Ok(reads::paused(c, Some(&account))?.into_iter().next())).await
    }

    async fn first_pause(&self, accounts: Vec<String>) -> Result<Option<super::AccountPause>, StoreError> {
        if accounts.is_empty() {
            return Ok(None);
        }
        self.probe(move |c| reads::first_pause(c, &accounts)).await
    }

    async fn resume_account(&self, account: &str) -> Result<bool, StoreError> {
        self.simple(Simple::Resume(account.to_string())).await.map(|n| n > 0)
    }

    async fn paused_accounts(&self) -> Result<Vec<super::AccountPause>, StoreError> {
        self.read(|c| reads::paused(c, None)).await
    }

    async fn suspect_account(&self, pause: super::AccountPause) -> Result<bool, StoreError> {
        self.simple(Simple::Suspect(pause)).await.map(|n| n > 0)
    }

    async fn account_history(&self, account: &str, since: super::Hour) -> Result<super::AccountHistory, StoreError> {
        let account = account.to_string();
        self.read(move |c| reads::account_history(c, &account, since)).await
    }

    async fn record_account_activity(
        &self,
        batch: Vec<super::AccountActivity>,
        forget_before: super::Hour,
    ) -> Result<(), StoreError> {
        self.simple(Simple::AccountActivity(batch, forget_before)).await.map(drop)
    }

    async fn queue_depth(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            let n: i64 = c
                .prepare_cached("SELECT count(*) FROM recipients WHERE state IN ('queued', 'deferred')")?
                .query_row([], |r| r.get(0))?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    async fn queued_messages(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            let n: i64 = c
                .prepare_cached(
                    "SELECT count(DISTINCT message_id) FROM recipients WHERE state IN ('queued', 'deferred', 'held')",
                )?
                .query_row([], |r| r.get(0))?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    async fn create_api_key(&self, key: super::ApiKey) -> Result<(), StoreError> {
        self.simple(Simple::ApiKey(key)).await.map(|_| ())
    }

    async fn api_key(&self, hash: &str) -> Result<Option<super::ApiKey>, StoreError> {
        let hash = hash.to_string();
        self.read(move |c| reads::api_key(c, &hash)).await
    }

    async fn api_keys(&self) -> Result<Vec<super::ApiKey>, StoreError> {
        self.read(reads::api_keys).await
    }

    async fn revoke_api_key(&self, id: &str) -> Result<bool, StoreError> {
        self.simple(Simple::RevokeKey(id.to_string())).await.map(|n| n > 0)
    }

    async fn rotate_api_key(&self, id: &str, hash: &str) -> Result<bool, StoreError> {
        self.simple(Simple::RotateKey(id.to_string(), hash.to_string())).await.map(|n| n > 0)
    }

    async fn touch_api_key(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        self.simple(Simple::TouchKey(id.to_string(), at)).await.map(|_| ())
    }

    async fn events_after(
        &self,
        after: i64,
        kind: Option<super::EventKind>,
        scope: &Scope,
        limit: usize,
    ) -> Result<Vec<super::EventRecord>, StoreError> {
        let scope = scope.clone();
        self.read(move |c| reads::events_after(c, after, kind, &scope, limit)).await
    }

    async fn sent_log(&self, header_id: &str) -> Result<Vec<SentEntry>, StoreError> {
        let header_id = super::normalize_header_id(header_id);
        self.read(move |c| reads::sent_log(c, &header_id)).await
    }

    async fn flush(&self, selection: &Selection, now: Timestamp) -> Result<usize, StoreError> {
        self.simple(Simple::Flush(selection.clone(), now)).await
    }

    async fn hold(&self, selection: &Selection, now: Timestamp) -> Result<usize, StoreError> {
        self.simple(Simple::Hold(selection.clone(), now)).await
    }

    async fn release(&self, selection: &Selection, now: Timestamp) -> Result<usize, StoreError> {
        self.simple(Simple::Release(selection.clone(), now)).await
    }

    async fn delete_messages(&self, selection: &Selection, now: Timestamp) -> Result<usize, StoreError> {
        self.simple(Simple::DeleteAll(selection.clone(), now)).await
    }

    async fn queue_summary(&self, now: Timestamp, top: usize) -> Result<QueueSummary, StoreError> {
        self.read(move |c| reads::queue_summary(c, now, top)).await
    }

    async fn oldest_deferred(&self) -> Result<Option<super::OldestDeferred>, StoreError> {
        self.read(reads::oldest_deferred).await
    }

    async fn delete_message(&self, id: &MessageId) -> Result<bool, StoreError> {
        self.simple(Simple::Delete(id.clone())).await.map(|n| n > 0)
    }

    async fn record_feedback(&self, feedback: super::Feedback) -> Result<bool, StoreError> {
        self.simple(Simple::Feedback(feedback)).await.map(|n| n > 0)
    }

    async fn learn(
        &self,
        sample: learner_types::Sample,
        limits: learner_types::LearnerLimits,
    ) -> Result<learner_types::Learned, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Write::Learn(Box::new(sample), limits, reply))?;
        wait(rx).await
    }

    async fn learner_sample(&self, bounce: &MessageId) -> Result<Option<learner_types::Sample>, StoreError> {
        let bounce = bounce.clone();
        self.read(move |c| learner::sample(c, &bounce)).await
    }

    async fn learner_model(&self, tokens: &[String]) -> Result<learner_types::Model, StoreError> {
        let tokens = tokens.to_vec();
        self.read(move |c| learner::model(c, &tokens)).await
    }

    async fn delivery_overview(&self, since: Timestamp, top: usize) -> Result<super::DeliveryOverview, StoreError> {
        self.read(move |c| reads::delivery_overview(c, since, top)).await
    }

    async fn queue_search(&self, filter: super::QueueFilter) -> Result<Vec<super::QueueRow>, StoreError> {
        self.read(move |c| reads::queue_search(c, &filter)).await
    }

    async fn search_suppressions(&self, query: &str, limit: usize) -> Result<Vec<Suppression>, StoreError> {
        let query = query.to_string();
        self.read(move |c| reads::search_suppressions(c, &query, limit)).await
    }
}

/// What SQLite's planner says it does for `sql` on a fresh database of this schema: the
/// detail of each step ("SEARCH recipients USING INDEX …").
#[cfg(test)]
fn query_plan(sql: &str, args: Vec<rusqlite::types::Value>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = open_connection(&dir.path().join("plan.db")).unwrap();
    migrate(&mut c).unwrap();
    let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}
