//! Why one recipient failed: a small decision over typed evidence -> [`Decision`] (a reason,
//! hard or soft, and the rule that decided, for `mailerd bounce parse --explain`).
//!
//! Precedence (docs/ARCHITECTURE.md, "Bounce reasons"), first that holds wins:
//! 1. wording in the diagnostic that names a cause (`phrases.rs`, strong groups), read
//!    with the SMTP command it answered: at the greeting, HELO or MAIL nothing but the host
//!    and sender is known, so spam or virus words there refuse the host (`blocked`); at RCPT
//!    a receiver may already judge this sender for this recipient; "user unknown" after
//!    DATA, or with neither an x.1.x status nor a named command, is a filter's refusal of an
//!    address that was accepted (`filtered`, soft: we do not suppress on that); "unknown"
//!    in reply to MAIL FROM is the sender (`rejected`);
//! 2. a specific RFC 3463 status (generic x.0.0, x.5.0, x.7.0, x.7.1 carry no weight); a
//!    temporary network status (4.4.x) in a report means the MTA retried until it gave up
//!    (`expired`);
//! 3. weak wording: a reply code's stock text or a report template;
//! 4. a delay report (`Action: delayed`): `expired`, the sender's MTA is still trying;
//! 5. what the report's own text says, when the recipient's diagnostic says nothing;
//! 6. the command alone: refused at the greeting or HELO (`blocked`), at MAIL (`rejected`);
//! 7. the reply code (RFC 5321 §4.2.3) and the status class (x.7.x security, x.6.x media);
//! 8. `onhold` when an error was shown but nothing names its cause, `undefined` otherwise.
//!
//! Hard or soft comes from the reason and the code together ([`Reason::is_hard`]): every
//! caller that needs a verdict (bounce parsing, our own delivery outcomes, events,
//! metrics, the dashboard) goes through [`classify`] or [`of_outcome`].
//! Pure: no I/O, no time, no randomness. Must not: parse MIME or know any MTA's layout.

use super::phrases::{self, Hit, Strength};
use crate::bounce::reason::Reason;
use crate::smtp::reply::EnhancedStatus;
use std::fmt;
use std::sync::LazyLock;

/// Where in the SMTP dialogue the remote server refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    #[default]
    Unknown,
    /// At the greeting or `HELO`/`EHLO`: the connecting host itself was refused.
    Connect,
    /// At `MAIL FROM`: the sender was refused.
    MailFrom,
    /// At `RCPT TO`.
    RcptTo,
    /// After `DATA`: the content was refused.
    Data,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Unknown => "not named",
            Phase::Connect => "greeting/HELO",
            Phase::MailFrom => "MAIL FROM",
            Phase::RcptTo => "RCPT TO",
            Phase::Data => "DATA",
        }
    }
}

/// What is known about one failed recipient.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    pub status: Option<EnhancedStatus>,
    pub reply_code: Option<u16>,
    /// The remote server's (or the reporting MTA's) words about this recipient.
    pub diagnostic: Option<&'a str>,
    pub phase: Phase,
    /// A delay warning (Action: delayed): the sender's MTA is still trying.
    pub delayed: bool,
    /// The first strong phrase of the whole report's text (found once per report).
    pub report: Option<Hit>,
    /// The diagnostic is of type `X-UNIX`: a local delivery program spoke.
    pub local_program: bool,
}

impl Evidence<'_> {
    /// The reply class (`'4'`/`'5'`): the status's, else the reply code's; a final report
    /// without any code is a permanent failure, a delay report is never one.
    pub fn class(&self) -> Option<char> {
        if self.delayed {
            return Some('4');
        }
        let c = match (self.status, self.reply_code) {
            (Some(s), _) if s.class != 2 => Some(s.class),
            (_, Some(r)) => u8::try_from(r / 100).ok(),
            _ => None,
        };
        Some(match c {
            Some(4) => '4',
            _ => '5',
        })
    }
}

