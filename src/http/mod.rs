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
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::feedback::evidence::Verifier;
use crate::inbound::Context;

/// What every handler can reach: the SMTP side's context (store, config, DKIM, DNS, wakeup)
/// and the bounce verifier.
pub struct AppState {
    pub ctx: Arc<Context>,
    pub verifier: Verifier,
    /// Logged-in dashboard admins.
    pub sessions: dashboard::Sessions,
}

/// Serves the API on `listener` until `shutdown` flips to true.
pub async fn serve(listener: TcpListener, state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let app: Router = api::router(state);
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    // The peer address reaches handlers (the dashboard login's limiter counts per client network).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
        tracing::warn!(error = %e, "HTTP listener failed");
    }
}
