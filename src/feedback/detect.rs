//! What kind of message is this: a bounce, a delay warning, an auto-reply (vacation), an
//! ARF feedback report, a success report, or ordinary mail?
//!
//! Standards: RFC 3464 / RFC 6522 (`multipart/report; report-type=delivery-status`),
//! RFC 5965 (ARF, `report-type=feedback-report`), RFC 3834 (`Auto-Submitted`).
//! Signals are data (the tables below); the first kind whose signals hold wins.
//! Must not: panic, parse recipients (that is `parse/`) or classify reasons.

use super::parse::{Doc, Row};
use super::report::ReportKind;
use regex::Regex;
use std::sync::LazyLock;

/// Subjects of bounces and delay warnings, in many languages and templates.
static BOUNCE_SUBJECT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)undeliver|undelivered|returned mail|return(ed)? to sender|failure notice|delivery (status notification|failure|failed|problem|notification|report|error)|mail delivery (failed|failure|system|subsystem)|could not be delivered|non.?delivery|nondeliverable|(?-u:\b)bounce|not delivered|unable to deliver|delivery has failed|failed delivery|delivery unsuccessful|mail system error|permanent error|delayed mail|warning: could not send|message (not delivered|delivery failed|you sent|status)|error sending|mail could not|rejected|^\s*fail(ed|ure)?:|sorry,|nicht zustellbar|unzustellbar|non remis|non recapitabile|no entregado|não entregue|配信|エラー|不能|failure|delivery notification|undeliverable|expired").ok()
});

/// Subjects of replies and forwards written by people.
static REPLY_PREFIX: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*(re|fwd?|aw|wg|sv|vs|antw|r|rif|tr)\s*(\[\d+\])?\s*:").ok());

/// Senders that write bounces.
static BOUNCE_FROM: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)mailer-?daemon|post_?master|mail ?delivery|delivery ?(subsystem|system|status)|mail administrator|mail system|bounce|mail-?router|smtp gateway|nobody@|devnull|mdaemon|mailer@|mail\.?server").ok()
});

/// Body sentences that only bounces write.
static BOUNCE_BODY: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)could not be delivered|couldn't be delivered|was not delivered|undeliverable|delivery (has )?failed|permanent (fatal )?error|following address(es)? (had|failed)|unable to deliver|delivery to the following recipient|transcript of session|mail delivery (failed|software)|this is the (mail system|qmail-send program)|returned mail|i'm afraid i wasn't able to deliver|your message (did not|could not|wasn't|was not) (reach|be delivered)|message (could not|was not|wasn't) (be )?(delivered|sent)|has been delayed|will be retried|not yet been delivered|delivery status notification|user unknown|no such user|failed recipient|failed to deliver|mailbox (is )?(full|unavailable)|recipient address rejected|message not delivered|reason: |smtp error|delivery failure|was undeliverable|cannot be delivered|can't be delivered").ok()
});

/// Auto-reply subjects (RFC 3834 replies rarely say so in headers).
static VACATION_SUBJECT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)out of (the )?office|auto(matic)?[ -]?(reply|response|answer)|autoreply|autoresponder|réponse automatique|respuesta automática|risposta automatica|自動応答").ok()
});

/// Words that mean an auto-reply only when a header says the message is automatic.
static VACATION_WEAK: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)vacation|away from|abwesen|absence|on leave|holiday|不在").ok());

/// Words of a delay warning (the sender's MTA is still trying).
static DELAY_TEXT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)warning message only|you do not need to resend|will (continue to )?(be )?(retried|retry|try)|has been delayed|delivery (is |has been )?delayed|not yet been delivered|still (trying|being retried)|delay(ed)? (notice|notification|warning)|warning: could not send message for past|\(delay\)").ok()
});

/// Auto-reply words meaning the address no longer receives mail.
static GONE_TEXT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)(address|mailbox|inbox|account)( \S+)? (is )?no longer (in use|active|valid|monitored|exists?)|no longer (works|work) (here|at|for)|has been (deactivated|closed|deleted)").ok()
});

