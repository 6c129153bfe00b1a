//! `POST /api/v1/messages` (send) and `GET /api/v1/messages/{id}` (its recipients and events).
//!
//! `send` reads in steps: `validate` (header values), `sender` (scope, paused account), `read`
//! (addresses, attachments), `recipients` (each through `inbound::policy::check_rcpt` as
//! `Submitter::ApiKey`, the decisions of authenticated SMTP submission: suppression, domain
//! not found, local users and quotas, the checklist's address checks), `build` (mail-builder,
//! size limit), `check_message` (the checklist's message checks), then `accept` (DKIM,
//! durable commit). The reply comes after the commit and says, per recipient, `queued` or
//! `refused` and why (the refusal's typed `policy::Reason`, never its reply text).
//! With an `Idempotency-Key` header (`idempotency::guard`) a stored response of the same key and
//! API key is replayed (the same body) or refused with 422 (another body); otherwise the
//! record of this request, holding its reply, is committed with the message.
//! `prepare` (everything but the commit) and `commit` are shared with the batch and raw sends.
//! Before anything is built, every value that ends up in a header or a MIME part header is
//! checked (`validate`): a control character in one is a 422 naming the JSON field.
//! A scoped key reads only messages sent from its domains (others are unknown ids).
//! Standards: RFC 5322 (the built message), RFC 2045 (base64 attachments, media types), RFC 9457.
//! Must not: answer 202 before the store committed, queue a second message for a key already
//! recorded, let a key send from a foreign domain or
//! read a foreign message, or let a request add a header or a MIME part of its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::text::Text;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::super::AppState;
use super::super::auth::Caller;
use super::super::problem::Problem;
use super::idempotency;
use crate::accept::{self, Incoming};
use crate::checklist::message as message_checks;
use crate::checklist::{Check, CheckReport};
use crate::config::CheckName;
use crate::inbound::policy::{self, Reason, Submitter};
use crate::inbound::{checks, session::AcceptedRcpt};
use crate::smtp::address::{Domain, Mailbox, ReversePath};
use crate::smtp::command::{ForwardPath, MailParams, RcptParams};
use crate::store::{ApiKey, MessageId, Origin, RejectedRcpt, StoreError, Transport, Via};
use crate::time::Timestamp;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub from: String,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub bcc: Vec<String>,
    pub reply_to: Option<String>,
    #[serde(default)]
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Run every check and record the events (marked `sandbox`), but queue nothing.
    #[serde(default)]
    pub sandbox: bool,
    /// The name of a template of the key (`/api/v1/templates`) that gives subject, text and
    /// html, rendered with `variables`.
    pub template: Option<String>,
    pub variables: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub filename: String,
    pub content_type: Option<String>,
    /// Base64 of the file.
    pub content: String,
}

/// `name <addr>` or `addr` → (display name, address).
fn split_address(s: &str) -> (Option<String>, String) {
    match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => {
            let name = s.get(..a).unwrap_or("").trim().trim_matches('"').trim();
            let addr = s.get(a + 1..b).unwrap_or("").trim();
            ((!name.is_empty()).then(|| name.to_string()), addr.to_string())
        }
        _ => (None, s.trim().to_string()),
    }
}

pub(super) fn mailbox(field: &str, s: &str) -> Result<(Option<String>, Mailbox), Problem> {
    let (name, addr) = split_address(s);
    let m = Mailbox::parse(&addr).map_err(|e| Problem::invalid(field, format!("`{addr}` is not an address: {e}")))?;
    Ok((name, m))
}

fn address<'a>(name: &'a Option<String>, m: &'a Mailbox) -> Address<'a> {
    Address::new_address(name.as_deref(), m.to_string())
}

/// Headers the API sets itself; `headers` may not override them.
const RESERVED: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "received",
    "return-path",
    "dkim-signature",
];

pub async fn send(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = body.map_err(|e| super::body::unreadable(&e))?;
    idempotency::guard(&state, &key, &headers, b"", body, async |body, pending| {
        send_once(&state, &key, &headers, body, pending).await
    })
    .await
}

/// Reads, checks, builds and queues one request's message; with `pending`, its idempotency
/// record (holding the reply) is committed with the message.
async fn send_once(
    state: &AppState,
    key: &ApiKey,
    headers: &HeaderMap,
    body: Bytes,
    pending: Option<idempotency::Pending>,
) -> Result<Response, Problem> {
    // The content type, the syntax and every field (a missing `from` is a 422 naming it), on
    // the bytes we hashed.
    let req: SendRequest = super::body::json(headers, &body)?;
    let ctx = &state.ctx;
    let submitter = Submitter::ApiKey { id: key.id.clone(), scope: key.scope.clone() };
    not_paused(ctx, key).await?;
    let now = Timestamp::now();
    let reads = Reads::read(ctx, key, &submitter, &[&req]).await?;
    let prepared = prepare(ctx, key, &submitter, &req, &reads, MessageId::generate(now), now).await?;
    queue_one(ctx, key, &submitter, prepared, pending).await
}

/// Stores one prepared send (the single and the raw send), with its idempotency record when
/// the request has a key, and answers 202 with its reply, written once for both.
pub(super) async fn queue_one(
    ctx: &crate::inbound::Context,
    key: &ApiKey,
    submitter: &Submitter,
    mut prepared: Prepared,
    pending: Option<idempotency::Pending>,
) -> Result<Response, Problem> {
    let status = StatusCode::ACCEPTED;
    let body = idempotency::reply_text(&prepared.reply)?;
    let at = prepared.incoming.received_at;
    prepared.incoming.idempotency = pending.map(|p| p.record(key, &prepared.incoming.id, status, body.clone(), at));
    commit(ctx, submitter, vec![prepared.incoming], &[prepared.remote]).await?;
    Ok(idempotency::json_response(status, body))
}

