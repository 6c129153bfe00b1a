//! What servers say, per reason: the phrase tables the classifier reads a diagnostic with.
//!
//! One table per vocabulary, in precedence order: the first group (top to bottom) with a
//! phrase that occurs in the lower-cased, whitespace-squeezed text names the reason. A group
//! is *strong* when its words name a cause outright ("user unknown", "mailbox full"), *weak*
//! when they are a reply code's stock text or a reporting MTA's template ("mailbox
//! unavailable", qmail's "does not like recipient"), which a specific status code outranks
//! (the precedence is in `classify.rs`). Some reasons have an early group of narrow phrases
//! that must beat a broader group above the reason's main table ("host not found, try again"
//! is a DNS failure, not an unknown host; "sender address rejected" is the sender, not the
//! recipient; a block-list hit mentions spam but refuses the host).
//!
//! Every phrase carries the families of servers that write it and a realistic example line;
//! the unit test below checks that each example reaches its own group, so a new phrase that
//! steals another's example fails the build. A phrase is written for wording a family of
//! servers uses, never for one sample.
//!
//! Standards: RFC 5321 reply texts, RFC 3463 status names, and the published wordings of the
//! MTAs and providers named in each line.
//! Must not: decide anything but "which group does this text name first"; pure and total.

use crate::bounce::reason::Reason;
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use std::sync::LazyLock;

/// One wording: a case-insensitive pattern over squeezed lower-case text, who writes it, and
/// a realistic line it must classify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phrase {
    pub pattern: &'static str,
    pub who: &'static str,
    pub example: &'static str,
}

/// How much a group's words weigh against a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// Names the cause outright: outranks any status code.
    Strong,
    /// The reporting MTA's own template words about the recipient (not a remote reply it
    /// quotes): as strong, and true whatever SMTP command was (or was not) named.
    Own,
    /// A reply code's stock text or a report template: a specific status code outranks it.
    Weak,
}

/// A run of phrases that all mean one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub name: &'static str,
    pub reason: Reason,
    pub strength: Strength,
    pub phrases: &'static [Phrase],
}

const fn p(pattern: &'static str, who: &'static str, example: &'static str) -> Phrase {
    Phrase { pattern, who, example }
}

const fn strong(name: &'static str, reason: Reason, phrases: &'static [Phrase]) -> Group {
    Group { name, reason, strength: Strength::Strong, phrases }
}

const fn own(name: &'static str, reason: Reason, phrases: &'static [Phrase]) -> Group {
    Group { name, reason, strength: Strength::Own, phrases }
}

const fn weak(name: &'static str, reason: Reason, phrases: &'static [Phrase]) -> Group {
    Group { name, reason, strength: Strength::Weak, phrases }
}

/// The groups in precedence order.
pub const GROUPS: &[Group] = &[
    strong("suppressed", Reason::Suppressed, SUPPRESSED),
    strong("authfailure", Reason::AuthFailure, AUTH_FAILURE),
    strong("norelaying", Reason::NoRelaying, NO_RELAYING),
    strong("requireptr", Reason::RequirePtr, REQUIRE_PTR),
    strong("badreputation", Reason::BadReputation, BAD_REPUTATION),
    strong("toomanyconn", Reason::TooManyConn, TOO_MANY_CONN),
    strong("speeding", Reason::Speeding, SPEEDING),
    strong("virusdetected", Reason::VirusDetected, VIRUS),
    strong("notcompliantrfc", Reason::NotCompliantRfc, NOT_COMPLIANT_RFC),
    strong("spam in the content (uri lists)", Reason::SpamDetected, SPAM_URI),
    strong("rejected sender (its domain on a list)", Reason::Rejected, SENDER_LISTED),
    strong("blocked host (lists, dynamic ranges)", Reason::Blocked, BLOCKED_HOST),
    strong("spamdetected", Reason::SpamDetected, SPAM),
    strong("rejected sender", Reason::Rejected, REJECTED_SENDER),
    strong("mailboxfull", Reason::MailboxFull, MAILBOX_FULL),
    strong("exceedlimit", Reason::ExceedLimit, EXCEED_LIMIT),
    strong("mesgtoobig", Reason::MesgTooBig, MESG_TOO_BIG),
    strong("suspend", Reason::Suspend, SUSPEND),
    strong("hasmoved", Reason::HasMoved, HAS_MOVED),
    own("hostunknown (the reporting mta's own words)", Reason::HostUnknown, OWN_HOST_UNKNOWN),
    strong("temporary dns failure", Reason::NetworkError, DNS_TEMPORARY),
    strong("notaccept", Reason::NotAccept, NOT_ACCEPT),
    strong("hostunknown", Reason::HostUnknown, HOST_UNKNOWN),
    own("userunknown (the reporting mta's own words)", Reason::UserUnknown, OWN_USER_UNKNOWN),
    strong("userunknown", Reason::UserUnknown, USER_UNKNOWN),
    strong("securityerror", Reason::SecurityError, SECURITY_ERROR),
    strong("failedstarttls", Reason::FailedStartTls, FAILED_STARTTLS),
    strong("contenterror", Reason::ContentError, CONTENT_ERROR),
    strong("policyviolation", Reason::PolicyViolation, POLICY_VIOLATION),
    strong("filtered", Reason::Filtered, FILTERED),
    strong("blocked", Reason::Blocked, BLOCKED),
    strong("expired (the mta says it gave up)", Reason::Expired, EXPIRED_GAVE_UP),
    strong("networkerror", Reason::NetworkError, NETWORK_ERROR),
    strong("mailererror", Reason::MailerError, MAILER_ERROR),
    strong("systemfull", Reason::SystemFull, SYSTEM_FULL),
    strong("syntaxerror", Reason::SyntaxError, SYNTAX_ERROR),
    strong("expired", Reason::Expired, EXPIRED),
    strong("systemerror", Reason::SystemError, SYSTEM_ERROR),
    strong("expired (bare words)", Reason::Expired, EXPIRED_WORDS),
    weak("filtered (stock text)", Reason::Filtered, WEAK_FILTERED),
    weak("userunknown (stock text)", Reason::UserUnknown, WEAK_USER_UNKNOWN),
    weak("systemfull (stock text)", Reason::SystemFull, WEAK_SYSTEM_FULL),
    weak("systemerror (stock text)", Reason::SystemError, WEAK_SYSTEM_ERROR),
    weak("rejected (stock text)", Reason::Rejected, WEAK_REJECTED),
];

#[rustfmt::skip]
const SUPPRESSED: &[Phrase] = &[
    p(r"suppression list|(address|recipient) (was |is )?suppressed|has suppressed sending", "amazon ses, sendgrid, sparkpost",
      "554 Address is on the account-level suppression list"),
    p(r"previously bounced address|not delivering to a user who marked|marked as inactive", "mailgun, postmark",
      "605 Not delivering to previously bounced address"),
    p(r">: suppressed since \d{4}-\d\d-\d\d", "mailerd (its own refusal of a suppressed recipient)",
      "550 5.1.1 <kijitora@example.jp>: suppressed since 2026-01-01 after a hard bounce (userunknown); remove with `mailerd suppression remove`"),
];

