//! Classification as data: a recipient's status code and diagnostic text -> [`Reason`].
//!
//! Two tables: RFC 3463 enhanced status -> reason (in `bounce/reason.rs`), and the ordered
//! text rules below (one line each: a case-insensitive regex and the reason it means),
//! compiled once into a `RegexSet`. The first rule (in table order) that matches wins.
//! A specific status code (5.2.2, 5.3.4, ...) wins over text; a generic one (5.0.0, 5.7.1,
//! 5.1.1 used as a catch-all by many servers) lets the text decide, as Sisimai does.
//! Pure: no I/O, no time, no randomness. Must not: parse MIME or know any MTA's layout.

use crate::bounce::reason::Reason;
use regex::RegexSet;
use std::sync::LazyLock;

/// Ordered text rules: `(pattern, reason)`. Patterns are matched against the lower-cased
/// diagnostic. Add a line to teach the classifier a new wording; keep specific before general.
#[rustfmt::skip]
const RULES: &[(&str, Reason)] = &[
    // --- not failures at all / our own side ---
    (r"suppression list|suppressed address|on the account-level suppression", Reason::Suppressed),
    // --- authentication of the sender (SPF, DKIM, DMARC) ---
    (r"\bspf\b.*(fail|not pass|reject|permerror|check failed)|sender policy framework|unauthenticated email|dmarc (polic|check fail|fail|reject)|dkim.*(fail|signature)|5\.7\.(2[0-6]|29)\b|not authorized to send on behalf|is not permitted to send|failed (the )?(spf|dkim|dmarc)|does not pass (spf|dmarc)|fails to pass authentication checks|does not have authentication information", Reason::AuthFailure),
    // --- reverse DNS of the sending host ---
    (r"reverse (dns|lookup|hostname)|\bptr\b|no rdns|\brdns\b|cannot find your hostname|cannot resolve your (address|hostname)|ip name (lookup failed|possibly forged)|sender ip must resolve|not have a reverse|helo hostname|hostname does not resolve|your hostname does not|unresolvable (address|host)|fcrdns|mismatches client ip|(doesn't|does not) match (your|the) (ip|address)|client host .*(lookup failed|unknown)|no (dns )?name for your ip|unverif[iy]able sending ips?", Reason::RequirePtr),
    // --- security (needs auth, TLS) ---
    (r"starttls|tls (is )?required|(does not|doesn't) support (tls|ssl)|tls (is )?(not available|unavailable)|must issue a starttls|encryption required|tls negotiation|ssl handshake", Reason::FailedStartTls),
    (r"authentication (is )?required|must authenticate|account has been compromised|certificate (has )?(expired|invalid|verify)|authenticat\w* failed|insecure|smtp auth", Reason::SecurityError),
    // --- the sending host, named outright ---
    (r"client host (\S+ )?(rejected|blocked)|ip source bloquee|service refus|refused to talk to me|use the smtp server of your isp|not authorized to send email directly|dynamic (ip|address|pool)|dial-?up|residential|messages from \S+ weren.t sent", Reason::Blocked),
    (r"content presents a potential|host network not allowed", Reason::PolicyViolation),
    // --- virus / spam / content ---
    (r"virus|malware|infected|trojan|worm found", Reason::VirusDetected),
    (r"\bspam\b|junk mail|bulk mail|message (was )?(identified|classified|considered|scored) as|unsolicited|blacklisted url|uri blocklist|message content rejected|rejected by (the )?content filter|spamassassin|score too high|appears to be spam|looks like spam|suspicious content|scanned as spam", Reason::SpamDetected),
    (r"(violat\w*|not compliant with|(does not|doesn't) (comply|conform) (with|to)|breaks?|invalid per|according to) rfc ?(2822|5322|822)|rfc ?(2822|5322|822) (violation|compliance|non-?compliant)|duplicate (header|message-id)|multiple addresses in from|header .*(malformed|invalid|missing)|missing (required )?header|bare (lf|linefeed|cr)|not (rfc )?compliant|invalid (message|mime)", Reason::NotCompliantRfc),
    (r"headers? too (large|long)|content error", Reason::ContentError),
    // --- sender-side refusals ---
    (r"relay(ing)? (access )?(denied|not (permitted|allowed))|not (permitted|allowed) to relay|we do not relay|unable to relay|relay not permitted|no relaying|relaying (mail )?(to .* )?(is )?(denied|prohibited|not allowed)|cannot relay|isn't allowed to relay|not configured to relay|open relay|email address is not verified", Reason::NoRelaying),
    (r"too many (connections|concurrent|simultaneous|sessions|recipients|messages)|connection (limit|rate)|maximum (number of )?(connections|recipients)|exceeded the (max|maximum) number of connections|too many hosts|frequency limited", Reason::TooManyConn),
    (r"(poor|bad|low) reputation|reputation (is )?(too low|poor)|sender reputation|ip reputation|4\.7\.650|unexpected volume or user complaints", Reason::BadReputation),
    (r"rate limit|ratelimit|sending (rate|too fast)|too fast|throttl|slow down|too much mail|receiving mail at a rate|message rate", Reason::Speeding),
    (r"mailbox (is )?(full|over quota)|over ?quota|quota (exceeded|exceed|full|violation)|exceed(ed|s)? (the )?(storage|mailbox|disk)? ?(quota|allocation)|mailbox size limit|insufficient (disk )?space (for|in) (the )?(user|mailbox)|user (mailbox )?(is )?(full|over)|account is full|full mailbox|mail ?box (has )?exceeded|not enough (storage|space)|(mail)?box full|storage (space )?(full|exceeded)|exceeds? (his|her|their|the user's) (quota|storage)|mail quota|disk quota|is full\b|maildir over quota|size of mailbox|out of (disk )?space for (user|mailbox)|has run out of space", Reason::MailboxFull),
    (r"exceeds administrative limit|administrative (size )?limit|message length exceeds", Reason::ExceedLimit),
    (r"message (is )?too (big|large)|message size exceeds|size exceeds|exceeds (the )?(maximum|fixed maximum) (message )?size|message (length|size) (exceeds|is over|too)|size limit|larger than (the )?(allowed|maximum)|maximum (allowed )?(message )?size|mail size|too large|message exceeded|exceeded (the )?maximum size|line limit exceeded|message file too big", Reason::MesgTooBig),
    (r"mailbox (is )?(disabled|inactive|frozen|suspended|locked|deactivated|not active)|account (is |has been )?(disabled|inactive|suspended|deactivated|locked|frozen|expired|closed)|(disabled|inactive|suspended|deactivated|closed) (account|mailbox|user)|user (account )?(is )?(disabled|suspended|inactive)|recipient (is )?(inactive|suspended)|temporar(y|ily) locked|has been (disabled|suspended)|is not active|no longer active|(account|mailbox)( that you tried to reach)? is (disabled|inactive)|no longer in use|mailbox unavailable or (disabled|inactive)", Reason::Suspend),
    (r"sender (address|domain) (is )?(rejected|denied|refused|blocked|blacklisted|invalid|not (allowed|accepted))|(mail from|envelope sender|return path|from address) .*(rejected|refused|denied|not (allowed|accepted|verified))|sender (verify|verification) (failed|is required)|domain of sender address|sender domain (must|does not|doesn't)|unknown sender|invalid sender|sender (is )?not (allowed|authorized|permitted)|you are not allowed to post|not (allowed|authorized|permitted) to (post|send)|only (members|subscribers) can post|refused to accept mail from|sender unknown|no such sender|bad sender|sender address must|unroutable sender|sender rejected|not accepting mail from|your (email|envelope sender) address|sender blocked|blocked sender|purported responsible address|address that has been blacklisted|sender was rejected|not a registered gateway user|sending to/from", Reason::Rejected),
    (r"recipient preferences|refused by (the )?recipient|blocked by (the )?recipient|recipient (has )?(blocked|refused) (you|your|this)", Reason::Filtered),
    (r"has moved|(address|mailbox|user) (has )?(changed|moved)|new address|no longer (at|with)|moved to|recipient moved", Reason::HasMoved),
    (r"malformed or unexpected name server|host name lookup failure|mail(ing)? loop|loop(s)? (back|detected)|too many hops|hop count|routing loop|message (is )?looping|loops back to myself", Reason::NetworkError),
    (r"does not accept (e-?)?mail|doesn't accept (e-?)?mail|not accept(ing)? (any )?mail|null mx|accepts no mail|no mail (is )?accepted|domain does not receive mail|does not receive mail|no mx record|couldn't find a mail exchanger|could not find a mail exchanger", Reason::NotAccept),
    // --- recipient address ---
    (r"user(name)? (is )?unknown|unknown (user|recipient|mailbox|local[- ]?part|address|account|alias)|no such (user|recipient|mailbox|address|account|person|local user)|(user|recipient|mailbox|address|account|addressee) (does not|doesn't|does no longer|no longer) exists?|(user|recipient|mailbox|address|account|addressee) (was |is )?not (found|known|exist|valid|listed|a valid)|invalid (recipient|mailbox|user|address|e-?mail address|final delivery userid)|name is not recognized|(mailbox|address|user|recipient) (is )?(unavailable|invalid)|not (a )?(valid|known) (user|recipient|mailbox|address)|no mailbox|bad (recipient|destination) address|user not local|unrouteable address|unknown or illegal alias|account (that you tried to reach )?(does not|doesn't) exist|mailbox not found|mailbox unavailable|addressee unknown|no account|undeliverable address|no valid recipients|recipient not found|destination (address|mailbox) (is )?(unknown|invalid|unavailable)|email address (could not be found|does not exist|couldn't be found|wasn.t found)|(user|mailbox) (has been )?(deleted|removed|terminated)|there is no (one|user)|(mail|e-?mail) address (is )?(unknown|invalid)|not listed in|invalid address|user doesn't have|unknown email|address (does not|doesn't) exist|not our user|unknown in (virtual|relay|local)|no user|unknown address|recipient unknown|address not present|unknown local-?part|could not deliver mail to this user|bad address|not have an account|\S+@\S+>? (does not|doesn't) exist|doesn't have an? .* account", Reason::UserUnknown),
    (r"host (or domain )?(name )?(not found|unknown)|domain (name )?(not found|does not exist|doesn't exist|unknown)|unknown (host|domain)|no (such )?(mx|mail) (host|server|exchanger)|name or service not known|nxdomain|no such domain|domain (could )?not (be )?(resolved|found)|unrouteable (mail )?domain|unroutable (mail )?domain|invalid domain|domain is not reachable|all relevant mx records point to non-existent hosts|non-existent (host|domain)|hostname nonexistent|can't find (host|domain)|unknown mail domain|host \S+ not found|(?:^|[\s:])[a-z0-9-]+\.[a-z0-9.-]+ does not exist|account or domain may not exist", Reason::HostUnknown),
    // --- the sending host, by list or policy ---
    (r"\b(rbl|dnsbl|blocklist|blacklist|block list|black list)\b|blacklisted|listed (at|in|on|by)|spamhaus|spamcop|sorbs|barracuda|ip address .*(blocked|listed|rejected|denied|not allowed)|connection (refused|rejected|denied) (from|to)|blocked (by|using|for|due)|not allowed to (connect|send)|mail server .* (blocked|blacklisted)|your (ip|network|server) |refused by (policy|administrator)|temporarily (rejected|refused)|(host|ip) .*(not permitted|is not allowed)|banned|denied by (policy|configuration)|invalid ip for sending|client .*(not authorized|rejected|blocked|denied)", Reason::Blocked),
    (r"policy (violation|reason|rejection|restriction)|violat(es|ed|ion of) (our|the|local|site)? ?(policy|policies|terms)|prohibited by (our|site)? ?policy|local policy|rejected (for|by|due to) (policy|local policy)|message (rejected )?(by|due to|for) policy|security policy|administrative prohibition|not permitted by policy|header error|dmarc", Reason::PolicyViolation),
    (r"filter(ed|ing)? |content filter|rejected by (the )?(recipient'?s? )?(rules|filter)|(message|mail) (was )?(rejected|refused|blocked|denied) (by|due to|because)|not (accept|receiv)\w* mail from you|(message|mail) (content )?(rejected|refused|denied)|does not (accept|want|receive) (email|mail|messages) from|body check|attachment (not allowed|rejected|blocked)|(forbidden|prohibited|banned) (attachment|file|extension|content)", Reason::Filtered),
    // --- remote system and network ---
    (r"(retry|queue) (timeout|time limit) exceeded|(not|n't) (be |been )?delivered (for|within|after) .*(day|hour)|(gave|giving) up|retry (period|time) (has )?(expired|exceeded)|delivery (time|period) (expired|exceeded)|message (has been )?(expired|timed out)|expired|delivery (attempts? )?(will continue|has been delayed|delayed|has failed for)|delayed|not yet been delivered|has not been delivered|queue time|too long in (the )?queue|in the queue too long|will be retried|still (trying|retrying)|deferred|warning message only|failing for a long time|aborted after|timed? ?out|did not accept our requests to connect", Reason::Expired),
    (r"insufficient system storage|(disk|file ?system|spool|storage) (is )?full|out of (disk|storage|memory)|no space left|system (is )?full|insufficient (disk )?space|queue (is )?full", Reason::SystemFull),
    (r"(command|program|pipe|procmail|maildrop|\blda\b|mailer)\b.*(died|failed|exited|crashed)|exit (code|status)|unknown mailer error|mailer error|pipe to \||error in (the )?(pipe|program)|delivery to (a )?(program|pipe|file)|local delivery failed|permission denied", Reason::MailerError),
    (r"syntax error|command (not )?(recognized|unrecognized|not implemented)|parameter not implemented|bad sequence of commands|improper sequence|unrecognized command|invalid (command|argument|parameter)|parameter (not|un)recognized|5\.5\.[0-6]\b", Reason::SyntaxError),
    (r"network error|network (is )?unreachable|connection (refused|reset|timed out|closed|lost|failed)|no route to host|could not connect|couldn't connect|unable to connect|lost connection|can't connect|connect to .* failed|(dns|mx) (error|failure|problem)|temporary (dns|lookup) failure|host unreachable|broken pipe|routing error", Reason::NetworkError),
    (r"system (error|failure|problem)|internal (server )?error|server (error|failure)|local error|temporary (local )?(problem|error)|temporary local failure|service (not available|unavailable)|(configuration|config) (error|problem)|resources temporarily unavailable|unable to (process|complete)|processing error|transaction failed|misconfigur|cannot process|server busy|please try (again )?later|requested action (not taken|aborted)|error in processing|try again", Reason::SystemError),
    (r"recipient address rejected: access denied", Reason::UserUnknown),
    // --- provider templates that name no cause (read from the whole report) ---
    (r"google groups|googlegroups", Reason::Rejected),
];

