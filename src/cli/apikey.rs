//! `mailerd apikey create NAME (--domain D... | --admin) [--sandbox] | list [--json] | revoke ID | rotate ID`:
//! makes API keys and prints each secret once, lists keys with their scope, deletes keys, and
//! gives a key a new secret.
//!
//! Must not: store or log a secret itself (only its SHA-256 is kept), or make a key whose
//! scope was not asked for explicitly.

use anyhow::{Result, anyhow};
use serde_json::json;

use crate::config::Config;
use crate::http::auth;
use crate::smtp::address::Domain;
use crate::store::{ApiKey, Scope};

pub async fn create(config: &Config, name: &str, domains: Vec<String>, admin: bool, sandbox: bool) -> Result<i32> {
    let scope = match (admin, domains.is_empty()) {
        (true, true) => Scope::All,
        (false, false) => {
            let mut list = Vec::new();
            for d in &domains {
                match Domain::parse(d.trim()) {
                    Ok(domain) if !domain.is_address_literal() => list.push(domain),
                    _ => {
                        eprintln!("mailerd: apikey create: `{d}` is not a domain");
                        return Ok(2);
                    }
                }
            }
            list.sort();
            list.dedup();
            Scope::Domains(list)
        }
        (true, false) => {
            eprintln!("mailerd: apikey create: --admin and --domain exclude each other");
            return Ok(2);
        }
        (false, true) => {
            eprintln!("mailerd: apikey create: say what the key may do: --domain D (repeatable) or --admin");
            return Ok(2);
        }
    };
    let (secret, mut key) = auth::generate(name, scope).map_err(|e| anyhow!("no randomness for the key: {e}"))?;
    key.sandbox = sandbox;
    let store = super::open_store(config).await?;
    store.create_api_key(key.clone()).await?;
    let scope = match &key.scope {
        Scope::All => "an admin key (any sender domain, everything)".to_string(),
        Scope::Domains(_) => format!("for {}", key.scope),
    };
    let sandbox = if key.sandbox { "; a sandbox key: its sends are checked and recorded, never delivered" } else { "" };
    eprintln!("API key {} ({}) {scope}{sandbox}; shown once, keep it secret:", key.id, key.name);
    outln!("{secret}")?;
    Ok(0)
}

fn to_json(k: &ApiKey) -> serde_json::Value {
    let domains: Vec<&str> = match &k.scope {
        Scope::All => Vec::new(),
        Scope::Domains(list) => list.iter().map(|d| d.as_str()).collect(),
    };
    json!({
        "id": k.id,
        "name": k.name,
        "admin": k.scope.is_all(),
        "domains": domains,
        "created_at": k.created_at,
        "last_used_at": k.last_used_at.map(|t| t.iso8601()),
        "sandbox": k.sandbox,
    })
}

pub async fn list(config: &Config, json: bool) -> Result<i32> {
    let store = super::open_store(config).await?;
    let keys = store.api_keys().await?;
    for k in &keys {
        if json {
            outln!("{}", to_json(k))?;
        } else {
            let used = k.last_used_at.map_or_else(|| "never".to_string(), |t| t.iso8601());
            outln!(
                "{:<17} {:<20} {:<24} created {} last used {}{}",
                k.id,
                k.name,
                k.scope.to_string(),
                k.created_at,
                used,
                if k.sandbox { " (sandbox)" } else { "" }
            )?;
        }
    }
    if !json {
        outln!("-- {} key(s)", keys.len())?;
    }
    Ok(0)
}

pub async fn revoke(config: &Config, id: &str) -> Result<i32> {
    let store = super::open_store(config).await?;
    if store.revoke_api_key(id).await? {
        outln!("{id}: revoked")?;
        Ok(0)
    } else {
        eprintln!("mailerd: no API key {id} (see mailerd apikey list)");
        Ok(2)
    }
}

pub async fn rotate(config: &Config, id: &str) -> Result<i32> {
    let (secret, hash) = auth::new_secret().map_err(|e| anyhow!("no randomness for the key: {e}"))?;
    let store = super::open_store(config).await?;
    if !store.rotate_api_key(id, &hash).await? {
        eprintln!("mailerd: no API key {id} (see mailerd apikey list)");
        return Ok(2);
    }
    eprintln!("API key {id}: new secret, shown once (the old one no longer works):");
    outln!("{secret}")?;
    Ok(0)
}
