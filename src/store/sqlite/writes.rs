//! The SQL of every write, run inside the writer thread's group-commit transaction.
//!
//! Must not: commit per request (the batch commits once), or answer before the COMMIT.

use std::sync::Arc;

use rusqlite::types::Value;
use rusqlite::{CachedStatement, Connection, OptionalExtension, Transaction, params};

use super::counts::{Counted, Counts};
use super::{Simple, Write};
use crate::store::learner::Learned;
use crate::store::{
    Attempt, Claim, Destination, EventKind, IdempotencyRecord, MessageId, NewMessage, Origin, RecipientId,
    RecipientState, ReportMark, Selection, StoreError, Transport, codec,
};
use crate::time::Timestamp;
use crate::tlspolicy::{Day, TlsCount};

/// A request's result, waiting for the batch's COMMIT before it is sent.
enum Outcome {
    Unit(Result<(), StoreError>),
    Settled(Result<Vec<MessageId>, StoreError>),
    Count(Result<usize, StoreError>),
    Claims(Result<Vec<Claim>, StoreError>),
    Learned(Result<Learned, StoreError>),
    TlsCounts(Result<Vec<TlsCount>, StoreError>),
}

impl Outcome {
    fn failed(&self) -> bool {
        match self {
            Outcome::Unit(r) => r.is_err(),
            Outcome::Settled(r) => r.is_err(),
            Outcome::Count(r) => r.is_err(),
            Outcome::Claims(r) => r.is_err(),
            Outcome::Learned(r) => r.is_err(),
            Outcome::TlsCounts(r) => r.is_err(),
        }
    }
}

/// Runs a group of requests in one transaction and one COMMIT, then answers each.
///
/// Requests seldom fail, so the group first runs straight through, without a SAVEPOINT per
/// request (each one made SQLite copy every page the request touched into a statement
/// journal). When a request fails, that transaction is rolled back and the group runs again
/// with each request in its own SAVEPOINT, so the failure undoes only its own writes and its
/// neighbours still commit.
pub(super) fn run_batch(conn: &mut Connection, batch: Vec<Write>) {
    let outcomes = match run_straight(conn, &batch) {
        Ok(Some(outcomes)) => Ok(outcomes),
        Ok(None) => run_isolated(conn, &batch),
        Err(e) => Err(e),
    };
    match outcomes {
        Ok(outcomes) => {
            for (write, outcome) in batch.into_iter().zip(outcomes) {
                answer(write, outcome);
            }
        }
        Err(e) => {
            for write in batch {
                let outcome = failure(&write, StoreError::Shared(e.clone()));
                answer(write, outcome);
            }
        }
    }
}

/// The error of a transaction that could not begin or commit (typed, so a full disk,
/// SQLITE_FULL, still reads as one: 452 4.3.1, not 451 4.3.0).
fn tx_error(e: rusqlite::Error) -> Arc<StoreError> {
    Arc::new(StoreError::Database(e))
}

/// The group in one transaction, no savepoints: the outcomes once committed, or None (rolled
/// back) as soon as a request fails.
fn run_straight(conn: &mut Connection, batch: &[Write]) -> Result<Option<Vec<Outcome>>, Arc<StoreError>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(tx_error)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut counts = Counts::default();
    for write in batch {
        // Dropping the transaction (any early return) rolls it back.
        if !write.counts_itself() && counts.flush(&tx).is_err() {
            return Ok(None);
        }
        let outcome = execute(&tx, write, &mut counts);
        if outcome.failed() {
            return Ok(None);
        }
        outcomes.push(outcome);
    }
    if counts.flush(&tx).is_err() {
        return Ok(None);
    }
    tx.commit().map_err(tx_error)?;
    Ok(Some(outcomes))
}

/// The group in one transaction, each request in its own savepoint: the outcomes, failures
/// included, once committed.
fn run_isolated(conn: &mut Connection, batch: &[Write]) -> Result<Vec<Outcome>, Arc<StoreError>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(tx_error)?;
    let outcomes = batch.iter().map(|write| in_savepoint(&tx, write)).collect();
    tx.commit().map_err(tx_error)?;
    Ok(outcomes)
}

/// Runs one request's SQL; the changes to the running counts of the writes that count
/// themselves are added to `counts`, not yet written.
fn execute(tx: &Transaction<'_>, write: &Write, counts: &mut Counts) -> Outcome {
    match write {
        Write::Insert(msgs, _) => Outcome::Unit(insert_all(tx, msgs, counts)),
        Write::Claim { transport, now, limit, lease_until, owner, .. } => {
            Outcome::Claims(claim(tx, *transport, *now, *limit, *lease_until, owner))
        }
        Write::Record(owner, attempts, _) => Outcome::Settled(record(tx, owner, attempts, counts)),
        Write::Mailbox { address, password_hash, quota, .. } => {
            Outcome::Unit(upsert_mailbox(tx, address, password_hash.as_deref(), *quota))
        }
        Write::Simple(op, _) => Outcome::Count(simple(tx, op)),
        Write::Learn(sample, limits, _) => Outcome::Learned(super::learner::learn(tx, sample, limits)),
        Write::TakeTlsCounts(day, domain, _) => Outcome::TlsCounts(take_tls_counts(tx, *day, domain)),
    }
}

