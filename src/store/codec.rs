//! The one place where typed store values become columns and come back: both backends write
//! and read a recipient's `Destination` through `DestinationColumns` (transport, mailbox,
//! bounce_message, bounce_recipient), RFC 3461 RET (`full`, `hdrs`) and NOTIFY (`NEVER` or a
//! list such as `SUCCESS,FAILURE`), an event's `EventKind` and the envelope sender
//! (`ReversePath`: `local@domain`, empty for `<>`) and a recipient's last `EnhancedStatus`
//! (`c.s.d`), a client IP address and a TOTP time step through the pairs below, so no text of
//! the store is built or split anywhere else.
//! An MTA-STS policy is stored as the body that was fetched and parsed again when read
//! (`CachedPolicy::from_columns`), a TLS result as its RFC 8460 name, and a TLS session count
//! through `TlsCountColumns` (an absent MX host or IP is the empty string: they are key columns).
//! Must not: run SQL, or accept a combination of columns no `Destination` writes (that is a
//! corrupt record, not a guess).

use super::{Destination, EventKind, MessageId, Origin, RecipientId, StoreError, SuppressionScope, Transport};
use crate::smtp::address::{Mailbox, ReversePath};
use crate::smtp::command::{Notify, Ret};
use crate::smtp::reply::EnhancedStatus;
use crate::time::Timestamp;
use crate::tlspolicy::{CachedPolicy, Day, Policy, PolicyType, ReportPolicy, TlsCount, TlsResult};

/// A message's origin column (JSON), read back; None for no row (a deleted message).
pub(crate) fn origin(text: Option<&str>) -> Result<Option<Origin>, StoreError> {
    text.map(|t| serde_json::from_str(t).map_err(|e| StoreError::Corrupt(format!("origin: {e}")))).transpose()
}

/// A recipient's destination as the columns of its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DestinationColumns<'a> {
    pub transport: &'static str,
    /// The local mailbox key, or the forward target of an alias.
    pub mailbox: Option<&'a str>,
    /// The message a bounce to our return path is about.
    pub bounce_message: Option<&'a str>,
    /// The recipient of that message, when the token named one.
    pub bounce_recipient: Option<i64>,
}

impl Destination {
    pub(crate) fn columns(&self) -> DestinationColumns<'_> {
        let (mailbox, bounce_message, bounce_recipient) = match self {
            Destination::Remote | Destination::Report => (None, None, None),
            Destination::Forward(target) => (Some(target.as_str()), None, None),
            Destination::Mailbox(key) | Destination::NullSenderTo(key) => (Some(key.as_str()), None, None),
            Destination::BounceOf { queue_id, rid } => (None, Some(queue_id.0.as_str()), rid.map(|r| r.0)),
        };
        DestinationColumns { transport: self.transport().as_str(), mailbox, bounce_message, bounce_recipient }
    }

    /// A destination read back from its columns.
    pub(crate) fn from_columns(
        transport: &str,
        mailbox: Option<String>,
        bounce_message: Option<String>,
        bounce_recipient: Option<i64>,
    ) -> Result<Destination, StoreError> {
        let corrupt = || StoreError::Corrupt(format!("destination of a {transport} recipient"));
        Ok(match (Transport::decode(transport)?, mailbox, bounce_message) {
            (Transport::Remote, None, None) => Destination::Remote,
            (Transport::Remote, Some(target), None) => Destination::Forward(target),
            (Transport::Local, Some(key), None) => Destination::Mailbox(key),
            (Transport::Feedback, None, Some(queue_id)) => Destination::BounceOf {
                queue_id: MessageId(queue_id),
                rid: bounce_recipient.filter(|r| *r > 0).map(RecipientId),
            },
            (Transport::Feedback, Some(key), None) => Destination::NullSenderTo(key),
            (Transport::Feedback, None, None) => Destination::Report,
            _ => return Err(corrupt()),
        })
    }
}

