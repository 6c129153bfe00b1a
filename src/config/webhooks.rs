//! `[[webhooks]]`: endpoints that receive the event stream, signed, and the event types one
//! can ask for. A URL is `http://` or `https://` (verified against the system's roots, `tls.ca_file`
//! and the endpoint's own `tls_ca`), read once here into an [`Endpoint`].
//! Must not: post anything or read the CA files (http::webhooks does), or import a stage.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, MASKED, emit, invalid};

/// One webhook endpoint: events of `events` (all when empty) are POSTed as signed JSON.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// `http://host:port/path` or `https://host[:port]/path`, as configured (the key of the
    /// endpoint's cursor in the store).
    pub url: String,
    /// The URL read: where to connect and what to ask for.
    pub endpoint: Endpoint,
    /// HMAC-SHA256 key for the `Mailerd-Signature` header.
    pub secret: String,
    pub events: Vec<String>,
    /// PEM certificates of a private CA trusted for this endpoint only (https only).
    pub tls_ca: Option<PathBuf>,
}

/// Where a webhook URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// https: the server's certificate is verified for `host`.
    pub https: bool,
    /// A host name or an IP address (without the brackets of an IPv6 literal).
    pub host: String,
    pub port: u16,
    /// The `Host` header: the URL's authority as written.
    pub authority: String,
    /// The path and query, at least `/`.
    pub path: String,
}

impl Endpoint {
    /// Reads `http://host[:port]/path` or `https://host[:port]/path` (RFC 3986, by the `http`
    /// crate's parser); no user info, no fragment.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(format!("`{url}`: only http:// and https:// URLs")),
        };
        let authority = uri.authority().ok_or_else(|| format!("`{url}` has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("`{url}`: user info in the URL is not supported (the secret signs the body)"));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        let port = match authority.port() {
            Some(p) => p.as_u16(),
            None if authority.as_str() != authority.host() => return Err(format!("`{url}` has an invalid port")),
            None if https => 443,
            None => 80,
        };
        if port == 0 {
            return Err(format!("`{url}`: port 0"));
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        Ok(Endpoint {
            https,
            host: host.to_string(),
            port,
            authority: authority.as_str().to_string(),
            path: if path.is_empty() { "/".into() } else { path.to_string() },
        })
    }
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
    "rejected",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    url: String,
    secret: String,
    #[serde(default)]
    events: Vec<String>,
    tls_ca: Option<PathBuf>,
}

pub(super) fn validate(raw: Vec<RawWebhook>) -> Result<Vec<Webhook>, ConfigError> {
    let mut webhooks = Vec::new();
    for (i, w) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("webhooks[{i}].{k}");
        let endpoint = Endpoint::parse(&w.url).map_err(|e| invalid(key("url"), e))?;
        if w.tls_ca.is_some() && !endpoint.https {
            return Err(invalid(key("tls_ca"), "a CA is for https:// URLs only"));
        }
        if w.secret.len() < 16 {
            return Err(invalid(key("secret"), "at least 16 characters"));
        }
        if let Some(e) = w.events.iter().find(|e| !WEBHOOK_EVENTS.contains(&e.as_str())) {
            return Err(invalid(key("events"), format!("`{e}` is not one of {}", WEBHOOK_EVENTS.join(", "))));
        }
        webhooks.push(Webhook { url: w.url, endpoint, secret: w.secret, events: w.events, tls_ca: w.tls_ca });
    }
    Ok(webhooks)
}

/// The `[[webhooks]]` array of the effective configuration; with `mask`, secrets are masked.
pub(super) fn effective(webhooks: &[Webhook], mask: bool) -> toml::Value {
    let hooks = webhooks
        .iter()
        .map(|w| {
            let secret = if mask { MASKED.to_string() } else { w.secret.clone() };
            let mut keys = vec![
                ("url", emit::text(&w.url)),
                ("secret", toml::Value::String(secret)),
                ("events", emit::list(w.events.clone())),
            ];
            if let Some(ca) = &w.tls_ca {
                keys.push(("tls_ca", emit::path(ca)));
            }
            emit::table(keys)
        })
        .collect();
    toml::Value::Array(hooks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_read_from_http_and_https_urls() {
        let e = Endpoint::parse("https://hooks.example.com/mail?x=1").unwrap();
        assert_eq!((e.https, e.host.as_str(), e.port, e.path.as_str()), (true, "hooks.example.com", 443, "/mail?x=1"));
        assert_eq!(e.authority, "hooks.example.com");
        let e = Endpoint::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!((e.https, e.host.as_str(), e.port, e.path.as_str()), (false, "127.0.0.1", 9000, "/"));
        let e = Endpoint::parse("https://[::1]:8443/h").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.authority.as_str()), ("::1", 8443, "[::1]:8443"));
        assert_eq!(Endpoint::parse("http://h.test/").unwrap().port, 80);
        for bad in [
            "ftp://h.test/",
            "h.test:80/x",
            "https://",
            "https://:443/",
            "https://u:p@h.test/",
            "http://h.test:0/",
            "http://h.test:/x",
            "https://h.test:99999/",
            "",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_ca_is_for_https_only() {
        let raw = |url: &str| RawWebhook {
            url: url.into(),
            secret: "whsec_0123456789abcdef".into(),
            events: vec![],
            tls_ca: Some("/etc/ca.pem".into()),
        };
        let err = validate(vec![raw("http://127.0.0.1:9000/x")]).unwrap_err();
        assert!(err.to_string().contains("webhooks[0].tls_ca"), "{err}");
        let ok = validate(vec![raw("https://127.0.0.1:9443/x")]).unwrap();
        assert_eq!(ok[0].tls_ca.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        assert!(ok[0].endpoint.https);
    }
}