/// Wordings that a reporting MTA writes in its own template (not a quoted remote reply) to
/// say the address does not exist (Exchange 2000/2003 "The recipient name is not
/// recognized", IMail "Unknown user:" and "Invalid final delivery userid"): they stay
/// `userunknown` even when the report names no SMTP command.
#[rustfmt::skip]
const OWN_WORDS_USERUNKNOWN: &[&str] = &[
    r"recipient name is not recognized",
    r"^\s*unknown user:",
    r"invalid final delivery userid",
];

static OWN_USERUNKNOWN: LazyLock<Option<RegexSet>> =
    LazyLock::new(|| RegexSet::new(OWN_WORDS_USERUNKNOWN.iter().map(|p| compile(p))).ok());

/// Rules are written with `\b`; an ASCII word boundary keeps the set on the fast lazy DFA
/// (a Unicode `\b` makes it fall back to the slow NFA on non-ASCII text).
fn compile(p: &str) -> String {
    format!("(?i){}", p.replace(r"\b", r"(?-u:\b)"))
}

static RULE_SET: LazyLock<Option<RegexSet>> = LazyLock::new(|| {
    regex::RegexSetBuilder::new(RULES.iter().map(|(p, _)| compile(p))).dfa_size_limit(16 << 20).build().ok()
});