/// The failed outcome of the kind `write` answers with.
fn failure(write: &Write, e: StoreError) -> Outcome {
    match write {
        Write::Claim { .. } => Outcome::Claims(Err(e)),
        Write::Simple(..) => Outcome::Count(Err(e)),
        Write::Learn(..) => Outcome::Learned(Err(e)),
        Write::TakeTlsCounts(..) => Outcome::TlsCounts(Err(e)),
        Write::Record(..) => Outcome::Settled(Err(e)),
        Write::Insert(..) | Write::Mailbox { .. } => Outcome::Unit(Err(e)),
    }
}

/// Sends a request its outcome. A receiver that went away (client disconnected) is not an
/// error here.
fn answer(write: Write, outcome: Outcome) {
    match (write, outcome) {
        (Write::Insert(msgs, reply), Outcome::Unit(r)) => drop(reply.send((r, msgs))),
        (Write::Record(_, _, reply), Outcome::Settled(r)) => drop(reply.send(r)),
        (Write::Mailbox { reply, .. }, Outcome::Unit(r)) => drop(reply.send(r)),
        (Write::Claim { reply, .. }, Outcome::Claims(r)) => drop(reply.send(r)),
        (Write::Simple(_, reply), Outcome::Count(r)) => drop(reply.send(r)),
        (Write::Learn(_, _, reply), Outcome::Learned(r)) => drop(reply.send(r)),
        (Write::TakeTlsCounts(_, _, reply), Outcome::TlsCounts(r)) => drop(reply.send(r)),
        // `execute` and `failure` answer each request in its own kind; dropping the reply
        // tells the caller the store closed.
        _ => tracing::error!("store writer: a request met an outcome of another kind"),
    }
}

/// Deletes and returns the TLS counts of `domain` on `day`.
fn take_tls_counts(tx: &Transaction<'_>, day: Day, domain: &str) -> Result<Vec<TlsCount>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "DELETE FROM tls_report_counts WHERE day = ?1 AND domain = ?2
         RETURNING day, domain, policy_type, policy_id, policy_body, result, mx_host, receiving_ip, sending_ip, sessions",
    )?;
    let rows = stmt.query_map(params![day.0, domain], |r| {
        Ok(codec::TlsCountColumns {
            day: r.get(0)?,
            domain: r.get(1)?,
            policy_type: r.get(2)?,
            policy_id: r.get(3)?,
            policy_body: r.get(4)?,
            result: r.get(5)?,
            mx_host: r.get(6)?,
            receiving_ip: r.get(7)?,
            sending_ip: r.get(8)?,
            sessions: r.get(9)?,
        })
    })?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.decode()?);
    }
    Ok(out)
}

/// Runs one request in a SAVEPOINT so its failure does not undo its batch neighbours.
fn in_savepoint(tx: &Transaction<'_>, write: &Write) -> Outcome {
    let statement = |sql: &str| tx.prepare_cached(sql).and_then(|mut s| s.execute([])).map_err(StoreError::from);
    if let Err(e) = statement("SAVEPOINT req") {
        return failure(write, e);
    }
    let mut counts = Counts::default();
    let mut outcome = execute(tx, write, &mut counts);
    if let (false, Err(e)) = (outcome.failed(), counts.flush(tx)) {
        outcome = failure(write, e);
    }
    let end = if outcome.failed() {
        statement("ROLLBACK TO req").and_then(|_| statement("RELEASE req"))
    } else {
        statement("RELEASE req")
    };
    match end {
        Ok(_) => outcome,
        Err(e) => failure(write, e),
    }
}

/// The statements every message insert runs, prepared once for a request (a batch of 500
/// messages looks each up once, not 500 times, in the connection's statement cache).
struct Inserts<'t> {
    message: CachedStatement<'t>,
    recipient: CachedStatement<'t>,
    queued: CachedStatement<'t>,
    sent: CachedStatement<'t>,
}

impl<'t> Inserts<'t> {
    fn prepare(tx: &'t Transaction<'_>) -> Result<Self, StoreError> {
        Ok(Inserts {
            message: tx.prepare_cached(
                "INSERT INTO messages (id, reverse_path, envid, ret, size, received_at, origin, body, message_id_header)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?,
            recipient: tx.prepare_cached(
                "INSERT INTO recipients (message_id, address, orcpt, notify, transport, mailbox, bounce_message,
                                         bounce_recipient, state, next_attempt_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?9, ?9)",
            )?,
            queued: tx.prepare_cached(
                "INSERT INTO events (message_id, recipient, kind, status, detail, at, sandbox)
                 VALUES (?1, ?2, 'queued', NULL, ?3, ?4, ?5)",
            )?,
            sent: tx.prepare_cached(
                "INSERT OR IGNORE INTO sent_log (header_id, recipient, queue_id, sent_at) VALUES (?1, ?2, ?3, ?4)",
            )?,
        })
    }
}

