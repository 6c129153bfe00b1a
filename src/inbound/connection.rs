//! One SMTP connection: read command lines, drive the session, write replies; STARTTLS, AUTH
//! and DATA exchanges; timeouts, error limits and graceful shutdown.
//!
//! Standards: RFC 5321 (§4.5.3.1 line limits, §4.5.3.2 timeouts), RFC 2920 (PIPELINING: replies
//! are buffered and flushed only when the client's input is drained), RFC 3207 (input that
//! arrives with STARTTLS is discarded), RFC 4954 (AUTH), RFC 1870 (SIZE).
//! Must not: decide policy itself (`policy`), write reply text (`replies`), or write the store
//! except through `accept`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{info, warn};

use super::data::{DataReader, Feed};
use super::dovecot_auth::ClientInfo;
use super::policy::Submitter;
use super::session::Session;
use super::{Context, ListenerKind, auth, policy, replies};
use crate::accept::{self, Incoming};
use crate::metrics::LoginDoor;
use crate::smtp::command::{Command, CommandError};
use crate::smtp::reply::SmtpReply;
use crate::store::{MessageId, Origin, Transport};
use crate::time::Timestamp;

/// Longest command line accepted, CRLF included (Postfix's line_length_limit).
const MAX_COMMAND_LINE: usize = 2048;
/// Read buffer growth between commands: small, so idle connections cost little memory.
const COMMAND_CHUNK: usize = 1024;
/// Read buffer growth during DATA: large, for throughput.
const DATA_CHUNK: usize = 64 * 1024;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Debug)]
enum ConnError {
    Closed,
    Timeout,
    Io(std::io::Error),
}

enum Line {
    Text(String),
    TooLong,
    NotUtf8,
}

/// Buffered reader and writer over a plain or TLS stream.
struct Conn {
    io: Option<Box<dyn Io>>,
    buf: Vec<u8>,
    start: usize,
    out: Vec<u8>,
}

impl Conn {
    fn new(io: Box<dyn Io>) -> Self {
        Self { io: Some(io), buf: Vec::new(), start: 0, out: Vec::new() }
    }

    fn io(&mut self) -> Result<&mut Box<dyn Io>, ConnError> {
        self.io.as_mut().ok_or(ConnError::Closed)
    }

    fn reply(&mut self, reply: &SmtpReply) {
        crate::metrics::smtp_reply(reply.code);
        self.out.extend_from_slice(reply.render().as_bytes());
    }