/// How the command a refusal answered changed what the words said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjustment {
    /// Spam or virus words at the greeting, HELO or MAIL: the host was refused, not a message.
    ContentBeforeData,
    /// "User unknown" after DATA: the address was accepted at RCPT; a filter refused.
    UnknownAfterData,
    /// "User unknown" with neither an x.1.x status nor a command: cannot be told from a
    /// filter's refusal, so not a hard bounce.
    UnknownWithoutCommand,
    /// "Unknown" (or "null MX") in reply to MAIL FROM: the sender's address.
    UnknownAtMail,
    /// Size words, and a size status (5.2.3 or 5.3.4) that says which limit was passed.
    SizeByStatus,
    /// "Domain not found" with a temporary (4.x.x) status other than 4.1.2: the lookup
    /// failed for now. (4.1.2 itself names a bad destination domain, refused for now.)
    TemporaryHostLookup,
    /// Connection trouble with a delivery-time-expired status (x.4.7): the MTA gave up.
    GaveUpAfter,
}

impl Adjustment {
    fn explain(self) -> &'static str {
        match self {
            Adjustment::ContentBeforeData => {
                "refused before any recipient or message was sent: the words are about the sending host"
            }
            Adjustment::UnknownAfterData => {
                "refused after DATA, so the address was accepted at RCPT: a filter refused this message"
            }
            Adjustment::UnknownWithoutCommand => {
                "no x.1.x status and no SMTP command named: a filter's refusal cannot be ruled out, so it is not taken as a dead address"
            }
            Adjustment::UnknownAtMail => {
                "refused in reply to MAIL FROM: the unknown or mail-less address is the sender's"
            }
            Adjustment::GaveUpAfter => {
                "the status says delivery time expired (x.4.7): the MTA retried until its queue lifetime ran out"
            }
            Adjustment::TemporaryHostLookup => {
                "a temporary (4.x.x) status: the name could not be resolved for now, which is a DNS matter, not a domain that does not exist"
            }
            Adjustment::SizeByStatus => {
                "the size status says which limit was passed (x.2.3 a mailbox's, x.3.4 the system's)"
            }
        }
    }
}

/// The rule that decided a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Words that name a cause (a strong or own phrase).
    Wording(Hit),
    /// Words read with the command they answered.
    WordingAt(Hit, Adjustment),
    /// A specific enhanced status.
    Status(EnhancedStatus),
    /// A temporary network status in a report: the MTA retried until it gave up.
    GaveUp(EnhancedStatus),
    /// A reply code's stock text or a report template.
    WeakWording(Hit),
    /// A delay report with nothing more specific.
    Delayed,
    /// The command the refusal answered, with no words.
    Command(Phase),
    /// The report's own text, for a recipient whose diagnostic says nothing.
    ReportText(Hit),
    /// The report's own text, read with the command the refusal answered.
    ReportTextAt(Hit, Adjustment),
    /// A local delivery program's failure (`X-UNIX` diagnostic).
    LocalProgram,
    /// The reply code's meaning (RFC 5321 §4.2.3).
    ReplyCode(u16),
    /// The status class alone (x.7.x security, x.6.x media).
    StatusClass(EnhancedStatus),
    /// An error was shown but nothing names its cause.
    OnHold,
    /// Nothing to go on.
    Undefined,
}

/// A recipient's reason, hard or soft, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub reason: Reason,
    pub hard_bounce: Option<bool>,
    pub rule: Rule,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phrase = |f: &mut fmt::Formatter<'_>, what: &str, h: &Hit| {
            write!(f, "{what} of the phrase table '{}' ({})", h.group.name, h.phrase.who)
        };
        match self {
            Rule::Wording(h) => phrase(f, "1. wording", h),
            Rule::WordingAt(h, a) => {
                phrase(f, "1. wording", h)?;
                write!(f, "; {}", a.explain())
            }
            Rule::Status(s) => write!(f, "2. enhanced status {s} (RFC 3463)"),
            Rule::GaveUp(s) => {
                write!(f, "2. temporary network status {s} in a report: the sending MTA retried until it gave up")
            }
            Rule::WeakWording(h) => phrase(f, "3. stock wording", h),
            Rule::Delayed => f.write_str("4. a delay report: the sending MTA is still trying"),
            Rule::ReportText(h) => phrase(f, "5. the report's own text", h),
            Rule::ReportTextAt(h, a) => {
                phrase(f, "5. the report's own text", h)?;
                write!(f, "; {}", a.explain())
            }
            Rule::Command(p) => write!(f, "6. refused at {} with no words that name a cause", p.as_str()),
            Rule::LocalProgram => f.write_str("7. an X-UNIX diagnostic: a local delivery program failed"),
            Rule::ReplyCode(c) => write!(f, "7. reply code {c} (RFC 5321 §4.2.3)"),
            Rule::StatusClass(s) => write!(f, "7. status class of {s}"),
            Rule::OnHold => f.write_str("8. an error was shown, but nothing names its cause"),
            Rule::Undefined => f.write_str("8. nothing to go on"),
        }
    }
}

