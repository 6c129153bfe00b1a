//! The SQL of every read, run on the reader connection (WAL: never blocked by the writer).
//!
//! Must not: write.

use rusqlite::{Connection, OptionalExtension, params};

use crate::smtp::address::Domain;
use crate::store::{
    ApiKey, AppPassword, EventKind, EventRecord, EventView, IdempotencyRecord, MailboxRecord, MessageDetail, MessageId,
    Origin, QueueEntry, RecipientFacts, RecipientId, RecipientState, RecipientView, RecoveryCode, ReportFacts, Scope,
    SecondFactor, SentEntry, StoreError, Suppression, SuppressionScope, TotpSecret, Transport, codec,
};
use crate::time::Timestamp;
use crate::tlspolicy::{CachedPolicy, Day, LastResult};

pub(super) fn load_body(c: &Connection, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(c.prepare_cached("SELECT body FROM messages WHERE id = ?1")?.query_row([&id.0], |r| r.get(0)).optional()?)
}

/// `load_body`'s answer when the stored body is at most `max` bytes; None when it is larger
/// (not read). SQLite gives a blob's length from its record header, without its pages.
pub(super) fn load_body_up_to(c: &Connection, id: &MessageId, max: i64) -> Result<Option<Option<Vec<u8>>>, StoreError> {
    let row = c
        .prepare_cached("SELECT CASE WHEN length(body) <= ?2 THEN body END FROM messages WHERE id = ?1")?
        .query_row(params![id.0, max], |r| r.get::<_, Option<Vec<u8>>>(0))
        .optional()?;
    Ok(match row {
        // No such message.
        None => Some(None),
        Some(Some(body)) => Some(Some(body)),
        // Too large to read here.
        Some(None) => None,
    })
}

/// A live idempotency record (one that expires after `now`).
pub(super) fn idempotency(
    c: &Connection,
    api_key: &str,
    key: &str,
    now: Timestamp,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let row = c
        .prepare_cached(
            "SELECT request_hash, message_id, status, response, created_at, expires_at FROM idempotency
             WHERE api_key = ?1 AND key = ?2 AND expires_at > ?3",
        )?
        .query_row(params![api_key, key, now.millis()], |r| {
            Ok(IdempotencyRecord {
                api_key: api_key.to_string(),
                key: key.to_string(),
                request_hash: r.get(0)?,
                message_id: MessageId(r.get(1)?),
                status: r.get(2)?,
                response: r.get(3)?,
                created_at: Timestamp(r.get(4)?),
                expires_at: Timestamp(r.get(5)?),
            })
        })
        .optional()?;
    Ok(row)
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
            transport: Transport::decode(&transport)?,
            attempts,
            notify: codec::notify(notify)?,
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
         WHERE EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id
                       AND r.state IN ('queued', 'deferred', 'held'))
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
        .prepare_cached(
            "SELECT reverse_path, size, received_at, envid, ret, origin, message_id_header FROM messages WHERE id = ?1",
        )?
        .query_row([&id.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })
        .optional()?;
    let Some((reverse_path, size, at, envid, ret, origin, message_id)) = row else {
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
    Ok(Some(MessageDetail { entry, message_id, envid, ret: codec::ret(ret)?, origin, events }))
}

pub(super) fn mailbox(c: &Connection, address: &str) -> Result<Option<MailboxRecord>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT address, password_hash, quota, used_bytes, password_changed_at FROM mailboxes WHERE address = ?1",
    )?
    .query_row(params![address], |r| {
        Ok(MailboxRecord {
            address: r.get(0)?,
            password_hash: r.get(1)?,
            quota: r.get::<_, Option<i64>>(2)?.map(|q| q as u64),
            used_bytes: r.get::<_, i64>(3)? as u64,
            password_changed_at: r.get::<_, Option<i64>>(4)?.map(Timestamp),
        })
    })
    .optional()?)
}

