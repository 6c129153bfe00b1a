//! Mail to our report addresses (`Destination::Report`) and complaints that come back to a
//! signed return path:
//! - an RFC 8058/2369 unsubscribe by mail (`unsubscribe+TOKEN@unsubscribe.mailto_domain`),
//!   recorded like a one-click unsubscribe. The token was verified at RCPT already (a tampered
//!   one never got this far) and is verified again here (the key may have changed since); it
//!   names the message, whose one recipient and sender domain the store says;
//! - an ARF complaint (RFC 5965) to a `bounce.complaint_addresses` address or to a signed
//!   return path: the complained-about recipient is found from the signed return path of the
//!   original (which names the message, and the recipient when it had one), else from the
//!   original's Message-ID in the sent log; among the message's recipients by the address the
//!   report names, or, when the report redacted it (RFC 6590), by its domain; then suppressed
//!   for everyone (reason `complaint`) with a `complained` event.
//!
//! Must not: deliver the message anywhere, act on a token that does not verify, or suppress
//! anyone for a report about mail we cannot tie to a message we sent.

use super::BounceReport;
use super::arf::FeedbackType;
use crate::bounce::return_path::Signer;
use crate::bounce::unsubscribe::{self, Keys, Unsubscribe, Via};
use crate::smtp::address::{Mailbox, ReversePath};
use crate::store::{
    EventKind, MessageId, RecipientId, Store, StoreError, Suppression, SuppressionScope, normalize_header_id,
    path_domain,
};
use crate::time::Timestamp;

/// What reading one message to a report address did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportRead {
    /// An unsubscribe by mail was recorded (`changed`: the list changed).
    Unsubscribed { unsubscribe: Unsubscribe, changed: bool },
    /// A complaint about a message we sent was recorded (`changed`: the list changed).
    Complained { message: MessageId, address: String, feedback_type: FeedbackType, changed: bool },
    /// Nothing to record; why.
    Ignored(String),
}

/// What the reader needs besides the store.
pub struct Keyring<'a> {
    pub unsubscribe: &'a Keys,
    pub return_path: &'a Signer,
}

/// Reads a message sent to the report address `rcpt`: an unsubscribe by mail, or else a
/// feedback report to a complaint address.
pub async fn read(store: &dyn Store, keys: &Keyring<'_>, rcpt: &str, body: &[u8]) -> Result<ReportRead, StoreError> {
    let Ok(mailbox) = Mailbox::parse(rcpt) else {
        return Ok(ReportRead::Ignored(format!("{rcpt} is not an address")));
    };
    if unsubscribe::looks_like_mailto(mailbox.local()) {
        return by_mail(store, keys.unsubscribe, &mailbox).await;
    }
    complaint(store, keys.return_path, &super::parse_bounce(body), None).await
}

