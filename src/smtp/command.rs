//! SMTP commands as values, parsed from one command line (without CRLF).
//!
//! Standards: RFC 5321 §4.1 (commands), RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 6531
//! (SMTPUTF8), RFC 3461 (DSN: RET, ENVID, NOTIFY, ORCPT), RFC 4954 (AUTH), RFC 3207 (STARTTLS).
//! Must not: keep state or apply limits other than syntax; the session decides what is allowed.

use thiserror::Error;

use super::address::{self, AddressError, Mailbox, ReversePath};
use super::xtext;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Helo(String),
    Ehlo(String),
    Mail { from: ReversePath, params: MailParams },
    Rcpt { to: ForwardPath, params: RcptParams },
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    Auth { mechanism: String, initial: Option<String> },
}

/// RCPT TO target: a mailbox, or the special `<Postmaster>` without a domain (§4.1.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardPath {
    Mailbox(Mailbox),
    Postmaster,
}

impl std::fmt::Display for ForwardPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardPath::Mailbox(m) => m.fmt(f),
            ForwardPath::Postmaster => f.write_str("Postmaster"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

/// RFC 3461 RET: return the full message or only its headers in a DSN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ret {
    Full,
    Hdrs,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    pub size: Option<u64>,
    pub body: Option<Body>,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    pub envid: Option<String>,
}

/// RFC 3461 NOTIFY: `never`, or any of success/failure/delay. `None` in `RcptParams` means
/// the parameter was absent (the default is FAILURE, and DELAY at the MTA's discretion).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notify {
    pub never: bool,
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Notify {
    /// The stored form: `NEVER` or a comma list such as `SUCCESS,FAILURE`.
    pub fn render(&self) -> String {
        if self.never {
            return "NEVER".into();
        }
        let mut parts = Vec::new();
        for (on, name) in [(self.success, "SUCCESS"), (self.failure, "FAILURE"), (self.delay, "DELAY")] {
            if on {
                parts.push(name);
            }
        }
        parts.join(",")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    pub notify: Option<Notify>,
    /// ORCPT as `addr-type;address`, xtext-decoded.
    pub orcpt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error("command not recognized")]
    Unrecognized,
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    #[error("bad sender address: {0}")]
    Sender(AddressError),
    #[error("bad recipient address: {0}")]
    Recipient(AddressError),
    #[error("parameter not recognized: {0}")]
    UnknownParameter(String),
}

impl Command {
    /// Parses one command line. `rcpt_utf8` says whether the open transaction used SMTPUTF8,
    /// which allows UTF-8 in RCPT addresses.
    pub fn parse(line: &str, rcpt_utf8: bool) -> Result<Command, CommandError> {
        let (verb, rest) = match line.find(' ') {
            Some(i) => (line.get(..i).unwrap_or(""), line.get(i + 1..).unwrap_or("")),
            None => (line, ""),
        };
        let verb = verb.to_ascii_uppercase();
        let arg = rest.trim();
        let no_arg = |cmd: Command| {
            if arg.is_empty() { Ok(cmd) } else { Err(CommandError::Syntax("no parameters allowed")) }
        };
        match verb.as_str() {
            "HELO" | "EHLO" => {
                if arg.is_empty() || arg.contains(' ') {
                    return Err(CommandError::Syntax("a domain or address literal is required"));
                }
                Ok(if verb == "HELO" { Command::Helo(arg.into()) } else { Command::Ehlo(arg.into()) })
            }
            "MAIL" => parse_mail(rest),
            "RCPT" => parse_rcpt(rest, rcpt_utf8),
            "DATA" => no_arg(Command::Data),
            "RSET" => no_arg(Command::Rset),
            "NOOP" => Ok(Command::Noop),
            "QUIT" => no_arg(Command::Quit),
            "VRFY" => Ok(Command::Vrfy),
            "EXPN" => Ok(Command::Expn),
            "HELP" => Ok(Command::Help),
            "STARTTLS" => no_arg(Command::StartTls),
            "AUTH" => {
                let mut parts = arg.split_ascii_whitespace();
                let mechanism =
                    parts.next().ok_or(CommandError::Syntax("AUTH needs a mechanism"))?.to_ascii_uppercase();
                let initial = parts.next().map(str::to_string);
                if parts.next().is_some() {
                    return Err(CommandError::Syntax("too many AUTH arguments"));
                }
                Ok(Command::Auth { mechanism, initial })
            }
            _ => Err(CommandError::Unrecognized),
        }
    }
}