/// The app passwords of a login by name, or the one whose secret hashes to `hash`.
pub(super) fn app_passwords(c: &Connection, address: &str, hash: Option<&str>) -> Result<Vec<AppPassword>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT address, name, secret_hash, created_at, last_used_at, last_used_ip FROM app_passwords
         WHERE address = ?1 AND (?2 IS NULL OR secret_hash = ?2) ORDER BY name",
    )?;
    let rows = stmt.query_map(params![address, hash], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, Option<String>>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (address, name, hash, created_at, last_used_at, ip) = row?;
        out.push(AppPassword {
            address,
            name,
            hash,
            created_at: Timestamp(created_at),
            last_used_at: last_used_at.map(Timestamp),
            last_used_ip: codec::ip(ip)?,
        });
    }
    Ok(out)
}

pub(super) fn second_factor(c: &Connection, address: &str) -> Result<Option<SecondFactor>, StoreError> {
    let row = c
        .prepare_cached("SELECT secret, enabled_at, last_step FROM second_factors WHERE address = ?1")?
        .query_row([address], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?)))
        .optional()?;
    let Some((secret, enabled_at, last_step)) = row else { return Ok(None) };
    let mut stmt =
        c.prepare_cached("SELECT code_hash, used_at FROM recovery_codes WHERE address = ?1 ORDER BY code_hash")?;
    let recovery_codes = stmt
        .query_map([address], |r| {
            Ok(RecoveryCode { hash: r.get(0)?, used_at: r.get::<_, Option<i64>>(1)?.map(Timestamp) })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(SecondFactor {
        address: address.to_string(),
        secret: TotpSecret(secret),
        enabled_at: Timestamp(enabled_at),
        last_step: codec::step(last_step)?,
        recovery_codes,
    }))
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
            notify: codec::notify(notify)?,
            state: RecipientState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("state {state}")))?,
            attempts,
            status: codec::status(status)?,
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
        reverse_path: codec::reverse_path(reverse_path)?,
        envid,
        ret: codec::ret(ret)?,
        received_at: Timestamp(received_at),
        origin_via: origin.via,
        recipients,
    }))
}

/// SQL that is true when the domain `expr` is within the scope of the JSON list of domains in
/// parameter `?N` (NULL: every row): one of the domains or a subdomain of one. A NULL domain
/// is in no scope but `All`.
pub(super) fn in_scope(expr: &str, n: usize) -> String {
    format!(
        "(?{n} IS NULL OR EXISTS (SELECT 1 FROM json_each(?{n}) k WHERE {expr} = k.value
          OR (length({expr}) > length(k.value) AND substr({expr}, length({expr}) - length(k.value)) = '.' || k.value)))"
    )
}

/// The domain of a stored envelope sender (`local@domain`, or empty for `<>`): the text after
/// the last `@` (a quoted local part may hold one), as `Scope::covers_sender` reads it.
const SENDER_DOMAIN: &str = "(CASE WHEN instr(m.reverse_path, '@') > 0 THEN substr(m.reverse_path, length(rtrim(m.reverse_path, replace(m.reverse_path, '@', ''))) + 1) END)";

/// A scope as the parameter of `in_scope`.
pub(super) fn scope_param(scope: &Scope) -> Result<Option<String>, StoreError> {
    scope.sql_domains().map(|d| serde_json::to_string(&d).map_err(|e| StoreError::Corrupt(e.to_string()))).transpose()
}

const SUPPRESSION_COLUMNS: &str = "address, reason, status, detail, message_id, created_at, domain, scope";

type SuppressionRow = (Suppression, Option<String>, String);

fn suppression_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SuppressionRow> {
    Ok((
        Suppression {
            address: r.get(0)?,
            reason: r.get(1)?,
            status: r.get(2)?,
            detail: r.get(3)?,
            message_id: r.get(4)?,
            created_at: Timestamp(r.get(5)?).iso8601(),
            domain: None,
            scope: SuppressionScope::Global,
        },
        r.get(6)?,
        r.get(7)?,
    ))
}

/// Rows of `suppression_row` with their domains and scopes decoded.
fn suppression_rows(
    rows: impl Iterator<Item = rusqlite::Result<SuppressionRow>>,
) -> Result<Vec<Suppression>, StoreError> {
    let mut out = Vec::new();
    for row in rows {
        let (mut s, domain, scope) = row?;
        s.domain = crate::store::stored_domain(domain)?;
        s.scope = SuppressionScope::decode(&scope)?;
        out.push(s);
    }
    Ok(out)
}