/// Status codes too generic to name a reason (RFC 3463 "other or undefined" of the
/// whole code, the mail system (x.3.0) and protocol (x.5.0) subjects, and x.7.1,
/// which servers use for every kind of refusal).
fn is_generic(s: EnhancedStatus) -> bool {
    matches!((s.subject, s.detail), (0, 0) | (3, 0) | (5, 0) | (7, 0) | (7, 1))
}

/// Classify one failed recipient.
pub fn classify(e: &Evidence<'_>) -> Decision {
    let (reason, rule) = decide(e);
    let hard_bounce = if e.delayed { Some(false) } else { reason.is_hard(e.class()) };
    Decision { reason, hard_bounce, rule }
}

fn decide(e: &Evidence<'_>) -> (Reason, Rule) {
    let (strong, weak) = e.diagnostic.map(|d| phrases::find(&phrases::normalize(d))).unwrap_or((None, None));
    let x11 = e.status.is_some_and(|s| s.subject == 1 && s.class != 2);
    // 1. words that name a cause, read with the command they answered; at the greeting or
    // HELO no recipient has been named, so words about an address are about our own name
    let strong = strong.filter(|h| {
        !(e.phase == Phase::Connect && matches!(h.group.reason, Reason::UserUnknown | Reason::HostUnknown))
    });
    if let Some(h) = strong {
        return read_with_command(h, e, x11, Rule::Wording, Rule::WordingAt);
    }
    // 2. a specific status
    if let Some(s) = e.status.filter(|s| s.class != 2 && !is_generic(*s)) {
        if s.class == 4 && s.subject == 4 {
            return (Reason::Expired, Rule::GaveUp(s));
        }
        if let Some(r) = Reason::of_status(s) {
            // In reply to MAIL FROM an address status is about the sender.
            let r = match (r, e.phase) {
                (Reason::UserUnknown | Reason::HostUnknown, Phase::MailFrom) => Reason::Rejected,
                (r, _) => r,
            };
            return (r, Rule::Status(s));
        }
    }
    // 3. stock wording ("service unavailable" names a system's state only while it is
    // temporary; a permanent "554 Service unavailable" is a refusal that names no cause)
    let weak = weak.filter(|h| h.group.reason != Reason::SystemError || e.class() == Some('4'));
    if let Some(h) = weak {
        let r = match (h.group.reason, e.phase) {
            (Reason::UserUnknown, Phase::MailFrom) => Reason::Rejected,
            (r, _) => r,
        };
        return (r, Rule::WeakWording(h));
    }
    // 4. a delay report
    if e.delayed {
        return (Reason::Expired, Rule::Delayed);
    }
    // 5. the report's own words, read like the recipient's own
    if let Some(h) = e.report {
        return read_with_command(h, e, x11, Rule::ReportText, Rule::ReportTextAt);
    }
    // 6. the command alone
    match e.phase {
        Phase::Connect => return (Reason::Blocked, Rule::Command(e.phase)),
        Phase::MailFrom => return (Reason::Rejected, Rule::Command(e.phase)),
        _ => {}
    }
    // 7. the local program, the reply code, the status class
    if e.local_program {
        return (Reason::MailerError, Rule::LocalProgram);
    }
    if let Some(r) = e.reply_code.and_then(|c| reply_code_reason(c, e.phase)) {
        return (r, Rule::ReplyCode(e.reply_code.unwrap_or_default()));
    }
    if let Some(s) = e.status {
        match s.subject {
            7 => return (Reason::SecurityError, Rule::StatusClass(s)),
            6 => return (Reason::ContentError, Rule::StatusClass(s)),
            _ => {}
        }
    }
    // 8. nothing names a cause
    let shown = e.status.is_some() || e.reply_code.is_some() || e.diagnostic.is_some_and(|d| !d.trim().is_empty());
    if shown { (Reason::OnHold, Rule::OnHold) } else { (Reason::Undefined, Rule::Undefined) }
}

