//! The SQL of every write on PostgreSQL; each function, and each run of a batch (`Batched`:
//! inserts, records, releases of many callers, see `batch.rs`), is one transaction (mostly one
//! statement, which is its own transaction) and returns only after its COMMIT returned.
//!
//! Multi-row writes pass arrays and `unnest` them, so a batch of inserts or of attempts is a
//! single statement whatever its size.
//! Must not: return Ok before COMMIT, or touch a recipient leased to another owner.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio_postgres::types::ToSql;

use super::batch::Batched;
use super::pool::Conn;
use crate::store::{
    AccountPause, ApiKey, AppPassword, Attempt, Claim, Destination, EventKind, Feedback, MessageId, NewMessage,
    RecipientId, RecipientState, ReportMark, Scope, Selection, StoreError, Suppression, TotpSecret, Transport, codec,
};
use crate::time::Timestamp;

const MARK_FINAL: &str =
    "UPDATE recipients SET final_reported = true WHERE id = ANY($1::bigint[]) AND NOT final_reported";
const MARK_DELAY: &str =
    "UPDATE recipients SET delay_reported = true WHERE id = ANY($1::bigint[]) AND NOT delay_reported";

/// Messages, their recipients, their `queued` events, the check notes and the sent log, in
/// one statement (data-modifying CTEs) for a whole batch. Rows of the per-message tables carry
/// their message's id and join the inserted messages; `ORDER BY n` keeps the callers' order.
const INSERT: &str = "
WITH m AS (
    INSERT INTO messages (id, reverse_path, envid, ret, size, received_at, origin, body, message_id_header)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
                         $7::text[], $8::bytea[], $26::text[])
    RETURNING id, received_at
), r AS (
    INSERT INTO recipients (message_id, address, orcpt, notify, transport, mailbox, bounce_message, bounce_recipient,
                            state, next_attempt_at, updated_at)
    SELECT m.id, u.address, u.orcpt, u.notify, u.transport, u.mailbox, u.bounce_message, u.bounce_recipient,
           'queued', m.received_at, m.received_at
    FROM unnest($9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
                $16::bigint[])
         WITH ORDINALITY AS u(message_id, address, orcpt, notify, transport, mailbox, bounce_message,
                              bounce_recipient, n)
    JOIN m ON m.id = u.message_id
    ORDER BY u.n
), e AS (
    INSERT INTO events (message_id, recipient, kind, status, detail, at, sandbox)
    SELECT m.id, u.recipient, u.kind, u.status, u.detail, m.received_at, u.sandbox
    FROM unnest($17::text[], $18::text[], $19::text[], $20::text[], $24::bool[], $25::text[])
         WITH ORDINALITY AS u(message_id, recipient, kind, detail, sandbox, status, n)
    JOIN m ON m.id = u.message_id
    ORDER BY u.n
), s AS (
    INSERT INTO sent_log (header_id, recipient, queue_id, sent_at)
    SELECT DISTINCT u.header_id, u.recipient, m.id, m.received_at
    FROM unnest($21::text[], $22::text[], $23::text[]) AS u(message_id, header_id, recipient)
    JOIN m ON m.id = u.message_id
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM m";

/// The columns of `INSERT` for a batch of messages.
#[derive(Default)]
struct InsertColumns<'a> {
    ids: Vec<&'a str>,
    reverse_paths: Vec<String>,
    envids: Vec<Option<&'a str>>,
    rets: Vec<Option<&'static str>>,
    sizes: Vec<i64>,
    received: Vec<i64>,
    origins: Vec<String>,
    bodies: Vec<&'a [u8]>,
    header_ids: Vec<Option<&'a str>>,
    rcpt_message: Vec<&'a str>,
    addresses: Vec<&'a str>,
    orcpts: Vec<Option<&'a str>>,
    notifies: Vec<Option<String>>,
    transports: Vec<&'a str>,
    mailboxes: Vec<Option<&'a str>>,
    bounce_messages: Vec<Option<&'a str>>,
    bounce_recipients: Vec<Option<i64>>,
    ev_message: Vec<&'a str>,
    ev_rcpt: Vec<Option<&'a str>>,
    ev_kind: Vec<&'static str>,
    ev_detail: Vec<String>,
    ev_sandbox: Vec<bool>,
    ev_status: Vec<Option<String>>,
    sent_message: Vec<&'a str>,
    sent_header: Vec<String>,
    sent_rcpt: Vec<String>,
}

impl<'a> InsertColumns<'a> {
    fn push(&mut self, msg: &'a NewMessage) -> Result<(), StoreError> {
        let id = msg.id.0.as_str();
        self.ids.push(id);
        self.reverse_paths.push(codec::reverse_path_text(&msg.reverse_path));
        self.envids.push(msg.envid.as_deref());
        self.rets.push(codec::ret_text(msg.ret));
        self.sizes.push(msg.body.len() as i64);
        self.received.push(msg.received_at.millis());
        self.origins.push(serde_json::to_string(&msg.origin).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        self.bodies.push(&msg.body);
        self.header_ids.push(msg.header_message_id.as_deref().map(str::trim));
        let sandbox = msg.origin.sandbox;
        // A sandbox message's recipients are recorded as events only: no row claims them.
        for r in msg.recipients.iter().filter(|_| !sandbox) {
            self.rcpt_message.push(id);
            self.addresses.push(&r.address);
            self.orcpts.push(r.orcpt.as_deref());
            self.notifies.push(codec::notify_text(r.notify));
            let d = r.destination.columns();
            self.transports.push(d.transport);
            self.mailboxes.push(d.mailbox);
            self.bounce_messages.push(d.bounce_message);
            self.bounce_recipients.push(d.bounce_recipient);
        }
        // Events: the check notes, then one `queued` per recipient, then one `rejected` per
        // refused recipient (the same order as SQLite).
        for (rcpt, text) in &msg.notes {
            self.ev_message.push(id);
            self.ev_rcpt.push(rcpt.as_deref());
            self.ev_kind.push(EventKind::Check.as_str());
            self.ev_detail.push(text.clone());
            self.ev_sandbox.push(sandbox);
            self.ev_status.push(None);
        }
        let queued_detail = format!("from {} via {}", msg.origin.client_ip, msg.origin.via);
        for r in &msg.recipients {
            self.ev_message.push(id);
            self.ev_rcpt.push(Some(&r.address));
            self.ev_kind.push(EventKind::Queued.as_str());
            self.ev_detail.push(queued_detail.clone());
            self.ev_sandbox.push(sandbox);
            self.ev_status.push(None);
        }
        for r in &msg.rejected {
            self.ev_message.push(id);
            self.ev_rcpt.push(Some(&r.address));
            self.ev_kind.push(EventKind::Rejected.as_str());
            self.ev_detail.push(r.detail.clone());
            self.ev_sandbox.push(sandbox);
            self.ev_status.push(codec::status_text(Some(r.status)));
        }
        let header_id =
            msg.header_message_id.as_deref().map(crate::store::normalize_header_id).filter(|h| !h.is_empty());
        if let Some(header_id) = header_id.filter(|_| !sandbox) {
            for r in msg.recipients.iter().filter(|r| r.transport() == Transport::Remote) {
                self.sent_message.push(id);
                self.sent_header.push(header_id.clone());
                self.sent_rcpt.push(r.address.to_lowercase());
            }
        }
        Ok(())
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 26] {
        [
            &self.ids,
            &self.reverse_paths,
            &self.envids,
            &self.rets,
            &self.sizes,
            &self.received,
            &self.origins,
            &self.bodies,
            &self.rcpt_message,
            &self.addresses,
            &self.orcpts,
            &self.notifies,
            &self.transports,
            &self.mailboxes,
            &self.bounce_messages,
            &self.bounce_recipients,
            &self.ev_message,
            &self.ev_rcpt,
            &self.ev_kind,
            &self.ev_detail,
            &self.sent_message,
            &self.sent_header,
            &self.sent_rcpt,
            &self.ev_sandbox,
            &self.ev_status,
            &self.header_ids,
        ]
    }
}

/// Messages without reports are inserted in batches (`batch.rs`).
impl Batched for NewMessage {
    type Output = ();

