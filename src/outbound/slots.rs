//! Cluster-wide connection limits per destination, kept in the shared store.
//!
//! When several nodes share a PostgreSQL store, each delivery to a destination (a connection
//! in use) holds one of its `max_connections_per_destination` slots there: a row leased to
//! this node, renewed with the node's recipient leases. A slot a delivery gives back stays
//! with the node for `LINGER` (the next delivery to that destination takes it without asking
//! the store); after that the janitor returns it, so a node with nothing more to send there
//! never blocks the others for long. A node that dies stops renewing, and its slots free
//! themselves when their leases end. The per-node semaphore in `pool` still applies; this
//! adds the cluster's sum.
//! Deliveries of this node waiting for a slot of one destination do not each ask the store:
//! one asks at a time (backing off while all are taken), and a slot a delivery gives back is
//! handed at once to a waiter of this node (`freed`), so a busy slot never idles for a poll.
//! The one exception to "outbound never writes the store" (DESIGN §2, rule 2): the slot rows
//! are written here, through the narrow `store::ClusterStore` (acquire, renew, release a slot)
//! and nothing else; outcomes still go back to the scheduler as values.
//! Must not: be used on a store only one process uses (the semaphore is exact there; such a
//! store has no `ClusterStore`), write anything but slots, or wait for a slot without bound.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::warn;

use crate::store::ClusterStore;
use crate::time::Timestamp;

/// How long a delivery waits for a slot before it is deferred (4.4.5) and retried later.
const MAX_WAIT: Duration = Duration::from_secs(300);
const FIRST_POLL: Duration = Duration::from_millis(20);
const MAX_POLL: Duration = Duration::from_millis(500);
/// How long a node keeps a slot no delivery uses before it gives it back to the cluster.
pub const LINGER: Duration = Duration::from_millis(500);

pub struct Slots {
    store: Arc<dyn ClusterStore>,
    owner: String,
    lease: Duration,
    /// Slots this node holds in the store but no delivery uses: destination → (slot, since).
    spare: Mutex<HashMap<String, Vec<(u32, Instant)>>>,
    /// Every slot this node holds (in use or spare): what renewal extends. A slot leaves it
    /// when it is given back or its renewal found it lost, also when the give-back failed
    /// (its lease then simply runs out).
    held: Mutex<HashSet<(String, u32)>>,
    /// Per destination: the waiters' wakeup and the right to ask the store.
    waiting: Mutex<HashMap<String, Arc<Waiting>>>,
}

#[derive(Default)]
struct Waiting {
    /// Signalled when a delivery of this node gives a slot back.
    freed: Notify,
    /// Held by the one waiter asking the store.
    asking: tokio::sync::Mutex<()>,
}

/// One slot a delivery holds; dropping it hands the slot to the node's spares.
pub struct SlotGuard {
    slots: Arc<Slots>,
    destination: String,
    slot: u32,
}

/// Why no slot was had.
#[derive(Debug)]
pub enum SlotError {
    /// All slots stayed taken for `MAX_WAIT`.
    Busy,
    /// The store could not be asked.
    Store(String),
}