#[rustfmt::skip]
const AUTH_FAILURE: &[Phrase] = &[
    p(r"\bspf\b[^.;]{0,40}(fail|not pass|reject|permerror|softfail|check|validation|violation|error|authentication)|sender policy framework|openspf|open-spf\.org", "postfix policyd-spf, exim, messagelabs, exchange",
      "550 5.7.1 <kijitora@example.jp>: Recipient address rejected: Message rejected due to: SPF fail - not authorized. Please see http://www.open-spf.org/Why?s=mfrom;id=neko@example.org"),
    p(r"\bdkim\b[^.;]{0,40}(fail|invalid|did not verify|not verify|missing|required|bad signature)", "gmail, yahoo, exim",
      "550 5.7.1 Message rejected: DKIM signature did not verify"),
    p(r"\bdmarc\b[^.;]{0,60}(fail|reject|policy|verification|alignment)|(fail|failed|failing|does not pass) (the )?dmarc", "gmail, yahoo, outlook.com, mimecast",
      "550 5.7.509 Access denied, sending domain example.org does not pass DMARC verification and has a DMARC policy of reject."),
    p(r"sender is unauthenticated|unauthenticated (e-?mail|mail|messages?) from|requires all senders to authenticate|does not have authentication information|fails to pass authentication checks|not pass (spf|dkim)|(spf|dkim) (and|or) (spf|dkim)|required authentication level|authentication requirements", "gmail, yahoo",
      "550-5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM."),
    p(r"is not (allowed|permitted|authorized) to send (mail |e-?mail )?(from|on behalf of)|does not designate \S+ as permitted sender", "spf checkers (postfix, exim, sendmail milters)",
      "550 5.7.23 Rejected: 192.0.2.1 is not allowed to send mail from example.org"),
];

#[rustfmt::skip]
const NO_RELAYING: &[Phrase] = &[
    p(r"relay(ing)? (access )?(denied|not (permitted|allowed|authorized))|not (permitted|allowed|authorized) to relay|relaying (mail )?(to \S+ )?(is )?(denied|disallowed|prohibited|not allowed)|(we|i) do not relay|unable to relay|relay (not permitted|prohibited)|relay not allowed|relay rejected", "postfix, sendmail, exim, exchange, qmail, courier, kerio, mdaemon",
      "554 5.7.1 <kijitora@example.jp>: Relay access denied"),
    p(r"as a relay|allowed rcpthosts|isn.t in my list of allowed|insecure (mail )?relay|5\.7\.64 tenantattribution", "messagelabs, office 365",
      "553-you are trying to use me [server-3.tower-27.messagelabs.com] as a relay, but I have not been configured to let you [192.0.2.1, mx.example.org] do this."),
    p(r"email address is not verified", "amazon ses",
      "554 Message rejected: Email address is not verified. The following identities failed the check in region US-EAST-1: neko@example.org"),
    p(r"(authentication|auth) (is )?required (for|to) relay|requires authentication when (attempting to )?send(ing)? to a non-local|delivery is not allowed to this address", "smartermail, mailenable, hmailserver",
      "550 5.7.1 Authentication is required to relay mail to kijitora@example.jp"),
];

#[rustfmt::skip]
const REQUIRE_PTR: &[Phrase] = &[
    p(r"reverse (dns|lookup|hostname|name|resolution)|\bptr\b|\brdns\b", "gmail, postfix, exim, outlook.com, aol, proofpoint",
      "550-5.7.25 [192.0.2.1] The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not point to the sending IP."),
    p(r"cannot find your (reverse )?hostname|ip name (lookup failed|possibly forged)|dns:nr", "postfix, sendmail, exim, aol",
      "450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]"),
    p(r"unverif[iy]able sending ips?|service permits \d+ unverif|mismatches client ip", "gmx, web.de, outlook.com",
      "450 service permits 2 unverifyable sending IPs"),
];

#[rustfmt::skip]
const BAD_REPUTATION: &[Phrase] = &[
    p(r"(poor|bad|low|negative) (\S+ )?reputation|poor reputation|(sender|ip|domain|sending) reputation|4\.7\.650|unexpected volume or user complaints|\[tss04\]", "gmail, outlook.com, yahoo, aol, cisco ironport",
      "421-4.7.0 [192.0.2.1] This message is suspicious due to the very low reputation of the sending IP address."),
];

#[rustfmt::skip]
const SPEEDING: &[Phrase] = &[
    p(r"rate.?limit|sending (rate|too fast)|throttl|slow down|too much mail|receiving mail at a rate|(hourly|daily) (sending )?(quota|limit) (exceeded|reached)|sending limits? (exceeded|reached)|(daily|hourly) .{0,20}limit (exceeded|reached)|max (e-?mails|messages|mails) per (hour|day|minute)|\brp-00\d\b|limits for how many messages|submissionquotaexceeded|submission ?quota|sending quota", "gmail, yahoo, outlook.com, exim ratelimit, postfix anvil, mail.ru, qq",
      "421-4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited."),
    p(r"\[tss0[1-8]\]|\[ts0[1-3]\]|deferred due to user complaints", "yahoo, aol",
      "421 4.7.0 [TS01] Messages from 192.0.2.1 temporarily deferred due to user complaints - 4.16.55.1; see https://help.yahoo.com/kb/postmaster"),
];

#[rustfmt::skip]
const TOO_MANY_CONN: &[Phrase] = &[
    p(r"too many (connections|concurrent|simultaneous|parallel|sessions|smtp sessions|open connections)|(maximum|max) (number of )?(concurrent )?(connections|sessions)|concurrent (server )?connections (has )?exceeded", "postfix, exim, sendmail, exchange, mdaemon, smartermail",
      "421 4.7.0 mx.example.jp Error: too many connections from 192.0.2.1"),
    p(r"too many recipients|resolver\.adr\.reciplimit|too many (messages|mails) (in|per) (this|one|a single) (session|connection)|(max|maximum) (number of )?(messages?|mails?) per (connection|session)", "postfix, sendmail, exchange, office 365, exim",
      "452 4.5.3 Error: too many recipients"),
    p(r"aup#in-13[0-4]0\b", "spectrum, charter, roadrunner (AUP#In codes 1300-1340: connection and rate limits)",
      "421 4.7.0 <neko@example.org> sender rejected. Please see https://www.spectrum.net/support/internet/understanding-email-error-codes for more information. AUP#In-1330"),
    p(r"(connection|ip|domain|sender) frequency limited", "qq (tencent): per-connection, ip, domain and sender limits",
      "421 Ip frequency limited. http://service.mail.qq.com/cgi-bin/help?subtype=1&&id=20022&&no=1000722"),
    p(r"connection rate limit exceeded", "sendmail (ratecontrol)",
      "421 4.3.2 Connection rate limit exceeded."),
];

