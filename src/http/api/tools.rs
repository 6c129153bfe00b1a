//! The checklist and bounce intelligence over HTTP: `POST /api/v1/check/address|domain|message`
//! and `POST /api/v1/bounces/parse|verify` — the same code as `mailerd check` and `mailerd
//! bounce`, with the same JSON.
//!
//! Bodies: JSON for address and domain; the raw message (`message/rfc822`) for message checks
//! and bounces.
//! A scoped key checks only domains of its scope (and their subdomains), its address checks
//! read only the suppression entries of its scope, and bounce verification counts only its own
//! mail as ours (a bounce about another sender's mail is judged as if we never sent that mail).
//! Must not: write anything (a verified bounce is only judged here, not recorded), or tell a
//! scoped key anything about mail or entries outside its scope.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;

use super::super::AppState;
use super::super::auth::Caller;
use super::super::problem::Problem;
use crate::checklist::{address, domain, message, resolver::Resolver};
use crate::smtp::address::Domain;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressRequest {
    pub address: String,
    /// Look up the domain (default true).
    pub dns: Option<bool>,
}

pub async fn check_address(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    super::body::Json(req): super::body::Json<AddressRequest>,
) -> Result<Json<Value>, Problem> {
    let ctx = &state.ctx;
    let dns = if req.dns.unwrap_or(true) { ctx.dns.as_deref() } else { None };
    let options = address::Options::default();
    let (report, _) = address::check_full_in(&req.address, &options, dns, Some(ctx.store.as_ref()), &key.scope).await;
    Ok(Json(report.to_json()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainRequest {
    pub domain: String,
}

pub async fn check_domain(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    super::body::Json(req): super::body::Json<DomainRequest>,
) -> Result<Json<Value>, Problem> {
    if !key.scope.is_all() {
        let domain = Domain::parse(req.domain.trim())
            .map_err(|e| Problem::invalid("domain", format!("`{}` is not a domain: {e}", req.domain)))?;
        if !key.scope.covers(&domain) {
            return Err(Problem::forbidden(
                "domain",
                format!("API key `{}` may check only {} (and subdomains)", key.name, key.scope),
            ));
        }
    }
    let config = &state.ctx.config;
    let resolver = Resolver::new(&config.dns_nameservers).map_err(|e| Problem::unavailable(e.to_string()))?;
    let opts = domain::DomainOptions::from_config(config, Vec::new());
    // The complaint rate covers every sender: only a key for every domain sees it.
    let store = key.scope.is_all().then_some(state.ctx.store.as_ref());
    let report = domain::check(&req.domain, &opts, &resolver, store).await;
    Ok(Json(crate::checklist::requirements::domain_json(&report)))
}

pub async fn check_message(
    State(state): State<Arc<AppState>>,
    Caller(_key): Caller,
    raw: Bytes,
) -> Result<Json<Value>, Problem> {
    if raw.is_empty() {
        return Err(Problem::invalid("body", "send the message itself (message/rfc822) as the request body"));
    }
    let config = &state.ctx.config;
    let resolver = Resolver::new(&config.dns_nameservers).ok();
    let report = message::check_all("message", &raw, config.limits.max_message_size, resolver.as_ref()).await;
    Ok(Json(report.to_json()))
}

pub async fn parse_bounce(Caller(_key): Caller, raw: Bytes) -> Result<Json<Value>, Problem> {
    let report = tokio::task::spawn_blocking(move || crate::feedback::parse_bounce(&raw))
        .await
        .map_err(|e| Problem::unavailable(format!("parser task: {e}")))?;
    Ok(Json(report.to_json("request")))
}

pub async fn verify_bounce(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    raw: Bytes,
) -> Result<Json<Value>, Problem> {
    let v = state.verifier.verify_in(state.ctx.store.as_ref(), &raw, &Default::default(), &key.scope).await?;
    Ok(Json(v.to_json("request")))
}
