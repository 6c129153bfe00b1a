//! A small connection pool for tokio-postgres: at most `size` connections, idle ones reused,
//! closed ones replaced, prepared statements cached per connection.
//!
//! A connection goes back to the pool only through `Lease::finish` after an operation ran to
//! its end; a lease dropped without it (its future was cancelled mid-transaction) closes the
//! connection, so no half-done transaction is ever handed to the next caller.
//! Must not: block the runtime, or hand out a connection that another task is using.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, NoTls, Statement};
use tracing::warn;

use crate::store::StoreError;

pub(super) struct Pool {
    config: tokio_postgres::Config,
    /// SQL every new connection of this pool runs once (session settings).
    session: Option<&'static str>,
    idle: Mutex<Vec<Conn>>,
    slots: Semaphore,
}

/// One connection and the statements prepared on it.
pub(super) struct Conn {
    pub client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    /// The prepared form of `sql` on this connection (prepared on first use).
    pub async fn stmt(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).await?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

/// A connection taken from the pool.
pub(super) struct Lease<'a> {
    pool: &'a Pool,
    conn: Conn,
    _slot: SemaphorePermit<'a>,
}

impl Pool {
    pub fn new(config: tokio_postgres::Config, size: usize, session: Option<&'static str>) -> Pool {
        Pool { config, session, idle: Mutex::new(Vec::with_capacity(size)), slots: Semaphore::new(size.max(1)) }
    }

    pub async fn get(&self) -> Result<Lease<'_>, StoreError> {
        let slot = self.slots.acquire().await.map_err(|_| StoreError::Closed)?;
        let reused = {
            let mut idle = self.idle.lock().map_err(|_| StoreError::Closed)?;
            let mut found = None;
            while let Some(c) = idle.pop() {
                if !c.client.is_closed() {
                    found = Some(c);
                    break;
                }
            }
            found
        };
        let conn = match reused {
            Some(c) => c,
            None => self.connect().await?,
        };
        Ok(Lease { pool: self, conn, _slot: slot })
    }

    async fn connect(&self) -> Result<Conn, StoreError> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                warn!(error = %e, "PostgreSQL connection closed");
            }
        });
        super::ensure_durable(&client).await?;
        if let Some(session) = self.session {
            client.batch_execute(session).await?;
        }
        Ok(Conn { client, statements: HashMap::new() })
    }
}

impl Lease<'_> {
    /// Returns the connection to the pool unless it broke (a server-side error such as a
    /// constraint violation leaves it usable: its transaction was rolled back).
    pub fn finish<T>(self, result: &Result<T, StoreError>) {
        let keep = match result {
            Ok(_) => true,
            Err(StoreError::Postgres(e)) => e.as_db_error().is_some(),
            Err(_) => true,
        };
        if keep
            && !self.conn.client.is_closed()
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push(self.conn);
        }
    }
}

impl Deref for Lease<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}
