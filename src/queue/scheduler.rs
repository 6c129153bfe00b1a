//! The scheduler: leases due recipients, hands each to its transport, records the outcomes.
//!
//! Claim → deliver → record: local recipients go to `local::deliver` (or, with
//! `local.transport = "lmtp"`, to `local::lmtp`, one transaction per message), incoming bounces to
//! `feedback::ingest::read`, remote ones to `outbound` in jobs of one message × one destination
//! domain, many jobs at once (bounded by `outbound.max_deliveries`); `retry::decide` turns each
//! outcome into the recipient's next state, hard bounces go to `bounce::breaker`, and the
//! reporter runs after the record. Each loop wakes when `accept` stores a message (a `Notify`)
//! and otherwise polls once a second for retries that came due; once the due range is
//! drained, the remote loop claims at most once per `CLAIM_GATHER`, so one claim takes
//! several messages under load. Claims are leases in the
//! store, so a crashed worker's recipients become due again when the lease runs out, and
//! several processes can share a store. The cost of a step is one indexed range read of the
//! due index, independent of the queue's length.
//! While a recipient is being worked on, a third loop renews its lease every third of
//! `queue.lease`; a node that dies stops renewing, and its recipients come due again at most
//! `queue.lease` later, on whichever node claims them first.
//! Must not: deliver, parse bounces or count bounces itself; keep renewing a lease whose
//! outcome was recorded or given up; or retry in a tight loop on store errors.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, watch};

use crate::accept::Wakeup;
use crate::bounce::report::Reporter;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::retry::{self, Decision};
use crate::config::Config;
use crate::feedback::ingest::{self, Read};
use crate::feedback::reports::{Keyring, ReportRead};
use crate::outbound::outcome::{DeliveryOutcome, Report, Stage};
use crate::outbound::{Job, JobRecipient, Outbound};
use crate::smtp::address::ReversePath;
use crate::store::{
    Attempt, Claim, Destination, EventKind, MessageId, RecipientId, RecipientState, Store, StoreError, Transport,
};
use crate::time::Timestamp;

const LOCAL_BATCH: usize = 64;
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Once the due range is drained, the next claim comes at least this long after the last one,
/// so that under steady load one claim takes the messages of several inserts (a store round
/// trip per batch instead of per message). Mail arriving less often waits for nothing.
const CLAIM_GATHER: Duration = Duration::from_millis(10);

pub struct Scheduler {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub wakeup: Arc<Wakeup>,
    pub outbound: Arc<Outbound>,
    pub reporter: Reporter,
    /// Rewrites envelope senders to signed return paths (None: sent as given).
    pub signer: Option<Arc<crate::bounce::return_path::Signer>>,
    /// Hard-bounce rates per account: trips pause the account.
    pub breaker: Arc<crate::bounce::breaker::Breaker>,
    /// Verifies the tokens of unsubscribe addresses.
    pub unsubscribe: Arc<crate::bounce::unsubscribe::Keys>,
    /// Verifies signed return paths quoted in complaints (whether or not mail is signed now).
    pub return_path: Arc<crate::bounce::return_path::Signer>,
    /// Tells our bounces from forged ones before they are recorded.
    pub verifier: Arc<crate::feedback::evidence::Verifier>,
    /// This process's lease owner name.
    pub owner: String,
    /// Recipients this process holds leases on: claimed, outcome not recorded yet.
    pub inflight: Mutex<HashSet<RecipientId>>,
    /// With `local.transport = "lmtp"`: the mailbox server local mail is handed to.
    pub lmtp: Option<crate::local::lmtp::Lmtp>,
}

impl Scheduler {
    fn mail_root(&self) -> PathBuf {
        self.config.data_dir.join("mail")
    }