pub(super) fn suppression(c: &Connection, address: &str) -> Result<Option<Suppression>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE address = ?1 ORDER BY created_at, rowid LIMIT 1"
    ))?;
    Ok(suppression_rows(stmt.query_map([address], suppression_row)?)?.pop())
}

pub(super) fn suppression_for(
    c: &Connection,
    address: &str,
    sender: Option<&Domain>,
) -> Result<Option<Suppression>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE address = ?1 ORDER BY created_at, rowid"
    ))?;
    let entries = suppression_rows(stmt.query_map([address], suppression_row)?)?;
    Ok(entries.into_iter().find(|e| e.refuses(sender)))
}

/// Every entry of the addresses, oldest first (the order `suppression_for` picks from).
pub(super) fn suppressions_of(c: &Connection, addresses: &[String]) -> Result<Vec<Suppression>, StoreError> {
    let list = serde_json::to_string(addresses).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions
         WHERE address IN (SELECT value FROM json_each(?1)) ORDER BY created_at, rowid"
    ))?;
    suppression_rows(stmt.query_map([list], suppression_row)?)
}

/// An API key's templates by name: the one named `name`, or those after `after`.
pub(super) fn templates(
    c: &Connection,
    api_key: &str,
    name: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<crate::store::Template>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT api_key, name, subject, text, html, created_at, updated_at FROM templates
         WHERE api_key = ?1 AND (?2 IS NULL OR name = ?2) AND (?3 IS NULL OR name > ?3)
         ORDER BY name LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![api_key, name, after, limit as i64], |r| {
        Ok(crate::store::Template {
            api_key: r.get(0)?,
            name: r.get(1)?,
            subject: r.get(2)?,
            text: r.get(3)?,
            html: r.get(4)?,
            created_at: Timestamp(r.get(5)?),
            updated_at: Timestamp(r.get(6)?),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn suppression_entries(
    c: &Connection,
    address: &str,
    scope: &Scope,
) -> Result<Vec<Suppression>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE address = ?1 AND {} ORDER BY created_at, rowid",
        in_scope("domain", 2)
    ))?;
    suppression_rows(stmt.query_map(params![address, scope_param(scope)?], suppression_row)?)
}

pub(super) fn suppressions(
    c: &Connection,
    scope: &Scope,
    limit: usize,
    after: Option<&crate::store::SuppressionCursor>,
) -> Result<(Vec<Suppression>, Option<crate::store::SuppressionCursor>), StoreError> {
    // Newest first, then by the entry's key (address, domain): the keyset of the cursor.
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions
         WHERE {} AND (?3 IS NULL OR (created_at, address, COALESCE(domain, '')) < (?3, ?4, ?5))
         ORDER BY created_at DESC, address DESC, COALESCE(domain, '') DESC LIMIT ?1",
        in_scope("domain", 2)
    ))?;
    let (at, address, domain) = match after {
        Some(a) => (Some(a.created_at), Some(a.address.as_str()), Some(a.domain.as_str())),
        None => (None, None, None),
    };
    let mut last = None;
    let rows = stmt.query_map(params![limit as i64, scope_param(scope)?, at, address, domain], |r| {
        last = Some(crate::store::SuppressionCursor {
            created_at: r.get(5)?,
            address: r.get(0)?,
            domain: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
        });
        suppression_row(r)
    })?;
    let list = suppression_rows(rows)?;
    Ok((list, last))
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

const API_KEY_COLUMNS: &str = "id, name, key_hash, domains, created_at, admin, last_used_at, sandbox";

fn api_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ApiKey, bool, String)> {
    Ok((
        ApiKey {
            id: r.get(0)?,
            name: r.get(1)?,
            hash: r.get(2)?,
            scope: Scope::Domains(Vec::new()),
            created_at: Timestamp(r.get(4)?).iso8601(),
            last_used_at: r.get::<_, Option<i64>>(6)?.map(Timestamp),
            sandbox: r.get(7)?,
        },
        r.get(5)?,
        r.get(3)?,
    ))
}

fn api_key_rows(
    rows: impl Iterator<Item = rusqlite::Result<(ApiKey, bool, String)>>,
) -> Result<Vec<ApiKey>, StoreError> {
    let mut out = Vec::new();
    for row in rows {
        let (mut key, admin, domains) = row?;
        key.scope = Scope::from_stored(admin, &domains)?;
        out.push(key);
    }
    Ok(out)
}

