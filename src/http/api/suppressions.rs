//! `GET/POST /api/v1/suppressions` and `DELETE /api/v1/suppressions/{address}`: the addresses
//! mailerd will not send to (hard bounces and manual entries).
//!
//! Must not: suppress something that is not an address.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::problem::Problem;
use crate::smtp::address::Mailbox;
use crate::store::Suppression;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<usize>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Caller(_key): Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, Problem> {
    let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
    let list = state.ctx.store.suppressions(limit).await?;
    Ok(Json(json!({ "suppressions": list })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    pub address: String,
    pub reason: Option<String>,
}

pub async fn add(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    body: Result<Json<AddRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let Json(req) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let m = Mailbox::parse(req.address.trim()).map_err(|e| Problem::invalid("address", e.to_string()))?;
    let entry = Suppression {
        address: m.key(),
        reason: req.reason.unwrap_or_else(|| "manual".into()),
        status: None,
        detail: Some(format!("added through the API by key {}", key.id)),
        message_id: None,
        created_at: String::new(),
    };
    state.ctx.store.suppress(entry).await?;
    let saved = state.ctx.store.suppression(&m.key()).await?;
    Ok((StatusCode::CREATED, Json(json!(saved))))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Caller(_key): Caller,
    Path(address): Path<String>,
) -> Result<StatusCode, Problem> {
    let key = Mailbox::parse(address.trim()).map(|m| m.key()).unwrap_or_else(|_| address.to_lowercase());
    if state.ctx.store.unsuppress(&key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!("{address} is not on the suppression list")))
    }
}
