//! After delivery attempts: suppress hard-bounced addresses, send the DSNs that are due
//! (one per message and occasion), and release the body of a finished message.
//!
//! Occasions: the failure report, once no recipient still waits for its first attempt (so
//! every first-round failure of a message is in one DSN; a recipient that fails later after
//! retries gets its own report); one delay warning per recipient after `bounce.delay_warning`;
//! success reports only where NOTIFY=SUCCESS asked for them.
//! Standards: RFC 3461, RFC 3464, RFC 5321 §6.1 (never to `<>`).
//! Must not: decide delivery outcomes, or send a report twice (the store refuses a second
//! report for the same recipient atomically, see `NewMessage::reports`).

use std::sync::Arc;

use tracing::{info, warn};

use super::dsn::{self, Action, Dsn, DsnRecipient};
use super::notify::{self, ReportKind};
use super::reason::Reason;
use crate::accept::{self, Incoming};
use crate::config::Config;
use crate::feedback::classify::{Decision, of_status};
use crate::local::mailbox::{self, Resolution};
use crate::smtp::address::{Mailbox, ReversePath};
use crate::smtp::command::{MailParams, Notify, Ret};
use crate::store::{
    Destination, MessageId, NewRecipient, Origin, RecipientFacts, RecipientState, ReportFacts, ReportMark, Scope,
    Store, StoreError, Suppression, Via,
};
use crate::time::Timestamp;

/// The reason and hard/soft verdict for a stored outcome: the classifier's one decision
/// (`feedback::classify::of_outcome`), the same as for a bounce read from elsewhere.
pub fn verdict(r: &RecipientFacts) -> Decision {
    of_status(r.status, r.reply_code, r.detail.as_deref())
}

pub struct Reporter {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub wakeup: Arc<crate::accept::Wakeup>,
    pub dkim: Option<Arc<crate::dkim::Signer>>,
}

impl Reporter {
    /// Runs after attempts for `id` were recorded.
    pub async fn after_attempts(&self, id: &MessageId) {
        if let Err(e) = self.run(id).await {
            warn!(queue_id = %id, error = %e, "reporting failed; it is retried after the next attempt");
        }
    }

    /// Runs after attempts were recorded, on the facts read after their commit.
    pub async fn after_recorded(&self, facts: ReportFacts) {
        let id = facts.id.clone();
        if let Err(e) = self.settle(facts).await {
            warn!(queue_id = %id, error = %e, "reporting failed; it is retried after the next attempt");
        }
    }

    async fn run(&self, id: &MessageId) -> Result<(), StoreError> {
        match self.store.report_facts(id).await? {
            Some(facts) => self.settle(facts).await,
            None => Ok(()),
        }
    }

    /// Reports on `facts`; when another job of the message reported some of the same
    /// recipients first (the store refuses the whole DSN then), reads the facts again and
    /// reports the rest, so a recipient that expired at the same time is not left out.
    async fn settle(&self, mut facts: ReportFacts) -> Result<(), StoreError> {
        for _ in 0..3 {
            match self.report(&facts).await {
                Err(StoreError::AlreadyReported) => match self.store.report_facts(&facts.id).await? {
                    Some(fresh) => facts = fresh,
                    None => return Ok(()),
                },
                other => return other,
            }
        }
        Ok(())
    }

