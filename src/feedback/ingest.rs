//! The daemon side of bounce reading: a bounce that came back to one of our signed return
//! paths (or null-sender mail to a local mailbox) is verified, parsed, matched to the message
//! and recipients we sent, and recorded — the recipient becomes bounced (with the remote's
//! words), hard bounces are suppressed. `read` does all of it for one claimed message and
//! returns what happened, for the scheduler to record; `ingest` records a verified report.
//!
//! Standards: RFC 3464 (the parsed report), DESIGN §3 (hard means the address itself is bad).
//! With `evidence.rs`, the only files of `feedback/` that touch the store.
//! Must not: deliver the bounce to a mailbox (`read` says when the scheduler should), count
//! hard bounces against an account (the scheduler does, from `Read`), or trust a report about
//! mail we did not send (the return-path token names the message; recipients must be among
//! its recipients).

use tracing::{debug, warn};

use super::evidence::{Envelope, Verifier};
use super::verify::{Verdict, Verification};
use super::{BounceReport, ReportKind};
use crate::smtp::address::ReversePath;
use crate::smtp::reply::EnhancedStatus;
use crate::store::learner::TrainSource;
use crate::store::{Destination, Feedback, MessageId, RecipientId, Store, StoreError, Suppression};
use crate::time::Timestamp;

/// One claimed message of the feedback transport.
pub struct Claimed<'a> {
    pub message: &'a MessageId,
    /// The envelope recipient it was sent to.
    pub rcpt: &'a str,
    pub mail_from: &'a ReversePath,
    /// Where it was sent: one of our signed return paths (`BounceOf`), or a local mailbox
    /// from the null sender (`NullSenderTo`).
    pub destination: &'a Destination,
    pub body: &'a [u8],
}

/// What reading one bounce did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// A forged bounce, dropped; the verifier's summary says why.
    Forged { summary: String },
    /// A genuine bounce (or mail that is not one), with what was recorded about it.
    Read {
        /// What `ingest` recorded, when the bounce was about mail we sent.
        recorded: Option<Recorded>,
        /// The local mailbox to deliver the message into as well.
        deliver_to: Option<String>,
        /// The verifier's summary.
        summary: String,
    },
}

/// What `ingest` recorded about one bounce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The message whose recipients changed (None when none did).
    pub original: Option<MessageId>,
    /// Hard bounces among the changed recipients, to count against the sending account.
    pub hard: u64,
    /// `ingest`'s summary with the verdict.
    pub summary: String,
}

/// Why a bounce could not be read now (it is tried again).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("store: {0}")]
    Store(StoreError),
    #[error("verifying the bounce: {0}")]
    Verify(StoreError),
    #[error("recording the bounce: {0}")]
    Record(StoreError),
}

/// Verifies a claimed bounce and records a genuine one; says whether it also goes to a local
/// mailbox (null-sender mail that is not a recorded bounce, or every one with
/// `keep_in_mailbox`).
pub async fn read(
    store: &dyn Store,
    verifier: &Verifier,
    claim: &Claimed<'_>,
    keep_in_mailbox: bool,
) -> Result<Read, ReadError> {
    let mailbox = match claim.destination {
        Destination::NullSenderTo(key) => Some(key.clone()),
        _ => None,
    };
    let origin =
        store.message_detail(claim.message).await.map_err(ReadError::Store)?.map(|d| d.origin).unwrap_or_default();
    let envelope = Envelope {
        rcpt: Some(claim.rcpt.to_string()),
        client_ip: origin.client_ip.parse().ok(),
        helo: Some(origin.helo).filter(|h| !h.is_empty()),
        mail_from: claim.mail_from.to_string(),
    };
    let verification = verifier.verify(store, claim.body, &envelope).await.map_err(ReadError::Verify)?;
    if let Some(settings) = &verifier.learner
        && verification.claims_bounce
    {
        learn_from(store, settings, claim, &verification).await;
    }
    if verification.verdict == Verdict::Forged {
        warn!(queue_id = %claim.message, to = %claim.rcpt, "forged bounce dropped: {}", verification.summary());
        return Ok(Read::Forged { summary: verification.summary() });
    }
    let about = match (claim.destination, &verification.original) {
        (Destination::BounceOf { queue_id, rid }, _) => Some((queue_id.clone(), *rid)),
        (Destination::NullSenderTo(_), Some(queue_id)) if verification.is_bounce => {
            Some((MessageId(queue_id.clone()), None))
        }
        _ => None,
    };
    let mut recorded = None;
    if let Some((queue_id, rid)) = about {
        let done = ingest(store, &queue_id, rid, &verification.report).await.map_err(ReadError::Record)?;
        let hard = verification.report.recipients.iter().filter(|r| r.hard_bounce == Some(true)).count();
        recorded = Some(Recorded {
            original: (done.updated > 0).then_some(done.original).flatten(),
            hard: if done.updated > 0 { hard.min(done.updated) as u64 } else { 0 },
            summary: format!("{} ({})", done.summary, verification.verdict.as_str()),
        });
    }
    let deliver_to = mailbox.filter(|_| recorded.is_none() || keep_in_mailbox);
    Ok(Read::Read { recorded, deliver_to, summary: verification.summary() })
}

/// Trains the learned filter with a bounce the evidence judged with certainty, or records it
/// without a label (so that the operator can label it by its id later). A failure is logged,
/// never fatal: the filter is an addition to the evidence.
async fn learn_from(store: &dyn Store, settings: &super::learn::Settings, claim: &Claimed<'_>, v: &Verification) {
    let label = super::learn::certain_label(v);
    let mut sample = super::learn::sample(claim.body, v.features.clone(), label, TrainSource::Auto, Timestamp::now());
    sample.bounce = Some(claim.message.clone());
    sample.original = v.original.clone().map(MessageId);
    match store.learn(sample, settings.limits).await {
        Ok(done) => {
            debug!(queue_id = %claim.message, label = ?label.map(|l| l.as_str()), learned = done.as_str(), "learned")
        }
        Err(e) => warn!(queue_id = %claim.message, error = %e, "the learned filter could not store a bounce"),
    }
}

/// What ingesting one bounce did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// The message the bounce is about, when it is one of ours.
    pub original: Option<MessageId>,
    /// Recipients whose state changed.
    pub updated: usize,
    pub summary: String,
}

/// `queue_id` and `rid` are what the signed return path named: the message, and its recipient
/// when it had one (None: several, matched by address).
pub async fn ingest(
    store: &dyn Store,
    queue_id: &MessageId,
    rid: Option<RecipientId>,
    report: &BounceReport,
) -> Result<Ingested, StoreError> {
    let id = queue_id.clone();
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
        let by_token =
            rid.filter(|_| report.recipients.len() == 1).and_then(|rid| facts.recipients.iter().find(|r| r.id == rid));
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
                    domain: crate::store::path_domain(&facts.reverse_path),
                    scope: crate::store::SuppressionScope::Global,
                })
                .await?;
        }
        let changed = store
            .record_feedback(Feedback {
                recipient: ours.id,
                message: id.clone(),
                address: ours.address.clone(),
                delay,
                status: rc.status.as_deref().and_then(EnhancedStatus::parse),
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