fn hit(re: &LazyLock<Option<Regex>>, text: &str) -> bool {
    re.as_ref().is_some_and(|r| r.is_match(text))
}

/// The kind of `doc`, given the rows the parsers read from it.
pub fn detect(doc: &Doc, rows: &[Row]) -> ReportKind {
    let ct = doc.content_type.as_str();
    if ct.contains("report-type=feedback-report") || !doc.feedback.is_empty() {
        return ReportKind::Feedback;
    }
    let actions: Vec<&str> = rows.iter().filter_map(|r| r.action.as_deref()).collect();
    let failed = |a: &str| a.starts_with("fail") || a.contains("failed");
    let delivered = |a: &str| ["delivered", "relayed", "expanded"].iter().any(|x| a.starts_with(x));
    if !actions.is_empty() {
        if actions.iter().any(|a| failed(a)) {
            return ReportKind::Bounce;
        }
        if actions.iter().all(|a| a.starts_with("delayed")) {
            return ReportKind::Delay;
        }
        if actions.iter().all(|a| delivered(a)) {
            return ReportKind::Delivered;
        }
    }
    let auto_replied = doc.header("auto-submitted").is_some_and(|v| v.to_ascii_lowercase().contains("auto-replied"));
    let autoreply_headers =
        ["x-autoreply", "x-autorespond", "x-autoresponder", "x-vacation"].iter().any(|h| doc.header(h).is_some())
            || doc.header("precedence").is_some_and(|v| v.eq_ignore_ascii_case("auto_reply"));
    let from_daemon = hit(&BOUNCE_FROM, &doc.from);
    let subj_bounce = hit(&BOUNCE_SUBJECT, &doc.subject);
    let body_bounce = hit(&BOUNCE_BODY, &doc.text);
    let automatic =
        auto_replied || doc.header("precedence").is_some() || doc.header("x-auto-response-suppress").is_some();
    let vacation_subject = hit(&VACATION_SUBJECT, &doc.subject) || (automatic && hit(&VACATION_WEAK, &doc.subject));

    // A person's reply about a bounce ("Re: Undeliverable: ...", In-Reply-To, not from a
    // daemon, no report part) quotes bounce words but is ordinary mail.
    let human_reply = doc.header("in-reply-to").is_some()
        && REPLY_PREFIX.as_ref().is_some_and(|r| r.is_match(&doc.subject))
        && !from_daemon
        && doc.dsn.is_empty()
        && !ct.contains("report-type");
    if human_reply {
        return ReportKind::NotBounce;
    }
    let is_bounce = ct.contains("report-type=delivery-status")
        || !doc.dsn.is_empty()
        || doc.header("x-failed-recipients").is_some()
        || (from_daemon && (subj_bounce || body_bounce || !rows.is_empty()))
        || (subj_bounce && body_bounce)
        || (subj_bounce && !rows.is_empty() && !vacation_subject)
        || (super::parse::fml::wrote(doc) && !rows.is_empty());
    if is_bounce && !(vacation_subject && !from_daemon && !body_bounce) {
        if hit(&DELAY_TEXT, &doc.text)
            || hit(&DELAY_TEXT, &doc.subject)
            || doc.subject.to_ascii_lowercase().contains("delayed")
        {
            return ReportKind::Delay;
        }
        return ReportKind::Bounce;
    }
    if autoreply_headers || vacation_subject || (auto_replied && !from_daemon) {
        // RFC 3834 replies that say the mailbox is gone are bounces in all but form.
        if hit(&GONE_TEXT, &doc.text) {
            return ReportKind::Bounce;
        }
        return ReportKind::Vacation;
    }
    let has_original = doc.original.message_id.is_some() || doc.original.from.is_some();
    if body_bounce && (from_daemon || (has_original && !rows.is_empty())) {
        return ReportKind::Bounce;
    }
    ReportKind::NotBounce
}
