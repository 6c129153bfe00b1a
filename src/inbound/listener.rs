//! Accept loop of one listening socket: one task per connection, the listener's own pool of
//! session slots, and the per-client limits.
//!
//! Standards: RFC 5321 §3.8 / DESIGN §4 (421 4.3.2 when overloaded or shutting down); 421 4.7.0
//! to a client over its own limits (Postfix's anvil replies).
//! Every session holds a permit of its listener's semaphore (MX and submission have separate
//! pools, so one cannot starve the other) and, unless the client is in a trusted network, a
//! per-client session of `anvil`. A client beyond either gets its 421 and is closed without a
//! session; the reply is written by a short task with a deadline, so a client that does not
//! read cannot hold the accept loop.
//! Must not: read commands; that is `connection`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::anvil::Over;
use super::{Context, ListenerKind, connection, policy, replies};
use crate::smtp::reply::SmtpReply;

pub async fn run(ctx: Arc<Context>, listener: TcpListener, kind: ListenerKind, slots: Arc<Semaphore>) {
    loop {
        let (socket, addr) = match listener.accept().await {
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
                debug!(client = %addr, listener = kind.as_str(), "refused: listener full or shutting down");
                refuse(socket, replies::service_unavailable());
                continue;
            }
        };
        let ip = addr.ip();
        let client = if policy::is_trusted(&ctx, ip) {
            None
        } else {
            match ctx.anvil.connect(ip, Instant::now()) {
                Ok(session) => session,
                Err(over) => {
                    crate::metrics::client_limited(over.as_str());
                    let key = super::anvil::ClientKey::of(ip).to_string();
                    info!(client = %addr, limit = over.as_str(), "refused: per-client limit");
                    let reply = match over {
                        Over::ConnectionRate => replies::connection_rate_from(&key),
                        _ => replies::too_many_connections_from(&key),
                    };
                    refuse(socket, reply);
                    continue;
                }
            }
        };
        let ctx = ctx.clone();
        crate::metrics::connection_opened();
        let local = socket.local_addr().ok();
        tokio::spawn(async move {
            connection::serve(ctx, Box::new(socket), addr, local, kind).await;
            crate::metrics::connection_closed();
            drop(client);
            drop(permit);
        });
    }
}

/// Writes `reply` and closes, within 5 seconds, off the accept loop.
fn refuse(mut socket: TcpStream, reply: SmtpReply) {
    tokio::spawn(async move {
        let bye = reply.render();
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.write_all(bye.as_bytes())).await;
    });
}
