//! The outcome table: what one delivery attempt of one recipient came to, as a typed value,
//! and the one place where replies, connection errors, route failures and local trouble
//! become outcomes. Every status a transport reports is written here, in a named constructor.
//!
//! Standards: RFC 5321 §4.2.1 (2yz done, 4yz try again, 5yz give up), RFC 3463 (statuses;
//! `x.0.0` when a server gives none), RFC 3464 (Remote-MTA, Diagnostic-Code: kept here so a
//! DSN can quote them), RFC 3207 (TLS required and unavailable is transient), RFC 7505.
//! Outcomes are values, not errors: `Delivered`, `Deferred` (try again), `Failed` (give up).
//! Unknown trouble is transient: when in doubt we retry, we do not bounce.
//! The type lives here, in the lowest module that makes outcomes: `queue` (scheduler, retry)
//! and `local` import it; it imports only `outbound`'s client and route and `smtp`.
//! Must not: touch the store, sleep, or retry (`queue` does); the stored status strings are
//! made from these values in one place, `queue::scheduler`.

use std::fmt;

use super::client::{ClientError, RemoteHost, TransactionResult};
use super::route::RouteFailure;
use crate::smtp::reply::{EnhancedStatus, SmtpReply};

/// RFC 3463 statuses of the outcomes made here (a server's own status is kept as it said it).
mod status {
    use crate::smtp::reply::EnhancedStatus as S;

    /// 2.0.0: delivered (or handled) here.
    pub const DONE: S = S::new(2, 0, 0);
    /// 4.0.0: other or undefined temporary failure.
    pub const TEMPORARY: S = S::new(4, 0, 0);
    /// 4.3.0: other or undefined mail system status (ours).
    pub const LOCAL_TROUBLE: S = S::new(4, 3, 0);
    /// 4.4.1: no answer from host.
    pub const NO_ANSWER: S = S::new(4, 4, 1);
    /// 4.4.2: bad connection.
    pub const BAD_CONNECTION: S = S::new(4, 4, 2);
    /// 4.4.3: directory (DNS) server failure.
    pub const DNS_TEMPORARY: S = S::new(4, 4, 3);
    /// 4.4.5: system congestion.
    pub const CONGESTION: S = S::new(4, 4, 5);
    /// 4.4.7: delivery time expired.
    pub const EXPIRED: S = S::new(4, 4, 7);
    /// 4.7.5: cryptographic failure.
    pub const TLS_UNAVAILABLE: S = S::new(4, 7, 5);
    /// 5.1.2: bad destination system address.
    pub const NO_SUCH_DOMAIN: S = S::new(5, 1, 2);
    /// 5.1.10: the destination accepts no mail (RFC 7505).
    pub const NULL_MX: S = S::new(5, 1, 10);
    /// 5.3.0: other or undefined mail system status (permanent).
    pub const MESSAGE_MISSING: S = S::new(5, 3, 0);
    /// 5.3.4: message too big for system.
    pub const TOO_BIG: S = S::new(5, 3, 4);
    /// 5.4.4: unable to route.
    pub const UNROUTABLE: S = S::new(5, 4, 4);
}

/// Where in a delivery an outcome arose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before any transport ran: the queue (the message body, the store, shutting down).
    Queue,
    /// Finding the destination's hosts (static route, MX, null MX).
    Route,
    Connect,
    Greeting,
    /// EHLO, or HELO when EHLO was refused.
    Ehlo,
    StartTls,
    MailFrom,
    RcptTo,
    /// The DATA command.
    Data,
    /// The reply after the message's final dot.
    EndOfData,
    /// Local delivery (Maildir) or reading a bounce.
    Local,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Queue => "queue",
            Stage::Route => "route",
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::Ehlo => "EHLO",
            Stage::StartTls => "STARTTLS",
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::EndOfData => "end of data",
            Stage::Local => "local delivery",
        }
    }

    /// Whom a server's reply at this stage concerns.
    fn scope(self) -> Scope {
        match self {
            Stage::RcptTo | Stage::Local => Scope::Recipient,
            Stage::Queue | Stage::MailFrom | Stage::Data | Stage::EndOfData => Scope::Message,
            Stage::Route | Stage::Connect | Stage::Greeting | Stage::Ehlo | Stage::StartTls => Scope::Destination,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whom an outcome concerns: this recipient, the whole message, or every message to the
/// destination (its hosts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Recipient,
    Message,
    Destination,
}

/// What happened, with the remote server's own words when there were any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// RFC 3463 status, e.g. `2.0.0`, `4.4.1`, `5.1.1`.
    pub status: EnhancedStatus,
    /// The SMTP reply code when a server answered (`550`).
    pub reply_code: Option<u16>,
    /// The complete reply text (all lines), or a description of the failure.
    pub detail: String,
    /// `host[ip]:port` of the server that answered.
    pub remote: Option<String>,
    pub stage: Stage,
    pub scope: Scope,
    /// The outbound TLS policy the delivery ran under and how TLS went (`MTA-STS enforce,
    /// id 7: verified TLS`), for the journey; None without a policy.
    pub tls_policy: Option<String>,
}

