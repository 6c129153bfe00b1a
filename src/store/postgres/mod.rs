//! PostgreSQL backend of `Store`, for several mailerd nodes sharing one queue (cluster mode).
//!
//! Same semantics as the SQLite backend: every write is one transaction that returns only
//! after COMMIT did (`synchronous_commit` stays on, so COMMIT means the WAL is flushed). The
//! hot writes (inserts, attempt records, body releases) are group-committed: concurrent
//! callers share one statement (`batch.rs`), as do the report facts read after records and
//! the suppression lookups at RCPT. Claims are leases: the due
//! rows are locked `FOR UPDATE SKIP LOCKED`, so nodes never take the same recipient and a
//! dead node's leases simply come due again. A small pool of tokio-postgres connections
//! (`pool.rs`) caches prepared statements per connection. The schema is migrated at start
//! under `pg_advisory_xact_lock`, so nodes starting together do not race.
//! Must not: turn `synchronous_commit` off, answer a write before its COMMIT returned, or
//! hold a pooled connection across anything but its own statements.

mod batch;
mod dashboard;
mod learner;
mod pauses;
mod pool;
mod reads;
mod writes;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tracing::warn;

use self::batch::Batcher;
use self::pool::Pool;
use self::reads::{FactsOf, PauseOf, SuppressionOf};
use self::writes::{Outcomes, Release};
use super::{
    AccountPause, ApiKey, AppPassword, Attempt, Claim, ClusterStore, EventRecord, Feedback, IdempotencyRecord,
    MailboxRecord, MessageDetail, MessageId, NewMessage, QueueEntry, QueueSummary, RecipientId, ReportFacts, Scope,
    SecondFactor, Selection, SentEntry, Store, StoreError, Suppression, TotpSecret, Transport,
};
use crate::smtp::address::Domain;
use crate::store::EventKind;
use crate::time::Timestamp;

/// Connections per node for everything but the batched hot statements.
const POOL_SIZE: usize = 10;
/// Connections per node for the batched hot statements, which plan generically: one for the
/// flusher of each `Batcher` (inserts, records, report facts, body releases, suppression and
/// pause lookups).
const HOT_POOL_SIZE: usize = 6;
/// The hot statements' session: one generic plan per statement and connection. With the
/// default (`auto`), PostgreSQL planned the array lookups afresh at every bind (their plan for
/// the values at hand looked cheaper than the generic one): binds were 29 % of the server's
/// statement time under `bench/cluster.sh`. Their generic plans are index probes whatever the
/// values. Those plans are made from
/// the tables' statistics, which `Young` keeps fresh while the tables are young.
const HOT_SESSION: &str = "SET plan_cache_mode = force_generic_plan";
/// Messages stored (by this node) before the first ANALYZE of a young store.
const FIRST_ANALYZE: u64 = 1_000;
/// Any constant shared by every mailerd: serializes migrations across nodes.
const MIGRATION_LOCK: i64 = 0x6d61_696c_6572_6400; // "mailerd\0"
/// Versioned migrations, applied in order inside one transaction.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("schema_v1.sql")),
    (2, include_str!("schema_v2.sql")),
    (3, include_str!("schema_v3.sql")),
    (4, include_str!("schema_v4.sql")),
    (5, include_str!("schema_v5.sql")),
    (6, include_str!("schema_v6.sql")),
    (7, include_str!("schema_v7.sql")),
    (8, include_str!("schema_v8.sql")),
    (9, include_str!("schema_v9.sql")),
    (10, include_str!("schema_v10.sql")),
    (11, include_str!("schema_v11.sql")),
    (12, include_str!("schema_v12.sql")),
    (13, include_str!("schema_v13.sql")),
    (14, include_str!("schema_v14.sql")),
    (15, include_str!("schema_v15.sql")),
    (16, include_str!("schema_v16.sql")),
    (17, include_str!("schema_v17.sql")),
    (18, include_str!("schema_v18.sql")),
    (19, include_str!("schema_v19.sql")),
    (20, include_str!("schema_v20.sql")),
];

