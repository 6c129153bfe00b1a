//! Outbound failure policy: what a remote reply or a connection problem means for each
//! recipient — the one place where errors become `DeliveryOutcome`s.
//!
//! Standards: RFC 5321 §4.2.1 (2yz done, 4yz try again, 5yz give up), RFC 3463 (statuses;
//! `x.0.0` when a server gives none), RFC 3207 (TLS required and unavailable is transient).
//! Unknown trouble is transient: when in doubt we retry, we do not bounce.
//! Must not: touch the store, sleep, or retry; `queue::scheduler` does that.

use super::client::{ClientError, RemoteHost, TransactionResult};
use super::route::RouteFailure;
use crate::queue::outcome::{DeliveryOutcome, Report};
use crate::smtp::reply::SmtpReply;

/// The outcome a reply gives, quoting it completely.
pub fn from_reply(reply: &SmtpReply, remote: &RemoteHost) -> DeliveryOutcome {
    let class = reply.code / 100;
    let status = reply.status.map(|s| s.to_string()).unwrap_or_else(|| format!("{class}.0.0"));
    let report =
        Report { status, reply_code: Some(reply.code), detail: reply.to_string(), remote: Some(remote.to_string()) };
    match class {
        2 | 3 => DeliveryOutcome::Delivered(report),
        5 => DeliveryOutcome::Failed(report),
        _ => DeliveryOutcome::Deferred(report),
    }
}

/// One outcome per recipient, in the order of the envelope.
pub fn from_transaction(result: &TransactionResult, remote: &RemoteHost) -> Vec<DeliveryOutcome> {
    result
        .rcpts
        .iter()
        .map(|rcpt| {
            if !result.mail.is_positive() {
                return from_reply(&result.mail, remote);
            }
            if !rcpt.is_positive() {
                return from_reply(rcpt, remote);
            }
            match &result.data {
                Some(final_reply) => from_reply(final_reply, remote),
                None => DeliveryOutcome::Deferred(Report {
                    status: "4.0.0".into(),
                    detail: "transaction ended before the message was sent".into(),
                    remote: Some(remote.to_string()),
                    reply_code: None,
                }),
            }
        })
        .collect()
}

/// The outcome of a connection-level problem, for every recipient of the transaction.
pub fn from_error(err: &ClientError, remote: Option<&RemoteHost>) -> DeliveryOutcome {
    let remote_name = remote.map(|r| r.to_string());
    let report = |status: &str| Report {
        status: status.into(),
        reply_code: None,
        detail: err.to_string(),
        remote: remote_name.clone(),
    };
    match err {
        ClientError::Rejected(_, reply) => match remote {
            Some(r) => from_reply(reply, r),
            None => DeliveryOutcome::Deferred(report("4.0.0")),
        },
        ClientError::TooLarge { .. } => DeliveryOutcome::Failed(report("5.3.4")),
        ClientError::TlsRequired(_) => DeliveryOutcome::Deferred(report("4.7.5")),
        ClientError::Timeout(_) => DeliveryOutcome::Deferred(report("4.4.2")),
        ClientError::Io(super::client::Stage::Connect, _) => DeliveryOutcome::Deferred(report("4.4.1")),
        ClientError::Io(..) | ClientError::Protocol(..) => DeliveryOutcome::Deferred(report("4.4.2")),
    }
}

pub fn from_route(domain: &str, failure: &RouteFailure) -> DeliveryOutcome {
    let report =
        Report { status: failure.status().into(), reply_code: None, detail: failure.detail(domain), remote: None };
    match failure {
        RouteFailure::Temporary(_) => DeliveryOutcome::Deferred(report),
        _ => DeliveryOutcome::Failed(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::client::Stage;

    fn remote() -> RemoteHost {
        RemoteHost { name: "mx.test".into(), addr: "127.0.0.1:25".parse().unwrap() }
    }

    fn reply(code: u16, text: &str) -> SmtpReply {
        SmtpReply::from_lines(code, vec![text.into()])
    }

    #[test]
    fn classes_map_to_outcomes() {
        let r = remote();
        assert!(matches!(from_reply(&reply(250, "2.0.0 ok"), &r), DeliveryOutcome::Delivered(_)));
        let DeliveryOutcome::Failed(rep) = from_reply(&reply(550, "5.1.1 no such user"), &r) else { panic!() };
        assert_eq!((rep.status.as_str(), rep.reply_code), ("5.1.1", Some(550)));
        assert_eq!(rep.detail, "550 5.1.1 no such user");
        assert_eq!(rep.remote.as_deref(), Some("mx.test[127.0.0.1]:25"));
        let DeliveryOutcome::Deferred(rep) = from_reply(&reply(421, "try later"), &r) else { panic!() };
        assert_eq!(rep.status, "4.0.0");
    }

    #[test]
    fn transaction_results_per_recipient() {
        let r = remote();
        let t = TransactionResult {
            mail: reply(250, "ok"),
            rcpts: vec![reply(250, "ok"), reply(550, "5.1.1 unknown"), reply(452, "4.2.2 full")],
            data: Some(reply(250, "2.0.0 queued")),
        };
        let o = from_transaction(&t, &r);
        assert!(matches!(o[0], DeliveryOutcome::Delivered(_)));
        assert!(matches!(o[1], DeliveryOutcome::Failed(_)));
        assert!(matches!(o[2], DeliveryOutcome::Deferred(_)));
        let refused =
            TransactionResult { mail: reply(553, "5.7.1 sender refused"), rcpts: vec![reply(553, "x")], data: None };
        assert_eq!(from_transaction(&refused, &r)[0].report().status, "5.7.1");
    }

    #[test]
    fn connection_trouble_is_transient_but_size_is_not() {
        let timeout = ClientError::Timeout(Stage::Greeting);
        assert!(matches!(from_error(&timeout, None), DeliveryOutcome::Deferred(_)));
        let big = ClientError::TooLarge { size: 10, limit: 5 };
        assert_eq!(from_error(&big, Some(&remote())).report().status, "5.3.4");
        assert!(matches!(from_error(&big, None), DeliveryOutcome::Failed(_)));
        assert!(matches!(from_route("x.test", &RouteFailure::NoSuchDomain), DeliveryOutcome::Failed(_)));
    }
}
