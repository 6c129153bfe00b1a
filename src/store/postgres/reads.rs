//! The SQL of every read on PostgreSQL (plain statements, READ COMMITTED; the report facts
//! after attempts are read for many callers at once, see `batch.rs`).
//!
//! Must not: write.

use tokio_postgres::Row;

use super::batch::Batched;
use super::pool::Conn;
use crate::smtp::address::Domain;
use crate::store::{
    AccountPause, ApiKey, AppPassword, EventKind, EventRecord, EventView, IdempotencyRecord, MailboxRecord,
    MessageDetail, MessageId, Origin, QueueEntry, RecipientFacts, RecipientId, RecipientState, RecipientView,
    RecoveryCode, ReportFacts, Scope, SecondFactor, SentEntry, StoreError, Suppression, SuppressionScope, TotpSecret,
    Transport, codec,
};
use crate::time::Timestamp;
use crate::tlspolicy::{CachedPolicy, LastResult};

fn origin(s: &str) -> Result<Origin, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) async fn load_body(c: &mut Conn, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
    let stmt = c.stmt("SELECT body FROM messages WHERE id = $1").await?;
    Ok(match c.client.query_opt(&stmt, &[&id.0]).await? {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    })
}

/// A live idempotency record (one that expires after `now`).
pub(super) async fn idempotency(
    c: &mut Conn,
    api_key: &str,
    key: &str,
    now: Timestamp,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let stmt = c
        .stmt(
            "SELECT request_hash, message_id, status, response, created_at, expires_at FROM idempotency
             WHERE api_key = $1 AND key = $2 AND expires_at > $3",
        )
        .await?;
    let Some(r) = c.client.query_opt(&stmt, &[&api_key, &key, &now.millis()]).await? else { return Ok(None) };
    let status: i32 = r.try_get(2)?;
    Ok(Some(IdempotencyRecord {
        api_key: api_key.to_string(),
        key: key.to_string(),
        request_hash: r.try_get(0)?,
        message_id: MessageId(r.try_get(1)?),
        status: u16::try_from(status).map_err(|_| StoreError::Corrupt(format!("HTTP status {status}")))?,
        response: r.try_get(3)?,
        created_at: Timestamp(r.try_get(4)?),
        expires_at: Timestamp(r.try_get(5)?),
    }))
}

const RECIPIENT_VIEWS: &str = "
SELECT address, state, transport, attempts, notify, orcpt, last_status, last_detail, remote_mta
FROM recipients WHERE message_id = $1 ORDER BY id";

async fn recipient_views(c: &mut Conn, id: &str) -> Result<Vec<RecipientView>, StoreError> {
    let stmt = c.stmt(RECIPIENT_VIEWS).await?;
    let mut out = Vec::new();
    for r in c.client.query(&stmt, &[&id]).await? {
        out.push(RecipientView {
            address: r.try_get(0)?,
            state: RecipientState::decode(r.try_get(1)?)?,
            transport: Transport::decode(r.try_get(2)?)?,
            attempts: r.try_get::<_, i32>(3)? as u32,
            notify: codec::notify(r.try_get(4)?)?,
            orcpt: r.try_get(5)?,
            last_status: r.try_get(6)?,
            last_detail: r.try_get(7)?,
            remote_mta: r.try_get(8)?,
        });
    }
    Ok(out)
}

const QUEUE_LIST: &str = "
SELECT id, reverse_path, size, received_at FROM messages m
WHERE EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.state IN ('queued', 'deferred', 'held'))
ORDER BY seq LIMIT $1";

pub(super) async fn queue_list(c: &mut Conn, limit: usize) -> Result<Vec<QueueEntry>, StoreError> {
    let stmt = c.stmt(QUEUE_LIST).await?;
    let rows = c.client.query(&stmt, &[&(limit as i64)]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.try_get(0)?;
        let recipients = recipient_views(c, &id).await?;
        out.push(QueueEntry {
            id: MessageId(id),
            reverse_path: r.try_get(1)?,
            size: r.try_get::<_, i64>(2)? as u64,
            received_at: Timestamp(r.try_get(3)?).iso8601(),
            recipients,
        });
    }
    Ok(out)
}