/// Messages inserted by one request, all with the same prepared statements.
fn insert_all(tx: &Transaction<'_>, msgs: &[NewMessage], counts: &mut Counts) -> Result<(), StoreError> {
    let mut s = Inserts::prepare(tx)?;
    let mut texts: Option<OriginTexts<'_>> = None;
    for m in msgs {
        let t = match texts.take() {
            Some(t) if *t.origin == m.origin => t,
            _ => OriginTexts::of(&m.origin)?,
        };
        insert(tx, &mut s, m, &t, counts)?;
        texts = Some(t);
    }
    Ok(())
}

/// What the rows of a message say of its origin: the column's JSON and the `queued` events'
/// detail. The messages of one request mostly share one origin (a batch's all do), so they
/// are written once for a run of equal origins.
struct OriginTexts<'m> {
    origin: &'m Origin,
    json: String,
    queued_from: String,
}

impl<'m> OriginTexts<'m> {
    fn of(origin: &'m Origin) -> Result<Self, StoreError> {
        Ok(OriginTexts {
            origin,
            json: serde_json::to_string(origin).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            queued_from: format!("from {} via {}", origin.client_ip, origin.via),
        })
    }
}

fn insert(
    tx: &Transaction<'_>,
    s: &mut Inserts<'_>,
    msg: &NewMessage,
    texts: &OriginTexts<'_>,
    counts: &mut Counts,
) -> Result<(), StoreError> {
    if let Some(record) = &msg.idempotency {
        idempotency(tx, record)?;
    }
    let at = msg.received_at.millis();
    s.message.execute(params![
        msg.id.0,
        codec::reverse_path_text(&msg.reverse_path),
        msg.envid,
        codec::ret_text(msg.ret),
        msg.body.len() as i64,
        at,
        texts.json,
        msg.body,
        msg.header_message_id.as_deref().map(str::trim)
    ])?;
    let sandbox = msg.origin.sandbox;
    if !msg.reports.is_empty() {
        let mut mark_final =
            tx.prepare_cached("UPDATE recipients SET final_reported = 1 WHERE id = ?1 AND final_reported = 0")?;
        let mut mark_delay =
            tx.prepare_cached("UPDATE recipients SET delay_reported = 1 WHERE id = ?1 AND delay_reported = 0")?;
        for (id, mark) in &msg.reports {
            let changed = match mark {
                ReportMark::Final => mark_final.execute([id.0])?,
                ReportMark::Delay => mark_delay.execute([id.0])?,
            };
            if changed == 0 {
                return Err(StoreError::AlreadyReported);
            }
        }
    }
    if !msg.notes.is_empty() {
        let mut note = tx.prepare_cached(
            "INSERT INTO events (message_id, recipient, kind, status, detail, at, sandbox)
             VALUES (?1, ?2, 'check', NULL, ?3, ?4, ?5)",
        )?;
        for (rcpt, text) in &msg.notes {
            note.execute(params![msg.id.0, rcpt, text, at, sandbox])?;
        }
    }
    let header_id = msg.header_message_id.as_deref().map(super::super::normalize_header_id).filter(|h| !h.is_empty());
    let queued_from = &texts.queued_from;
    for r in &msg.recipients {
        if sandbox {
            // Recorded, not queued: no recipient row (nothing claims it), no sent log.
            s.queued.execute(params![msg.id.0, r.address, queued_from, at, true])?;
            continue;
        }
        if let (Some(h), Transport::Remote) = (&header_id, r.transport()) {
            s.sent.execute(params![h, r.address.to_lowercase(), msg.id.0, at])?;
        }
        counts.inserted(&r.address, r.transport());
        let d = r.destination.columns();
        s.recipient.execute(params![
            msg.id.0,
            r.address,
            r.orcpt,
            codec::notify_text(r.notify),
            d.transport,
            d.mailbox,
            d.bounce_message,
            d.bounce_recipient,
            at
        ])?;
        s.queued.execute(params![msg.id.0, r.address, queued_from, at, false])?;
    }
    if !msg.rejected.is_empty() {
        let mut rejected = tx.prepare_cached(
            "INSERT INTO events (message_id, recipient, kind, status, detail, at, sandbox)
             VALUES (?1, ?2, 'rejected', ?3, ?4, ?5, ?6)",
        )?;
        for r in &msg.rejected {
            rejected.execute(params![
                msg.id.0,
                r.address,
                codec::status_text(Some(r.status)),
                r.detail,
                at,
                sandbox
            ])?;
        }
    }
    Ok(())
}

/// Expired idempotency records removed with each new one, at most (the lazy cleanup).
const IDEMPOTENCY_SWEEP: i64 = 100;