    fn weight(&self) -> usize {
        self.body.len()
    }

    async fn run(c: &mut Conn, batch: &[NewMessage]) -> Result<Vec<()>, StoreError> {
        let mut columns = InsertColumns::default();
        for msg in batch {
            columns.push(msg)?;
        }
        let insert = c.stmt(INSERT).await?;
        // One statement outside a transaction block commits by itself, and its reply
        // comes after the COMMIT: one round trip for the whole batch.
        c.client.query_one(&insert, &columns.params()).await?;
        Ok(vec![(); batch.len()])
    }
}

/// Expired idempotency records removed with each new one, at most (the lazy cleanup).
const IDEMPOTENCY_SWEEP: i64 = 100;
/// A few expired records (rows other sweeps are deleting right now are skipped, not waited
/// for), and an expired record of the key about to be written.
const SWEEP_IDEMPOTENCY: &str = "
DELETE FROM idempotency WHERE ctid IN (SELECT ctid FROM idempotency WHERE expires_at <= $1
                                        ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
   OR (api_key = $3 AND key = $4 AND expires_at <= $1)";
/// A live record of the same key (committed, or committed by a concurrent transaction we
/// waited for) leaves the insert without a row: the key is taken.
const INSERT_IDEMPOTENCY: &str = "
INSERT INTO idempotency (api_key, key, request_hash, message_id, status, response, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (api_key, key) DO NOTHING";

/// Messages inserted in one transaction of their own, with the marks on the recipients they
/// report on (a DSN) and their idempotency records: a DSN or an idempotent send alone, or an
/// API batch (all its messages or none). One failure fails them all.
pub(super) async fn insert_together(c: &mut Conn, msgs: &[NewMessage]) -> Result<(), StoreError> {
    let (mut finals, mut delays) = (Vec::new(), Vec::new());
    let mut columns = InsertColumns::default();
    for msg in msgs {
        for (id, mark) in &msg.reports {
            match mark {
                ReportMark::Final => finals.push(id.0),
                ReportMark::Delay => delays.push(id.0),
            }
        }
        columns.push(msg)?;
    }
    let (mark_final, mark_delay) = (c.stmt(MARK_FINAL).await?, c.stmt(MARK_DELAY).await?);
    let (sweep, record) = (c.stmt(SWEEP_IDEMPOTENCY).await?, c.stmt(INSERT_IDEMPOTENCY).await?);
    let insert = c.stmt(INSERT).await?;
    let tx = c.client.transaction().await?;
    // The row locks taken here make a concurrent report on the same recipient wait for our
    // COMMIT and then find the mark set: exactly one of them is stored.
    for (ids, stmt) in [(&finals, &mark_final), (&delays, &mark_delay)] {
        if ids.is_empty() {
            continue;
        }
        let distinct: HashSet<i64> = ids.iter().copied().collect();
        let changed = tx.execute(stmt, &[ids]).await?;
        if distinct.len() != ids.len() || changed as usize != ids.len() {
            return Err(StoreError::AlreadyReported);
        }
    }
    // Likewise the unique index: a concurrent insert of the same key waits for our COMMIT
    // (or ROLLBACK), then finds our record and stores nothing.
    for r in msgs.iter().filter_map(|m| m.idempotency.as_ref()) {
        let now = r.created_at.millis();
        tx.execute(&sweep, &[&now, &IDEMPOTENCY_SWEEP, &r.api_key, &r.key]).await?;
        let status = i32::from(r.status);
        let stored = tx
            .execute(
                &record,
                &[
                    &r.api_key,
                    &r.key,
                    &r.request_hash,
                    &r.message_id.0,
                    &status,
                    &r.response,
                    &now,
                    &r.expires_at.millis(),
                ],
            )
            .await?;
        if stored == 0 {
            return Err(StoreError::IdempotencyKeyTaken);
        }
    }
    tx.query_one(&insert, &columns.params()).await?;
    tx.commit().await?;
    Ok(())
}

/// Leases due recipients: the candidates are locked `FOR UPDATE SKIP LOCKED` (rows another
/// node is claiming right now are skipped, not waited for) and moved to the lease's end.
const CLAIM: &str = "
WITH c AS (
    UPDATE recipients SET lease_owner = $1, next_attempt_at = $2
    WHERE id IN (SELECT id FROM recipients
                 WHERE transport = $3 AND state IN ('queued', 'deferred') AND next_attempt_at <= $4
                 ORDER BY next_attempt_at LIMIT $5
                 FOR UPDATE SKIP LOCKED)
    RETURNING id, message_id, address, transport, mailbox, bounce_message, bounce_recipient, attempts, notify, orcpt
)
SELECT c.id, c.message_id, c.address, c.attempts, c.notify, c.orcpt,
       m.size, m.received_at, m.reverse_path, m.envid, m.ret,
       CASE WHEN m.size <= $6 AND row_number() OVER (PARTITION BY c.message_id ORDER BY c.id) = 1
            THEN m.body END,
       c.transport, c.mailbox, c.bounce_message, c.bounce_recipient
FROM c JOIN messages m ON m.id = c.message_id
ORDER BY c.id";

/// Bodies up to this size come with their claim, once per message (a claim holds at most
/// `4 × outbound.max_deliveries` recipients, so at most a few tens of MB wait in memory).
const BODY_WITH_CLAIM: i64 = 32 * 1024;

pub(super) async fn claim(
    c: &mut Conn,
    transport: Transport,
    now: Timestamp,
    limit: usize,
    lease_until: Timestamp,
    owner: &str,
) -> Result<Vec<Claim>, StoreError> {
    let stmt = c.stmt(CLAIM).await?;
    let rows = c
        .client
        .query(
            &stmt,
            &[&owner, &lease_until.millis(), &transport.as_str(), &now.millis(), &(limit as i64), &BODY_WITH_CLAIM],
        )
        .await?;
    let mut claims = Vec::with_capacity(rows.len());
    let mut bodies: HashMap<String, Arc<Vec<u8>>> = HashMap::new();
    for r in rows {
        let message: String = r.try_get(1)?;
        let body = match r.try_get::<_, Option<Vec<u8>>>(11)? {
            Some(b) => Some(bodies.entry(message.clone()).or_insert(Arc::new(b)).clone()),
            None => bodies.get(&message).cloned(),
        };
        claims.push(Claim {
            recipient: RecipientId(r.try_get(0)?),
            message: MessageId(message),
            address: r.try_get(2)?,
            destination: Destination::from_columns(
                r.try_get::<_, &str>(12)?,
                r.try_get(13)?,
                r.try_get(14)?,
                r.try_get(15)?,
            )?,
            attempts: r.try_get::<_, i32>(3)? as u32,
            notify: codec::notify(r.try_get(4)?)?,
            orcpt: r.try_get(5)?,
            size: r.try_get::<_, i64>(6)? as u64,
            received_at: Timestamp(r.try_get(7)?),
            reverse_path: codec::reverse_path(r.try_get(8)?)?,
            envid: r.try_get(9)?,
            ret: codec::ret(r.try_get(10)?)?,
            body,
        });
    }
    Ok(claims)
}

const RENEW_LEASES: &str = "
UPDATE recipients SET next_attempt_at = $3
WHERE id = ANY($1::bigint[]) AND lease_owner = $2 AND state IN ('queued', 'deferred')";

pub(super) async fn renew_leases(
    c: &mut Conn,
    owner: &str,
    ids: &[RecipientId],
    until: Timestamp,
) -> Result<usize, StoreError> {
    let ids: Vec<i64> = ids.iter().map(|r| r.0).collect();
    let stmt = c.stmt(RENEW_LEASES).await?;
    Ok(c.client.execute(&stmt, &[&ids, &owner, &until.millis()]).await? as usize)
}

/// Takes the lowest free slot. Two nodes that pick the same free slot at once both insert;
/// the second waits for the first's row lock, then finds the lease live and gets no row (it
/// tries again later) — never two owners of one slot.
const ACQUIRE_SLOT: &str = "
WITH free AS (
    SELECT s FROM generate_series(0, $2::int - 1) AS s
    WHERE NOT EXISTS (SELECT 1 FROM destination_slots d
                      WHERE d.destination = $1 AND d.slot = s AND d.lease_until >= $4)
    ORDER BY s LIMIT 1
)
INSERT INTO destination_slots (destination, slot, owner, lease_until)
SELECT $1, s, $3, $5 FROM free
ON CONFLICT (destination, slot) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
    WHERE destination_slots.lease_until < $4
RETURNING slot";

pub(super) async fn acquire_slot(
    c: &mut Conn,
    destination: &str,
    limit: u32,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<Option<u32>, StoreError> {
    let stmt = c.stmt(ACQUIRE_SLOT).await?;
    let limit = limit.min(i32::MAX as u32) as i32;
    let row = c.client.query_opt(&stmt, &[&destination, &limit, &owner, &now.millis(), &until.millis()]).await?;
    Ok(row.map(|r| r.try_get::<_, i32>(0)).transpose()?.map(|s| s as u32))
}

const RELEASE_SLOT: &str = "
UPDATE destination_slots SET owner = NULL, lease_until = 0 WHERE destination = $1 AND slot = $2 AND owner = $3";

pub(super) async fn release_slot(c: &mut Conn, destination: &str, slot: u32, owner: &str) -> Result<(), StoreError> {
    let stmt = c.stmt(RELEASE_SLOT).await?;
    c.client.execute(&stmt, &[&destination, &(slot as i32), &owner]).await?;
    Ok(())
}

const RENEW_SLOTS: &str = "
UPDATE destination_slots d SET lease_until = $4
FROM unnest($2::text[], $3::int[]) AS h(destination, slot)
WHERE d.destination = h.destination AND d.slot = h.slot AND d.owner = $1
RETURNING d.destination, d.slot";

pub(super) async fn renew_slots(
    c: &mut Conn,
    owner: &str,
    slots: &[(String, u32)],
    until: Timestamp,
) -> Result<Vec<(String, u32)>, StoreError> {
    let destinations: Vec<&str> = slots.iter().map(|(d, _)| d.as_str()).collect();
    let numbers: Vec<i32> = slots.iter().map(|(_, n)| *n as i32).collect();
    let stmt = c.stmt(RENEW_SLOTS).await?;
    let rows = c.client.query(&stmt, &[&owner, &destinations, &numbers, &until.millis()]).await?;
    let mut renewed = Vec::with_capacity(rows.len());
    for r in rows {
        renewed.push((r.try_get(0)?, r.try_get::<_, i32>(1)? as u32));
    }
    Ok(renewed)
}

/// Records attempts in one statement: only rows still leased to their attempt's owner
/// change, and only those get an event and count against a mailbox's quota. Mailbox rows are
/// updated in address order, so two batches never wait on each other's in a cycle.
/// A message it leaves with every recipient delivered and no NOTIFY=SUCCESS is settled in the
/// same statement (body released, `done`), and its id returned: there is nothing to report,
/// so the facts read and the release after the commit are saved. The statement's snapshot
/// does not show its own updates, so the recipients it updated are judged by their new state
/// (`a`) and the others by the table; of two nodes finishing one message's recipients at
/// once, neither may settle it, and the facts read after their commits finds it finished.
const RECORD: &str = "
WITH a AS (
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::int[],
                         $8::text[], $9::text[], $10::text[], $11::bigint[])
         WITH ORDINALITY AS a(owner, id, state, next_at, status, detail, reply_code, remote, kind, mailbox, bytes, n)
), u AS (
    UPDATE recipients r SET state = a.state, attempts = r.attempts + 1, next_attempt_at = a.next_at,
           lease_owner = NULL, last_status = a.status, last_detail = a.detail, updated_at = $12,
           reply_code = a.reply_code, remote_mta = a.remote
    FROM a WHERE r.id = a.id AND r.lease_owner = a.owner
    RETURNING r.id, r.message_id, r.address
), e AS (
    INSERT INTO events (message_id, recipient, kind, status, detail, at, remote)
    SELECT u.message_id, u.address, a.kind, a.status, a.detail, $12, a.remote
    FROM u JOIN a ON a.id = u.id ORDER BY a.n
), q AS (
    INSERT INTO mailboxes (address, used_bytes)
    SELECT a.mailbox, sum(a.bytes)::bigint FROM u JOIN a ON a.id = u.id
    WHERE a.mailbox IS NOT NULL GROUP BY a.mailbox ORDER BY a.mailbox
    ON CONFLICT (address) DO UPDATE SET used_bytes = mailboxes.used_bytes + excluded.used_bytes
), f AS (
    UPDATE messages m SET body = '\\x'::bytea, done = true
    WHERE m.id IN (SELECT message_id FROM u) AND NOT m.done
    AND NOT EXISTS (SELECT 1 FROM u JOIN a ON a.id = u.id WHERE u.message_id = m.id AND a.state <> 'delivered')
    AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id
                    AND (r.notify LIKE '%SUCCESS%' OR (r.state <> 'delivered' AND r.id NOT IN (SELECT id FROM u))))
    RETURNING m.id
)
SELECT ARRAY(SELECT id FROM f)";

/// The outcomes of one delivery run, recorded by `owner` (the holder of their leases).
pub(super) struct Outcomes {
    pub owner: String,
    pub attempts: Vec<Attempt>,
}

impl Batched for Outcomes {
    /// The messages of this caller's attempts that the record settled.
    type Output = Vec<MessageId>;

    async fn run(c: &mut Conn, batch: &[Outcomes]) -> Result<Vec<Vec<MessageId>>, StoreError> {
        let stmt = c.stmt(RECORD).await?;
        // Two callers recording one recipient (owners racing over an expired lease) get a
        // statement each, one after the other in one transaction, so the lease decides between
        // them, not their place in the batch.
        let mut seen = HashSet::new();
        let overlap = batch.iter().any(|o| {
            let ids: HashSet<i64> = o.attempts.iter().map(|a| a.recipient.0).collect();
            !ids.into_iter().all(|id| seen.insert(id))
        });
        let settled: HashSet<String> = if overlap {
            let tx = c.client.transaction().await?;
            let mut settled = HashSet::new();
            for o in batch {
                let columns = RecordColumns::of(std::slice::from_ref(o));
                settled.extend(tx.query_one(&stmt, &columns.params()).await?.try_get::<_, Vec<String>>(0)?);
            }
            tx.commit().await?;
            settled
        } else {
            // One statement outside a transaction block: it commits by itself.
            let row = c.client.query_one(&stmt, &RecordColumns::of(batch).params()).await?;
            row.try_get::<_, Vec<String>>(0)?.into_iter().collect()
        };
        Ok(batch
            .iter()
            .map(|o| {
                let mut mine: Vec<MessageId> = Vec::new();
                for a in &o.attempts {
                    if settled.contains(&a.message.0) && !mine.contains(&a.message) {
                        mine.push(a.message.clone());
                    }
                }
                mine
            })
            .collect())
    }
}

/// The columns of `RECORD` for a batch of outcomes.
struct RecordColumns<'a> {
    owners: Vec<&'a str>,
    ids: Vec<i64>,
    states: Vec<&'static str>,
    next: Vec<Option<i64>>,
    status: Vec<String>,
    detail: Vec<&'a str>,
    reply: Vec<Option<i32>>,
    remote: Vec<Option<&'a str>>,
    kind: Vec<&'static str>,
    mailbox: Vec<Option<&'a str>>,
    bytes: Vec<Option<i64>>,
    now: i64,
}

impl<'a> RecordColumns<'a> {
    fn of(batch: &'a [Outcomes]) -> RecordColumns<'a> {
        let now = Timestamp::now().millis();
        // One attempt per recipient per statement: the first one wins, as in the SQLite
        // backend (whose first update releases the lease the second would need).
        let mut seen = HashSet::new();
        let attempts: Vec<(&str, &Attempt)> = batch
            .iter()
            .flat_map(|o| o.attempts.iter().map(|a| (o.owner.as_str(), a)))
            .filter(|(_, a)| seen.insert(a.recipient.0))
            .collect();
        RecordColumns {
            owners: attempts.iter().map(|(o, _)| *o).collect(),
            ids: attempts.iter().map(|(_, a)| a.recipient.0).collect(),
            states: attempts.iter().map(|(_, a)| a.state.as_str()).collect(),
            next: attempts
                .iter()
                .map(|(_, a)| match a.state {
                    RecipientState::Queued | RecipientState::Deferred => {
                        Some(a.next_attempt_at.unwrap_or(Timestamp(now)).millis())
                    }
                    _ => None,
                })
                .collect(),
            status: attempts.iter().filter_map(|(_, a)| codec::status_text(Some(a.status))).collect(),
            detail: attempts.iter().map(|(_, a)| a.detail.as_str()).collect(),
            reply: attempts.iter().map(|(_, a)| a.reply_code.map(i32::from)).collect(),
            remote: attempts.iter().map(|(_, a)| a.remote.as_deref()).collect(),
            kind: attempts.iter().map(|(_, a)| a.event.unwrap_or(a.state.into()).as_str()).collect(),
            mailbox: attempts.iter().map(|(_, a)| a.mailbox_bytes.as_ref().map(|(m, _)| m.as_str())).collect(),
            bytes: attempts.iter().map(|(_, a)| a.mailbox_bytes.as_ref().map(|(_, b)| *b as i64)).collect(),
            now,
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 12] {
        [
            &self.owners,
            &self.ids,
            &self.states,
            &self.next,
            &self.status,
            &self.detail,
            &self.reply,
            &self.remote,
            &self.kind,
            &self.mailbox,
            &self.bytes,
            &self.now,
        ]
    }
}

const UPSERT_MAILBOX: &str = "
INSERT INTO mailboxes (address, password_hash, quota, password_changed_at)
VALUES ($1, $2, $3, CASE WHEN $2::text IS NULL THEN NULL ELSE $4::bigint END)
ON CONFLICT (address) DO UPDATE SET password_hash = COALESCE(excluded.password_hash, mailboxes.password_hash),
                                    quota = COALESCE(excluded.quota, mailboxes.quota),
                                    password_changed_at = COALESCE(excluded.password_changed_at,
                                                                   mailboxes.password_changed_at)";

pub(super) async fn upsert_mailbox(
    c: &mut Conn,
    address: &str,
    hash: Option<&str>,
    quota: Option<u64>,
) -> Result<(), StoreError> {
    let stmt = c.stmt(UPSERT_MAILBOX).await?;
    c.client.execute(&stmt, &[&address, &hash, &quota.map(|q| q as i64), &Timestamp::now().millis()]).await?;
    Ok(())
}

/// One statement: the suppression, and (when a message caused it) an event of that message
/// (`suppressed`, `unsubscribed`, `complained`), as the SQLite store writes it. An identical
/// entry is no news: the conflict's WHERE (evaluated on the latest committed row, after waiting
/// for a concurrent writer of the same address) skips the update, so no row comes back and no
/// second event is written; a sender-domain entry never narrows a global one.
const SUPPRESS: &str = "
WITH s AS (
    INSERT INTO suppressions (address, reason, status, detail, message_id, created_at, domain, scope)
    VALUES ($1, $2, $3, $4, $5, $6, $8, $9)
    ON CONFLICT (address, COALESCE(domain, '')) DO UPDATE SET reason = excluded.reason,
        status = excluded.status, detail = excluded.detail, message_id = excluded.message_id,
        scope = excluded.scope
    WHERE (suppressions.scope = 'sender_domain' OR excluded.scope = 'global')
      AND (suppressions.reason, suppressions.status, suppressions.detail, suppressions.message_id, suppressions.scope)
          IS DISTINCT FROM (excluded.reason, excluded.status, excluded.detail, excluded.message_id, excluded.scope)
    RETURNING address
), e AS (
    INSERT INTO events (message_id, recipient, kind, status, detail, at)
    SELECT $5::text, s.address, $10, $3, $7, $6 FROM s WHERE $5::text IS NOT NULL
)
SELECT count(*) FROM s";

pub(super) async fn suppress(
    c: &mut Conn,
    e: &Suppression,
    event: EventKind,
    detail: &str,
) -> Result<bool, StoreError> {
    let stmt = c.stmt(SUPPRESS).await?;
    let now = Timestamp::now().millis();
    let domain = e.domain.as_ref().map(|d| d.as_str());
    let row = c
        .client
        .query_one(
            &stmt,
            &[
                &e.address,
                &e.reason,
                &e.status,
                &e.detail,
                &e.message_id,
                &now,
                &detail,
                &domain,
                &e.scope.as_str(),
                &event.as_str(),
            ],
        )
        .await?;
    Ok(row.try_get::<_, i64>(0)? > 0)
}

const UNSUPPRESS: &str =
    concat!("DELETE FROM suppressions WHERE address = $1 AND ", super::reads::in_scope!("domain", 2));

pub(super) async fn unsuppress(c: &mut Conn, address: &str, scope: &Scope) -> Result<bool, StoreError> {
    let stmt = c.stmt(UNSUPPRESS).await?;
    Ok(c.client.execute(&stmt, &[&address, &scope.sql_domains()]).await? > 0)
}

/// Drops the bodies of messages whose recipients are all final.
const RELEASE: &str = "
UPDATE messages m SET body = '\\x'::bytea, done = true
WHERE m.id = ANY($1::text[]) AND NOT m.done
AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.state IN ('queued', 'deferred', 'held'))";

/// A message whose body may go once none of its recipients waits for an attempt.
pub(super) struct Release(pub MessageId);

impl Batched for Release {
    type Output = ();

