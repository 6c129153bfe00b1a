//! `/u/TOKEN`: one-click unsubscribe (RFC 8058) on the HTTP listener.
//!
//! `POST /u/TOKEN` is what a mailbox provider sends when its user clicks "unsubscribe"
//! (`List-Unsubscribe=One-Click` in the body): the token is verified without the store, the
//! recipient is suppressed for the sender domain's mail (`bounce::unsubscribe::record`) and the
//! answer is 200 — no login, no confirmation, no redirect (RFC 8058 §3.2). `GET /u/TOKEN` is a
//! person following the link: a small confirmation page whose button makes the same POST,
//! because link scanners and previews fetch URLs and must not unsubscribe anyone.
//! A token that does not verify is 400 and changes nothing.
//! Must not: unsubscribe on GET, set cookies, or reveal more than the page's own address.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::dashboard::html::esc;
use crate::bounce::unsubscribe::{self, Unsubscribe, Via};

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/u/{token}", get(confirm).post(one_click))
}

/// The confirmation page for people who follow the link.
async fn confirm(State(state): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    match state.ctx.unsubscribe.verify_link(&token) {
        Err(_) => invalid(),
        Ok(u) => page(
            StatusCode::OK,
            "Unsubscribe",
            &format!(
                "<p>Stop mail from <b>{domain}</b> to <b>{rcpt}</b>?</p>\
                 <form method=\"post\" action=\"/u/{token}\">\
                 <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
                 <button type=\"submit\" id=\"unsubscribe\">Unsubscribe</button></form>",
                domain = esc(u.sender_domain.as_str()),
                rcpt = esc(&u.recipient.to_string()),
                token = esc(&token),
            ),
        ),
    }
}

/// RFC 8058 one-click: unsubscribes at once and says so.
async fn one_click(State(state): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    let u: Unsubscribe = match state.ctx.unsubscribe.verify_link(&token) {
        Ok(u) => u,
        Err(e) => {
            tracing::info!(error = %e, "unsubscribe refused: bad token");
            return invalid();
        }
    };
    match unsubscribe::record(state.ctx.store.as_ref(), &u, Via::OneClick).await {
        Ok(changed) => {
            tracing::info!(
                queue_id = %u.message,
                to = %u.recipient,
                sender_domain = %u.sender_domain,
                changed,
                via = "one-click",
                "unsubscribed"
            );
            page(
                StatusCode::OK,
                "You are unsubscribed",
                &format!(
                    "<p>Done: <b>{}</b> gets no more mail from <b>{}</b>.</p>",
                    esc(&u.recipient.to_string()),
                    esc(u.sender_domain.as_str())
                ),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, queue_id = %u.message, "unsubscribe not recorded");
            page(StatusCode::SERVICE_UNAVAILABLE, "Try again", "<p>Could not record this now; please try again.</p>")
        }
    }
}

fn invalid() -> Response {
    page(StatusCode::BAD_REQUEST, "Invalid link", "<p>This unsubscribe link is not valid.</p>")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><meta name=\"robots\" content=\"noindex\">\
         <title>{title}</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\">\
         <h1>{title}</h1>{body}</body></html>"
    );
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], html)
        .into_response()
}