/// Records the complaint an ARF report makes. `about` is what a signed return path the report
/// was sent to named (the message, and its recipient when it had one).
pub async fn complaint(
    store: &dyn Store,
    return_path: &Signer,
    report: &BounceReport,
    about: Option<(MessageId, Option<RecipientId>)>,
) -> Result<ReportRead, StoreError> {
    let ignored = |why: String| Ok(ReportRead::Ignored(why));
    let Some(f) = &report.feedback else { return ignored("not an ARF feedback report".into()) };
    if !f.feedback_type.is_complaint() {
        return ignored(format!("feedback type {} is no complaint", f.feedback_type.as_str()));
    }
    // Which message: the return path we were sent to, a signed one in the original, or the
    // sent log by the original's Message-ID.
    let now = Timestamp::now();
    let signed = f.envelope_senders.iter().find_map(|a| {
        let (local, domain) = a.rsplit_once('@')?;
        let t = return_path.verify_address(local, domain, now).ok()?;
        Some((MessageId(t.queue_id), (t.recipient_id > 0).then_some(RecipientId(t.recipient_id))))
    });
    let mut candidates: Vec<(MessageId, Option<RecipientId>)> = about.into_iter().chain(signed).collect();
    if candidates.is_empty()
        && let Some(id) = &report.original.message_id
    {
        let mut seen: Vec<MessageId> = Vec::new();
        for e in store.sent_log(&normalize_header_id(id)).await? {
            if !seen.contains(&e.queue_id) {
                seen.push(e.queue_id);
            }
        }
        candidates.extend(seen.into_iter().map(|m| (m, None)));
    }
    if candidates.is_empty() {
        return ignored("a complaint about mail we cannot tie to a message we sent".into());
    }
    for (message, rid) in candidates {
        let Some(facts) = store.report_facts(&message).await? else { continue };
        let named = |address: &str| f.recipients.iter().any(|r| r.eq_ignore_ascii_case(address));
        let by_domain = |address: &str| {
            let domain = address.rsplit_once('@').map(|(_, d)| d);
            f.redacted && f.recipient_domains().any(|d| Some(d) == domain)
        };
        let remote = facts.recipients.iter().filter(|r| r.address.contains('@'));
        let found = match rid {
            Some(rid) => facts.recipients.iter().find(|r| r.id == rid),
            None => facts.recipients.iter().find(|r| named(&r.address)).or_else(|| {
                let at_domain: Vec<_> = remote.clone().filter(|r| by_domain(&r.address)).collect();
                let all: Vec<_> = remote.collect();
                // The message's only recipient stands in only when the report names nobody
                // else: a report naming another, unredacted address is not about this one.
                let names_nobody = f.recipients.is_empty() || f.redacted;
                match (at_domain.as_slice(), all.as_slice()) {
                    ([one], _) => Some(*one),
                    (_, [one]) if names_nobody => Some(*one),
                    _ => None,
                }
            }),
        };
        let Some(r) = found else { continue };
        let address = r.address.to_lowercase();
        let by = f.user_agent.as_deref().unwrap_or("a mailbox provider");
        let entry = Suppression {
            address: address.clone(),
            reason: "complaint".to_string(),
            status: None,
            detail: Some(format!("{} report from {by}", f.feedback_type.as_str())),
            message_id: Some(message.0.clone()),
            created_at: String::new(),
            domain: path_domain(&facts.reverse_path),
            scope: SuppressionScope::Global,
        };
        let detail = format!("{} complaint from {by}", f.feedback_type.as_str());
        let changed = store.suppress_as(entry, EventKind::Complained, detail).await?;
        return Ok(ReportRead::Complained { message, address, feedback_type: f.feedback_type, changed });
    }
    ignored("a complaint naming no recipient of the message we sent".into())
}

async fn by_mail(store: &dyn Store, keys: &Keys, rcpt: &Mailbox) -> Result<ReportRead, StoreError> {
    let token = match keys.verify_mailto(rcpt.local()) {
        Ok(t) => t,
        Err(e) => return Ok(ReportRead::Ignored(format!("unsubscribe address: {e}"))),
    };
    let Some(facts) = store.report_facts(&token.message).await? else {
        return Ok(ReportRead::Ignored(format!("unsubscribe from {}, which is no longer in the store", token.message)));
    };
    let ReversePath::Mailbox(sender) = &facts.reverse_path else {
        return Ok(ReportRead::Ignored(format!("unsubscribe from {}, which had no sender", token.message)));
    };
    let [one] = facts.recipients.as_slice() else {
        return Ok(ReportRead::Ignored(format!("unsubscribe from {}, which has several recipients", token.message)));
    };
    let Ok(recipient) = Mailbox::parse(&one.address) else {
        return Ok(ReportRead::Ignored(format!("unsubscribe from {}: unreadable recipient", token.message)));
    };
    let u = Unsubscribe { sender_domain: sender.domain().clone(), recipient, message: token.message };
    let changed = unsubscribe::record(store, &u, Via::Mailto).await?;
    Ok(ReportRead::Unsubscribed { unsubscribe: u, changed })
}