#[rustfmt::skip]
const VIRUS: &[Phrase] = &[
    p(r"virus (found|detected|infected)|(contains?|containing|infected with|found|detected) (an? )?(virus|worm|trojan|malware)|\bmalware\b|\btrojan\b|\binfected\b|eicar", "amavis, clamav-milter, exim av, sophos, trend micro, symantec, gmail",
      "554 5.7.0 Reject, id=12345-02 - INFECTED: Eicar-Signature"),
    p(r"\bvirus\b.{0,40}(found|detected|reject|refus|block|infect)", "exchange, mcafee, kerio",
      "550 5.7.1 Message rejected: a virus was found in an attachment (W32/Netsky.p@MM)"),
];

#[rustfmt::skip]
const SPAM_URI: &[Phrase] = &[
    p(r"\buribl\b|\bsurbl\b", "spamassassin, rspamd, exim acl, postfix milters, barracuda",
      "550 5.7.1 Message contains a URL listed in multi.uribl.com; see https://uribl.com/"),
];

#[rustfmt::skip]
const SENDER_LISTED: &[Phrase] = &[
    p(r"mail ?from domain (is )?(listed|blacklisted|blocklisted)|sender (address|domain) \S+ blocked using|sender (address|domain) (is )?(listed|blacklisted|blocklisted)", "office 365 (s3150, s8002), postfix reject_rhsbl_sender",
      "554 5.7.1 Service unavailable; Sender address [neko@example.org] blocked using dbl.spamhaus.org"),
];

#[rustfmt::skip]
const BLOCKED_HOST: &[Phrase] = &[
    p(r"blocked using|listed (at|in|on|by) (the )?(\S+\.)+(org|com|net|io|info|de|fr|jp)\b|\b(rbl|dnsbl|rbls|dnsbls)\b|(black|block|deny|ban)[- ]?list(ed)?\b.{0,40}\b(ip|host|address|server|client|connection|network)|(ip|ip address|host|server|client|network)\b.{0,50}\b(black|block)[- ]?list|\bspamhaus\b|\bspamcop\b|\bsorbs\b|\bbarracuda ?(reputation|central|rbl)|ipcheck\.proofpoint\.com|ipcheck\.proofpoint|\brtr:b[bl]\b|\bbl21\b|\bbl23\b", "postfix, exim, sendmail, barracuda, spamhaus users, yahoo, aol, proofpoint",
      "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.1"),
    p(r"dynamic(ally)?[- ](assigned )?(ip|address|pool|range|host)|dial-?up|residential|use (the smtp server|the relay|the mail server) of your (isp|provider)|not authorized to send email directly", "outlook.com (dy-001), aol (rtr:bb), gmx, spamhaus pbl users",
      "550 DY-001 (SNT004-MC1F43) Unfortunately, messages from 192.0.2.1 weren't sent. Please contact your Internet service provider. You can tell them that Hotmail does not relay dynamically-assigned IP ranges."),
    p(r"messages from \S+ weren.t sent|part of their network is on our block list|\(s3140\)|\(s3150\)|\bsc-00[1-4]\b|5\.7\.606|5\.7\.708|5\.7\.750|banned sending ip|traffic not accepted from this ip|originating from your ip address.{0,80}(blocked|rejected)|your ip address has been (blocked|blacklisted|banned|rejected)|your access to submit messages|\[tss09\]|permanently deferred|connection (rejected|refused) (by|due to) policy|(is|as|which is) an open (relay|proxy)|no access from mail server", "outlook.com, office 365, gmail",
      "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150)."),
    p(r"(e-?mail|mail|messages?|connections?) from \[?\d{1,3}(\.\d{1,3}){3}\]? (is |are )?(currently |temporarily |permanently )?blocked|\brly:b[1-3]\b|\bdyn:t1\b", "verizon, comcast, aol (rly:b1-b3, dyn:t1)",
      "421 DYN:T1 https://postmaster.aol.com/error-codes#421dynt1"),
];

#[rustfmt::skip]
const SPAM: &[Phrase] = &[
    p(r"\bspam\b|\bbulk (mail|e-?mail|advertising)|\bunsolicited\b|spamassassin|spam content|\bbayes", "gmail, yahoo, mail.ru, yandex, spamassassin, amavis, rspamd, barracuda, proofpoint, sophos, trend micro",
      "550-5.7.1 [192.0.2.1] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked."),
    p(r"(this )?message (was |has been |is )?(scored|identified|classified|considered|determined|detected|flagged|marked|judged|rated) (as )?(\S+ )?(spam|junk|bulk|suspicious|unsolicited)|scored? \d+(\.\d+)?( points)?( \(?over|( spam)? points| > |, required|, threshold|/)|threshold (of|is) \d", "spamassassin, amavis, rspamd, mimecast, mdaemon, smartermail, icewarp",
      "550 5.7.1 This message scored 23.4 spam points, threshold is 5.0"),
    p(r"message content (rejected|refused|denied|not accepted)|content (rejected|denied|refused)|mail content denied|content filter(ing)?\b|(message|mail) (was )?(rejected|refused|blocked) (as|for) (possible |probable )?(spam|bulk|junk)", "exchange, qq, exim acl, barracuda, sophos, kerio, icewarp, postfix header/body checks",
      "550 Mail content denied. http://service.exmail.qq.com/cgi-bin/help?subtype=1&&id=20022&&no=1000726"),
    p(r"\b(ofr|ouk)[0-9]{0,3}_506\b", "orange.fr, wanadoo.fr (OFR reply codes: 506 is mail judged unwanted)",
      "550 5.7.1 Mail rejete. Mail rejected. OFR004_506 [506]"),
];

#[rustfmt::skip]
const REJECTED_SENDER: &[Phrase] = &[
    p(r"sender address rejected|sender (address|domain|e-?mail)( address)? (\S+ )?(is )?(rejected|denied|refused|blocked|blacklisted|invalid|unknown|not (allowed|accepted|verified|permitted|found|exist))|(mail from|envelope sender|envelope from|return.?path|from address|reverse.?path) [^.;]{0,60}(rejected|refused|denied|not (allowed|accepted|verified|permitted)|invalid|unknown)", "postfix, exim, sendmail, exchange, courier",
      "553 5.1.8 <neko@example.org>: Sender address rejected: Domain not found"),
    p(r"sender (verify|verification|callout) (failed|is required|failure)|domain of sender address \S+ (does not exist|does not resolve)|sender domain (must|does not|doesn.t) (exist|resolve)|unroutable sender|(unknown|invalid|bad|rejected|blocked|banned) sender|sender (unknown|rejected|blocked|banned|denied)|sender was rejected|sender address must|sender was rejected|blocked sender", "exim, sendmail, postfix, qmail, mdaemon, smartermail",
      "550-Verification failed for <neko@example.org> 550-Unrouteable address 550 Sender verify failed"),
    p(r"you are not allowed to post|not (allowed|authorized|permitted) to post|you do not have permission to post|google groups", "mailman, google groups, sympa, listserv",
      "550 5.7.1 You are not allowed to post to this mailing list."),
    p(r"not member article from|reject spammers:", "fml (mailing-list server notices)",
      "NOT MEMBER article from <neko@example.org>, rejected"),
    p(r"invalid dns mx or a/aaaa resource record", "gmx, web.de (the sender's domain has no mx or address)",
      "550 Requested action not taken: mailbox unavailable / invalid DNS MX or A/AAAA resource record for the sender domain"),
];

