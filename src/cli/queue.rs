//! `mailerd queue list|show|retry|delete`: what the store holds, for people or as JSON Lines,
//! and the two operator actions on it.
//!
//! Must not: deliver anything itself; `retry` only makes recipients due for the daemon.

use anyhow::Result;

use crate::config::Config;
use crate::store::MessageId;

pub async fn list(config: &Config, json: bool, limit: usize) -> Result<i32> {
    let store = super::open_store(config).await?;
    let entries = store.queue_list(limit).await?;
    let total = if entries.len() < limit { entries.len() as u64 } else { store.queued_messages().await? };
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
        if (entries.len() as u64) < total {
            outln!("-- showing {} of {} messages in the queue", thousands(entries.len() as u64), thousands(total))?;
        } else {
            outln!("-- {} message(s) in the queue", entries.len())?;
        }
    }
    Ok(0)
}

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

pub async fn retry(config: &Config, id: &str) -> Result<i32> {
    let store = super::open_store(config).await?;
    let n = store.retry_now(&MessageId(id.to_string())).await?;
    outln!("{id}: {n} recipient(s) due now")?;
    Ok(if n > 0 { 0 } else { 1 })
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