/// A send request made ready for the queue: the message and the reply it gets once stored.
pub(super) struct Prepared {
    pub incoming: Incoming,
    pub reply: SendReply,
    /// Recipients that leave here (for the hard-bounce breaker).
    pub remote: u64,
}

/// What a request reads from the store once for all its messages (a batch has up to 500):
/// the pauses and suppression entries its recipients are checked against, and the templates
/// its messages name.
pub(super) struct Reads {
    pub policy: policy::Prefetched,
    templates: std::collections::HashMap<String, Option<crate::store::Template>>,
}

impl Reads {
    /// The reads for `requests`: one read per template named and, for several messages (a
    /// batch), one suppression read for all their recipients and one pause read per sender
    /// domain. A single send leaves those to `check_rcpt`, whose suppression lookups
    /// PostgreSQL batches across concurrent requests. Unparsable addresses are skipped (the
    /// message's own checks refuse them).
    pub async fn read(
        ctx: &crate::inbound::Context,
        key: &ApiKey,
        submitter: &Submitter,
        requests: &[&SendRequest],
    ) -> Result<Reads, Problem> {
        let mut senders: Vec<ReversePath> = Vec::new();
        let mut rcpts = Vec::new();
        let mut templates = std::collections::HashMap::new();
        for req in requests {
            if let Ok((_, from)) = mailbox("from", &req.from) {
                let path = ReversePath::Mailbox(from);
                if !senders.contains(&path) {
                    senders.push(path);
                }
            }
            let listed = req.to.iter().chain(&req.cc).chain(&req.bcc);
            rcpts.extend(listed.filter_map(|s| mailbox("to", s).ok()).map(|(_, m)| m));
            if let Some(name) = &req.template
                && !templates.contains_key(name)
            {
                templates.insert(name.clone(), ctx.store.template(&key.id, name).await?);
            }
        }
        let policy = if requests.len() > 1 {
            policy::Prefetched::read(ctx, submitter, &senders, &rcpts).await
        } else {
            policy::Prefetched::default()
        };
        Ok(Reads { policy, templates })
    }
}

/// The request with its template rendered (`templates::apply`), or as it is without one.
fn rendered<'r>(
    ctx: &crate::inbound::Context,
    req: &'r SendRequest,
    reads: &Reads,
) -> Result<std::borrow::Cow<'r, SendRequest>, Problem> {
    let Some(name) = &req.template else {
        if req.variables.is_some() {
            return Err(Problem::invalid("variables", "variables without a template: name one in `template`"));
        }
        return Ok(std::borrow::Cow::Borrowed(req));
    };
    let Some(Some(template)) = reads.templates.get(name) else {
        return Err(Problem::invalid("template", format!("no template `{name}` (see GET /api/v1/templates)")));
    };
    let max = usize::try_from(ctx.config.limits.max_message_size).unwrap_or(usize::MAX);
    super::templates::apply(req, template, max).map(std::borrow::Cow::Owned)
}

/// Everything but the commit: the template, the header values, the sender's scope, the
/// addresses and attachments, each recipient's fate, the built message and the checklist's
/// message checks.
pub(super) async fn prepare(
    ctx: &crate::inbound::Context,
    key: &ApiKey,
    submitter: &Submitter,
    req: &SendRequest,
    reads: &Reads,
    id: MessageId,
    now: Timestamp,
) -> Result<Prepared, Problem> {
    let req = &*rendered(ctx, req, reads)?;
    validate(req)?;
    let sender = sender(ctx, key, submitter, req)?;
    let draft = read(&ctx.config, req, sender)?;
    let fates = recipients(ctx, submitter, &draft.from, &draft.listed, &reads.policy).await?;
    let (message, message_id) = build(&ctx.config, req, &draft, &id, now)?;
    let findings = built_findings(req, message.len(), ctx.config.limits.max_message_size);
    let origin = origin(key, &req.tags, &req.metadata, req.sandbox);
    let built = Built { message, message_id: &format!("<{message_id}>"), findings };
    finish(ctx, id, draft.from, fates, built, origin, now)
}

/// A message ready for `finish`: its bytes, its Message-ID (with the angle brackets) and, when
/// mailerd wrote it from what the request says (`built_findings`), the checklist's findings.
pub(super) struct Built<'a> {
    pub message: Vec<u8>,
    pub message_id: &'a str,
    /// None: the message checks read the message.
    pub findings: Option<CheckReport>,
}

/// The end every send shares once its message is built: the checklist's message checks when a
/// recipient leaves here, the reply, one-click unsubscribe (API mail is bulk mail, unless the
/// message carries its own `List-Unsubscribe`), and the message ready for the queue.
pub(super) fn finish(
    ctx: &crate::inbound::Context,
    id: MessageId,
    from: Mailbox,
    fates: Recipients,
    Built { message, message_id, findings }: Built<'_>,
    origin: Origin,
    now: Timestamp,
) -> Result<Prepared, Problem> {
    let Recipients { report, accepted, mut notes, rejected } = fates;
    if accepted.iter().any(|r| r.transport() == Transport::Remote) {
        notes.extend(check_message(ctx, &message, findings)?);
    }
    let reply =
        SendReply { id: id.clone(), message_id: message_id.to_string(), recipients: report, sandbox: origin.sandbox };
    let from = ReversePath::Mailbox(from);
    let recipients: Vec<_> = accepted.into_iter().map(Into::into).collect();
    let message = crate::inbound::unsubscribe::add_headers(ctx, &id, &from, &recipients, message);
    let incoming = Incoming {
        id,
        from,
        params: MailParams::default(),
        recipients,
        origin,
        received_at: now,
        message,
        reports: Vec::new(),
        notes,
        rejected,
        idempotency: None,
    };
    Ok(Prepared { remote: remote_of(&incoming), incoming, reply })
}

