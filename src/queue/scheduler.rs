//! The scheduler: leases due recipients, runs their delivery, records the outcomes.
//!
//! It wakes when `accept` stores a message (a `Notify`) and otherwise polls once a second
//! for retries that came due. Claims are leases in the store, so a crashed worker's
//! recipients become due again when the lease runs out, and several processes can share
//! a store. This build delivers local recipients; remote ones wait for the outbound client.
//! Must not: hold a lease longer than `LEASE`, or retry in a tight loop on store errors.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use super::outcome::DeliveryOutcome;
use super::retry;
use crate::local::maildir;
use crate::store::{Attempt, Claim, RecipientState, Store, Transport};
use crate::time::Timestamp;

const LEASE: Duration = Duration::from_secs(300);
const BATCH: usize = 64;
const IDLE_POLL: Duration = Duration::from_secs(1);

pub struct Scheduler {
    pub store: Arc<dyn Store>,
    pub wakeup: Arc<Notify>,
    pub mail_root: PathBuf,
    pub hostname: String,
    /// This process's lease owner name.
    pub owner: String,
}

impl Scheduler {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let now = Timestamp::now();
            let claims = match self.store.claim_due(Transport::Local, now, BATCH, LEASE, &self.owner).await {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "claiming due recipients failed");
                    tokio::time::sleep(IDLE_POLL).await;
                    continue;
                }
            };
            if claims.is_empty() {
                tokio::select! {
                    _ = self.wakeup.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let mut attempts = Vec::with_capacity(claims.len());
            for claim in claims {
                let outcome = self.deliver_local(&claim).await;
                attempts.push(self.attempt(&claim, outcome));
            }
            if let Err(e) = self.store.record_attempts(&self.owner, attempts).await {
                // The leases run out and the recipients are tried again: at least once, never lost.
                warn!(error = %e, "recording delivery outcomes failed");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }

    async fn deliver_local(&self, claim: &Claim) -> DeliveryOutcome {
        let Some(key) = claim.mailbox.clone() else {
            return DeliveryOutcome::Failed {
                status: "5.3.0".into(),
                detail: "local recipient without a mailbox".into(),
            };
        };
        let body = match self.store.load_body(&claim.message).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                return DeliveryOutcome::Failed { status: "5.3.0".into(), detail: "message body missing".into() };
            }
            Err(e) => {
                return DeliveryOutcome::Deferred { status: "4.3.0".into(), detail: format!("store: {e}") };
            }
        };
        let (root, host) = (self.mail_root.clone(), self.hostname.clone());
        let result = tokio::task::spawn_blocking(move || maildir::deliver(&root, &key, &host, &body)).await;
        match result {
            Ok(Ok(path)) => {
                DeliveryOutcome::Delivered { detail: format!("delivered to maildir as {}", path.display()) }
            }
            Ok(Err(e)) => DeliveryOutcome::Deferred { status: "4.3.0".into(), detail: format!("maildir: {e}") },
            Err(e) => DeliveryOutcome::Deferred { status: "4.3.0".into(), detail: format!("delivery task: {e}") },
        }
    }

    fn attempt(&self, claim: &Claim, outcome: DeliveryOutcome) -> Attempt {
        let now = Timestamp::now();
        let base = |state, status: String, detail: String| Attempt {
            recipient: claim.recipient,
            state,
            status,
            detail,
            next_attempt_at: None,
            mailbox_bytes: None,
        };
        match outcome {
            DeliveryOutcome::Delivered { detail } => {
                info!(queue_id = %claim.message, to = %claim.address, relay = "local", status = "delivered", "{detail}");
                Attempt {
                    mailbox_bytes: claim.mailbox.clone().map(|m| (m, claim.size)),
                    ..base(RecipientState::Delivered, "2.0.0".into(), detail)
                }
            }
            DeliveryOutcome::Deferred { detail, .. } if retry::is_expired(claim.received_at, now, retry::MAX_AGE) => {
                info!(queue_id = %claim.message, to = %claim.address, relay = "local", status = "expired", "{detail}");
                base(RecipientState::Expired, "4.4.7".into(), format!("expired after retries: {detail}"))
            }
            DeliveryOutcome::Deferred { status, detail } => {
                info!(queue_id = %claim.message, to = %claim.address, relay = "local", status = "deferred", "{detail}");
                Attempt {
                    next_attempt_at: Some(now.plus(retry::backoff(claim.attempts))),
                    ..base(RecipientState::Deferred, status, detail)
                }
            }
            DeliveryOutcome::Failed { status, detail } => {
                info!(queue_id = %claim.message, to = %claim.address, relay = "local", status = "bounced", "{detail}");
                base(RecipientState::Bounced, status, detail)
            }
        }
    }
}
