//! `/api/v1`: the routes, declared once in [`ROUTES`] and mounted by [`router`]; the OpenAPI
//! document (`openapi.json`, served at `/api/v1/openapi.json`) lists every one of them.
//!
//! Must not: hold business logic (handlers call `accept`, `inbound::policy`, `checklist`,
//! `feedback` and the store), or accept bodies larger than the message size limit allows.

pub mod batch;
pub mod body;
pub mod events;
pub mod idempotency;
pub mod messages;
pub mod raw;
pub mod suppressions;
pub mod template_size;
pub mod templates;
pub mod tools;
pub mod verdicts;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use super::AppState;
use super::problem::Problem;

/// Every route: (method, path as in the OpenAPI document).
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/messages"),
    ("get", "/api/v1/messages"),
    ("post", "/api/v1/messages/batch"),
    ("post", "/api/v1/messages/raw"),
    ("get", "/api/v1/messages/{id}"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/suppressions"),
    ("post", "/api/v1/suppressions"),
    ("get", "/api/v1/suppressions/{address}"),
    ("delete", "/api/v1/suppressions/{address}"),
    ("get", "/api/v1/templates"),
    ("get", "/api/v1/templates/{name}"),
    ("put", "/api/v1/templates/{name}"),
    ("delete", "/api/v1/templates/{name}"),
    ("post", "/api/v1/check/address"),
    ("post", "/api/v1/check/domain"),
    ("post", "/api/v1/check/message"),
    ("post", "/api/v1/bounces/parse"),
    ("post", "/api/v1/bounces/verify"),
    ("post", "/api/v1/bounces/{id}/verdict"),
    ("get", "/api/v1/openapi.json"),
];

pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router(state: Arc<AppState>) -> Router {
    // base64 makes attachments a third larger; JSON adds a little more.
    let limit = usize::try_from(state.ctx.config.limits.max_message_size.saturating_mul(4) / 3 + 64 * 1024)
        .unwrap_or(usize::MAX);
    Router::new()
        .route("/api/v1/messages", post(messages::send).get(messages::search))
        .route("/api/v1/messages/batch", post(batch::send))
        .route("/api/v1/messages/raw", post(raw::send))
        .route("/api/v1/messages/{id}", get(messages::show))
        .route("/api/v1/events", get(events::list))
        .route("/api/v1/suppressions", get(suppressions::list).post(suppressions::add))
        .route("/api/v1/suppressions/{address}", get(suppressions::show).delete(suppressions::remove))
        .route("/api/v1/templates", get(templates::list))
        .route("/api/v1/templates/{name}", get(templates::show).put(templates::put).delete(templates::remove))
        .route("/api/v1/check/address", post(tools::check_address))
        .route("/api/v1/check/domain", post(tools::check_domain))
        .route("/api/v1/check/message", post(tools::check_message))
        .route("/api/v1/bounces/parse", post(tools::parse_bounce))
        .route("/api/v1/bounces/verify", post(tools::verify_bounce))
        .route("/api/v1/bounces/{id}/verdict", post(verdicts::set))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .merge(super::dashboard::router())
        .merge(super::unsubscribe::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Prometheus text (no key: bind `listen.http` where only your scraper reaches it).
async fn metrics(axum::extract::State(state): axum::extract::State<Arc<AppState>>) -> impl IntoResponse {
    let queue = state.ctx.store.queue_depth().await.ok();
    let now = crate::time::Timestamp::now();
    let oldest = state.ctx.store.oldest_deferred().await.ok().flatten();
    let oldest = oldest
        .and_then(|o| crate::time::Timestamp::parse_iso8601(&o.received_at))
        .map(|t| (now.millis().saturating_sub(t.millis()).max(0) / 1000) as u64);
    let text = crate::metrics::render(queue, oldest, state.ctx.auth.stats());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn not_found() -> Problem {
    let mut p = Problem::not_found("no such route; see /api/v1/openapi.json");
    p.field = Some("path".into());
    p
}
