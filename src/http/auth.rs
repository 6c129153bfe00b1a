//! API keys: made with `mailerd apikey create`, shown once, stored only as their SHA-256, and
//! presented as `Authorization: Bearer KEY`. A key is either an admin key (sees and changes
//! everything) or scoped to sender domains: it sends only from them (and their subdomains), and
//! reads and changes only messages, events, suppressions and checks of them (`store::Scope`).
//!
//! Keys are 192 random bits, so a plain SHA-256 (one indexed lookup per request) is as safe as a
//! slow password hash would be, and keeps every request cheap.
//! Standards: RFC 6750 §2.1. Must not: log or store a key itself, or widen a key's scope.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::problem::Problem;
use crate::store::{ApiKey, Scope, Store};
use crate::time::Timestamp;

const PREFIX: &str = "mailerd_";

/// A new secret and its SHA-256 (hex).
pub fn new_secret() -> Result<(String, String), getrandom::Error> {
    let mut raw = [0u8; 24];
    getrandom::fill(&mut raw)?;
    let secret = format!("{PREFIX}{}", hex(&raw));
    let hash = hash(&secret);
    Ok((secret, hash))
}

/// A new key: (the secret to show once, the record to store).
pub fn generate(name: &str, scope: Scope) -> Result<(String, ApiKey), getrandom::Error> {
    let (secret, hash) = new_secret()?;
    let mut id = [0u8; 6];
    getrandom::fill(&mut id)?;
    let key = ApiKey {
        id: format!("key_{}", hex(&id)),
        name: name.to_string(),
        hash,
        scope,
        created_at: String::new(),
        last_used_at: None,
        sandbox: false,
    };
    Ok((secret, key))
}

pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// How often a key's `last_used_at` is written at most (a write per request would cost a
/// commit per request).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Looks up the presented key.
pub async fn authenticate(store: &dyn Store, header: Option<&str>) -> Result<ApiKey, Problem> {
    let Some(value) = header else {
        return Err(Problem::unauthorized("send the API key as `Authorization: Bearer KEY`"));
    };
    let secret = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).unwrap_or("").trim();
    if !secret.starts_with(PREFIX) {
        return Err(Problem::unauthorized("the Authorization header does not carry a mailerd API key"));
    }
    match store.api_key(&hash(secret)).await {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(Problem::unauthorized("unknown API key (create one with `mailerd apikey create`)")),
        Err(e) => Err(e.into()),
    }
}

/// The authenticated key of a request (an extractor).
pub struct Caller(pub ApiKey);

impl FromRequestParts<std::sync::Arc<super::AppState>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &std::sync::Arc<super::AppState>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let key = authenticate(state.ctx.store.as_ref(), header).await?;
        let now = Timestamp::now();
        if key.last_used_at.is_none_or(|t| t.plus(TOUCH_EVERY) <= now) {
            let (store, id) = (state.ctx.store.clone(), key.id.clone());
            // Off the request's path: the answer does not wait for this commit.
            tokio::spawn(async move {
                if let Err(e) = store.touch_api_key(&id, now).await {
                    tracing::debug!(key = %id, error = %e, "could not record the key's last use");
                }
            });
        }
        // Every request is a login of the key: one from a never-seen network pauses its sending.
        if let Some(addr) = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>() {
            state.ctx.suspect.login(&format!("apikey:{}", key.id), addr.0.ip()).await;
        }
        Ok(Caller(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_hashed_and_scoped() {
        let d = |s: &str| crate::smtp::address::Domain::parse(s).unwrap();
        let (a, ka) = generate("app", Scope::Domains(vec![d("Example.COM")])).unwrap();
        let (b, kb) = generate("app", Scope::All).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("mailerd_") && a.len() == 8 + 48);
        assert_eq!(ka.hash, hash(&a));
        assert!(ka.scope.covers(&d("example.com")) && ka.scope.covers(&d("mail.example.com")));
        assert!(!ka.scope.covers(&d("badexample.com")) && !ka.scope.covers(&d("example.org")));
        assert!(kb.scope.covers(&d("example.org")), "an admin key sends from anywhere");
    }
}
