//! `mailerd apikey create NAME [--domain D]...`: makes an API key, stores its hash, prints the
//! key once.
//!
//! Must not: store or log the key itself.

use anyhow::{Result, anyhow};

use crate::config::Config;
use crate::http::auth;

pub async fn create(config: &Config, name: &str, domains: Vec<String>) -> Result<i32> {
    let (secret, key) = auth::generate(name, domains).map_err(|e| anyhow!("no randomness for the key: {e}"))?;
    let store = super::open_store(config).await?;
    store.create_api_key(key.clone()).await?;
    let scope = if key.domains.is_empty() { "any sender domain".to_string() } else { key.domains.join(", ") };
    eprintln!("API key {} ({}) for {scope}; shown once, keep it secret:", key.id, key.name);
    outln!("{secret}")?;
    Ok(0)
}