/// The reason words name, read with the command they answered (step 1 and 5).
fn read_with_command(
    h: Hit,
    e: &Evidence<'_>,
    x11: bool,
    plain: fn(Hit) -> Rule,
    adjusted: fn(Hit, Adjustment) -> Rule,
) -> (Reason, Rule) {
    let adjustment = match (h.group.reason, e.phase) {
        (Reason::SpamDetected | Reason::VirusDetected, Phase::Connect | Phase::MailFrom) => {
            Some((Reason::Blocked, Adjustment::ContentBeforeData))
        }
        (Reason::UserUnknown | Reason::HostUnknown | Reason::NotAccept, Phase::MailFrom) => {
            Some((Reason::Rejected, Adjustment::UnknownAtMail))
        }
        // The MTA says it gave up (x.4.7): the last connection error is how, not why.
        (Reason::NetworkError, _) if e.status.is_some_and(|s| s.subject == 4 && s.detail == 7) => {
            Some((Reason::Expired, Adjustment::GaveUpAfter))
        }
        (Reason::HostUnknown, _)
            if h.group.strength != Strength::Own
                && e.status.is_some_and(|s| s.class == 4 && (s.subject, s.detail) != (1, 2)) =>
        {
            Some((Reason::NetworkError, Adjustment::TemporaryHostLookup))
        }
        (Reason::UserUnknown, Phase::Data) if !x11 => Some((Reason::Filtered, Adjustment::UnknownAfterData)),
        (Reason::UserUnknown, Phase::Unknown) if !x11 && h.group.strength != Strength::Own => {
            Some((Reason::Filtered, Adjustment::UnknownWithoutCommand))
        }
        // Which size limit was passed: a size status says it better than "too big".
        (Reason::MesgTooBig | Reason::ExceedLimit, _) => match e.status.and_then(Reason::of_status) {
            Some(r @ (Reason::MesgTooBig | Reason::ExceedLimit)) if r != h.group.reason => {
                Some((r, Adjustment::SizeByStatus))
            }
            _ => None,
        },
        _ => None,
    };
    match adjustment {
        Some((r, a)) => (r, adjusted(h, a)),
        None => (h.group.reason, plain(h)),
    }
}

/// What a bare reply code means (RFC 5321 §4.2.2-4.2.3), where it means one thing. A bare
/// 421 or 451 says only "try again later", which names no cause.
fn reply_code_reason(code: u16, phase: Phase) -> Option<Reason> {
    match (code, phase) {
        (500..=504, _) => Some(Reason::SyntaxError),
        (530 | 534 | 535 | 538, _) => Some(Reason::SecurityError),
        // "Requested mail action aborted: exceeded storage allocation"
        (552, Phase::RcptTo) => Some(Reason::MailboxFull),
        (552, Phase::Data) => Some(Reason::MesgTooBig),
        // "Requested action not taken: mailbox name not allowed"
        (553, Phase::RcptTo) => Some(Reason::UserUnknown),
        // "Requested action not taken: insufficient system storage"
        (452, Phase::Data) => Some(Reason::SystemFull),
        _ => None,
    }
}

/// The verdict on one of our own delivery outcomes (the remote's reply or our own report of
/// a connection problem), for the scheduler, events, metrics and the dashboard: the same
/// decision as for a parsed bounce.
pub fn of_outcome(status: Option<&str>, reply_code: Option<u16>, detail: Option<&str>) -> Decision {
    of_status(status.and_then(|s| EnhancedStatus::parse(s.trim())), reply_code, detail)
}

/// `of_outcome` with the status already typed (as the store hands out a recipient's).
pub fn of_status(status: Option<EnhancedStatus>, reply_code: Option<u16>, detail: Option<&str>) -> Decision {
    let phase = detail.map(phase_in).unwrap_or_default();
    classify(&Evidence { status, reply_code, diagnostic: detail, phase, ..Evidence::default() })
}