#[rustfmt::skip]
const MAILBOX_FULL: &[Phrase] = &[
    p(r"mail ?box (is |was |has )?(full|over (its |the )?(quota|limit|size limit)|exceeded|overflow)|over ?quota|quota (exceeded|exceed|full|violation|reached|limit exceeded)|exceed(ed|s|ing)? (the |his |her |their |your |its )?(user'?s |recipient'?s )?(storage |mailbox |disk |space )?(quota|allocation)|mailbox size limit|(user|mailbox|account|inbox|recipient)( is| has)? (full|over quota|over limit)|mail ?box full|mail quota|disk quota|maildir over quota|would exceed (the )?(mailbox|quota|storage)|quotaexceededexception|bo(i|î)te (aux lettres |du destinataire )?(est )?pleine", "postfix, exim, dovecot, courier, gmail, yahoo, outlook.com, icloud, exchange, zimbra, kerio, mdaemon, qmail vdelivermail, gmx, orange",
      "552-5.2.2 The email account that you tried to reach is over quota. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaPerm"),
];

#[rustfmt::skip]
const EXCEED_LIMIT: &[Phrase] = &[
    p(r"administrative (size )?limit|message length exceeds|recipsizelimit|sendsizelimit|too large for this (recipient|sender)|limit set for (this |the )?(recipient|sender|mailbox)", "sendmail, exchange, office 365",
      "552 5.2.3 Message length exceeds administrative limit"),
];

#[rustfmt::skip]
const MESG_TOO_BIG: &[Phrase] = &[
    p(r"message (is |was )?too (big|large)|(message|mail|e-?mail|data|file) size (exceeds|limit|too)|size exceeds|exceeds? (the |our )?(\S+ )?(maximum|max|fixed maximum|allowed|permitted) (message |mail )?size|message (length|size) (exceeds|is over|too)|larger than (the )?(allowed|maximum|permitted|acceptable)|maximum (allowed |permitted )?(message |mail )?size|message exceeded (the |its )?(\S+ )?(message )?(size|limit|maximum)|exceeded (\S+ )?(the )?(maximum |max )?(message )?size|message file too big|too (big|large) for (the )?system|exceeds (the )?size limit|line limit exceeded", "postfix, exim, sendmail, gmail, outlook.com, exchange, yahoo, courier, domino",
      "552 5.3.4 Message size exceeds fixed maximum message size"),
];

#[rustfmt::skip]
const SUSPEND: &[Phrase] = &[
    p(r"(account|mailbox|user|recipient|address|inbox)( account)?( that you tried to reach)? (is |has been |was )?(temporarily |permanently )?(disabled|deactivated|suspended|inactive|frozen|locked|blocked|not active|closed|expired|discontinued|on hold)|(disabled|deactivated|suspended|inactive|frozen|locked|closed) (account|mailbox|user|recipient)|no longer (active|accepts mail|accepting mail|in service|in use)|account has been (disabled|suspended|terminated)|this mailbox is disabled|\(554\.30\)|boite du destinataire (archivee|fermee)", "gmail, yahoo, outlook.com, mail.ru, yandex, qmail vpopmail, exchange, japanese carriers, orange",
      "550-5.2.1 The email account that you tried to reach is disabled. Learn more at https://support.google.com/mail/?p=DisabledUser"),
    p(r"inactive (e-?mail )?(address|account|mailbox|user)", "icloud, gmail",
      "554 5.2.1 <kijitora@example.jp>: Inactive email account"),
];

#[rustfmt::skip]
const HAS_MOVED: &[Phrase] = &[
    p(r"user has moved|(address|mailbox|user|recipient) (has )?(moved|changed)( to|;|,|$)|has moved (to|permanently)|user not local; please try", "sendmail, postfix relocated_maps, exchange, courier",
      "551 5.1.6 <kijitora@example.jp>... User has moved; please try <kijitora@example.com>"),
];

#[rustfmt::skip]
const OWN_HOST_UNKNOWN: &[Phrase] = &[
    p(r"smtpsend\.dns\.nonexistentdomain", "exchange ndr code (the reporting server's own lookup said the domain does not exist)",
      "554 5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain"),
];

#[rustfmt::skip]
const DNS_TEMPORARY: &[Phrase] = &[
    p(r"host not found, try again|name service error.{0,80}try again|temporary (dns|name service|name resolution) (failure|error|problem)|host lookup did not complete|dns (lookup )?(timeout|timed out|servfail|temporary)|\bservfail\b|temporary failure in name resolution|malformed (or unexpected )?name server reply|dns (query|server) (failed|failure|error)", "postfix, exim, sendmail, smartermail",
      "Host or domain name not found. Name service error for name=mx.example.jp type=MX: Host not found, try again"),
];

#[rustfmt::skip]
const NOT_ACCEPT: &[Phrase] = &[
    p(r"(does not|doesn.t|do not|don.t) accept (any )?(e-?mail|mail|messages)|null ?mx|nullmx|no (mx|mail exchanger) (record|host)s? (found|for|exists?)|(couldn.t|could not|can.t|cannot|unable to) find an? (mail exchanger|mx)", "postfix, exim, sendmail, gmail, yahoo (rfc 7505 null mx)",
      "556 5.1.10 <kijitora@example.jp>: Recipient address example.jp has null MX"),
    p(r"no smtp service|indicated no smtp service", "rfc 5321 §3.1 554 greeting of hosts that take no mail (postfix, sendmail), exim (mx or srv record saying no service)",
      "host mx.example.jp[192.0.2.9] refused to talk to me: 554 5.3.2 No SMTP service here"),
];

#[rustfmt::skip]
const OWN_USER_UNKNOWN: &[Phrase] = &[
    p(r"recipient name is not recognized|the recipient name is not recogni[sz]ed", "exchange 2000/2003 ndr template",
      "The recipient name is not recognized The MTS-ID of the original message is: c=jp;a= ;p=example;l=EXAMPLE0000000000"),
    p(r"^unknown user: |invalid final delivery userid", "imail server template",
      "Unknown user: kijitora@example.jp"),
    p(r"address (couldn.t|could not) be found|\*\* address not found \*\*|e-?mail address you entered couldn.t be found|e-?mail address wasn.t found at the destination domain", "gmail and office 365 dsn templates",
      "** Address not found ** Your message wasn't delivered to kijitora@example.jp because the address couldn't be found."),
    p(r"\(user not found\)|undeliverable to the following:? \S+@\S+ \(user", "groupwise ndr template",
      "The message that you sent was undeliverable to the following: kei@example.jp (user not found)"),
    p(r"not listed in (the )?(public name (& )?address book|domino directory|names and address book)", "lotus notes / domino ndr template",
      "User kijitora (kijitora@example.jp) not listed in Domino Directory"),
];