pub(super) fn api_key(c: &Connection, hash: &str) -> Result<Option<ApiKey>, StoreError> {
    let mut stmt = c.prepare_cached(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1"))?;
    Ok(api_key_rows(stmt.query_map([hash], api_key_row)?)?.pop())
}

pub(super) fn api_keys(c: &Connection) -> Result<Vec<ApiKey>, StoreError> {
    let mut stmt = c.prepare_cached(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"))?;
    api_key_rows(stmt.query_map([], api_key_row)?)
}

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(EventRecord, Option<String>)> {
    let record = EventRecord {
        event_id: r.get(0)?,
        at: Timestamp(r.get(1)?).iso8601(),
        id: r.get(2)?,
        message_id: r.get(12)?,
        recipient: r.get(3)?,
        kind: r.get(4)?,
        status: r.get(5)?,
        detail: r.get(6)?,
        remote: r.get(7)?,
        sandbox: r.get(8)?,
        tags: Vec::new(),
        metadata: Default::default(),
        attempt: r.get::<_, Option<i64>>(10)?.map(|n| n.clamp(0, i64::from(u32::MAX)) as u32),
        first_attempt_at: r.get::<_, Option<i64>>(11)?.map(|t| Timestamp(t).iso8601()),
    };
    Ok((record, r.get(9)?))
}

/// Messages matching `q` within `scope`, newest first (`Store::search_messages`).
pub(super) fn search_messages(
    c: &Connection,
    scope: &Scope,
    q: &crate::store::MessageSearch,
) -> Result<Vec<crate::store::MessageHit>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT m.id, m.reverse_path, m.received_at, m.origin, m.message_id_header FROM messages m
         WHERE (?1 IS NULL OR m.received_at >= ?1)
           AND ((?2 IS NULL AND ?3 IS NULL) OR EXISTS (
                SELECT 1 FROM recipients r WHERE r.message_id = m.id
                 AND (?2 IS NULL OR lower(r.address) = ?2) AND (?3 IS NULL OR r.state = ?3)))
           AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(m.origin, '$.tags') t WHERE t.value = ?4))
           AND (?5 IS NULL OR (m.received_at, m.id) < (?5, ?6))
           AND {}
         ORDER BY m.received_at DESC, m.id DESC LIMIT ?7",
        in_scope(SENDER_DOMAIN, 8)
    ))?;
    let (before_at, before_id) = match &q.before {
        Some((t, id)) => (Some(t.millis()), Some(id.0.as_str())),
        None => (None, None),
    };
    let rows = stmt
        .query_map(
            params![
                q.since.map(Timestamp::millis),
                q.recipient.as_deref().map(str::to_lowercase),
                q.state.map(RecipientState::as_str),
                q.tag,
                before_at,
                before_id,
                q.limit as i64,
                scope_param(scope)?
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(id, path, at, origin, mid)| crate::store::MessageHit::of(id, path, at, origin.as_deref(), mid))
        .collect()
}

/// For `deferred` and `expired` events: the attempt's number (its recipient's failed attempts
/// up to it) and when the first failed, read from the recipient's events (the same in both
/// backends: `events_message` finds a message's few events).
const ATTEMPT_COLUMNS: &str = "
    CASE WHEN e.kind IN ('deferred', 'expired') THEN
        (SELECT count(*) FROM events p WHERE p.message_id = e.message_id AND p.recipient = e.recipient
                                         AND p.kind IN ('deferred', 'expired') AND p.id <= e.id) END,
    CASE WHEN e.kind IN ('deferred', 'expired') THEN
        (SELECT min(p.at) FROM events p WHERE p.message_id = e.message_id AND p.recipient = e.recipient
                                         AND p.kind IN ('deferred', 'expired')) END,
    m.message_id_header";

/// The events with the tags and metadata of their message's origin.
fn with_origin(rows: Vec<(EventRecord, Option<String>)>) -> Result<Vec<EventRecord>, StoreError> {
    rows.into_iter()
        .map(|(mut e, origin)| {
            if let Some(o) = codec::origin(origin.as_deref())? {
                (e.tags, e.metadata) = (o.tags, o.metadata);
            }
            Ok(e)
        })
        .collect()
}

