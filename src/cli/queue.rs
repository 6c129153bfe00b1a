//! `mailerd queue list|show|retry|delete|flush|hold|release`: what the store holds, for people
//! or as JSON Lines, and the operator's actions on it, as Postfix's postqueue and postsuper
//! (`flush` = `postqueue -f`/`-s`, `hold`/`release` = `postsuper -h`/`-H`, `delete --all
//! --state deferred` = `postsuper -d ALL deferred`), each printing what it changed.
//!
//! Must not: deliver anything itself; `retry`, `flush` and `release` only make recipients due
//! and wake the running daemon (over its control socket; it also polls the store every
//! second), which delivers them.

use anyhow::Result;

use crate::config::Config;
use crate::smtp::address::Domain;
use crate::store::{MessageId, RecipientState, Selection};
use crate::time::Timestamp;

pub async fn list(config: &Config, json: bool, limit: usize) -> Result<i32> {
    let store = super::open_store(config).await?;
    let entries = store.queue_list(limit).await?;
    for e in &entries {
        if json {
            outln!("{}", serde_json::to_string(e)?)?;
            continue;
        }
        let from = if e.reverse_path.is_empty() { "<>" } else { e.reverse_path.as_str() };
        outln!("{:<20} {:>9} {}  {}", e.id, e.size, e.received_at, from)?;
        for r in &e.recipients {
            let last = r.last_detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
            outln!("{:<20} {:>9} {:<9} {}{}", "", r.transport.as_str(), r.state.as_str(), r.address, last)?;
        }
    }
    if !json {
        if entries.len() < limit {
            outln!("-- {} message(s) in the queue", entries.len())?;
        } else {
            // The recipients from the store's running counts: counting the messages behind
            // them took 4 s at a million queued (issue 22).
            let summary = store.queue_summary(Timestamp::now(), 0).await?;
            outln!(
                "-- showing the oldest {} messages; {}",
                thousands(entries.len() as u64),
                waiting(&summary.by_state)
            )?;
        }
    }
    Ok(0)
}

/// `1,000,000 recipients wait (0 queued, 1,000,000 deferred, 0 held)`.
fn waiting(by_state: &[crate::store::StateCount]) -> String {
    let total: u64 = by_state.iter().map(|s| s.count).sum();
    let each: Vec<String> = by_state.iter().map(|s| format!("{} {}", thousands(s.count), s.state.as_str())).collect();
    format!("{} recipients wait ({})", thousands(total), each.join(", "))
}

/// `queue list --state S --domain D`: the matching recipients, most recently changed first
/// (the dashboard's queue page, by its indexes), and how many match in all (from the store's
/// running counts per domain and state).
pub async fn list_recipients(
    config: &Config,
    json: bool,
    limit: usize,
    state: Option<RecipientState>,
    domain: Option<&str>,
) -> Result<i32> {
    let store = super::open_store(config).await?;
    let domain = domain_of(domain)?;
    let states = state.map_or_else(|| RecipientState::WAITING.to_vec(), |s| vec![s]);
    let filter = crate::store::QueueFilter { states: states.clone(), domain: domain.clone(), limit };
    let rows = store.queue_search(filter).await?;
    for r in &rows {
        if json {
            let line = serde_json::json!({
                "id": r.message.0,
                "from": r.reverse_path,
                "recipient": r.address,
                "state": r.state.as_str(),
                "attempts": r.attempts,
                "last_status": r.last_status,
                "last_detail": r.last_detail,
                "updated_at": r.updated_at.iso8601(),
            });
            outln!("{line}")?;
            continue;
        }
        let last = r.last_detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
        outln!(
            "{:<20} {:<9} {:>3} {}  {}{}",
            r.message.0,
            r.state.as_str(),
            r.attempts,
            r.updated_at.iso8601(),
            r.address,
            last
        )?;
    }
    if !json {
        let summary = store.queue_summary(Timestamp::now(), ALL_DOMAINS).await?;
        let count = |s: RecipientState| -> u64 {
            match &domain {
                Some(d) => summary.top_domains.iter().filter(|q| &q.domain == d).map(|q| q.count(s)).sum(),
                None => summary.by_state.iter().filter(|c| c.state == s).map(|c| c.count).sum(),
            }
        };
        let total: u64 = states.iter().map(|&s| count(s)).sum();
        outln!("-- showing {} of {} recipient(s)", thousands(rows.len() as u64), thousands(total))?;
    }
    Ok(0)
}

/// Enough for every destination domain of a queue's running counts.
const ALL_DOMAINS: usize = 1_000_000;