#[rustfmt::skip]
const USER_UNKNOWN: &[Phrase] = &[
    p(r"user(name)? (is )?unknown|unknown (user|recipient|mailbox|local[- ]?part|address|account|alias|addressee|e-?mail|user ?id|username)|(recipient|addressee|mailbox|address) unknown|user not known", "postfix, sendmail, exim, courier, kerio, groupwise, japanese carriers, most mtas",
      "550 5.1.1 <kijitora@example.jp>: Recipient address rejected: User unknown in local recipient table"),
    p(r"no such (user|recipient|mailbox|address|account|person|local user|e-?mail|mail ?box|addressee|user ?name)|no mailbox (here|by that name|for|with)|there is no (one|user|such|mailbox)|not (a )?(valid|known|existing|local|registered) (user|recipient|mailbox|address|account|e-?mail)", "qmail, exim, yandex, smartermail, icewarp, mdaemon, opensmtpd",
      "Sorry, no mailbox here by that name. (#5.1.1)"),
    p(r"(user|recipient|mailbox|address|account|addressee|e-?mail address|e-?mail account)( name)? (does not|doesn.t|does no longer|no longer|did not) exists?|(user|recipient|mailbox|address|account|e-?mail address|addressee|user name)( \S+)? (was |is |could )?(not|couldn.t be|could not be|wasn.t) (found|known|listed|recogni[sz]ed)|(recipient|mailbox|user|address|account) not (found|exist)|(account|address|mailbox|user) (that )?you tried to reach (does not|doesn.t) exist|(address|account|mailbox|user)( that)? you (tried to )?(send|sent|write|wrote|reach)( to)? (no longer exists|does not exist|doesn.t exist)|invalid (recipient|mailbox|user|address|e-?mail address|e-?mail|final delivery userid|destination address|rcpt|to address)|bad (recipient|destination) (address|mailbox|system)?|\S+@\S+>? (does not|doesn.t) exist", "gmail, icloud, exchange, office 365, domino, zimbra, mimecast, barracuda, proofpoint",
      "550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces."),
    p(r"resolver\.adr\.(ex)?recip(ient)?notfound|recipient not found by smtp address lookup|couldn.t be found|wasn.t found at|recipient address rejected: access denied|doesn.t have an? (\S+ )?account|not our (user|customer)|account (does not|doesn.t) exist|dd this user|this user doesn.t|unknown or illegal alias|mailbox (not found|does not exist|doesn.t exist|not present)|undeliverable address|no valid recipients", "exchange, office 365, domino, yahoo, aol, qq, zoho, mdaemon",
      "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"),
    p(r"(user|mailbox|account|address) (has been |was )?(deleted|removed|terminated|cancel+ed)|user (is )?terminated|unknown in (virtual|relay|local)|user not local|not listed in\b|user doesn.t have|invalid address|empf(a|ae|ä)nger unbekannt", "courier, exim, sendmail, mail.ru, gsuite, cisco ironport, orange, gmx, libero",
      "550 5.1.1 <kijitora@example.jp>: user has been deleted"),
    p(r"adresse (e-?mail |electronique |de messagerie )?(inconnue|invalide|inexistante)|(destinataire|utilisateur) (inconnu|invalide|inexistant)|ofr_416\b", "orange, sfr, laposte, free (french wordings)",
      "550 5.1.1 Adresse d au moins un destinataire invalide. Invalid recipient. OFR_416 [416]"),
];

#[rustfmt::skip]
const HOST_UNKNOWN: &[Phrase] = &[
    p(r"host (or domain )?(name )?(not found|unknown)|domain (name )?(not found|does not exist|doesn.t exist|unknown|could not be (found|resolved))|unknown (host|domain|mail domain)|name or service not known|\bnxdomain\b|no such domain|invalid (recipient )?domain|domain is not reachable|all relevant mx records point to non-existent hosts|non-existent (host|domain)|couldn.t find any host|host \S+ not found|domain \S+ (does not exist|not found)|unrouteable address|bad destination system|account or domain may not exist|domain must exist|(^|[\s:<\[(])[a-z0-9-]+(\.[a-z0-9-]+)+\.? (does not exist|not found)|illegal host/domain|could not be found in (the )?domain name service|dns domain .{0,20}does not exist", "postfix, exim, qmail, sendmail, courier, exchange, smartermail",
      "550 5.1.2 <kijitora@example.invalid>: Recipient address rejected: Domain not found"),
];

#[rustfmt::skip]
const FAILED_STARTTLS: &[Phrase] = &[
    p(r"starttls|tls (is )?required|(does not|doesn.t) support (tls|ssl|starttls|encryption)|tls (is )?(not available|unavailable|not offered|not advertised)|encryption (is )?required|tls negotiation|tls handshake|ssl handshake|cannot start tls|tls session is required|handshake fail|5\.7\.11\b", "postfix, exim, gmail, office 365, mta-sts enforcers",
      "530 5.7.0 Must issue a STARTTLS command first"),
];

#[rustfmt::skip]
const SECURITY_ERROR: &[Phrase] = &[
    p(r"authentication (is )?required|not authenticated|client was not authenticated|(turn on|enable|use) smtp auth|authenticat\w* (failed|failure|invalid|unsuccessful)|invalid (credentials|login|username or password)|certificate (has )?(expired|invalid|verify|verification|not trusted|mismatch|error)|5\.7\.57|bad outbound sender|certificate (not verified|doesn.t match|does not match)", "office 365, exchange, postfix, exim, gmail",
      "530 5.7.57 Client not authenticated to send mail. Error: 535 5.7.139 Authentication unsuccessful"),
    p(r"security alert:", "fml (mailing-list server notices)",
      "Security Alert: <kijitora@example.jp> sent a mail with a forged header"),
    p(r"(does not|doesn.t) have permissions? to send as", "office 365 (5.7.60)",
      "550 5.7.60 SMTP; Client does not have permissions to send as this sender"),
];

#[rustfmt::skip]
const NOT_COMPLIANT_RFC: &[Phrase] = &[
    p(r"rfc ?(2822|5322|822|5321|2821)\b.{0,40}(violat|compli|conform|invalid|requir|standard|malformed|break)|not (rfc[- ]?)?(2822|5322) compliant|not rfc[- ]?compliant", "gmail, outlook.com, exim, proofpoint",
      "550-5.7.1 [192.0.2.1] This message is not RFC 5322 compliant. There are multiple From headers."),
    p(r"duplicate (header|message-id|from|to|subject|date)|multiple (from|to|subject|date|message-id|sender) (headers?|fields?|addresses)|multiple addresses in from|(missing|no|invalid|malformed|bad|empty|unparseable|broken) (required )?(\S+ )?(header|from:? header|date:? header|message-id|from address|date field|from field)|header (is )?(malformed|invalid|missing|syntax)|missing a valid address in from|bare (lf|linefeed|cr|newline)s?|(line|lines) (too long|longer than|exceeds? \d+)|message has lines too long|8-?bit (data|characters?) (in|not allowed)|non-?ascii (characters? )?in (header|address)", "gmail, exim, postfix, outlook.com, exchange",
      "550-5.7.1 Messages missing a valid address in From: header, or having no From: header, are not accepted."),
    p(r"syntax error in (the )?\S+ header|header syntax|missing or malformed local part", "exim (verify = header_syntax)",
      "550 header syntax: syntax error in 'Reply-To:' header when scanning for sender: missing or malformed local part in \"<@>\""),
    p(r"docs/smtplf", "qmail-smtpd (bare linefeeds)",
      "451 See http://pobox.com/~djb/docs/smtplf.html."),
];

