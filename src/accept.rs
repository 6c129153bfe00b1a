//! The single door into the queue, for SMTP sessions, the HTTP API, local programs and DSNs,
//! and the one writer of the `Received:` trace header they put first (`received_header`).
//!
//! `accept` hands a complete message and its resolved recipients to the store and returns only
//! when the store says they are durable; then it logs the one `queued` line every origin gets
//! (from, to, size, via) and rings the scheduler's bell (`Wakeup`, which its loops sleep on). Nothing in mailerd answers 250 to a message
//! before this returns Ok.
//! Must not: apply SMTP policy (that happened at MAIL/RCPT) or deliver anything.

use crate::smtp::address::ReversePath;
use crate::smtp::command::MailParams;
use crate::store::{
    IdempotencyRecord, MessageId, NewMessage, NewRecipient, Origin, RecipientId, RejectedRcpt, ReportMark, Store,
    StoreError, Transport,
};
use crate::time::Timestamp;
use tokio::sync::Notify;

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
    /// Recipients the send refused (API), recorded as `rejected` events.
    pub rejected: Vec<RejectedRcpt>,
    /// The API request's idempotency record, committed with the message (or neither is).
    pub idempotency: Option<IdempotencyRecord>,
}

/// Stores `incoming` durably and wakes delivery.
pub async fn accept(
    store: &dyn Store,
    wakeup: &Wakeup,
    dkim: Option<&crate::dkim::Signer>,
    incoming: Incoming,
) -> Result<MessageId, StoreError> {
    let msg = prepare(dkim, incoming);
    let line = Queued::of(&msg);
    store.insert_message(msg).await?;
    Ok(line.done(wakeup))
}

/// Stores the messages of an API batch durably in one commit, all or none, and wakes delivery.
pub async fn accept_all(
    store: &dyn Store,
    wakeup: &Wakeup,
    dkim: Option<&crate::dkim::Signer>,
    incoming: Vec<Incoming>,
) -> Result<Vec<MessageId>, StoreError> {
    let msgs: Vec<NewMessage> = incoming.into_iter().map(|i| prepare(dkim, i)).collect();
    let lines: Vec<Queued> = msgs.iter().map(Queued::of).collect();
    store.insert_messages(msgs).await?;
    Ok(lines.into_iter().map(|l| l.done(wakeup)).collect())
}

/// The message as the store takes it: DKIM-signed when it leaves here and a key covers it.
fn prepare(dkim: Option<&crate::dkim::Signer>, mut incoming: Incoming) -> NewMessage {
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
    let headers = incoming.message.get(..crate::smtp::message::find_headers_end(&incoming.message));
    let header_message_id = headers.and_then(|h| crate::smtp::message::header_value(h, "message-id"));
    NewMessage {
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
        rejected: incoming.rejected,
        idempotency: incoming.idempotency,
    }
}

/// What the `queued` log line says, for every origin alike (SMTP, submission, API, sendmail,
/// DSN), taken before the message goes to the store.
struct Queued {
    id: MessageId,
    via: crate::store::Via,
    client: String,
    from: String,
    to: Vec<String>,
    size: usize,
    tls: bool,
    user: Option<String>,
    transports: Vec<Transport>,
    sandbox: bool,
}

impl Queued {
    fn of(msg: &NewMessage) -> Queued {
        Queued {
            id: msg.id.clone(),
            via: msg.origin.via,
            client: msg.origin.client_ip.clone(),
            from: if msg.reverse_path == ReversePath::Null { "<>".to_string() } else { msg.reverse_path.to_string() },
            to: msg.recipients.iter().map(|r| r.address.clone()).collect(),
            size: msg.body.len(),
            tls: msg.origin.tls,
            user: msg.origin.auth_user.clone(),
            transports: msg.recipients.iter().map(|r| r.transport()).collect(),
            sandbox: msg.origin.sandbox,
        }
    }

    /// After the commit: the log line, the metric, the scheduler's bell (a sandbox send was
    /// only recorded: its own log line, nothing to wake).
    fn done(self, wakeup: &Wakeup) -> MessageId {
        if self.sandbox {
            tracing::info!(
                queue_id = %self.id,
                via = %self.via,
                from = %self.from,
                to = %self.to.join(","),
                size = self.size,
                user = self.user.as_deref().unwrap_or("-"),
                "sandboxed"
            );
            return self.id;
        }
        tracing::info!(
            queue_id = %self.id,
            via = %self.via,
            client = %self.client,
            from = %self.from,
            to = %self.to.join(","),
            size = self.size,
            tls = self.tls,
            user = self.user.as_deref().unwrap_or("-"),
            "queued"
        );
        crate::metrics::accepted(self.via.as_str());
        wakeup.poke_for(self.transports);
        self.id
    }
}