/// Writes a message's idempotency record, in the message's savepoint: an expired record of
/// the same key is replaced, a live one makes the whole insert fail (`IdempotencyKeyTaken`).
/// A few expired records of other keys go at the same time.
fn idempotency(tx: &Transaction<'_>, r: &IdempotencyRecord) -> Result<(), StoreError> {
    let now = r.created_at.millis();
    tx.prepare_cached(
        "DELETE FROM idempotency WHERE rowid IN
             (SELECT rowid FROM idempotency WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)",
    )?
    .execute(params![now, IDEMPOTENCY_SWEEP])?;
    tx.prepare_cached("DELETE FROM idempotency WHERE api_key = ?1 AND key = ?2 AND expires_at <= ?3")?
        .execute(params![r.api_key, r.key, now])?;
    let stored = tx
        .prepare_cached(
            "INSERT INTO idempotency (api_key, key, request_hash, message_id, status, response, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (api_key, key) DO NOTHING",
        )?
        .execute(params![
            r.api_key,
            r.key,
            r.request_hash,
            r.message_id.0,
            r.status,
            r.response,
            now,
            r.expires_at.millis()
        ])?;
    if stored == 0 {
        return Err(StoreError::IdempotencyKeyTaken);
    }
    Ok(())
}

fn claim(
    tx: &Transaction<'_>,
    transport: Transport,
    now: Timestamp,
    limit: usize,
    lease_until: Timestamp,
    owner: &str,
) -> Result<Vec<Claim>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "UPDATE recipients SET lease_owner = ?1, next_attempt_at = ?2
         WHERE id IN (SELECT id FROM recipients
                      WHERE transport = ?3 AND state IN ('queued', 'deferred') AND next_attempt_at <= ?4
                      ORDER BY next_attempt_at LIMIT ?5)
         RETURNING id, message_id, address, attempts, notify, orcpt, transport, mailbox, bounce_message,
                   bounce_recipient",
    )?;
    type Row =
        (i64, String, String, u32, Option<String>, Option<String>, String, Option<String>, Option<String>, Option<i64>);
    let rows: Vec<Row> = stmt
        .query_map(params![owner, lease_until.millis(), transport.as_str(), now.millis(), limit as i64], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut claims = Vec::with_capacity(rows.len());
    let mut meta =
        tx.prepare_cached("SELECT size, received_at, reverse_path, envid, ret FROM messages WHERE id = ?1")?;
    type Meta = (i64, i64, String, Option<String>, Option<String>);
    // The recipients of one message come together (one due time): its row is read once.
    let mut last: Option<(String, Meta)> = None;
    for (id, message, address, attempts, notify, orcpt, transport, mailbox, bounce_message, bounce_recipient) in rows {
        let destination = Destination::from_columns(&transport, mailbox, bounce_message, bounce_recipient)?;
        let (size, received_at, reverse_path, envid, ret) = match &last {
            Some((m, meta)) if *m == message => meta.clone(),
            _ => {
                let row: Meta = meta.query_row([&message], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get(3)?, r.get(4)?))
                })?;
                last = Some((message.clone(), row.clone()));
                row
            }
        };
        claims.push(Claim {
            recipient: RecipientId(id),
            message: MessageId(message),
            address,
            destination,
            attempts,
            size: size as u64,
            received_at: Timestamp(received_at),
            reverse_path: codec::reverse_path(reverse_path)?,
            envid,
            ret: codec::ret(ret)?,
            notify: codec::notify(notify)?,
            orcpt,
            body: None,
        });
    }
    Ok(claims)
}