/// The reply to a send: the queue id, the Message-ID, each recipient's fate; `sandbox: true`
/// for a sandbox send (the recipients say what would have happened). Typed, not a
/// `serde_json::Value`: a batch of 500 built, merged and dropped a map per message and one
/// per recipient.
#[derive(Debug, Serialize)]
pub(super) struct SendReply {
    pub id: MessageId,
    pub message_id: String,
    pub recipients: Vec<RecipientReport>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sandbox: bool,
}

/// One recipient of a send: as given, where (`to[0]`), and `state` queued or refused.
#[derive(Debug, Serialize)]
pub(super) struct RecipientReport {
    address: String,
    field: String,
    #[serde(flatten)]
    fate: Fate,
}

/// A recipient's `state`, and for a refusal its machine-readable `reason` and the reply.
#[derive(Debug, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Fate {
    Queued,
    Refused { reason: &'static str, detail: String },
}

/// Recipients that will leave here (none for a sandbox send), for the hard-bounce breaker.
pub(super) fn remote_of(incoming: &Incoming) -> u64 {
    if incoming.origin.sandbox {
        return 0;
    }
    incoming.recipients.iter().filter(|r| r.transport() == Transport::Remote).count() as u64
}

/// The origin the API's messages are stored with; every message of a sandbox key is a
/// sandbox message, whatever the request says.
pub(super) fn origin(key: &ApiKey, tags: &[String], metadata: &BTreeMap<String, String>, sandbox: bool) -> Origin {
    Origin {
        sandbox: sandbox || key.sandbox,
        via: Via::Api,
        client_ip: API_CLIENT.to_string(),
        helo: "api".into(),
        auth_user: Some(format!("apikey:{} ({})", key.id, key.name)),
        tls: false,
        tags: tags.to_vec(),
        metadata: metadata.clone(),
    }
}

/// Stores the prepared messages in one durable commit (all or none) and counts their remote
/// recipients for the hard-bounce breaker. A live idempotency key of another request is the
/// `idempotency::KEY_TAKEN` problem, which `idempotency::guard` turns into a replay.
pub(super) async fn commit(
    ctx: &crate::inbound::Context,
    submitter: &Submitter,
    incoming: Vec<Incoming>,
    remote: &[u64],
) -> Result<(), Problem> {
    let now = Timestamp::now();
    // Each message's sender domain, for its complaint window (a paused domain's recipients were
    // refused by the policy already).
    let senders: Vec<Option<Domain>> = incoming.iter().map(|i| crate::store::path_domain(&i.from)).collect();
    if let Some(account) = submitter.account() {
        // Sandbox sends go nowhere: they are not the account's sending.
        for m in incoming.iter().filter(|m| !m.origin.sandbox) {
            let (from, domains) = crate::suspect::message_parts(&m.from, &m.recipients);
            if let Err(s) = ctx.suspect.admit(&account, from.as_ref(), &domains).await {
                return Err(paused_problem(&s.detail));
            }
        }
    }
    let stored = match <[Incoming; 1]>::try_from(incoming) {
        Ok([one]) => accept::accept(ctx.store.as_ref(), &ctx.queue_wakeup, ctx.dkim.as_deref(), one).await.map(drop),
        Err(many) => {
            accept::accept_all(ctx.store.as_ref(), &ctx.queue_wakeup, ctx.dkim.as_deref(), many).await.map(drop)
        }
    };
    match stored {
        Ok(()) => {}
        Err(StoreError::IdempotencyKeyTaken) => return Err(idempotency::key_taken()),
        Err(e) => return Err(e.into()),
    }
    // Counted once per sender domain (a batch's messages mostly share one): the same sums.
    let mut per_domain: BTreeMap<Option<&str>, u64> = BTreeMap::new();
    for (domain, n) in senders.iter().zip(remote) {
        *per_domain.entry(domain.as_ref().map(|d| d.as_str())).or_default() += n;
    }
    let account = submitter.account();
    for (domain, n) in per_domain {
        ctx.breaker.sent_by(account.as_deref(), domain, n, now);
    }
    Ok(())
}

/// The client address the API's messages are recorded with.
const API_CLIENT: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// The envelope sender: an address in the key's scope (`policy::check_sender`).
fn sender(
    ctx: &crate::inbound::Context,
    key: &ApiKey,
    submitter: &Submitter,
    req: &SendRequest,
) -> Result<(Option<String>, Mailbox), Problem> {
    let (from_name, from) = mailbox("from", &req.from)?;
    in_scope(ctx, key, submitter, &from)?;
    Ok((from_name, from))
}

/// A 403 naming `from` unless the key may send from `from`.
pub(super) fn in_scope(
    ctx: &crate::inbound::Context,
    key: &ApiKey,
    submitter: &Submitter,
    from: &Mailbox,
) -> Result<(), Problem> {
    if policy::check_sender(ctx, submitter, &ReversePath::Mailbox(from.clone())).is_err() {
        return Err(Problem::forbidden("from", format!("API key `{}` may send only from {}", key.name, key.scope)));
    }
    Ok(())
}

/// A 403 when sending is paused for the key's account (checked once per request).
pub(super) async fn not_paused(ctx: &crate::inbound::Context, key: &ApiKey) -> Result<(), Problem> {
    let account = format!("apikey:{}", key.id);
    if let Ok(Some(p)) = ctx.store.account_pause(&account).await {
        return Err(paused_problem(&p.detail));
    }
    Ok(())
}

/// The 403 of a paused key (the breaker's or the compromised-account detector's pause).
fn paused_problem(detail: &str) -> Problem {
    let mut problem = Problem::forbidden("from", format!("sending is paused for this key: {detail}"));
    problem.kind = "account-paused";
    problem.with(json!({ "resume": "mailerd account resume " }))
}

/// A recipient as the request lists it: field (`to`, `cc`, `bcc`), index, display name, address.
pub(super) struct Listed {
    pub field: &'static str,
    pub index: usize,
    pub name: Option<String>,
    pub mailbox: Mailbox,
}