/// Bytes of text the rules read.
pub const MAX_RULE_TEXT: usize = 16 * 1024;

/// The reason the text rules give for `text`, if any rule matches.
/// Only the first [`MAX_RULE_TEXT`] bytes are read: a report explains itself at the top,
/// and a cap keeps the rule set fast on megabytes of junk.
pub fn reason_from_text(text: &str) -> Option<Reason> {
    let set = RULE_SET.as_ref()?;
    let mut end = text.len().min(MAX_RULE_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let lower = text.get(..end)?.to_lowercase();
    let first = set.matches(&lower).into_iter().next()?;
    RULES.get(first).map(|(_, r)| *r)
}

/// Reasons that a status code names only loosely; the text may say better.
fn status_is_weak(r: Reason) -> bool {
    matches!(
        r,
        Reason::UserUnknown
            | Reason::HostUnknown
            | Reason::SystemError
            | Reason::SecurityError
            | Reason::NetworkError
            | Reason::SyntaxError
            | Reason::Rejected
            | Reason::ContentError
            | Reason::PolicyViolation
            | Reason::NotAccept
            | Reason::Expired
            | Reason::Suspend
    )
}

/// Where in the SMTP dialogue the remote server refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    #[default]
    Unknown,
    /// At or after `MAIL FROM`: the sender was refused.
    MailFrom,
    /// At `RCPT TO`.
    RcptTo,
    /// After `DATA`: the content was refused.
    Data,
    /// At the greeting or `HELO`/`EHLO`: the connecting host itself was refused.
    Connect,
}