    async fn run(c: &mut Conn, batch: &[Release]) -> Result<Vec<()>, StoreError> {
        let ids: Vec<&str> = batch.iter().map(|r| r.0.0.as_str()).collect();
        let stmt = c.stmt(RELEASE).await?;
        c.client.execute(&stmt, &[&ids]).await?;
        Ok(vec![(); batch.len()])
    }
}

/// The recipient domain as the dashboard's index spells it.
const RECIPIENT_DOMAIN: &str = "lower(substr(address, strpos(address, '@') + 1))";

/// The SQL condition for the recipients of `sel` among those in `states`, and its text values,
/// numbered from `$2` on (`$1` is the operation's time).
fn selected(sel: &Selection, states: &[RecipientState]) -> (String, Vec<String>) {
    // The state names are ours (closed set), not input: safe to write into the SQL.
    let list: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let mut sql = format!("state IN ({})", list.join(", "));
    let mut values = Vec::new();
    let mut add = |column: &str, value: String, values: &mut Vec<String>| {
        values.push(value);
        sql.push_str(&format!(" AND {column} = ${}", values.len() + 1));
    };
    if let Some(m) = &sel.message {
        add("message_id", m.0.clone(), &mut values);
    }
    if let Some(s) = sel.state {
        add("state", s.as_str().to_string(), &mut values);
    }
    if let Some(d) = &sel.domain {
        add(RECIPIENT_DOMAIN, d.to_lowercase(), &mut values);
    }
    (sql, values)
}

/// Runs a queue operation (text built by `selected`, so not a cached statement: these are an
/// operator's rare commands) that returns one count.
async fn count_of(c: &mut Conn, sql: &str, at: Timestamp, values: &[String]) -> Result<usize, StoreError> {
    let at = at.millis();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&at];
    params.extend(values.iter().map(|v| v as &(dyn ToSql + Sync)));
    let row = c.client.query_one(sql, &params).await?;
    Ok(row.try_get::<_, i64>(0)?.max(0) as usize)
}

pub(super) async fn flush(c: &mut Conn, sel: &Selection, at: Timestamp) -> Result<usize, StoreError> {
    let (filter, values) = selected(sel, &[RecipientState::Queued, RecipientState::Deferred]);
    let sql = format!(
        "WITH u AS (UPDATE recipients SET next_attempt_at = $1 WHERE {filter} AND lease_owner IS NULL RETURNING 1)
         SELECT count(*) FROM u"
    );
    count_of(c, &sql, at, &values).await
}

/// A row a claim holds is locked: the hold waits for it, then sees the lease and skips it.
pub(super) async fn hold(c: &mut Conn, sel: &Selection, at: Timestamp) -> Result<usize, StoreError> {
    let (filter, values) = selected(sel, &[RecipientState::Queued, RecipientState::Deferred]);
    let sql = format!(
        "WITH u AS (
             UPDATE recipients SET state = 'held', lease_owner = NULL, updated_at = $1
             WHERE {filter} AND (lease_owner IS NULL OR next_attempt_at <= $1) RETURNING message_id, address
         ), e AS (
             INSERT INTO events (message_id, recipient, kind, status, detail, at)
             SELECT message_id, address, 'held', NULL, 'held by an operator', $1 FROM u
         )
         SELECT count(*) FROM u"
    );
    count_of(c, &sql, at, &values).await
}