/// A request read: every address parsed, the attachments decoded.
struct Draft<'r> {
    from_name: Option<String>,
    from: Mailbox,
    listed: Vec<Listed>,
    reply_to: Option<(Option<String>, Mailbox)>,
    /// (content type, file name, bytes)
    files: Vec<(&'r str, &'r str, Vec<u8>)>,
}

/// Reads the rest of the request: recipients (at least one, at most `max_recipients`), a
/// message that is not empty, Reply-To, and the attachments' base64.
fn read<'r>(
    config: &crate::config::Config,
    req: &'r SendRequest,
    (from_name, from): (Option<String>, Mailbox),
) -> Result<Draft<'r>, Problem> {
    if req.to.is_empty() && req.cc.is_empty() && req.bcc.is_empty() {
        return Err(Problem::invalid("to", "no recipients: give at least one of to, cc, bcc"));
    }
    if req.text.is_none() && req.html.is_none() && req.attachments.is_empty() {
        return Err(Problem::invalid("text", "an empty message: give text, html or attachments"));
    }
    let total = req.to.len() + req.cc.len() + req.bcc.len();
    if total > config.limits.max_recipients {
        return Err(Problem::invalid(
            "to",
            format!("{total} recipients; at most {} per message", config.limits.max_recipients),
        ));
    }
    let mut listed = Vec::new();
    for (field, list) in [("to", &req.to), ("cc", &req.cc), ("bcc", &req.bcc)] {
        for (index, s) in list.iter().enumerate() {
            let (name, mailbox) = mailbox(&format!("{field}[{index}]"), s)?;
            listed.push(Listed { field, index, name, mailbox });
        }
    }
    let reply_to = req.reply_to.as_deref().map(|r| mailbox("reply_to", r)).transpose()?;
    let mut files = Vec::new();
    for (i, a) in req.attachments.iter().enumerate() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(a.content.as_bytes())
            .map_err(|e| Problem::invalid(format!("attachments[{i}].content"), format!("not base64: {e}")))?;
        let content_type = a.content_type.as_deref().map_or("application/octet-stream", str::trim);
        files.push((content_type, a.filename.as_str(), bytes));
    }
    Ok(Draft { from_name, from, listed, reply_to, files })
}

/// The recipients' fate: the per-recipient report, the accepted ones, checklist notes, and the
/// refused ones (recorded as `rejected` events with the message).
pub(super) struct Recipients {
    pub report: Vec<RecipientReport>,
    pub accepted: Vec<AcceptedRcpt>,
    pub notes: Vec<(Option<String>, String)>,
    pub rejected: Vec<RejectedRcpt>,
}

/// Each recipient through `policy::check_rcpt`, the same decisions as authenticated
/// submission; a 422 when every one is refused.
pub(super) async fn recipients(
    ctx: &crate::inbound::Context,
    submitter: &Submitter,
    from: &Mailbox,
    listed: &[Listed],
    known: &policy::Prefetched,
) -> Result<Recipients, Problem> {
    let from = ReversePath::Mailbox(from.clone());
    let mut out = Recipients { report: Vec::new(), accepted: Vec::new(), notes: Vec::new(), rejected: Vec::new() };
    for Listed { field, index, mailbox, .. } in listed {
        let shown = mailbox.to_string();
        let to = ForwardPath::Mailbox(mailbox.clone());
        match policy::check_rcpt_with(ctx, submitter, &from, &to, &RcptParams::default(), None, known).await {
            Ok(r) => {
                if out.accepted.iter().any(|a| a.address == r.address) {
                    continue; // the same address twice: one delivery
                }
                out.notes.extend(r.notes.iter().map(|n| (Some(r.address.clone()), n.clone())));
                out.report.push(RecipientReport {
                    address: shown,
                    field: format!("{field}[{index}]"),
                    fate: Fate::Queued,
                });
                out.accepted.push(r);
            }
            Err(refusal) => {
                let reply = refusal.reply();
                let fate = Fate::Refused { reason: refusal_reason(&refusal.reason), detail: reply.lines.join(" ") };
                out.rejected.push(rejected_rcpt(shown.clone(), &reply));
                out.report.push(RecipientReport { address: shown, field: format!("{field}[{index}]"), fate });
            }
        }
    }
    if out.accepted.is_empty() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no-recipients",
            "Every recipient was refused",
            "nothing was queued; see recipients for why",
        )
        .at("to")
        .with(json!({ "recipients": out.report })));
    }
    Ok(out)
}

/// The message as mail-builder writes it, after our trace header, within the size limit;
/// and its Message-ID (without the angle brackets).
fn build(
    config: &crate::config::Config,
    req: &SendRequest,
    draft: &Draft<'_>,
    id: &MessageId,
    now: Timestamp,
) -> Result<(Vec<u8>, String), Problem> {
    let message_id = format!("{}@{}", id.0.to_ascii_lowercase(), draft.from.domain());
    let visible = |field: &str| -> Vec<Address<'_>> {
        draft.listed.iter().filter(|l| l.field == field).map(|l| address(&l.name, &l.mailbox)).collect()
    };
    let mut builder = MessageBuilder::new()
        .from(address(&draft.from_name, &draft.from))
        .subject(req.subject.as_str())
        .message_id(message_id.as_str())
        .date(now.millis() / 1000);
    let (to_list, cc_list) = (visible("to"), visible("cc"));
    if !to_list.is_empty() {
        builder = builder.to(Address::new_list(to_list));
    }
    if !cc_list.is_empty() {
        builder = builder.cc(Address::new_list(cc_list));
    }
    if let Some((n, m)) = &draft.reply_to {
        builder = builder.reply_to(address(n, m));
    }
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), Text::new(value.as_str()));
    }
    if let Some(t) = &req.text {
        builder = builder.text_body(t.as_str());
    }
    if let Some(h) = &req.html {
        builder = builder.html_body(h.as_str());
    }
    for (ct, name, bytes) in &draft.files {
        builder = builder.attachment(*ct, *name, bytes.as_slice());
    }
    let trace = accept::Trace { hostname: &config.hostname, id, at: now, arrival: accept::Arrival::Http };
    let mut message = Vec::with_capacity(room(req));
    message.extend_from_slice(accept::received_header(&trace).as_bytes());
    builder.write_to(&mut message).map_err(|e| Problem::bad_request(format!("building the message: {e}")))?;
    let limit = config.limits.max_message_size;
    if message.len() as u64 > limit {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Message too large",
            format!(
                "{} bytes once encoded (base64 makes attachments a third larger); the limit is {limit}: send a link instead",
                message.len(),
            ),
        ));
    }
    Ok((message, message_id))
}

