//! Mail from local programs, the `sendmail` door (`mailerd sendmail`, or the binary called as
//! `sendmail`): cron, logwatch, PHP's mail(), git send-email and every script that pipes into
//! `/usr/sbin/sendmail -t`.
//!
//! `read_message` applies the sendmail input conventions (a lone `.` line ends the input unless
//! `-i`; LF line ends become CRLF). `prepare` does what Postfix's cleanup does for a local
//! submission: recipients from the headers with `-t` (the Resent- ones when there are any),
//! Bcc removed, Date, Message-ID and From added when missing (From with `-F` or the user's
//! full name), and our trace header `Received: by HOST (mailerd, from userid UID)` (written by
//! `accept::received_header`). `submit`
//! makes the same recipient decisions as an authenticated submission session, with the local
//! user as the login (so mail may leave, and a paused account stays paused), then hands the
//! message to `accept`, the one door into the queue. `-bs` is `connection::serve_local` over
//! standard input and output.
//! Standards: RFC 5322 §3.6 (header fields), RFC 2047 (a full name that is not ASCII), Postfix
//! sendmail(1) and cleanup(8) for what a local submission gets.
//! Must not: write the store except through `accept`, or print (the CLI says what happened).

use std::net::{IpAddr, Ipv4Addr};

use thiserror::Error;

use super::policy::Submitter;
use super::session::AcceptedRcpt;
use super::{Context, ListenerKind, checks, policy, replies};
use crate::accept::{self, Incoming};
use crate::config::Config;
use crate::smtp::address::{Mailbox, ReversePath};
use crate::smtp::command::{ForwardPath, MailParams, Notify, RcptParams};
use crate::smtp::reply::SmtpReply;
use crate::store::{MessageId, Origin, StoreError};
use crate::time::Timestamp;

/// The user running the program that sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalUser {
    pub uid: u32,
    /// The login name (`uidN` when the password database has none).
    pub name: String,
    /// The first field of the GECOS entry, when there is one.
    pub full_name: Option<String>,
}

/// The real user of this process (getuid, then the password database).
pub fn current_user() -> LocalUser {
    use std::ffi::CStr;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let fallback = LocalUser { uid, name: format!("uid{uid}"), full_name: None };
    // SAFETY: an all-zero passwd is a valid out-parameter; getpwuid_r fills it from `buf`.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buf.len()` is its real length.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return fallback;
    }
    // SAFETY: on success the strings point into `buf`, NUL-terminated, and `buf` is alive.
    let name = unsafe { CStr::from_ptr(pwd.pw_name) }.to_string_lossy().into_owned();
    let full_name = (!pwd.pw_gecos.is_null())
        // SAFETY: as above.
        .then(|| unsafe { CStr::from_ptr(pwd.pw_gecos) }.to_string_lossy().into_owned())
        .and_then(|g| g.split(',').next().map(|n| n.trim().to_string()))
        .filter(|n| !n.is_empty());
    // A name that cannot be a local part (it becomes the default sender) is not used.
    if name.is_empty() || Mailbox::parse(&format!("{name}@localhost")).is_err() {
        return LocalUser { full_name, ..fallback };
    }
    LocalUser { uid, name, full_name }
}

/// The domain of addresses written without one (`root`, the default sender `user`): the first
/// local domain, else the host name (Postfix's `myorigin`, whose default is the host name).
pub fn origin_domain(config: &Config) -> String {
    match config.local.domains.first() {
        Some(d) => d.as_str().to_string(),
        None => config.hostname.to_ascii_lowercase(),
    }
}

/// An address as a program gives it: `user`, `user@domain` or `<user@domain>`; a bare name
/// gets the origin domain.
pub fn qualify(address: &str, origin: &str) -> Result<Mailbox, String> {
    let a = address.trim();
    let a = a.strip_prefix('<').and_then(|a| a.strip_suffix('>')).unwrap_or(a);
    let full = if a.contains('@') { a.to_string() } else { format!("{a}@{origin}") };
    Mailbox::parse(&full).map_err(|e| format!("<{a}>: {e}"))
}

/// Standard input as a message: LF or CRLF line ends become CRLF; unless `ignore_dots` (`-i`),
/// a line of a lone `.` ends the input and what follows is dropped, as sendmail does. Dots
/// are never unstuffed (this is not SMTP).
pub fn read_message(input: &[u8], ignore_dots: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 32 + 2);
    for line in input.split_inclusive(|&b| b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if !ignore_dots && content == b"." {
            break;
        }
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What `prepare` needs to know besides the message.
pub struct Cleanup<'a> {
    pub hostname: &'a str,
    /// The envelope sender; a From header added is this address (or the user's for `<>`).
    pub sender: &'a ReversePath,
    pub user: &'a LocalUser,
    /// `-F`: the full name for a From header we add.
    pub full_name: Option<&'a str>,
    /// `-t`: take the recipients from the headers.
    pub extract: bool,
    pub origin: &'a str,
    pub id: &'a MessageId,
    pub now: Timestamp,
}