impl Slots {
    pub fn new(store: Arc<dyn ClusterStore>, owner: String, lease: Duration) -> Arc<Slots> {
        Arc::new(Slots {
            store,
            owner,
            lease,
            spare: Mutex::new(HashMap::new()),
            held: Mutex::new(HashSet::new()),
            waiting: Mutex::new(HashMap::new()),
        })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<(String, u32)>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spares(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<(u32, Instant)>>> {
        self.spare.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn waiting(&self, destination: &str) -> Arc<Waiting> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.entry(destination.to_string()).or_default().clone()
    }

    fn take_spare(&self, destination: &str) -> Option<u32> {
        self.spares().get_mut(destination).and_then(Vec::pop).map(|(slot, _)| slot)
    }

    /// A slot of `destination`: one of this node's spares, or one of `limit` from the store
    /// (waiting while all are taken: for a slot this node gives back, or to ask again, with
    /// backoff).
    pub async fn acquire(self: &Arc<Self>, destination: &str, limit: u32) -> Result<SlotGuard, SlotError> {
        let guard = |slot| SlotGuard { slots: self.clone(), destination: destination.to_string(), slot };
        let waiting = self.waiting(destination);
        let started = tokio::time::Instant::now();
        let mut poll = FIRST_POLL;
        loop {
            // Registered before looking, so a slot given back in between still wakes us.
            let freed = waiting.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.take_spare(destination) {
                return Ok(guard(slot));
            }
            if let Ok(_asking) = waiting.asking.try_lock() {
                let now = Timestamp::now();
                match self.store.acquire_slot(destination, limit, &self.owner, now, now.plus(self.lease)).await {
                    Ok(Some(slot)) => {
                        self.held().insert((destination.to_string(), slot));
                        return Ok(guard(slot));
                    }
                    Ok(None) => {}
                    Err(e) => return Err(SlotError::Store(e.to_string())),
                }
            }
            if started.elapsed() >= MAX_WAIT {
                return Err(SlotError::Busy);
            }
            tokio::select! {
                _ = freed => {}
                _ = tokio::time::sleep(poll) => poll = (poll * 2).min(MAX_POLL),
            }
        }
    }

    /// Extends the leases of the slots this node holds (called with the recipient renewals);
    /// a slot found lost (its lease ran out, e.g. while the store was away) is forgotten, so
    /// no delivery uses it again.
    pub async fn renew(&self) {
        let held: Vec<(String, u32)> = self.held().iter().cloned().collect();
        match self.store.renew_slots(&self.owner, &held, Timestamp::now().plus(self.lease)).await {
            Ok(renewed) => {
                let renewed: HashSet<(String, u32)> = renewed.into_iter().collect();
                let lost: Vec<&(String, u32)> = held.iter().filter(|h| !renewed.contains(*h)).collect();
                if !lost.is_empty() {
                    warn!(lost = lost.len(), "connection slots were lost (their lease ran out); forgetting them");
                    let mut h = self.held();
                    for l in &lost {
                        h.remove(*l);
                    }
                    drop(h);
                    for (destination, list) in self.spares().iter_mut() {
                        list.retain(|(slot, _)| !lost.iter().any(|(d, n)| d == destination && n == slot));
                    }
                }
            }
            Err(e) => warn!(error = %e, "renewing connection slots failed; they free themselves when their leases end"),
        }
    }

    /// Gives back to the cluster the spares unused for `older_than` (all of them with ZERO).
    pub async fn give_back(&self, older_than: Duration) {
        let mut stale = Vec::new();
        self.spares().retain(|destination, list| {
            list.retain(|(slot, since)| {
                let keep = since.elapsed() < older_than;
                if !keep {
                    stale.push((destination.clone(), *slot));
                }
                keep
            });
            !list.is_empty()
        });
        for (destination, slot) in stale {
            self.held().remove(&(destination.clone(), slot));
            if let Err(e) = self.store.release_slot(&destination, slot, &self.owner).await {
                warn!(error = %e, %destination, slot, "giving back a connection slot failed; its lease will end");
            }
        }
    }

    /// Every `LINGER / 2`, gives back the spares no delivery took within `LINGER`.
    pub async fn run_janitor(self: Arc<Self>) {
        loop {
            tokio::time::sleep(LINGER / 2).await;
            self.give_back(LINGER).await;
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let destination = std::mem::take(&mut self.destination);
        // A slot renewal found lost goes nowhere: it is someone else's now.
        if self.slots.held().contains(&(destination.clone(), self.slot)) {
            let waiting = self.slots.waiting(&destination);
            self.slots.spares().entry(destination).or_default().push((self.slot, Instant::now()));
            waiting.freed.notify_one();
        }
    }
}
