//! Accept loop of one listening socket: one task per connection, a global connection limit.
//!
//! Standards: RFC 5321 §3.8 / DESIGN §4 (421 4.3.2 when overloaded or shutting down).
//! Every session holds a permit of the shared semaphore (`limits.max_connections` in all);
//! a client beyond the limit gets 421 4.3.2 and is closed without a session.
//! Must not: read commands; that is `connection`.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use super::{Context, ListenerKind, connection, replies};

pub async fn run(ctx: Arc<Context>, listener: TcpListener, kind: ListenerKind, slots: Arc<Semaphore>) {
    loop {
        let (mut socket, addr) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(error = %e, listener = kind.as_str(), "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) if !ctx.shutting_down() => p,
            _ => {
                crate::metrics::connection_refused();
                debug!(client = %addr, "refused: over max_connections or shutting down");
                tokio::spawn(async move {
                    let bye = replies::service_unavailable().render();
                    let _ = tokio::time::timeout(Duration::from_secs(5), socket.write_all(bye.as_bytes())).await;
                });
                continue;
            }
        };
        let ctx = ctx.clone();
        crate::metrics::connection_opened();
        tokio::spawn(async move {
            connection::serve(ctx, Box::new(socket), addr, kind).await;
            crate::metrics::connection_closed();
            drop(permit);
        });
    }
}