    /// Runs both loops until shutdown.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let local = tokio::spawn(self.clone().run_local(shutdown.clone(), Transport::Local));
        let feedback = tokio::spawn(self.clone().run_local(shutdown.clone(), Transport::Feedback));
        let remote = tokio::spawn(self.clone().run_remote(shutdown));
        // Renewal outlives the shutdown signal: deliveries still finishing keep their leases.
        let renew = tokio::spawn(self.clone().renew_leases());
        let janitor = self.outbound.slots.clone().map(|s| tokio::spawn(s.run_janitor()));
        let _ = local.await;
        let _ = feedback.await;
        let _ = remote.await;
        renew.abort();
        if let (Some(slots), Some(janitor)) = (&self.outbound.slots, janitor) {
            janitor.abort();
            slots.give_back(Duration::ZERO).await;
        }
    }

    /// Leases up to `limit` due recipients and remembers them for renewal.
    async fn claim(&self, transport: Transport, limit: usize) -> Result<Vec<Claim>, StoreError> {
        let lease = self.config.queue.lease;
        let claims = self.store.claim_due(transport, Timestamp::now(), limit, lease, &self.owner).await?;
        self.held().extend(claims.iter().map(|c| c.recipient));
        Ok(claims)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<RecipientId>> {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops renewing these leases (their outcome is recorded, or they are left to run out).
    fn forget<'a>(&self, ids: impl IntoIterator<Item = &'a RecipientId>) {
        let mut held = self.held();
        for id in ids {
            held.remove(id);
        }
    }

    /// Every third of a lease, extends the leases of the recipients being worked on (and the
    /// cluster-wide connection slots): only a node that stopped working loses its leases.
    async fn renew_leases(self: Arc<Self>) {
        let lease = self.config.queue.lease;
        loop {
            tokio::time::sleep(lease / 3).await;
            let ids: Vec<RecipientId> = self.held().iter().copied().collect();
            if !ids.is_empty() {
                match self.store.renew_leases(&self.owner, &ids, Timestamp::now().plus(lease)).await {
                    Ok(n) if n < ids.len() => {
                        info!(held = n, asked = ids.len(), "some leases ran out before renewal; their record will lose")
                    }
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, leases = ids.len(), "renewing leases failed"),
                }
            }
            if let Some(slots) = &self.outbound.slots {
                slots.renew().await;
            }
        }
    }

    async fn idle(&self, wakeup: &Notify, shutdown: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = wakeup.notified() => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
            _ = shutdown.changed() => {}
        }
    }

    /// The loop of a transport handled in this process: local mailboxes, or incoming bounces.
    async fn run_local(self: Arc<Self>, mut shutdown: watch::Receiver<bool>, transport: Transport) {
        let wakeup = self.wakeup.of(transport);
        while !*shutdown.borrow() {
            let claims = match self.claim(transport, LOCAL_BATCH).await {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, transport = transport.as_str(), "claiming due recipients failed");
                    tokio::time::sleep(IDLE_POLL).await;
                    continue;
                }
            };
            if claims.is_empty() {
                self.idle(wakeup, &mut shutdown).await;
                continue;
            }
            let mut attempts = Vec::with_capacity(claims.len());
            let mut originals = Vec::new();
            // A message for several local mailboxes is read from the store once per batch.
            let mut bodies: HashMap<MessageId, Arc<Vec<u8>>> = HashMap::new();
            if transport == Transport::Feedback {
                for claim in &claims {
                    let (outcome, original, event) = self.read_bounce(claim, &mut bodies).await;
                    originals.extend(original);
                    let mut a = self.attempt(claim, transport.as_str(), outcome);
                    a.event = event;
                    attempts.push(a);
                }
            } else {
                let outcomes = self.deliver_locals(&claims, &mut bodies).await;
                for (claim, outcome) in claims.iter().zip(outcomes) {
                    attempts.push(self.attempt(claim, transport.as_str(), outcome));
                }
            }
            self.record(attempts).await;
            // A bounce that changed a recipient: tell the sender in our own words.
            for id in originals {
                self.reporter.after_attempts(&id).await;
            }
        }
    }

    async fn run_remote(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.config.outbound.max_deliveries));
        let mut running: JoinSet<()> = JoinSet::new();
        while !*shutdown.borrow() {
            while running.try_join_next().is_some() {}
            self.outbound.pool.sweep();
            let free = slots.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = running.join_next() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let claimed_at = tokio::time::Instant::now();
            let claims = match self.claim(Transport::Remote, free * 4).await {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "claiming due remote recipients failed");
                    tokio::time::sleep(IDLE_POLL).await;
                    continue;
                }
            };
            let drained = claims.len() < free * 4;
            for group in group_jobs(claims) {
                let Ok(permit) = slots.clone().acquire_owned().await else { break };
                let me = self.clone();
                running.spawn(async move {
                    me.run_job(group).await;
                    drop(permit);
                });
            }
            if drained {
                self.idle(self.wakeup.of(Transport::Remote), &mut shutdown).await;
                tokio::time::sleep_until(claimed_at + CLAIM_GATHER).await;
            }
        }
        // Let running deliveries finish their transaction; unfinished leases simply expire.
        let _ =
            tokio::time::timeout(Duration::from_secs(30), async { while running.join_next().await.is_some() {} }).await;
    }

    /// The body of a claimed message: the one that came with the claim, else from the store.
    async fn body_of(&self, claim: &Claim) -> Result<Option<Arc<Vec<u8>>>, StoreError> {
        match &claim.body {
            Some(body) => Ok(Some(body.clone())),
            None => Ok(self.store.load_body(&claim.message).await?.map(Arc::new)),
        }
    }

    async fn run_job(&self, (domain, claims): (String, Vec<Claim>)) {
        let Some(first) = claims.first() else { return };
        let message = match self.body_of(first).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                let attempts = claims
                    .iter()
                    .map(|c| self.attempt(c, &domain, DeliveryOutcome::body_missing("message body missing")))
                    .collect();
                return self.record(attempts).await;
            }
            Err(e) => {
                warn!(error = %e, "loading a message body failed; the lease will expire and retry");
                self.forget(claims.iter().map(|c| &c.recipient));
                return;
            }
        };
        let reverse_path = match &self.signer {
            Some(signer) if first.reverse_path != ReversePath::Null => {
                let rid = match claims.as_slice() {
                    [only] => only.recipient.0,
                    _ => 0,
                };
                let valid_until = first.received_at.plus(self.config.retry.max_age + Duration::from_secs(3 * 86_400));
                signer.sign(&first.message.0, rid, valid_until)
            }
            _ => first.reverse_path.to_string(),
        };
        let job = Job {
            domain: domain.clone(),
            reverse_path,
            envid: first.envid.clone(),
            ret: first.ret,
            recipients: claims
                .iter()
                .map(|c| JobRecipient {
                    address: delivery_address(c).to_string(),
                    notify: c.notify,
                    orcpt: c.orcpt.clone(),
                })
                .collect(),
            message,
        };
        let outcomes = self.outbound.deliver(&job).await;
        let attempts = claims.iter().zip(outcomes).map(|(c, o)| self.attempt(c, &domain, o)).collect();
        self.record(attempts).await;
    }

    async fn record(&self, attempts: Vec<Attempt>) {
        let mut messages: Vec<MessageId> = Vec::new();
        for a in &attempts {
            if !messages.contains(&a.message) {
                messages.push(a.message.clone());
            }
        }
        let hard = crate::bounce::breaker::hard_per_message(&attempts);
        let ids: Vec<RecipientId> = attempts.iter().map(|a| a.recipient).collect();
        let recorded = self.store.record_attempts(&self.owner, attempts).await;
        self.forget(&ids);
        let settled = match recorded {
            Ok(settled) => settled,
            Err(e) => {
                // The leases run out and the recipients are tried again: at least once, never lost.
                warn!(error = %e, "recording delivery outcomes failed");
                tokio::time::sleep(IDLE_POLL).await;
                return;
            }
        };
        // A message the record settled has nothing to report and its body is gone.
        messages.retain(|m| !settled.contains(m));
        // The facts are read after the commit, so of two jobs finishing recipients of one
        // message at once, the later sees both outcomes (a report waiting on both is sent).
        match self.store.report_facts_of(&messages).await {
            Ok(facts) => {
                for facts in facts {
                    self.reporter.after_recorded(facts).await;
                }
            }
            // Each message on its own: one unreadable message costs only its own report.
            Err(_) => {
                for id in &messages {
                    self.reporter.after_attempts(id).await;
                }
            }
        }
        for (message, n) in hard {
            self.hard_bounced(&message, n).await;
        }
    }

    /// Counts hard bounces against the account that sent `message`; pauses it when the
    /// breaker trips.
    async fn hard_bounced(&self, message: &MessageId, n: u64) {
        let Ok(Some(detail)) = self.store.message_detail(message).await else { return };
        let now = Timestamp::now();
        let Some(pause) = self.breaker.hard_bounced(detail.origin.auth_user.as_deref(), message, n, now) else {
            return;
        };
        warn!(account = %pause.account, queue_id = %message, "sending paused: {}", pause.detail);
        if let Err(e) = self.store.pause_account(pause).await {
            warn!(error = %e, "pausing the account failed");
        }
    }

    /// Reads a bounce that came back to a signed return path, or null-sender mail to a local
    /// mailbox (`feedback::ingest::read`), counts its hard bounces, and delivers to the
    /// mailbox what `read` says belongs there.
    async fn read_bounce(
        &self,
        claim: &Claim,
        bodies: &mut HashMap<MessageId, Arc<Vec<u8>>>,
    ) -> (DeliveryOutcome, Option<MessageId>, Option<EventKind>) {
        let body = match self.body_of(claim).await {
            Ok(Some(b)) => b,
            Ok(None) => return (DeliveryOutcome::body_missing("bounce body missing"), None, None),
            Err(e) => return (DeliveryOutcome::local_trouble(Stage::Queue, format!("store: {e}")), None, None),
        };
        bodies.insert(claim.message.clone(), body.clone());
        if claim.destination == Destination::Report {
            return (self.read_report(claim, &body).await, None, None);
        }
        // A complaint (ARF) to a signed return path: the token names the message.
        if let Destination::BounceOf { queue_id, rid } = &claim.destination {
            let report = crate::feedback::parse_bounce(&body);
            if report.kind == crate::feedback::ReportKind::Feedback {
                let about = Some((queue_id.clone(), *rid));
                let read = crate::feedback::reports::complaint(self.store.as_ref(), &self.return_path, &report, about);
                let outcome = match read.await {
                    Err(e) => DeliveryOutcome::local_trouble(Stage::Local, format!("store: {e}")),
                    Ok(ReportRead::Complained { message, address, feedback_type, changed }) => {
                        self.complained(&message, &address, feedback_type, changed).await
                    }
                    Ok(other) => DeliveryOutcome::delivered_locally(format!("report not used: {other:?}")),
                };
                return (outcome, None, None);
            }
        }
        let claimed = ingest::Claimed {
            message: &claim.message,
            rcpt: &claim.address,
            mail_from: &claim.reverse_path,
            destination: &claim.destination,
            body: &body,
        };
        let read =
            ingest::read(self.store.as_ref(), &self.verifier, &claimed, self.config.bounce.keep_in_mailbox).await;
        match read {
            Err(e) => (DeliveryOutcome::local_trouble(Stage::Local, e.to_string()), None, None),
            Ok(Read::Forged { summary }) => {
                let outcome = DeliveryOutcome::delivered_locally(format!("forged bounce dropped: {summary}"));
                (outcome, None, Some(EventKind::ForgedBounce))
            }
            Ok(Read::Read { recorded, deliver_to, summary }) => {
                let mut original = None;
                if let Some(r) = &recorded {
                    if let (Some(m), true) = (&r.original, r.hard > 0) {
                        self.hard_bounced(m, r.hard).await;
                    }
                    original = r.original.clone();
                }
                let outcome = match (deliver_to, recorded) {
                    (Some(key), _) => self.deliver_local(claim, Some(key), bodies).await,
                    (None, Some(r)) => DeliveryOutcome::delivered_locally(r.summary),
                    (None, None) => DeliveryOutcome::delivered_locally(format!("not about mail we sent: {summary}")),
                };
                (outcome, original, None)
            }
        }
    }

    /// Reads mail to one of our report addresses (`feedback::reports`): never delivered.
    async fn read_report(&self, claim: &Claim, body: &[u8]) -> DeliveryOutcome {
        let keys = Keyring { unsubscribe: &self.unsubscribe, return_path: &self.return_path };
        match crate::feedback::reports::read(self.store.as_ref(), &keys, &claim.address, body).await {
            Err(e) => DeliveryOutcome::local_trouble(Stage::Local, format!("store: {e}")),
            Ok(ReportRead::Unsubscribed { unsubscribe: u, changed }) => {
                info!(
                    queue_id = %u.message,
                    to = %u.recipient,
                    sender_domain = %u.sender_domain,
                    changed,
                    via = "mailto",
                    "unsubscribed"
                );
                DeliveryOutcome::delivered_locally(format!(
                    "unsubscribed {} from mail of {} (message {})",
                    u.recipient, u.sender_domain, u.message
                ))
            }
            Ok(ReportRead::Complained { message, address, feedback_type, changed }) => {
                self.complained(&message, &address, feedback_type, changed).await
            }
            Ok(ReportRead::Ignored(why)) => DeliveryOutcome::delivered_locally(format!("report not used: {why}")),
        }
    }

    /// A complaint was recorded: logged, and counted against the sending account (a second
    /// report of the same complaint, which changed nothing, is not counted again); pauses the
    /// account when the complaint rate trips the breaker.
    async fn complained(
        &self,
        message: &MessageId,
        address: &str,
        feedback_type: crate::feedback::arf::FeedbackType,
        changed: bool,
    ) -> DeliveryOutcome {
        info!(queue_id = %message, to = %address, feedback_type = feedback_type.as_str(), changed, "complained");
        if changed && let Ok(Some(detail)) = self.store.message_detail(message).await {
            let sender = crate::store::sender_domain(&detail.entry.reverse_path);
            let sender = sender.as_ref().map(|d| d.as_str());
            let pauses = self.breaker.complained(detail.origin.auth_user.as_deref(), sender, message, Timestamp::now());
            for pause in pauses {
                warn!(account = %pause.account, queue_id = %message, "sending paused: {}", pause.detail);
                if let Err(e) = self.store.pause_account(pause).await {
                    warn!(error = %e, "pausing the account failed");
                }
            }
        }
        DeliveryOutcome::delivered_locally(format!(
            "{} complaint about {message} from {address}: suppressed",
            feedback_type.as_str()
        ))
    }

    /// Delivers a batch of local claims, one outcome per claim in their order: each into its
    /// Maildir, or with LMTP one transaction per message for all its mailboxes in the batch
    /// (the server answers per recipient).
    async fn deliver_locals(
        &self,
        claims: &[Claim],
        bodies: &mut HashMap<MessageId, Arc<Vec<u8>>>,
    ) -> Vec<DeliveryOutcome> {
        let Some(lmtp) = &self.lmtp else {
            let mut outcomes = Vec::with_capacity(claims.len());
            for claim in claims {
                let mailbox = claim.destination.mailbox().map(str::to_string);
                outcomes.push(self.deliver_local(claim, mailbox, bodies).await);
            }
            return outcomes;
        };
        let mut outcomes: Vec<Option<DeliveryOutcome>> = vec![None; claims.len()];
        // Per message (in claim order): the indexes of its claims that have a mailbox.
        let mut groups: Vec<(&MessageId, Vec<usize>)> = Vec::new();
        for (i, claim) in claims.iter().enumerate() {
            if claim.destination.mailbox().is_none() {
                outcomes[i] = Some(DeliveryOutcome::no_local_mailbox());
            } else if let Some((_, list)) = groups.iter_mut().find(|(m, _)| **m == claim.message) {
                list.push(i);
            } else {
                groups.push((&claim.message, vec![i]));
            }
        }
        for (_, indexes) in groups {
            let members: Vec<&Claim> = indexes.iter().filter_map(|&i| claims.get(i)).collect();
            let Some(first) = members.first() else { continue };
            let delivered = match self.local_body(first, bodies).await {
                Ok(body) => {
                    let keys: Vec<&str> = members.iter().filter_map(|c| c.destination.mailbox()).collect();
                    lmtp.deliver(&first.reverse_path.to_string(), &keys, &body).await
                }
                Err(outcome) => vec![outcome; members.len()],
            };
            for (i, outcome) in indexes.into_iter().zip(delivered) {
                if let Some(slot) = outcomes.get_mut(i) {
                    *slot = Some(outcome);
                }
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| DeliveryOutcome::local_trouble(Stage::Local, "no outcome from LMTP")))
            .collect()
    }

    /// Delivers a local claim into its mailbox (`local::deliver`, or `local::lmtp`), reading
    /// the body at most once per batch.
    async fn deliver_local(
        &self,
        claim: &Claim,
        mailbox: Option<String>,
        bodies: &mut HashMap<MessageId, Arc<Vec<u8>>>,
    ) -> DeliveryOutcome {
        let Some(key) = mailbox else {
            return DeliveryOutcome::no_local_mailbox();
        };
        let body = match self.local_body(claim, bodies).await {
            Ok(b) => b,
            Err(outcome) => return outcome,
        };
        let return_path = claim.reverse_path.to_string();
        if let Some(lmtp) = &self.lmtp {
            let outcome = lmtp.deliver(&return_path, &[&key], &body).await.pop();
            return outcome.unwrap_or_else(|| DeliveryOutcome::local_trouble(Stage::Local, "no outcome from LMTP"));
        }
        let host = self.config.hostname.clone();
        crate::local::deliver::deliver(self.mail_root(), host, key, &return_path, &body).await
    }

    /// The body of a local claim: the claim's, one read earlier in the batch, or the store's.
    async fn local_body(
        &self,
        claim: &Claim,
        bodies: &mut HashMap<MessageId, Arc<Vec<u8>>>,
    ) -> Result<Arc<Vec<u8>>, DeliveryOutcome> {
        if let Some(b) = claim.body.as_ref().or_else(|| bodies.get(&claim.message)) {
            return Ok(b.clone());
        }
        match self.store.load_body(&claim.message).await {
            Ok(Some(b)) => {
                let b = Arc::new(b);
                bodies.insert(claim.message.clone(), b.clone());
                Ok(b)
            }
            Ok(None) => Err(DeliveryOutcome::body_missing("message body missing")),
            Err(e) => Err(DeliveryOutcome::local_trouble(Stage::Queue, format!("store: {e}"))),
        }
    }

    /// Turns an outcome into the record to store, applying the retry decision.
    fn attempt(&self, claim: &Claim, relay: &str, outcome: DeliveryOutcome) -> Attempt {
        let now = Timestamp::now();
        let decision = retry::decide(&outcome, claim.attempts, claim.received_at, now, &self.config.retry);
        let (state, report, next_attempt_at) = match decision {
            Decision::Delivered => (RecipientState::Delivered, outcome.into_report(), None),
            Decision::Bounced => (RecipientState::Bounced, outcome.into_report(), None),
            Decision::Expired => (RecipientState::Expired, outcome.report().expired(claim.attempts + 1), None),
            Decision::RetryAt(at) => (RecipientState::Deferred, outcome.into_report(), Some(at)),
        };
        let mut attempt = stored(claim, state, &report, next_attempt_at);
        if let (RecipientState::Delivered, Destination::Mailbox(key)) = (state, &claim.destination) {
            attempt.mailbox_bytes = Some((key.clone(), claim.size));
        }
        if relay != Transport::Feedback.as_str() {
            let latency = (state == RecipientState::Delivered)
                .then(|| Duration::from_millis(now.millis().saturating_sub(claim.received_at.millis()).max(0) as u64));
            let bounce_reason = matches!(state, RecipientState::Bounced | RecipientState::Expired).then(|| {
                crate::feedback::classify::of_status(Some(attempt.status), attempt.reply_code, Some(&attempt.detail))
                    .reason
            });
            crate::metrics::outcome(state.as_str(), bounce_reason, latency);
            if report.is_dns_temporary() {
                crate::metrics::dns_error(); // the MX lookup (or its hosts' addresses) failed for now
            }
        }
        // The verb first (the state), the remote's words in `detail`.
        info!(
            queue_id = %claim.message,
            to = %claim.address,
            relay = report.remote.as_deref().unwrap_or(relay),
            dsn = %attempt.status,
            attempts = claim.attempts + 1,
            detail = %attempt.detail,
            "{}",
            attempt.event.map_or(state.as_str(), EventKind::as_str)
        );
        attempt
    }
}