/// Room for the message `build` writes for `req`, so that it is written into one buffer: the
/// parts a little larger once encoded (quoted-printable's soft breaks, base64's line ends), and
/// the trace, header and unsubscribe fields. A guess that falls short only costs a reallocation.
fn room(req: &SendRequest) -> usize {
    let parts = req.text.as_ref().map_or(0, String::len) + req.html.as_ref().map_or(0, String::len);
    let files: usize = req.attachments.iter().map(|a| a.content.len() + a.content.len() / 38 + 256).sum();
    2048 + parts + parts / 8 + files
}

/// The longest subject, address (with its display name), file name or content type whose
/// header lines `built_findings` vouches for.
const KNOWN_FIELD: usize = 256;
/// The most visible recipients (To and Cc) whose header lines `built_findings` vouches for.
const KNOWN_RECIPIENTS: usize = 50;

/// The checklist's message findings on the message `build` wrote for `req` (`size` bytes),
/// known without reading it back: mail-builder writes From, Date and Message-ID once each,
/// header lines that are fields and short, non-ASCII text as encoded words, every body part
/// 7-bit with short CRLF lines (quoted-printable or base64 where needed), HTML and text as
/// multipart/alternative and files as attachments; so all that is left to find is the size
/// and HTML without text. None for a request with header fields of its own, or with a long
/// subject, address, file name or content type, or many visible recipients: its message is
/// read back (`checks::message`). The proptest `built_findings_are_the_checks_of_the_message`
/// holds this to the checks on the built message.
fn built_findings(req: &SendRequest, size: usize, max_size: u64) -> Option<CheckReport> {
    let short = |s: &str| s.len() <= KNOWN_FIELD;
    let fields = [&req.from, &req.subject].into_iter().chain(&req.to).chain(&req.cc).chain(&req.reply_to);
    let files = req.attachments.iter().flat_map(|a| std::iter::once(&a.filename).chain(&a.content_type));
    // mail-builder writes a short-lined 7-bit body as it is given: a CR of its own stays one.
    let no_bare_cr =
        |body: &Option<String>| body.as_deref().is_none_or(|b| message_checks::bare_crs(b.as_bytes()) == 0);
    let known = req.headers.is_empty()
        && req.to.len() + req.cc.len() <= KNOWN_RECIPIENTS
        && fields.chain(files).all(|f| short(f))
        && no_bare_cr(&req.text)
        && no_bare_cr(&req.html);
    if !known {
        return None;
    }
    let mut report = CheckReport::new("file", "message");
    report.push(message_checks::check_size(size as u64, max_size));
    for name in [CheckName::Headers, CheckName::HeaderSyntax, CheckName::LineLength, CheckName::EightBit] {
        report.push(Check::ok(name.as_str()));
    }
    report.push(message_checks::text_alternative(req.html.is_some(), req.text.is_some()));
    Some(report)
}

/// The checklist's message checks for mail that leaves (on `findings` when they are known, on
/// the message otherwise): a refusal is a 422, the rest notes.
pub(super) fn check_message(
    ctx: &crate::inbound::Context,
    message: &[u8],
    findings: Option<CheckReport>,
) -> Result<Vec<(Option<String>, String)>, Problem> {
    let found = match findings {
        Some(report) => checks::apply(&report, &ctx.config.check),
        None => checks::message(message, ctx.config.limits.max_message_size, &ctx.config.check),
    };
    if let Some(c) = found.refuse {
        let mut p = Problem::invalid("message", checks::note(&c));
        p.kind = "check-failed";
        return Err(p);
    }
    Ok(found.notes.into_iter().map(|n| (None, n)).collect())
}

/// The `rejected` event of a refused recipient: the refusal's status and reply as SMTP would
/// give them (a reply without an enhanced status gets the one of its class, x.0.0).
fn rejected_rcpt(address: String, reply: &crate::smtp::reply::SmtpReply) -> RejectedRcpt {
    let class = if reply.code >= 500 { 5 } else { 4 };
    let status = reply.status.unwrap_or(crate::smtp::reply::EnhancedStatus { class, subject: 0, detail: 0 });
    RejectedRcpt { address, status, detail: reply.to_string() }
}

/// The machine-readable reason of a refused recipient.
fn refusal_reason(reason: &Reason) -> &'static str {
    match reason {
        Reason::Suppressed { .. } => "suppressed",
        Reason::UserUnknown { .. } => "user_unknown",
        Reason::DomainNotFound { .. } => "domain_not_found",
        Reason::CheckFailed { .. } => "invalid",
        Reason::MailboxFull { .. } => "mailbox_full",
        Reason::AuthRequired
        | Reason::SenderNotOwned { .. }
        | Reason::HeaderNotOwned { .. }
        | Reason::RelayDenied { .. }
        | Reason::InvalidBounceAddress { .. }
        | Reason::InvalidUnsubscribeAddress { .. }
        | Reason::AccountPaused { .. } => "not_allowed",
        Reason::InsufficientStorage | Reason::StoreFailed { .. } => "try_again_later",
        Reason::MessageTooLarge => "refused",
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// A recipient state (`queued`, `deferred`, `delivered`, `bounced`, `expired`, `held`).
    pub status: Option<String>,
    pub recipient: Option<String>,
    pub tag: Option<String>,
    /// ISO 8601 (`2026-12-01T00:00:00Z`): received at or after.
    pub since: Option<String>,
    pub limit: Option<usize>,
    /// The `next` of the page before.
    pub cursor: Option<String>,
}