/// Events after the cursor; for a scope, only those of messages whose sender domain is in it
/// (the filter is part of the query, so the LIMIT counts only events of the scope).
pub(super) fn events_after(
    c: &Connection,
    after: i64,
    kind: Option<EventKind>,
    scope: &Scope,
    limit: usize,
) -> Result<Vec<EventRecord>, StoreError> {
    let Some(domains) = scope_param(scope)? else {
        let mut stmt = c.prepare_cached(&format!(
            "SELECT e.id, e.at, e.message_id, e.recipient, e.kind, e.status, e.detail, e.remote, e.sandbox, m.origin,
                    {ATTEMPT_COLUMNS}
             FROM events e LEFT JOIN messages m ON m.id = e.message_id
             WHERE e.id > ?1 AND (?2 IS NULL OR e.kind = ?2) ORDER BY e.id LIMIT ?3",
        ))?;
        return with_origin(
            stmt.query_map(params![after, kind.map(EventKind::as_str), limit as i64], event_row)?
                .collect::<Result<Vec<_>, _>>()?,
        );
    };
    let mut stmt = c.prepare_cached(&format!(
        "SELECT e.id, e.at, e.message_id, e.recipient, e.kind, e.status, e.detail, e.remote, e.sandbox, m.origin,
                {ATTEMPT_COLUMNS}
         FROM events e JOIN messages m ON m.id = e.message_id
         WHERE e.id > ?1 AND (?2 IS NULL OR e.kind = ?2) AND {}
         ORDER BY e.id LIMIT ?3",
        in_scope(SENDER_DOMAIN, 4)
    ))?;
    with_origin(
        stmt.query_map(params![after, kind.map(EventKind::as_str), limit as i64, domains], event_row)?
            .collect::<Result<Vec<_>, _>>()?,
    )
}

pub(super) fn account_history(
    c: &Connection,
    account: &str,
    since: crate::store::Hour,
) -> Result<crate::store::AccountHistory, StoreError> {
    use crate::store::{AccountHistory, Hour, HourCount, SeenAt};
    let first_seen: Option<i64> = c
        .prepare_cached("SELECT first_seen FROM account_baselines WHERE account = ?1")?
        .query_map([account], |r| r.get(0))?
        .next()
        .transpose()?;
    let hours = c
        .prepare_cached(
            "SELECT hour, messages, domains FROM account_hours WHERE account = ?1 AND hour >= ?2 ORDER BY hour",
        )?
        .query_map(params![account, since.0], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|(hour, m, d)| HourCount { hour: Hour(hour), messages: codec::count(m), domains: codec::count(d) })
        .collect();
    let seen = c
        .prepare_cached("SELECT kind, value, last_seen FROM account_seen WHERE account = ?1 ORDER BY last_seen DESC")?
        .query_map([account], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|(kind, value, last)| Ok(SeenAt { seen: codec::seen(&kind, &value)?, last: Timestamp(last) }))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(AccountHistory { first_seen: first_seen.map(Timestamp), hours, seen })
}