#[rustfmt::skip]
const CONTENT_ERROR: &[Phrase] = &[
    p(r"content error|headers? too (large|long|big)|invalid (mime|message) (structure|format|content)|message (is )?malformed|mime (error|parse error)|smtputf8 is required", "exim, sendmail, domino, groupwise",
      "554 5.6.0 Message content error: invalid MIME structure"),
    p(r"content conversion|corrupt(ed)? content|conversionfailed", "exchange, office 365 (storedrv conversion)",
      "554 5.6.0 STOREDRV.Submit; content conversion failed: the message is corrupt"),
];

#[rustfmt::skip]
const POLICY_VIOLATION: &[Phrase] = &[
    p(r"policy (violation|reason|reasons|rejection|restriction|block)|(local|site|security|content|company|e-?mail) polic(y|ies)|(rejected|refused|blocked|denied|not accepted) (for|by|due to|because of|per) (\S+ )?(polic|local rules)|content presents a potential|administrative prohibition|has a policy that prohibit|anti-?spoofing|content restrictions?\b|header error|\bdmarc\b|(does not|doesn.t) allow (external )?forwarding", "yahoo, gmail, outlook.com, exchange, mimecast, proofpoint, exim, postfix",
      "552-5.7.0 This message was blocked because its content presents a potential security issue. To review our message content and attachment content guidelines, go to https://support.google.com/mail/?p=BlockedMessage"),
    p(r"unacceptable extension|(attachment|file) type (is )?not allowed|unacceptable attachments?|(banned|forbidden|prohibited|blocked|disallowed|illegal|dangerous) (attachment|file|extension|content|file type|filename)|\bbanned\b:|reject, id=\S+ - banned", "amavis, gmail, exchange, mimecast, sophos",
      "552-5.7.0 Our system detected an illegal attachment on your message. Please visit https://support.google.com/mail/?p=BlockedMessage to review our attachment guidelines."),
];

#[rustfmt::skip]
const FILTERED: &[Phrase] = &[
    p(r"recipient preferences|rejected by (the )?recipient|message filtered|only (accepts?|receives?) (mail|messages|e-?mail) from|resolver\.rst\.(notauthorized|sendernotauthenticatedforgroup|restrictedtorecipientspermission|deliverytorestricted)|not authori[sz]ed to send to (this|the) (recipient|group|address|mailbox|distribution)|envelope blocked|user entry|(do not|don.t) have permission to send to|\(\S+@\S+:blocked\)", "exchange, office 365, gmail groups, japanese carriers (docomo, au, softbank), postfix header_checks",
      "550 5.7.124 RESOLVER.RST.NotAuthorized; not authorized to send to this recipient"),
    p(r"delivery not authori[sz]ed, message refused|not in (the )?allowed.senders list|was automatically rejected|no longer accept mail from (this|that|your)", "exchange, office 365 (5.7.124), dovecot pigeonhole (sieve reject)",
      "550 5.7.1 Delivery not authorized, message refused"),
];

#[rustfmt::skip]
const BLOCKED: &[Phrase] = &[
    p(r"client host (\S+ )?(rejected|blocked|refused)|client (\S+ )?(not authorized|rejected|blocked|denied|refused|banned)|(connection|connections|session) (rejected|denied|not accepted) (from|to|for|by|because)|(your|the sending|sending|source|connecting|remote) (ip|ip address|host|server|mail server|network|address)\b.{0,60}(blocked|banned|denied|refused|rejected|not allowed|not permitted|not accepted|listed)|(ip|host|server|address) .{0,40}(is )?(not allowed|not permitted|banned|blacklisted|blocklisted)|ip source bloqu|refused to talk to me|service refus|mail from \S+ (refused|rejected|blocked)|invalid ip for sending|\bgreylist|blocked (by|for|due)|\b(rbl|dnsbl)\b|black ?list|block ?list|listed (at|in|on|by) |your (ip|network|server)\b|\bbanned\b", "postfix, exim, sendmail, exchange, ironport, trend micro, sophos, mdaemon, kerio, icewarp, smartermail, orange, comcast",
      "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied"),
];

#[rustfmt::skip]
const NETWORK_ERROR: &[Phrase] = &[
    p(r"mail (forwarding )?loop|loops? (back to myself|detected)|too many hops|exceeded \d+ hops|hop count (exceeded|limit)|routing loop|message (is )?looping", "postfix, exim, sendmail, exchange, qmail",
      "554 5.4.6 mail for example.jp loops back to myself"),
    p(r"no route to host|network (is )?unreachable|network error|host (is )?unreachable|unable to (route|find a route)|(dns|mx) (error|failure|problem|lookup (error|failure|failed))|(bad|malformed) dns|host name lookup failure|name server (failure|error|timeout)", "postfix, exim, exchange, sendmail",
      "connect to mx.example.jp[192.0.2.1]:25: No route to host"),
    p(r"connect(ion)? (to \S+ )?(failed|refused|reset|lost|closed|dropped)|lost connection|unable to connect|failed to connect|(remote host|server|peer) closed (the )?connection|closed connection in response to", "postfix, exim, sendmail, qmail, exchange",
      "connect to mx.example.jp[192.0.2.1]:25: Connection refused"),
    p(r"wasn.t able to establish an smtp connection|listed as a best-preference mx or a for that host|isn.t in my control/locals file|reply: read error|read error (from|on|while)|smtpsend\.dns\.mxloopback", "qmail-remote, sendmail, exchange",
      "Sorry. Although I'm listed as a best-preference MX or A for that host, it isn't in my control/locals file, so I don't treat it as local. (#5.4.6)"),
];

#[rustfmt::skip]
const MAILER_ERROR: &[Phrase] = &[
    p(r"command (died|failed|exited|crashed|output|time limit)|(program|pipe|procmail|maildrop|deliver|dovecot-lda|\blda\b|mda|mailer|script)\b.{0,40}(died|failed|exited|crashed|returned|error|exit (code|status))|unknown mailer error|mailer error|pipe to \||local delivery (failed|agent)|x-unix;|service unavailable. command|permission denied|unable to fork|child process", "postfix pipe/local, exim pipe transport, sendmail prog mailer, qmail-local, procmail, dovecot",
      "Command died with status 75: \"/usr/lib/dovecot/deliver\". Command output: lda: Fatal: Couldn't open file /var/mail/kijitora"),
    p(r"unable to run qmail-local", "qmail-lspawn",
      "Unable to run qmail-local. (#4.3.0)"),
];