static PHASE: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)(?:in reply to|in response to|after|>>>|did not like our|most progress was|while sending|in:)\s*(end of data|data|mail from|rcpt to|rcpt|mail|initial connection|helo|ehlo|greeting|connect)(?-u:\b)|^\s*<<<\s*[45]\d\d",
    )
    .ok()
});

/// Words that only a refusal at one command carries: Postfix's "Recipient address
/// rejected" and qmail's "does not like recipient" (RCPT), Sun/Oracle Messaging Server's
/// "server has rejected address", a `[RCPT_TO]` tag; qmail's "sender was rejected" (MAIL);
/// Postfix's "while receiving the initial server greeting", qmail's "greeting failed" and
/// "my name was rejected" (the greeting or HELO).
#[rustfmt::skip]
const CUES: &[(&str, Phase)] = &[
    (r"recipient address rejected|does not like recipient|server has rejected (the )?address|\[rcpt_to\]", Phase::RcptTo),
    (r"sender was rejected|does not like sender", Phase::MailFrom),
    (r"initial server greeting|greeting failed|my name was rejected|while performing the (ehlo|helo|tls) handshake", Phase::Connect),
];

static CUE_SET: LazyLock<Option<regex::RegexSet>> =
    LazyLock::new(|| regex::RegexSet::new(CUES.iter().map(|(p, _)| format!("(?i){p}"))).ok());

/// The SMTP phase at which `text` says the remote server refused: the command named by
/// Postfix's `in reply to X command` or Exim's `after X`, or, in a transcript, the last
/// `>>> X` before the first `<<< 4xx/5xx` reply; else a cue word of one command.
pub fn phase_in(text: &str) -> Phase {
    let Some(re) = PHASE.as_ref() else {
        return Phase::Unknown;
    };
    let mut last = Phase::Unknown;
    for line in text.lines().take(2000) {
        for c in re.captures_iter(line) {
            let Some(cmd) = c.get(1) else {
                // A failure reply in a transcript: the last command sent is the phase.
                if last != Phase::Unknown {
                    return last;
                }
                continue;
            };
            let cmd = cmd.as_str().to_ascii_lowercase();
            let p = if cmd.contains("data") {
                Phase::Data
            } else if ["initial", "helo", "ehlo", "greeting", "connect"].iter().any(|w| cmd.starts_with(w)) {
                Phase::Connect
            } else if cmd.starts_with("mail") {
                Phase::MailFrom
            } else {
                Phase::RcptTo
            };
            if !c.get(0).is_some_and(|m| m.as_str().starts_with(">>>")) {
                return p;
            }
            last = p;
        }
    }
    CUE_SET
        .as_ref()
        .and_then(|set| set.matches(text).iter().next())
        .and_then(|i| CUES.get(i))
        .map_or(Phase::Unknown, |(_, p)| *p)
}

