//! Per-destination connection reuse and limits.
//!
//! A destination is the recipient domain (or the static route). At most
//! `max_connections_per_destination` deliveries run to one destination at once (a semaphore
//! each); idle connections are kept for reuse up to `idle_timeout`, and a connection is retired
//! after `max_messages_per_connection` transactions.
//! Must not: send mail or decide outcomes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::client::Connection;

pub struct Pool {
    idle: Mutex<HashMap<String, Vec<(Connection, Instant)>>>,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    max_per_destination: usize,
    max_messages: u32,
    idle_timeout: Duration,
}

impl Pool {
    pub fn new(max_per_destination: usize, max_messages: u32, idle_timeout: Duration) -> Self {
        Self {
            idle: Mutex::new(HashMap::new()),
            limits: Mutex::new(HashMap::new()),
            max_per_destination: max_per_destination.max(1),
            max_messages: max_messages.max(1),
            idle_timeout,
        }
    }

    /// The semaphore limiting concurrent deliveries to `destination`.
    pub fn limit(&self, destination: &str) -> Arc<Semaphore> {
        let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        if limits.len() > 10_000 {
            // Forget idle destinations (no permit out) so the map stays bounded.
            let max = self.max_per_destination;
            limits.retain(|_, s| s.available_permits() < max);
        }
        limits
            .entry(destination.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.max_per_destination)))
            .clone()
    }

    /// A fresh-enough idle connection to `destination`, if any.
    pub fn take(&self, destination: &str) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(destination)?;
        while let Some((conn, since)) = list.pop() {
            if since.elapsed() < self.idle_timeout {
                return Some(conn);
            }
            tokio::spawn(conn.quit());
        }
        None
    }

    /// Returns a healthy connection for reuse, or closes it when it has done enough.
    pub fn put(&self, destination: &str, conn: Connection) {
        if conn.transactions >= self.max_messages {
            tokio::spawn(conn.quit());
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(destination.to_string()).or_default();
        if list.len() >= self.max_per_destination {
            tokio::spawn(conn.quit());
            return;
        }
        list.push((conn, Instant::now()));
    }

    /// Closes connections idle for longer than the timeout.
    pub fn sweep(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        for list in idle.values_mut() {
            let (keep, stale): (Vec<_>, Vec<_>) =
                list.drain(..).partition(|(_, since)| since.elapsed() < self.idle_timeout);
            *list = keep;
            for (conn, _) in stale {
                tokio::spawn(conn.quit());
            }
        }
        idle.retain(|_, l| !l.is_empty());
    }
}
