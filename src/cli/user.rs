//! `mailerd user add ADDRESS [--quota BYTES]` and `mailerd user passwd ADDRESS`: store an
//! argon2 hash of a password read from standard input, after the password policy of `[login]`
//! (length, strength, not containing the login) accepted it; `mailerd user app-password
//! add|list|revoke ADDRESS [NAME]`: named SMTP credentials, each printed once; `mailerd user
//! 2fa enable|disable|status ADDRESS`: the TOTP second factor of dashboard logins; `mailerd user
//! del ADDRESS`: the login goes, with its credentials. With `dovecot.passwd_file`, add, passwd
//! and del keep the login's line there (`local::passwd_file`) after the store has it, for
//! logins of local domains (those with a mailbox).
//!
//! Exit codes: 0 done, 1 the password was refused (the reason on stderr), 2 usage or runtime
//! error.
//! Must not: echo or log a password or secret (only app-password secrets are printed, once).

use std::io::BufRead;

use anyhow::{Context as _, Result, anyhow, bail};

use crate::config::Config;
use crate::inbound::password::{self, SecretKind};
use crate::inbound::totp;
use crate::local::passwd_file;
use crate::smtp::address::Mailbox;
use crate::store::AppPassword;
use crate::time::Timestamp;

/// Longest app-password name.
const MAX_NAME: usize = 64;

fn login(address: &str) -> Result<Mailbox> {
    Mailbox::parse(address).map_err(|e| anyhow!("`{address}` is not an address: {e}"))
}

/// One line of standard input, without its line end (bounded: a password is short).
fn read_password() -> Result<String> {
    let mut line = String::new();
    let stdin = std::io::stdin();
    let mut limited = std::io::Read::take(stdin.lock(), 4096);
    std::io::BufReader::new(&mut limited).read_line(&mut line).context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
}

/// Reads a new password for `mailbox`, checks it against the policy and hashes it; Err(code)
/// when it was refused (the reason is on stderr).
fn new_password_hash(config: &Config, mailbox: &Mailbox) -> Result<Result<String, i32>> {
    let typed = read_password()?;
    if let Err(refusal) = password::check(&config.login, mailbox, &typed) {
        eprintln!("mailerd: password refused: {refusal}");
        return Ok(Err(1));
    }
    let hash = password::hash(config.login.argon2, &typed).map_err(|e| anyhow!("hashing the password: {e}"))?;
    Ok(Ok(hash))
}

pub async fn add(config: &Config, address: &str, quota: Option<u64>) -> Result<i32> {
    let mailbox = login(address)?;
    let hash = match new_password_hash(config, &mailbox)? {
        Ok(h) => h,
        Err(code) => return Ok(code),
    };
    let store = super::open_store(config).await?;
    store.upsert_mailbox(&mailbox.key(), Some(hash), quota).await?;
    keep_passwd_file(config, store.as_ref(), &mailbox).await?;
    let kind = if config.is_local_domain(mailbox.domain()) {
        "login and mailbox"
    } else {
        "login (not a local domain: no mailbox)"
    };
    outln!("{}: {kind}", mailbox.key())?;
    Ok(0)
}

pub async fn passwd(config: &Config, address: &str) -> Result<i32> {
    let mailbox = login(address)?;
    let store = super::open_store(config).await?;
    if store.mailbox(&mailbox.key()).await?.and_then(|m| m.password_hash).is_none() {
        bail!("{} has no login (add it with `mailerd user add`)", mailbox.key());
    }
    let hash = match new_password_hash(config, &mailbox)? {
        Ok(h) => h,
        Err(code) => return Ok(code),
    };
    store.upsert_mailbox(&mailbox.key(), Some(hash), None).await?;
    keep_passwd_file(config, store.as_ref(), &mailbox).await?;
    outln!("{}: password changed", mailbox.key())?;
    Ok(0)
}

pub async fn del(config: &Config, address: &str) -> Result<i32> {
    let mailbox = login(address)?;
    let store = super::open_store(config).await?;
    if !store.delete_mailbox(&mailbox.key()).await? {
        bail!("{} has no login", mailbox.key());
    }
    keep_passwd_file(config, store.as_ref(), &mailbox).await?;
    outln!("{}: login deleted (delivered mail stays in its Maildir)", mailbox.key())?;
    Ok(0)
}

/// Writes the login's line of `dovecot.passwd_file` as the store has it now (removes it when
/// the store has no password for it), when the file is configured and the login has a mailbox.
async fn keep_passwd_file(config: &Config, store: &dyn crate::store::Store, mailbox: &Mailbox) -> Result<()> {
    let Some(path) = &config.dovecot.passwd_file else { return Ok(()) };
    if !config.is_local_domain(mailbox.domain()) {
        return Ok(());
    }
    let key = mailbox.key();
    let record = store.mailbox(&key).await?;
    let entry = record.and_then(|r| {
        let quota = r.quota.unwrap_or(config.local.quota);
        r.password_hash.map(|hash| passwd_file::Entry { user: key.clone(), hash, quota })
    });
    let (path, user) = (path.clone(), key.clone());
    tokio::task::spawn_blocking(move || passwd_file::update(&path, &user, entry.as_ref()))
        .await
        .context("writing the passwd-file")?
        .with_context(|| format!("{key} is stored, but dovecot.passwd_file was not updated (run the command again)"))?;
    Ok(())
}