/// The phase for `address` in a report (`lower` is its lower-cased text): from the
/// transcript lines that start at the `>>> RCPT TO:<address>` line when there is one, else
/// from the paragraph that names the address (Postfix's `<address>: host ... said: ...
/// (in reply to RCPT TO command)`, Exim's indented block), else (when `whole_report`) from
/// the whole text (a refusal of the whole transaction — greeting, MAIL, DATA — also when
/// the report names several recipients).
pub fn phase_near(lower: &str, address: &str, whole_report: bool) -> Phase {
    let line_start = |i: usize| lower.get(..i).and_then(|h| h.rfind('\n')).map_or(0, |n| n + 1);
    let mut paragraphs = Phase::Unknown;
    for i in lower.match_indices(address).map(|(i, _)| i).take(20) {
        let start = line_start(i);
        if lower.get(start..i).is_some_and(|l| l.trim_start().starts_with(">>>")) {
            return lower.get(start..).map(phase_in).unwrap_or_default();
        }
        if paragraphs == Phase::Unknown {
            let rest = lower.get(start..).unwrap_or("");
            let end = rest.find("\n\n").or_else(|| rest.find("\n\r\n")).unwrap_or(rest.len()).min(2000);
            let end = (0..=end).rev().find(|&e| rest.is_char_boundary(e)).unwrap_or(0);
            paragraphs = rest.get(..end).map(phase_in).unwrap_or_default();
        }
    }
    match paragraphs {
        // A refusal of the whole transaction (greeting, MAIL, DATA) holds for every
        // recipient; one at RCPT only for the recipient it names.
        Phase::Unknown => match phase_in(lower) {
            Phase::RcptTo if !whole_report => Phase::Unknown,
            p => p,
        },
        p => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(s: &str) -> Option<EnhancedStatus> {
        EnhancedStatus::parse(s)
    }

    fn ev<'a>(status: &str, code: u16, diagnostic: &'a str, phase: Phase) -> Evidence<'a> {
        Evidence {
            status: st(status),
            reply_code: (code != 0).then_some(code),
            diagnostic: Some(diagnostic).filter(|d| !d.is_empty()),
            phase,
            ..Evidence::default()
        }
    }

    fn reason(e: Evidence<'_>) -> Reason {
        classify(&e).reason
    }

    #[test]
    fn wording_outranks_a_generic_status() {
        assert_eq!(
            reason(ev("5.0.0", 550, "550 5.0.0 <a@example.jp>... User unknown", Phase::RcptTo)),
            Reason::UserUnknown
        );
        assert_eq!(reason(ev("5.2.1", 550, "550 5.2.1 Mailbox not found", Phase::RcptTo)), Reason::UserUnknown);
        assert_eq!(reason(ev("5.5.0", 550, "550 No such user here", Phase::RcptTo)), Reason::UserUnknown);
        assert_eq!(
            reason(ev("5.7.1", 554, "554 5.7.1 <a@example.jp>: Relay access denied", Phase::RcptTo)),
            Reason::NoRelaying
        );
    }

    #[test]
    fn a_specific_status_outranks_stock_wording() {
        let d = "550 5.2.2 Requested action not taken: mailbox unavailable";
        assert_eq!(reason(ev("5.2.2", 550, d, Phase::RcptTo)), Reason::MailboxFull);
        let d = "550 Requested action not taken: mailbox unavailable";
        assert_eq!(reason(ev("5.5.0", 550, d, Phase::RcptTo)), Reason::UserUnknown);
    }

    #[test]
    fn the_command_changes_what_the_words_mean() {
        // Spam words before DATA refuse the host.
        let d = "550 5.7.1 Mail from 192.0.2.1 refused: known spam source";
        assert_eq!(reason(ev("5.7.1", 550, d, Phase::MailFrom)), Reason::Blocked);
        assert_eq!(reason(ev("5.7.1", 550, d, Phase::Data)), Reason::SpamDetected);
        // "User unknown" after DATA: the address was accepted, a filter refused.
        assert_eq!(reason(ev("5.0.0", 550, "550 User unknown", Phase::Data)), Reason::Filtered);
        // ... unless an x.1.x status says the address is bad.
        assert_eq!(reason(ev("5.1.1", 550, "550 User unknown", Phase::Data)), Reason::UserUnknown);
        // With no command and no x.1.x status it is not taken as a dead address.
        assert_eq!(reason(ev("", 550, "550 User unknown", Phase::Unknown)), Reason::Filtered);
        // ... but the reporting MTA's own words are.
        assert_eq!(reason(ev("", 0, "The recipient name is not recognized", Phase::Unknown)), Reason::UserUnknown);
        // "Unknown" in reply to MAIL FROM is the sender.
        assert_eq!(reason(ev("5.1.1", 550, "550 5.1.1 User unknown", Phase::MailFrom)), Reason::Rejected);
        // Refused at the greeting with no words: the host.
        assert_eq!(reason(ev("", 554, "554", Phase::Connect)), Reason::Blocked);
    }

    #[test]
    fn the_rest_of_the_ladder() {
        assert_eq!(reason(ev("4.4.1", 0, "", Phase::Unknown)), Reason::Expired);
        assert_eq!(reason(Evidence { delayed: true, ..ev("4.0.0", 0, "", Phase::Unknown) }), Reason::Expired);
        assert_eq!(reason(ev("", 552, "552 ", Phase::RcptTo)), Reason::MailboxFull);
        assert_eq!(reason(ev("5.7.1", 550, "550 5.7.1 Command rejected", Phase::RcptTo)), Reason::SecurityError);
        assert_eq!(reason(ev("5.0.0", 550, "550 5.0.0 nope", Phase::RcptTo)), Reason::OnHold);
        assert_eq!(reason(Evidence::default()), Reason::Undefined);
        assert_eq!(reason(Evidence { local_program: true, ..ev("5.0.0", 0, "", Phase::Unknown) }), Reason::MailerError);
    }

    #[test]
    fn hard_only_for_a_bad_address_with_a_permanent_code() {
        let d = classify(&ev("5.1.1", 550, "550 5.1.1 User unknown", Phase::RcptTo));
        assert_eq!(d.hard_bounce, Some(true));
        let d = classify(&ev("4.2.2", 452, "452 4.2.2 Mailbox full", Phase::RcptTo));
        assert_eq!(d.hard_bounce, Some(false));
        let d = classify(&Evidence { delayed: true, ..ev("5.1.1", 550, "550 5.1.1 User unknown", Phase::RcptTo) });
        assert_eq!(d.hard_bounce, Some(false));
        let d = classify(&ev("", 0, "Sorry, I couldn't find any host named example.invalid. (#5.1.2)", Phase::Unknown));
        assert_eq!((d.reason, d.hard_bounce), (Reason::HostUnknown, Some(true)));
        let d = classify(&ev("4.1.10", 0, "Domain example.jp does not accept mail (nullMX)", Phase::Unknown));
        assert_eq!((d.reason, d.hard_bounce), (Reason::NotAccept, Some(false)));
    }

    #[test]
    fn our_own_outcomes_take_the_same_road() {
        let d = of_outcome(
            Some("5.7.1"),
            Some(550),
            Some("550 5.7.1 <a@example.jp>: Recipient address rejected: User unknown"),
        );
        assert_eq!((d.reason, d.hard_bounce), (Reason::UserUnknown, Some(true)));
        let d = of_outcome(Some("4.4.1"), None, Some("connect to mx.example.jp[192.0.2.1]:25: Connection timed out"));
        assert_eq!((d.reason, d.hard_bounce), (Reason::Expired, Some(false)));
        let d = of_outcome(Some("4.4.1"), None, Some("connect to mx.example.jp[192.0.2.1]:25: Connection refused"));
        assert_eq!((d.reason, d.hard_bounce), (Reason::NetworkError, Some(false)));
    }

    #[test]
    fn phases_are_read_from_the_mtas_words() {
        assert_eq!(phase_in("mx.example.jp did not like our RCPT TO: 550 5.0.0 unknown"), Phase::RcptTo);
        assert_eq!(phase_in("most progress was RCPT TO response; remote host said: 550"), Phase::RcptTo);
        assert_eq!(phase_in("550 5.1.1 <a@b.c>: Recipient address rejected: User unknown"), Phase::RcptTo);
        assert_eq!(phase_in("192.0.2.1 does not like recipient. Remote host said: 550 no"), Phase::RcptTo);
        assert_eq!(phase_in("host mx said: 554 go away (in reply to end of DATA command)"), Phase::Data);
        assert_eq!(
            phase_in("lost connection with mx[192.0.2.1] while receiving the initial server greeting"),
            Phase::Connect
        );
        assert_eq!(
            phase_in("SMTP error from remote mail server after MAIL FROM:<a@b.c> SIZE=10: 550 no"),
            Phase::MailFrom
        );
        assert_eq!(phase_in(">>> DATA\n<<< 554 5.7.1 spam"), Phase::Data);
        assert_eq!(phase_in("550 no reason given"), Phase::Unknown);
        let report = "<a@example.jp>: host mx said: 550 5.0.0 no\n    such user (in reply to RCPT TO command)\n\n<b@example.jp>: host mx said: 554 5.0.0 go away (in reply to end of DATA command)\n";
        assert_eq!(phase_near(report, "a@example.jp", false), Phase::RcptTo);
        assert_eq!(phase_near(report, "b@example.jp", false), Phase::Data);
    }

    #[test]
    fn every_rule_explains_itself() {
        let d = classify(&ev("5.0.0", 550, "550 User unknown", Phase::Data));
        let text = d.rule.to_string();
        assert!(text.contains("after DATA") && text.contains("userunknown"), "{text}");
    }
}