impl Report {
    fn ours(status: EnhancedStatus, stage: Stage, scope: Scope, detail: impl Into<String>) -> Report {
        Report { status, reply_code: None, detail: detail.into(), remote: None, stage, scope, tls_policy: None }
    }

    /// True for "mailbox full" (x.2.2), which is retried for a shorter time.
    pub fn is_mailbox_full(&self) -> bool {
        self.status.subject == 2 && self.status.detail == 2
    }

    /// True when the destination's hosts could not be looked up now (4.4.3).
    pub fn is_dns_temporary(&self) -> bool {
        self.status == status::DNS_TEMPORARY
    }

    /// The report of a recipient given up after `attempts` temporary failures: 4.4.7, except
    /// that "mailbox full" and a TLS requirement not met (4.7.5) keep their status so the DSN
    /// names the reason.
    pub fn expired(&self, attempts: u32) -> Report {
        let keeps = self.is_mailbox_full() || self.status == status::TLS_UNAVAILABLE;
        Report {
            status: if keeps { self.status } else { status::EXPIRED },
            detail: format!("gave up after {attempts} attempts: {}", self.detail),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered(Report),
    Deferred(Report),
    Failed(Report),
}

impl DeliveryOutcome {
    pub fn report(&self) -> &Report {
        match self {
            DeliveryOutcome::Delivered(r) | DeliveryOutcome::Deferred(r) | DeliveryOutcome::Failed(r) => r,
        }
    }

    /// Names the TLS policy the delivery ran under (`Report::tls_policy`).
    pub fn set_tls_policy(&mut self, policy: String) {
        match self {
            DeliveryOutcome::Delivered(r) | DeliveryOutcome::Deferred(r) | DeliveryOutcome::Failed(r) => {
                r.tls_policy = Some(policy)
            }
        }
    }

    pub fn into_report(self) -> Report {
        match self {
            DeliveryOutcome::Delivered(r) | DeliveryOutcome::Deferred(r) | DeliveryOutcome::Failed(r) => r,
        }
    }

    /// The outcome a server's reply at `stage` gives, quoting it completely: 2xx and 3xx
    /// delivered, 5xx failed, anything else deferred.
    pub fn from_reply(reply: &SmtpReply, remote: &RemoteHost, stage: Stage) -> Self {
        Self::of_reply(reply, remote.to_string(), stage)
    }

    fn of_reply(reply: &SmtpReply, remote: String, stage: Stage) -> Self {
        let class = (reply.code / 100) as u8;
        let report = Report {
            status: reply.status.unwrap_or(EnhancedStatus::new(class, 0, 0)),
            reply_code: Some(reply.code),
            detail: reply.to_string(),
            remote: Some(remote),
            stage,
            scope: stage.scope(),
            tls_policy: None,
        };
        match class {
            2 | 3 => DeliveryOutcome::Delivered(report),
            5 => DeliveryOutcome::Failed(report),
            _ => DeliveryOutcome::Deferred(report),
        }
    }

    /// One outcome per recipient of a transaction, in the order of the envelope.
    pub fn from_transaction(result: &TransactionResult, remote: &RemoteHost) -> Vec<Self> {
        result
            .rcpts
            .iter()
            .map(|rcpt| {
                if !result.mail.is_positive() {
                    return Self::from_reply(&result.mail, remote, Stage::MailFrom);
                }
                if !rcpt.is_positive() {
                    return Self::from_reply(rcpt, remote, Stage::RcptTo);
                }
                match &result.data {
                    Some(final_reply) => Self::from_reply(final_reply, remote, result.data_stage),
                    None => Self::cut_short(remote),
                }
            })
            .collect()
    }

    /// A transaction that ended before the message was sent, without a reply saying why.
    fn cut_short(remote: &RemoteHost) -> Self {
        let mut report = Report::ours(
            status::TEMPORARY,
            Stage::Data,
            Scope::Message,
            "transaction ended before the message was sent",
        );
        report.remote = Some(remote.to_string());
        DeliveryOutcome::Deferred(report)
    }

    /// The outcome of a connection-level problem, for every recipient of the transaction.
    pub fn from_error(err: &ClientError, remote: Option<&RemoteHost>) -> Self {
        Self::of_error(err, remote.map(|r| r.to_string()))
    }

    /// The reply of an LMTP server (RFC 2033) to one recipient, `server` its socket: as
    /// `from_reply`, except that each reply after the data concerns its recipient alone, and
    /// that "mailbox full" (x.2.2, Dovecot's quota says 552 5.2.2) is retried like a 452 for
    /// `retry.mailbox_full_max_age`: its owner can make room, and the DSN then says why.
    pub fn from_lmtp_reply(reply: &SmtpReply, server: &str, stage: Stage) -> Self {
        let outcome = Self::of_reply(reply, server.to_string(), stage);
        let per_recipient = |mut report: Report| {
            report.scope = Scope::Recipient;
            report
        };
        match outcome {
            DeliveryOutcome::Failed(r) if r.is_mailbox_full() => DeliveryOutcome::Deferred(per_recipient(r)),
            DeliveryOutcome::Delivered(r) if stage == Stage::EndOfData => DeliveryOutcome::Delivered(per_recipient(r)),
            DeliveryOutcome::Failed(r) if stage == Stage::EndOfData => DeliveryOutcome::Failed(per_recipient(r)),
            DeliveryOutcome::Deferred(r) if stage == Stage::EndOfData => DeliveryOutcome::Deferred(per_recipient(r)),
            other => other,
        }
    }

    /// A problem with an LMTP server (`server` its socket): a refusal of the transaction
    /// (MAIL, RCPT, DATA) is read like any reply; a refused greeting or LHLO is the mailbox
    /// server's own trouble (misconfigured, overloaded), so the mail waits for it, never bounces.
    pub fn from_lmtp_error(err: &ClientError, server: &str) -> Self {
        match err {
            ClientError::Rejected(
                stage @ (Stage::MailFrom | Stage::RcptTo | Stage::Data | Stage::EndOfData),
                reply,
            ) => Self::from_lmtp_reply(reply, server, *stage),
            _ => match Self::of_error(err, Some(server.to_string())) {
                DeliveryOutcome::Failed(r) if matches!(err, ClientError::Rejected(..)) => DeliveryOutcome::Deferred(r),
                other => other,
            },
        }
    }

    fn of_error(err: &ClientError, remote: Option<String>) -> Self {
        let report = |status, stage: Stage, scope| Report {
            remote: remote.clone(),
            ..Report::ours(status, stage, scope, err.to_string())
        };
        let destination = Scope::Destination;
        match err {
            ClientError::Rejected(stage, reply) => match &remote {
                Some(r) => Self::of_reply(reply, r.clone(), *stage),
                None => DeliveryOutcome::Deferred(report(status::TEMPORARY, *stage, stage.scope())),
            },
            ClientError::TooLarge { .. } => {
                DeliveryOutcome::Failed(report(status::TOO_BIG, Stage::MailFrom, Scope::Message))
            }
            ClientError::TlsRequired(_) | ClientError::TlsPolicy { .. } => {
                DeliveryOutcome::Deferred(report(status::TLS_UNAVAILABLE, Stage::StartTls, destination))
            }
            ClientError::Timeout(stage) => {
                DeliveryOutcome::Deferred(report(status::BAD_CONNECTION, *stage, destination))
            }
            ClientError::Io(Stage::Connect, _) => {
                DeliveryOutcome::Deferred(report(status::NO_ANSWER, Stage::Connect, destination))
            }
            ClientError::Io(stage, _) | ClientError::Protocol(stage, _) => {
                DeliveryOutcome::Deferred(report(status::BAD_CONNECTION, *stage, destination))
            }
        }
    }

    /// The outcome of a destination whose hosts could not be found.
    pub fn from_route(domain: &str, failure: &RouteFailure) -> Self {
        match failure {
            RouteFailure::NullMx => Self::null_mx(domain),
            RouteFailure::NoSuchDomain => Self::dns_nxdomain(domain),
            RouteFailure::Temporary(e) => Self::dns_temporary(domain, e),
        }
    }

    /// RFC 7505: the domain publishes that it accepts no mail.
    pub fn null_mx(domain: &str) -> Self {
        let detail = format!("{domain} does not accept mail (null MX)");
        DeliveryOutcome::Failed(Report::ours(status::NULL_MX, Stage::Route, Scope::Destination, detail))
    }

    /// NXDOMAIN: the recipient's domain does not exist.
    pub fn dns_nxdomain(domain: &str) -> Self {
        let detail = format!("domain {domain} does not exist (NXDOMAIN)");
        DeliveryOutcome::Failed(Report::ours(status::NO_SUCH_DOMAIN, Stage::Route, Scope::Destination, detail))
    }

    /// The MX lookup could not be answered now (SERVFAIL, timeout).
    pub fn dns_temporary(domain: &str, error: &str) -> Self {
        let detail = format!("DNS lookup for {domain} failed: {error}");
        DeliveryOutcome::Deferred(Report::ours(status::DNS_TEMPORARY, Stage::Route, Scope::Destination, detail))
    }

    /// The addresses of the destination's mail hosts could not be looked up now.
    pub fn mx_hosts_unresolved(domain: &str, error: impl fmt::Display) -> Self {
        let detail = format!("cannot resolve the mail hosts of {domain}: {error}");
        DeliveryOutcome::Deferred(Report::ours(status::DNS_TEMPORARY, Stage::Route, Scope::Destination, detail))
    }

    /// None of the destination's mail hosts has an address.
    pub fn mx_hosts_without_address(domain: &str) -> Self {
        let detail = format!("no mail host of {domain} has an address");
        DeliveryOutcome::Failed(Report::ours(status::UNROUTABLE, Stage::Route, Scope::Destination, detail))
    }

    /// An outbound TLS policy (`policy`, e.g. `the MTA-STS policy (enforce, id 7)`) requires
    /// verified TLS and no MX host of `domain` gave it; `failures` says what each host did.
    pub fn tls_policy_unmet(domain: &str, policy: &str, failures: &[String]) -> Self {
        let detail = format!(
            "TLS is required by {policy} of {domain} and no mail host met it, so nothing was sent: {}",
            failures.join("; ")
        );
        DeliveryOutcome::Deferred(Report::ours(status::TLS_UNAVAILABLE, Stage::StartTls, Scope::Destination, detail))
    }

    /// No MX host of `domain` is one its TLS policy names: none may be used.
    pub fn mx_outside_policy(domain: &str, policy: &str, hosts: &[String], patterns: &str) -> Self {
        let detail = format!(
            "TLS is required by {policy} of {domain}, and none of its mail hosts ({}) matches the policy's mx ({patterns}), so none was used",
            hosts.join(", ")
        );
        DeliveryOutcome::Deferred(Report::ours(status::TLS_UNAVAILABLE, Stage::Route, Scope::Destination, detail))
    }

    /// Every connection the cluster allows to `destination` is in use.
    pub fn destination_busy(destination: &str, limit: u32) -> Self {
        let detail = format!("all {limit} connections to {destination} are in use across the cluster");
        DeliveryOutcome::Deferred(Report::ours(status::CONGESTION, Stage::Connect, Scope::Destination, detail))
    }

    /// The daemon is stopping before the delivery began.
    pub fn shutting_down() -> Self {
        DeliveryOutcome::Deferred(Report::ours(status::LOCAL_TROUBLE, Stage::Queue, Scope::Message, "shutting down"))
    }

    /// A temporary problem of ours (the store, a Maildir, a task): tried again later.
    /// `detail` names what failed.
    pub fn local_trouble(stage: Stage, detail: impl Into<String>) -> Self {
        DeliveryOutcome::Deferred(Report::ours(status::LOCAL_TROUBLE, stage, stage.scope(), detail))
    }

    /// The stored message (or bounce) is gone: nothing can ever be delivered.
    pub fn body_missing(detail: impl Into<String>) -> Self {
        DeliveryOutcome::Failed(Report::ours(status::MESSAGE_MISSING, Stage::Queue, Scope::Message, detail))
    }

    /// A local recipient without a mailbox to deliver into.
    pub fn no_local_mailbox() -> Self {
        let detail = "local recipient without a mailbox";
        DeliveryOutcome::Failed(Report::ours(status::MESSAGE_MISSING, Stage::Local, Scope::Recipient, detail))
    }

    /// Delivered into a local mailbox, or an incoming bounce handled: `detail` says how.
    pub fn delivered_locally(detail: impl Into<String>) -> Self {
        DeliveryOutcome::Delivered(Report::ours(status::DONE, Stage::Local, Scope::Recipient, detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> RemoteHost {
        RemoteHost { name: "mx.test".into(), addr: "127.0.0.1:25".parse().unwrap() }
    }

    fn reply(code: u16, text: &str) -> SmtpReply {
        SmtpReply::from_lines(code, vec![text.into()])
    }

    fn status(o: &DeliveryOutcome) -> String {
        o.report().status.to_string()
    }

    #[test]
    fn classes_map_to_outcomes() {
        let r = remote();
        let ok = DeliveryOutcome::from_reply(&reply(250, "2.0.0 ok"), &r, Stage::EndOfData);
        assert!(matches!(ok, DeliveryOutcome::Delivered(_)));
        let DeliveryOutcome::Failed(rep) =
            DeliveryOutcome::from_reply(&reply(550, "5.1.1 no such user"), &r, Stage::RcptTo)
        else {
            panic!()
        };
        assert_eq!((rep.status.to_string().as_str(), rep.reply_code), ("5.1.1", Some(550)));
        assert_eq!(rep.detail, "550 5.1.1 no such user");
        assert_eq!(rep.remote.as_deref(), Some("mx.test[127.0.0.1]:25"));
        assert_eq!((rep.stage, rep.scope), (Stage::RcptTo, Scope::Recipient));
        let DeliveryOutcome::Deferred(rep) = DeliveryOutcome::from_reply(&reply(421, "try later"), &r, Stage::Greeting)
        else {
            panic!()
        };
        assert_eq!((rep.status.to_string().as_str(), rep.scope), ("4.0.0", Scope::Destination));
    }

    #[test]
    fn transaction_results_per_recipient() {
        let r = remote();
        let t = TransactionResult {
            mail: reply(250, "ok"),
            rcpts: vec![reply(250, "ok"), reply(550, "5.1.1 unknown"), reply(452, "4.2.2 full")],
            data: Some(reply(554, "5.7.1 spam")),
            data_stage: Stage::EndOfData,
        };
        let o = DeliveryOutcome::from_transaction(&t, &r);
        assert!(
            matches!(&o[0], DeliveryOutcome::Failed(rep) if rep.stage == Stage::EndOfData && rep.scope == Scope::Message)
        );
        assert!(matches!(&o[1], DeliveryOutcome::Failed(rep) if rep.stage == Stage::RcptTo));
        assert!(matches!(&o[2], DeliveryOutcome::Deferred(rep) if rep.is_mailbox_full()));
        let refused = TransactionResult {
            mail: reply(553, "5.7.1 sender refused"),
            rcpts: vec![reply(553, "x")],
            data: None,
            data_stage: Stage::Data,
        };
        let o = DeliveryOutcome::from_transaction(&refused, &r);
        assert_eq!((status(&o[0]), o[0].report().stage), ("5.7.1".into(), Stage::MailFrom));
    }

    #[test]
    fn lmtp_replies_per_recipient_and_a_full_mailbox_waits() {
        let s = "127.0.0.1:24";
        let full = DeliveryOutcome::from_lmtp_reply(&reply(552, "5.2.2 <a@b> Quota exceeded"), s, Stage::EndOfData);
        assert!(matches!(&full, DeliveryOutcome::Deferred(r) if r.is_mailbox_full() && r.scope == Scope::Recipient));
        assert_eq!((full.report().reply_code, full.report().remote.as_deref()), (Some(552), Some(s)));
        let unknown = DeliveryOutcome::from_lmtp_reply(&reply(550, "5.1.1 <x@b> User doesn't exist"), s, Stage::RcptTo);
        assert!(matches!(&unknown, DeliveryOutcome::Failed(r) if r.status.to_string() == "5.1.1"));
        let ok = DeliveryOutcome::from_lmtp_reply(&reply(250, "2.0.0 <a@b> Saved"), s, Stage::EndOfData);
        assert!(matches!(&ok, DeliveryOutcome::Delivered(r) if r.scope == Scope::Recipient));
        let spam = DeliveryOutcome::from_lmtp_reply(&reply(554, "5.7.1 no"), s, Stage::EndOfData);
        assert!(matches!(&spam, DeliveryOutcome::Failed(r) if r.scope == Scope::Recipient));
        let gone = ClientError::Io(Stage::Connect, std::io::ErrorKind::NotFound.into());
        let o = DeliveryOutcome::from_lmtp_error(&gone, "unix:/run/dovecot/lmtp");
        assert!(matches!(&o, DeliveryOutcome::Deferred(r) if r.remote.as_deref() == Some("unix:/run/dovecot/lmtp")));
        // A mailbox server that refuses its greeting or LHLO is in trouble: the mail waits.
        for stage in [Stage::Greeting, Stage::Ehlo] {
            let refused = ClientError::Rejected(stage, reply(554, "5.3.2 not now"));
            assert!(matches!(DeliveryOutcome::from_lmtp_error(&refused, s), DeliveryOutcome::Deferred(_)));
        }
        let sender = ClientError::Rejected(Stage::MailFrom, reply(550, "5.1.8 bad sender"));
        assert!(matches!(DeliveryOutcome::from_lmtp_error(&sender, s), DeliveryOutcome::Failed(_)));
    }

    #[test]
    fn connection_trouble_is_transient_but_size_is_not() {
        let timeout = ClientError::Timeout(Stage::Greeting);
        assert!(matches!(DeliveryOutcome::from_error(&timeout, None), DeliveryOutcome::Deferred(_)));
        assert_eq!(status(&DeliveryOutcome::from_error(&timeout, None)), "4.4.2");
        let refused = ClientError::Io(Stage::Connect, std::io::ErrorKind::ConnectionRefused.into());
        let o = DeliveryOutcome::from_error(&refused, Some(&remote()));
        assert_eq!((status(&o), o.report().scope), ("4.4.1".into(), Scope::Destination));
        let tls = ClientError::TlsRequired("the server does not offer STARTTLS".into());
        assert_eq!(status(&DeliveryOutcome::from_error(&tls, None)), "4.7.5");
        let big = ClientError::TooLarge { size: 10, limit: 5 };
        assert_eq!(status(&DeliveryOutcome::from_error(&big, Some(&remote()))), "5.3.4");
        assert!(matches!(DeliveryOutcome::from_error(&big, None), DeliveryOutcome::Failed(_)));
    }

    #[test]
    fn route_failures() {
        let nx = DeliveryOutcome::from_route("x.test", &RouteFailure::NoSuchDomain);
        assert!(matches!(nx, DeliveryOutcome::Failed(_)));
        assert_eq!(
            (status(&nx), nx.report().detail.as_str()),
            ("5.1.2".into(), "domain x.test does not exist (NXDOMAIN)")
        );
        let null = DeliveryOutcome::from_route("x.test", &RouteFailure::NullMx);
        assert_eq!((status(&null), null.report().stage), ("5.1.10".into(), Stage::Route));
        let temp = DeliveryOutcome::from_route("x.test", &RouteFailure::Temporary("timeout".into()));
        assert!(matches!(&temp, DeliveryOutcome::Deferred(r) if r.is_dns_temporary()));
        assert_eq!(status(&DeliveryOutcome::mx_hosts_without_address("x.test")), "5.4.4");
    }

    #[test]
    fn expiry_says_4_4_7_unless_the_mailbox_is_full() {
        let r = remote();
        let later = DeliveryOutcome::from_reply(&reply(451, "4.3.0 later"), &r, Stage::RcptTo).into_report();
        let gone = later.expired(3);
        assert_eq!(gone.status.to_string(), "4.4.7");
        assert_eq!(gone.detail, "gave up after 3 attempts: 451 4.3.0 later");
        let full = DeliveryOutcome::from_reply(&reply(452, "4.2.2 full"), &r, Stage::RcptTo).into_report();
        assert_eq!(full.expired(2).status.to_string(), "4.2.2");
    }

    #[test]
    fn our_own_outcomes() {
        assert_eq!(status(&DeliveryOutcome::delivered_locally("x")), "2.0.0");
        assert!(matches!(DeliveryOutcome::body_missing("message body missing"), DeliveryOutcome::Failed(_)));
        assert_eq!(status(&DeliveryOutcome::no_local_mailbox()), "5.3.0");
        let store = DeliveryOutcome::local_trouble(Stage::Queue, "store: down");
        assert!(matches!(&store, DeliveryOutcome::Deferred(r) if r.scope == Scope::Message));
        assert_eq!(status(&store), "4.3.0");
        assert_eq!(status(&DeliveryOutcome::destination_busy("d.test", 2)), "4.4.5");
        assert_eq!(status(&DeliveryOutcome::shutting_down()), "4.3.0");
    }
}
