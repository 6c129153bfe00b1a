//! `mailerd account list [--json]` and `mailerd account resume ACCOUNT`: the sending accounts
//! (SMTP logins `user:ADDRESS`, API keys `apikey:ID`) and sender domains (`domain:NAME`) the
//! hard-bounce and complaint-rate breakers paused.
//!
//! Must not: change the breaker's thresholds (that is `[account]` in the configuration).

use anyhow::{Result, bail};

use crate::config::Config;

pub async fn list(config: &Config, json: bool) -> Result<i32> {
    let store = super::open_store(config).await?;
    let paused = store.paused_accounts().await?;
    for p in &paused {
        if json {
            outln!("{}", serde_json::to_string(p)?)?;
        } else {
            outln!("{:<32} {}  {}", p.account, p.paused_at, p.detail)?;
        }
    }
    if !json {
        outln!("-- {} paused account(s)", paused.len())?;
    }
    Ok(0)
}

pub async fn resume(config: &Config, account: &str) -> Result<i32> {
    let store = super::open_store(config).await?;
    if !store.resume_account(account).await? {
        bail!("{account} is not paused (see `mailerd account list`)");
    }
    outln!("{account}: resumed")?;
    Ok(0)
}