/// Splits `FROM:<path> PARAM...` (tolerating a space after the colon, as common clients send).
fn split_path<'a>(rest: &'a str, keyword: &str) -> Result<(&'a str, &'a str), CommandError> {
    let head = rest.get(..keyword.len()).ok_or(CommandError::Syntax("missing path"))?;
    if !head.eq_ignore_ascii_case(keyword) {
        return Err(CommandError::Syntax("missing FROM:/TO:"));
    }
    let after = rest.get(keyword.len()..).unwrap_or("").trim_start();
    if !after.starts_with('<') {
        return Err(CommandError::Syntax("path must be enclosed in <>"));
    }
    // Find the closing '>' outside a quoted string.
    let mut in_quote = false;
    let mut escaped = false;
    for (i, c) in after.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '>' if !in_quote => {
                let path = after.get(..=i).unwrap_or("");
                let params = after.get(i + 1..).unwrap_or("");
                if !params.is_empty() && !params.starts_with(' ') {
                    return Err(CommandError::Syntax("garbage after path"));
                }
                return Ok((path, params.trim()));
            }
            _ => {}
        }
    }
    Err(CommandError::Syntax("unterminated path"))
}

fn params(text: &str) -> impl Iterator<Item = (String, Option<&str>)> {
    text.split_ascii_whitespace().map(|p| match p.split_once('=') {
        Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
        None => (p.to_ascii_uppercase(), None),
    })
}

fn parse_mail(rest: &str) -> Result<Command, CommandError> {
    let (path, rest) = split_path(rest, "FROM:")?;
    let mut p = MailParams::default();
    for (key, value) in params(rest) {
        match (key.as_str(), value) {
            ("SIZE", Some(v)) => {
                p.size = Some(v.parse().map_err(|_| CommandError::Syntax("SIZE must be a number"))?);
            }
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => p.body = Some(Body::EightBitMime),
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => p.body = Some(Body::SevenBit),
            ("SMTPUTF8", None) => p.smtputf8 = true,
            ("RET", Some(v)) if v.eq_ignore_ascii_case("FULL") => p.ret = Some(Ret::Full),
            ("RET", Some(v)) if v.eq_ignore_ascii_case("HDRS") => p.ret = Some(Ret::Hdrs),
            ("ENVID", Some(v)) => {
                let id = xtext::decode(v).filter(|s| s.len() <= 100).ok_or(CommandError::Syntax("bad ENVID"))?;
                p.envid = Some(id);
            }
            // RFC 4954 AUTH= on MAIL is accepted and ignored (we do not relay identities).
            ("AUTH", Some(_)) => {}
            _ => return Err(CommandError::UnknownParameter(key)),
        }
    }
    let from = address::parse_reverse_path(path, p.smtputf8).map_err(CommandError::Sender)?;
    Ok(Command::Mail { from, params: p })
}

fn parse_rcpt(rest: &str, utf8: bool) -> Result<Command, CommandError> {
    let (path, rest) = split_path(rest, "TO:")?;
    let mut p = RcptParams::default();
    for (key, value) in params(rest) {
        match (key.as_str(), value) {
            ("NOTIFY", Some(v)) => p.notify = Some(parse_notify(v)?),
            ("ORCPT", Some(v)) => {
                let decoded = xtext::decode(v).ok_or(CommandError::Syntax("bad ORCPT"))?;
                let ok = decoded.split_once(';').is_some_and(|(t, a)| !t.is_empty() && !a.is_empty())
                    && decoded.len() <= 500;
                if !ok {
                    return Err(CommandError::Syntax("ORCPT must be addr-type;address"));
                }
                p.orcpt = Some(decoded);
            }
            _ => return Err(CommandError::UnknownParameter(key)),
        }
    }
    let to = if path.eq_ignore_ascii_case("<postmaster>") {
        ForwardPath::Postmaster
    } else {
        ForwardPath::Mailbox(address::parse_forward_path(path, utf8).map_err(CommandError::Recipient)?)
    };
    Ok(Command::Rcpt { to, params: p })
}