pub(super) async fn release(c: &mut Conn, sel: &Selection, at: Timestamp) -> Result<usize, StoreError> {
    let (filter, values) = selected(sel, &[RecipientState::Held]);
    let sql = format!(
        "WITH u AS (
             UPDATE recipients SET state = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END,
                    next_attempt_at = $1, updated_at = $1
             WHERE {filter} RETURNING message_id, address
         ), e AS (
             INSERT INTO events (message_id, recipient, kind, status, detail, at)
             SELECT message_id, address, 'released', NULL, 'released by an operator', $1 FROM u
         )
         SELECT count(*) FROM u"
    );
    count_of(c, &sql, at, &values).await
}

pub(super) async fn delete_messages(c: &mut Conn, sel: &Selection, at: Timestamp) -> Result<usize, StoreError> {
    let (filter, values) = selected(sel, &RecipientState::WAITING);
    let sql = format!(
        "WITH sel AS MATERIALIZED (SELECT DISTINCT message_id FROM recipients WHERE {filter}),
         r AS (DELETE FROM recipients WHERE message_id IN (SELECT message_id FROM sel)),
         m AS (DELETE FROM messages WHERE id IN (SELECT message_id FROM sel) RETURNING id),
         e AS (INSERT INTO events (message_id, kind, detail, at)
               SELECT id, 'deleted', 'deleted by an operator', $1::bigint FROM m)
         SELECT count(*) FROM m"
    );
    count_of(c, &sql, at, &values).await
}

