//! Who may send what to whom: relay control, a login's own senders (MAIL FROM and the From:/
//! Sender: header, decided by `senders`), recipients, quotas, sizes, free space.
//!
//! Every door asks the same questions with a [`Submitter`] (who is sending: a client without a
//! login, an SMTP login, a local program, an API key) and gets a [`Refusal`] whose [`Reason`]
//! is a typed value: SMTP answers with `Reason::reply` (the text lives in `replies`), the HTTP
//! API maps the reason to its JSON error without reading any reply text.
//! Standards: RFC 5321 §3.6 (relaying), §4.5.1 (postmaster), RFC 1870 (SIZE), RFC 4954 (AUTH
//! before relaying), DESIGN §4 (replies). Never an open relay: an address in a non-local
//! domain is accepted only from a login (SMTP, local program, API key) or a
//! `relay.trusted_networks` client.
//! Must not: parse addresses (that is `smtp::address`), write reply text, or write anything.

use std::net::IpAddr;

use super::senders::HeaderField;
use super::session::AcceptedRcpt;
use super::{Context, ListenerKind, replies};
use crate::bounce::{return_path, unsubscribe};
use crate::local::mailbox::{self, Resolution};
use crate::smtp::address::{Mailbox, ReversePath};
use crate::smtp::command::{ForwardPath, MailParams, RcptParams};
use crate::smtp::reply::SmtpReply;
use crate::store::{Destination, MessageId, RecipientId, Scope};
use crate::time::Timestamp;

/// Who is sending, as far as policy cares; every door builds one.
#[derive(Debug, Clone)]
pub enum Submitter {
    /// A client that has not logged in, on the MX (`smtp`) or `submission` listener; `trusted`
    /// when it is in `relay.trusted_networks` (and so may relay).
    Client { door: ListenerKind, ip: IpAddr, trusted: bool },
    /// An SMTP AUTH login (on the submission listener).
    Login { login: String },
    /// A local program (`sendmail`, `-bs`): the local user's login `user@origin`; root may use
    /// any sender.
    Local { login: String, any_sender: bool },
    /// An HTTP API key, which sends only from the domains of its scope.
    ApiKey { id: String, scope: Scope },
}

impl Submitter {
    /// The submitter of an SMTP session on `door` from `ip`, logged in as `login` or not.
    pub fn smtp(ctx: &Context, door: ListenerKind, ip: IpAddr, login: Option<&str>, any_sender: bool) -> Submitter {
        match (login, door) {
            (Some(login), ListenerKind::Local) => Submitter::Local { login: login.to_string(), any_sender },
            (Some(login), _) => Submitter::Login { login: login.to_string() },
            (None, _) => Submitter::Client { door, ip, trusted: is_trusted(ctx, ip) },
        }
    }

    /// The login whose senders the sender rules check: SMTP logins and local users, unless
    /// they may use any sender (an unauthenticated trusted-network relay owns no address).
    fn sender_login(&self) -> Option<&str> {
        match self {
            Submitter::Login { login } | Submitter::Local { login, any_sender: false } => Some(login),
            _ => None,
        }
    }

    /// The account the hard-bounce breaker counts for (`bounce::breaker::account_of`).
    pub fn account(&self) -> Option<String> {
        match self {
            Submitter::Login { login } | Submitter::Local { login, .. } => {
                Some(crate::bounce::breaker::account_of(login))
            }
            Submitter::ApiKey { id, .. } => Some(crate::bounce::breaker::account_of(&format!("apikey:{id}"))),
            Submitter::Client { .. } => None,
        }
    }

    /// Submission refuses a recipient domain that does not exist now (not for local programs,
    /// nor for MX clients).
    fn checks_domains(&self) -> bool {
        match self {
            Submitter::Client { door, .. } => *door == ListenerKind::Submission,
            Submitter::Login { .. } | Submitter::ApiKey { .. } => true,
            Submitter::Local { .. } => false,
        }
    }
}

