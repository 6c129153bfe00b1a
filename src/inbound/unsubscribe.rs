//! Bulk mail at the doors: mail sent through the API, and by the SMTP logins listed in
//! `unsubscribe.bulk_logins`, gets `List-Unsubscribe` (https link and mailto address) and
//! `List-Unsubscribe-Post` before `accept` DKIM-signs it (RFC 8058 §3: the signature must
//! cover both fields).
//!
//! The link names the recipient, so the fields are added to a message with exactly one
//! recipient, delivered by MX (the usual shape of bulk mail: one message per recipient); a
//! message to several recipients shares one body and is sent without them (logged).
//! Must not: refuse anything, or change a message that already has `List-Unsubscribe` (an app
//! that manages its own list passes its own URIs).

use tracing::debug;

use super::Context;
use crate::bounce::unsubscribe::{self, Endpoints, Unsubscribe};
use crate::smtp::address::{Mailbox, ReversePath};
use crate::store::{Destination, MessageId, NewRecipient};

/// `message` with the unsubscribe fields for its one remote recipient, or as it is.
pub fn add_headers(
    ctx: &Context,
    id: &MessageId,
    from: &ReversePath,
    recipients: &[NewRecipient],
    mut message: Vec<u8>,
) -> Vec<u8> {
    let config = &ctx.config.unsubscribe;
    let ReversePath::Mailbox(sender) = from else { return message };
    if !config.enabled {
        return message;
    }
    let [one] = recipients else {
        debug!(queue_id = %id, recipients = recipients.len(), "no List-Unsubscribe: several recipients share one body");
        return message;
    };
    if one.destination != Destination::Remote {
        return message;
    }
    let Ok(recipient) = Mailbox::parse(&one.address) else { return message };
    let u = Unsubscribe { sender_domain: sender.domain().clone(), recipient, message: id.clone() };
    let at = Endpoints { base_url: &config.base_url, mailto_domain: config.mailto_domain.as_str() };
    unsubscribe::add_headers(&ctx.unsubscribe, &at, &u, &mut message);
    message
}