#[rustfmt::skip]
const SYSTEM_FULL: &[Phrase] = &[
    p(r"insufficient system (storage|resources)|(disk|file ?system|spool|storage|queue|partition) (is |was )?(full|out of space)|out of (disk|storage|queue)( space)?|no space left|system (is )?full|insufficient (disk )?space|space shortage", "postfix, exim, sendmail, courier, exchange",
      "452 4.3.1 Insufficient system storage"),
];

#[rustfmt::skip]
const SYNTAX_ERROR: &[Phrase] = &[
    p(r"syntax error|command (not )?(recognized|unrecognized|not implemented|unknown)|(unrecognized|unknown|invalid|illegal) (command|argument|parameter|option)|parameter(s)? (not|un)recognized|bad (sequence|syntax)|syntax:|(address|path) syntax|must precede (data|rcpt)|unknown (command|parameter)|unrecogni[sz]ed", "postfix, exim, sendmail, exchange, qmail",
      "501 5.5.4 Syntax: MAIL FROM:<address>"),
    p(r"syntactically invalid", "exim (helo, mail and rcpt argument checks)",
      "501 Syntactically invalid MAIL argument(s)"),
];

#[rustfmt::skip]
const EXPIRED_GAVE_UP: &[Phrase] = &[
    p(r"retry (timeout|time limit) exceeded|retry time not reached for any host|(queue|retry|delivery) (time|period|lifetime|limit) (has )?(expired|exceeded|ran out)|(has been|was|been) (in|on) (the )?queue (for )?too long|in the queue too long|message (has )?(expired|timed out)|(expired|timed out) (after|in|while)|could not be delivered (for|within) (more than )?\d+ (days?|hours?)|(not|n.t) (be |been )?delivered (for|within|after) (\S+ )?(\d+ )?(days?|hours?)|delivery (time|period|attempts?) (has )?(expired|exceeded|timed out)|unable to deliver (the message )?(in|within) \d+|have been failing for a long time|message could not be delivered for|i.m not going to try again|queue\.expired|in the queue too long|(could not|couldn.t|unable to) deliver (for|in|within) (the last )?\d+ (seconds|minutes|hours|days)|(envelope|mail) (has )?expired|cannot send (this )?message (for|in|within) \d+ (days?|hours?)|after (multiple|several|many|repeated) (retries|attempts)|in the time limit specified|could not send message for (the )?past|will retry for \d+ (more )?(hours|days)|delivery incomplete", "exim, qmail, sendmail, postfix, exchange, amazon ses, domino",
      "retry timeout exceeded"),
];

#[rustfmt::skip]
const EXPIRED: &[Phrase] = &[
    p(r"connection (timed|timing) out|timed? ?out (while|during|waiting|after|connecting|reading)|conversation with \S+ timed out|(server|host) did not (respond|answer|accept our requests to connect)|no (response|answer) from", "postfix, exim, sendmail, qmail, exchange, gmail, amazon ses",
      "delivery temporarily suspended: connect to mx.example.jp[192.0.2.1]:25: Connection timed out"),
    p(r"delivery (attempts? )?(will continue|has been delayed|delayed|is delayed)|has been delayed|not yet been delivered|will be retried|still (trying|being retried|retrying)|warning message only|do not need to resend|message delayed|\bdeferred\b", "gmail, exchange, postfix delay warnings, sendmail",
      "Delivery to the following recipient has been delayed: kijitora@example.jp Message will be retried for 2 more day(s)"),
];

#[rustfmt::skip]
const EXPIRED_WORDS: &[Phrase] = &[
    p(r"\bexpired\b|(gave|giving) up\b|timed? ?out|aborted after", "any mta's last words on a message it stopped trying",
      "Message aborted after 4 days: giving up"),
];

#[rustfmt::skip]
const WEAK_FILTERED: &[Phrase] = &[
    p(r"(message|mail|e-?mail) (was |has been |is )?(rejected|blocked|not accepted)|mail rejet", "a refusal of this message that names no cause",
      "550 Message rejected"),
];

#[rustfmt::skip]
const SYSTEM_ERROR: &[Phrase] = &[
    p(r"system (error|failure|problem|config)|temporary lookup failure|qq temporary problem|internal (server )?error|server (error|failure|misconfigur)|local error|error in processing|temporary local (problem|failure|error)|(configuration|config) (error|problem)|resources temporarily unavailable|server (is )?busy|requested action aborted|mail system (error|problem)|(file|disk) (write|read) error|write error|database (error|failure|unavailable)|storedrv|mapi|resolver\.adr\.(badprimary|invalidinsmtp|ambiguous)", "postfix, exim, sendmail, exchange, courier, domino, groupwise, zimbra",
      "451 4.3.0 Error: queue file write error"),
    p(r"duplicated message-id|loop back warning|loop alert:|unix from loop|fml system error message", "fml (mailing-list server notices)",
      "Loop Alert: Duplicated Message-ID in <ml@example.jp>."),
    p(r"mail server temporarily rejected message|unable to (chdir to|open|write to|read|switch to) (the )?(maildir|/)", "gmail, qmail-local",
      "451-4.3.0 Mail server temporarily rejected message. a1b2c3d4e5f6 - gsmtp"),
];

#[rustfmt::skip]
const WEAK_USER_UNKNOWN: &[Phrase] = &[
    p(r"mail ?box (is )?(unavailable|not available)|mailbox name not allowed|requested action not taken: mailbox|does not like recipient|not found|\binvalid\b", "rfc 5321 stock texts (550, 553), hotmail, qmail's template, postfix's prefix",
      "550 Requested action not taken: mailbox unavailable (-0000000022:2222:-0000000022)"),
];

#[rustfmt::skip]
const WEAK_SYSTEM_FULL: &[Phrase] = &[
    p(r"requested action not taken: insufficient", "rfc 5321 stock text for 452",
      "452 Requested action not taken: insufficient"),
];

#[rustfmt::skip]
const WEAK_SYSTEM_ERROR: &[Phrase] = &[
    p(r"service (is )?(currently |temporarily )?(not available|unavailable)|temporar(il)?y (unavailable|not available)|closing transmission channel|local problem", "rfc 5321 stock texts (421, 451)",
      "421 Service not available, closing transmission channel"),
];

#[rustfmt::skip]
const WEAK_REJECTED: &[Phrase] = &[
    p(r"sender|mail from", "any mta naming the sender in an otherwise blank refusal",
      "553 sender refused"),
];

/// Where a phrase sits: its group and its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub group: &'static Group,
    pub phrase: &'static Phrase,
}

/// Every phrase, flattened in precedence order, with the group it belongs to.
fn flat() -> impl Iterator<Item = (&'static Group, &'static Phrase)> {
    GROUPS.iter().flat_map(|g| g.phrases.iter().map(move |p| (g, p)))
}

