//! The daemon side of bounce reading: a bounce that came back to one of our signed return
//! paths is parsed, matched to the message and recipients we sent, and recorded — the
//! recipient becomes bounced (with the remote's words), hard bounces are suppressed.
//!
//! Standards: RFC 3464 (the parsed report), DESIGN §3 (hard means the address itself is bad).
//! With `evidence.rs`, the only files of `feedback/` that touch the store. The caller has
//! verified the bounce (`evidence::Verifier`) before it gets here.
//! Must not: deliver the bounce to a mailbox, or trust a report about mail we did not send
//! (the return-path token names the message; recipients must be among its recipients).

use super::{BounceReport, ReportKind};
use crate::store::{Feedback, MessageId, RecipientId, Store, StoreError, Suppression};

/// What ingesting one bounce did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// The message the bounce is about, when it is one of ours.
    pub original: Option<MessageId>,
    /// Recipients whose state changed.
    pub updated: usize,
    pub summary: String,
}

/// `about` is what the signed return path encoded: `QUEUEID:RECIPIENTID` (0 = several).
pub async fn ingest(store: &dyn Store, about: &str, report: &BounceReport) -> Result<Ingested, StoreError> {
    let (queue_id, rid) = about.split_once(':').unwrap_or((about, "0"));
    let rid: i64 = rid.parse().unwrap_or(0);
    let id = MessageId(queue_id.to_string());
    let none = |summary: String| Ok(Ingested { original: None, updated: 0, summary });
    let delay = match report.kind {
        ReportKind::Bounce => false,
        ReportKind::Delay => true,
        other => return none(format!("not a bounce ({other:?}); nothing recorded")),
    };
    let Some(facts) = store.report_facts(&id).await? else {
        return none(format!("bounce for {queue_id}, which is no longer (or never was) in the store"));
    };
    let mut updated = 0;
    let mut matched = 0;
    for rc in &report.recipients {
        let by_address = facts.recipients.iter().find(|r| r.address.eq_ignore_ascii_case(&rc.address));
        let by_token = (rid > 0 && report.recipients.len() == 1)
            .then(|| facts.recipients.iter().find(|r| r.id == RecipientId(rid)))
            .flatten();
        let Some(ours) = by_address.or(by_token) else { continue };
        matched += 1;
        let detail = rc.diagnostic.clone().unwrap_or_else(|| rc.reason.info().summary.to_string());
        // Suppress before the state changes, so whoever sees the recipient bounced also
        // finds the address suppressed.
        if !delay && rc.hard_bounce == Some(true) {
            store
                .suppress(Suppression {
                    address: ours.address.to_lowercase(),
                    reason: rc.reason.as_str().to_string(),
                    status: rc.status.clone(),
                    detail: Some(detail.clone()),
                    message_id: Some(queue_id.to_string()),
                    created_at: String::new(),
                    domain: crate::store::sender_domain(&facts.reverse_path),
                })
                .await?;
        }
        let changed = store
            .record_feedback(Feedback {
                recipient: ours.id,
                message: id.clone(),
                address: ours.address.clone(),
                delay,
                status: rc.status.clone(),
                detail,
                remote: rc.remote_mta.clone(),
            })
            .await?;
        if changed {
            updated += 1;
        }
    }
    let kind = if delay { "delay report" } else { "bounce" };
    Ok(Ingested {
        original: Some(id),
        updated,
        summary: format!(
            "{kind} for {queue_id}: {matched} of {} reported recipients matched, {updated} updated",
            report.recipients.len()
        ),
    })
}
