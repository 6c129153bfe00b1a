//! `GET/POST /api/v1/suppressions`, `GET` and `DELETE /api/v1/suppressions/{address}`: the
//! addresses mailerd will not send to (hard bounces, complaints, unsubscribes and manual
//! entries). `GET .../{address}` answers the entries of one address the key may see (404
//! naming `address` when there are none, the same whether it has none or only foreign ones).
//!
//! Each entry has a sender domain (`domain`): the domain whose mail hard-bounced or was
//! unsubscribed from, or the one of the key that added it. A scoped key lists, adds and
//! removes only entries of its domains (and their subdomains); one outside them is absent for
//! it (404 on DELETE). An admin key sees and changes every entry. A `global` entry refuses
//! the address at RCPT for every sender, a `sender_domain` one (an unsubscribe) only for mail
//! from its domain (`inbound::policy`).
//! Must not: suppress something that is not an address, or reveal entries outside the key's scope.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::problem::Problem;
use crate::smtp::address::{Domain, Mailbox};
use crate::store::{ApiKey, Scope, Suppression, SuppressionCursor};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<usize>,
    /// The `next` of the page before.
    pub cursor: Option<String>,
}

/// A cursor as the API hands it out: the store's keyset, JSON in unpadded base64url.
fn encode_cursor(c: &SuppressionCursor) -> String {
    data_encoding::BASE64URL_NOPAD.encode(serde_json::to_string(c).unwrap_or_default().as_bytes())
}

fn decode_cursor(text: &str) -> Result<SuppressionCursor, Problem> {
    data_encoding::BASE64URL_NOPAD
        .decode(text.as_bytes())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| Problem::invalid("cursor", "not a cursor of this list: pass the `next` of the page before"))
}

/// A page of the list, newest first; `next` is the cursor of the following page (null after
/// the last page).
pub async fn list(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    super::body::Query(q): super::body::Query<ListQuery>,
) -> Result<Json<Value>, Problem> {
    let limit = super::body::page_limit(q.limit, 1000, 100_000)?;
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let (list, last) = state.ctx.store.suppressions_after(&key.scope, limit, after.as_ref()).await?;
    let next = last.filter(|_| list.len() == limit).map(|c| encode_cursor(&c));
    Ok(Json(json!({ "suppressions": list, "next": next })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    pub address: String,
    pub reason: Option<String>,
    /// The sender domain the entry belongs to: one of the key's domains (or a subdomain);
    /// needed when the key has several. Admin keys may name any domain, or none (admins only).
    pub domain: Option<String>,
}

/// The scope a new entry of `key` gets from the request's `domain`.
fn entry_domain(key: &ApiKey, asked: Option<&str>) -> Result<Option<Domain>, Problem> {
    let asked = asked
        .map(|d| Domain::parse(d.trim()).map_err(|e| Problem::invalid("domain", format!("`{d}` is not a domain: {e}"))))
        .transpose()?;
    match (&key.scope, asked) {
        (Scope::All, asked) => Ok(asked),
        (scope, Some(d)) if scope.covers(&d) => Ok(Some(d)),
        (scope, Some(d)) => Err(Problem::forbidden(
            "domain",
            format!("API key `{}` may add entries only for {scope}, not {d}", key.name),
        )),
        (Scope::Domains(list), None) => match list.as_slice() {
            [only] => Ok(Some(only.clone())),
            _ => Err(Problem::invalid(
                "domain",
                format!("this key has several domains ({}): name the one the entry is for", key.scope),
            )),
        },
    }
}

pub async fn add(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    super::body::Json(req): super::body::Json<AddRequest>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let m = Mailbox::parse(req.address.trim()).map_err(|e| Problem::invalid("address", e.to_string()))?;
    let reason = req.reason.unwrap_or_else(|| "manual".into());
    if let Some(bad) = reason.chars().find(|c| c.is_control()) {
        return Err(Problem::invalid("reason", format!("control character U+{:04X} in the reason", u32::from(bad))));
    }
    let domain = entry_domain(&key, req.domain.as_deref())?;
    let entry = Suppression {
        address: m.key(),
        reason,
        status: None,
        detail: Some(format!("added through the API by key {}", key.id)),
        message_id: None,
        created_at: String::new(),
        domain: domain.clone(),
        scope: crate::store::SuppressionScope::Global,
    };
    state.ctx.store.suppress(entry).await?;
    let saved =
        state.ctx.store.suppression_entries(&m.key(), &Scope::All).await?.into_iter().find(|s| s.domain == domain);
    Ok((StatusCode::CREATED, Json(json!(saved))))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    Path(address): Path<String>,
) -> Result<StatusCode, Problem> {
    let address_key = Mailbox::parse(address.trim()).map(|m| m.key()).unwrap_or_else(|_| address.to_lowercase());
    if state.ctx.store.unsuppress(&address_key, &key.scope).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        // The same answer whether the address has no entry or only entries of other scopes.
        Err(Problem::not_found_at("address", format!("{address} is not on the suppression list")))
    }
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    Path(address): Path<String>,
) -> Result<Json<Value>, Problem> {
    let m = Mailbox::parse(address.trim())
        .map_err(|e| Problem::invalid("address", format!("`{address}` is not an address: {e}")))?;
    let entries = state.ctx.store.suppression_entries(&m.key(), &key.scope).await?;
    if entries.is_empty() {
        return Err(Problem::not_found_at("address", format!("{address} is not on the suppression list")));
    }
    Ok(Json(json!({ "address": m.key(), "suppressions": entries })))
}