/// The search cursor: the last message's time (ms) and queue id, as unpadded base64url JSON.
#[derive(serde::Serialize, Deserialize)]
struct SearchCursor {
    at: i64,
    id: String,
}

/// `GET /api/v1/messages?status=&recipient=&tag=&since=&limit=&cursor=`: the key's messages,
/// newest first, each with its queue `id`; `next` pages on (null after the last page).
pub async fn search(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    super::body::Query(q): super::body::Query<SearchQuery>,
) -> Result<Json<Value>, Problem> {
    let limit = super::body::page_limit(q.limit, 100, 1000)?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            crate::store::RecipientState::parse(s)
                .ok_or_else(|| Problem::invalid("status", "one of queued, deferred, delivered, bounced, expired, held"))
        })
        .transpose()?;
    let since = q
        .since
        .as_deref()
        .map(|s| {
            Timestamp::parse_iso8601(s)
                .ok_or_else(|| Problem::invalid("since", "an ISO 8601 time, e.g. 2026-12-01T00:00:00Z"))
        })
        .transpose()?;
    let before = q
        .cursor
        .as_deref()
        .map(|c| {
            data_encoding::BASE64URL_NOPAD
                .decode(c.as_bytes())
                .ok()
                .and_then(|b| serde_json::from_slice::<SearchCursor>(&b).ok())
                .map(|c| (Timestamp(c.at), MessageId(c.id)))
                .ok_or_else(|| {
                    Problem::invalid("cursor", "not a cursor of this search: pass the `next` of the page before")
                })
        })
        .transpose()?;
    let search =
        crate::store::MessageSearch { state: status, recipient: q.recipient, tag: q.tag, since, before, limit };
    let hits = state.ctx.store.search_messages(&key.scope, &search).await?;
    let next = hits.last().filter(|_| hits.len() == limit).map(|h| {
        let c = SearchCursor { at: h.received_ms, id: h.id.0.clone() };
        data_encoding::BASE64URL_NOPAD.encode(serde_json::to_string(&c).unwrap_or_default().as_bytes())
    });
    Ok(Json(json!({ "messages": hits, "next": next })))
}

/// A scoped key sees only messages whose envelope sender is in its scope; any other id gets
/// the answer of an id that does not exist, so the key cannot tell that it does.
pub async fn show(
    State(state): State<Arc<AppState>>,
    Caller(key): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    match state.ctx.store.message_detail(&MessageId(id.clone())).await? {
        Some(d) if key.scope.covers_sender(&d.entry.reverse_path) => {
            Ok(Json(serde_json::to_value(d).unwrap_or(Value::Null)))
        }
        _ => Err(Problem::not_found_at("id", format!("no message {id}"))),
    }
}

// --- what may go into a header ---

/// A value that ends up in a header or a MIME part header: no control characters (CR and LF
/// would start a header or a part of the caller's making; NUL and the others break parsers),
/// except TAB where the header's grammar allows white space (`tab`).
pub(super) fn header_safe(field: impl FnOnce() -> String, value: &str, tab: bool) -> Result<(), Problem> {
    match value.chars().find(|&c| c.is_control() && !(tab && c == '\t')) {
        None => Ok(()),
        Some(c) => Err(Problem::invalid(
            field(),
            format!("control character U+{:04X} is not allowed here (it would end up in a header)", u32::from(c)),
        )),
    }
}

/// RFC 2045 §5.1 token characters.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
}

/// Whether `ct` is `type/subtype` with optional `; attribute=value` parameters (RFC 2045 §5.1:
/// tokens, values a token or a quoted string of printable characters), and a discrete type:
/// a `multipart/*` or `message/*` attachment would be read as parts of its own (and RFC 2045
/// §6.4 forbids base64 for them).
fn content_type_problem(ct: &str) -> Option<&'static str> {
    let mut params = ct.split(';');
    let media = params.next().unwrap_or("").trim();
    let Some((kind, subtype)) = media.split_once('/') else {
        return Some("not a media type: give type/subtype, e.g. application/pdf");
    };
    if !is_token(kind) || !is_token(subtype) {
        return Some("not a media type: type and subtype are tokens, e.g. application/pdf");
    }
    if kind.eq_ignore_ascii_case("multipart") || kind.eq_ignore_ascii_case("message") {
        return Some("multipart/* and message/* cannot be attachments; send them as application/octet-stream");
    }
    for p in params {
        let Some((name, value)) = p.trim().split_once('=') else {
            return Some("a parameter is not attribute=value");
        };
        let value = value.trim();
        let quoted = value.len() >= 2
            && value.starts_with('"')
            && value.ends_with('"')
            && value
                .get(1..value.len() - 1)
                .is_some_and(|v| v.bytes().all(|b| b == b' ' || (b.is_ascii_graphic() && b != b'"' && b != b'\\')));
        if !is_token(name.trim()) || !(is_token(value) || quoted) {
            return Some("a parameter is not attribute=value with a token or a quoted string");
        }
        if name.trim().eq_ignore_ascii_case("name") || name.trim().eq_ignore_ascii_case("boundary") {
            return Some("the name and boundary parameters are set by mailerd (use filename)");
        }
    }
    None
}