const FEEDBACK_EVENT: &str =
    "INSERT INTO events (message_id, recipient, kind, status, detail, at, remote) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const FEEDBACK_BOUNCED: &str = "
UPDATE recipients SET state = 'bounced', last_status = $2, last_detail = $3, remote_mta = $4,
       reply_code = NULL, updated_at = $5
WHERE id = $1 AND state = 'delivered'";

pub(super) async fn record_feedback(c: &mut Conn, f: &Feedback) -> Result<bool, StoreError> {
    let now = Timestamp::now().millis();
    let event = c.stmt(FEEDBACK_EVENT).await?;
    let bounced = c.stmt(FEEDBACK_BOUNCED).await?;
    let kind = if f.delay { EventKind::Delayed } else { EventKind::Bounced }.as_str();
    let detail = format!("bounce received: {}", f.detail);
    let tx = c.client.transaction().await?;
    let status = codec::status_text(f.status);
    tx.execute(&event, &[&f.message.0, &f.address, &kind, &status, &detail, &now, &f.remote]).await?;
    let changed =
        if f.delay { 0 } else { tx.execute(&bounced, &[&f.recipient.0, &status, &f.detail, &f.remote, &now]).await? };
    tx.commit().await?;
    Ok(changed > 0)
}

const DELETE_EVENT: &str =
    "INSERT INTO events (message_id, kind, detail, at) VALUES ($1, 'deleted', 'deleted by an operator', $2)";