pub(super) async fn message_detail(c: &mut Conn, id: &MessageId) -> Result<Option<MessageDetail>, StoreError> {
    let stmt = c
        .stmt(
            "SELECT reverse_path, size, received_at, envid, ret, origin, message_id_header FROM messages WHERE id = $1",
        )
        .await?;
    let Some(row) = c.client.query_opt(&stmt, &[&id.0]).await? else {
        return Ok(None);
    };
    let stmt = c
        .stmt("SELECT at, kind, recipient, status, detail, remote FROM events WHERE message_id = $1 ORDER BY id")
        .await?;
    let mut events = Vec::new();
    for r in c.client.query(&stmt, &[&id.0]).await? {
        events.push(EventView {
            at: Timestamp(r.try_get(0)?).iso8601(),
            kind: EventKind::decode(r.try_get(1)?)?,
            recipient: r.try_get(2)?,
            status: r.try_get(3)?,
            detail: r.try_get(4)?,
            remote: r.try_get(5)?,
        });
    }
    let entry = QueueEntry {
        id: id.clone(),
        reverse_path: row.try_get(0)?,
        size: row.try_get::<_, i64>(1)? as u64,
        received_at: Timestamp(row.try_get(2)?).iso8601(),
        recipients: recipient_views(c, &id.0).await?,
    };
    Ok(Some(MessageDetail {
        entry,
        message_id: row.try_get(6)?,
        envid: row.try_get(3)?,
        ret: codec::ret(row.try_get(4)?)?,
        origin: origin(row.try_get(5)?)?,
        events,
    }))
}

pub(super) async fn mailbox(c: &mut Conn, address: &str) -> Result<Option<MailboxRecord>, StoreError> {
    let stmt = c
        .stmt("SELECT address, password_hash, quota, used_bytes, password_changed_at FROM mailboxes WHERE address = $1")
        .await?;
    let Some(r) = c.client.query_opt(&stmt, &[&address]).await? else {
        return Ok(None);
    };
    Ok(Some(MailboxRecord {
        address: r.try_get(0)?,
        password_hash: r.try_get(1)?,
        quota: r.try_get::<_, Option<i64>>(2)?.map(|q| q as u64),
        used_bytes: r.try_get::<_, i64>(3)? as u64,
        password_changed_at: r.try_get::<_, Option<i64>>(4)?.map(Timestamp),
    }))
}

fn app_password_row(r: &Row) -> Result<AppPassword, StoreError> {
    Ok(AppPassword {
        address: r.try_get(0)?,
        name: r.try_get(1)?,
        hash: r.try_get(2)?,
        created_at: Timestamp(r.try_get(3)?),
        last_used_at: r.try_get::<_, Option<i64>>(4)?.map(Timestamp),
        last_used_ip: codec::ip(r.try_get(5)?)?,
    })
}

/// The app passwords of a login by name, or the one whose secret hashes to `hash`.
pub(super) async fn app_passwords(
    c: &mut Conn,
    address: &str,
    hash: Option<&str>,
) -> Result<Vec<AppPassword>, StoreError> {
    let stmt = c
        .stmt(
            "SELECT address, name, secret_hash, created_at, last_used_at, last_used_ip FROM app_passwords
             WHERE address = $1 AND ($2::text IS NULL OR secret_hash = $2) ORDER BY name",
        )
        .await?;
    c.client.query(&stmt, &[&address, &hash]).await?.iter().map(app_password_row).collect()
}

pub(super) async fn second_factor(c: &mut Conn, address: &str) -> Result<Option<SecondFactor>, StoreError> {
    let factor = c.stmt("SELECT secret, enabled_at, last_step FROM second_factors WHERE address = $1").await?;
    let codes = c.stmt("SELECT code_hash, used_at FROM recovery_codes WHERE address = $1 ORDER BY code_hash").await?;
    let Some(r) = c.client.query_opt(&factor, &[&address]).await? else { return Ok(None) };
    let recovery_codes = c
        .client
        .query(&codes, &[&address])
        .await?
        .iter()
        .map(|r| Ok(RecoveryCode { hash: r.try_get(0)?, used_at: r.try_get::<_, Option<i64>>(1)?.map(Timestamp) }))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(SecondFactor {
        address: address.to_string(),
        secret: TotpSecret(r.try_get(0)?),
        enabled_at: Timestamp(r.try_get(1)?),
        last_step: codec::step(r.try_get(2)?)?,
        recovery_codes,
    }))
}

/// Every message of `$1` with its recipients (if any), in one statement.
const FACTS: &str = "
SELECT m.id, m.reverse_path, m.envid, m.ret, m.received_at, m.origin,
       r.id, r.address, r.orcpt, r.notify, r.state, r.attempts, r.last_status, r.last_detail, r.reply_code,
       r.remote_mta, r.updated_at, r.final_reported, r.delay_reported
FROM messages m LEFT JOIN recipients r ON r.message_id = m.id
WHERE m.id = ANY($1::text[])
ORDER BY m.id, r.id";

