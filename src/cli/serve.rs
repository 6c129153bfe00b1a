//! `mailerd serve`: runs the daemon until SIGTERM or Ctrl-C, then shuts down gracefully.
//!
//! Must not: contain daemon logic; that is `daemon`.

use anyhow::Result;
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use crate::config::Config;
use crate::daemon;

pub async fn run(config: Config) -> Result<i32> {
    // Registered first: a SIGTERM during start-up stops the daemon gracefully once it runs.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let handle = daemon::start(config).await?;
    let stopper = handle.stopper();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM received"),
            _ = int.recv() => info!("SIGINT received"),
        }
        let _ = stopper.send(true);
    });
    handle.wait().await?;
    Ok(0)
}