pub struct PgStore {
    pool: Arc<Pool>,
    young: Young,
    inserts: Batcher<NewMessage>,
    records: Batcher<Outcomes>,
    facts: Batcher<FactsOf>,
    releases: Batcher<Release>,
    suppressions: Batcher<SuppressionOf>,
    pauses: Batcher<PauseOf>,
    known_pauses: pauses::Pauses,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host/db?options=...`), checks that commits are
    /// durable, and creates or migrates the schema.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let mut config: tokio_postgres::Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("mailerd");
        }
        let hot = Arc::new(Pool::new(config.clone(), HOT_POOL_SIZE, Some(HOT_SESSION)));
        let pool = Arc::new(Pool::new(config, POOL_SIZE, None));
        let mut conn = pool.get().await?;
        let result = async {
            migrate(&mut conn.client).await?;
            Young::rows(&conn.client).await
        }
        .await;
        conn.finish(&result);
        let rows = result?;
        Ok(PgStore {
            inserts: Batcher::start(hot.clone()),
            records: Batcher::start(hot.clone()),
            facts: Batcher::start(hot.clone()),
            suppressions: Batcher::start(hot.clone()),
            pauses: Batcher::start(hot.clone()),
            releases: Batcher::start(hot),
            young: Young::new(rows),
            known_pauses: pauses::Pauses::default(),
            pool,
        })
    }
}

/// Statistics while the store is young. PostgreSQL's generic plans are made from the planner
/// statistics of the moment; a store created empty has none until autovacuum's first ANALYZE
/// (a minute or more away), so the hot statements' plans scanned whole tables that had grown
/// to thousands of rows since (every record, report-facts read and body release read every
/// recipient row). This node runs ANALYZE (which also makes every session plan afresh) when
/// the messages it stored reach `FIRST_ANALYZE`, then at each doubling: a few times while the
/// store is young. On a store whose statistics already know it large, the first comes only
/// once this node has stored as many messages as the table had.
struct Young {
    stored: AtomicU64,
    next: AtomicU64,
}

impl Young {
    fn new(rows: u64) -> Young {
        Young { stored: AtomicU64::new(0), next: AtomicU64::new(FIRST_ANALYZE.max(rows)) }
    }

    /// The messages table's size as PostgreSQL's statistics know it (0 before any ANALYZE).
    async fn rows(client: &tokio_postgres::Client) -> Result<u64, StoreError> {
        let row =
            client.query_one("SELECT reltuples::bigint FROM pg_class WHERE oid = 'messages'::regclass", &[]).await?;
        Ok(u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0))
    }

    /// Counts `n` more stored messages; true (once) when they reach the next size to analyze at.
    fn stored(&self, n: u64) -> bool {
        let stored = self.stored.fetch_add(n, Ordering::Relaxed) + n;
        let next = self.next.load(Ordering::Relaxed);
        stored >= next && self.next.compare_exchange(next, stored * 2, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    /// ANALYZE of the tables the hot statements read, in the background. Nodes of a cluster
    /// may ask at once: a table another session is analyzing is skipped, not waited for.
    fn analyze(pool: Arc<Pool>) {
        tokio::spawn(async move {
            let result = async {
                let conn = pool.get().await?;
                let result = conn
                    .client
                    .batch_execute("ANALYZE (SKIP_LOCKED) messages, recipients, events")
                    .await
                    .map_err(StoreError::from);
                conn.finish(&result);
                result
            }
            .await;
            if let Err(e) = result {
                warn!(error = %e, "ANALYZE of a young store failed");
            }
        });
    }
}

async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    // "relation already exists, skipping" is not news on every start.
    tx.batch_execute("SET LOCAL client_min_messages = warning").await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS mailerd_schema (version INTEGER NOT NULL)").await?;
    let current: i32 = tx.query_one("SELECT COALESCE(max(version), 0) FROM mailerd_schema", &[]).await?.try_get(0)?;
    let latest = MIGRATIONS.last().map(|(v, _)| *v).unwrap_or(0);
    if current > latest {
        return Err(StoreError::Corrupt(format!("schema version {current} is newer than this mailerd ({latest})")));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO mailerd_schema (version) VALUES ($1)", &[version]).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Called once per new connection: a server with `synchronous_commit = off` would let us
/// answer 250 for a message a crash can still lose, so this session turns it back on. JIT is
/// turned off: our statements are short, and a generic plan's cost estimate (a LIMIT `$n` of
/// unknown size) can cross `jit_above_cost` and spend a quarter second compiling a 1 ms query.
pub(super) async fn ensure_durable(client: &tokio_postgres::Client) -> Result<(), StoreError> {
    client.batch_execute("SET jit = off").await?;
    let row = client.query_one("SELECT current_setting('synchronous_commit'), current_setting('fsync')", &[]).await?;
    let (sync, fsync): (String, String) = (row.try_get(0)?, row.try_get(1)?);
    if sync == "off" {
        warn!("PostgreSQL has synchronous_commit = off; mailerd turns it on for its sessions");
        client.batch_execute("SET synchronous_commit = on").await?;
    }
    if fsync == "off" {
        warn!("PostgreSQL runs with fsync = off: a crash of the database server can lose accepted mail");
    }
    Ok(())
}

impl PgStore {
    /// Counts stored messages for `Young`, and analyzes when it says so.
    fn stored(&self, n: u64) {
        if self.young.stored(n) {
            Young::analyze(self.pool.clone());
        }
    }

    /// Runs one operation on a pooled connection; the connection goes back to the pool only
    /// when the operation ran to its end (a cancelled one may have left a transaction open).
    async fn with<T>(&self, f: impl AsyncFnOnce(&mut pool::Conn) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.pool.get().await?;
        let result = f(&mut conn).await;
        conn.finish(&result);
        result
    }
}

#[async_trait]
impl Store for PgStore {
    async fn insert_message(&self, msg: NewMessage) -> Result<(), StoreError> {
        if msg.reports.is_empty() && msg.idempotency.is_none() {
            self.inserts.submit(msg).await?;
        } else {
            self.with(async |c| writes::insert_together(c, std::slice::from_ref(&msg)).await).await?;
        }
        self.stored(1);
        Ok(())
    }

    async fn insert_messages(&self, msgs: Vec<NewMessage>) -> Result<(), StoreError> {
        self.with(async |c| writes::insert_together(c, &msgs).await).await?;
        self.stored(msgs.len() as u64);
        Ok(())
    }

    async fn claim_due(
        &self,
        transport: Transport,
        now: Timestamp,
        limit: usize,
        lease: Duration,
        owner: &str,
    ) -> Result<Vec<Claim>, StoreError> {
        let lease_until = now.plus(lease);
        self.with(async |c| writes::claim(c, transport, now, limit, lease_until, owner).await).await
    }

    async fn record_attempts(&self, owner: &str, attempts: Vec<Attempt>) -> Result<Vec<MessageId>, StoreError> {
        if attempts.is_empty() {
            return Ok(Vec::new());
        }
        self.records.submit(Outcomes { owner: owner.to_string(), attempts }).await
    }

    async fn renew_leases(&self, owner: &str, ids: &[RecipientId], until: Timestamp) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.with(async |c| writes::renew_leases(c, owner, ids, until).await).await
    }

    fn cluster(self: Arc<Self>) -> Option<Arc<dyn ClusterStore>> {
        Some(self)
    }

    async fn load_body(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(async |c| reads::load_body(c, id).await).await
    }

    async fn idempotency(
        &self,
        api_key: &str,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.with(async |c| reads::idempotency(c, api_key, key, now).await).await
    }

    async fn queue_list(&self, limit: usize) -> Result<Vec<QueueEntry>, StoreError> {
        self.with(async |c| reads::queue_list(c, limit).await).await
    }

    async fn message_detail(&self, id: &MessageId) -> Result<Option<MessageDetail>, StoreError> {
        self.with(async |c| reads::message_detail(c, id).await).await
    }

    async fn upsert_mailbox(
        &self,
        address: &str,
        password_hash: Option<String>,
        quota: Option<u64>,
    ) -> Result<(), StoreError> {
        self.with(async |c| writes::upsert_mailbox(c, address, password_hash.as_deref(), quota).await).await
    }

    async fn mailbox(&self, address: &str) -> Result<Option<MailboxRecord>, StoreError> {
        self.with(async |c| reads::mailbox(c, address).await).await
    }

    async fn rehash_password(&self, address: &str, old_hash: &str, new_hash: &str) -> Result<bool, StoreError> {
        self.with(async |c| writes::rehash_password(c, address, old_hash, new_hash).await).await
    }

    async fn add_app_password(&self, app: AppPassword) -> Result<bool, StoreError> {
        self.with(async |c| writes::add_app_password(c, &app).await).await
    }

    async fn app_passwords(&self, address: &str) -> Result<Vec<AppPassword>, StoreError> {
        self.with(async |c| reads::app_passwords(c, address, None).await).await
    }

    async fn app_password(&self, address: &str, hash: &str) -> Result<Option<AppPassword>, StoreError> {
        self.with(async |c| reads::app_passwords(c, address, Some(hash)).await.map(|mut v| v.pop())).await
    }

    async fn revoke_app_password(&self, address: &str, name: &str) -> Result<bool, StoreError> {
        self.with(async |c| writes::revoke_app_password(c, address, name).await).await
    }

    async fn touch_app_password(
        &self,
        address: &str,
        name: &str,
        at: Timestamp,
        ip: std::net::IpAddr,
    ) -> Result<(), StoreError> {
        self.with(async |c| writes::touch_app_password(c, address, name, at, ip).await).await
    }

    async fn second_factor(&self, address: &str) -> Result<Option<SecondFactor>, StoreError> {
        self.with(async |c| reads::second_factor(c, address).await).await
    }

    async fn enable_second_factor(
        &self,
        address: &str,
        secret: &TotpSecret,
        recovery_hashes: &[String],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.with(async |c| writes::enable_second_factor(c, address, secret, recovery_hashes, at).await).await
    }

    async fn delete_mailbox(&self, address: &str) -> Result<bool, StoreError> {
        self.with(async |c| writes::delete_mailbox(c, address).await).await
    }

    async fn disable_second_factor(&self, address: &str) -> Result<bool, StoreError> {
        self.with(async |c| writes::disable_second_factor(c, address).await).await
    }

    async fn use_totp_step(&self, address: &str, step: u64) -> Result<bool, StoreError> {
        self.with(async |c| writes::use_totp_step(c, address, step).await).await
    }

    async fn use_recovery_code(&self, address: &str, hash: &str, at: Timestamp) -> Result<bool, StoreError> {
        self.with(async |c| writes::use_recovery_code(c, address, hash, at).await).await
    }

    async fn report_facts(&self, id: &MessageId) -> Result<Option<ReportFacts>, StoreError> {
        self.with(async |c| reads::report_facts(c, id).await).await
    }

    async fn report_facts_of(&self, ids: &[MessageId]) -> Result<Vec<ReportFacts>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.facts.submit(FactsOf(ids.to_vec())).await
    }

    async fn release_body(&self, id: &MessageId) -> Result<(), StoreError> {
        self.releases.submit(Release(id.clone())).await
    }

    async fn suppress_as(&self, entry: Suppression, event: EventKind, detail: String) -> Result<bool, StoreError> {
        self.with(async |c| writes::suppress(c, &entry, event, &detail).await).await
    }

    async fn unsuppress(&self, address: &str, scope: &Scope) -> Result<bool, StoreError> {
        self.with(async |c| writes::unsuppress(c, address, scope).await).await
    }

    async fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
        self.suppressions.submit(SuppressionOf { address: address.to_string(), sender: None, any: true }).await
    }

    async fn suppression_for(&self, address: &str, sender: Option<&Domain>) -> Result<Option<Suppression>, StoreError> {
        self.suppressions
            .submit(SuppressionOf { address: address.to_string(), sender: sender.cloned(), any: false })
            .await
    }

    async fn suppressions_of(&self, addresses: Vec<String>) -> Result<Vec<Suppression>, StoreError> {
        self.with(async |c| reads::suppressions_of(c, &addresses).await).await
    }

    async fn put_template(&self, template: crate::store::Template) -> Result<(), StoreError> {
        self.with(async |c| writes::put_template(c, &template).await).await
    }

    async fn template(&self, api_key: &str, name: &str) -> Result<Option<crate::store::Template>, StoreError> {
        self.with(async |c| Ok(reads::templates(c, api_key, Some(name), None, 1).await?.pop())).await
    }

    async fn templates(
        &self,
        api_key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::store::Template>, StoreError> {
        self.with(async |c| reads::templates(c, api_key, None, after, limit).await).await
    }

    async fn delete_template(&self, api_key: &str, name: &str) -> Result<bool, StoreError> {
        self.with(async |c| writes::delete_template(c, api_key, name).await).await
    }

    async fn suppression_entries(&self, address: &str, scope: &Scope) -> Result<Vec<Suppression>, StoreError> {
        self.with(async |c| reads::suppression_entries(c, address, scope).await).await
    }

    async fn suppressions(&self, scope: &Scope, limit: usize) -> Result<Vec<Suppression>, StoreError> {
        Ok(self.suppressions_after(scope, limit, None).await?.0)
    }

    async fn search_messages(
        &self,
        scope: &Scope,
        q: &super::MessageSearch,
    ) -> Result<Vec<super::MessageHit>, StoreError> {
        self.with(async |c| reads::search_messages(c, scope, q).await).await
    }

    async fn suppressions_after(
        &self,
        scope: &Scope,
        limit: usize,
        after: Option<&super::SuppressionCursor>,
    ) -> Result<(Vec<Suppression>, Option<super::SuppressionCursor>), StoreError> {
        self.with(async |c| reads::suppressions(c, scope, limit, after).await).await
    }

    async fn sent_log(&self, header_id: &str) -> Result<Vec<SentEntry>, StoreError> {
        let header_id = super::normalize_header_id(header_id);
        self.with(async |c| reads::sent_log(c, &header_id).await).await
    }

    async fn flush(&self, selection: &Selection, now: Timestamp) -> Result<usize, StoreError> {
        self.with(async |c| writes::flush(c, selection, now).await).await
    }

    async fn hold(&self, selection: &Selection, now: Timestamp) -> Result<usize, StoreError> {
        self.with(async |c| writes::hold(c, selection, now).await).await
    }

    async fn release(&self, selection: &Selection, now: Timestamp) -> Result<usize, StoreError> {
        self.with(async |c| writes::release(c, selection, now).await).await
    }

    async fn delete_messages(&self, selection: &Selection, now: Timestamp) -> Result<usize, StoreError> {
        self.with(async |c| writes::delete_messages(c, selection, now).await).await
    }

    async fn queue_summary(&self, now: Timestamp, top: usize) -> Result<QueueSummary, StoreError> {
        self.with(async |c| reads::queue_summary(c, now, top).await).await
    }

    async fn oldest_deferred(&self) -> Result<Option<crate::store::OldestDeferred>, StoreError> {
        self.with(async |c| reads::oldest_deferred(c).await).await
    }

    async fn delete_message(&self, id: &MessageId) -> Result<bool, StoreError> {
        self.with(async |c| writes::delete_message(c, id).await).await
    }

    async fn record_feedback(&self, feedback: Feedback) -> Result<bool, StoreError> {
        self.with(async |c| writes::record_feedback(c, &feedback).await).await
    }

    async fn webhook_cursor(&self, endpoint: &str) -> Result<i64, StoreError> {
        self.with(async |c| reads::webhook_cursor(c, endpoint).await).await
    }

    async fn sts_policy(&self, domain: &str) -> Result<Option<crate::tlspolicy::CachedPolicy>, StoreError> {
        self.with(async |c| reads::sts_policy(c, domain).await).await
    }

    async fn put_sts_policy(&self, policy: &crate::tlspolicy::CachedPolicy) -> Result<(), StoreError> {
        self.with(async |c| writes::put_sts_policy(c, policy).await).await
    }

    async fn record_tls_result(&self, result: &crate::tlspolicy::LastResult) -> Result<(), StoreError> {
        self.with(async |c| writes::record_tls_result(c, result).await).await
    }

    async fn tls_result(&self, domain: &str) -> Result<Option<crate::tlspolicy::LastResult>, StoreError> {
        self.with(async |c| reads::tls_result(c, domain).await).await
    }

    async fn count_tls_sessions(&self, count: &crate::tlspolicy::TlsCount) -> Result<(), StoreError> {
        self.with(async |c| writes::count_tls_sessions(c, count).await).await
    }

    async fn tls_report_due(
        &self,
        before: crate::tlspolicy::Day,
    ) -> Result<Vec<(crate::tlspolicy::Day, String)>, StoreError> {
        self.with(async |c| reads::tls_report_due(c, before).await).await
    }

    async fn take_tls_counts(
        &self,
        day: crate::tlspolicy::Day,
        domain: &str,
    ) -> Result<Vec<crate::tlspolicy::TlsCount>, StoreError> {
        self.with(async |c| writes::take_tls_counts(c, day, domain).await).await
    }

    async fn set_webhook_cursor(&self, endpoint: &str, last_event: i64) -> Result<(), StoreError> {
        self.with(async |c| writes::set_webhook_cursor(c, endpoint, last_event).await).await
    }

    async fn pause_account(&self, pause: AccountPause) -> Result<bool, StoreError> {
        let result = self.with(async |c| writes::pause_account(c, &pause).await).await;
        self.known_pauses.forget(&pause.account);
        result
    }

    async fn account_pause(&self, account: &str) -> Result<Option<AccountPause>, StoreError> {
        self.with(async |c| reads::paused(c, Some(account)).await).await.map(|v| v.into_iter().next())
    }

    async fn first_pause(&self, accounts: Vec<String>) -> Result<Option<AccountPause>, StoreError> {
        if accounts.is_empty() {
            return Ok(None);
        }
        let now = std::time::Instant::now();
        if let Some(known) = self.known_pauses.first(&accounts, now) {
            return Ok(known);
        }
        let changes = self.known_pauses.before_read();
        let paused = self.pauses.submit(PauseOf { accounts: accounts.clone() }).await?;
        self.known_pauses.learn(&accounts, &paused, now, changes);
        Ok(paused.into_iter().next())
    }

    async fn resume_account(&self, account: &str) -> Result<bool, StoreError> {
        let result = self.with(async |c| writes::resume_account(c, account).await).await;
        self.known_pauses.forget(account);
        result
    }

    async fn paused_accounts(&self) -> Result<Vec<AccountPause>, StoreError> {
        self.with(async |c| reads::paused(c, None).await).await
    }

    async fn suspect_account(&self, pause: AccountPause) -> Result<bool, StoreError> {
        let result = self.with(async |c| writes::suspect_account(c, &pause).await).await;
        self.known_pauses.forget(&pause.account);
        result
    }

    async fn account_history(
        &self,
        account: &str,
        since: crate::store::Hour,
    ) -> Result<crate::store::AccountHistory, StoreError> {
        self.with(async |c| reads::account_history(c, account, since).await).await
    }

    async fn record_account_activity(
        &self,
        batch: Vec<crate::store::AccountActivity>,
        forget_before: crate::store::Hour,
    ) -> Result<(), StoreError> {
        self.with(async |c| writes::record_account_activity(c, &batch, forget_before).await).await
    }

    async fn queue_depth(&self) -> Result<u64, StoreError> {
        self.with(async |c| reads::queue_depth(c).await).await
    }

    async fn queued_messages(&self) -> Result<u64, StoreError> {
        self.with(async |c| reads::queued_messages(c).await).await
    }

    async fn create_api_key(&self, key: ApiKey) -> Result<(), StoreError> {
        self.with(async |c| writes::create_api_key(c, &key).await).await
    }

    async fn api_key(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.with(async |c| reads::api_key(c, hash).await).await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.with(async |c| reads::api_keys(c).await).await
    }

    async fn revoke_api_key(&self, id: &str) -> Result<bool, StoreError> {
        self.with(async |c| writes::revoke_api_key(c, id).await).await
    }

    async fn rotate_api_key(&self, id: &str, hash: &str) -> Result<bool, StoreError> {
        self.with(async |c| writes::rotate_api_key(c, id, hash).await).await
    }

    async fn touch_api_key(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        self.with(async |c| writes::touch_api_key(c, id, at).await).await
    }

    async fn events_after(
        &self,
        after: i64,
        kind: Option<super::EventKind>,
        scope: &Scope,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.with(async |c| reads::events_after(c, after, kind, scope, limit).await).await
    }

    async fn learn(
        &self,
        sample: crate::store::learner::Sample,
        limits: crate::store::learner::LearnerLimits,
    ) -> Result<crate::store::learner::Learned, StoreError> {
        self.with(async |c| learner::learn(c, &sample, &limits).await).await
    }

    async fn learner_sample(&self, bounce: &MessageId) -> Result<Option<crate::store::learner::Sample>, StoreError> {
        self.with(async |c| learner::sample(c, bounce).await).await
    }

    async fn learner_model(&self, tokens: &[String]) -> Result<crate::store::learner::Model, StoreError> {
        self.with(async |c| learner::model(c, tokens).await).await
    }

    async fn delivery_overview(&self, since: Timestamp, top: usize) -> Result<super::DeliveryOverview, StoreError> {
        self.with(async |c| dashboard::delivery_overview(c, since, top).await).await
    }

    async fn queue_search(&self, filter: super::QueueFilter) -> Result<Vec<super::QueueRow>, StoreError> {
        self.with(async |c| dashboard::queue_search(c, &filter).await).await
    }

    async fn search_suppressions(&self, query: &str, limit: usize) -> Result<Vec<Suppression>, StoreError> {
        self.with(async |c| dashboard::search_suppressions(c, query, limit).await).await
    }
}

#[async_trait]
impl ClusterStore for PgStore {
    async fn cluster_secret(&self, name: &str, candidate: Option<&[u8]>) -> Result<Option<Vec<u8>>, StoreError> {
        match candidate {
            Some(candidate) => self.with(async |c| writes::cluster_secret(c, name, candidate).await).await.map(Some),
            None => self.with(async |c| reads::cluster_secret(c, name).await).await,
        }
    }

    async fn acquire_slot(
        &self,
        destination: &str,
        limit: u32,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<u32>, StoreError> {
        self.with(async |c| writes::acquire_slot(c, destination, limit, owner, now, until).await).await
    }

    async fn release_slot(&self, destination: &str, slot: u32, owner: &str) -> Result<(), StoreError> {
        self.with(async |c| writes::release_slot(c, destination, slot, owner).await).await
    }

    async fn renew_slots(
        &self,
        owner: &str,
        slots: &[(String, u32)],
        until: Timestamp,
    ) -> Result<Vec<(String, u32)>, StoreError> {
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        self.with(async |c| writes::renew_slots(c, owner, slots, until).await).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_young_store_is_analyzed_at_each_doubling() {
        let young = Young::new(0);
        assert!(!young.stored(999));
        assert!(young.stored(1), "at 1,000");
        assert!(!young.stored(999));
        assert!(young.stored(1), "at 2,000");
        assert!(!young.stored(1_999));
        assert!(young.stored(1), "at 4,000");
        // A store that statistics already know as large: not before it has doubled.
        let known = Young::new(1_000_000);
        assert!(!known.stored(999_999));
        assert!(known.stored(1));
    }
}