/// The report facts of some messages, asked for by many callers at once (after their records
/// committed) and read in one statement; each caller gets the facts of its own messages.
pub(super) struct FactsOf(pub Vec<MessageId>);

impl Batched for FactsOf {
    type Output = Vec<ReportFacts>;

    async fn run(c: &mut Conn, batch: &[FactsOf]) -> Result<Vec<Vec<ReportFacts>>, StoreError> {
        let mut ids: Vec<String> = batch.iter().flat_map(|f| f.0.iter().map(|id| id.0.clone())).collect();
        ids.sort_unstable();
        ids.dedup();
        let facts = report_facts_of(c, &ids).await?;
        Ok(batch.iter().map(|f| facts.iter().filter(|m| f.0.contains(&m.id)).cloned().collect()).collect())
    }
}

pub(super) async fn report_facts(c: &mut Conn, id: &MessageId) -> Result<Option<ReportFacts>, StoreError> {
    Ok(report_facts_of(c, std::slice::from_ref(&id.0)).await?.pop())
}

/// The report facts of the messages `ids` that exist, in id order.
pub(super) async fn report_facts_of(c: &mut Conn, ids: &[String]) -> Result<Vec<ReportFacts>, StoreError> {
    let stmt = c.stmt(FACTS).await?;
    let mut out: Vec<ReportFacts> = Vec::with_capacity(ids.len());
    for r in c.client.query(&stmt, &[&ids]).await? {
        let id: &str = r.try_get(0)?;
        if out.last().is_none_or(|f| f.id.0 != id) {
            out.push(ReportFacts {
                id: MessageId(id.to_string()),
                reverse_path: codec::reverse_path(r.try_get(1)?)?,
                envid: r.try_get(2)?,
                ret: codec::ret(r.try_get(3)?)?,
                received_at: Timestamp(r.try_get(4)?),
                origin_via: origin(r.try_get(5)?)?.via,
                recipients: Vec::new(),
            });
        }
        // A message without recipients has one row, of NULLs on the recipient side.
        let Some(rid) = r.try_get::<_, Option<i64>>(6)? else { continue };
        let recipient = RecipientFacts {
            id: RecipientId(rid),
            address: r.try_get(7)?,
            orcpt: r.try_get(8)?,
            notify: codec::notify(r.try_get(9)?)?,
            state: RecipientState::decode(r.try_get(10)?)?,
            attempts: r.try_get::<_, i32>(11)? as u32,
            status: codec::status(r.try_get(12)?)?,
            detail: r.try_get(13)?,
            reply_code: r.try_get::<_, Option<i32>>(14)?.map(|c| c as u16),
            remote_mta: r.try_get(15)?,
            updated_at: Timestamp(r.try_get(16)?),
            final_reported: r.try_get(17)?,
            delay_reported: r.try_get(18)?,
        };
        if let Some(facts) = out.last_mut() {
            facts.recipients.push(recipient);
        }
    }
    Ok(out)
}

/// SQL that is true when the domain `expr` is within the scope given as the text array `$N`
/// (NULL: every row): one of the domains or a subdomain of one. A NULL domain is in no scope
/// but `All`. (`$N` appears twice: write it with its type, `$N::text[]`.)
macro_rules! in_scope {
    ($expr:literal, $n:literal) => {
        concat!(
            "($",
            $n,
            "::text[] IS NULL OR EXISTS (SELECT 1 FROM unnest($",
            $n,
            "::text[]) k(d) WHERE ",
            $expr,
            " = k.d OR right(",
            $expr,
            ", length(k.d) + 1) = '.' || k.d))"
        )
    };
}
pub(super) use in_scope;

pub(super) fn suppression_row(r: &Row) -> Result<Suppression, StoreError> {
    Ok(Suppression {
        address: r.try_get(0)?,
        reason: r.try_get(1)?,
        status: r.try_get(2)?,
        detail: r.try_get(3)?,
        message_id: r.try_get(4)?,
        created_at: Timestamp(r.try_get(5)?).iso8601(),
        domain: crate::store::stored_domain(r.try_get(6)?)?,
        scope: SuppressionScope::decode(r.try_get(7)?)?,
    })
}

/// The suppression lookups of many callers (one per RCPT of every SMTP session) in one
/// statement; each caller gets an entry of its own address (the oldest): any entry (`any`),
/// or one that refuses the address for mail from `sender` (`Suppression::refuses`).
pub(super) struct SuppressionOf {
    pub address: String,
    pub sender: Option<Domain>,
    pub any: bool,
}

impl Batched for SuppressionOf {
    type Output = Option<Suppression>;

