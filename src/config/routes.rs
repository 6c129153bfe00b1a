//! `[routes]`: static next hops by recipient domain, tried before MX lookup; and `Hop`, the
//! host and port a delivery connects to, which `outbound::route` also makes from MX answers.
//! Must not: look anything up or connect (outbound/ does), or import a stage.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, Outbound, TlsMode, emit, invalid};
use crate::smtp::address::Domain;

/// One hop to try: a host name (resolved by the caller) or a literal address, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub host: String,
    pub port: u16,
}

/// Parses a `[routes]` next hop: `host`, `host:port`, `[ip]:port` or `ip:port`.
fn parse_next_hop(text: &str, default_port: u16) -> Option<Hop> {
    if let Ok(sa) = text.parse::<std::net::SocketAddr>() {
        return Some(Hop { host: sa.ip().to_string(), port: sa.port() });
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()?),
        _ => (text, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some(Hop { host: host.to_ascii_lowercase(), port })
}

/// Where mail for one domain goes, and with which TLS mode.
#[derive(Debug, Clone)]
pub struct Route {
    pub hop: Hop,
    pub tls: TlsMode,
}

/// A route as written: `"host[:port]"` or `{ next_hop = "host[:port]", tls = "…" }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawRoute {
    NextHop(String),
    Full {
        next_hop: String,
        #[serde(default)]
        tls: Option<String>,
    },
}

/// The routes by normalised domain; the port and the TLS mode default to `outbound`'s.
pub(super) fn validate(
    raw: BTreeMap<String, RawRoute>,
    outbound: &Outbound,
) -> Result<BTreeMap<String, Route>, ConfigError> {
    let mut routes = BTreeMap::new();
    for (domain, route) in raw {
        let key = format!("routes.\"{domain}\"");
        let d = Domain::parse(&domain).map_err(|_| invalid(&key, format!("`{domain}` is not a domain")))?;
        let (hop, tls) = match route {
            RawRoute::NextHop(h) => (h, None),
            RawRoute::Full { next_hop, tls } => (next_hop, tls),
        };
        let hop = parse_next_hop(&hop, outbound.mx_port)
            .ok_or_else(|| invalid(&key, format!("`{hop}` is not host[:port]")))?;
        let tls = match tls {
            Some(t) => TlsMode::parse(&key, &t)?,
            None => outbound.tls,
        };
        routes.insert(d.as_str().to_string(), Route { hop, tls });
    }
    Ok(routes)
}

/// The `[routes]` table of the effective configuration.
pub(super) fn effective(routes: &BTreeMap<String, Route>) -> toml::Value {
    let routes = routes
        .iter()
        .map(|(d, r)| {
            let hop = format!("{}:{}", r.hop.host, r.hop.port);
            (d.clone(), emit::table(vec![("next_hop", toml::Value::String(hop)), ("tls", emit::text(r.tls.as_str()))]))
        })
        .collect();
    toml::Value::Table(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_hop_syntax() {
        assert_eq!(parse_next_hop("127.0.0.2:2526", 25), Some(Hop { host: "127.0.0.2".into(), port: 2526 }));
        assert_eq!(parse_next_hop("[127.0.0.2]:2526", 25), Some(Hop { host: "127.0.0.2".into(), port: 2526 }));
        assert_eq!(parse_next_hop("Relay.Example", 25), Some(Hop { host: "relay.example".into(), port: 25 }));
        assert_eq!(parse_next_hop("[::1]:26", 25), Some(Hop { host: "::1".into(), port: 26 }));
        assert_eq!(parse_next_hop(":25", 25), None);
    }
}
