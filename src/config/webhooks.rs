//! `[[webhooks]]`: endpoints that receive the event stream, signed, and the event types one
//! can ask for.
//! Must not: post anything (http::webhooks does), or import a stage.

use serde::Deserialize;

use super::{ConfigError, MASKED, emit, invalid};

/// One webhook endpoint: events of `events` (all when empty) are POSTed as signed JSON.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// `http://host:port/path`.
    pub url: String,
    /// HMAC-SHA256 key for the `Mailerd-Signature` header.
    pub secret: String,
    pub events: Vec<String>,
}

/// Event types a webhook can ask for.
pub const WEBHOOK_EVENTS: &[&str] = &[
    "queued",
    "delivered",
    "deferred",
    "bounced",
    "expired",
    "delayed",
    "suppressed",
    "check",
    "forged_bounce",
    "account_paused",
    "account_suspected",
    "deleted",
    "held",
    "released",
    "unsubscribed",
    "complained",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    url: String,
    secret: String,
    #[serde(default)]
    events: Vec<String>,
}

pub(super) fn validate(raw: Vec<RawWebhook>) -> Result<Vec<Webhook>, ConfigError> {
    let mut webhooks = Vec::new();
    for (i, w) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("webhooks[{i}].{k}");
        let rest = w.url.strip_prefix("http://").ok_or_else(|| {
            invalid(key("url"), format!("`{}`: only http:// (put a TLS proxy in front for https)", w.url))
        })?;
        let authority = rest.split('/').next().unwrap_or("");
        if authority.is_empty() || !authority.contains(':') && authority.parse::<std::net::IpAddr>().is_ok() {
            return Err(invalid(key("url"), format!("`{}` has no host:port", w.url)));
        }
        if w.secret.len() < 16 {
            return Err(invalid(key("secret"), "at least 16 characters"));
        }
        if let Some(e) = w.events.iter().find(|e| !WEBHOOK_EVENTS.contains(&e.as_str())) {
            return Err(invalid(key("events"), format!("`{e}` is not one of {}", WEBHOOK_EVENTS.join(", "))));
        }
        webhooks.push(Webhook { url: w.url, secret: w.secret, events: w.events });
    }
    Ok(webhooks)
}

/// The `[[webhooks]]` array of the effective configuration; with `mask`, secrets are masked.
pub(super) fn effective(webhooks: &[Webhook], mask: bool) -> toml::Value {
    let hooks = webhooks
        .iter()
        .map(|w| {
            let secret = if mask { MASKED.to_string() } else { w.secret.clone() };
            emit::table(vec![
                ("url", emit::text(&w.url)),
                ("secret", toml::Value::String(secret)),
                ("events", emit::list(w.events.clone())),
            ])
        })
        .collect();
    toml::Value::Array(hooks)
}
