//! `GET /api/v1/events?since=CURSOR&type=KIND&limit=N`: what happened to each recipient, oldest
//! first, paged by cursor (the last event id seen; `next` in the reply). A scoped key gets only
//! the events of messages sent from its domains; the store filters them in its query, so a
//! page holds `limit` events whenever that many of the key's follow the cursor.
//!
//! Must not: return more than 1,000 events per page.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::problem::Problem;
use crate::store::EventKind;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Cursor: events with a larger id (0 or absent: from the start).
    #[serde(default)]
    pub since: i64,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub limit: Option<usize>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    super::body::Query(q): super::body::Query<EventQuery>,
) -> Result<Json<Value>, Problem> {
    let limit = super::body::page_limit(q.limit, 100, 1000)?;
    // A type no event has matches nothing.
    let events = match q.kind.as_deref().map(EventKind::parse) {
        Some(None) => Vec::new(),
        kind => state.ctx.store.events_after(q.since, kind.flatten(), &key.scope, limit).await?,
    };
    let next = events.last().map_or(q.since, |e| e.event_id);
    Ok(Json(json!({ "events": events, "next": next })))
}
