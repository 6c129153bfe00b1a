//! Where mail for a domain goes: a `[routes]` override, else MX hosts in preference order,
//! else the domain itself (implicit MX); null MX and NXDOMAIN fail at once.
//!
//! Standards: RFC 5321 §5.1 (MX selection, implicit MX), RFC 7505 (null MX); the statuses of
//! route failures are in the outcome table (`outcome::DeliveryOutcome::from_route`).
//! Pure: works on answers the caller looked up.
//! Must not: do DNS lookups or connect anywhere.

use crate::dns::{DnsFailure, MxRecords};

/// One hop to try: a host name (resolved by the caller) or a literal address, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteFailure {
    /// RFC 7505: the domain publishes that it accepts no mail.
    NullMx,
    /// NXDOMAIN: the recipient's domain does not exist.
    NoSuchDomain,
    /// The answer could not be had now (SERVFAIL, timeout): retry later.
    Temporary(String),
}

/// Parses a `[routes]` next hop: `host`, `host:port`, `[ip]:port` or `ip:port`.
pub fn parse_next_hop(text: &str, default_port: u16) -> Option<Hop> {
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

/// Turns the MX answer for `domain` into hops in the order to try them.
pub fn from_mx(domain: &str, answer: Result<MxRecords, DnsFailure>, port: u16) -> Result<Vec<Hop>, RouteFailure> {
    match answer {
        Ok(records) => {
            if records.iter().any(|(_, host)| host.is_empty()) {
                return Err(RouteFailure::NullMx);
            }
            let mut sorted = records;
            sorted.sort();
            let mut hops: Vec<Hop> = Vec::new();
            for (_, host) in sorted {
                if !hops.iter().any(|h| h.host == host) {
                    hops.push(Hop { host, port });
                }
            }
            Ok(hops)
        }
        Err(DnsFailure::NoRecords) => Ok(vec![Hop { host: domain.to_string(), port }]),
        Err(DnsFailure::NxDomain) => Err(RouteFailure::NoSuchDomain),
        Err(DnsFailure::Temporary(e)) => Err(RouteFailure::Temporary(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(h: &str) -> Hop {
        Hop { host: h.into(), port: 25 }
    }

    #[test]
    fn mx_in_preference_order_without_duplicates() {
        let mx = vec![(20, "b.mx".into()), (10, "a.mx".into()), (20, "a.mx".into())];
        assert_eq!(from_mx("d.test", Ok(mx), 25), Ok(vec![hop("a.mx"), hop("b.mx")]));
    }

    #[test]
    fn implicit_null_nx_and_temporary() {
        assert_eq!(from_mx("d.test", Err(DnsFailure::NoRecords), 25), Ok(vec![hop("d.test")]));
        assert_eq!(from_mx("d.test", Ok(vec![(0, String::new())]), 25), Err(RouteFailure::NullMx));
        assert_eq!(from_mx("d.test", Err(DnsFailure::NxDomain), 25), Err(RouteFailure::NoSuchDomain));
        assert!(matches!(
            from_mx("d.test", Err(DnsFailure::Temporary("x".into())), 25),
            Err(RouteFailure::Temporary(_))
        ));
    }

    #[test]
    fn next_hop_syntax() {
        assert_eq!(parse_next_hop("127.0.0.2:2526", 25), Some(Hop { host: "127.0.0.2".into(), port: 2526 }));
        assert_eq!(parse_next_hop("[127.0.0.2]:2526", 25), Some(Hop { host: "127.0.0.2".into(), port: 2526 }));
        assert_eq!(parse_next_hop("Relay.Example", 25), Some(Hop { host: "relay.example".into(), port: 25 }));
        assert_eq!(parse_next_hop("[::1]:26", 25), Some(Hop { host: "::1".into(), port: 26 }));
        assert_eq!(parse_next_hop(":25", 25), None);
    }
}
