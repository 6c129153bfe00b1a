//! Cluster-wide connection limits per destination, kept in the shared store.
//!
//! When several nodes share a PostgreSQL store, each connection to a destination holds one of
//! its `max_connections_per_destination` slots there: a row leased to this node, renewed with
//! the node's recipient leases while the connection lives and given back when it closes (the
//! guard's drop). A node that dies stops renewing, so its slots free themselves when their
//! leases end. The per-node semaphore in `pool` still applies; this adds the cluster's sum.
//! Must not: be used on a store only one process uses (the semaphore is exact there), or wait
//! for a slot without bound.

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use crate::store::Store;
use crate::time::Timestamp;

/// How long a delivery waits for a slot before it is deferred (4.4.5) and retried later.
const MAX_WAIT: Duration = Duration::from_secs(300);
const FIRST_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(2);

pub struct Slots {
    store: Arc<dyn Store>,
    owner: String,
    lease: Duration,
}

/// One held slot; dropping it gives the slot back (in the background).
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
    pub fn new(store: Arc<dyn Store>, owner: String, lease: Duration) -> Arc<Slots> {
        Arc::new(Slots { store, owner, lease })
    }

    /// Waits (polling with backoff) for one of `limit` slots of `destination`.
    pub async fn acquire(self: &Arc<Self>, destination: &str, limit: u32) -> Result<SlotGuard, SlotError> {
        let started = tokio::time::Instant::now();
        let mut poll = FIRST_POLL;
        loop {
            let now = Timestamp::now();
            match self.store.acquire_slot(destination, limit, &self.owner, now, now.plus(self.lease)).await {
                Ok(Some(slot)) => {
                    return Ok(SlotGuard { slots: self.clone(), destination: destination.to_string(), slot });
                }
                Ok(None) if started.elapsed() < MAX_WAIT => {}
                Ok(None) => return Err(SlotError::Busy),
                Err(e) => return Err(SlotError::Store(e.to_string())),
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(MAX_POLL);
        }
    }

    /// Extends the leases of every slot this node holds (called with the recipient renewals).
    pub async fn renew(&self) {
        if let Err(e) = self.store.renew_slots(&self.owner, Timestamp::now().plus(self.lease)).await {
            warn!(error = %e, "renewing connection slots failed; they free themselves when their leases end");
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let (slots, destination, slot) = (self.slots.clone(), std::mem::take(&mut self.destination), self.slot);
        // Outside a runtime (process exit) the lease simply runs out.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = slots.store.release_slot(&destination, slot, &slots.owner).await {
                    warn!(error = %e, %destination, slot, "giving back a connection slot failed; its lease will end");
                }
            });
        }
    }
}