/// Records attempts on recipients leased to `owner`, each with its event; counts its own
/// changes (the update trigger skips a change of `attempts`, which only this makes). Settles
/// the messages it leaves with nothing to report (`Store::record_attempts`) and returns them.
fn record(
    tx: &Transaction<'_>,
    owner: &str,
    attempts: &[Attempt],
    counts: &mut Counts,
) -> Result<Vec<MessageId>, StoreError> {
    let now = Timestamp::now().millis();
    let mut before = tx.prepare_cached(
        "SELECT message_id, address, transport, state, last_status, updated_at FROM recipients
         WHERE id = ?1 AND lease_owner = ?2",
    )?;
    let mut update = tx.prepare_cached(
        "UPDATE recipients SET state = ?1, attempts = attempts + 1, next_attempt_at = ?2, lease_owner = NULL,
                last_status = ?3, last_detail = ?4, updated_at = ?5, reply_code = ?8, remote_mta = ?9
         WHERE id = ?6 AND lease_owner = ?7",
    )?;
    let mut event = tx.prepare_cached(
        "INSERT INTO events (message_id, recipient, kind, status, detail, at, remote) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut usage = tx.prepare_cached(
        "INSERT INTO mailboxes (address, used_bytes) VALUES (?1, ?2)
         ON CONFLICT (address) DO UPDATE SET used_bytes = used_bytes + excluded.used_bytes",
    )?;
    let mut settle = tx.prepare_cached(
        "UPDATE messages SET body = x'', done = 1 WHERE id = ?1 AND done = 0
         AND NOT EXISTS (SELECT 1 FROM recipients WHERE message_id = ?1
                         AND (state <> 'delivered' OR notify LIKE '%SUCCESS%'))",
    )?;
    type Before = (String, String, String, String, Option<String>, i64);
    let mut candidates: Vec<String> = Vec::new();
    for a in attempts {
        let row: Option<Before> = before
            .query_row(params![a.recipient.0, owner], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .optional()?;
        // No row: our lease ran out and someone else owns the recipient now; their record wins.
        let Some((message, address, transport, state, last_status, updated_at)) = row else { continue };
        let next = match a.state {
            RecipientState::Queued | RecipientState::Deferred => {
                Some(a.next_attempt_at.unwrap_or(Timestamp(now)).millis())
            }
            _ => None,
        };
        let status = codec::status_text(Some(a.status));
        update.execute(params![
            a.state.as_str(),
            next,
            status,
            a.detail,
            now,
            a.recipient.0,
            owner,
            a.reply_code,
            a.remote
        ])?;
        let old = Counted { address: &address, state: &state, status: last_status.as_deref(), at: updated_at };
        let new = Counted { address: &address, state: a.state.as_str(), status: status.as_deref(), at: now };
        counts.changed(&transport, &old, &new);
        event.execute(params![
            message,
            address,
            a.event.unwrap_or(a.state.into()).as_str(),
            status,
            a.detail,
            now,
            a.remote
        ])?;
        if let Some((mailbox, bytes)) = &a.mailbox_bytes {
            usage.execute(params![mailbox, *bytes as i64])?;
        }
        // Only a delivery can finish a message with nothing to report.
        if a.state == RecipientState::Delivered && !candidates.contains(&message) {
            candidates.push(message);
        }
    }
    let mut settled = Vec::new();
    for message in candidates {
        if settle.execute([&message])? > 0 {
            settled.push(MessageId(message));
        }
    }
    Ok(settled)
}

fn upsert_mailbox(
    tx: &Transaction<'_>,
    address: &str,
    hash: Option<&str>,
    quota: Option<u64>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO mailboxes (address, password_hash, quota, password_changed_at)
         VALUES (?1, ?2, ?3, CASE WHEN ?2 IS NULL THEN NULL ELSE ?4 END)
         ON CONFLICT (address) DO UPDATE SET password_hash = COALESCE(excluded.password_hash, password_hash),
                                             quota = COALESCE(excluded.quota, quota),
                                             password_changed_at = COALESCE(excluded.password_changed_at, password_changed_at)",
    )?
    .execute(params![address, hash, quota.map(|q| q as i64), Timestamp::now().millis()])?;
    Ok(())
}

