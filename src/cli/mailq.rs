//! `mailq` (the binary called by that name, or `sendmail -bp`): the queue in Postfix's mailq
//! layout, so scripts that read it keep working: one block per message (queue id with `!`
//! when a recipient is held, size, arrival time, sender), the last failure of a deferred
//! recipient in parentheses above it, and a `-- N Kbytes in M Requests.` trailer, or
//! `Mail queue is empty`.
//!
//! Must not: change anything (`mailerd queue` acts on the queue).

use anyhow::Result;

use crate::config::Config;
use crate::store::RecipientState;

/// How many messages `mailq` lists at most (Postfix lists all; a million would take a while).
const LIMIT: usize = 100_000;

pub async fn print(config: &Config) -> Result<()> {
    let store = super::open_store(config).await?;
    let entries = store.queue_list(LIMIT).await?;
    if entries.is_empty() {
        outln!("Mail queue is empty")?;
        return Ok(());
    }
    outln!("{:<21} {:>8} {:<20} {}", "-Queue ID-", "--Size--", "----Arrival Time----", "-Sender/Recipient-------")?;
    let indent = " ".repeat(21 + 1 + 8 + 1 + 20 + 1);
    let mut bytes = 0u64;
    for e in &entries {
        bytes += e.size;
        let held = e.recipients.iter().any(|r| r.state == RecipientState::Held);
        let id = format!("{}{}", e.id, if held { "!" } else { "" });
        let from = if e.reverse_path.is_empty() { "MAILER-DAEMON" } else { e.reverse_path.as_str() };
        outln!("{id:<21} {:>8} {:<20} {from}", e.size, e.received_at)?;
        for r in e.recipients.iter().filter(|r| r.state.is_waiting()) {
            if let (RecipientState::Deferred, Some(why)) = (r.state, r.last_detail.as_deref()) {
                outln!("{indent}({})", why.replace(['\r', '\n'], " "))?;
            }
            outln!("{indent}{}", r.address)?;
        }
        outln!("")?;
    }
    let requests = entries.len();
    outln!("-- {} Kbytes in {requests} Request{}.", bytes.div_ceil(1024), if requests == 1 { "" } else { "s" })?;
    Ok(())
}
