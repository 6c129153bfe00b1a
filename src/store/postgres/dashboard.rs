//! The dashboard's reads on PostgreSQL: the overview's counts, the queue page and the
//! suppression search, with the same answers as the SQLite backend.
//!
//! The overview aggregates the recipients table (no trigger-kept counters: those rows would be
//! a lock every node's insert waits for); the queue page reads one LIMITed index range per
//! state. Must not: load rows one by one into memory to count them, or write.

use super::pool::Conn;
use crate::store::{
    DailyCount, DeliveryOverview, DomainFailures, MessageId, QueueFilter, QueueRow, RecipientId, RecipientState,
    StateStatusCount, StoreError, Suppression,
};
use crate::time::Timestamp;

const DAY: i64 = 86_400_000;

const BY_STATE_STATUS: &str = "
SELECT state, coalesce(last_status, ''), count(*) FROM recipients WHERE transport <> 'feedback'
GROUP BY 1, 2 ORDER BY 1, 2";
const DAILY: &str = "
SELECT updated_at / 86400000, state, count(*) FROM recipients
WHERE transport <> 'feedback' AND state IN ('delivered', 'bounced', 'expired') AND updated_at >= $1
GROUP BY 1, 2 ORDER BY 1, 2";
/// From the partial index of schema v18.
const COMPLAINTS: &str = "SELECT count(*) FROM events WHERE kind = 'complained' AND at >= $1";
const FAILING_DOMAINS: &str = "
SELECT lower(substr(address, strpos(address, '@') + 1)) AS domain,
       count(*) FILTER (WHERE state <> 'deferred') AS failed, count(*) FILTER (WHERE state = 'deferred') AS deferred
FROM recipients WHERE transport <> 'feedback' AND state IN ('bounced', 'expired', 'deferred')
GROUP BY 1 ORDER BY 2 + 3 DESC, 1 LIMIT $1";

pub(super) async fn delivery_overview(
    c: &mut Conn,
    since: Timestamp,
    top: usize,
) -> Result<DeliveryOverview, StoreError> {
    let mut overview = DeliveryOverview::default();
    let stmt = c.stmt(BY_STATE_STATUS).await?;
    for r in c.client.query(&stmt, &[]).await? {
        let status: String = r.try_get(1)?;
        overview.by_state_status.push(StateStatusCount {
            state: RecipientState::decode(r.try_get(0)?)?,
            status: (!status.is_empty()).then_some(status),
            count: r.try_get::<_, i64>(2)?.max(0) as u64,
        });
    }
    let stmt = c.stmt(DAILY).await?;
    let from = since.millis().div_euclid(DAY) * DAY;
    for r in c.client.query(&stmt, &[&from]).await? {
        overview.daily.push(DailyCount {
            day: Timestamp(r.try_get::<_, i64>(0)? * DAY),
            state: RecipientState::decode(r.try_get(1)?)?,
            count: r.try_get::<_, i64>(2)?.max(0) as u64,
        });
    }
    let stmt = c.stmt(FAILING_DOMAINS).await?;
    for r in c.client.query(&stmt, &[&(top as i64)]).await? {
        overview.failing_domains.push(DomainFailures {
            domain: r.try_get(0)?,
            failed: r.try_get::<_, i64>(1)?.max(0) as u64,
            deferred: r.try_get::<_, i64>(2)?.max(0) as u64,
        });
    }
    let stmt = c.stmt(COMPLAINTS).await?;
    let complaints: i64 = c.client.query_one(&stmt, &[&since.millis()]).await?.try_get(0)?;
    overview.complaints = complaints.max(0) as u64;
    Ok(overview)
}

const NEWEST: &str = "
SELECT r.id, r.message_id, m.reverse_path, r.address, r.state, r.attempts, r.last_status, r.last_detail, r.updated_at
FROM (SELECT * FROM recipients ORDER BY id DESC LIMIT $1) r JOIN messages m ON m.id = r.message_id
ORDER BY r.id DESC";
/// Per state (`$1`), the newest changes (`$2` of them), with `$domain` an extra condition:
/// final states from their partial indexes (schema v4), active ones from the due index, sorted.
/// Each branch states its index's predicate (so the planner may use the index) and a one-time
/// filter on the state asked for (so only one branch runs per state); the sender comes from a
/// per-row lookup (a LIMIT keeps the planner from hashing the whole messages table).
macro_rules! by_state {
    ($domain:literal) => {
        concat!(
            "SELECT r.id, r.message_id, m.reverse_path, r.address, r.state, r.attempts, r.last_status,
                    r.last_detail, r.updated_at
             FROM unnest($1::text[]) AS s(state)
             CROSS JOIN LATERAL (
                 (SELECT * FROM recipients WHERE state = s.state AND state NOT IN ('queued', 'deferred')
                    AND s.state NOT IN ('queued', 'deferred')",
            $domain,
            " ORDER BY updated_at DESC, id DESC LIMIT $2)
                 UNION ALL
                 (SELECT * FROM recipients WHERE state = s.state AND state IN ('queued', 'deferred')
                    AND s.state IN ('queued', 'deferred')",
            $domain,
            " ORDER BY updated_at DESC, id DESC LIMIT $2)) r
             CROSS JOIN LATERAL (SELECT reverse_path FROM messages WHERE id = r.message_id LIMIT 1) m
             ORDER BY r.updated_at DESC, r.id DESC LIMIT $2"
        )
    };
}
const BY_STATE: &str = by_state!("");
const BY_STATE_AT_DOMAIN: &str = by_state!(" AND lower(substr(address, strpos(address, '@') + 1)) = $3");

pub(super) async fn queue_search(c: &mut Conn, filter: &QueueFilter) -> Result<Vec<QueueRow>, StoreError> {
    let limit = filter.limit as i64;
    let rows = if filter.states.is_empty() && filter.domain.is_none() {
        let stmt = c.stmt(NEWEST).await?;
        c.client.query(&stmt, &[&limit]).await?
    } else {
        let states = if filter.states.is_empty() { &RecipientState::ALL[..] } else { &filter.states[..] };
        let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
        match filter.domain.as_ref().map(|d| d.to_lowercase()) {
            Some(domain) => {
                let stmt = c.stmt(BY_STATE_AT_DOMAIN).await?;
                c.client.query(&stmt, &[&states, &limit, &domain]).await?
            }
            None => {
                let stmt = c.stmt(BY_STATE).await?;
                c.client.query(&stmt, &[&states, &limit]).await?
            }
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(QueueRow {
            recipient: RecipientId(r.try_get(0)?),
            message: MessageId(r.try_get(1)?),
            reverse_path: r.try_get(2)?,
            address: r.try_get(3)?,
            state: RecipientState::decode(r.try_get(4)?)?,
            attempts: r.try_get::<_, i32>(5)? as u32,
            last_status: r.try_get(6)?,
            last_detail: r.try_get(7)?,
            updated_at: Timestamp(r.try_get(8)?),
        });
    }
    Ok(out)
}

const SEARCH_SUPPRESSIONS: &str = "
SELECT address, reason, status, detail, message_id, created_at, domain, scope FROM suppressions
WHERE address LIKE $1 ESCAPE '\\' ORDER BY created_at DESC LIMIT $2";

pub(super) async fn search_suppressions(
    c: &mut Conn,
    query: &str,
    limit: usize,
) -> Result<Vec<Suppression>, StoreError> {
    let pattern = crate::store::like_contains(query);
    let stmt = c.stmt(SEARCH_SUPPRESSIONS).await?;
    c.client.query(&stmt, &[&pattern, &(limit as i64)]).await?.iter().map(super::reads::suppression_row).collect()
}