/// The store's record of an attempt: the one place where an outcome's typed report becomes
/// the stored columns (the status as its RFC 3463 text).
fn stored(claim: &Claim, state: RecipientState, report: &Report, next_attempt_at: Option<Timestamp>) -> Attempt {
    Attempt {
        recipient: claim.recipient,
        message: claim.message.clone(),
        state,
        status: report.status,
        // The journey says which TLS policy a delivery ran under.
        detail: match &report.tls_policy {
            Some(policy) => format!("{} (TLS policy: {policy})", report.detail),
            None => report.detail.clone(),
        },
        reply_code: report.reply_code,
        remote: report.remote.clone(),
        next_attempt_at,
        mailbox_bytes: None,
        event: None,
    }
}

/// The address to deliver a remote claim to: an alias target, or the recipient itself.
fn delivery_address(claim: &Claim) -> &str {
    match &claim.destination {
        Destination::Forward(target) => target,
        _ => &claim.address,
    }
}

/// Groups claims into jobs: one per (message, destination domain), in claim order.
fn group_jobs(claims: Vec<Claim>) -> Vec<(String, Vec<Claim>)> {
    let mut index: HashMap<(MessageId, String), usize> = HashMap::new();
    let mut jobs: Vec<(String, Vec<Claim>)> = Vec::new();
    for claim in claims {
        let domain = delivery_address(&claim).rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
        let key = (claim.message.clone(), domain.clone());
        match index.get(&key).and_then(|&i| jobs.get_mut(i)) {
            Some((_, list)) => list.push(claim),
            None => {
                index.insert(key, jobs.len());
                jobs.push((domain, vec![claim]));
            }
        }
    }
    jobs
}