impl Transport {
    /// A transport read back from a store: an unknown word is a corrupt record.
    pub(crate) fn decode(s: &str) -> Result<Transport, StoreError> {
        Ok(match s {
            "local" => Transport::Local,
            "remote" => Transport::Remote,
            "feedback" => Transport::Feedback,
            _ => return Err(StoreError::Corrupt(format!("transport {s}"))),
        })
    }
}

impl SuppressionScope {
    /// A suppression scope read back from a store (`global`, `sender_domain`).
    pub(crate) fn decode(s: &str) -> Result<SuppressionScope, StoreError> {
        Ok(match s {
            "global" => SuppressionScope::Global,
            "sender_domain" => SuppressionScope::SenderDomain,
            _ => return Err(StoreError::Corrupt(format!("suppression scope {s}"))),
        })
    }
}

impl EventKind {
    /// An event kind read back from a store: an unknown word is a corrupt record.
    pub(crate) fn decode(s: &str) -> Result<EventKind, StoreError> {
        EventKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("event kind {s}")))
    }
}

/// SQLite reads event kinds in row closures.
impl rusqlite::types::FromSql for EventKind {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        EventKind::decode(text).map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

/// The envelope sender as stored: its address, empty for `<>`.
pub(crate) fn reverse_path_text(path: &ReversePath) -> String {
    path.to_string()
}

/// The envelope sender read back.
pub(crate) fn reverse_path(text: String) -> Result<ReversePath, StoreError> {
    if text.is_empty() {
        return Ok(ReversePath::Null);
    }
    Mailbox::parse(&text)
        .map(ReversePath::Mailbox)
        .map_err(|e| StoreError::Corrupt(format!("reverse path {text}: {e:?}")))
}

/// An RFC 3463 status as stored.
pub(crate) fn status_text(status: Option<EnhancedStatus>) -> Option<String> {
    status.map(|s| s.to_string())
}

/// An RFC 3463 status read back.
pub(crate) fn status(text: Option<String>) -> Result<Option<EnhancedStatus>, StoreError> {
    text.map(|t| EnhancedStatus::parse(&t).ok_or_else(|| StoreError::Corrupt(format!("status {t}")))).transpose()
}

/// RET as stored.
pub(crate) fn ret_text(ret: Option<Ret>) -> Option<&'static str> {
    ret.map(|r| match r {
        Ret::Full => "full",
        Ret::Hdrs => "hdrs",
    })
}

/// RET read back.
pub(crate) fn ret(text: Option<String>) -> Result<Option<Ret>, StoreError> {
    text.map(|t| match t.as_str() {
        "full" => Ok(Ret::Full),
        "hdrs" => Ok(Ret::Hdrs),
        _ => Err(StoreError::Corrupt(format!("RET {t}"))),
    })
    .transpose()
}

/// NOTIFY as stored (and shown): `NEVER`, or the words asked for, comma-separated.
pub(crate) fn notify_text(notify: Option<Notify>) -> Option<String> {
    notify.map(|n| n.render())
}

/// NOTIFY read back (empty: none of the words, which asks for no report).
pub(crate) fn notify(text: Option<String>) -> Result<Option<Notify>, StoreError> {
    let Some(text) = text else { return Ok(None) };
    let mut n = Notify::default();
    for word in text.split(',').filter(|w| !w.is_empty()) {
        match word {
            "NEVER" => n.never = true,
            "SUCCESS" => n.success = true,
            "FAILURE" => n.failure = true,
            "DELAY" => n.delay = true,
            _ => return Err(StoreError::Corrupt(format!("NOTIFY {text}"))),
        }
    }
    Ok(Some(n))
}

/// NOTIFY in JSON views: its stored text, as before it was typed.
pub(crate) fn notify_json<S: serde::Serializer>(notify: &Option<Notify>, s: S) -> Result<S::Ok, S::Error> {
    match notify_text(*notify) {
        Some(text) => s.serialize_some(&text),
        None => s.serialize_none(),
    }
}