/// Why policy refused: one value per DESIGN §4 situation, each with its reply in `replies`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// MAIL without AUTH on submission.
    AuthRequired,
    /// MAIL FROM a login does not own.
    SenderNotOwned { sender: String, login: String },
    /// A From:/Sender: address a login does not own.
    HeaderNotOwned { field: HeaderField, login: String },
    /// SIZE= above `limits.max_message_size`.
    MessageTooLarge,
    /// Below `limits.min_free_space`.
    InsufficientStorage,
    /// A store lookup failed (`out_of_space`: the disk is full).
    StoreFailed { out_of_space: bool },
    /// A bounce address of ours whose signature is wrong or expired.
    InvalidBounceAddress { rcpt: String },
    /// An unsubscribe address of ours whose token does not verify.
    InvalidUnsubscribeAddress { rcpt: String },
    /// A non-local recipient from a submitter that may not relay.
    RelayDenied { rcpt: String },
    /// The hard-bounce breaker paused the account.
    AccountPaused { account: String, why: String },
    /// The recipient is on the suppression list.
    Suppressed { rcpt: String, since: String, why: String },
    /// NXDOMAIN for the recipient's domain (submission).
    DomainNotFound { rcpt: String },
    /// The checklist's `check` refused the recipient (`[check.policy]`).
    CheckFailed { rcpt: String, check: &'static str, why: String },
    /// No such local mailbox.
    UserUnknown { rcpt: String },
    /// The local mailbox is over its quota.
    MailboxFull { rcpt: String },
}

impl Reason {
    /// The SMTP reply for this reason (DESIGN §4).
    pub fn reply(&self) -> SmtpReply {
        match self {
            Reason::AuthRequired => replies::auth_required(),
            Reason::SenderNotOwned { sender, login } => replies::sender_not_owned(sender, login),
            Reason::HeaderNotOwned { field, login } => replies::header_not_owned(*field, login),
            Reason::MessageTooLarge => replies::message_too_large(),
            Reason::InsufficientStorage => replies::insufficient_storage(),
            Reason::StoreFailed { out_of_space } => replies::store_trouble(*out_of_space),
            Reason::InvalidBounceAddress { rcpt } => replies::invalid_bounce_address(rcpt),
            Reason::InvalidUnsubscribeAddress { rcpt } => replies::invalid_unsubscribe_address(rcpt),
            Reason::RelayDenied { rcpt } => replies::relay_denied(rcpt),
            Reason::AccountPaused { account, why } => replies::account_paused(account, why),
            Reason::Suppressed { rcpt, since, why } => replies::suppressed(rcpt, since, why),
            Reason::DomainNotFound { rcpt } => replies::domain_not_found(rcpt),
            Reason::CheckFailed { rcpt, check, why } => replies::recipient_check_failed(rcpt, check, why),
            Reason::UserUnknown { rcpt } => replies::user_unknown(rcpt),
            Reason::MailboxFull { rcpt } => replies::mailbox_full(rcpt),
        }
    }
}

/// A refusal: why (the public answer follows from it), and the detail that goes only to the log.
#[derive(Debug)]
pub struct Refusal {
    pub reason: Reason,
    pub detail: String,
}

impl Refusal {
    /// The SMTP reply the client gets.
    pub fn reply(&self) -> SmtpReply {
        self.reason.reply()
    }
}

fn refuse(reason: Reason, detail: impl Into<String>) -> Refusal {
    Refusal { reason, detail: detail.into() }
}

fn store_failed(e: &crate::store::StoreError, what: &str) -> Refusal {
    refuse(Reason::StoreFailed { out_of_space: e.is_out_of_space() }, format!("{what}: {e}"))
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
    submitter: &Submitter,
    from: &ReversePath,
    params: &MailParams,
) -> Result<(), Refusal> {
    if matches!(submitter, Submitter::Client { door: ListenerKind::Submission, trusted: false, .. }) {
        return Err(refuse(Reason::AuthRequired, "submission without AUTH"));
    }
    check_sender(ctx, submitter, from)?;
    if let Some(size) = params.size
        && size > ctx.config.limits.max_message_size
    {
        return Err(refuse(Reason::MessageTooLarge, format!("SIZE={size}")));
    }
    let min_free = ctx.config.limits.min_free_space;
    if min_free > 0 {
        match free_space(&ctx.config.data_dir) {
            Some(free) if free >= min_free => {}
            Some(free) => {
                return Err(refuse(Reason::InsufficientStorage, format!("{free} bytes free < {min_free}")));
            }
            None => {
                return Err(refuse(Reason::InsufficientStorage, "cannot stat the data directory"));
            }
        }
    }
    Ok(())
}

