//! Group commit on PostgreSQL: concurrent callers of one hot write (message insert, attempt
//! record, body release) are gathered into one statement, so N waiting writes cost one
//! statement and one COMMIT instead of N.
//!
//! A request goes on a channel. Up to `FLUSHERS` tasks each take every request waiting (up
//! to a count and a byte bound), run them as one statement on a pooled connection, and answer
//! each caller once that statement's COMMIT has returned. A lone request is sent at once:
//! batching only gathers what queued up behind flushes already running. When a batch of
//! several fails with a server error, each request is run again alone, so one bad request
//! (a duplicate id, a deadlock victim) cannot fail its neighbours.
//! Must not: answer a caller before the COMMIT of the statement that holds its request, or
//! hold a request back while a flusher is free.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::pool::{Conn, Pool};
use crate::store::StoreError;

/// Statements in flight at once per kind of write; the rest of the pool serves reads.
const FLUSHERS: usize = 3;
/// Bounds on one statement: requests, and bytes of message bodies.
const MAX_REQUESTS: usize = 128;
const MAX_BYTES: usize = 16 << 20;

/// A write that can be run for many requests in one statement.
pub(super) trait Batched: Send + Sync + Sized + 'static {
    /// What each caller gets back.
    type Output: Send + 'static;

    /// Bytes this request adds to its statement (message bodies), to bound a batch's size.
    fn weight(&self) -> usize {
        0
    }

    /// Runs `batch` as one statement (its own transaction); Ok only after it committed, with
    /// one output per request, in order.
    fn write<'a>(
        conn: &'a mut Conn,
        batch: &'a [Self],
    ) -> impl Future<Output = Result<Vec<Self::Output>, StoreError>> + Send + 'a;
}

type Request<T> = (T, oneshot::Sender<Result<<T as Batched>::Output, StoreError>>);

/// The entry point of one kind of batched write.
pub(super) struct Batcher<T: Batched> {
    queue: mpsc::UnboundedSender<Request<T>>,
}

impl<T: Batched> Batcher<T> {
    /// Starts the flushers; they stop when the batcher is dropped. The queue needs no bound of
    /// its own: it never holds more requests than there are callers awaiting one.
    pub fn start(pool: Arc<Pool>) -> Batcher<T> {
        let (queue, requests) = mpsc::unbounded_channel();
        let requests = Arc::new(Mutex::new(requests));
        for _ in 0..FLUSHERS {
            tokio::spawn(flusher(pool.clone(), requests.clone()));
        }
        Batcher { queue }
    }

    /// Writes `item` together with whatever else is waiting; returns after its COMMIT.
    pub async fn write(&self, item: T) -> Result<T::Output, StoreError> {
        let (done, answer) = oneshot::channel();
        self.queue.send((item, done)).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn flusher<T: Batched>(pool: Arc<Pool>, requests: Arc<Mutex<mpsc::UnboundedReceiver<Request<T>>>>) {
    loop {
        let batch = {
            let mut requests = requests.lock().await;
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
    match write(pool, items).await {
        Ok(outputs) => outputs.into_iter().map(Ok).collect(),
        Err(e) if items.len() > 1 && is_server_error(&e) => {
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                let alone = write(pool, std::slice::from_ref(item)).await;
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

async fn write<T: Batched>(pool: &Pool, items: &[T]) -> Result<Vec<T::Output>, StoreError> {
    let mut conn = pool.get().await?;
    let result = T::write(&mut conn, items).await;
    conn.finish(&result);
    result
}

fn is_server_error(e: &StoreError) -> bool {
    matches!(e, StoreError::Postgres(e) if e.as_db_error().is_some())
}