/// The phrases match bytes of normalized (lower-cased) text with ASCII classes: `.`, `\S`
/// and `\b` are one byte each, which keeps the set of a few hundred alternations within
/// the lazy DFA (Unicode classes and case folding made it fall back to the slow NFA).
/// Non-ASCII letters in a pattern still match as their UTF-8 bytes.
fn builder(pattern: &str) -> RegexBuilder {
    let mut b = RegexBuilder::new(pattern);
    b.unicode(false);
    b
}

static SET: LazyLock<Option<(RegexSet, Vec<Hit>)>> = LazyLock::new(|| {
    let hits: Vec<Hit> = flat().map(|(group, phrase)| Hit { group, phrase }).collect();
    let set = RegexSetBuilder::new(hits.iter().map(|h| h.phrase.pattern))
        .unicode(false)
        .dfa_size_limit(64 << 20)
        .size_limit(64 << 20)
        .build()
        .ok()?;
    Some((set, hits))
});

/// Bytes of text the phrases read: a report explains itself at the top, and a cap keeps the
/// set fast on megabytes of junk.
pub const MAX_TEXT: usize = 16 * 1024;

/// The text the phrases read: at most [`MAX_TEXT`] bytes, lower-cased, curly quotes made
/// straight and runs of whitespace made one space.
pub fn normalize(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end);
    let text = text.get(..end).unwrap_or("").trim_end();
    let mut space = false;
    for c in text.chars() {
        let c = match c {
            '\u{2018}' | '\u{2019}' | '\u{02bc}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            c if c.is_whitespace() => ' ',
            c => c,
        };
        if c == ' ' {
            if !space && !out.is_empty() {
                out.push(' ');
            }
            space = true;
            continue;
        }
        space = false;
        out.extend(c.to_lowercase());
    }
    out
}

/// The first strong and the first weak phrase `normalized` contains (see [`normalize`]).
pub fn find(normalized: &str) -> (Option<Hit>, Option<Hit>) {
    let Some((set, hits)) = SET.as_ref() else {
        return (None, None);
    };
    let mut strong = None;
    let mut weak = None;
    for i in set.matches(normalized.as_bytes()).iter() {
        let Some(h) = hits.get(i) else { continue };
        match h.group.strength {
            Strength::Strong | Strength::Own if strong.is_none() => strong = Some(*h),
            Strength::Weak if weak.is_none() => weak = Some(*h),
            _ => {}
        }
        if strong.is_some() && weak.is_some() {
            break;
        }
    }
    (strong, weak)
}

/// The words of `text` that `hit`'s phrase matches (compiled anew: for explanations only).
pub fn matched(hit: &Hit, text: &str) -> Option<String> {
    let re: Regex = builder(hit.phrase.pattern).build().ok()?;
    let text = normalize(text);
    re.find(text.as_bytes()).map(|m| String::from_utf8_lossy(m.as_bytes()).trim().to_string())
}

/// The reason the first phrase of `text` names, strong before weak.
pub fn reason_in(text: &str) -> Option<Reason> {
    let (strong, weak) = find(&normalize(text));
    strong.or(weak).map(|h| h.group.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phrase_compiles_and_the_set_builds() {
        for (g, p) in flat() {
            assert!(builder(p.pattern).build().is_ok(), "{}: bad pattern {}", g.name, p.pattern);
        }
        assert!(SET.is_some());
    }

    /// Each phrase line's example reaches its own group first: no earlier group steals it.
    #[test]
    fn every_example_reaches_its_own_group() {
        let mut wrong = Vec::new();
        for (g, p) in flat() {
            let text = normalize(p.example);
            let own = builder(p.pattern).build().map(|r| r.is_match(text.as_bytes())).unwrap_or(false);
            let (strong, weak) = find(&text);
            let first = match g.strength {
                Strength::Strong | Strength::Own => strong,
                Strength::Weak => strong.or(weak),
            };
            let got = first.map(|h| h.group.name).unwrap_or("nothing");
            if !own || got != g.name {
                wrong.push(format!("{} ({}): own pattern {own}, first group {got}: {}", g.name, p.who, p.example));
            }
        }
        assert!(wrong.is_empty(), "examples that miss their group:\n{}", wrong.join("\n"));
    }

    /// Lines written for the wordings (`tests/data/phrase-lines.tsv`: reason, who, line).
    const PHRASE_LINES: &str = include_str!("../../tests/data/phrase-lines.tsv");
    /// The classifier's other table of server lines (tab-separated, the line last).
    const BOUNCE_LINES: &str = include_str!("../../tests/data/bounce-lines.tsv");

    fn rows(table: &str) -> impl Iterator<Item = Vec<&str>> {
        table.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(|l| l.split('\t').collect())
    }

    /// The top-level alternatives of a pattern: its wordings (split on `|` outside groups
    /// and classes).
    fn wordings(pattern: &str) -> Vec<&str> {
        let (mut out, mut depth, mut class, mut escaped, mut start) = (Vec::new(), 0, false, false, 0);
        for (i, c) in pattern.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '[' if !class => class = true,
                ']' if class => class = false,
                '(' if !class => depth += 1,
                ')' if !class => depth -= 1,
                '|' if !class && depth == 0 => {
                    out.push(pattern.get(start..i).unwrap_or(""));
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(pattern.get(start..).unwrap_or(""));
        out
    }

    /// Every wording of every phrase is met by at least one realistic line: the examples
    /// above, the phrase lines or the bounce lines. A wording no line needs is a rule
    /// written for nothing.
    #[test]
    fn every_wording_has_a_test_line() {
        let lines: Vec<String> = rows(PHRASE_LINES)
            .chain(rows(BOUNCE_LINES))
            .filter_map(|r| r.last().map(|l| normalize(l)))
            .chain(flat().map(|(_, p)| normalize(p.example)))
            .collect();
        let mut bare = Vec::new();
        for (g, p) in flat() {
            for w in wordings(p.pattern) {
                let Ok(re) = builder(w).build() else {
                    bare.push(format!("{} ({}): does not compile alone: {w}", g.name, p.who));
                    continue;
                };
                if !lines.iter().any(|l| re.is_match(l.as_bytes())) {
                    bare.push(format!("{}\t{}\t{w}", g.name, p.who));
                }
            }
        }
        assert!(bare.is_empty(), "{} wordings without a test line:\n{}", bare.len(), bare.join("\n"));
    }

    /// Each phrase line names the reason its words mean, and the tables agree.
    #[test]
    fn every_phrase_line_reaches_its_reason() {
        let mut wrong = Vec::new();
        for r in rows(PHRASE_LINES) {
            let [reason, who, line] = r.as_slice() else {
                wrong.push(format!("not three fields: {r:?}"));
                continue;
            };
            let want = Reason::from_name(reason);
            let got = reason_in(line);
            if want.is_none() || got != want {
                wrong.push(format!("{reason} ({who}) got {got:?}: {line}"));
            }
        }
        assert!(wrong.is_empty(), "{} phrase lines miss their reason:\n{}", wrong.len(), wrong.join("\n"));
    }

    #[test]
    fn normalize_squeezes_lowers_and_straightens() {
        assert_eq!(normalize("  The  email\r\n address WASN\u{2019}T found "), "the email address wasn't found");
    }
}