pub(super) fn paused(c: &Connection, account: Option<&str>) -> Result<Vec<crate::store::AccountPause>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT account, detail, message_id, paused_at FROM paused_accounts
         WHERE ?1 IS NULL OR account = ?1 ORDER BY paused_at DESC LIMIT 10000",
    )?;
    let rows = stmt.query_map([account], pause_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The pause of the first of `accounts` that is paused: one primary-key probe per account, no
/// scan and no sort (it runs at every RCPT to a remote domain).
pub(super) fn first_pause(
    c: &Connection,
    accounts: &[String],
) -> Result<Option<crate::store::AccountPause>, StoreError> {
    let mut stmt =
        c.prepare_cached("SELECT account, detail, message_id, paused_at FROM paused_accounts WHERE account = ?1")?;
    for account in accounts {
        if let Some(p) = stmt.query_row([account], pause_row).optional()? {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

fn pause_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<crate::store::AccountPause> {
    Ok(crate::store::AccountPause {
        account: r.get(0)?,
        detail: r.get(1)?,
        message_id: r.get(2)?,
        paused_at: Timestamp(r.get(3)?).iso8601(),
    })
}

// --- dashboard: the overview reads the running counts of schema v5 (kept by triggers); the
// queue page reads the state (and domain) indexes, one LIMITed range per state.

pub(super) fn delivery_overview(
    c: &Connection,
    since: Timestamp,
    top: usize,
) -> Result<crate::store::DeliveryOverview, StoreError> {
    use crate::store::{DailyCount, DomainFailures, StateStatusCount};
    const DAY: i64 = 86_400_000;
    let mut by_state_status = Vec::new();
    let mut stmt = c.prepare_cached("SELECT state, status, n FROM stats_state WHERE n > 0 ORDER BY state, status")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let status: String = r.get(1)?;
        by_state_status.push(StateStatusCount {
            state: RecipientState::decode(&r.get::<_, String>(0)?)?,
            status: (!status.is_empty()).then_some(status),
            count: r.get::<_, i64>(2)?.max(0) as u64,
        });
    }
    let mut daily = Vec::new();
    let mut stmt =
        c.prepare_cached("SELECT day, state, n FROM stats_daily WHERE day >= ?1 AND n > 0 ORDER BY day, state")?;
    let mut rows = stmt.query([since.millis().div_euclid(DAY)])?;
    while let Some(r) = rows.next()? {
        daily.push(DailyCount {
            day: Timestamp(r.get::<_, i64>(0)? * DAY),
            state: RecipientState::decode(&r.get::<_, String>(1)?)?,
            count: r.get::<_, i64>(2)?.max(0) as u64,
        });
    }
    let mut stmt = c.prepare_cached(
        "SELECT domain, sum(CASE WHEN state = 'deferred' THEN 0 ELSE n END) AS f,
                sum(CASE WHEN state = 'deferred' THEN n ELSE 0 END) AS d
         FROM stats_domain WHERE state IN ('bounced', 'expired', 'deferred') AND n > 0
         GROUP BY domain ORDER BY f + d DESC, domain LIMIT ?1",
    )?;
    let failing_domains = stmt
        .query_map([top as i64], |r| {
            Ok(DomainFailures {
                domain: r.get(0)?,
                failed: r.get::<_, i64>(1)?.max(0) as u64,
                deferred: r.get::<_, i64>(2)?.max(0) as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    // From the partial index of schema v16.
    let complaints: i64 = c
        .prepare_cached("SELECT count(*) FROM events WHERE kind = 'complained' AND at >= ?1")?
        .query_row([since.millis()], |r| r.get(0))?;
    Ok(crate::store::DeliveryOverview { by_state_status, daily, failing_domains, complaints: complaints.max(0) as u64 })
}

pub(super) fn queue_search(
    c: &Connection,
    filter: &crate::store::QueueFilter,
) -> Result<Vec<crate::store::QueueRow>, StoreError> {
    let (sql, args) = queue_search_sql(filter);
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, u32>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, i64>(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, message, reverse_path, address, state, attempts, last_status, last_detail, updated) = row?;
        out.push(crate::store::QueueRow {
            recipient: RecipientId(id),
            message: MessageId(message),
            reverse_path,
            address,
            state: RecipientState::decode(&state)?,
            attempts,
            last_status,
            last_detail,
            updated_at: Timestamp(updated),
        });
    }
    Ok(out)
}

/// The queue page's query for `filter` and its values.
fn queue_search_sql(filter: &crate::store::QueueFilter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let limit = Value::Integer(filter.limit as i64);
    let mut args: Vec<Value> = vec![limit];
    // Without any filter: the newest recipients (rowid order). With one: per state, the newest
    // changes from the (state, updated_at) or (state, domain, updated_at) index, LIMITed, so
    // no more than `limit` rows per state are read; the union is sorted once.
    let inner = if filter.states.is_empty() && filter.domain.is_none() {
        "SELECT id, message_id, address, state, attempts, last_status, last_detail, updated_at
         FROM recipients ORDER BY id DESC LIMIT ?1"
            .to_string()
    } else {
        let states = if filter.states.is_empty() { &RecipientState::ALL[..] } else { &filter.states[..] };
        let domain = filter.domain.as_ref().map(|d| {
            args.push(Value::Text(d.to_lowercase()));
            format!(" AND lower(substr(address, instr(address, '@') + 1)) = ?{}", args.len())
        });
        let mut parts = Vec::new();
        for s in states {
            args.push(Value::Text(s.as_str().to_string()));
            parts.push(format!(
                "SELECT * FROM (SELECT id, message_id, address, state, attempts, last_status, last_detail, updated_at
                 FROM recipients WHERE state = ?{}{} ORDER BY updated_at DESC, id DESC LIMIT ?1)",
                args.len(),
                domain.as_deref().unwrap_or("")
            ));
        }
        parts.join(" UNION ALL ")
    };
    let sql = format!(
        "SELECT r.id, r.message_id, m.reverse_path, r.address, r.state, r.attempts, r.last_status, r.last_detail,
                r.updated_at
         FROM ({inner}) r JOIN messages m ON m.id = r.message_id
         ORDER BY {} LIMIT ?1",
        if filter.states.is_empty() && filter.domain.is_none() { "r.id DESC" } else { "r.updated_at DESC, r.id DESC" }
    );
    (sql, args)
}

pub(super) fn search_suppressions(c: &Connection, query: &str, limit: usize) -> Result<Vec<Suppression>, StoreError> {
    let pattern = crate::store::like_contains(query);
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {SUPPRESSION_COLUMNS} FROM suppressions
         WHERE address LIKE ?1 ESCAPE '\\' ORDER BY created_at DESC LIMIT ?2"
    ))?;
    suppression_rows(stmt.query_map(params![pattern, limit as i64], suppression_row)?)
}

/// The deferred recipient of the oldest message: the first stored (recipient rows are written
/// with their message, in the order messages are accepted). The smallest id comes from the
/// covering (state, …) index, without reading a row of the queue (ordering by the message's
/// `received_at` read and sorted every deferred recipient: 24 s at a million deferred). Feedback
/// recipients do not count: if the first deferred one is one (rare: a bounce to us that could
/// not be stored), the exact scan answers.
pub(super) fn oldest_deferred(c: &Connection) -> Result<Option<crate::store::OldestDeferred>, StoreError> {
    let first = c
        .prepare_cached(
            "SELECT r.message_id, r.address, m.received_at, r.attempts, r.last_detail, r.transport
             FROM recipients r JOIN messages m ON m.id = r.message_id
             WHERE r.id = (SELECT min(id) FROM recipients WHERE state = 'deferred')",
        )?
        .query_row([], |r| {
            Ok((
                crate::store::OldestDeferred {
                    message: MessageId(r.get(0)?),
                    address: r.get(1)?,
                    received_at: Timestamp(r.get(2)?).iso8601(),
                    attempts: r.get(3)?,
                    last_detail: r.get(4)?,
                },
                r.get::<_, String>(5)?,
            ))
        })
        .optional()?;
    match first {
        Some((oldest, transport)) if transport != Transport::Feedback.as_str() => return Ok(Some(oldest)),
        None => return Ok(None),
        Some(_) => {}
    }
    Ok(c.prepare_cached(
        "SELECT r.message_id, r.address, m.received_at, r.attempts, r.last_detail
             FROM recipients r JOIN messages m ON m.id = r.message_id
             WHERE r.state = 'deferred' AND r.transport <> 'feedback'
             ORDER BY r.id LIMIT 1",
    )?
    .query_row([], |r| {
        Ok(crate::store::OldestDeferred {
            message: MessageId(r.get(0)?),
            address: r.get(1)?,
            received_at: Timestamp(r.get(2)?).iso8601(),
            attempts: r.get(3)?,
            last_detail: r.get(4)?,
        })
    })
    .optional()?)
}

pub(super) fn queue_summary(
    c: &Connection,
    now: Timestamp,
    top: usize,
) -> Result<crate::store::QueueSummary, StoreError> {
    use crate::store::{DomainQueue, QueueSummary, StateCount};
    let mut by_state: Vec<StateCount> =
        RecipientState::WAITING.iter().map(|&state| StateCount { state, count: 0 }).collect();
    // From the running counts of schema v5 (kept by triggers, feedback recipients not counted),
    // not by counting the queue's rows: 6 s and 12 s at a million deferred, 0.2 and 7 ms so.
    let mut stmt = c.prepare_cached(
        "SELECT state, sum(n) FROM stats_state WHERE state IN ('queued', 'deferred', 'held') GROUP BY state",
    )?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (state, n) = row?;
        let state = RecipientState::decode(&state)?;
        if let Some(s) = by_state.iter_mut().find(|s| s.state == state) {
            s.count = n.max(0) as u64;
        }
    }
    let mut stmt = c.prepare_cached(
        "SELECT domain, sum(CASE WHEN state = 'queued' THEN n ELSE 0 END),
                sum(CASE WHEN state = 'deferred' THEN n ELSE 0 END), sum(CASE WHEN state = 'held' THEN n ELSE 0 END)
         FROM stats_domain WHERE state IN ('queued', 'deferred', 'held')
         GROUP BY domain HAVING sum(n) > 0 ORDER BY sum(n) DESC, domain LIMIT ?1",
    )?;
    let top_domains = stmt
        .query_map([top as i64], |r| {
            Ok(DomainQueue {
                domain: r.get(0)?,
                queued: r.get::<_, i64>(1)?.max(0) as u64,
                deferred: r.get::<_, i64>(2)?.max(0) as u64,
                held: r.get::<_, i64>(3)?.max(0) as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let oldest_deferred = oldest_deferred(c)?;
    let mut delivered = c.prepare_cached(
        "SELECT count(*) FROM recipients WHERE state = 'delivered' AND updated_at >= ?1 AND transport <> 'feedback'",
    )?;
    let mut since = |ms: i64| -> Result<u64, StoreError> {
        Ok(delivered.query_row([now.millis() - ms], |r| r.get::<_, i64>(0))?.max(0) as u64)
    };
    Ok(QueueSummary {
        by_state,
        top_domains,
        oldest_deferred,
        delivered_last_minute: since(60_000)?,
        delivered_last_5_minutes: since(300_000)?,
    })
}

pub(super) fn sts_policy(c: &Connection, domain: &str) -> Result<Option<CachedPolicy>, StoreError> {
    let row = c
        .prepare_cached(
            "SELECT domain, policy_id, body, fetched_at, expires_at FROM mta_sts_policies WHERE domain = ?1",
        )?
        .query_row([domain], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .optional()?;
    row.map(|(d, id, body, fetched, expires)| CachedPolicy::from_columns(d, id, body, fetched, expires)).transpose()
}

pub(super) fn tls_report_due(c: &Connection, before: Day) -> Result<Vec<(Day, String)>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT DISTINCT day, domain FROM tls_report_counts WHERE day < ?1 ORDER BY day, domain LIMIT 10000",
    )?;
    let rows = stmt.query_map([before.0], |r| Ok((Day(r.get(0)?), r.get(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn tls_result(c: &Connection, domain: &str) -> Result<Option<LastResult>, StoreError> {
    let row: Option<(String, String, String, String, i64)> = c
        .prepare_cached("SELECT domain, policy, result, detail, at FROM tls_results WHERE domain = ?1")?
        .query_row([domain], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .optional()?;
    row.map(|(domain, policy, result, detail, at)| {
        Ok(LastResult { domain, policy, result: codec::tls_result(&result)?, detail, at: Timestamp(at) })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::QueueFilter;

    /// What SQLite's planner says it does for the queue page's query.
    fn plan(filter: &QueueFilter) -> Vec<String> {
        let (sql, args) = queue_search_sql(filter);
        super::super::query_plan(&sql, args)
    }

    #[test]
    fn every_state_is_read_through_the_index_that_holds_it() {
        for domain in [None, Some("example.test".to_string())] {
            for state in RecipientState::ALL {
                let steps = plan(&QueueFilter { states: vec![state], domain: domain.clone(), limit: 50 });
                let index = if domain.is_some() { "recipients_state_domain" } else { "recipients_state_updated" };
                let on_recipients: Vec<_> = steps.iter().filter(|s| s.contains(" recipients ")).collect();
                assert!(
                    on_recipients.iter().all(|s| s.contains(&format!("USING INDEX {index}"))),
                    "{state:?}, domain {domain:?}: {steps:?}"
                );
                assert!(!on_recipients.is_empty(), "{state:?}: {steps:?}");
            }
        }
    }
}