    async fn report(&self, facts: &ReportFacts) -> Result<(), StoreError> {
        let id = &facts.id;
        let now = Timestamp::now();
        self.suppress_hard_bounces(facts).await?;
        let to = notify::recipient_of_report(&facts.reverse_path);
        let first_round_done = !facts.recipients.iter().any(|r| r.state == RecipientState::Queued);
        if first_round_done && let Some(to) = &to {
            let finals: Vec<&RecipientFacts> = facts
                .recipients
                .iter()
                .filter(|r| !r.final_reported)
                .filter(|r| match r.state {
                    RecipientState::Bounced | RecipientState::Expired => notify::wants(r.notify, ReportKind::Failure),
                    RecipientState::Delivered => notify::wants(r.notify, ReportKind::Success),
                    _ => false,
                })
                .collect();
            let any_failed = finals.iter().any(|r| r.state != RecipientState::Delivered);
            let kind = if any_failed { ReportKind::Failure } else { ReportKind::Success };
            if !finals.is_empty() {
                self.send(facts, to, kind, &finals, ReportMark::Final, now).await?;
            }
        }
        let age = now.millis().saturating_sub(facts.received_at.millis());
        if let Some(to) = &to
            && age >= self.config.bounce.delay_warning.as_millis() as i64
        {
            let delayed: Vec<&RecipientFacts> = facts
                .recipients
                .iter()
                .filter(|r| r.state == RecipientState::Deferred && !r.delay_reported)
                .filter(|r| notify::wants(r.notify, ReportKind::Delay))
                .collect();
            if !delayed.is_empty() {
                self.send(facts, to, ReportKind::Delay, &delayed, ReportMark::Delay, now).await?;
            }
        }
        if !facts.recipients.iter().any(|r| r.state.is_waiting()) {
            self.store.release_body(id).await?;
        }
        Ok(())
    }

    async fn suppress_hard_bounces(&self, facts: &ReportFacts) -> Result<(), StoreError> {
        for r in facts.recipients.iter().filter(|r| r.state == RecipientState::Bounced && !r.final_reported) {
            let Decision { reason, hard_bounce, .. } = verdict(r);
            if hard_bounce != Some(true) {
                continue;
            }
            let address = Mailbox::parse(&r.address).map(|m| m.key()).unwrap_or_else(|_| r.address.to_lowercase());
            // The entry belongs to the sender's domain (its API keys see it); one per domain.
            let domain = crate::store::path_domain(&facts.reverse_path);
            if self.store.suppression_entries(&address, &Scope::All).await?.iter().any(|s| s.domain == domain) {
                continue;
            }
            // Two jobs of one message may report the same facts at once; the store records an
            // identical suppression once, and says whether this call was the one.
            let added = self
                .store
                .suppress(Suppression {
                    address: address.clone(),
                    reason: reason.as_str().into(),
                    status: r.status.map(|s| s.to_string()),
                    detail: r.detail.clone(),
                    message_id: Some(facts.id.0.clone()),
                    created_at: String::new(),
                    domain,
                    scope: crate::store::SuppressionScope::Global,
                })
                .await?;
            if added {
                info!(address = %address, reason = %reason, queue_id = %facts.id, "suppressed after a hard bounce");
            }
        }
        Ok(())
    }