/// The envelope sender a submitter may use: a login its own addresses (`senders`, unless it
/// may use any), an API key an address in the domains of its scope, a client without a login
/// any (an unauthenticated trusted-network relay owns no address).
pub fn check_sender(ctx: &Context, submitter: &Submitter, from: &ReversePath) -> Result<(), Refusal> {
    let login = match submitter {
        Submitter::ApiKey { id, scope } => match from {
            ReversePath::Mailbox(m) if scope.covers(m.domain()) => return Ok(()),
            _ => {
                let reason = Reason::SenderNotOwned { sender: from.to_string(), login: format!("apikey:{id}") };
                return Err(refuse(reason, format!("outside the scope of key {id}")));
            }
        },
        _ => submitter.sender_login(),
    };
    match login {
        Some(login) if !ctx.config.senders.may_send_as(login, from) => {
            let reason = Reason::SenderNotOwned { sender: from.to_string(), login: login.to_string() };
            Err(refuse(reason, format!("{login} does not own it")))
        }
        _ => Ok(()),
    }
}

/// After DATA: every From:/Sender: address of a login's message must be its own.
pub fn check_headers(ctx: &Context, submitter: &Submitter, message: &[u8]) -> Result<(), Refusal> {
    let Some(login) = submitter.sender_login() else {
        return Ok(());
    };
    match ctx.config.senders.header_mismatch(login, message) {
        None => Ok(()),
        Some(n) => {
            Err(refuse(Reason::HeaderNotOwned { field: n.field, login: login.to_string() }, format!("{n} by {login}")))
        }
    }
}

/// The store reads `check_rcpt` makes for remote recipients (whether the sending account or the
/// sender domain is paused; the suppression entries of the address), made once for many
/// recipients: an API request reads them for all its messages' recipients in two store calls
/// (`Prefetched::read`) instead of two per recipient. The empty one (`Default`) has read
/// nothing, and `check_rcpt` then reads for itself.
#[derive(Debug, Default)]
pub struct Prefetched {
    /// The first pause among each list of accounts read (`pause_accounts`).
    pauses: std::collections::HashMap<Vec<String>, Option<crate::store::AccountPause>>,
    /// Every entry of the addresses read (by `Mailbox::key`), oldest first; None: not read.
    suppressions: Option<std::collections::HashMap<String, Vec<crate::store::Suppression>>>,
}

impl Prefetched {
    /// Reads the pauses of every distinct (submitter, sender) pair (one store call each; a
    /// request has one sender domain as a rule) and the suppression entries of every recipient
    /// (one store call), for mail from `senders` to `recipients`. What cannot be read is left
    /// out, and `check_rcpt` then asks the store itself (and fails as it would).
    pub async fn read(
        ctx: &Context,
        submitter: &Submitter,
        senders: &[ReversePath],
        recipients: &[Mailbox],
    ) -> Prefetched {
        let mut pauses = std::collections::HashMap::new();
        for from in senders {
            let accounts = pause_accounts(submitter, from);
            if !pauses.contains_key(&accounts)
                && let Ok(pause) = ctx.store.first_pause(accounts.clone()).await
            {
                pauses.insert(accounts, pause);
            }
        }
        let mut suppressions = None;
        if ctx.config.bounce.enforce_suppression && !recipients.is_empty() {
            let mut keys: Vec<String> = recipients.iter().map(Mailbox::key).collect();
            keys.sort();
            keys.dedup();
            if let Ok(entries) = ctx.store.suppressions_of(keys.clone()).await {
                let mut by_address: std::collections::HashMap<String, Vec<_>> =
                    keys.into_iter().map(|k| (k, Vec::new())).collect();
                for entry in entries {
                    if let Some(list) = by_address.get_mut(&entry.address) {
                        list.push(entry);
                    }
                }
                suppressions = Some(by_address);
            }
        }
        Prefetched { pauses, suppressions }
    }
}

