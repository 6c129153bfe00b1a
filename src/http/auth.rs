//! API keys: made with `mailerd apikey create`, shown once, stored only as their SHA-256, and
//! presented as `Authorization: Bearer KEY`. A key may be limited to sender domains.
//!
//! Keys are 192 random bits, so a plain SHA-256 (one indexed lookup per request) is as safe as a
//! slow password hash would be, and keeps every request cheap.
//! Standards: RFC 6750 §2.1. Must not: log or store a key itself.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::problem::Problem;
use crate::store::{ApiKey, Store, StoreError};

const PREFIX: &str = "mailerd_";

/// A new key: (the secret to show once, the record to store).
pub fn generate(name: &str, domains: Vec<String>) -> Result<(String, ApiKey), getrandom::Error> {
    let mut raw = [0u8; 24];
    getrandom::fill(&mut raw)?;
    let secret = format!("{PREFIX}{}", hex(&raw));
    let mut id = [0u8; 6];
    getrandom::fill(&mut id)?;
    let key = ApiKey {
        id: format!("key_{}", hex(&id)),
        name: name.to_string(),
        hash: hash(&secret),
        domains: domains.into_iter().map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase()).collect(),
        created_at: String::new(),
    };
    Ok((secret, key))
}

pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether `key` may send mail from `domain` (its own domains and their subdomains).
pub fn may_send_from(key: &ApiKey, domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    key.domains.is_empty() || key.domains.iter().any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
}

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
        Err(e @ StoreError::Unsupported(_)) => Err(Problem::unavailable(e.to_string())),
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
        authenticate(state.ctx.store.as_ref(), header).await.map(Caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_hashed_and_scoped() {
        let (a, ka) = generate("app", vec!["Example.COM".into()]).unwrap();
        let (b, _) = generate("app", vec![]).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("mailerd_") && a.len() == 8 + 48);
        assert_eq!(ka.hash, hash(&a));
        assert!(may_send_from(&ka, "example.com") && may_send_from(&ka, "mail.example.com"));
        assert!(!may_send_from(&ka, "badexample.com") && !may_send_from(&ka, "example.org"));
    }
}
