//! Group commit on PostgreSQL: concurrent callers of one hot operation (message insert,
//! attempt record, body release; the report facts read after a record, the suppression and
//! pause lookups at RCPT) are gathered into one statement, so N waiting callers cost one statement (and, for a write, one COMMIT) instead of N.
//!
//! A request goes on a channel. One flusher task per kind of operation takes every request
//! waiting (up to a count and a byte bound), runs them as one transaction on a pooled
//! connection, and answers each caller once its COMMIT has returned. A lone request is sent at
//! once: batching only gathers what queued up behind the flush already running. When a batch
//! of several fails on a fault of its data (SQLSTATE class 22, 23 or 40: a bad value, a
//! duplicate id, a deadlock), each request is run again alone, so one bad request cannot fail
//! its neighbours; any other failure (the server away or refusing) is every caller's answer at
//! once.
//!
//! One flusher, not several: under `bench/cluster.sh` three per kind split the waiting
//! requests over three statements, and PostgreSQL's cost is mostly per statement (executor
//! start, commit, WAL flush). With one, a node made 0.65–0.73 commits per delivered message
//! instead of 2.2–2.6, the server used 0.21–0.23 ms of CPU per message instead of 0.34–0.37,
//! and delivered 0.72× SQLite's rate instead of 0.57× (`ROUNDS=3 CONFIGS="sqlite pg1"`).
//! Must not: answer a caller before the COMMIT of the transaction that holds its request, hold
//! a request back while its flusher is idle, or rerun a batch of which any part may have committed
//! (a `Batched` run is one transaction, all or nothing).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::pool::{Conn, Pool};
use crate::store::StoreError;

/// Bounds on one statement: requests, and bytes of message bodies (a batch stops taking
/// requests once past it, so it carries at most this plus one message).
const MAX_REQUESTS: usize = 128;
const MAX_BYTES: usize = 16 << 20;

/// An operation that can be run for many requests in one transaction.
pub(super) trait Batched: Send + Sync + Sized + 'static {
    /// What each caller gets back.
    type Output: Send + 'static;

    /// Bytes this request adds to its statement (message bodies), to bound a batch's size.
    fn weight(&self) -> usize {
        0
    }

    /// Runs `batch` as one transaction (one statement where it can); Ok only after it
    /// committed, with one output per request, in order. A failed run must have committed
    /// nothing: it may be run again, request by request.
    fn run<'a>(
        conn: &'a mut Conn,
        batch: &'a [Self],
    ) -> impl Future<Output = Result<Vec<Self::Output>, StoreError>> + Send + 'a;
}

type Request<T> = (T, oneshot::Sender<Result<<T as Batched>::Output, StoreError>>);

/// The entry point of one kind of batched operation.
pub(super) struct Batcher<T: Batched> {
    queue: mpsc::UnboundedSender<Request<T>>,
}

impl<T: Batched> Batcher<T> {
    /// Starts the flusher; it stops when the batcher is dropped. The queue needs no bound of
    /// its own: it holds at most one request per caller that sent one (a caller that gave up
    /// waiting still has its request run: an insert may commit without its 250, as a COMMIT
    /// whose reply was lost would).
    pub fn start(pool: Arc<Pool>) -> Batcher<T> {
        let (queue, requests) = mpsc::unbounded_channel();
        tokio::spawn(flusher(pool, requests));
        Batcher { queue }
    }

    /// Runs `item` together with whatever else is waiting; returns after its COMMIT.
    pub async fn submit(&self, item: T) -> Result<T::Output, StoreError> {
        let (done, answer) = oneshot::channel();
        self.queue.send((item, done)).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn flusher<T: Batched>(pool: Arc<Pool>, mut requests: mpsc::UnboundedReceiver<Request<T>>) {
    loop {
        let batch = {
            let Some(first) = requests.recv().await else { return };
            let mut bytes = first.0.weight();
            let mut batch = vec![first];
            while batch.len() < MAX_REQUESTS && bytes < MAX_BYTES {
                match requests.try_recv() {
                    Ok(r) => {
                        bytes += r.0.weight();
                        batch.push(r);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        let (items, callers): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
        for (caller, result) in callers.into_iter().zip(flush(&pool, &items).await) {
            let _ = caller.send(result);
        }
    }
}

/// One result per item: the batch's, or, when a batch of several failed with a server error,
/// each item's own from running it alone.
async fn flush<T: Batched>(pool: &Pool, items: &[T]) -> Vec<Result<T::Output, StoreError>> {
    match run_once(pool, items).await {
        Ok(outputs) => outputs.into_iter().map(Ok).collect(),
        Err(e) if items.len() > 1 && is_fault_of_the_data(&e) => {
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                let alone = run_once(pool, std::slice::from_ref(item)).await;
                results.push(alone.and_then(|mut o| o.pop().ok_or(StoreError::Closed)));
            }
            results
        }
        Err(e) if items.len() == 1 => vec![Err(e)],
        // The server is away: every caller gets the same cause.
        Err(e) => {
            let shared = Arc::new(e);
            items.iter().map(|_| Err(StoreError::Shared(shared.clone()))).collect()
        }
    }
}

async fn run_once<T: Batched>(pool: &Pool, items: &[T]) -> Result<Vec<T::Output>, StoreError> {
    let mut conn = pool.get().await?;
    let result = T::run(&mut conn, items).await.and_then(|outputs| {
        if outputs.len() == items.len() {
            Ok(outputs)
        } else {
            Err(StoreError::Corrupt(format!("a batch of {} gave {} answers", items.len(), outputs.len())))
        }
    });
    conn.finish(&result);
    result
}

/// A failure that belongs to some request of the batch rather than to the server: a data
/// exception (22), an integrity constraint (23), a rolled-back transaction (40: deadlock,
/// serialization). Connection, resource and operator errors (08, 53, 57) are nobody's own.
fn is_fault_of_the_data(e: &StoreError) -> bool {
    let StoreError::Postgres(e) = e else { return false };
    e.as_db_error().is_some_and(|db| matches!(db.code().code().get(..2), Some("22" | "23" | "40")))
}
