//! Every reply text mailerd's SMTP server sends, in one place (DESIGN §4).
//!
//! Standards: RFC 5321 §4.2.2–4.2.3 (codes), RFC 3463 (enhanced status), RFC 4954 (AUTH replies),
//! RFC 3207 (STARTTLS), RFC 6531 §3.7.4.1 (SMTPUTF8 required).
//! Texts are generic on purpose: details of a refusal go to the log, not to the client.
//! Must not: be bypassed; handlers never write reply literals themselves.

use super::senders::HeaderField;
use crate::smtp::reply::{EnhancedStatus, SmtpReply};

fn r(code: u16, status: (u8, u16, u16), text: impl Into<String>) -> SmtpReply {
    SmtpReply::new(code, Some(EnhancedStatus::new(status.0, status.1, status.2)), text)
}

pub fn greeting(hostname: &str) -> SmtpReply {
    SmtpReply::new(220, None, format!("{hostname} ESMTP mailerd"))
}

pub fn ehlo(hostname: &str, client: &str, extensions: Vec<String>) -> SmtpReply {
    let mut lines = vec![format!("{hostname} greets {client}")];
    lines.extend(extensions);
    SmtpReply { code: 250, status: None, lines }
}

pub fn helo(hostname: &str) -> SmtpReply {
    SmtpReply::new(250, None, hostname.to_string())
}

pub fn ok() -> SmtpReply {
    r(250, (2, 0, 0), "Ok")
}

pub fn sender_ok() -> SmtpReply {
    r(250, (2, 1, 0), "Ok")
}

pub fn recipient_ok() -> SmtpReply {
    r(250, (2, 1, 5), "Ok")
}

pub fn start_data() -> SmtpReply {
    SmtpReply::new(354, None, "End data with <CR><LF>.<CR><LF>")
}

pub fn queued(id: &str) -> SmtpReply {
    r(250, (2, 0, 0), format!("Ok: queued as {id}"))
}

pub fn bye() -> SmtpReply {
    r(221, (2, 0, 0), "Bye")
}

pub fn user_unknown(rcpt: &str) -> SmtpReply {
    r(550, (5, 1, 1), format!("<{rcpt}>: user unknown"))
}

pub fn mailbox_full(rcpt: &str) -> SmtpReply {
    r(552, (5, 2, 2), format!("<{rcpt}>: mailbox full"))
}

pub fn message_too_large() -> SmtpReply {
    r(552, (5, 3, 4), "message size exceeds fixed maximum message size")
}

pub fn service_unavailable() -> SmtpReply {
    r(421, (4, 3, 2), "service not available, closing transmission channel")
}

pub fn insufficient_storage() -> SmtpReply {
    r(452, (4, 3, 1), "insufficient system storage")
}

/// The store could not be reached or could not commit: nothing was stored, try again.
pub fn store_unavailable() -> SmtpReply {
    r(451, (4, 3, 0), "temporary local problem: the queue store is unavailable; try again later")
}

/// The reply for a failed store operation: 452 4.3.1 when the disk is full, else 451 4.3.0.
pub fn store_failed(e: &crate::store::StoreError) -> SmtpReply {
    store_trouble(e.is_out_of_space())
}

/// 452 4.3.1 when the disk is full, else 451 4.3.0.
pub fn store_trouble(out_of_space: bool) -> SmtpReply {
    if out_of_space { insufficient_storage() } else { store_unavailable() }
}

pub fn relay_denied(rcpt: &str) -> SmtpReply {
    r(554, (5, 7, 1), format!("<{rcpt}>: relay access denied"))
}

/// A recipient on the suppression list: says since when and why, and how to undo it.
pub fn suppressed(rcpt: &str, since: &str, why: &str) -> SmtpReply {
    let date = since.get(..10).unwrap_or(since);
    let text = match why {
        "unsubscribed" => {
            format!("<{rcpt}>: suppressed since {date}: the recipient unsubscribed from this sender's mail")
        }
        "complaint" => format!("<{rcpt}>: suppressed since {date}: the recipient reported this sender's mail as spam"),
        _ => format!(
            "<{rcpt}>: suppressed since {date} after a hard bounce ({why}); remove with `mailerd suppression remove`"
        ),
    };
    r(550, (5, 1, 1), text)
}

/// A bounce address of ours whose signature is wrong or expired: backscatter, refused.
pub fn invalid_bounce_address(rcpt: &str) -> SmtpReply {
    r(550, (5, 7, 1), format!("<{rcpt}>: invalid or expired bounce address"))
}

/// An unsubscribe address of ours whose token does not verify: refused, nothing recorded.
pub fn invalid_unsubscribe_address(rcpt: &str) -> SmtpReply {
    r(550, (5, 1, 1), format!("<{rcpt}>: invalid unsubscribe address"))
}

pub fn domain_not_found(rcpt: &str) -> SmtpReply {
    r(550, (5, 1, 2), format!("<{rcpt}>: domain not found"))
}

/// A relayed recipient refused by the checklist (`[check.policy]`), with the fix.
pub fn recipient_check_failed(rcpt: &str, check: &str, why: &str) -> SmtpReply {
    let status = if check == "typo" { (5, 1, 2) } else { (5, 1, 3) };
    r(550, status, format!("<{rcpt}>: {why}"))
}

/// A submitted message refused by the checklist (`[check.policy]`), with the fix.
pub fn message_check_failed(check: &str, why: &str) -> SmtpReply {
    match check {
        "size" => r(552, (5, 3, 4), format!("message refused: {why}")),
        "8bit" => r(554, (5, 6, 7), format!("message refused: {why}")),
        _ => r(550, (5, 6, 0), format!("message refused: {why}")),
    }
}

