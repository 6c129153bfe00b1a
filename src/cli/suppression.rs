//! `mailerd suppression list|add|remove`: the addresses mailerd refuses to send to.
//!
//! Must not: change anything but the suppression list.

use anyhow::Result;

use crate::config::Config;
use crate::smtp::address::Mailbox;
use crate::store::{Scope, Suppression};

fn key(address: &str) -> Result<String> {
    Ok(Mailbox::parse(address).map_err(|e| anyhow::anyhow!("`{address}` is not an address: {e}"))?.key())
}

pub async fn list(config: &Config, json: bool) -> Result<i32> {
    let store = super::open_store(config).await?;
    let entries = store.suppressions(&Scope::All, 100_000).await?;
    for e in &entries {
        if json {
            outln!("{}", serde_json::to_string(e)?)?;
        } else {
            let scope = e.domain.as_ref().map_or("admin", |d| d.as_str());
            outln!(
                "{:<40} {:<12} {:<20} {} {}",
                e.address,
                e.reason,
                scope,
                e.created_at,
                e.detail.as_deref().unwrap_or("")
            )?;
        }
    }
    if !json {
        outln!("-- {} suppressed address(es)", entries.len())?;
    }
    Ok(0)
}

pub async fn add(config: &Config, address: &str) -> Result<i32> {
    let store = super::open_store(config).await?;
    let address = key(address)?;
    let entry = Suppression {
        address: address.clone(),
        reason: "manual".into(),
        status: None,
        detail: Some("added by an operator".into()),
        message_id: None,
        created_at: String::new(),
        domain: None,
        scope: crate::store::SuppressionScope::Global,
    };
    store.suppress(entry).await?;
    outln!("{address}: suppressed")?;
    Ok(0)
}

pub async fn remove(config: &Config, address: &str) -> Result<i32> {
    let store = super::open_store(config).await?;
    let address = key(address)?;
    if store.unsuppress(&address, &Scope::All).await? {
        outln!("{address}: removed from the suppression list")?;
        Ok(0)
    } else {
        eprintln!("mailerd: {address} is not on the suppression list");
        Ok(1)
    }
}
