//! The SQL of every read, run on the reader connection (WAL: never blocked by the writer).
//!
//! Must not: write.

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{
    EventView, MailboxRecord, MessageDetail, MessageId, Origin, QueueEntry, RecipientFacts, RecipientId,
    RecipientState, RecipientView, ReportFacts, SentEntry, StoreError, Suppression, Transport,
};
use crate::time::Timestamp;

pub(super) fn load_body(c: &Connection, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(c.prepare_cached("SELECT body FROM messages WHERE id = ?1")?.query_row([&id.0], |r| r.get(0)).optional()?)
}

fn recipient_views(c: &Connection, id: &str) -> Result<Vec<RecipientView>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT address, state, transport, attempts, notify, orcpt, last_status, last_detail, remote_mta
         FROM recipients WHERE message_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, u32>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, Option<String>>(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (address, state, transport, attempts, notify, orcpt, last_status, last_detail, remote_mta) = row?;
        out.push(RecipientView {
            address,
            state: RecipientState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("state {state}")))?,
            transport: match transport.as_str() {
                "local" => Transport::Local,
                "feedback" => Transport::Feedback,
                _ => Transport::Remote,
            },
            attempts,
            notify,
            orcpt,
            last_status,
            last_detail,
            remote_mta,
        });
    }
    Ok(out)
}

pub(super) fn queue_list(c: &Connection, limit: usize) -> Result<Vec<QueueEntry>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, reverse_path, size, received_at FROM messages m
         WHERE EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.state IN ('queued', 'deferred'))
         ORDER BY seq LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, reverse_path, size, at) = row?;
        let recipients = recipient_views(c, &id)?;
        out.push(QueueEntry {
            id: MessageId(id),
            reverse_path,
            size: size as u64,
            received_at: Timestamp(at).iso8601(),
            recipients,
        });
    }
    Ok(out)
}

pub(super) fn message_detail(c: &Connection, id: &MessageId) -> Result<Option<MessageDetail>, StoreError> {
    let row = c
        .prepare_cached("SELECT reverse_path, size, received_at, envid, ret, origin FROM messages WHERE id = ?1")?
        .query_row([&id.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .optional()?;
    let Some((reverse_path, size, at, envid, ret, origin)) = row else {
        return Ok(None);
    };
    let origin: Origin = serde_json::from_str(&origin).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut stmt = c.prepare_cached(
        "SELECT at, kind, recipient, status, detail, remote FROM events WHERE message_id = ?1 ORDER BY id",
    )?;
    let events = stmt
        .query_map([&id.0], |r| {
            Ok(EventView {
                at: Timestamp(r.get(0)?).iso8601(),
                kind: r.get(1)?,
                recipient: r.get(2)?,
                status: r.get(3)?,
                detail: r.get(4)?,
                remote: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let entry = QueueEntry {
        id: id.clone(),
        reverse_path,
        size: size as u64,
        received_at: Timestamp(at).iso8601(),
        recipients: recipient_views(c, &id.0)?,
    };
    Ok(Some(MessageDetail { entry, envid, ret, origin, events }))
}

pub(super) fn mailbox(c: &Connection, address: &str) -> Result<Option<MailboxRecord>, StoreError> {
    Ok(c.prepare_cached("SELECT address, password_hash, quota, used_bytes FROM mailboxes WHERE address = ?1")?
        .query_row(params![address], |r| {
            Ok(MailboxRecord {
                address: r.get(0)?,
                password_hash: r.get(1)?,
                quota: r.get::<_, Option<i64>>(2)?.map(|q| q as u64),
                used_bytes: r.get::<_, i64>(3)? as u64,
            })
        })
        .optional()?)
}

pub(super) fn report_facts(c: &Connection, id: &MessageId) -> Result<Option<ReportFacts>, StoreError> {
    let row = c
        .prepare_cached("SELECT reverse_path, envid, ret, received_at, origin FROM messages WHERE id = ?1")?
        .query_row([&id.0], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)?, r.get::<_, String>(4)?))
        })
        .optional()?;
    let Some((reverse_path, envid, ret, received_at, origin)) = row else { return Ok(None) };
    let origin: Origin = serde_json::from_str(&origin).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut stmt = c.prepare_cached(
        "SELECT id, address, orcpt, notify, state, attempts, last_status, last_detail, reply_code, remote_mta,
                updated_at, final_reported, delay_reported
         FROM recipients WHERE message_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([&id.0], |r| {
        Ok((
            RecipientId(r.get(0)?),
            r.get::<_, String>(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get::<_, String>(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
            r.get::<_, i64>(10)?,
            r.get::<_, bool>(11)?,
            r.get::<_, bool>(12)?,
        ))
    })?;
    let mut recipients = Vec::new();
    for row in rows {
        let (rid, address, orcpt, notify, state, attempts, status, detail, reply_code, remote_mta, updated, fin, delay) =
            row?;
        recipients.push(RecipientFacts {
            id: rid,
            address,
            orcpt,
            notify,
            state: RecipientState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("state {state}")))?,
            attempts,
            status,
            detail,
            reply_code,
            remote_mta,
            updated_at: Timestamp(updated),
            final_reported: fin,
            delay_reported: delay,
        });
    }
    Ok(Some(ReportFacts {
        id: id.clone(),
        reverse_path,
        envid,
        ret,
        received_at: Timestamp(received_at),
        origin_via: origin.via,
        recipients,
    }))
}

fn suppression_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Suppression> {
    Ok(Suppression {
        address: r.get(0)?,
        reason: r.get(1)?,
        status: r.get(2)?,
        detail: r.get(3)?,
        message_id: r.get(4)?,
        created_at: Timestamp(r.get(5)?).iso8601(),
    })
}

pub(super) fn suppression(c: &Connection, address: &str) -> Result<Option<Suppression>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT address, reason, status, detail, message_id, created_at FROM suppressions WHERE address = ?1",
    )?
    .query_row([address], suppression_row)
    .optional()?)
}