    async fn run(c: &mut Conn, batch: &[SuppressionOf]) -> Result<Vec<Option<Suppression>>, StoreError> {
        let addresses: Vec<&str> = batch.iter().map(|s| s.address.as_str()).collect();
        let stmt = c
            .stmt(
                "SELECT address, reason, status, detail, message_id, created_at, domain, scope FROM suppressions
                 WHERE address = ANY($1::text[]) ORDER BY created_at",
            )
            .await?;
        let found =
            c.client.query(&stmt, &[&addresses]).await?.iter().map(suppression_row).collect::<Result<Vec<_>, _>>()?;
        Ok(batch
            .iter()
            .map(|s| found.iter().find(|f| f.address == s.address && (s.any || f.refuses(s.sender.as_ref()))).cloned())
            .collect())
    }
}

/// Every entry of the addresses, oldest first (the order `suppression_for` picks from).
pub(super) async fn suppressions_of(c: &mut Conn, addresses: &[String]) -> Result<Vec<Suppression>, StoreError> {
    let stmt = c
        .stmt(
            "SELECT address, reason, status, detail, message_id, created_at, domain, scope FROM suppressions
             WHERE address = ANY($1::text[]) ORDER BY created_at",
        )
        .await?;
    c.client.query(&stmt, &[&addresses]).await?.iter().map(suppression_row).collect()
}