pub(super) async fn delete_message(c: &mut Conn, id: &MessageId) -> Result<bool, StoreError> {
    let now = Timestamp::now().millis();
    let recipients = c.stmt("DELETE FROM recipients WHERE message_id = $1").await?;
    let event = c.stmt(DELETE_EVENT).await?;
    let message = c.stmt("DELETE FROM messages WHERE id = $1").await?;
    let tx = c.client.transaction().await?;
    tx.execute(&recipients, &[&id.0]).await?;
    let n = tx.execute(&message, &[&id.0]).await?;
    // Only a message that was there has a deletion to report (events reach webhooks).
    if n > 0 {
        tx.execute(&event, &[&id.0, &now]).await?;
    }
    tx.commit().await?;
    Ok(n > 0)
}

const WEBHOOK_CURSOR: &str = "
INSERT INTO webhook_cursors (endpoint, last_event) VALUES ($1, $2)
ON CONFLICT (endpoint) DO UPDATE SET last_event = GREATEST(webhook_cursors.last_event, excluded.last_event)";

pub(super) async fn set_webhook_cursor(c: &mut Conn, endpoint: &str, last: i64) -> Result<(), StoreError> {
    let stmt = c.stmt(WEBHOOK_CURSOR).await?;
    c.client.execute(&stmt, &[&endpoint, &last]).await?;
    Ok(())
}