/// Checks every value of the request that ends up in a header (or a part header), and the
/// tags and metadata keys, before anything is built; the problem names the JSON field.
fn validate(req: &SendRequest) -> Result<(), Problem> {
    header_safe(|| "from".into(), &req.from, true)?;
    for (field, list) in [("to", &req.to), ("cc", &req.cc), ("bcc", &req.bcc)] {
        for (i, s) in list.iter().enumerate() {
            header_safe(|| format!("{field}[{i}]"), s, true)?;
        }
    }
    if let Some(r) = &req.reply_to {
        header_safe(|| "reply_to".into(), r, true)?;
    }
    header_safe(|| "subject".into(), &req.subject, true)?;
    for (name, value) in &req.headers {
        let valid = !name.is_empty() && name.len() <= 76 && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        let lower = name.to_ascii_lowercase();
        if !valid || RESERVED.contains(&lower.as_str()) || lower.starts_with("content-") {
            return Err(Problem::invalid(
                format!("headers.{}", name.escape_debug()),
                "not a header name the API lets you set",
            ));
        }
        header_safe(|| format!("headers.{name}"), value, true)?;
    }
    for (i, a) in req.attachments.iter().enumerate() {
        header_safe(|| format!("attachments[{i}].filename"), &a.filename, false)?;
        if a.filename.trim().is_empty() {
            return Err(Problem::invalid(format!("attachments[{i}].filename"), "an attachment needs a file name"));
        }
        if let Some(ct) = &a.content_type {
            header_safe(|| format!("attachments[{i}].content_type"), ct, false)?;
            if let Some(why) = content_type_problem(ct.trim()) {
                return Err(Problem::invalid(format!("attachments[{i}].content_type"), format!("`{ct}`: {why}")));
            }
        }
    }
    for (i, t) in req.tags.iter().enumerate() {
        header_safe(|| format!("tags[{i}]"), t, false)?;
    }
    for key in req.metadata.keys() {
        header_safe(|| format!("metadata.{}", key.escape_debug()), key, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Text as apps send it: words, punctuation, non-ASCII letters, tabs, CR and LF in any
    /// arrangement, and now and then a line longer than 998 characters.
    fn body_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[ -~]{0,80}",
            "[a-zäöüßé€日本 ]{0,40}",
            Just("\n".to_string()),
            Just("\r\n".to_string()),
            Just("\r".to_string()),
            Just("\t".to_string()),
            Just(".\r\n".to_string()),
            Just("From me\n".to_string()),
            (1000usize..1500).prop_map(|n| "y".repeat(n)),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|p| p.concat())
    }

    /// A header value the API accepts (no control characters but tab), short or long.
    fn header_text(max: usize) -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).unwrap(),
            proptest::string::string_regex(&format!("[a-zA-Zäöü€日\t =?_\"]{{0,{max}}}")).unwrap(),
            (200usize..400).prop_map(|n| "z".repeat(n)),
        ]
    }

    fn address() -> impl Strategy<Value = String> {
        ("[a-z]{1,12}", prop::option::of(header_text(40))).prop_map(|(local, name)| match name {
            Some(n) => format!("{} <{local}@rcpt.test>", n.replace(['<', '>', '"'], "")),
            None => format!("{local}@rcpt.test"),
        })
    }

    fn attachment() -> impl Strategy<Value = Attachment> {
        let types = prop_oneof![
            Just(None),
            Just(Some("text/plain".to_string())),
            Just(Some("text/html".to_string())),
            Just(Some("application/pdf".to_string())),
            Just(Some("image/png".to_string())),
            Just(Some("text/plain; charset=utf-8".to_string())),
        ];
        ("[a-zA-Zä ._-]{1,30}", types, prop::collection::vec(any::<u8>(), 0..3000)).prop_map(|(filename, ct, bytes)| {
            Attachment {
                filename: format!("f{filename}"),
                content_type: ct,
                content: base64::engine::general_purpose::STANDARD.encode(bytes),
            }
        })
    }

    fn send_request() -> impl Strategy<Value = SendRequest> {
        (
            prop::option::of(header_text(40)),
            // Up to past `KNOWN_RECIPIENTS` with the Cc below: a To of many names is folded.
            prop::collection::vec(address(), 1..52),
            prop::collection::vec(address(), 0..3),
            prop::option::of(address()),
            header_text(120),
            prop::option::of(body_text()),
            prop::option::of(body_text()),
            prop::collection::vec(attachment(), 0..3),
        )
            .prop_map(|(from_name, to, cc, reply_to, subject, text, html, attachments)| SendRequest {
                from: match from_name {
                    Some(n) => format!("{} <app@sender.test>", n.replace(['<', '>', '"'], "")),
                    None => "app@sender.test".to_string(),
                },
                to,
                cc,
                bcc: Vec::new(),
                reply_to,
                subject,
                text,
                html: html.map(|h| format!("<p>{h}</p>")),
                attachments,
                headers: BTreeMap::new(),
                tags: Vec::new(),
                metadata: BTreeMap::new(),
                sandbox: false,
                template: None,
                variables: None,
            })
    }

    /// The case the proptest found first: mail-builder writes a short body as it is given, so
    /// a CR of its own reaches the message and the request's findings are not known.
    #[test]
    fn a_bare_cr_in_the_text_is_read_back() {
        let req = |text: &str| request(json!({"from": "a@x.test", "to": ["b@y.test"], "text": text}));
        assert!(built_findings(&req("\r"), 1000, 1 << 20).is_none());
        assert!(built_findings(&req("a\r\nb\n"), 1000, 1 << 20).is_some());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, max_global_rejects: 512, ..ProptestConfig::default() })]

        /// What `built_findings` knows of a request's message is what the checklist finds when
        /// it reads the message `build` wrote: every check's status, and the detail and fix of
        /// every finding.
        #[test]
        fn built_findings_are_the_checks_of_the_message(req in send_request()) {
            let config = crate::config::Config::from_toml("").unwrap();
            prop_assume!(validate(&req).is_ok());
            let draft = read(&config, &req, mailbox("from", &req.from).unwrap());
            prop_assume!(draft.is_ok(), "an empty message");
            let draft = draft.unwrap();
            let id = MessageId::generate(Timestamp::now());
            let (message, _) = build(&config, &req, &draft, &id, Timestamp::now()).unwrap();
            let max = config.limits.max_message_size;
            let known = built_findings(&req, message.len(), max);
            let Some(known) = known else { return Ok(()) };
            let read_back = crate::checklist::message::check("message", &message, max);
            let shown = |r: &CheckReport| -> Vec<(&str, crate::checklist::Status, Option<String>, Option<String>)> {
                r.checks.iter().map(|c| {
                    let finding = c.status >= crate::checklist::Status::Warn;
                    (c.name, c.status, c.detail.clone().filter(|_| finding), c.fix.clone().filter(|_| finding))
                }).collect()
            };
            prop_assert_eq!(shown(&known), shown(&read_back), "message:\n{}", String::from_utf8_lossy(&message));
        }
    }

    fn request(json: serde_json::Value) -> SendRequest {
        serde_json::from_value(json).unwrap()
    }

    fn field_of(json: serde_json::Value) -> Option<String> {
        validate(&request(json)).err().and_then(|p| p.field)
    }

    #[test]
    fn controls_in_header_values_are_refused_with_their_field() {
        let base = || json!({"from": "a@x.test", "to": ["b@y.test"], "text": "hi"});
        let with = |k: &str, v: serde_json::Value| {
            let mut j = base();
            j[k] = v;
            j
        };
        assert_eq!(field_of(base()), None);
        assert_eq!(field_of(with("subject", json!("a\r\nBcc: evil@z.test"))).as_deref(), Some("subject"));
        assert_eq!(field_of(with("subject", json!("tab\tis fine"))), None);
        assert_eq!(field_of(with("from", json!("Evil\n <a@x.test>"))).as_deref(), Some("from"));
        assert_eq!(field_of(with("cc", json!(["ok@y.test", "x\u{0}@y.test"]))).as_deref(), Some("cc[1]"));
        assert_eq!(field_of(with("reply_to", json!("r\r@y.test"))).as_deref(), Some("reply_to"));
        assert_eq!(field_of(with("headers", json!({"X-A": "1\r\nX-B: 2"}))).as_deref(), Some("headers.X-A"));
        assert_eq!(
            field_of(with("headers", json!({"Content-Disposition": "inline"}))).as_deref(),
            Some("headers.Content-Disposition")
        );
        assert_eq!(field_of(with("tags", json!(["a", "b\n"]))).as_deref(), Some("tags[1]"));
        assert_eq!(field_of(with("metadata", json!({"k\n": "v"}))).as_deref(), Some("metadata.k\\n"));
        assert_eq!(field_of(with("metadata", json!({"k": "multi\nline values stay out of headers"}))), None);
        let att = |ct: &str| with("attachments", json!([{"filename": "a.bin", "content_type": ct, "content": ""}]));
        assert_eq!(field_of(att("application/pdf")), None);
        assert_eq!(field_of(att("text/plain; charset=utf-8")), None);
        assert_eq!(field_of(att("text/plain; charset=\"utf-8\"")), None);
        for bad in [
            "text/plain\r\nX-Evil: 1",
            "text/plain\n\n--b\r\n",
            "pdf",
            "text/",
            "a b/c",
            "text/plain; charset",
            "multipart/mixed; boundary=x",
            "message/rfc822",
            "text/plain; name=x",
            "text/plain; x=\"a\"b\"",
        ] {
            assert_eq!(field_of(att(bad)).as_deref(), Some("attachments[0].content_type"), "{bad:?}");
        }
        let name = |f: &str| with("attachments", json!([{"filename": f, "content": ""}]));
        assert_eq!(field_of(name("a\r\nContent-Type: text/html")).as_deref(), Some("attachments[0].filename"));
        assert_eq!(field_of(name("")).as_deref(), Some("attachments[0].filename"));
        assert_eq!(field_of(name("report \"final\"; x=1.pdf")), None, "quotes are escaped by the builder");
    }

    #[test]
    fn refusal_reasons_are_read_from_the_typed_reason() {
        let rcpt = || "a@x.test".to_string();
        let cases = [
            (Reason::Suppressed { rcpt: rcpt(), since: "2026-01-01".into(), why: "userunknown".into() }, "suppressed"),
            (Reason::UserUnknown { rcpt: rcpt() }, "user_unknown"),
            (Reason::DomainNotFound { rcpt: rcpt() }, "domain_not_found"),
            (Reason::CheckFailed { rcpt: rcpt(), check: "typo", why: "typo".into() }, "invalid"),
            (Reason::CheckFailed { rcpt: rcpt(), check: "literal", why: "literal".into() }, "invalid"),
            (Reason::MailboxFull { rcpt: rcpt() }, "mailbox_full"),
            (Reason::RelayDenied { rcpt: rcpt() }, "not_allowed"),
            (Reason::InvalidBounceAddress { rcpt: rcpt() }, "not_allowed"),
            (Reason::AccountPaused { account: "apikey:1".into(), why: "bounces".into() }, "not_allowed"),
            (Reason::StoreFailed { out_of_space: false }, "try_again_later"),
            (Reason::StoreFailed { out_of_space: true }, "try_again_later"),
        ];
        for (reason, expected) in cases {
            assert_eq!(refusal_reason(&reason), expected, "{reason:?}");
        }
    }

    #[test]
    fn display_names_are_split_off() {
        assert_eq!(split_address("App <app@example.com>"), (Some("App".into()), "app@example.com".into()));
        assert_eq!(split_address("\"A, B\" <ab@example.com>"), (Some("A, B".into()), "ab@example.com".into()));
        assert_eq!(split_address(" x@example.com "), (None, "x@example.com".into()));
    }
}