fn simple(tx: &Transaction<'_>, op: &Simple) -> Result<usize, StoreError> {
    let now = Timestamp::now().millis();
    Ok(match op {
        Simple::Suppress(e, event, detail) => {
            // An identical entry is no news: no update (0 rows changed), so no second event;
            // a sender-domain entry never narrows a global one.
            let n = tx
                .prepare_cached(
                    "INSERT INTO suppressions (address, reason, status, detail, message_id, created_at, domain, scope)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (address, ifnull(domain, '')) DO UPDATE SET reason = excluded.reason,
                     status = excluded.status, detail = excluded.detail, message_id = excluded.message_id,
                     scope = excluded.scope
                 WHERE (suppressions.scope = 'sender_domain' OR excluded.scope = 'global')
                   AND (suppressions.reason IS NOT excluded.reason OR suppressions.status IS NOT excluded.status
                    OR suppressions.detail IS NOT excluded.detail OR suppressions.message_id IS NOT excluded.message_id
                    OR suppressions.scope IS NOT excluded.scope)",
                )?
                .execute(params![
                    e.address,
                    e.reason,
                    e.status,
                    e.detail,
                    e.message_id,
                    now,
                    e.domain.as_ref().map(|d| d.as_str()),
                    e.scope.as_str()
                ])?;
            // A suppression caused by a message is an event of that message (for webhooks).
            if let (1.., Some(m)) = (n, &e.message_id) {
                tx.prepare_cached(
                    "INSERT INTO events (message_id, recipient, kind, status, detail, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![m, e.address, event.as_str(), e.status, detail, now])?;
            }
            n
        }
        Simple::Unsuppress(a, scope) => tx
            .prepare_cached(&format!(
                "DELETE FROM suppressions WHERE address = ?1 AND {}",
                super::reads::in_scope("domain", 2)
            ))?
            .execute(params![a, scope])?,
        Simple::StsPolicy(p) => tx
            .prepare_cached(
                "INSERT INTO mta_sts_policies (domain, policy_id, body, fetched_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (domain) DO UPDATE SET policy_id = excluded.policy_id, body = excluded.body,
                     fetched_at = excluded.fetched_at, expires_at = excluded.expires_at",
            )?
            .execute(params![p.domain, p.id, p.body, p.fetched_at.millis(), p.expires_at.millis()])?,
        Simple::TlsResult(r) => tx
            .prepare_cached(
                "INSERT INTO tls_results (domain, policy, result, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (domain) DO UPDATE SET policy = excluded.policy, result = excluded.result,
                     detail = excluded.detail, at = excluded.at",
            )?
            .execute(params![r.domain, r.policy, r.result.as_str(), r.detail, r.at.millis()])?,
        Simple::TlsCount(n) => {
            let c = codec::TlsCountColumns::encode(n);
            tx.prepare_cached(
                "INSERT INTO tls_report_counts (day, domain, policy_type, policy_id, policy_body, result, mx_host,
                     receiving_ip, sending_ip, sessions) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (day, domain, policy_type, policy_id, result, mx_host, receiving_ip, sending_ip)
                 DO UPDATE SET sessions = sessions + excluded.sessions, policy_body = excluded.policy_body",
            )?
            .execute(params![
                c.day,
                c.domain,
                c.policy_type,
                c.policy_id,
                c.policy_body,
                c.result,
                c.mx_host,
                c.receiving_ip,
                c.sending_ip,
                c.sessions
            ])?
        }
        Simple::WebhookCursor(endpoint, last) => tx
            .prepare_cached(
                "INSERT INTO webhook_cursors (endpoint, last_event) VALUES (?1, ?2)
                 ON CONFLICT (endpoint) DO UPDATE SET last_event = max(last_event, excluded.last_event)",
            )?
            .execute(params![endpoint, last])?,
        Simple::Pause(p) => {
            let n = tx
                .prepare_cached(
                    "INSERT INTO paused_accounts (account, detail, message_id, paused_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (account) DO NOTHING",
                )?
                .execute(params![p.account, p.detail, p.message_id, now])?;
            if let (1, Some(m)) = (n, &p.message_id) {
                tx.prepare_cached(
                    "INSERT INTO events (message_id, recipient, kind, status, detail, at) VALUES (?1, NULL, 'account_paused', NULL, ?2, ?3)",
                )?
                .execute(params![m, format!("{}: {}", p.account, p.detail), now])?;
            }
            n
        }
        Simple::Suspect(p) => {
            let n = tx
                .prepare_cached(
                    "INSERT INTO paused_accounts (account, detail, message_id, paused_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (account) DO NOTHING",
                )?
                .execute(params![p.account, p.detail, p.message_id, now])?;
            if n == 1 {
                tx.prepare_cached(
                    "INSERT INTO events (message_id, recipient, kind, status, detail, at) VALUES (?1, NULL, 'account_suspected', NULL, ?2, ?3)",
                )?
                .execute(params![p.message_id.as_deref().unwrap_or(""), format!("{}: {}", p.account, p.detail), now])?;
            }
            n
        }
        Simple::AccountActivity(batch, forget_before) => {
            for a in batch {
                tx.prepare_cached(
                    "INSERT INTO account_baselines (account, first_seen) VALUES (?1, ?2)
                     ON CONFLICT (account) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen)",
                )?
                .execute(params![a.account, a.first_seen.millis()])?;
                for h in &a.hours {
                    tx.prepare_cached(
                        "INSERT INTO account_hours (account, hour, messages, domains) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (account, hour) DO UPDATE SET messages = messages + excluded.messages,
                             domains = max(domains, excluded.domains)",
                    )?
                    .execute(params![a.account, h.hour.0, codec::count_value(h.messages), codec::count_value(h.domains)])?;
                }
                for v in &a.seen {
                    let (kind, value) = codec::seen_columns(&v.seen);
                    tx.prepare_cached(
                        "INSERT INTO account_seen (account, kind, value, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?4)
                         ON CONFLICT (account, kind, value) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)",
                    )?
                    .execute(params![a.account, kind, value, v.last.millis()])?;
                }
                tx.prepare_cached("DELETE FROM account_hours WHERE account = ?1 AND hour < ?2")?
                    .execute(params![a.account, forget_before.0])?;
            }
            batch.len()
        }
        Simple::Resume(account) => {
            tx.prepare_cached("DELETE FROM paused_accounts WHERE account = ?1")?.execute([account])?
        }
        Simple::ApiKey(k) => {
            let (admin, domains) = k.scope.to_stored()?;
            tx.prepare_cached(
                "INSERT INTO api_keys (id, name, key_hash, domains, created_at, admin, sandbox)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![k.id, k.name, k.hash, domains, now, admin, k.sandbox])?
        }
        Simple::RevokeKey(id) => tx.prepare_cached("DELETE FROM api_keys WHERE id = ?1")?.execute([id])?,
        Simple::PutTemplate(t) => tx
            .prepare_cached(
                "INSERT INTO templates (api_key, name, subject, text, html, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (api_key, name) DO UPDATE SET subject = excluded.subject, text = excluded.text,
                     html = excluded.html, updated_at = excluded.updated_at",
            )?
            .execute(params![
                t.api_key,
                t.name,
                t.subject,
                t.text,
                t.html,
                t.created_at.millis(),
                t.updated_at.millis()
            ])?,
        Simple::DeleteTemplate(api_key, name) => tx
            .prepare_cached("DELETE FROM templates WHERE api_key = ?1 AND name = ?2")?
            .execute(params![api_key, name])?,
        Simple::RotateKey(id, hash) => {
            tx.prepare_cached("UPDATE api_keys SET key_hash = ?2 WHERE id = ?1")?.execute(params![id, hash])?
        }
        Simple::TouchKey(id, at) => tx
            .prepare_cached("UPDATE api_keys SET last_used_at = max(ifnull(last_used_at, 0), ?2) WHERE id = ?1")?
            .execute(params![id, at.millis()])?,
        Simple::ReleaseBody(id) => tx
            .prepare_cached(
                "UPDATE messages SET body = x'', done = 1 WHERE id = ?1 AND done = 0
                 AND NOT EXISTS (SELECT 1 FROM recipients WHERE message_id = ?1
                                 AND state IN ('queued', 'deferred', 'held'))",
            )?
            .execute([&id.0])?,
        Simple::RenewLeases(owner, ids, until) => {
            let mut renew = tx.prepare_cached(
                "UPDATE recipients SET next_attempt_at = ?3 WHERE id = ?1 AND lease_owner = ?2
                 AND state IN ('queued', 'deferred')",
            )?;
            let mut held = 0;
            for id in ids {
                held += renew.execute(params![id.0, owner, until.millis()])?;
            }
            held
        }
        Simple::Flush(sel, at) => {
            let mut args = vec![Value::Integer(at.millis())];
            let filter = selected(sel, &[RecipientState::Queued, RecipientState::Deferred], &mut args);
            tx.prepare_cached(&format!(
                "UPDATE recipients SET next_attempt_at = ?1 WHERE {filter} AND lease_owner IS NULL"
            ))?
            .execute(rusqlite::params_from_iter(args))?
        }
        Simple::Hold(sel, at) => {
            let mut args = vec![Value::Integer(at.millis())];
            let filter = selected(sel, &[RecipientState::Queued, RecipientState::Deferred], &mut args);
            // A lease that ran out (its worker died) is no delivery in progress.
            let sql = format!(
                "UPDATE recipients SET state = 'held', lease_owner = NULL, updated_at = ?1
                 WHERE {filter} AND (lease_owner IS NULL OR next_attempt_at <= ?1) RETURNING message_id, address"
            );
            changed_with_events(tx, &sql, args, EventKind::Held, "held by an operator", *at)?
        }
        Simple::Release(sel, at) => {
            let mut args = vec![Value::Integer(at.millis())];
            let filter = selected(sel, &[RecipientState::Held], &mut args);
            let sql = format!(
                "UPDATE recipients SET state = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END,
                        next_attempt_at = ?1, updated_at = ?1
                 WHERE {filter} RETURNING message_id, address"
            );
            changed_with_events(tx, &sql, args, EventKind::Released, "released by an operator", *at)?
        }
        Simple::DeleteAll(sel, at) => {
            let mut args = Vec::new();
            let filter = selected(sel, &RecipientState::WAITING, &mut args);
            let ids: Vec<String> = tx
                .prepare_cached(&format!("SELECT DISTINCT message_id FROM recipients WHERE {filter}"))?
                .query_map(rusqlite::params_from_iter(args), |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut deleted = 0;
            for id in ids {
                deleted += delete(tx, &MessageId(id), at.millis())?;
            }
            deleted
        }
        Simple::Feedback(f) => {
            let kind = if f.delay { EventKind::Delayed } else { EventKind::Bounced }.as_str();
            tx.prepare_cached(
                "INSERT INTO events (message_id, recipient, kind, status, detail, at, remote) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                    f.message.0,
                    f.address,
                    kind,
                    codec::status_text(f.status),
                    format!("bounce received: {}", f.detail),
                    now,
                    f.remote
                ])?;
            if f.delay {
                0
            } else {
                tx.prepare_cached(
                    "UPDATE recipients SET state = 'bounced', last_status = ?2, last_detail = ?3, remote_mta = ?4,
                            reply_code = NULL, updated_at = ?5
                     WHERE id = ?1 AND state = 'delivered'",
                )?
                .execute(params![
                    f.recipient.0,
                    codec::status_text(f.status),
                    f.detail,
                    f.remote,
                    now
                ])?
            }
        }
        Simple::Delete(id) => delete(tx, id, now)?,
        Simple::Rehash(address, old, new) => tx
            .prepare_cached("UPDATE mailboxes SET password_hash = ?3 WHERE address = ?1 AND password_hash = ?2")?
            .execute(params![address, old, new])?,
        Simple::AddAppPassword(a) => tx
            .prepare_cached(
                "INSERT INTO app_passwords (address, name, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![a.address, a.name, a.hash, a.created_at.millis()])?,
        Simple::RevokeAppPassword(address, name) => tx
            .prepare_cached("DELETE FROM app_passwords WHERE address = ?1 AND name = ?2")?
            .execute(params![address, name])?,
        Simple::TouchAppPassword(address, name, at, ip) => tx
            .prepare_cached(
                "UPDATE app_passwords SET last_used_at = ?3, last_used_ip = ?4
                 WHERE address = ?1 AND name = ?2 AND ifnull(last_used_at, 0) <= ?3",
            )?
            .execute(params![address, name, at.millis(), codec::ip_text(*ip)])?,
        Simple::EnableSecondFactor(address, secret, hashes, at) => {
            tx.prepare_cached(
                "INSERT INTO second_factors (address, secret, enabled_at, last_step) VALUES (?1, ?2, ?3, NULL)
                 ON CONFLICT (address) DO UPDATE SET secret = excluded.secret, enabled_at = excluded.enabled_at,
                                                     last_step = NULL",
            )?
            .execute(params![address, secret.0, at.millis()])?;
            tx.prepare_cached("DELETE FROM recovery_codes WHERE address = ?1")?.execute([address])?;
            let mut insert = tx.prepare_cached("INSERT INTO recovery_codes (address, code_hash) VALUES (?1, ?2)")?;
            for h in hashes {
                insert.execute(params![address, h])?;
            }
            1
        }
        Simple::DisableSecondFactor(address) => {
            tx.prepare_cached("DELETE FROM recovery_codes WHERE address = ?1")?.execute([address])?;
            tx.prepare_cached("DELETE FROM second_factors WHERE address = ?1")?.execute([address])?
        }
        Simple::DeleteMailbox(address) => {
            for table in ["recovery_codes", "second_factors", "app_passwords"] {
                tx.prepare_cached(&format!("DELETE FROM {table} WHERE address = ?1"))?.execute([address])?;
            }
            tx.prepare_cached("DELETE FROM mailboxes WHERE address = ?1")?.execute([address])?
        }
        Simple::UseTotpStep(address, step) => tx
            .prepare_cached(
                "UPDATE second_factors SET last_step = ?2
                 WHERE address = ?1 AND (last_step IS NULL OR last_step < ?2)",
            )?
            .execute(params![address, codec::step_value(*step)?])?,
        Simple::UseRecoveryCode(address, hash, at) => tx
            .prepare_cached(
                "UPDATE recovery_codes SET used_at = ?3 WHERE address = ?1 AND code_hash = ?2 AND used_at IS NULL",
            )?
            .execute(params![address, hash, at.millis()])?,
    })
}