/// How a message came in, as the trace header says it.
#[derive(Clone, Copy)]
pub enum Arrival<'a> {
    /// An SMTP session (MX, submission, or a local program's `-bs`).
    Smtp {
        helo: &'a str,
        client_ip: &'a str,
        esmtp: bool,
        tls: bool,
        authenticated: bool,
        /// The recipient, when the message has exactly one.
        single_rcpt: Option<&'a str>,
    },
    /// `POST /api/v1/messages`.
    Http,
    /// A local program through `sendmail`, run by `uid`.
    Local { uid: u32 },
}

/// What the trace header says about a message.
pub struct Trace<'a> {
    pub hostname: &'a str,
    pub id: &'a MessageId,
    pub at: Timestamp,
    pub arrival: Arrival<'a>,
}

/// The RFC 5321 §4.4 trace header every door puts first, with the RFC 3848 protocol keyword
/// for SMTP (`HTTP` for the API; a local program's names its user id, as Postfix's does).
pub fn received_header(t: &Trace<'_>) -> String {
    let Trace { hostname, id, at, arrival } = *t;
    let mut h = match arrival {
        Arrival::Smtp { helo, client_ip, esmtp, tls, authenticated, single_rcpt } => {
            let proto = match (esmtp, tls, authenticated) {
                (false, _, _) => "SMTP",
                (true, false, false) => "ESMTP",
                (true, true, false) => "ESMTPS",
                (true, false, true) => "ESMTPA",
                (true, true, true) => "ESMTPSA",
            };
            let helo: String = helo.chars().filter(|c| c.is_ascii_graphic()).take(255).collect();
            let mut h =
                format!("Received: from {helo} ([{client_ip}])\r\n\tby {hostname} (mailerd) with {proto} id {id}");
            if let Some(rcpt) = single_rcpt {
                h.push_str(&format!("\r\n\tfor <{rcpt}>"));
            }
            h
        }
        Arrival::Http => format!("Received: from api\r\n\tby {hostname} (mailerd) with HTTP id {id}"),
        Arrival::Local { uid } => format!("Received: by {hostname} (mailerd, from userid {uid})\r\n\tid {id}"),
    };
    h.push_str(&format!("; {}\r\n", at.rfc5322()));
    h
}

/// Wakes the scheduler's loops when new work is stored (each loop keeps one pending wakeup).
#[derive(Debug, Default)]
pub struct Wakeup {
    pub local: Notify,
    pub remote: Notify,
    pub feedback: Notify,
}

impl Wakeup {
    /// The wakeup of the loop that handles `transport`.
    pub fn of(&self, transport: Transport) -> &Notify {
        match transport {
            Transport::Local => &self.local,
            Transport::Remote => &self.remote,
            Transport::Feedback => &self.feedback,
        }
    }

    /// Wakes the loops of these transports only (a loop woken for nothing costs a claim; a
    /// loop poked twice still keeps a single wakeup).
    pub fn poke_for(&self, transports: impl IntoIterator<Item = Transport>) {
        for t in transports {
            self.of(t).notify_one();
        }
    }

    /// Wakes every loop.
    pub fn poke(&self) {
        self.local.notify_one();
        self.remote.notify_one();
        self.feedback.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_header_names_protocol_and_id() {
        let id = MessageId("ABC".into());
        let trace = |arrival| received_header(&Trace { hostname: "mx.test", id: &id, at: Timestamp(0), arrival });
        let h = trace(Arrival::Smtp {
            helo: "client.test",
            client_ip: "127.0.0.1",
            esmtp: true,
            tls: true,
            authenticated: true,
            single_rcpt: Some("a@b"),
        });
        assert_eq!(
            h,
            "Received: from client.test ([127.0.0.1])\r\n\tby mx.test (mailerd) with ESMTPSA id ABC\r\n\tfor <a@b>; Thu, 01 Jan 1970 00:00:00 +0000\r\n"
        );
        assert_eq!(
            trace(Arrival::Http),
            "Received: from api\r\n\tby mx.test (mailerd) with HTTP id ABC; Thu, 01 Jan 1970 00:00:00 +0000\r\n"
        );
        assert_eq!(
            trace(Arrival::Local { uid: 1000 }),
            "Received: by mx.test (mailerd, from userid 1000)\r\n\tid ABC; Thu, 01 Jan 1970 00:00:00 +0000\r\n"
        );
    }
}