static PHASE: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(r"(?i)(?:in reply to|after|>>>|did not like our|most progress was)\s*(end of data|data|mail from|rcpt to|rcpt|mail|initial connection|helo|ehlo|greeting)(?-u:\b)|^\s*<<<\s*[45]\d\d").ok()
});

/// Words that only a reply to `RCPT TO` carries (Postfix's "Recipient address rejected",
/// Sun/Oracle Messaging Server's "server has rejected address", a `[RCPT_TO]` tag).
static RCPT_CUE: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(r"(?i)recipient address rejected|server has rejected (the )?address|\[rcpt_to\]").ok()
});

/// The SMTP phase at which `text` says the remote server refused: the command named by
/// Postfix's `in reply to X command` or Exim's `after X`, or, in a transcript, the last
/// `>>> X` before the first `<<< 4xx/5xx` reply.
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
            } else if ["initial", "helo", "ehlo", "greeting"].iter().any(|w| cmd.starts_with(w)) {
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
    if RCPT_CUE.as_ref().is_some_and(|re| re.is_match(text)) {
        return Phase::RcptTo;
    }
    Phase::Unknown
}

/// The phase for `address` in a report (`text` lower-cased): from the transcript lines that
/// start at the `>>> RCPT TO:<address>` line when there is one, else (when `whole_report`)
/// from the whole text.
pub fn phase_near(lower: &str, address: &str, whole_report: bool) -> Phase {
    let start = lower
        .match_indices(address)
        .map(|(i, _)| i)
        .find(|&i| {
            let line_start = lower.get(..i).and_then(|h| h.rfind('\n')).map_or(0, |n| n + 1);
            lower.get(line_start..i).is_some_and(|l| l.trim_start().starts_with(">>>"))
        })
        .and_then(|i| lower.get(..i).and_then(|h| h.rfind('\n')).map(|n| n + 1));
    match start.and_then(|s| lower.get(s..)) {
        Some(t) => phase_in(t),
        None if whole_report => phase_in(lower),
        None => Phase::Unknown,
    }
}

