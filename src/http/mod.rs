//! The HTTP side: the listener (`listen.http`) with the JSON API under `/api/v1` for
//! applications that send mail, its OpenAPI document and `/metrics`, the dashboard under
//! `/dashboard` (server-rendered HTML behind a login); and the webhook senders. Routes are declared once in [`api::ROUTES`] (a test checks
//! that the OpenAPI document lists each of them).
//!
//! Standards: RFC 9110 (HTTP semantics), RFC 9457 (problem details), RFC 6750 (bearer keys).
//! Must not: bypass `accept` (API mail enters the queue through the same door as SMTP), or
//! hold SQL (that is `store/`).

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod problem;
pub mod unsubscribe;
pub mod webhooks;

use std::sync::Arc;

use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::feedback::evidence::Verifier;
use crate::inbound::Context;

/// What every handler can reach: the SMTP side's context (store, config, DKIM, DNS, wakeup)
/// and the bounce verifier.
pub struct AppState {
    pub ctx: Arc<Context>,
    pub verifier: Verifier,
    /// Logged-in dashboard admins.
    pub sessions: dashboard::Sessions,
    /// Idempotency keys of API requests in progress on this node.
    pub idempotency: api::idempotency::InFlight,
}

/// Serves the API on `listener` until `shutdown` flips to true, at most `max_connections`
/// connections at once (a connection beyond that gets `503` and is closed at once).
///
/// Each connection is HTTP/1.1 with keep-alive; the request head must arrive within
/// `limits.http_header_timeout`, which also closes a keep-alive connection left idle that long
/// (hyper starts the timer as soon as it waits for the next head); a whole request (body read
/// and handler) must finish within `limits.http_request_timeout` (`408` otherwise); bodies are
/// capped by the API router. So idle or trickling clients cost a bounded number of
/// descriptors for a bounded time, and cannot starve SMTP of descriptors.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    max_connections: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = state.ctx.config.limits.clone();
    let app: Router =
        api::router(state).layer(axum::middleware::from_fn_with_state(limits.http_request_timeout, request_deadline));
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.http_header_timeout).keep_alive(true);
    loop {
        let (socket, addr) = tokio::select! {
            biased;
            _ = async { shutdown.wait_for(|s| *s).await.is_ok() } => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, listener = "http", "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            crate::metrics::http_refused();
            tracing::debug!(client = %addr, "HTTP refused: over max_http_connections");
            tokio::spawn(async move {
                let mut socket = socket;
                let busy = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                let _ = tokio::time::timeout(Duration::from_secs(2), socket.write_all(busy)).await;
            });
            continue;
        };
        let _ = socket.set_nodelay(true);
        // The peer address reaches handlers (the dashboard login's limiter counts per client).
        let service = TowerToHyperService::new(app.clone().map_request(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(axum::extract::ConnectInfo(addr));
            req
        }));
        let conn = http.serve_connection(TokioIo::new(socket), service);
        let mut stop = shutdown.clone();
        crate::metrics::http_opened();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let stopping = async move { stop.wait_for(|s| *s).await.is_ok() };
            let done = tokio::select! {
                _ = conn.as_mut() => true,
                _ = stopping => false,
            };
            if !done {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(10), conn.as_mut()).await;
            }
            crate::metrics::http_closed();
            drop(permit);
        });
    }
}

/// Answers `408` when a request (reading its body included) takes longer than `limit`.
async fn request_deadline(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => problem::Problem::timeout(limit).into_response(),
    }
}