/// A cached MTA-STS policy read back: its body is parsed again; one that no longer parses is
/// corrupt.
impl CachedPolicy {
    pub(crate) fn from_columns(
        domain: String,
        id: String,
        body: String,
        fetched_at: i64,
        expires_at: i64,
    ) -> Result<CachedPolicy, StoreError> {
        let policy =
            Policy::parse(&body).map_err(|e| StoreError::Corrupt(format!("MTA-STS policy of {domain}: {e}")))?;
        Ok(CachedPolicy {
            domain,
            id,
            policy,
            body,
            fetched_at: Timestamp(fetched_at),
            expires_at: Timestamp(expires_at),
        })
    }
}

/// A TLS result from its RFC 8460 name.
pub(crate) fn tls_result(text: &str) -> Result<TlsResult, StoreError> {
    TlsResult::parse(text).ok_or_else(|| StoreError::Corrupt(format!("TLS result {text}")))
}

/// A `TlsCount` as the columns of its `tls_report_counts` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsCountColumns {
    pub day: i64,
    pub domain: String,
    pub policy_type: String,
    pub policy_id: String,
    pub policy_body: String,
    pub result: String,
    pub mx_host: String,
    pub receiving_ip: String,
    pub sending_ip: String,
    pub sessions: i64,
}

impl TlsCountColumns {
    pub fn encode(c: &TlsCount) -> TlsCountColumns {
        let ip = |a: Option<std::net::IpAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        TlsCountColumns {
            day: c.day.0,
            domain: c.domain.clone(),
            policy_type: c.policy.kind.as_str().to_string(),
            policy_id: c.policy.id.clone(),
            policy_body: c.policy.body.clone(),
            result: c.result.as_str().to_string(),
            mx_host: c.mx_host.clone().unwrap_or_default(),
            receiving_ip: ip(c.receiving_ip),
            sending_ip: ip(c.sending_ip),
            sessions: i64::try_from(c.count).unwrap_or(i64::MAX),
        }
    }

    pub fn decode(self) -> Result<TlsCount, StoreError> {
        let ip = |t: String| -> Result<Option<std::net::IpAddr>, StoreError> {
            if t.is_empty() { Ok(None) } else { ip(Some(t)) }
        };
        let kind = PolicyType::parse(&self.policy_type)
            .ok_or_else(|| StoreError::Corrupt(format!("TLS policy type {}", self.policy_type)))?;
        Ok(TlsCount {
            day: Day(self.day),
            domain: self.domain,
            policy: ReportPolicy { kind, id: self.policy_id, body: self.policy_body },
            result: tls_result(&self.result)?,
            mx_host: Some(self.mx_host).filter(|h| !h.is_empty()),
            receiving_ip: ip(self.receiving_ip)?,
            sending_ip: ip(self.sending_ip)?,
            count: u64::try_from(self.sessions)
                .map_err(|_| StoreError::Corrupt(format!("TLS session count {}", self.sessions)))?,
        })
    }
}

/// A client address as stored (an app password's last use).
pub(crate) fn ip_text(ip: std::net::IpAddr) -> String {
    ip.to_string()
}

/// A client address read back.
pub(crate) fn ip(text: Option<String>) -> Result<Option<std::net::IpAddr>, StoreError> {
    text.map(|t| t.parse().map_err(|_| StoreError::Corrupt(format!("IP address {t}")))).transpose()
}

/// A TOTP time step as stored (a signed 64-bit column; steps of 30 s fit for eons).
pub(crate) fn step_value(step: u64) -> Result<i64, StoreError> {
    i64::try_from(step).map_err(|_| StoreError::Corrupt(format!("TOTP step {step}")))
}

/// A TOTP time step read back.
pub(crate) fn step(value: Option<i64>) -> Result<Option<u64>, StoreError> {
    value.map(|v| u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("TOTP step {v}")))).transpose()
}

/// A count as a column (saturating: counts never reach i64::MAX).
pub(crate) fn count_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A count column read back (a negative one, which no write makes, reads as 0).
pub(crate) fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A `Seen` value as its `kind` and `value` columns.
pub(crate) fn seen_columns(seen: &super::Seen) -> (&'static str, String) {
    match seen {
        super::Seen::Network(net) => ("network", net.to_string()),
        super::Seen::FromDomain(d) => ("from_domain", d.as_str().to_string()),
    }
}