/// `42235` as `42,235`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub async fn show(config: &Config, id: &str, json: bool) -> Result<i32> {
    let store = super::open_store(config).await?;
    let Some(d) = store.message_detail(&MessageId(id.to_string())).await? else {
        anyhow::bail!("no message {id}");
    };
    if json {
        outln!("{}", serde_json::to_string(&d)?)?;
        return Ok(0);
    }
    outln!("id:        {}", d.entry.id)?;
    outln!("from:      <{}>", d.entry.reverse_path)?;
    outln!("size:      {}", d.entry.size)?;
    outln!("received:  {} from {} ({}) via {}", d.entry.received_at, d.origin.client_ip, d.origin.helo, d.origin.via)?;
    if let Some(envid) = &d.envid {
        outln!("envid:     {envid}")?;
    }
    for r in &d.entry.recipients {
        outln!("rcpt:      {} {} attempts={}", r.address, r.state.as_str(), r.attempts)?;
    }
    for e in &d.events {
        outln!(
            "event:     {} {:<9} {} {} {}",
            e.at,
            e.kind,
            e.recipient.as_deref().unwrap_or("-"),
            e.status.as_deref().unwrap_or(""),
            e.detail.as_deref().unwrap_or("")
        )?;
    }
    Ok(0)
}

/// `retry ID`: exit 1 when nothing of it was waiting; `retry ALL` (Postfix's word for every
/// message) = `flush`.
pub async fn retry(config: &Config, id: &str) -> Result<i32> {
    if id == "ALL" {
        return flush(config, None).await;
    }
    let store = super::open_store(config).await?;
    let n = store.retry_now(&MessageId(id.to_string())).await?;
    crate::control::wake(&config.data_dir).await;
    outln!("{id}: {n} recipient(s) due now")?;
    Ok(if n > 0 { 0 } else { 1 })
}

/// A domain as the store spells it (lower-case A-label), or a usage error naming it.
fn domain_of(domain: Option<&str>) -> Result<Option<String>> {
    domain
        .map(|d| Domain::parse(d).map(|d| d.as_str().to_string()).map_err(|_| anyhow::anyhow!("`{d}` is not a domain")))
        .transpose()
}

pub async fn flush(config: &Config, domain: Option<&str>) -> Result<i32> {
    let store = super::open_store(config).await?;
    let selection = Selection { domain: domain_of(domain)?, ..Selection::all() };
    let n = store.flush(&selection, Timestamp::now()).await?;
    crate::control::wake(&config.data_dir).await;
    outln!("{n} recipient(s) due now")?;
    Ok(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Hold,
    Release,
}

/// `hold`/`release` of one message (exit 2 when there is no such message, 1 when nothing of it
/// changed) or of every message (`--all`).
pub async fn hold(config: &Config, id: Option<&str>, domain: Option<&str>, op: Op) -> Result<i32> {
    let store = super::open_store(config).await?;
    let message = id.map(|id| MessageId(id.to_string()));
    if let Some(m) = &message
        && store.message_detail(m).await?.is_none()
    {
        anyhow::bail!("no message {m}");
    }
    let selection = Selection { message, domain: domain_of(domain)?, ..Selection::all() };
    let now = Timestamp::now();
    let (n, done) = match op {
        Op::Hold => (store.hold(&selection, now).await?, "held"),
        Op::Release => (store.release(&selection, now).await?, "released (due now)"),
    };
    if op == Op::Release {
        crate::control::wake(&config.data_dir).await;
    }
    match id {
        Some(id) => {
            outln!("{id}: {n} recipient(s) {done}")?;
            Ok(if n > 0 { 0 } else { 1 })
        }
        None => {
            outln!("{n} recipient(s) {done}")?;
            Ok(0)
        }
    }
}

pub async fn delete_all(config: &Config, state: Option<RecipientState>, domain: Option<&str>) -> Result<i32> {
    let store = super::open_store(config).await?;
    let selection = Selection { state, domain: domain_of(domain)?, ..Selection::all() };
    let n = store.delete_messages(&selection, Timestamp::now()).await?;
    outln!("{n} message(s) deleted")?;
    Ok(0)
}

pub async fn delete(config: &Config, id: &str) -> Result<i32> {
    let store = super::open_store(config).await?;
    if store.delete_message(&MessageId(id.to_string())).await? {
        outln!("{id}: deleted")?;
        Ok(0)
    } else {
        anyhow::bail!("no message {id}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::thousands(42_235), "42,235");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(999), "999");
    }
}
