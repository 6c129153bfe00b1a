//! Who may send what to whom: relay control, a login's own senders (MAIL FROM and the From:/
//! Sender: header, decided by `senders`), recipients, quotas, sizes, free space.
//!
//! Standards: RFC 5321 §3.6 (relaying), §4.5.1 (postmaster), RFC 1870 (SIZE), RFC 4954 (AUTH
//! before relaying), DESIGN §4 (replies). Never an open relay: an address in a non-local
//! domain is accepted only from an authenticated user or a `relay.trusted_networks` client.
//! Must not: parse addresses (that is `smtp::address`) or write anything.

use std::net::IpAddr;

use super::session::{AcceptedRcpt, Session};
use super::{Context, ListenerKind, replies};
use crate::local::mailbox::{self, Resolution};
use crate::queue::return_path;
use crate::smtp::address::{Mailbox, ReversePath};
use crate::smtp::command::{ForwardPath, MailParams, RcptParams};
use crate::smtp::reply::SmtpReply;
use crate::store::{Destination, MessageId, RecipientId};
use crate::time::Timestamp;

/// A refusal: the public reply, and the detail that goes only to the log.
#[derive(Debug)]
pub struct Refusal {
    pub reply: SmtpReply,
    pub detail: String,
}

fn refuse(reply: SmtpReply, detail: impl Into<String>) -> Refusal {
    Refusal { reply, detail: detail.into() }
}

pub fn is_trusted(ctx: &Context, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    ctx.config.trusted_networks.iter().any(|n| n.contains(&ip))
}

/// MAIL FROM: authentication on submission, a login's own sender, declared size, free space.
pub fn check_mail(
    ctx: &Context,
    session: &Session,
    kind: ListenerKind,
    ip: IpAddr,
    from: &ReversePath,
    params: &MailParams,
) -> Result<(), Refusal> {
    if kind == ListenerKind::Submission && session.auth_user.is_none() && !is_trusted(ctx, ip) {
        return Err(refuse(replies::auth_required(), "submission without AUTH"));
    }
    // Logins only: an unauthenticated trusted-network relay is no login and owns no address.
    if let Some(login) = &session.auth_user
        && !session.any_sender
        && !ctx.config.senders.may_send_as(login, from)
    {
        return Err(refuse(replies::sender_not_owned(&from.to_string(), login), format!("{login} does not own it")));
    }
    if let Some(size) = params.size
        && size > ctx.config.limits.max_message_size
    {
        return Err(refuse(replies::message_too_large(), format!("SIZE={size}")));
    }
    let min_free = ctx.config.limits.min_free_space;
    if min_free > 0 {
        match free_space(&ctx.config.data_dir) {
            Some(free) if free >= min_free => {}
            Some(free) => {
                return Err(refuse(replies::insufficient_storage(), format!("{free} bytes free < {min_free}")));
            }
            None => {
                return Err(refuse(replies::insufficient_storage(), "cannot stat the data directory"));
            }
        }
    }
    Ok(())
}

/// After DATA: every From:/Sender: address of an authenticated user's message must be its own.
pub fn check_headers(ctx: &Context, session: &Session, message: &[u8]) -> Result<(), Refusal> {
    let Some(login) = session.auth_user.as_ref().filter(|_| !session.any_sender) else {
        return Ok(());
    };
    match ctx.config.senders.header_mismatch(login, message) {
        None => Ok(()),
        Some(n) => Err(refuse(replies::header_not_owned(n.field, login), format!("{n} by {login}"))),
    }
}

