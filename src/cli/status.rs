//! `mailerd status [--json]`: the running daemon, asked over its control socket
//! (`data_dir/mailerd.sock`): uptime, listeners, the queue by state and by top destination
//! domains, the oldest deferred message, deliveries per minute, paused accounts.
//!
//! Exit codes: 0, or 2 when no daemon runs on the data dir (one line saying so).
//! Must not: read the store itself; the daemon answers (so `status` shows what it sees).

use anyhow::Result;

use crate::config::Config;
use crate::control::Status;
use crate::store::RecipientState;

pub async fn run(config: &Config, json: bool) -> Result<i32> {
    let status = crate::control::status(&config.data_dir).await?;
    if json {
        outln!("{}", serde_json::to_string(&status)?)?;
        return Ok(0);
    }
    human(&status)?;
    Ok(0)
}

/// `2h 03m`, `4d 01h`, `59s`.
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s:02}s"),
        (0, _, _) => format!("{h}h {m:02}m"),
        _ => format!("{d}d {h:02}h"),
    }
}

fn human(s: &Status) -> std::io::Result<()> {
    outln!(
        "mailerd {} on {} (pid {}), up {} since {}",
        s.version,
        s.hostname,
        s.pid,
        duration(s.uptime_seconds),
        s.started_at
    )?;
    outln!("data_dir:    {} (store: {})", s.data_dir, s.store)?;
    let listeners: Vec<String> =
        s.listeners.iter().map(|l| format!("{} {}", l.name, l.address.as_deref().unwrap_or("off"))).collect();
    outln!("listening:   {}", listeners.join(", "))?;
    let count = |state: RecipientState| s.queue.by_state.iter().find(|c| c.state == state).map_or(0, |c| c.count);
    outln!(
        "queue:       {} queued, {} deferred, {} held (recipients){}",
        count(RecipientState::Queued),
        count(RecipientState::Deferred),
        count(RecipientState::Held),
        if s.queue_hold { "; queue.hold is on: nothing is delivered" } else { "" }
    )?;
    if !s.queue.top_domains.is_empty() {
        outln!("top domains:")?;
        let width = s.queue.top_domains.iter().map(|d| d.domain.len()).max().unwrap_or(0);
        for d in &s.queue.top_domains {
            outln!("  {:<width$}  {:>6} queued {:>6} deferred {:>6} held", d.domain, d.queued, d.deferred, d.held)?;
        }
    }
    match &s.queue.oldest_deferred {
        Some(o) => outln!(
            "oldest deferred: {} to {}, received {}, {} attempt(s): {}",
            o.message,
            o.address,
            o.received_at,
            o.attempts,
            o.last_detail.as_deref().unwrap_or("-")
        )?,
        None => outln!("oldest deferred: none")?,
    }
    outln!(
        "deliveries:  {} in the last minute, {:.1}/min over the last 5 minutes",
        s.queue.delivered_last_minute,
        s.queue.delivered_last_5_minutes as f64 / 5.0
    )?;
    if s.paused_accounts.is_empty() {
        outln!("paused accounts: none")?;
    } else {
        outln!("paused accounts (mailerd account resume ACCOUNT):")?;
        for p in &s.paused_accounts {
            outln!("  {} since {}: {}", p.account, p.paused_at, p.detail)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_like_uptime() {
        assert_eq!(super::duration(59), "59s");
        assert_eq!(super::duration(61), "1m 01s");
        assert_eq!(super::duration(7_380), "2h 03m");
        assert_eq!(super::duration(4 * 86_400 + 3_600), "4d 01h");
    }
}
