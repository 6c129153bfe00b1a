//! The SQL of every read, run on the reader connection (WAL: never blocked by the writer).
//!
//! Must not: write.

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{
    EventView, MailboxRecord, MessageDetail, MessageId, Origin, QueueEntry, RecipientState, RecipientView, StoreError,
    Transport,
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
            transport: if transport == "local" { Transport::Local } else { Transport::Remote },
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