    async fn send(
        &self,
        facts: &ReportFacts,
        to: &Mailbox,
        kind: ReportKind,
        recipients: &[&RecipientFacts],
        mark: ReportMark,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(target) = self.route(to).await? else {
            info!(queue_id = %facts.id, to = %to, "no DSN: the sender is a local address without a mailbox");
            return Ok(());
        };
        let original = self.store.load_body(&facts.id).await?.unwrap_or_default();
        let rows: Vec<DsnRecipient> = recipients.iter().map(|r| dsn_recipient(r, kind)).collect();
        let dsn_id = MessageId::generate(now);
        let dsn = Dsn {
            reporting_mta: &self.config.hostname,
            to,
            queue_id: &facts.id.0,
            envid: facts.envid.as_deref(),
            arrival: facts.received_at,
            recipients: rows,
            original: &original,
            return_full: facts.ret == Some(Ret::Full) && kind == ReportKind::Failure,
            kind,
            retry_until: Some(facts.received_at.plus(self.config.retry.max_age)),
        };
        let message = dsn::render(&dsn, now, &dsn_id.0);
        let incoming = Incoming {
            id: dsn_id.clone(),
            from: ReversePath::Null,
            params: MailParams::default(),
            recipients: vec![target],
            origin: Origin {
                via: Via::Dsn,
                client_ip: "127.0.0.1".into(),
                helo: self.config.hostname.clone(),
                ..Origin::default()
            },
            received_at: now,
            message,
            reports: recipients.iter().map(|r| (r.id, mark)).collect(),
            notes: Vec::new(),
            rejected: Vec::new(),
            idempotency: None,
        };
        match accept::accept(self.store.as_ref(), &self.wakeup, self.dkim.as_deref(), incoming).await {
            Ok(_) => {
                info!(queue_id = %facts.id, dsn_id = %dsn_id, to = %to, kind = ?kind, recipients = recipients.len(), "notified");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The queue recipient of a DSN to `to`: a local mailbox or a remote address.
    async fn route(&self, to: &Mailbox) -> Result<Option<NewRecipient>, StoreError> {
        let recipient = |destination| NewRecipient {
            address: to.to_string(),
            orcpt: None,
            notify: Some(Notify { never: true, ..Notify::default() }),
            destination,
        };
        if !self.config.is_local_domain(to.domain()) {
            return Ok(Some(recipient(Destination::Remote)));
        }
        match mailbox::resolve(&self.config, to) {
            Resolution::Forward(target) => Ok(Some(recipient(Destination::Forward(target.to_string())))),
            Resolution::Mailbox { key, implicit } => {
                if implicit || self.store.mailbox(&key).await?.is_some() {
                    Ok(Some(recipient(Destination::Mailbox(key))))
                } else {
                    Ok(None)
                }
            }
        }
    }
}

fn dsn_recipient(r: &RecipientFacts, kind: ReportKind) -> DsnRecipient {
    let Decision { reason, hard_bounce, .. } = verdict(r);
    let action = match (kind, r.state) {
        (ReportKind::Delay, _) => Action::Delayed,
        (_, RecipientState::Delivered) => Action::Delivered,
        _ => Action::Failed,
    };
    let hard = if action == Action::Failed { hard_bounce } else { Some(false) };
    let status = match (action, r.status) {
        // RFC 3464: a failed recipient's Status is a 5.x.x; an expiry after 4xx replies is 4.4.7.
        (Action::Failed, Some(s)) if s.class == 4 && r.state == RecipientState::Expired => s.to_string(),
        (_, Some(s)) => s.to_string(),
        (_, None) => super::reason::STATUS_UNDEFINED.to_string(),
    };
    DsnRecipient {
        final_recipient: r.address.clone(),
        original_recipient: r.orcpt.clone(),
        action,
        status,
        remote_mta: r.remote_mta.as_deref().map(|m| m.split('[').next().unwrap_or(m).to_string()),
        diagnostic: r.detail.clone(),
        diagnostic_is_smtp: r.reply_code.is_some(),
        last_attempt: Some(r.updated_at),
        reason: if r.state == RecipientState::Expired && reason == Reason::Undefined {
            Reason::Expired
        } else {
            reason
        },
        hard,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_from_status_and_words() {
        let v = |s, d| {
            let d = crate::feedback::classify::of_outcome(Some(s), None, d);
            (d.reason, d.hard_bounce)
        };
        assert_eq!(v("5.1.1", Some("550 5.1.1 user unknown")), (Reason::UserUnknown, Some(true)));
        assert_eq!(v("5.3.4", None), (Reason::MesgTooBig, Some(false)));
        assert_eq!(v("5.7.1", Some("554 5.7.1 <x@y>: relay access denied")), (Reason::NoRelaying, Some(false)));
        assert_eq!(v("5.0.0", Some("550 mailbox full")), (Reason::MailboxFull, Some(false)));
        assert_eq!(v("5.2.2", None), (Reason::MailboxFull, Some(false)));
        assert_eq!(v("5.1.10", None), (Reason::NotAccept, Some(true)));
    }
}