fn parse_notify(v: &str) -> Result<Notify, CommandError> {
    let mut n = Notify::default();
    for word in v.split(',') {
        match word.to_ascii_uppercase().as_str() {
            "NEVER" => n.never = true,
            "SUCCESS" => n.success = true,
            "FAILURE" => n.failure = true,
            "DELAY" => n.delay = true,
            _ => {
                return Err(CommandError::Syntax("NOTIFY takes NEVER or SUCCESS,FAILURE,DELAY"));
            }
        }
    }
    if n.never && (n.success || n.failure || n.delay) {
        return Err(CommandError::Syntax("NOTIFY=NEVER cannot be combined"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_with_all_parameters() {
        let cmd =
            Command::parse("MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1", false).unwrap();
        let Command::Mail { from, params } = cmd else { panic!("not MAIL") };
        assert_eq!(from.to_string(), "a@b.example");
        assert_eq!(params.size, Some(1000));
        assert_eq!(params.body, Some(Body::EightBitMime));
        assert_eq!(params.ret, Some(Ret::Hdrs));
        assert_eq!(params.envid.as_deref(), Some("QQ+1"));
    }

    #[test]
    fn tolerant_spacing_and_case() {
        assert!(matches!(Command::parse("mail from: <>", false), Ok(Command::Mail { from: ReversePath::Null, .. })));
        assert!(matches!(
            Command::parse("rcpt to:<Postmaster>", false),
            Ok(Command::Rcpt { to: ForwardPath::Postmaster, .. })
        ));
    }

    #[test]
    fn rcpt_dsn_parameters() {
        let cmd =
            Command::parse("RCPT TO:<x@y.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;x+40y.example", false).unwrap();
        let Command::Rcpt { params, .. } = cmd else { panic!("not RCPT") };
        let n = params.notify.unwrap();
        assert!(n.success && n.delay && !n.failure && !n.never);
        assert_eq!(params.orcpt.as_deref(), Some("rfc822;x@y.example"));
        assert!(Command::parse("RCPT TO:<x@y.example> NOTIFY=NEVER,DELAY", false).is_err());
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(Command::parse("FOO", false), Err(CommandError::Unrecognized));
        assert!(matches!(Command::parse("MAIL FROM:a@b", false), Err(CommandError::Syntax(_))));
        assert!(matches!(Command::parse("MAIL FROM:<a@b> FOO=1", false), Err(CommandError::UnknownParameter(_))));
        assert!(matches!(Command::parse("RCPT TO:<a>", false), Err(CommandError::Recipient(_))));
        assert!(matches!(Command::parse("MAIL FROM:<a@b>x", false), Err(CommandError::Syntax(_))));
        assert!(matches!(Command::parse("HELO", false), Err(CommandError::Syntax(_))));
        assert!(matches!(Command::parse("DATA x", false), Err(CommandError::Syntax(_))));
    }

    #[test]
    fn quoted_local_part_with_angle_bracket() {
        let cmd = Command::parse("RCPT TO:<\"a>b\"@x.example>", false).unwrap();
        let Command::Rcpt { to: ForwardPath::Mailbox(m), .. } = cmd else { panic!() };
        assert_eq!(m.local(), "a>b");
    }

    /// Smoke fuzzing in `cargo test`: random command lines built from SMTP-ish fragments and
    /// arbitrary characters never panic the parser.
    #[test]
    fn random_lines_never_panic() {
        let fragments = [
            "MAIL FROM:",
            "RCPT TO:",
            "<",
            ">",
            "@",
            "\"",
            "\\",
            ":",
            ",",
            "%",
            "!",
            ".",
            " ",
            "=",
            "+",
            "SIZE=",
            "NOTIFY=",
            "ORCPT=rfc822;",
            "ENVID=",
            "RET=",
            "BODY=8BITMIME",
            "SMTPUTF8",
            "[",
            "]",
            "IPv6:",
            "ü",
            "xn--",
            "EHLO",
            "AUTH PLAIN",
            "\u{0}",
            "+2",
            "+ZZ",
            "postmaster",
            "a",
            "9",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..50_000 {
            let mut line = String::new();
            for _ in 0..(next() % 12) {
                let pick = (next() % fragments.len() as u64) as usize;
                line.push_str(fragments.get(pick).copied().unwrap_or(""));
            }
            let _ = Command::parse(&line, next() % 2 == 0);
        }
    }
}