pub(super) fn suppressions(c: &Connection, limit: usize) -> Result<Vec<Suppression>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT address, reason, status, detail, message_id, created_at FROM suppressions ORDER BY created_at DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], suppression_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn sent_log(c: &Connection, header_id: &str) -> Result<Vec<SentEntry>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT queue_id, recipient, sent_at FROM sent_log WHERE header_id = ?1 ORDER BY sent_at, recipient LIMIT 1000",
    )?;
    let rows = stmt
        .query_map([header_id], |r| {
            Ok(SentEntry { queue_id: MessageId(r.get(0)?), recipient: r.get(1)?, sent_at: Timestamp(r.get(2)?) })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn api_key(c: &Connection, hash: &str) -> Result<Option<crate::store::ApiKey>, StoreError> {
    let row = c
        .prepare_cached("SELECT id, name, key_hash, domains, created_at FROM api_keys WHERE key_hash = ?1")?
        .query_row([hash], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    let Some((id, name, hash, domains, at)) = row else { return Ok(None) };
    let domains: Vec<String> = serde_json::from_str(&domains).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Some(crate::store::ApiKey { id, name, hash, domains, created_at: Timestamp(at).iso8601() }))
}

pub(super) fn events_after(
    c: &Connection,
    after: i64,
    kind: Option<&str>,
    limit: usize,
) -> Result<Vec<crate::store::EventRecord>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, at, message_id, recipient, kind, status, detail, remote FROM events
         WHERE id > ?1 AND (?2 IS NULL OR kind = ?2) ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![after, kind, limit as i64], |r| {
            Ok(crate::store::EventRecord {
                id: r.get(0)?,
                at: Timestamp(r.get(1)?).iso8601(),
                message_id: r.get(2)?,
                recipient: r.get(3)?,
                kind: r.get(4)?,
                status: r.get(5)?,
                detail: r.get(6)?,
                remote: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn paused(c: &Connection, account: Option<&str>) -> Result<Vec<crate::store::AccountPause>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT account, detail, message_id, paused_at FROM paused_accounts
         WHERE ?1 IS NULL OR account = ?1 ORDER BY paused_at DESC LIMIT 10000",
    )?;
    let rows = stmt
        .query_map([account], |r| {
            Ok(crate::store::AccountPause {
                account: r.get(0)?,
                detail: r.get(1)?,
                message_id: r.get(2)?,
                paused_at: Timestamp(r.get(3)?).iso8601(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
