//! `mailerd tls status DOMAIN [--json]`: the outbound TLS policy in force for a destination
//! (its source, mode, expiry and MX patterns, from the policy cache every node shares), whether
//! DANE applies (`dns.dnssec`), and the result of the last delivery session there (which names
//! the policy it ran under: MTA-STS or the MX host's TLSA records).
//!
//! Must not: fetch a policy or connect anywhere (the next delivery does).

use anyhow::{Result, bail};

use crate::config::Config;
use crate::smtp::address::Domain;
use crate::time::Timestamp;

pub async fn status(config: &Config, domain: &str, json: bool) -> Result<i32> {
    let Ok(domain) = Domain::parse(domain) else { bail!("{domain}: not a domain name") };
    let store = super::open_store(config).await?;
    let s = crate::outbound::sts::status(config, store.as_ref(), domain.as_str(), Timestamp::now()).await?;
    if json {
        outln!("{}", serde_json::to_string(&s)?)?;
        return Ok(0);
    }
    outln!("{:<12} {}", "domain", s.domain)?;
    outln!("{:<12} {} ({})", "in force", s.summary, s.source)?;
    let dane = match s.dane {
        "on" => {
            "on: MX hosts with DNSSEC-secure TLSA records are used only over TLS they authenticate, before MTA-STS (looked up at each delivery)"
        }
        "route" => "not applied: a static route",
        _ => "off (dns.dnssec = false)",
    };
    outln!("{:<12} {dane}", "DANE")?;
    if let Some(p) = &s.policy {
        let expired = if p.expired { " (expired)" } else { "" };
        outln!("{:<12} MTA-STS mode {}, id {}", "cached", p.mode, p.id)?;
        outln!("{:<12} {}", "fetched", p.fetched_at)?;
        outln!("{:<12} {}{expired}", "expires", p.expires_at)?;
        outln!("{:<12} {}", "mx", if p.mx.is_empty() { "-".to_string() } else { p.mx.join(", ") })?;
    }
    match &s.last_result {
        Some(r) => {
            outln!("{:<12} {} at {} under {}", "last result", r.result, r.at, r.policy)?;
            outln!("{:<12} {}", "", r.detail)?;
        }
        None => outln!("{:<12} none yet", "last result")?,
    }
    Ok(0)
}