/// MAIL FROM of an authenticated user that is not its own (`relay.sender_login_match`).
pub fn sender_not_owned(sender: &str, login: &str) -> SmtpReply {
    r(553, (5, 7, 1), format!("<{sender}>: Sender address not owned by user {login}"))
}

/// A From: or Sender: address of an authenticated user's message that is not its own: 550
/// after DATA (553 is a reply about a mailbox name given in a command).
pub fn header_not_owned(field: HeaderField, login: &str) -> SmtpReply {
    let what = match field {
        HeaderField::From => "From address",
        HeaderField::Sender => "Sender header address",
    };
    r(550, (5, 7, 1), format!("{what} not owned by user {login}"))
}

/// An account the hard-bounce breaker paused: temporary, so nothing bounces while an admin looks.
pub fn account_paused(account: &str, why: &str) -> SmtpReply {
    r(451, (4, 7, 1), format!("sending paused for {account}: {why}; an admin must resume it (mailerd account resume)"))
}

pub fn too_many_recipients() -> SmtpReply {
    r(452, (4, 5, 3), "too many recipients")
}

pub fn unrecognized() -> SmtpReply {
    r(500, (5, 5, 2), "command not recognized")
}

pub fn line_too_long() -> SmtpReply {
    r(500, (5, 5, 2), "line too long")
}

pub fn bad_encoding() -> SmtpReply {
    r(500, (5, 5, 2), "command line is not valid UTF-8")
}

pub fn syntax(detail: &str) -> SmtpReply {
    r(501, (5, 5, 4), format!("syntax error: {detail}"))
}

pub fn bad_sender(detail: &str) -> SmtpReply {
    r(501, (5, 1, 7), format!("bad sender address syntax: {detail}"))
}

pub fn bad_recipient(detail: &str) -> SmtpReply {
    r(501, (5, 1, 3), format!("bad recipient address syntax: {detail}"))
}

pub fn unknown_parameter(name: &str) -> SmtpReply {
    r(555, (5, 5, 4), format!("unsupported parameter {name}"))
}

pub fn needs_smtputf8() -> SmtpReply {
    r(553, (5, 6, 7), "non-ASCII address requires SMTPUTF8")
}

pub fn bad_sequence(detail: &str) -> SmtpReply {
    r(503, (5, 5, 1), detail.to_string())
}

pub fn no_valid_recipients() -> SmtpReply {
    r(554, (5, 5, 1), "no valid recipients")
}

pub fn timeout(hostname: &str) -> SmtpReply {
    r(421, (4, 4, 2), format!("{hostname} error: timeout exceeded"))
}

/// Over the per-client session limit (Postfix's smtpd_client_connection_count_limit).
pub fn too_many_connections_from(client: &str) -> SmtpReply {
    r(421, (4, 7, 0), format!("too many connections from {client}"))
}

/// Over the per-client connection rate (smtpd_client_connection_rate_limit).
pub fn connection_rate_from(client: &str) -> SmtpReply {
    r(421, (4, 7, 0), format!("too many connections from {client}, slow down"))
}

/// Over the per-client message rate (smtpd_client_message_rate_limit).
pub fn too_much_mail_from(client: &str) -> SmtpReply {
    r(421, (4, 7, 0), format!("too much mail from {client}, try again later"))
}

/// Over the per-client recipient rate (smtpd_client_recipient_rate_limit): send it later.
pub fn too_many_recipients_from(client: &str) -> SmtpReply {
    r(452, (4, 7, 0), format!("too many recipients from {client}, try again later"))
}

pub fn too_many_errors() -> SmtpReply {
    r(421, (4, 7, 0), "too many errors, closing connection")
}

pub fn vrfy() -> SmtpReply {
    r(252, (2, 0, 0), "cannot VRFY user; send some mail and it will be tried")
}

pub fn expn_disabled() -> SmtpReply {
    r(502, (5, 5, 1), "EXPN not available")
}

pub fn help() -> SmtpReply {
    r(214, (2, 0, 0), "see https://www.rfc-editor.org/rfc/rfc5321")
}

pub fn tls_ready() -> SmtpReply {
    r(220, (2, 0, 0), "Ready to start TLS")
}

pub fn tls_not_available() -> SmtpReply {
    r(454, (4, 7, 0), "TLS not available")
}

pub fn auth_required() -> SmtpReply {
    r(530, (5, 7, 0), "Authentication required")
}

pub fn encryption_required() -> SmtpReply {
    r(538, (5, 7, 11), "Encryption required for requested authentication mechanism")
}

pub fn auth_not_here() -> SmtpReply {
    r(502, (5, 5, 1), "AUTH is offered on the submission port only")
}

pub fn auth_ok() -> SmtpReply {
    r(235, (2, 7, 0), "Authentication successful")
}

pub fn auth_failed() -> SmtpReply {
    r(535, (5, 7, 8), "Authentication credentials invalid")
}

pub fn auth_rate_limited() -> SmtpReply {
    r(454, (4, 7, 0), "too many failed authentication attempts; try again later")
}

/// The password could not be checked now (Dovecot's auth service down): RFC 4954 §6's
/// temporary authentication failure, so the client tries again rather than asking for a new
/// password.
pub fn auth_unavailable() -> SmtpReply {
    r(454, (4, 7, 0), "Temporary authentication failure")
}

pub fn auth_unknown_mechanism() -> SmtpReply {
    r(504, (5, 5, 4), "unrecognized authentication type")
}

pub fn auth_cancelled() -> SmtpReply {
    r(501, (5, 0, 0), "Authentication canceled")
}

pub fn auth_malformed() -> SmtpReply {
    r(501, (5, 5, 2), "cannot decode AUTH response")
}

pub fn auth_challenge(b64: &str) -> SmtpReply {
    SmtpReply::new(334, None, b64.to_string())
}
