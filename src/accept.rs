//! The single door into the queue, for SMTP sessions now and for the HTTP API and DSNs later.
//!
//! `accept` hands a complete message and its resolved recipients to the store and returns only
//! when the store says they are durable; then it logs the one `queued` line every origin gets
//! (from, to, size, via) and wakes the scheduler. Nothing in mailerd answers 250 to a message
//! before this returns Ok.
//! Must not: apply SMTP policy (that happened at MAIL/RCPT) or deliver anything.

use crate::queue::Wakeup;
use crate::smtp::address::ReversePath;
use crate::smtp::command::MailParams;
use crate::store::{
    MessageId, NewMessage, NewRecipient, Origin, RecipientId, ReportMark, Store, StoreError, Transport,
};
use crate::time::Timestamp;

/// A message ready for the queue.
pub struct Incoming {
    pub id: MessageId,
    pub from: ReversePath,
    pub params: MailParams,
    pub recipients: Vec<NewRecipient>,
    pub origin: Origin,
    pub received_at: Timestamp,
    /// The whole message as it will be delivered (our trace header first).
    pub message: Vec<u8>,
    /// For DSNs: the recipients (of another message) this one reports on.
    pub reports: Vec<(RecipientId, ReportMark)>,
    /// Checklist findings, recorded as `check` events (recipient, finding).
    pub notes: Vec<(Option<String>, String)>,
}

/// Stores `incoming` durably and wakes delivery.
pub async fn accept(
    store: &dyn Store,
    wakeup: &Wakeup,
    dkim: Option<&crate::dkim::Signer>,
    mut incoming: Incoming,
) -> Result<MessageId, StoreError> {
    let id = incoming.id.clone();
    let leaves_here = incoming.recipients.iter().any(|r| r.transport() == Transport::Remote);
    if let Some(signer) = dkim.filter(|s| leaves_here && s.covers(&incoming.message)) {
        match signer.sign(&incoming.message) {
            Ok(header) => {
                let mut signed = header.into_bytes();
                signed.extend_from_slice(&incoming.message);
                incoming.message = signed;
            }
            Err(e) => tracing::warn!(queue_id = %id, error = %e, "DKIM signing failed; sending unsigned"),
        }
    }
    let headers = incoming.message.get(..crate::bounce::dsn::find_headers_end(&incoming.message));
    let header_message_id = headers.and_then(|h| crate::bounce::dsn::header_value(h, "message-id"));
    let msg = NewMessage {
        id: incoming.id,
        reverse_path: incoming.from,
        envid: incoming.params.envid,
        ret: incoming.params.ret,
        received_at: incoming.received_at,
        origin: incoming.origin,
        body: incoming.message,
        header_message_id,
        recipients: incoming.recipients,
        reports: incoming.reports,
        notes: incoming.notes,
    };
    let via = msg.origin.via;
    let transports: Vec<Transport> = msg.recipients.iter().map(|r| r.transport()).collect();
    // What the log line says, for every origin alike (SMTP, submission, API, sendmail, DSN).
    let (from, size) = (
        if msg.reverse_path == ReversePath::Null { "<>".to_string() } else { msg.reverse_path.to_string() },
        msg.body.len(),
    );
    let to: Vec<String> = msg.recipients.iter().map(|r| r.address.clone()).collect();
    let (client, user, tls) = (msg.origin.client_ip.clone(), msg.origin.auth_user.clone(), msg.origin.tls);
    store.insert_message(msg).await?;
    tracing::info!(
        queue_id = %id,
        via = %via,
        client = %client,
        from = %from,
        to = %to.join(","),
        size,
        tls,
        user = user.as_deref().unwrap_or("-"),
        "queued"
    );
    crate::metrics::accepted(via.as_str());
    wakeup.poke_for(transports);
    Ok(id)
}

/// What the trace header says about how a message came in.
pub struct Trace<'a> {
    pub helo: &'a str,
    pub client_ip: &'a str,
    pub hostname: &'a str,
    pub esmtp: bool,
    pub tls: bool,
    pub authenticated: bool,
    pub id: &'a MessageId,
    pub single_rcpt: Option<&'a str>,
    pub at: Timestamp,
}

/// The RFC 5321 §4.4 trace header, with the RFC 3848 protocol keyword.
pub fn received_header(t: &Trace<'_>) -> String {
    let Trace { helo, client_ip, hostname, esmtp, tls, authenticated, id, single_rcpt, at } = *t;
    let proto = match (esmtp, tls, authenticated) {
        (false, _, _) => "SMTP",
        (true, false, false) => "ESMTP",
        (true, true, false) => "ESMTPS",
        (true, false, true) => "ESMTPA",
        (true, true, true) => "ESMTPSA",
    };
    let helo: String = helo.chars().filter(|c| c.is_ascii_graphic()).take(255).collect();
    let mut h = format!("Received: from {helo} ([{client_ip}])\r\n\tby {hostname} (mailerd) with {proto} id {id}");
    if let Some(rcpt) = single_rcpt {
        h.push_str(&format!("\r\n\tfor <{rcpt}>"));
    }
    h.push_str(&format!("; {}\r\n", at.rfc5322()));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_header_names_protocol_and_id() {
        let id = MessageId("ABC".into());
        let h = received_header(&Trace {
            helo: "client.test",
            client_ip: "127.0.0.1",
            hostname: "mx.test",
            esmtp: true,
            tls: true,
            authenticated: true,
            id: &id,
            single_rcpt: Some("a@b"),
            at: Timestamp(0),
        });
        assert_eq!(
            h,
            "Received: from client.test ([127.0.0.1])\r\n\tby mx.test (mailerd) with ESMTPSA id ABC\r\n\tfor <a@b>; Thu, 01 Jan 1970 00:00:00 +0000\r\n"
        );
    }
}