/// The message as it enters the queue, and the recipients its headers named (with `-t`).
#[derive(Debug)]
pub struct Prepared {
    pub message: Vec<u8>,
    pub header_recipients: Vec<String>,
}

/// One header field: its name and every line of it (continuations included, CRLF-ended).
pub struct Field<'a> {
    pub name: String,
    pub raw: &'a [u8],
}

/// Splits off the header fields at the top of `message`; the header block ends at the empty
/// line, or at the first line that is neither a field nor a continuation (that line starts the
/// body, as Postfix's cleanup reads it). Returns the fields and the body.
pub fn split_header(message: &[u8]) -> (Vec<Field<'_>>, &[u8]) {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut pos = 0;
    // An mbox "From " line at the very top is not a header: drop it.
    if message.starts_with(b"From ") {
        pos = message.iter().position(|&b| b == b'\n').map_or(message.len(), |i| i + 1);
    }
    let mut start: Option<(usize, String)> = None;
    loop {
        let rest = message.get(pos..).unwrap_or(&[]);
        let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        let line = rest.get(..end).unwrap_or(&[]);
        let is_continuation = matches!(line.first(), Some(b' ' | b'\t')) && start.is_some();
        if is_continuation {
            pos += end;
            continue;
        }
        if let Some((from, name)) = start.take() {
            fields.push(Field { name, raw: message.get(from..pos).unwrap_or(&[]) });
        }
        let name = field_name(line);
        match name {
            Some(name) if !line.is_empty() => {
                start = Some((pos, name));
                pos += end;
            }
            _ => {
                // The empty line belongs to neither part; a non-field line is the body's first.
                let body_start = if line == b"\r\n" || line == b"\n" { pos + end } else { pos };
                return (fields, message.get(body_start..).unwrap_or(&[]));
            }
        }
    }
}

/// The lower-cased name of a header field line (`Name:`), if it is one.
fn field_name(line: &[u8]) -> Option<String> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = line.get(..colon)?;
    let valid = !name.is_empty() && name.iter().all(|&b| b.is_ascii_graphic());
    valid.then(|| String::from_utf8_lossy(name).to_ascii_lowercase())
}

/// A display name as RFC 5322 and RFC 2047 want it: as is when it is plain words, quoted
/// when it has specials, encoded when it is not ASCII.
fn display_name(name: &str) -> String {
    use base64::Engine as _;
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    if !name.is_ascii() {
        return format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(name.as_bytes()));
    }
    if name.chars().all(|c| c.is_ascii_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c)) {
        return name;
    }
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The addresses of the recipient headers: Resent-To/Cc/Bcc when the message has any, else
/// To/Cc/Bcc (groups flattened, every field of each name).
pub fn header_recipients(header: &[u8]) -> Vec<String> {
    use mail_parser::{HeaderName, MessageParser};
    let mut block = header.to_vec();
    block.extend_from_slice(b"\r\n");
    let Some(parsed) = MessageParser::default().parse_headers(&block) else {
        return Vec::new();
    };
    let resent = [HeaderName::ResentTo, HeaderName::ResentCc, HeaderName::ResentBcc];
    let plain = [HeaderName::To, HeaderName::Cc, HeaderName::Bcc];
    let any_resent = resent.iter().any(|n| parsed.header_values(n.clone()).next().is_some());
    let names = if any_resent { resent } else { plain };
    let mut out = Vec::new();
    for name in names {
        for value in parsed.header_values(name) {
            let Some(list) = value.as_address() else { continue };
            out.extend(list.iter().filter_map(|a| a.address()).map(str::to_string));
        }
    }
    out
}