    async fn flush(&mut self) -> Result<(), ConnError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let io = self.io()?;
        io.write_all(&out).await.map_err(ConnError::Io)?;
        io.flush().await.map_err(ConnError::Io)?;
        self.out = out;
        self.out.clear();
        Ok(())
    }

    fn pending(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads more input; replies are flushed first, since the client may be waiting for them.
    async fn fill(&mut self, timeout: Duration, chunk: usize) -> Result<(), ConnError> {
        self.flush().await?;
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.capacity() > 2 * chunk && self.buf.len() < chunk {
            self.buf.shrink_to(chunk);
        }
        self.buf.reserve(chunk);
        let Conn { io, buf, .. } = self;
        let io = io.as_mut().ok_or(ConnError::Closed)?;
        match tokio::time::timeout(timeout, io.read_buf(buf)).await {
            Err(_) => Err(ConnError::Timeout),
            Ok(Err(e)) => Err(ConnError::Io(e)),
            Ok(Ok(0)) => Err(ConnError::Closed),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Reads one line; the whole line must arrive within `timeout` (a deadline, not an idle
    /// timer: a client that sends a byte now and then cannot stretch it).
    async fn read_line(&mut self, timeout: Duration) -> Result<Line, ConnError> {
        let deadline = Instant::now() + timeout;
        let mut discarding = false;
        loop {
            if let Some(nl) = self.pending().iter().position(|&b| b == b'\n') {
                let raw = self.pending().get(..nl).unwrap_or(&[]);
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                let line = if discarding || nl + 1 > MAX_COMMAND_LINE {
                    Line::TooLong
                } else {
                    match std::str::from_utf8(raw) {
                        Ok(s) => Line::Text(s.to_string()),
                        Err(_) => Line::NotUtf8,
                    }
                };
                self.consume(nl + 1);
                return Ok(line);
            }
            if self.pending().len() > MAX_COMMAND_LINE {
                discarding = true;
                let n = self.pending().len();
                self.consume(n);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ConnError::Timeout);
            }
            self.fill(left, COMMAND_CHUNK).await?;
        }
    }

    /// Drops input the client sent ahead of a STARTTLS handshake (RFC 3207 §4.2 injection).
    fn discard_pending(&mut self) -> usize {
        let n = self.pending().len();
        self.consume(n);
        n
    }
}

/// Facts about the client, fixed for the connection.
struct Client {
    addr: SocketAddr,
    /// Our end of the connection (None for a local program).
    local: Option<SocketAddr>,
    kind: ListenerKind,
    /// Logged in from the start: the local user of a `sendmail -bs` session.
    login: Option<String>,
    /// May use any sender (root's `sendmail -bs`, as on every Unix mailer).
    any_sender: bool,
}

/// Serves one accepted connection until QUIT, error, timeout or shutdown.
pub async fn serve(
    ctx: Arc<Context>,
    io: Box<dyn Io>,
    addr: SocketAddr,
    local: Option<SocketAddr>,
    kind: ListenerKind,
) {
    serve_client(ctx, io, Client { addr, local, kind, login: None, any_sender: false }).await
}

/// Serves one SMTP session for a local program (`sendmail -bs` over its standard input and
/// output): the client is the local user `login`, who may relay as an authenticated user may
/// (and, when `any_sender`, use any sender address).
pub async fn serve_local(ctx: Arc<Context>, io: Box<dyn Io>, login: String, any_sender: bool) {
    let addr = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
    serve_client(ctx, io, Client { addr, local: None, kind: ListenerKind::Local, login: Some(login), any_sender }).await
}

async fn serve_client(ctx: Arc<Context>, io: Box<dyn Io>, client: Client) {
    let addr = client.addr;
    let mut conn = Conn::new(io);
    let result = run(&ctx, &mut conn, &client).await;
    match result {
        Ok(()) | Err(ConnError::Closed) => {}
        Err(ConnError::Timeout) => {
            crate::metrics::smtp_deadline();
            conn.reply(&replies::timeout(&ctx.config.hostname));
            // The client may not read: the goodbye gets a short deadline of its own.
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.flush()).await;
            info!(client = %addr, "timeout, disconnected");
        }
        Err(ConnError::Io(e)) => info!(client = %addr, error = %e, "connection error"),
    }
    if let Some(mut io) = conn.io.take() {
        let _ = tokio::time::timeout(Duration::from_secs(5), io.shutdown()).await;
    }
}

enum Next {
    Continue,
    Quit,
}

async fn run(ctx: &Context, conn: &mut Conn, client: &Client) -> Result<(), ConnError> {
    let mut session = Session::new();
    session.auth_user = client.login.clone();
    session.any_sender = client.any_sender;
    let mut shutdown = ctx.shutdown.clone();
    if ctx.shutting_down() {
        conn.reply(&replies::service_unavailable());
        return conn.flush().await;
    }
    conn.reply(&replies::greeting(&ctx.config.hostname));
    loop {
        let timeout = ctx.config.limits.command_timeout;
        let line = if session.in_transaction() || !conn.pending().is_empty() {
            conn.read_line(timeout).await?
        } else {
            tokio::select! {
                biased;
                line = conn.read_line(timeout) => line?,
                _ = async { shutdown.wait_for(|down| *down).await.is_ok() } => {
                    conn.reply(&replies::service_unavailable());
                    return conn.flush().await;
                }
            }
        };
        let text = match line {
            Line::Text(t) => t,
            Line::TooLong => {
                error(ctx, conn, &mut session, replies::line_too_long()).await?;
                continue;
            }
            Line::NotUtf8 => {
                error(ctx, conn, &mut session, replies::bad_encoding()).await?;
                continue;
            }
        };
        let utf8 = session.transaction.as_ref().is_some_and(|t| t.params.smtputf8);
        let command = match Command::parse(&text, utf8) {
            Ok(c) => c,
            Err(e) => {
                error(ctx, conn, &mut session, command_error_reply(&e)).await?;
                continue;
            }
        };
        if let Next::Quit = handle(ctx, conn, client, &mut session, command).await? {
            return conn.flush().await;
        }
        if ctx.shutting_down() && !session.in_transaction() {
            conn.reply(&replies::service_unavailable());
            return conn.flush().await;
        }
    }
}

fn command_error_reply(e: &CommandError) -> SmtpReply {
    use crate::smtp::address::AddressError;
    match e {
        CommandError::Unrecognized => replies::unrecognized(),
        CommandError::Syntax(d) => replies::syntax(d),
        CommandError::Sender(AddressError::NeedsSmtpUtf8) | CommandError::Recipient(AddressError::NeedsSmtpUtf8) => {
            replies::needs_smtputf8()
        }
        CommandError::Sender(a) => replies::bad_sender(&a.to_string()),
        CommandError::Recipient(a) => replies::bad_recipient(&a.to_string()),
        CommandError::UnknownParameter(p) => replies::unknown_parameter(p),
    }
}

/// Sends an error reply and counts it; too many errors end the session.
async fn error(ctx: &Context, conn: &mut Conn, session: &mut Session, reply: SmtpReply) -> Result<(), ConnError> {
    conn.reply(&reply);
    session.errors += 1;
    if session.errors >= ctx.config.limits.max_errors {
        conn.reply(&replies::too_many_errors());
        conn.flush().await?;
        return Err(ConnError::Closed);
    }
    Ok(())
}

/// Answers a junk command (NOOP, RSET, VRFY, HELP); beyond `limits.junk_command_limit`
/// each one counts as an error (Postfix's smtpd_junk_command_limit).
async fn junk(ctx: &Context, conn: &mut Conn, session: &mut Session, reply: SmtpReply) -> Result<(), ConnError> {
    if session.junk(ctx.config.limits.junk_command_limit) {
        return error(ctx, conn, session, reply).await;
    }
    conn.reply(&reply);
    Ok(())
}

/// Whether the per-client message and recipient rates apply: not to trusted networks, not
/// to authenticated submission.
fn limited(ctx: &Context, client: &Client, session: &Session) -> bool {
    session.auth_user.is_none() && !policy::is_trusted(ctx, client.addr.ip())
}

/// Who sends in this session, for `policy`.
fn submitter(ctx: &Context, client: &Client, session: &Session) -> Submitter {
    Submitter::smtp(ctx, client.kind, client.addr.ip(), session.auth_user.as_deref(), session.any_sender)
}

fn extensions(ctx: &Context, client: &Client, session: &Session) -> Vec<String> {
    let mut ext = vec![
        "PIPELINING".to_string(),
        format!("SIZE {}", ctx.config.limits.max_message_size),
        "8BITMIME".into(),
        "SMTPUTF8".into(),
        "ENHANCEDSTATUSCODES".into(),
        "DSN".into(),
    ];
    if ctx.tls.is_some() && !session.tls {
        ext.push("STARTTLS".into());
    }
    if client.kind == ListenerKind::Submission && session.tls && session.auth_user.is_none() {
        ext.push("AUTH PLAIN LOGIN".into());
    }
    ext
}

async fn handle(
    ctx: &Context,
    conn: &mut Conn,
    client: &Client,
    session: &mut Session,
    command: Command,
) -> Result<Next, ConnError> {
    let ip = client.addr.ip();
    match command {
        Command::Ehlo(name) => {
            session.greet(name, true);
            conn.reply(&replies::ehlo(&ctx.config.hostname, &ip.to_string(), extensions(ctx, client, session)));
        }
        Command::Helo(name) => {
            session.greet(name, false);
            conn.reply(&replies::helo(&ctx.config.hostname));
        }
        Command::Mail { from, params } => {
            if let Err(reply) = session.may_mail() {
                error(ctx, conn, session, reply).await?;
                return Ok(Next::Continue);
            }
            if limited(ctx, client, session) && ctx.anvil.message(ip, Instant::now()).is_err() {
                crate::metrics::client_limited(super::anvil::Over::MessageRate.as_str());
                info!(client = %client.addr, stage = "MAIL", reason = "per-client message rate", "rejected");
                conn.reply(&replies::too_much_mail_from(&super::anvil::ClientKey::of(ip).to_string()));
                return Ok(Next::Quit);
            }
            match policy::check_mail(ctx, &submitter(ctx, client, session), &from, &params) {
                Ok(()) => {
                    session.open(from, params);
                    conn.reply(&replies::sender_ok());
                }
                Err(refusal) => {
                    let reply = refusal.reply();
                    info!(client = %client.addr, from = %from, reply = %reply, detail = %refusal.detail, stage = "MAIL", "rejected");
                    error(ctx, conn, session, reply).await?;
                }
            }
        }
        Command::Rcpt { to, params } => {
            let declared = match session.may_rcpt(ctx.config.limits.max_recipients) {
                Ok(tx) => (tx.params.size, tx.from.clone()),
                // RFC 5321 §4.5.3.1.10: the client sends the rest later; no penalty.
                Err(reply) if reply.code == 452 => {
                    conn.reply(&reply);
                    return Ok(Next::Continue);
                }
                Err(reply) => {
                    error(ctx, conn, session, reply).await?;
                    return Ok(Next::Continue);
                }
            };
            if limited(ctx, client, session) && ctx.anvil.recipient(ip, Instant::now()).is_err() {
                crate::metrics::client_limited(super::anvil::Over::RecipientRate.as_str());
                conn.reply(&replies::too_many_recipients_from(&super::anvil::ClientKey::of(ip).to_string()));
                return Ok(Next::Continue);
            }
            let (declared, from) = declared;
            match policy::check_rcpt(ctx, &submitter(ctx, client, session), &from, &to, &params, declared).await {
                Ok(rcpt) => {
                    session.add_rcpt(rcpt);
                    conn.reply(&replies::recipient_ok());
                }
                Err(refusal) => {
                    let reply = refusal.reply();
                    info!(client = %client.addr, from = %from, to = %to, reply = %reply, detail = %refusal.detail, stage = "RCPT", "rejected");
                    session.refuse_rcpt();
                    error(ctx, conn, session, reply).await?;
                }
            }
        }
        Command::Data => {
            if let Err(reply) = session.may_data() {
                error(ctx, conn, session, reply).await?;
                return Ok(Next::Continue);
            }
            receive_data(ctx, conn, client, session).await?;
        }
        Command::Rset => {
            session.take();
            junk(ctx, conn, session, replies::ok()).await?;
        }
        Command::Noop => junk(ctx, conn, session, replies::ok()).await?,
        Command::Quit => {
            conn.reply(&replies::bye());
            return Ok(Next::Quit);
        }
        Command::Vrfy => junk(ctx, conn, session, replies::vrfy()).await?,
        Command::Expn => error(ctx, conn, session, replies::expn_disabled()).await?,
        Command::Help => junk(ctx, conn, session, replies::help()).await?,
        Command::StartTls => starttls(ctx, conn, session).await?,
        Command::Auth { mechanism, initial } => authenticate(ctx, conn, client, session, &mechanism, initial).await?,
    }
    Ok(Next::Continue)
}

async fn starttls(ctx: &Context, conn: &mut Conn, session: &mut Session) -> Result<(), ConnError> {
    let Some(acceptor) = ctx.tls.clone() else {
        return error(ctx, conn, session, replies::tls_not_available()).await;
    };
    if let Err(reply) = session.may_starttls() {
        return error(ctx, conn, session, reply).await;
    }
    conn.reply(&replies::tls_ready());
    conn.flush().await?;
    let injected = conn.discard_pending();
    if injected > 0 {
        warn!(bytes = injected, "discarded input pipelined after STARTTLS");
    }
    let plain = conn.io.take().ok_or(ConnError::Closed)?;
    let handshake = tokio::time::timeout(ctx.config.limits.command_timeout, acceptor.accept(plain));
    let tls = match handshake.await {
        Err(_) => return Err(ConnError::Timeout),
        Ok(Err(e)) => {
            crate::metrics::tls_error();
            return Err(ConnError::Io(e));
        }
        Ok(Ok(stream)) => stream,
    };
    conn.io = Some(Box::new(tls));
    session.tls_started();
    Ok(())
}

async fn authenticate(
    ctx: &Context,
    conn: &mut Conn,
    client: &Client,
    session: &mut Session,
    mechanism: &str,
    initial: Option<String>,
) -> Result<(), ConnError> {
    if client.kind != ListenerKind::Submission {
        return error(ctx, conn, session, replies::auth_not_here()).await;
    }
    if let Err(reply) = session.may_auth() {
        return error(ctx, conn, session, reply).await;
    }
    if !session.tls {
        return error(ctx, conn, session, replies::encryption_required()).await;
    }
    let ip = client.addr.ip();
    if ctx.auth.throttles(LoginDoor::Smtp, ip) {
        info!(client = %client.addr, "AUTH refused: too many failures");
        return error(ctx, conn, session, replies::auth_rate_limited()).await;
    }
    let timeout = ctx.config.limits.command_timeout;
    let credentials = match mechanism {
        "PLAIN" => {
            let response = match initial {
                Some(r) => Some(r),
                None => challenge(conn, "", timeout).await?,
            };
            match response {
                None => return error(ctx, conn, session, replies::auth_cancelled()).await,
                Some(r) if r == "=" => None,
                Some(r) => auth::decode_plain(&r),
            }
        }
        "LOGIN" => {
            let user = match initial {
                Some(r) => Some(r),
                None => challenge(conn, &auth::encode("Username:"), timeout).await?,
            };
            let Some(user) = user else {
                return error(ctx, conn, session, replies::auth_cancelled()).await;
            };
            let Some(pass) = challenge(conn, &auth::encode("Password:"), timeout).await? else {
                return error(ctx, conn, session, replies::auth_cancelled()).await;
            };
            auth::decode_line(&user).zip(auth::decode_line(&pass))
        }
        _ => return error(ctx, conn, session, replies::auth_unknown_mechanism()).await,
    };
    let Some((user, password)) = credentials else {
        ctx.auth.record_failure(ip);
        return error(ctx, conn, session, replies::auth_malformed()).await;
    };
    let info = ClientInfo { remote: client.addr, local: client.local, secured: session.tls };
    match ctx.auth.attempt_from(LoginDoor::Smtp, &info, &user, &password).await {
        auth::Attempt::Accepted(granted) => {
            match &granted.credential {
                auth::Credential::Password => info!(client = %client.addr, user = %granted.user, mechanism, "AUTH ok"),
                auth::Credential::AppPassword(app) => {
                    info!(client = %client.addr, user = %granted.user, app = %app, mechanism, "AUTH ok")
                }
            }
            // A login from a never-seen network pauses the account (its mail then gets 451).
            let account = crate::bounce::breaker::account_of(&granted.user);
            ctx.suspect.login(&account, ip).await;
            session.auth_user = Some(granted.user);
            conn.reply(&replies::auth_ok());
            Ok(())
        }
        auth::Attempt::Refused => {
            // Counted in /metrics (mailerd_login_failures_total); one line each only at debug.
            tracing::debug!(client = %client.addr, user = %user, mechanism, "AUTH failed");
            error(ctx, conn, session, replies::auth_failed()).await
        }
        auth::Attempt::Throttled { .. } => {
            info!(client = %client.addr, user = %user, "AUTH refused: too many failures");
            error(ctx, conn, session, replies::auth_rate_limited()).await
        }
        auth::Attempt::Unavailable => {
            info!(client = %client.addr, user = %user, "AUTH deferred: the password could not be checked now");
            error(ctx, conn, session, replies::auth_unavailable()).await
        }
    }
}

/// Sends a 334 challenge and reads the answer; None when the client cancels with `*`.
async fn challenge(conn: &mut Conn, b64: &str, timeout: Duration) -> Result<Option<String>, ConnError> {
    conn.reply(&replies::auth_challenge(b64));
    match conn.read_line(timeout).await? {
        Line::Text(t) if t.trim() == "*" => Ok(None),
        Line::Text(t) => Ok(Some(t)),
        Line::TooLong | Line::NotUtf8 => Ok(Some(String::new())),
    }
}

/// How long DATA may take: every read within `data_timeout`, and the whole body at no less
/// than `min_data_rate` bytes per second on average after a grace of `command_timeout`, so
/// a client trickling bytes cannot hold a session (and its slot) for ever.
struct DataDeadline {
    start: Instant,
    grace: Duration,
    min_rate: u64,
    per_read: Duration,
}

impl DataDeadline {
    fn new(limits: &crate::config::Limits) -> Self {
        DataDeadline {
            start: Instant::now(),
            grace: limits.command_timeout,
            min_rate: limits.min_data_rate,
            per_read: limits.data_timeout,
        }
    }

    /// The wait allowed for the next read, having received `bytes`; `None` when the deadline
    /// has passed.
    fn next_read(&self, bytes: u64, now: Instant) -> Option<Duration> {
        if self.min_rate == 0 {
            return Some(self.per_read);
        }
        let allowed = self.grace.saturating_add(Duration::from_secs_f64(bytes as f64 / self.min_rate as f64));
        let left = (self.start + allowed).saturating_duration_since(now);
        (!left.is_zero()).then(|| left.min(self.per_read))
    }
}

async fn receive_data(ctx: &Context, conn: &mut Conn, client: &Client, session: &mut Session) -> Result<(), ConnError> {
    let now = Timestamp::now();
    let id = MessageId::generate(now);
    let single = session.transaction.as_ref().and_then(|t| match t.rcpts.as_slice() {
        [one] => Some(one.address.clone()),
        _ => None,
    });
    let helo = session.helo.clone().unwrap_or_default();
    let client_ip = client.addr.ip().to_string();
    let header = accept::received_header(&accept::Trace {
        hostname: &ctx.config.hostname,
        id: &id,
        at: now,
        arrival: accept::Arrival::Smtp {
            helo: &helo,
            client_ip: &client_ip,
            esmtp: session.esmtp,
            tls: session.tls,
            authenticated: session.auth_user.is_some(),
            single_rcpt: single.as_deref(),
        },
    });
    conn.reply(&replies::start_data());
    let mut reader = DataReader::new(ctx.config.limits.max_message_size, header.into_bytes());
    let deadline = DataDeadline::new(&ctx.config.limits);
    loop {
        match reader.feed(conn.pending()) {
            Feed::Done { consumed } => {
                conn.consume(consumed);
                break;
            }
            Feed::NeedMore { consumed } => {
                conn.consume(consumed);
                let wait = deadline.next_read(reader.data_bytes(), Instant::now()).ok_or(ConnError::Timeout)?;
                conn.fill(wait, DATA_CHUNK).await?;
            }
        }
    }
    let Some(tx) = session.take() else {
        return Ok(());
    };
    let rcpts: Vec<String> = tx.rcpts.iter().map(|r| r.address.clone()).collect();
    let size = reader.data_bytes();
    if reader.too_large() {
        info!(client = %client.addr, from = %tx.from, to = ?rcpts, size, stage = "DATA", detail = "message too large", "rejected");
        conn.reply(&replies::message_too_large());
        return Ok(());
    }
    let message = reader.into_message();
    if let Err(refusal) = policy::check_headers(ctx, &submitter(ctx, client, session), &message) {
        let reply = refusal.reply();
        info!(client = %client.addr, from = %tx.from, to = ?rcpts, size, reply = %reply, detail = %refusal.detail, "NOQUEUE: reject DATA");
        conn.reply(&reply);
        return Ok(());
    }
    // Submitted mail (anything that leaves) goes through the message checklist.
    let notes = match super::checks::submitted(
        &message,
        ctx.config.limits.max_message_size,
        &tx.rcpts,
        &ctx.config.check,
    ) {
        Ok(notes) => notes,
        Err(c) => {
            let why = super::checks::note(&c);
            info!(client = %client.addr, from = %tx.from, to = ?rcpts, size, stage = "DATA", detail = %why, "rejected");
            conn.reply(&replies::message_check_failed(c.name, &why));
            return Ok(());
        }
    };
    let remote = tx.rcpts.iter().filter(|r| r.transport() == Transport::Remote).count();
    let origin = Origin {
        via: client.kind.via(),
        client_ip: client.addr.ip().to_string(),
        helo,
        auth_user: session.auth_user.clone(),
        tls: session.tls,
        ..Origin::default()
    };
    let recipients: Vec<_> = tx.rcpts.into_iter().map(Into::into).collect();
    if let Some(user) = &session.auth_user {
        let account = crate::bounce::breaker::account_of(user);
        let (from_domain, domains) = crate::suspect::message_parts(&tx.from, &recipients);
        if let Err(s) = ctx.suspect.admit(&account, from_domain.as_ref(), &domains).await {
            info!(client = %client.addr, from = %tx.from, to = ?rcpts, size, stage = "DATA", detail = %s.detail, "rejected");
            conn.reply(&replies::account_paused(&s.account, &s.detail));
            return Ok(());
        }
    }
    let bulk = session.auth_user.as_deref().is_some_and(|u| ctx.config.unsubscribe.is_bulk_login(u));
    let message =
        if bulk { super::unsubscribe::add_headers(ctx, &id, &tx.from, &recipients, message) } else { message };
    let incoming = Incoming {
        id,
        from: tx.from.clone(),
        params: tx.params,
        recipients,
        origin,
        received_at: now,
        message,
        reports: Vec::new(),
        notes,
        rejected: Vec::new(),
        idempotency: None,
    };
    match accept::accept(ctx.store.as_ref(), &ctx.queue_wakeup, ctx.dkim.as_deref(), incoming).await {
        Ok(id) => {
            let sender = crate::store::path_domain(&tx.from);
            let sender = sender.as_ref().map(|d| d.as_str());
            ctx.breaker.sent_by(session.auth_user.as_deref(), sender, remote as u64, Timestamp::now());
            conn.reply(&replies::queued(&id.0));
        }
        Err(e) => {
            warn!(client = %client.addr, from = %tx.from, to = ?rcpts, size, stage = "DATA", error = %e, "not queued");
            conn.reply(&replies::store_failed(&e));
        }
    }
    Ok(())
}