/// The accounts whose pause refuses mail from `from` by `submitter`: the sending account, and
/// the sender domain (the complaint breaker's own window).
fn pause_accounts(submitter: &Submitter, from: &ReversePath) -> Vec<String> {
    let sender_domain = crate::store::path_domain(from).map(|d| crate::bounce::breaker::domain_account(d.as_str()));
    submitter.account().into_iter().chain(sender_domain).collect()
}

/// RCPT TO: resolves the recipient of mail from `from` or refuses it with the DESIGN §4 reason.
pub async fn check_rcpt(
    ctx: &Context,
    submitter: &Submitter,
    from: &ReversePath,
    to: &ForwardPath,
    params: &RcptParams,
    declared_size: Option<u64>,
) -> Result<AcceptedRcpt, Refusal> {
    check_rcpt_with(ctx, submitter, from, to, params, declared_size, &Prefetched::default()).await
}

/// `check_rcpt` with the pauses and suppression entries read before (`Prefetched`) where
/// they cover this recipient; the store is asked only for what they do not.
pub async fn check_rcpt_with(
    ctx: &Context,
    submitter: &Submitter,
    from: &ReversePath,
    to: &ForwardPath,
    params: &RcptParams,
    declared_size: Option<u64>,
    known: &Prefetched,
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
    let report_address = ctx.config.bounce.complaint_addresses.contains(&rcpt.key())
        || (unsubscribe::looks_like_mailto(rcpt.local()) && *rcpt.domain() == ctx.config.unsubscribe.mailto_domain);
    if report_address && matches!(submitter, Submitter::ApiKey { .. }) {
        // Reports come from mailbox providers over SMTP; an API key (a tenant) must not be
        // able to write one that suppresses another tenant's recipient.
        return Err(refuse(Reason::RelayDenied { rcpt: shown }, "a report address, through the API".to_string()));
    }
    if ctx.config.bounce.complaint_addresses.contains(&rcpt.key()) {
        // A feedback loop's address: ARF complaints, read by `feedback::reports`.
        return Ok(accepted(shown, Destination::Report));
    }
    if unsubscribe::looks_like_mailto(rcpt.local()) && *rcpt.domain() == ctx.config.unsubscribe.mailto_domain {
        // RFC 2369 mailto unsubscribe: read by `feedback::reports`, from anyone.
        return match ctx.unsubscribe.verify_mailto(rcpt.local()) {
            Ok(_) => Ok(accepted(shown, Destination::Report)),
            Err(e) => Err(refuse(Reason::InvalidUnsubscribeAddress { rcpt: shown }, format!("unsubscribe: {e}"))),
        };
    }
    if return_path::looks_signed(rcpt.local()) && rcpt.domain().as_str() == ctx.return_path.domain {
        return match ctx.return_path.verify_address(rcpt.local(), rcpt.domain().as_str(), Timestamp::now()) {
            Ok(token) => {
                let about = Destination::BounceOf {
                    queue_id: MessageId(token.queue_id),
                    rid: (token.recipient_id > 0).then_some(RecipientId(token.recipient_id)),
                };
                Ok(accepted(shown, about))
            }
            Err(e) => Err(refuse(Reason::InvalidBounceAddress { rcpt: shown }, format!("backscatter? {e:?}"))),
        };
    }
    if !ctx.config.is_local_domain(rcpt.domain()) {
        // Only a client without a login outside the trusted networks may not relay.
        if let Submitter::Client { ip, trusted: false, .. } = submitter {
            let detail = format!("relay to {} from {ip}", rcpt.domain());
            return Err(refuse(Reason::RelayDenied { rcpt: shown }, detail));
        }
        let accounts = pause_accounts(submitter, from);
        let pause = match known.pauses.get(&accounts) {
            Some(p) => p.clone(),
            None => ctx.store.first_pause(accounts).await.ok().flatten(),
        };
        if let Some(p) = pause {
            let detail = format!("{} paused", p.account);
            return Err(refuse(Reason::AccountPaused { account: p.account, why: p.detail }, detail));
        }
        let entry = if ctx.config.bounce.enforce_suppression {
            let sender = crate::store::path_domain(from);
            match known.suppressions.as_ref().and_then(|s| s.get(&rcpt.key())) {
                Some(entries) => entries.iter().find(|e| e.refuses(sender.as_ref())).cloned(),
                None => ctx
                    .store
                    .suppression_for(&rcpt.key(), sender.as_ref())
                    .await
                    .map_err(|e| store_failed(&e, "suppression lookup"))?,
            }
        } else {
            None
        };
        if let Some(s) = entry {
            let reason = Reason::Suppressed { rcpt: shown, since: s.created_at, why: s.reason };
            return Err(refuse(reason, "suppressed address"));
        }
        // Submission: a domain that does not exist is refused now, not bounced later. Only a
        // definite NXDOMAIN counts; a DNS failure is left to delivery, which retries.
        if submitter.checks_domains()
            && !rcpt.domain().is_address_literal()
            && !ctx.config.routes.contains_key(rcpt.domain().as_str())
            && let Some(dns) = &ctx.dns
            && dns.mx(rcpt.domain().as_str()).await == Err(crate::dns::DnsFailure::NxDomain)
        {
            return Err(refuse(Reason::DomainNotFound { rcpt: shown }, format!("NXDOMAIN for {}", rcpt.domain())));
        }
        let found = super::checks::recipient(&shown, &ctx.config.check);
        if let Some(c) = found.refuse {
            let why = super::checks::note(&c);
            return Err(refuse(Reason::CheckFailed { rcpt: shown, check: c.name, why: why.clone() }, why));
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
    let record = ctx.store.mailbox(&key).await.map_err(|e| store_failed(&e, "mailbox lookup"))?;
    if record.is_none() && !implicit {
        return Err(refuse(Reason::UserUnknown { rcpt: shown }, format!("no mailbox {key}")));
    }
    let quota = record.as_ref().and_then(|r| r.quota).unwrap_or(ctx.config.local.quota);
    let used = mailbox_usage(ctx, &key, quota).await;
    if used >= quota || used.saturating_add(declared_size.unwrap_or(0)) > quota {
        return Err(refuse(Reason::MailboxFull { rcpt: shown }, format!("{key}: {used} of {quota} bytes used")));
    }
    if matches!(from, ReversePath::Null) && ctx.config.bounce.read_null_sender {
        // A bounce (or a forged one) to a local mailbox: read it before anyone sees it.
        return Ok(accepted(shown, Destination::NullSenderTo(key)));
    }
    Ok(accepted(shown, Destination::Mailbox(key)))
}

/// Bytes a local mailbox holds, for the quota check: with our own Maildirs, the Maildir++
/// `maildirsize` Dovecot's quota plugin keeps too (`local::quota`), so mail deleted over IMAP
/// frees space at once; with LMTP, 0: the mailbox server's quota answers (552 5.2.2 at its
/// RCPT, a mailbox-full deferral). A Maildir that cannot be read counts as empty here
/// (delivery reports the trouble).
async fn mailbox_usage(ctx: &Context, key: &str, quota: u64) -> u64 {
    if ctx.config.local.transport != crate::config::LocalTransport::Maildir {
        return 0;
    }
    let dir = crate::local::maildir::mailbox_dir(&ctx.config.data_dir.join("mail"), key);
    match tokio::task::spawn_blocking(move || crate::local::quota::usage(&dir, quota)).await {
        Ok(Ok(usage)) => usage.bytes,
        Ok(Err(e)) => {
            tracing::warn!(mailbox = %key, error = %e, "maildirsize not readable: quota not checked");
            0
        }
        Err(_) => 0,
    }
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