/// Deletes a message and its recipients; 1 when it was there, else 0.
fn delete(tx: &Transaction<'_>, id: &MessageId, now: i64) -> Result<usize, StoreError> {
    tx.prepare_cached("DELETE FROM recipients WHERE message_id = ?1")?.execute([&id.0])?;
    let n = tx.prepare_cached("DELETE FROM messages WHERE id = ?1")?.execute([&id.0])?;
    // Only a message that was there has a deletion to report (events reach webhooks).
    if n > 0 {
        tx.prepare_cached(
            "INSERT INTO events (message_id, kind, detail, at) VALUES (?1, 'deleted', 'deleted by an operator', ?2)",
        )?
        .execute(params![id.0, now])?;
    }
    Ok(n)
}

/// The recipient domain as the dashboard's index spells it.
const RECIPIENT_DOMAIN: &str = "lower(substr(address, instr(address, '@') + 1))";

/// The SQL condition for the recipients of `sel` among those in `states`; its values are
/// appended to `args` (numbered after the ones already there).
fn selected(sel: &Selection, states: &[RecipientState], args: &mut Vec<Value>) -> String {
    // The state names are ours (closed set), not input: safe to write into the SQL.
    let list: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let mut sql = format!("state IN ({})", list.join(", "));
    if let Some(m) = &sel.message {
        args.push(Value::Text(m.0.clone()));
        sql.push_str(&format!(" AND message_id = ?{}", args.len()));
    }
    if let Some(s) = sel.state {
        args.push(Value::Text(s.as_str().into()));
        sql.push_str(&format!(" AND state = ?{}", args.len()));
    }
    if let Some(d) = &sel.domain {
        args.push(Value::Text(d.to_lowercase()));
        sql.push_str(&format!(" AND {RECIPIENT_DOMAIN} = ?{}", args.len()));
    }
    sql
}