/// What is known about one failed recipient.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    pub status: Option<&'a str>,
    pub diagnostic: Option<&'a str>,
    /// What the text rules say about the whole report (computed once per report), used
    /// when the recipient's own diagnostic says nothing.
    pub context: Option<Reason>,
    /// A delay warning (Action: delayed).
    pub delayed: bool,
    pub phase: Phase,
}

/// Classify one failed recipient.
pub fn classify(e: Evidence<'_>) -> Reason {
    let by_status = e.status.and_then(Reason::from_enhanced_status);
    let by_diag = e.diagnostic.and_then(reason_from_text);
    let r = match (by_status, by_diag) {
        (Some(Reason::Delivered), t) => t,
        (Some(s), Some(t)) if status_is_weak(s) || (s == Reason::Filtered && t != Reason::UserUnknown) => Some(t),
        (Some(s), _) => Some(s),
        (None, t) => t,
    };
    let r = match r {
        // A delay warning whose words name no cause: the message is still waiting.
        _ if e.delayed && by_diag.is_none() => Some(Reason::Expired),
        Some(r) => Some(r),
        None => e.context,
    };
    let r = match (r, e.phase) {
        // "User unknown" after DATA: the address exists, a filter said no (unless a
        // specific x.1.1 status says otherwise).
        // "User unknown" after DATA, or with no SMTP command named at all: Sisimai reads it as
        // a filter's refusal of an existing address (`filtered`), unless an x.1.x status or
        // the reporting MTA's own template wording says the address does not exist.
        (Some(Reason::UserUnknown), Phase::Data | Phase::Unknown)
            if by_diag == Some(Reason::UserUnknown)
                && e.status.is_none_or(|s| s.get(1..4) != Some(".1."))
                && !e.diagnostic.is_some_and(|d| OWN_USERUNKNOWN.as_ref().is_some_and(|set| set.is_match(d))) =>
        {
            Some(Reason::Filtered)
        }
        (None, Phase::Connect) => Some(Reason::Blocked),
        (Some(Reason::UserUnknown | Reason::HostUnknown) | None, Phase::MailFrom) => Some(Reason::Rejected),
        (r, _) => r,
    };
    // Nothing in the words: an x.7.x status is a security matter (Sisimai's fallback).
    let r = r.or_else(|| e.status.filter(|s| s.get(1..3) == Some(".7")).map(|_| Reason::SecurityError));
    // No rule applies: `onhold` when the report shows an error whose cause is unclear (a
    // code or words), `undefined` when there is nothing to go on at all.
    r.unwrap_or_else(|| {
        if e.status.is_some() || e.diagnostic.is_some_and(|d| !d.trim().is_empty()) {
            Reason::OnHold
        } else {
            Reason::Undefined
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles() {
        for (p, _) in RULES {
            assert!(regex::Regex::new(&compile(p)).is_ok(), "bad rule {p}");
        }
        assert!(RULE_SET.is_some());
    }

    #[test]
    fn typical_wordings() {
        assert_eq!(reason_from_text("550 5.1.1 <a@b.c>... User Unknown"), Some(Reason::UserUnknown));
        assert_eq!(reason_from_text("552 Mailbox is full"), Some(Reason::MailboxFull));
        assert_eq!(reason_from_text("554 5.7.1 Relay access denied"), Some(Reason::NoRelaying));
        assert_eq!(
            classify(Evidence { status: Some("5.2.2"), diagnostic: Some("something"), ..Evidence::default() }),
            Reason::MailboxFull
        );
        let text = |t| reason_from_text(t);
        assert_eq!(text("550 SC-004 Unfortunately, messages from 192.0.2.1 weren't sent."), Some(Reason::Blocked));
        assert_eq!(text("450 service permits 2 unverifyable sending IPs"), Some(Reason::RequirePtr));
        assert_eq!(text("554 Message rejected: Email address is not verified."), Some(Reason::NoRelaying));
        assert_eq!(text("554 Host network not allowed"), Some(Reason::PolicyViolation));
        assert_eq!(text("550 5.0.0 <a@b.c>: Recipient address rejected: On hold"), None);
    }

    #[test]
    fn user_unknown_depends_on_the_smtp_phase() {
        let ev = |status, diagnostic, phase| classify(Evidence { status, diagnostic, phase, ..Evidence::default() });
        // No command named and no x.1.x status: a filter refused an existing address.
        assert_eq!(ev(Some("5.0.0"), Some("550 user unknown"), Phase::Unknown), Reason::Filtered);
        assert_eq!(ev(None, Some("550 No such user"), Phase::Data), Reason::Filtered);
        // At RCPT TO, or with an x.1.1 status, the address does not exist.
        assert_eq!(ev(Some("5.0.0"), Some("550 user unknown"), Phase::RcptTo), Reason::UserUnknown);
        assert_eq!(ev(Some("5.1.1"), Some("550 user unknown"), Phase::Unknown), Reason::UserUnknown);
        // The reporting MTA's own template wording.
        assert_eq!(ev(None, Some("The recipient name is not recognized"), Phase::Unknown), Reason::UserUnknown);
        assert_eq!(phase_in("mx.example.jp did not like our RCPT TO: 550 5.0.0 unknown"), Phase::RcptTo);
        assert_eq!(phase_in("most progress was RCPT TO response; remote host said: 550"), Phase::RcptTo);
        assert_eq!(phase_in("550 5.1.1 <a@b.c>: Recipient address rejected: User unknown"), Phase::RcptTo);
        // Words that name no cause with an x.7.x status: a security matter.
        assert_eq!(ev(Some("5.7.1"), Some("551 5.7.1 Delivery not authorized"), Phase::RcptTo), Reason::SecurityError);
    }
}
