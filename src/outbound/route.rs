//! Where mail for a domain goes: a `[routes]` override, else MX hosts in preference order,
//! else the domain itself (implicit MX); null MX and NXDOMAIN fail at once.
//!
//! Standards: RFC 5321 §5.1 (MX selection, implicit MX), RFC 7505 (null MX); the statuses of
//! route failures are in the outcome table (`outcome::DeliveryOutcome::from_route`).
//! Pure: works on answers the caller looked up.
//! Must not: do DNS lookups or connect anywhere.

use crate::config::Hop;
use crate::dns::{DnsFailure, MxRecords};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteFailure {
    /// RFC 7505: the domain publishes that it accepts no mail.
    NullMx,
    /// NXDOMAIN: the recipient's domain does not exist.
    NoSuchDomain,
    /// The answer could not be had now (SERVFAIL, timeout): retry later.
    Temporary(String),
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
}