/// RCPT TO: resolves the recipient or refuses it with the DESIGN §4 reply.
pub async fn check_rcpt(
    ctx: &Context,
    session: &Session,
    kind: ListenerKind,
    ip: IpAddr,
    to: &ForwardPath,
    params: &RcptParams,
    declared_size: Option<u64>,
) -> Result<AcceptedRcpt, Refusal> {
    let accepted = |address: String, destination| AcceptedRcpt {
        address,
        orcpt: params.orcpt.clone(),
        notify: params.notify,
        destination,
        notes: Vec::new(),
    };
    let rcpt: &Mailbox = match to {
        ForwardPath::Postmaster => {
            let key = mailbox::postmaster_key(&ctx.config);
            return Ok(accepted(key.clone(), Destination::Mailbox(key)));
        }
        ForwardPath::Mailbox(m) => m,
    };
    let shown = rcpt.to_string();
    if return_path::looks_signed(rcpt.local()) && rcpt.domain().as_str() == ctx.return_path.domain {
        return match ctx.return_path.verify_address(rcpt.local(), rcpt.domain().as_str(), Timestamp::now()) {
            Ok(token) => {
                let about = Destination::BounceOf {
                    queue_id: MessageId(token.queue_id),
                    rid: (token.recipient_id > 0).then_some(RecipientId(token.recipient_id)),
                };
                Ok(accepted(shown, about))
            }
            Err(e) => Err(refuse(replies::invalid_bounce_address(&shown), format!("backscatter? {e:?}"))),
        };
    }
    if !ctx.config.is_local_domain(rcpt.domain()) {
        let may_relay = session.auth_user.is_some() || is_trusted(ctx, ip);
        if !may_relay {
            return Err(refuse(replies::relay_denied(&shown), format!("relay to {} from {ip}", rcpt.domain())));
        }
        if let Some(user) = &session.auth_user {
            let account = crate::bounce::breaker::account_of(user);
            if let Ok(Some(p)) = ctx.store.account_pause(&account).await {
                return Err(refuse(replies::account_paused(&account, &p.detail), format!("{account} paused")));
            }
        }
        let entry = if ctx.config.bounce.enforce_suppression {
            ctx.store
                .suppression(&rcpt.key())
                .await
                .map_err(|e| refuse(replies::store_failed(&e), format!("suppression lookup: {e}")))?
        } else {
            None
        };
        if let Some(s) = entry {
            return Err(refuse(replies::suppressed(&shown, &s.created_at, &s.reason), "suppressed address"));
        }
        // Submission: a domain that does not exist is refused now, not bounced later. Only a
        // definite NXDOMAIN counts; a DNS failure is left to delivery, which retries.
        if kind == ListenerKind::Submission
            && !rcpt.domain().is_address_literal()
            && !ctx.config.routes.contains_key(rcpt.domain().as_str())
            && let Some(dns) = &ctx.dns
            && dns.mx(rcpt.domain().as_str()).await == Err(crate::dns::DnsFailure::NxDomain)
        {
            return Err(refuse(replies::domain_not_found(&shown), format!("NXDOMAIN for {}", rcpt.domain())));
        }
        let found = super::checks::recipient(&shown, &ctx.config.check);
        if let Some(c) = found.refuse {
            let why = super::checks::note(&c);
            return Err(refuse(replies::recipient_check_failed(&shown, c.name, &why), why));
        }
        let mut rcpt = accepted(shown, Destination::Remote);
        rcpt.notes = found.notes;
        return Ok(rcpt);
    }
    let (key, implicit) = match mailbox::resolve(&ctx.config, rcpt) {
        Resolution::Forward(target) => {
            return Ok(accepted(shown, Destination::Forward(target.to_string())));
        }
        Resolution::Mailbox { key, implicit } => (key, implicit),
    };
    let record =
        ctx.store.mailbox(&key).await.map_err(|e| refuse(replies::store_failed(&e), format!("mailbox lookup: {e}")))?;
    if record.is_none() && !implicit {
        return Err(refuse(replies::user_unknown(&shown), format!("no mailbox {key}")));
    }
    let used = record.as_ref().map_or(0, |r| r.used_bytes);
    let quota = record.as_ref().and_then(|r| r.quota).unwrap_or(ctx.config.local.quota);
    if used >= quota || used.saturating_add(declared_size.unwrap_or(0)) > quota {
        return Err(refuse(replies::mailbox_full(&shown), format!("{key}: {used} of {quota} bytes used")));
    }
    let null_sender = matches!(session.transaction.as_ref().map(|t| &t.from), Some(ReversePath::Null));
    if null_sender && ctx.config.bounce.read_null_sender {
        // A bounce (or a forged one) to a local mailbox: read it before anyone sees it.
        return Ok(accepted(shown, Destination::NullSenderTo(key)));
    }
    Ok(accepted(shown, Destination::Mailbox(key)))
}

/// Bytes available to unprivileged users on the file system holding `dir`.
fn free_space(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stat` is a valid out-pointer.
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    (rc == 0).then(|| (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}