/// Runs an UPDATE … RETURNING message_id, address and records `kind` for each row changed.
fn changed_with_events(
    tx: &Transaction<'_>,
    sql: &str,
    args: Vec<Value>,
    kind: EventKind,
    detail: &str,
    at: Timestamp,
) -> Result<usize, StoreError> {
    let rows: Vec<(String, String)> = tx
        .prepare_cached(sql)?
        .query_map(rusqlite::params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut event = tx.prepare_cached(
        "INSERT INTO events (message_id, recipient, kind, status, detail, at) VALUES (?1, ?2, ?3, NULL, ?4, ?5)",
    )?;
    for (message, address) in &rows {
        event.execute(params![message, address, kind.as_str(), detail, at.millis()])?;
    }
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_at_one_domain_read_through_an_index() {
        let states: [&[RecipientState]; 3] =
            [&[RecipientState::Queued, RecipientState::Deferred], &[RecipientState::Held], &RecipientState::WAITING];
        for states in states {
            let sel = Selection { domain: Some("example.test".into()), ..Selection::default() };
            let mut args = Vec::new();
            let filter = selected(&sel, states, &mut args);
            let steps = super::super::query_plan(&format!("SELECT message_id FROM recipients WHERE {filter}"), args);
            let on_recipients: Vec<_> = steps.iter().filter(|s| s.contains(" recipients")).collect();
            assert!(!on_recipients.is_empty(), "{states:?}: {steps:?}");
            assert!(on_recipients.iter().all(|s| s.contains(" USING ")), "{states:?}: {steps:?}");
        }
    }
}