/// The login of `address`, which must exist.
async fn existing(store: &dyn crate::store::Store, address: &str) -> Result<String> {
    let key = login(address)?.key();
    if store.mailbox(&key).await?.is_none() {
        bail!("{key} has no login (add it with `mailerd user add`)");
    }
    Ok(key)
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        bail!("an app password's name is 1 to {MAX_NAME} characters without control characters");
    }
    Ok(())
}

pub async fn app_add(config: &Config, address: &str, name: &str) -> Result<i32> {
    check_name(name)?;
    let store = super::open_store(config).await?;
    let key = existing(store.as_ref(), address).await?;
    let secret = SecretKind::AppPassword.generate().ok_or_else(|| anyhow!("no randomness for the secret"))?;
    let hash = SecretKind::AppPassword.hash(&secret).ok_or_else(|| anyhow!("generated secret unreadable"))?;
    let app = AppPassword {
        address: key.clone(),
        name: name.to_string(),
        hash,
        created_at: Timestamp::now(),
        last_used_at: None,
        last_used_ip: None,
    };
    if !store.add_app_password(app).await? {
        bail!("{key} has an app password named `{name}` already (revoke it first)");
    }
    eprintln!("app password `{name}` of {key} for SMTP AUTH; shown once, keep it secret:");
    outln!("{secret}")?;
    Ok(0)
}

pub async fn app_list(config: &Config, address: &str, json: bool) -> Result<i32> {
    let store = super::open_store(config).await?;
    let key = existing(store.as_ref(), address).await?;
    let list = store.app_passwords(&key).await?;
    for p in &list {
        if json {
            let v = serde_json::json!({
                "address": p.address,
                "name": p.name,
                "created_at": p.created_at.iso8601(),
                "last_used_at": p.last_used_at.map(|t| t.iso8601()),
                "last_used_ip": p.last_used_ip.map(|ip| ip.to_string()),
            });
            outln!("{v}")?;
        } else {
            let used = match (p.last_used_at, p.last_used_ip) {
                (Some(at), Some(ip)) => format!("last used {} from {ip}", at.iso8601()),
                (Some(at), None) => format!("last used {}", at.iso8601()),
                _ => "never used".to_string(),
            };
            outln!("{:<24} created {}  {used}", p.name, p.created_at.iso8601())?;
        }
    }
    if !json {
        outln!("-- {} app password(s)", list.len())?;
    }
    Ok(0)
}

pub async fn app_revoke(config: &Config, address: &str, name: &str) -> Result<i32> {
    let store = super::open_store(config).await?;
    let key = existing(store.as_ref(), address).await?;
    if !store.revoke_app_password(&key, name).await? {
        bail!("{key} has no app password named `{name}` (see `mailerd user app-password list {key}`)");
    }
    outln!("{key}: app password `{name}` revoked")?;
    Ok(0)
}

/// `user 2fa enable ADDRESS`: makes the second factor of a login and prints, once, what the
/// person needs: the otpauth URI, its QR code for the terminal, the key, the recovery codes.
pub async fn two_factor_enable(config: &Config, address: &str) -> Result<i32> {
    let store = super::open_store(config).await?;
    let key = existing(store.as_ref(), address).await?;
    if store.second_factor(&key).await?.is_some() {
        bail!("{key} has a second factor already (`mailerd user 2fa disable {key}` first to replace it)");
    }
    let secret = totp::new_secret().ok_or_else(|| anyhow!("no randomness for the secret"))?;
    let uri = totp::otpauth_uri(&secret, &key).ok_or_else(|| anyhow!("{key} cannot be put in an otpauth URI"))?;
    let (codes, hashes) = totp::recovery_codes().ok_or_else(|| anyhow!("no randomness for recovery codes"))?;
    store.enable_second_factor(&key, &secret, &hashes, Timestamp::now()).await?;
    eprintln!("second factor of {key} is on; shown once, hand it to its owner only:");
    if let Some(qr) = totp::qr_text(&uri) {
        outln!("{qr}")?;
    }
    outln!("otpauth URI:    {uri}")?;
    outln!("key:            {}", totp::base32(&secret))?;
    outln!("recovery codes: {}", codes.join(" "))?;
    Ok(0)
}

pub async fn two_factor_disable(config: &Config, address: &str) -> Result<i32> {
    let store = super::open_store(config).await?;
    let key = existing(store.as_ref(), address).await?;
    if !store.disable_second_factor(&key).await? {
        bail!("{key} has no second factor");
    }
    outln!("{key}: second factor off")?;
    Ok(0)
}

pub async fn two_factor_status(config: &Config, address: &str, json: bool) -> Result<i32> {
    let store = super::open_store(config).await?;
    let key = existing(store.as_ref(), address).await?;
    let factor = store.second_factor(&key).await?;
    let required = config.dashboard.require_2fa && config.dashboard.admins.contains(&key);
    let left = factor.as_ref().map(|f| f.recovery_codes.iter().filter(|c| c.used_at.is_none()).count());
    if json {
        let v = serde_json::json!({
            "address": key,
            "enabled": factor.is_some(),
            "enabled_at": factor.as_ref().map(|f| f.enabled_at.iso8601()),
            "recovery_codes_left": left,
            "required": required,
        });
        outln!("{v}")?;
    } else {
        match &factor {
            Some(f) => outln!(
                "{key}: on since {}, {} of {} recovery codes unused",
                f.enabled_at.iso8601(),
                left.unwrap_or(0),
                f.recovery_codes.len()
            )?,
            None if required => outln!("{key}: off (required for this dashboard admin: enrolment at next login)")?,
            None => outln!("{key}: off")?,
        }
    }
    Ok(0)
}