/// An API key's templates by name: the one named `name`, or those after `after`.
pub(super) async fn templates(
    c: &mut Conn,
    api_key: &str,
    name: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<crate::store::Template>, StoreError> {
    let stmt = c
        .stmt(
            "SELECT api_key, name, subject, text, html, created_at, updated_at FROM templates
             WHERE api_key = $1 AND ($2::text IS NULL OR name = $2) AND ($3::text IS NULL OR name COLLATE \"C\" > $3)
             ORDER BY name COLLATE \"C\" LIMIT $4",
        )
        .await?;
    let rows = c.client.query(&stmt, &[&api_key, &name, &after, &(limit as i64)]).await?;
    rows.iter()
        .map(|r| {
            Ok(crate::store::Template {
                api_key: r.try_get(0)?,
                name: r.try_get(1)?,
                subject: r.try_get(2)?,
                text: r.try_get(3)?,
                html: r.try_get(4)?,
                created_at: Timestamp(r.try_get(5)?),
                updated_at: Timestamp(r.try_get(6)?),
            })
        })
        .collect()
}

const SUPPRESSION_ENTRIES: &str = concat!(
    "SELECT address, reason, status, detail, message_id, created_at, domain, scope FROM suppressions
     WHERE address = $1 AND ",
    in_scope!("domain", 2),
    " ORDER BY created_at"
);

pub(super) async fn suppression_entries(
    c: &mut Conn,
    address: &str,
    scope: &Scope,
) -> Result<Vec<Suppression>, StoreError> {
    let stmt = c.stmt(SUPPRESSION_ENTRIES).await?;
    c.client.query(&stmt, &[&address, &scope.sql_domains()]).await?.iter().map(suppression_row).collect()
}

const SUPPRESSIONS: &str = concat!(
    "SELECT address, reason, status, detail, message_id, created_at, domain, scope FROM suppressions WHERE ",
    in_scope!("domain", 2),
    " AND ($3::bigint IS NULL OR (created_at, address, COALESCE(domain, '')) < ($3, $4::text, $5::text))
      ORDER BY created_at DESC, address DESC, COALESCE(domain, '') DESC LIMIT $1"
);

const SEARCH_MESSAGES: &str = concat!(
    "
SELECT m.id, m.reverse_path, m.received_at, m.origin, m.message_id_header FROM messages m
CROSS JOIN LATERAL (SELECT substring(m.reverse_path from '@([^@]*)$') AS sender) s
WHERE ($1::bigint IS NULL OR m.received_at >= $1)
  AND (($2::text IS NULL AND $3::text IS NULL) OR EXISTS (
       SELECT 1 FROM recipients r WHERE r.message_id = m.id
        AND ($2::text IS NULL OR lower(r.address) = $2) AND ($3::text IS NULL OR r.state = $3)))
  AND ($4::text IS NULL OR (m.origin::jsonb -> 'tags') ? $4)
  AND ($5::bigint IS NULL OR (m.received_at, m.id) < ($5, $6::text))
  AND ",
    in_scope!("s.sender", 8),
    "
ORDER BY m.received_at DESC, m.id DESC LIMIT $7"
);

/// Messages matching `q` within `scope`, newest first (`Store::search_messages`).
pub(super) async fn search_messages(
    c: &mut Conn,
    scope: &Scope,
    q: &crate::store::MessageSearch,
) -> Result<Vec<crate::store::MessageHit>, StoreError> {
    let stmt = c.stmt(SEARCH_MESSAGES).await?;
    let (before_at, before_id) = match &q.before {
        Some((t, id)) => (Some(t.millis()), Some(id.0.as_str())),
        None => (None, None),
    };
    let since = q.since.map(Timestamp::millis);
    let recipient = q.recipient.as_deref().map(str::to_lowercase);
    let state = q.state.map(crate::store::RecipientState::as_str);
    let rows = c
        .client
        .query(
            &stmt,
            &[&since, &recipient, &state, &q.tag, &before_at, &before_id, &(q.limit as i64), &scope.sql_domains()],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let origin: Option<String> = r.try_get(3)?;
            crate::store::MessageHit::of(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, origin.as_deref(), r.try_get(4)?)
        })
        .collect()
}

/// Newest first, then by the entry's key (address, domain): the keyset of the cursor.
pub(super) async fn suppressions(
    c: &mut Conn,
    scope: &Scope,
    limit: usize,
    after: Option<&crate::store::SuppressionCursor>,
) -> Result<(Vec<Suppression>, Option<crate::store::SuppressionCursor>), StoreError> {
    let stmt = c.stmt(SUPPRESSIONS).await?;
    let (at, address, domain) = match after {
        Some(a) => (Some(a.created_at), Some(a.address.as_str()), Some(a.domain.as_str())),
        None => (None, None, None),
    };
    let rows = c.client.query(&stmt, &[&(limit as i64), &scope.sql_domains(), &at, &address, &domain]).await?;
    let last = match rows.last() {
        Some(r) => Some(crate::store::SuppressionCursor {
            created_at: r.try_get(5)?,
            address: r.try_get(0)?,
            domain: r.try_get::<_, Option<String>>(6)?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok((rows.iter().map(suppression_row).collect::<Result<Vec<_>, _>>()?, last))
}

pub(super) async fn sent_log(c: &mut Conn, header_id: &str) -> Result<Vec<SentEntry>, StoreError> {
    let stmt = c
        .stmt(
            "SELECT queue_id, recipient, sent_at FROM sent_log WHERE header_id = $1
             ORDER BY sent_at, recipient LIMIT 1000",
        )
        .await?;
    let mut out = Vec::new();
    for r in c.client.query(&stmt, &[&header_id]).await? {
        out.push(SentEntry {
            queue_id: MessageId(r.try_get(0)?),
            recipient: r.try_get(1)?,
            sent_at: Timestamp(r.try_get(2)?),
        });
    }
    Ok(out)
}

pub(super) async fn webhook_cursor(c: &mut Conn, endpoint: &str) -> Result<i64, StoreError> {
    let stmt = c.stmt("SELECT last_event FROM webhook_cursors WHERE endpoint = $1").await?;
    Ok(match c.client.query_opt(&stmt, &[&endpoint]).await? {
        Some(r) => r.try_get(0)?,
        None => 0,
    })
}

pub(super) async fn account_history(
    c: &mut Conn,
    account: &str,
    since: crate::store::Hour,
) -> Result<crate::store::AccountHistory, StoreError> {
    use crate::store::{AccountHistory, Hour, HourCount, SeenAt};
    let first = c.stmt("SELECT first_seen FROM account_baselines WHERE account = $1").await?;
    let first_seen = match c.client.query_opt(&first, &[&account]).await? {
        Some(r) => Some(Timestamp(r.try_get(0)?)),
        None => None,
    };
    let stmt = c
        .stmt("SELECT hour, messages, domains FROM account_hours WHERE account = $1 AND hour >= $2 ORDER BY hour")
        .await?;
    let mut hours = Vec::new();
    for r in c.client.query(&stmt, &[&account, &since.0]).await? {
        hours.push(HourCount {
            hour: Hour(r.try_get(0)?),
            messages: codec::count(r.try_get(1)?),
            domains: codec::count(r.try_get(2)?),
        });
    }
    let stmt =
        c.stmt("SELECT kind, value, last_seen FROM account_seen WHERE account = $1 ORDER BY last_seen DESC").await?;
    let mut seen = Vec::new();
    for r in c.client.query(&stmt, &[&account]).await? {
        let (kind, value): (String, String) = (r.try_get(0)?, r.try_get(1)?);
        seen.push(SeenAt { seen: codec::seen(&kind, &value)?, last: Timestamp(r.try_get(2)?) });
    }
    Ok(AccountHistory { first_seen, hours, seen })
}

/// The pause lookups of many callers (one per RCPT to a remote domain: the login's account and
/// the sender domain's) in one statement; each caller gets the pauses of its accounts that are
/// paused, in the order it gave them (`pauses::Pauses` keeps what it learns of each account).
pub(super) struct PauseOf {
    pub accounts: Vec<String>,
}

impl Batched for PauseOf {
    /// Every paused account among the request's, in the request's order.
    type Output = Vec<AccountPause>;

    async fn run(c: &mut Conn, batch: &[PauseOf]) -> Result<Vec<Vec<AccountPause>>, StoreError> {
        let accounts: Vec<&str> = batch.iter().flat_map(|p| p.accounts.iter().map(String::as_str)).collect();
        let stmt = c
            .stmt(
                "SELECT account, detail, message_id, paused_at FROM paused_accounts
                 WHERE account = ANY($1::text[])",
            )
            .await?;
        let found = c.client.query(&stmt, &[&accounts]).await?.iter().map(pause_row).collect::<Result<Vec<_>, _>>()?;
        Ok(batch
            .iter()
            .map(|p| p.accounts.iter().filter_map(|a| found.iter().find(|f| &f.account == a)).cloned().collect())
            .collect())
    }
}

fn pause_row(r: &Row) -> Result<AccountPause, StoreError> {
    Ok(AccountPause {
        account: r.try_get(0)?,
        detail: r.try_get(1)?,
        message_id: r.try_get(2)?,
        paused_at: Timestamp(r.try_get(3)?).iso8601(),
    })
}

pub(super) async fn paused(c: &mut Conn, account: Option<&str>) -> Result<Vec<AccountPause>, StoreError> {
    let stmt = c
        .stmt(
            "SELECT account, detail, message_id, paused_at FROM paused_accounts
             WHERE $1::text IS NULL OR account = $1 ORDER BY paused_at DESC LIMIT 10000",
        )
        .await?;
    c.client.query(&stmt, &[&account]).await?.iter().map(pause_row).collect()
}

pub(super) async fn queue_depth(c: &mut Conn) -> Result<u64, StoreError> {
    let stmt = c.stmt("SELECT count(*) FROM recipients WHERE state IN ('queued', 'deferred')").await?;
    Ok(c.client.query_one(&stmt, &[]).await?.try_get::<_, i64>(0)?.max(0) as u64)
}

pub(super) async fn queued_messages(c: &mut Conn) -> Result<u64, StoreError> {
    let stmt = c
        .stmt("SELECT count(DISTINCT message_id) FROM recipients WHERE state IN ('queued', 'deferred', 'held')")
        .await?;
    Ok(c.client.query_one(&stmt, &[]).await?.try_get::<_, i64>(0)?.max(0) as u64)
}

macro_rules! api_key_select {
    ($rest:literal) => {
        concat!("SELECT id, name, key_hash, domains, created_at, admin, last_used_at, sandbox FROM api_keys ", $rest)
    };
}

fn api_key_row(r: &Row) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        hash: r.try_get(2)?,
        scope: Scope::from_stored(r.try_get(5)?, r.try_get(3)?)?,
        created_at: Timestamp(r.try_get(4)?).iso8601(),
        last_used_at: r.try_get::<_, Option<i64>>(6)?.map(Timestamp),
        sandbox: r.try_get(7)?,
    })
}

pub(super) async fn api_key(c: &mut Conn, hash: &str) -> Result<Option<ApiKey>, StoreError> {
    let stmt = c.stmt(api_key_select!("WHERE key_hash = $1")).await?;
    c.client.query_opt(&stmt, &[&hash]).await?.as_ref().map(api_key_row).transpose()
}

pub(super) async fn api_keys(c: &mut Conn) -> Result<Vec<ApiKey>, StoreError> {
    let stmt = c.stmt(api_key_select!("ORDER BY created_at, id")).await?;
    c.client.query(&stmt, &[]).await?.iter().map(api_key_row).collect()
}

/// The fence and the columns both event reads share (`$1` is the cursor).
macro_rules! events_after_select {
    () => {
        "
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
     fence AS (SELECT min(e.id) AS id FROM events e, horizon h WHERE e.id > $1 AND e.xid >= h.xmin)
SELECT e.id, e.at, e.message_id, e.recipient, e.kind, e.status, e.detail, e.remote, e.sandbox, m.origin,
    CASE WHEN e.kind IN ('deferred', 'expired') THEN
        (SELECT count(*) FROM events p WHERE p.message_id = e.message_id AND p.recipient = e.recipient
                                         AND p.kind IN ('deferred', 'expired') AND p.id <= e.id) END,
    CASE WHEN e.kind IN ('deferred', 'expired') THEN
        (SELECT min(p.at) FROM events p WHERE p.message_id = e.message_id AND p.recipient = e.recipient
                                         AND p.kind IN ('deferred', 'expired')) END,
    m.message_id_header
"
    };
}

/// Events after the cursor, but never past one whose transaction may still be running: ids
/// are taken at insert and transactions commit in any order, so an event at or above the
/// oldest running transaction's xid (and everything after it) waits for the next call. The
/// fence is over every event, whatever the scope; the scope filters what is before it.
const EVENTS_AFTER: &str = concat!(
    events_after_select!(),
    "FROM events e CROSS JOIN fence f LEFT JOIN messages m ON m.id = e.message_id
WHERE e.id > $1 AND (f.id IS NULL OR e.id < f.id) AND ($2::text IS NULL OR e.kind = $2)
ORDER BY e.id LIMIT $3"
);

/// The same for the events of messages whose envelope sender's domain (after the last `@`, as
/// `Scope::covers_sender` reads it) is within the scope `$4`: filtered in the query, so the
/// LIMIT counts only the scope's events.
const EVENTS_AFTER_IN_SCOPE: &str = concat!(
    events_after_select!(),
    "FROM events e CROSS JOIN fence f JOIN messages m ON m.id = e.message_id
CROSS JOIN LATERAL (SELECT substring(m.reverse_path from '@([^@]*)$') AS sender) s
WHERE e.id > $1 AND (f.id IS NULL OR e.id < f.id) AND ($2::text IS NULL OR e.kind = $2) AND ",
    in_scope!("s.sender", 4),
    "
ORDER BY e.id LIMIT $3"
);

pub(super) async fn events_after(
    c: &mut Conn,
    after: i64,
    kind: Option<EventKind>,
    scope: &Scope,
    limit: usize,
) -> Result<Vec<EventRecord>, StoreError> {
    let kind = kind.map(EventKind::as_str);
    let rows = match scope.sql_domains() {
        None => {
            let stmt = c.stmt(EVENTS_AFTER).await?;
            c.client.query(&stmt, &[&after, &kind, &(limit as i64)]).await?
        }
        Some(domains) => {
            let stmt = c.stmt(EVENTS_AFTER_IN_SCOPE).await?;
            c.client.query(&stmt, &[&after, &kind, &(limit as i64), &domains]).await?
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(EventRecord {
            event_id: r.try_get(0)?,
            at: Timestamp(r.try_get(1)?).iso8601(),
            id: r.try_get(2)?,
            message_id: r.try_get(12)?,
            recipient: r.try_get(3)?,
            kind: EventKind::decode(r.try_get(4)?)?,
            status: r.try_get(5)?,
            detail: r.try_get(6)?,
            remote: r.try_get(7)?,
            sandbox: r.try_get(8)?,
            tags: Vec::new(),
            metadata: Default::default(),
            attempt: r.try_get::<_, Option<i64>>(10)?.map(|n| n.clamp(0, i64::from(u32::MAX)) as u32),
            first_attempt_at: r.try_get::<_, Option<i64>>(11)?.map(|t| Timestamp(t).iso8601()),
        });
        if let (Some(e), Some(o)) = (out.last_mut(), codec::origin(r.try_get(9)?)?) {
            (e.tags, e.metadata) = (o.tags, o.metadata);
        }
    }
    Ok(out)
}

pub(super) async fn cluster_secret(c: &mut Conn, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let stmt = c.stmt("SELECT value FROM cluster_secrets WHERE name = $1").await?;
    Ok(match c.client.query_opt(&stmt, &[&name]).await? {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    })
}

const SUMMARY_STATES: &str = "
SELECT state, count(*) FROM recipients
WHERE state IN ('queued', 'deferred', 'held') AND transport <> 'feedback' GROUP BY state";
const SUMMARY_DOMAINS: &str = "
SELECT lower(substr(address, strpos(address, '@') + 1)) AS domain, count(*) FILTER (WHERE state = 'queued'),
       count(*) FILTER (WHERE state = 'deferred'), count(*) FILTER (WHERE state = 'held')
FROM recipients WHERE state IN ('queued', 'deferred', 'held') AND transport <> 'feedback'
GROUP BY domain ORDER BY count(*) DESC, domain LIMIT $1";
const SUMMARY_OLDEST: &str = "
SELECT r.message_id, r.address, m.received_at, r.attempts, r.last_detail
FROM recipients r JOIN messages m ON m.id = r.message_id
WHERE r.state = 'deferred' AND r.transport <> 'feedback'
ORDER BY m.received_at, r.id LIMIT 1";
const SUMMARY_DELIVERED: &str = "
SELECT count(*) FILTER (WHERE updated_at >= $1), count(*) FROM recipients
WHERE state = 'delivered' AND updated_at >= $2 AND transport <> 'feedback'";

/// The deferred recipient of the oldest message.
pub(super) async fn oldest_deferred(c: &mut Conn) -> Result<Option<crate::store::OldestDeferred>, StoreError> {
    let stmt = c.stmt(SUMMARY_OLDEST).await?;
    Ok(match c.client.query_opt(&stmt, &[]).await? {
        Some(r) => Some(crate::store::OldestDeferred {
            message: MessageId(r.try_get(0)?),
            address: r.try_get(1)?,
            received_at: Timestamp(r.try_get(2)?).iso8601(),
            attempts: r.try_get::<_, i32>(3)? as u32,
            last_detail: r.try_get(4)?,
        }),
        None => None,
    })
}

pub(super) async fn queue_summary(
    c: &mut Conn,
    now: Timestamp,
    top: usize,
) -> Result<crate::store::QueueSummary, StoreError> {
    use crate::store::{DomainQueue, QueueSummary, StateCount};
    let count = |r: &Row, i: usize| -> Result<u64, StoreError> { Ok(r.try_get::<_, i64>(i)?.max(0) as u64) };
    let mut by_state: Vec<StateCount> =
        RecipientState::WAITING.iter().map(|&state| StateCount { state, count: 0 }).collect();
    let stmt = c.stmt(SUMMARY_STATES).await?;
    for r in c.client.query(&stmt, &[]).await? {
        let state = RecipientState::decode(r.try_get(0)?)?;
        if let Some(s) = by_state.iter_mut().find(|s| s.state == state) {
            s.count = count(&r, 1)?;
        }
    }
    let stmt = c.stmt(SUMMARY_DOMAINS).await?;
    let mut top_domains = Vec::new();
    for r in c.client.query(&stmt, &[&(top as i64)]).await? {
        top_domains.push(DomainQueue {
            domain: r.try_get(0)?,
            queued: count(&r, 1)?,
            deferred: count(&r, 2)?,
            held: count(&r, 3)?,
        });
    }
    let oldest_deferred = oldest_deferred(c).await?;
    let stmt = c.stmt(SUMMARY_DELIVERED).await?;
    let r = c.client.query_one(&stmt, &[&(now.millis() - 60_000), &(now.millis() - 300_000)]).await?;
    Ok(QueueSummary {
        by_state,
        top_domains,
        oldest_deferred,
        delivered_last_minute: count(&r, 0)?,
        delivered_last_5_minutes: count(&r, 1)?,
    })
}

pub(super) async fn sts_policy(c: &mut Conn, domain: &str) -> Result<Option<CachedPolicy>, StoreError> {
    let stmt = c
        .stmt("SELECT domain, policy_id, body, fetched_at, expires_at FROM mta_sts_policies WHERE domain = $1")
        .await?;
    match c.client.query_opt(&stmt, &[&domain]).await? {
        Some(r) => Ok(Some(CachedPolicy::from_columns(
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            r.try_get(4)?,
        )?)),
        None => Ok(None),
    }
}

pub(super) async fn tls_report_due(
    c: &mut Conn,
    before: crate::tlspolicy::Day,
) -> Result<Vec<(crate::tlspolicy::Day, String)>, StoreError> {
    let stmt = c
        .stmt("SELECT DISTINCT day, domain FROM tls_report_counts WHERE day < $1 ORDER BY day, domain LIMIT 10000")
        .await?;
    let rows = c.client.query(&stmt, &[&before.0]).await?;
    rows.iter().map(|r| Ok((crate::tlspolicy::Day(r.try_get(0)?), r.try_get(1)?))).collect()
}

pub(super) async fn tls_result(c: &mut Conn, domain: &str) -> Result<Option<LastResult>, StoreError> {
    let stmt = c.stmt("SELECT domain, policy, result, detail, at FROM tls_results WHERE domain = $1").await?;
    match c.client.query_opt(&stmt, &[&domain]).await? {
        Some(r) => {
            let result: String = r.try_get(2)?;
            Ok(Some(LastResult {
                domain: r.try_get(0)?,
                policy: r.try_get(1)?,
                result: codec::tls_result(&result)?,
                detail: r.try_get(3)?,
                at: Timestamp(r.try_get(4)?),
            }))
        }
        None => Ok(None),
    }
}