/// Cleans a local submission up (see the module header). Never fails: a message without any
/// header gets the ones it needs, and its text becomes the body.
pub fn prepare(message: &[u8], c: &Cleanup<'_>) -> Prepared {
    let (fields, body) = split_header(message);
    let has = |n: &str| fields.iter().any(|f| f.name == n);
    let header_block: Vec<u8> = fields.iter().flat_map(|f| f.raw.iter().copied()).collect();
    let header_recipients = if c.extract { header_recipients(&header_block) } else { Vec::new() };
    let trace = accept::Trace {
        hostname: c.hostname,
        id: c.id,
        at: c.now,
        arrival: accept::Arrival::Local { uid: c.user.uid },
    };
    let mut out = accept::received_header(&trace).into_bytes();
    for f in fields.iter().filter(|f| f.name != "bcc" && f.name != "resent-bcc") {
        out.extend_from_slice(f.raw);
        if !f.raw.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    if !has("from") {
        let address = match c.sender {
            ReversePath::Mailbox(m) => m.to_string(),
            ReversePath::Null => format!("{}@{}", c.user.name, c.origin),
        };
        let name = c.full_name.map(str::to_string).or_else(|| c.user.full_name.clone());
        let from = match name.as_deref().map(display_name).filter(|n| !n.is_empty()) {
            Some(n) => format!("From: {n} <{address}>\r\n"),
            None => format!("From: {address}\r\n"),
        };
        out.extend_from_slice(from.as_bytes());
    }
    if !has("date") {
        out.extend_from_slice(format!("Date: {}\r\n", c.now.rfc5322()).as_bytes());
    }
    if !has("message-id") {
        let id = c.id.0.to_ascii_lowercase();
        out.extend_from_slice(format!("Message-ID: <{id}@{}>\r\n", c.hostname.to_ascii_lowercase()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Prepared { message: out, header_recipients }
}

/// An envelope for `submit`.
pub struct Envelope {
    pub from: ReversePath,
    pub recipients: Vec<String>,
    pub params: MailParams,
    /// `-N`: NOTIFY for every recipient.
    pub notify: Option<Notify>,
}

/// Why nothing was queued.
#[derive(Debug, Error)]
pub enum SubmitError {
    #[error("no recipients")]
    NoRecipients,
    #[error("message too large: {size} bytes, the limit is {limit}")]
    TooLarge { size: u64, limit: u64 },
    /// MAIL itself was refused (e.g. `452 4.3.1`: too little free space).
    #[error("{}", .0.lines.join(" "))]
    Sender(SmtpReply),
    /// A check of submitted mail set to `reject` refused the message.
    #[error("{0}")]
    Check(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl SubmitError {
    /// Whether trying again later may succeed.
    pub fn is_temporary(&self) -> bool {
        match self {
            SubmitError::Sender(r) => r.code < 500,
            SubmitError::Store(_) => true,
            _ => false,
        }
    }
}

/// What `submit` did: the queue id (None when every recipient was refused) and the refused
/// recipients with the reply an SMTP client would have had.
#[derive(Debug)]
pub struct Submitted {
    pub id: Option<MessageId>,
    pub accepted: usize,
    pub refused: Vec<(String, SmtpReply)>,
}

/// Queues a prepared message from `user` for the recipients of `envelope` that policy
/// accepts (see the module header).
pub async fn submit(
    ctx: &Context,
    user: &LocalUser,
    envelope: Envelope,
    id: MessageId,
    now: Timestamp,
    message: Vec<u8>,
) -> Result<Submitted, SubmitError> {
    if envelope.recipients.is_empty() {
        return Err(SubmitError::NoRecipients);
    }
    let size = message.len() as u64;
    let limit = ctx.config.limits.max_message_size;
    if size > limit {
        return Err(SubmitError::TooLarge { size, limit });
    }
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    // The sender rules see the local user as the login `user@origin` (root is trusted with
    // any sender, as on every Unix mailer): `[[senders]]` may grant it more addresses.
    let origin = origin_domain(&ctx.config);
    let login = qualify(&user.name, &origin).map(|m| m.key()).unwrap_or_else(|_| user.name.clone());
    let submitter = Submitter::Local { login, any_sender: user.uid == 0 };
    policy::check_mail(ctx, &submitter, &envelope.from, &envelope.params)
        .map_err(|r| SubmitError::Sender(r.reply()))?;
    let params = RcptParams { notify: envelope.notify, orcpt: None };
    let mut accepted: Vec<AcceptedRcpt> = Vec::new();
    let mut refused = Vec::new();
    for r in &envelope.recipients {
        let to = match qualify(r, &origin) {
            Ok(m) => ForwardPath::Mailbox(m),
            Err(e) => {
                refused.push((r.clone(), replies::bad_recipient(&e)));
                continue;
            }
        };
        match policy::check_rcpt(ctx, &submitter, &envelope.from, &to, &params, Some(size)).await {
            Ok(a) if accepted.iter().any(|b| b.address == a.address) => {} // one delivery each
            Ok(a) => accepted.push(a),
            Err(refusal) => refused.push((r.clone(), refusal.reply())),
        }
    }
    if accepted.is_empty() {
        return Ok(Submitted { id: None, accepted: 0, refused });
    }
    let notes = checks::submitted(&message, limit, &accepted, &ctx.config.check)
        .map_err(|c| SubmitError::Check(checks::note(&c)))?;
    let count = accepted.len();
    let incoming = Incoming {
        id,
        from: envelope.from,
        params: envelope.params,
        recipients: accepted.into_iter().map(Into::into).collect(),
        origin: Origin {
            via: ListenerKind::Local.via(),
            client_ip: ip.to_string(),
            helo: "localhost".into(),
            auth_user: Some(user.name.clone()),
            ..Origin::default()
        },
        received_at: now,
        message,
        reports: Vec::new(),
        notes,
        rejected: Vec::new(),
        idempotency: None,
    };
    let id = accept::accept(ctx.store.as_ref(), &ctx.queue_wakeup, ctx.dkim.as_deref(), incoming).await?;
    Ok(Submitted { id: Some(id), accepted: count, refused })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> LocalUser {
        LocalUser { uid: 1000, name: "bob".into(), full_name: Some("Bob Builder".into()) }
    }

    fn cleanup<'a>(sender: &'a ReversePath, user: &'a LocalUser, id: &'a MessageId, extract: bool) -> Cleanup<'a> {
        Cleanup {
            hostname: "mx.example.com",
            sender,
            user,
            full_name: None,
            extract,
            origin: "example.com",
            id,
            now: Timestamp(0),
        }
    }

    #[test]
    fn a_lone_dot_ends_input_unless_i() {
        assert_eq!(read_message(b"a\n.\nb\n", false), b"a\r\n");
        assert_eq!(read_message(b"a\n.\nb", true), b"a\r\n.\r\nb\r\n");
        assert_eq!(read_message(b"a\r\n..\r\n", false), b"a\r\n..\r\n", "no unstuffing");
    }

    #[test]
    fn t_takes_to_cc_bcc_and_removes_bcc() {
        let m = read_message(
            b"To: A <a@x.test>, b@y.test\nCc: undisclosed:;\nBcc: hidden@z.test,\n  other@z.test\nSubject: hi\n\nbody\n",
            true,
        );
        let (sender, user, id) = (ReversePath::Null, user(), MessageId("ABC".into()));
        let p = prepare(&m, &cleanup(&sender, &user, &id, true));
        assert_eq!(p.header_recipients, ["a@x.test", "b@y.test", "hidden@z.test", "other@z.test"]);
        let text = String::from_utf8(p.message).unwrap();
        assert!(!text.contains("hidden") && !text.contains("Bcc"), "{text}");
        assert!(text.starts_with("Received: by mx.example.com (mailerd, from userid 1000)\r\n\tid ABC; "), "{text}");
        assert!(text.contains("\r\nSubject: hi\r\n"), "{text}");
        assert!(text.contains("\r\nFrom: Bob Builder <bob@example.com>\r\n"), "{text}");
        assert!(text.contains("\r\nMessage-ID: <abc@mx.example.com>\r\n"), "{text}");
        assert!(text.contains("\r\nDate: Thu, 01 Jan 1970 00:00:00 +0000\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nbody\r\n"), "{text}");
    }

    #[test]
    fn resent_headers_win_and_existing_headers_stay() {
        let m = read_message(
            b"From: app@example.com\nDate: x\nMessage-ID: <1@a>\nTo: old@x.test\nResent-To: new@y.test\n\nb\n",
            true,
        );
        let (sender, user, id) = (ReversePath::Null, user(), MessageId("ABC".into()));
        let p = prepare(&m, &cleanup(&sender, &user, &id, true));
        assert_eq!(p.header_recipients, ["new@y.test"]);
        let text = String::from_utf8(p.message).unwrap();
        assert_eq!(text.matches("From:").count(), 1);
        assert_eq!(text.matches("Date:").count(), 1);
        assert_eq!(text.matches("Message-ID:").count(), 1);
    }

    #[test]
    fn a_body_without_headers_gets_them() {
        let m = read_message(b"just a line: with a colon? no, a space first\n", false);
        let sender = ReversePath::Mailbox(Mailbox::parse("cron@example.com").unwrap());
        let (user, id) = (LocalUser { full_name: None, ..user() }, MessageId("ABC".into()));
        let mut c = cleanup(&sender, &user, &id, false);
        c.full_name = Some("Cron Daemon (host)");
        let text = String::from_utf8(prepare(&m, &c).message).unwrap();
        assert!(text.contains("\r\nFrom: \"Cron Daemon (host)\" <cron@example.com>\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\njust a line: with a colon? no, a space first\r\n"), "{text}");
        // A non-header line ends the header block: it starts the body.
        let m = read_message(b"Subject: x\nnot a header\nSubject: y\n", false);
        let text = String::from_utf8(prepare(&m, &c).message).unwrap();
        assert!(text.ends_with("\r\n\r\nnot a header\r\nSubject: y\r\n"), "{text}");
    }

    #[test]
    fn names_and_addresses() {
        assert_eq!(display_name("Bob Builder"), "Bob Builder");
        assert_eq!(display_name("Müller"), "=?UTF-8?B?TcO8bGxlcg==?=");
        assert_eq!(qualify("root", "example.com").unwrap().to_string(), "root@example.com");
        assert_eq!(qualify("<a@b.test>", "example.com").unwrap().to_string(), "a@b.test");
        assert!(qualify("a b@c", "example.com").is_err());
    }
}