/// The `Seen` value of its columns.
pub(crate) fn seen(kind: &str, value: &str) -> Result<super::Seen, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("account_seen {kind} {value}"));
    match kind {
        "network" => value.parse().map(super::Seen::Network).map_err(|_| corrupt()),
        "from_domain" => crate::smtp::address::Domain::parse(value).map(super::Seen::FromDomain).map_err(|_| corrupt()),
        _ => Err(corrupt()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_destination_reads_back_from_its_columns() {
        let all = [
            Destination::Remote,
            Destination::Forward("x@elsewhere.test".into()),
            Destination::Mailbox("bob@local.test".into()),
            Destination::BounceOf { queue_id: MessageId("Q1".into()), rid: Some(RecipientId(7)) },
            Destination::BounceOf { queue_id: MessageId("Q2".into()), rid: None },
            Destination::NullSenderTo("bob@local.test".into()),
            Destination::Report,
        ];
        for d in all {
            let c = d.columns();
            let back = Destination::from_columns(
                c.transport,
                c.mailbox.map(str::to_string),
                c.bounce_message.map(str::to_string),
                c.bounce_recipient,
            )
            .unwrap();
            assert_eq!(back, d);
        }
        assert!(Destination::from_columns("local", None, None, None).is_err());
        assert!(Destination::from_columns("feedback", Some("k".into()), Some("Q".into()), None).is_err());
    }

    #[test]
    fn suppression_scopes_read_back() {
        for s in [SuppressionScope::Global, SuppressionScope::SenderDomain] {
            assert_eq!(SuppressionScope::decode(s.as_str()).unwrap(), s);
        }
        assert!(SuppressionScope::decode("everyone").is_err());
    }

    #[test]
    fn reverse_paths_read_back() {
        for text in ["", "a@b.example", "\"q@x\"@b.example", "user%other@b.example", "us\u{e9}r@b\u{fc}cher.example"] {
            let path = reverse_path(text.to_string()).unwrap();
            assert_eq!(reverse_path(reverse_path_text(&path)).unwrap(), path);
        }
        assert_eq!(reverse_path(String::new()).unwrap(), ReversePath::Null);
        assert!(reverse_path("no-at-sign".into()).is_err());
    }

    #[test]
    fn statuses_read_back() {
        for s in [None, Some(EnhancedStatus::new(5, 1, 1)), Some(EnhancedStatus::new(4, 7, 650))] {
            assert_eq!(status(status_text(s)).unwrap(), s);
        }
        assert!(status(Some("5.1".into())).is_err());
    }

    #[test]
    fn ret_and_notify_read_back() {
        for r in [None, Some(Ret::Full), Some(Ret::Hdrs)] {
            assert_eq!(ret(ret_text(r).map(str::to_string)).unwrap(), r);
        }
        let n = |never, success, failure, delay| Some(Notify { never, success, failure, delay });
        for v in [None, n(true, false, false, false), n(false, true, true, false), n(false, true, true, true)] {
            assert_eq!(notify(notify_text(v)).unwrap(), v);
        }
        assert_eq!(notify_text(n(false, true, true, false)).as_deref(), Some("SUCCESS,FAILURE"));
        assert!(ret(Some("FULL".into())).is_err() && notify(Some("SOMETIMES".into())).is_err());
    }

    #[test]
    fn addresses_and_steps_read_back() {
        for a in ["127.0.0.1", "::1", "2001:db8::5"] {
            let a: std::net::IpAddr = a.parse().unwrap();
            assert_eq!(ip(Some(ip_text(a))).unwrap(), Some(a));
        }
        assert!(ip(Some("nope".into())).is_err());
        assert_eq!(step(Some(step_value(59_000_000).unwrap())).unwrap(), Some(59_000_000));
        assert!(step_value(u64::MAX).is_err() && step(Some(-1)).is_err());
    }
}
