//! The SQL of every write on PostgreSQL; each function is one transaction (or one statement,
//! which is its own transaction) and returns only after its COMMIT returned.
//!
//! Multi-row writes pass arrays and `unnest` them, so an insert or a batch of attempts is a
//! single statement whatever its size.
//! Must not: return Ok before COMMIT, or touch a recipient leased to another owner.

use std::collections::HashSet;

use tokio_postgres::types::ToSql;

use super::pool::Conn;
use crate::store::{
    AccountPause, ApiKey, Attempt, Claim, Feedback, MessageId, NewMessage, RecipientId, RecipientState, ReportMark,
    StoreError, Suppression, Transport,
};
use crate::time::Timestamp;

const MARK_FINAL: &str =
    "UPDATE recipients SET final_reported = true WHERE id = ANY($1::bigint[]) AND NOT final_reported";
const MARK_DELAY: &str =
    "UPDATE recipients SET delay_reported = true WHERE id = ANY($1::bigint[]) AND NOT delay_reported";

/// The message, its recipients, their `queued` events, the check notes and the sent log,
/// in one statement (data-modifying CTEs).
const INSERT: &str = "
WITH m AS (
    INSERT INTO messages (id, reverse_path, envid, ret, size, received_at, origin, body)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    RETURNING id
), r AS (
    INSERT INTO recipients (message_id, address, orcpt, notify, transport, mailbox, state, next_attempt_at, updated_at)
    SELECT m.id, u.address, u.orcpt, u.notify, u.transport, u.mailbox, 'queued', $6, $6
    FROM m, unnest($9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
         WITH ORDINALITY AS u(address, orcpt, notify, transport, mailbox, n)
    ORDER BY u.n
), e AS (
    INSERT INTO events (message_id, recipient, kind, status, detail, at)
    SELECT m.id, u.recipient, u.kind, NULL, u.detail, $6
    FROM m, unnest($14::text[], $15::text[], $16::text[]) WITH ORDINALITY AS u(recipient, kind, detail, n)
    ORDER BY u.n
), s AS (
    INSERT INTO sent_log (header_id, recipient, queue_id, sent_at)
    SELECT DISTINCT $17::text, u.recipient, m.id, $6 FROM m, unnest($18::text[]) AS u(recipient)
    WHERE $17::text IS NOT NULL
    ON CONFLICT DO NOTHING
)
SELECT 1 FROM m";

pub(super) async fn insert(c: &mut Conn, msg: &NewMessage) -> Result<(), StoreError> {
    let origin = serde_json::to_string(&msg.origin).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let at = msg.received_at.millis();
    let size = msg.body.len() as i64;
    let addresses: Vec<&str> = msg.recipients.iter().map(|r| r.address.as_str()).collect();
    let orcpts: Vec<Option<&str>> = msg.recipients.iter().map(|r| r.orcpt.as_deref()).collect();
    let notifies: Vec<Option<&str>> = msg.recipients.iter().map(|r| r.notify.as_deref()).collect();
    let transports: Vec<&str> = msg.recipients.iter().map(|r| r.transport.as_str()).collect();
    let mailboxes: Vec<Option<&str>> = msg.recipients.iter().map(|r| r.mailbox.as_deref()).collect();
    // Events: one `queued` per recipient, then the check notes (the same order as SQLite).
    let queued_detail = format!("from {} via {}", msg.origin.client_ip, msg.origin.via);
    let mut ev_rcpt: Vec<Option<&str>> = Vec::with_capacity(msg.recipients.len() + msg.notes.len());
    let mut ev_kind: Vec<&str> = Vec::with_capacity(ev_rcpt.capacity());
    let mut ev_detail: Vec<&str> = Vec::with_capacity(ev_rcpt.capacity());
    for (rcpt, text) in &msg.notes {
        ev_rcpt.push(rcpt.as_deref());
        ev_kind.push("check");
        ev_detail.push(text);
    }
    for r in &msg.recipients {
        ev_rcpt.push(Some(&r.address));
        ev_kind.push("queued");
        ev_detail.push(&queued_detail);
    }
    let header_id = msg.header_message_id.as_deref().map(crate::store::normalize_header_id).filter(|h| !h.is_empty());
    let sent: Vec<String> = match header_id {
        Some(_) => msg
            .recipients
            .iter()
            .filter(|r| r.transport == Transport::Remote)
            .map(|r| r.address.to_lowercase())
            .collect(),
        None => Vec::new(),
    };
    let (mut finals, mut delays) = (Vec::new(), Vec::new());
    for (id, mark) in &msg.reports {
        match mark {
            ReportMark::Final => finals.push(id.0),
            ReportMark::Delay => delays.push(id.0),
        }
    }
    let insert = c.stmt(INSERT).await?;
    let params: [&(dyn ToSql + Sync); 18] = [
        &msg.id.0,
        &msg.reverse_path,
        &msg.envid,
        &msg.ret,
        &size,
        &at,
        &origin,
        &msg.body,
        &addresses,
        &orcpts,
        &notifies,
        &transports,
        &mailboxes,
        &ev_rcpt,
        &ev_kind,
        &ev_detail,
        &header_id,
        &sent,
    ];
    if msg.reports.is_empty() {
        // One statement outside a transaction block commits by itself, and its reply comes
        // after the COMMIT: one round trip for the whole message.
        c.client.query_one(&insert, &params).await?;
        return Ok(());
    }
    let (mark_final, mark_delay) = (c.stmt(MARK_FINAL).await?, c.stmt(MARK_DELAY).await?);
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
    tx.query_one(&insert, &params).await?;
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
    RETURNING id, message_id, address, mailbox, attempts, notify, orcpt
)
SELECT c.id, c.message_id, c.address, c.mailbox, c.attempts, c.notify, c.orcpt,
       m.size, m.received_at, m.reverse_path, m.envid, m.ret
FROM c JOIN messages m ON m.id = c.message_id
ORDER BY c.id";

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
        .query(&stmt, &[&owner, &lease_until.millis(), &transport.as_str(), &now.millis(), &(limit as i64)])
        .await?;
    let mut claims = Vec::with_capacity(rows.len());
    for r in rows {
        claims.push(Claim {
            recipient: RecipientId(r.try_get(0)?),
            message: MessageId(r.try_get(1)?),
            address: r.try_get(2)?,
            mailbox: r.try_get(3)?,
            attempts: r.try_get::<_, i32>(4)? as u32,
            notify: r.try_get(5)?,
            orcpt: r.try_get(6)?,
            size: r.try_get::<_, i64>(7)? as u64,
            received_at: Timestamp(r.try_get(8)?),
            reverse_path: r.try_get(9)?,
            envid: r.try_get(10)?,
            ret: r.try_get(11)?,
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

/// Records a batch of attempts in one statement: only rows still leased to `$1` change, and
/// only those get an event and count against a mailbox's quota.
const RECORD: &str = "
WITH a AS (
    SELECT * FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::int[],
                         $8::text[], $9::text[], $10::text[], $11::bigint[])
         WITH ORDINALITY AS a(id, state, next_at, status, detail, reply_code, remote, kind, mailbox, bytes, n)
), u AS (
    UPDATE recipients r SET state = a.state, attempts = r.attempts + 1, next_attempt_at = a.next_at,
           lease_owner = NULL, last_status = a.status, last_detail = a.detail, updated_at = $12,
           reply_code = a.reply_code, remote_mta = a.remote
    FROM a WHERE r.id = a.id AND r.lease_owner = $1
    RETURNING r.id, r.message_id, r.address
), e AS (
    INSERT INTO events (message_id, recipient, kind, status, detail, at, remote)
    SELECT u.message_id, u.address, a.kind, a.status, a.detail, $12, a.remote
    FROM u JOIN a ON a.id = u.id ORDER BY a.n
), q AS (
    INSERT INTO mailboxes (address, used_bytes)
    SELECT a.mailbox, sum(a.bytes)::bigint FROM u JOIN a ON a.id = u.id
    WHERE a.mailbox IS NOT NULL GROUP BY a.mailbox
    ON CONFLICT (address) DO UPDATE SET used_bytes = mailboxes.used_bytes + excluded.used_bytes
)
SELECT count(*) FROM u";

pub(super) async fn record(c: &mut Conn, owner: &str, attempts: &[Attempt]) -> Result<(), StoreError> {
    let now = Timestamp::now().millis();
    // One attempt per recipient per batch: the first one wins, as in the SQLite backend
    // (whose first update releases the lease the second would need).
    let mut seen = HashSet::new();
    let attempts: Vec<&Attempt> = attempts.iter().filter(|a| seen.insert(a.recipient.0)).collect();
    let ids: Vec<i64> = attempts.iter().map(|a| a.recipient.0).collect();
    let states: Vec<&str> = attempts.iter().map(|a| a.state.as_str()).collect();
    let next: Vec<Option<i64>> = attempts
        .iter()
        .map(|a| match a.state {
            RecipientState::Queued | RecipientState::Deferred => {
                Some(a.next_attempt_at.unwrap_or(Timestamp(now)).millis())
            }
            _ => None,
        })
        .collect();
    let status: Vec<&str> = attempts.iter().map(|a| a.status.as_str()).collect();
    let detail: Vec<&str> = attempts.iter().map(|a| a.detail.as_str()).collect();
    let reply: Vec<Option<i32>> = attempts.iter().map(|a| a.reply_code.map(i32::from)).collect();
    let remote: Vec<Option<&str>> = attempts.iter().map(|a| a.remote.as_deref()).collect();
    let kind: Vec<&str> = attempts.iter().map(|a| a.event.unwrap_or(a.state.as_str())).collect();
    let mailbox: Vec<Option<&str>> =
        attempts.iter().map(|a| a.mailbox_bytes.as_ref().map(|(m, _)| m.as_str())).collect();
    let bytes: Vec<Option<i64>> = attempts.iter().map(|a| a.mailbox_bytes.as_ref().map(|(_, b)| *b as i64)).collect();
    let stmt = c.stmt(RECORD).await?;
    c.client
        .query_one(
            &stmt,
            &[&owner, &ids, &states, &next, &status, &detail, &reply, &remote, &kind, &mailbox, &bytes, &now],
        )
        .await?;
    Ok(())
}

const UPSERT_MAILBOX: &str = "
INSERT INTO mailboxes (address, password_hash, quota) VALUES ($1, $2, $3)
ON CONFLICT (address) DO UPDATE SET password_hash = COALESCE(excluded.password_hash, mailboxes.password_hash),
                                    quota = COALESCE(excluded.quota, mailboxes.quota)";

pub(super) async fn upsert_mailbox(
    c: &mut Conn,
    address: &str,
    hash: Option<&str>,
    quota: Option<u64>,
) -> Result<(), StoreError> {
    let stmt = c.stmt(UPSERT_MAILBOX).await?;
    c.client.execute(&stmt, &[&address, &hash, &quota.map(|q| q as i64)]).await?;
    Ok(())
}

/// One statement: the suppression, and (when a message caused it) a `suppressed` event of that
/// message, as the SQLite store writes it.
const SUPPRESS: &str = "
WITH s AS (
    INSERT INTO suppressions (address, reason, status, detail, message_id, created_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, status = excluded.status,
        detail = excluded.detail, message_id = excluded.message_id
    RETURNING address
)
INSERT INTO events (message_id, recipient, kind, status, detail, at)
SELECT $5::text, s.address, 'suppressed', $3, $7, $6 FROM s WHERE $5::text IS NOT NULL";

pub(super) async fn suppress(c: &mut Conn, e: &Suppression) -> Result<(), StoreError> {
    let stmt = c.stmt(SUPPRESS).await?;
    let now = Timestamp::now().millis();
    let detail = format!("suppressed after a hard bounce ({})", e.reason);
    c.client.execute(&stmt, &[&e.address, &e.reason, &e.status, &e.detail, &e.message_id, &now, &detail]).await?;
    Ok(())
}

pub(super) async fn unsuppress(c: &mut Conn, address: &str) -> Result<bool, StoreError> {
    let stmt = c.stmt("DELETE FROM suppressions WHERE address = $1").await?;
    Ok(c.client.execute(&stmt, &[&address]).await? > 0)
}

const RELEASE: &str = "
UPDATE messages SET body = '\\x'::bytea, done = true WHERE id = $1 AND NOT done
AND NOT EXISTS (SELECT 1 FROM recipients WHERE message_id = $1 AND state IN ('queued', 'deferred'))";

pub(super) async fn release_body(c: &mut Conn, id: &MessageId) -> Result<(), StoreError> {
    let stmt = c.stmt(RELEASE).await?;
    c.client.execute(&stmt, &[&id.0]).await?;
    Ok(())
}

const RETRY_NOW: &str = "
UPDATE recipients SET next_attempt_at = $2
WHERE message_id = $1 AND state IN ('queued', 'deferred') AND lease_owner IS NULL";

pub(super) async fn retry_now(c: &mut Conn, id: &MessageId) -> Result<usize, StoreError> {
    let stmt = c.stmt(RETRY_NOW).await?;
    Ok(c.client.execute(&stmt, &[&id.0, &Timestamp::now().millis()]).await? as usize)
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
    let kind = if f.delay { "delayed" } else { "bounced" };
    let detail = format!("bounce received: {}", f.detail);
    let tx = c.client.transaction().await?;
    tx.execute(&event, &[&f.message.0, &f.address, &kind, &f.status, &detail, &now, &f.remote]).await?;
    let changed = if f.delay {
        0
    } else {
        tx.execute(&bounced, &[&f.recipient.0, &f.status, &f.detail, &f.remote, &now]).await?
    };
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
    tx.execute(&event, &[&id.0, &now]).await?;
    let n = tx.execute(&message, &[&id.0]).await?;
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

pub(super) async fn resume_account(c: &mut Conn, account: &str) -> Result<bool, StoreError> {
    let stmt = c.stmt("DELETE FROM paused_accounts WHERE account = $1").await?;
    Ok(c.client.execute(&stmt, &[&account]).await? > 0)
}

pub(super) async fn create_api_key(c: &mut Conn, k: &ApiKey) -> Result<(), StoreError> {
    let domains = serde_json::to_string(&k.domains).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let stmt =
        c.stmt("INSERT INTO api_keys (id, name, key_hash, domains, created_at) VALUES ($1, $2, $3, $4, $5)").await?;
    c.client.execute(&stmt, &[&k.id, &k.name, &k.hash, &domains, &Timestamp::now().millis()]).await?;
    Ok(())
}
