//! `mailerd user add ADDRESS [--quota BYTES]`: stores an argon2 hash of the password read
//! from standard input.
//!
//! Must not: echo or log the password.

use std::io::BufRead;

use anyhow::{Context as _, Result, bail};

use crate::config::Config;
use crate::inbound::auth::hash_password;
use crate::smtp::address::Mailbox;

pub async fn add(config: &Config, address: &str, quota: Option<u64>) -> Result<i32> {
    let mailbox = Mailbox::parse(address).map_err(|e| anyhow::anyhow!("`{address}` is not an address: {e}"))?;
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password).context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("no password on standard input");
    }
    let hash = hash_password(password).map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
    let store = super::open_store(config).await?;
    store.upsert_mailbox(&mailbox.key(), Some(hash), quota).await?;
    let kind = if config.is_local_domain(mailbox.domain()) {
        "login and mailbox"
    } else {
        "login (not a local domain: no mailbox)"
    };
    outln!("{}: {kind}", mailbox.key())?;
    Ok(0)
}