const PAUSE: &str = "
INSERT INTO paused_accounts (account, detail, message_id, paused_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (account) DO NOTHING";
const PAUSE_EVENT: &str = "
INSERT INTO events (message_id, recipient, kind, status, detail, at) VALUES ($1, NULL, 'account_paused', NULL, $2, $3)";

pub(super) async fn pause_account(c: &mut Conn, p: &AccountPause) -> Result<bool, StoreError> {
    let now = Timestamp::now().millis();
    let (pause, event) = (c.stmt(PAUSE).await?, c.stmt(PAUSE_EVENT).await?);
    let tx = c.client.transaction().await?;
    let n = tx.execute(&pause, &[&p.account, &p.detail, &p.message_id, &now]).await?;
    if let (1, Some(m)) = (n, &p.message_id) {
        tx.execute(&event, &[m, &format!("{}: {}", p.account, p.detail), &now]).await?;
    }
    tx.commit().await?;
    Ok(n > 0)
}

const SUSPECT_EVENT: &str = "
INSERT INTO events (message_id, recipient, kind, status, detail, at) VALUES ($1, NULL, 'account_suspected', NULL, $2, $3)";

pub(super) async fn suspect_account(c: &mut Conn, p: &AccountPause) -> Result<bool, StoreError> {
    let now = Timestamp::now().millis();
    let (pause, event) = (c.stmt(PAUSE).await?, c.stmt(SUSPECT_EVENT).await?);
    let tx = c.client.transaction().await?;
    let n = tx.execute(&pause, &[&p.account, &p.detail, &p.message_id, &now]).await?;
    if n == 1 {
        let message = p.message_id.as_deref().unwrap_or("");
        tx.execute(&event, &[&message, &format!("{}: {}", p.account, p.detail), &now]).await?;
    }
    tx.commit().await?;
    Ok(n > 0)
}

const ACCOUNT_FIRST_SEEN: &str = "
INSERT INTO account_baselines (account, first_seen) VALUES ($1, $2)
ON CONFLICT (account) DO UPDATE SET first_seen = LEAST(account_baselines.first_seen, excluded.first_seen)";
const ACCOUNT_HOUR: &str = "
INSERT INTO account_hours (account, hour, messages, domains) VALUES ($1, $2, $3, $4)
ON CONFLICT (account, hour) DO UPDATE SET messages = account_hours.messages + excluded.messages,
    domains = GREATEST(account_hours.domains, excluded.domains)";
const ACCOUNT_SEEN: &str = "
INSERT INTO account_seen (account, kind, value, first_seen, last_seen) VALUES ($1, $2, $3, $4, $4)
ON CONFLICT (account, kind, value) DO UPDATE SET last_seen = GREATEST(account_seen.last_seen, excluded.last_seen)";
const ACCOUNT_FORGET: &str = "DELETE FROM account_hours WHERE account = $1 AND hour < $2";

/// One transaction for the whole batch; accounts in a fixed order, so two nodes flushing the
/// same accounts take their row locks in the same order.
pub(super) async fn record_account_activity(
    c: &mut Conn,
    batch: &[crate::store::AccountActivity],
    forget_before: crate::store::Hour,
) -> Result<(), StoreError> {
    let first = c.stmt(ACCOUNT_FIRST_SEEN).await?;
    let hour = c.stmt(ACCOUNT_HOUR).await?;
    let seen = c.stmt(ACCOUNT_SEEN).await?;
    let forget = c.stmt(ACCOUNT_FORGET).await?;
    let mut sorted: Vec<&crate::store::AccountActivity> = batch.iter().collect();
    sorted.sort_by(|a, b| a.account.cmp(&b.account));
    let tx = c.client.transaction().await?;
    for a in sorted {
        tx.execute(&first, &[&a.account, &a.first_seen.millis()]).await?;
        let mut hours = a.hours.clone();
        hours.sort_by_key(|h| h.hour);
        for h in &hours {
            let (m, d) = (codec::count_value(h.messages), codec::count_value(h.domains));
            tx.execute(&hour, &[&a.account, &h.hour.0, &m, &d]).await?;
        }
        let mut values: Vec<(&str, String, i64)> = a
            .seen
            .iter()
            .map(|v| {
                let (k, val) = codec::seen_columns(&v.seen);
                (k, val, v.last.millis())
            })
            .collect();
        values.sort();
        for (kind, value, last) in &values {
            tx.execute(&seen, &[&a.account, kind, value, last]).await?;
        }
        tx.execute(&forget, &[&a.account, &forget_before.0]).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn resume_account(c: &mut Conn, account: &str) -> Result<bool, StoreError> {
    let stmt = c.stmt("DELETE FROM paused_accounts WHERE account = $1").await?;
    Ok(c.client.execute(&stmt, &[&account]).await? > 0)
}

pub(super) async fn create_api_key(c: &mut Conn, k: &ApiKey) -> Result<(), StoreError> {
    let (admin, domains) = k.scope.to_stored()?;
    let stmt = c
        .stmt(
            "INSERT INTO api_keys (id, name, key_hash, domains, created_at, admin, sandbox)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    c.client
        .execute(&stmt, &[&k.id, &k.name, &k.hash, &domains, &Timestamp::now().millis(), &admin, &k.sandbox])
        .await?;
    Ok(())
}

pub(super) async fn put_template(c: &mut Conn, t: &crate::store::Template) -> Result<(), StoreError> {
    let stmt = c
        .stmt(
            "INSERT INTO templates (api_key, name, subject, text, html, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (api_key, name) DO UPDATE SET subject = excluded.subject, text = excluded.text,
                 html = excluded.html, updated_at = excluded.updated_at",
        )
        .await?;
    let (created, updated) = (t.created_at.millis(), t.updated_at.millis());
    c.client.execute(&stmt, &[&t.api_key, &t.name, &t.subject, &t.text, &t.html, &created, &updated]).await?;
    Ok(())
}

pub(super) async fn delete_template(c: &mut Conn, api_key: &str, name: &str) -> Result<bool, StoreError> {
    let stmt = c.stmt("DELETE FROM templates WHERE api_key = $1 AND name = $2").await?;
    Ok(c.client.execute(&stmt, &[&api_key, &name]).await? > 0)
}

pub(super) async fn revoke_api_key(c: &mut Conn, id: &str) -> Result<bool, StoreError> {
    let stmt = c.stmt("DELETE FROM api_keys WHERE id = $1").await?;
    Ok(c.client.execute(&stmt, &[&id]).await? > 0)
}

pub(super) async fn rotate_api_key(c: &mut Conn, id: &str, hash: &str) -> Result<bool, StoreError> {
    let stmt = c.stmt("UPDATE api_keys SET key_hash = $2 WHERE id = $1").await?;
    Ok(c.client.execute(&stmt, &[&id, &hash]).await? > 0)
}

pub(super) async fn touch_api_key(c: &mut Conn, id: &str, at: Timestamp) -> Result<(), StoreError> {
    let stmt =
        c.stmt("UPDATE api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $2) WHERE id = $1").await?;
    c.client.execute(&stmt, &[&id, &at.millis()]).await?;
    Ok(())
}

/// Stores the secret unless one is there, and returns the one that is. Under READ COMMITTED a
/// statement whose insert waited for a concurrent one and then conflicted does not see that
/// row (its snapshot is older), so it gets no row and runs again.
const CLUSTER_SECRET: &str = "
WITH ins AS (
    INSERT INTO cluster_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING value
)
SELECT value FROM ins UNION ALL SELECT value FROM cluster_secrets WHERE name = $1";

pub(super) async fn cluster_secret(c: &mut Conn, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
    let stmt = c.stmt(CLUSTER_SECRET).await?;
    for _ in 0..3 {
        if let Some(row) = c.client.query(&stmt, &[&name, &candidate]).await?.first() {
            return Ok(row.try_get(0)?);
        }
    }
    Err(StoreError::Corrupt(format!("cluster secret {name} is neither stored nor readable")))
}

const STS_POLICY: &str = "
INSERT INTO mta_sts_policies (domain, policy_id, body, fetched_at, expires_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (domain) DO UPDATE SET policy_id = excluded.policy_id, body = excluded.body,
    fetched_at = excluded.fetched_at, expires_at = excluded.expires_at";

pub(super) async fn put_sts_policy(c: &mut Conn, p: &crate::tlspolicy::CachedPolicy) -> Result<(), StoreError> {
    let stmt = c.stmt(STS_POLICY).await?;
    let (fetched, expires) = (p.fetched_at.millis(), p.expires_at.millis());
    c.client.execute(&stmt, &[&p.domain, &p.id, &p.body, &fetched, &expires]).await?;
    Ok(())
}

const TLS_RESULT: &str = "
INSERT INTO tls_results (domain, policy, result, detail, at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (domain) DO UPDATE SET policy = excluded.policy, result = excluded.result,
    detail = excluded.detail, at = excluded.at";

pub(super) async fn record_tls_result(c: &mut Conn, r: &crate::tlspolicy::LastResult) -> Result<(), StoreError> {
    let stmt = c.stmt(TLS_RESULT).await?;
    c.client.execute(&stmt, &[&r.domain, &r.policy, &r.result.as_str(), &r.detail, &r.at.millis()]).await?;
    Ok(())
}

const TLS_COUNT: &str = "
INSERT INTO tls_report_counts (day, domain, policy_type, policy_id, policy_body, result, mx_host, receiving_ip,
    sending_ip, sessions) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (day, domain, policy_type, policy_id, result, mx_host, receiving_ip, sending_ip)
DO UPDATE SET sessions = tls_report_counts.sessions + excluded.sessions, policy_body = excluded.policy_body";

pub(super) async fn count_tls_sessions(c: &mut Conn, n: &crate::tlspolicy::TlsCount) -> Result<(), StoreError> {
    let stmt = c.stmt(TLS_COUNT).await?;
    let k = codec::TlsCountColumns::encode(n);
    c.client
        .execute(
            &stmt,
            &[
                &k.day,
                &k.domain,
                &k.policy_type,
                &k.policy_id,
                &k.policy_body,
                &k.result,
                &k.mx_host,
                &k.receiving_ip,
                &k.sending_ip,
                &k.sessions,
            ],
        )
        .await?;
    Ok(())
}

const TAKE_TLS_COUNTS: &str = "
DELETE FROM tls_report_counts WHERE day = $1 AND domain = $2
RETURNING day, domain, policy_type, policy_id, policy_body, result, mx_host, receiving_ip, sending_ip, sessions";

pub(super) async fn take_tls_counts(
    c: &mut Conn,
    day: crate::tlspolicy::Day,
    domain: &str,
) -> Result<Vec<crate::tlspolicy::TlsCount>, StoreError> {
    let stmt = c.stmt(TAKE_TLS_COUNTS).await?;
    let rows = c.client.query(&stmt, &[&day.0, &domain]).await?;
    rows.iter()
        .map(|r| {
            codec::TlsCountColumns {
                day: r.try_get(0)?,
                domain: r.try_get(1)?,
                policy_type: r.try_get(2)?,
                policy_id: r.try_get(3)?,
                policy_body: r.try_get(4)?,
                result: r.try_get(5)?,
                mx_host: r.try_get(6)?,
                receiving_ip: r.try_get(7)?,
                sending_ip: r.try_get(8)?,
                sessions: r.try_get(9)?,
            }
            .decode()
        })
        .collect()
}
// --- account protection ---

pub(super) async fn rehash_password(c: &mut Conn, address: &str, old: &str, new: &str) -> Result<bool, StoreError> {
    let stmt = c.stmt("UPDATE mailboxes SET password_hash = $3 WHERE address = $1 AND password_hash = $2").await?;
    Ok(c.client.execute(&stmt, &[&address, &old, &new]).await? > 0)
}

pub(super) async fn add_app_password(c: &mut Conn, a: &AppPassword) -> Result<bool, StoreError> {
    let stmt = c
        .stmt(
            "INSERT INTO app_passwords (address, name, secret_hash, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .await?;
    Ok(c.client.execute(&stmt, &[&a.address, &a.name, &a.hash, &a.created_at.millis()]).await? > 0)
}

pub(super) async fn revoke_app_password(c: &mut Conn, address: &str, name: &str) -> Result<bool, StoreError> {
    let stmt = c.stmt("DELETE FROM app_passwords WHERE address = $1 AND name = $2").await?;
    Ok(c.client.execute(&stmt, &[&address, &name]).await? > 0)
}

pub(super) async fn touch_app_password(
    c: &mut Conn,
    address: &str,
    name: &str,
    at: Timestamp,
    ip: std::net::IpAddr,
) -> Result<(), StoreError> {
    let stmt = c
        .stmt(
            "UPDATE app_passwords SET last_used_at = $3, last_used_ip = $4
             WHERE address = $1 AND name = $2 AND COALESCE(last_used_at, 0) <= $3",
        )
        .await?;
    c.client.execute(&stmt, &[&address, &name, &at.millis(), &codec::ip_text(ip)]).await?;
    Ok(())
}

pub(super) async fn enable_second_factor(
    c: &mut Conn,
    address: &str,
    secret: &TotpSecret,
    hashes: &[String],
    at: Timestamp,
) -> Result<(), StoreError> {
    let factor = c
        .stmt(
            "INSERT INTO second_factors (address, secret, enabled_at, last_step) VALUES ($1, $2, $3, NULL)
             ON CONFLICT (address) DO UPDATE SET secret = excluded.secret, enabled_at = excluded.enabled_at,
                                                 last_step = NULL",
        )
        .await?;
    let clear = c.stmt("DELETE FROM recovery_codes WHERE address = $1").await?;
    let codes =
        c.stmt("INSERT INTO recovery_codes (address, code_hash) SELECT $1, h FROM unnest($2::text[]) AS u(h)").await?;
    let tx = c.client.transaction().await?;
    tx.execute(&factor, &[&address, &secret.0, &at.millis()]).await?;
    tx.execute(&clear, &[&address]).await?;
    tx.execute(&codes, &[&address, &hashes]).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn disable_second_factor(c: &mut Conn, address: &str) -> Result<bool, StoreError> {
    let codes = c.stmt("DELETE FROM recovery_codes WHERE address = $1").await?;
    let factor = c.stmt("DELETE FROM second_factors WHERE address = $1").await?;
    let tx = c.client.transaction().await?;
    tx.execute(&codes, &[&address]).await?;
    let n = tx.execute(&factor, &[&address]).await?;
    tx.commit().await?;
    Ok(n > 0)
}

pub(super) async fn delete_mailbox(c: &mut Conn, address: &str) -> Result<bool, StoreError> {
    let codes = c.stmt("DELETE FROM recovery_codes WHERE address = $1").await?;
    let factor = c.stmt("DELETE FROM second_factors WHERE address = $1").await?;
    let apps = c.stmt("DELETE FROM app_passwords WHERE address = $1").await?;
    let mailbox = c.stmt("DELETE FROM mailboxes WHERE address = $1").await?;
    let tx = c.client.transaction().await?;
    for stmt in [&codes, &factor, &apps] {
        tx.execute(stmt, &[&address]).await?;
    }
    let n = tx.execute(&mailbox, &[&address]).await?;
    tx.commit().await?;
    Ok(n > 0)
}

pub(super) async fn use_totp_step(c: &mut Conn, address: &str, step: u64) -> Result<bool, StoreError> {
    let stmt = c
        .stmt(
            "UPDATE second_factors SET last_step = $2
             WHERE address = $1 AND (last_step IS NULL OR last_step < $2)",
        )
        .await?;
    Ok(c.client.execute(&stmt, &[&address, &codec::step_value(step)?]).await? > 0)
}

pub(super) async fn use_recovery_code(
    c: &mut Conn,
    address: &str,
    hash: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let stmt = c
        .stmt("UPDATE recovery_codes SET used_at = $3 WHERE address = $1 AND code_hash = $2 AND used_at IS NULL")
        .await?;
    Ok(c.client.execute(&stmt, &[&address, &hash, &at.millis()]).await? > 0)
}
