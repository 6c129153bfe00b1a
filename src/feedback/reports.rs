//! Mail to our report addresses (`Destination::Report`): an RFC 8058/2369 unsubscribe by mail
//! (`unsubscribe+TOKEN@unsubscribe.mailto_domain`), read here and recorded like a one-click
//! unsubscribe.
//!
//! The token was verified at RCPT already (a tampered one never got this far) and is verified
//! again here (the key may have changed since); it names the message, whose one recipient and
//! sender domain the store says.
//! Must not: deliver the message anywhere, or act on a token that does not verify.

use crate::bounce::unsubscribe::{self, Keys, Unsubscribe, Via};
use crate::smtp::address::{Mailbox, ReversePath};
use crate::store::{Store, StoreError};

/// What reading one message to a report address did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportRead {
    /// An unsubscribe by mail was recorded (`changed`: the list changed).
    Unsubscribed { unsubscribe: Unsubscribe, changed: bool },
    /// Nothing to record; why.
    Ignored(String),
}

/// Reads a message sent to the report address `rcpt`.
pub async fn read(store: &dyn Store, keys: &Keys, rcpt: &str) -> Result<ReportRead, StoreError> {
    let Ok(mailbox) = Mailbox::parse(rcpt) else {
        return Ok(ReportRead::Ignored(format!("{rcpt} is not an address")));
    };
    if unsubscribe::looks_like_mailto(mailbox.local()) {
        return by_mail(store, keys, &mailbox).await;
    }
    Ok(ReportRead::Ignored(format!("{rcpt} is no report address of ours")))
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
