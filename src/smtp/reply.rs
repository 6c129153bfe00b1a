//! SMTP replies as values: code, optional enhanced status, one or more text lines.
//!
//! Standards: RFC 5321 §4.2 (reply format, multi-line replies), RFC 3463 (enhanced status codes).
//! Must not: choose reply text; the server's wording lives in `inbound::replies`.

use std::fmt;

/// An RFC 3463 enhanced status code such as `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedStatus {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl EnhancedStatus {
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        Self { class, subject, detail }
    }

    /// Parses `c.s.d` where c is 2, 4 or 5 and s, d have at most three digits.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let class: u8 = parts.next()?.parse().ok()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        if parts.next().is_some() || !matches!(class, 2 | 4 | 5) {
            return None;
        }
        let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(subject) || !digits(detail) {
            return None;
        }
        Some(Self { class, subject: subject.parse().ok()?, detail: detail.parse().ok()? })
    }
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One SMTP reply. `lines` holds the text after the code (and after the enhanced status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    pub code: u16,
    pub status: Option<EnhancedStatus>,
    pub lines: Vec<String>,
}

impl SmtpReply {
    pub fn new(code: u16, status: Option<EnhancedStatus>, text: impl Into<String>) -> Self {
        Self { code, status, lines: vec![text.into()] }
    }

    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// Renders the reply on the wire, CRLF-terminated, with `code-` continuation lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            out.push_str(&self.code.to_string());
            out.push(sep);
            if let Some(status) = self.status {
                out.push_str(&status.to_string());
                out.push(' ');
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        if self.lines.is_empty() {
            out.push_str(&format!("{}\r\n", self.code));
        }
        out
    }
}

/// Assembles a reply from the lines a server sends (`250-…` continuations, `250 …` last).
/// The enhanced status is taken from the first line when its class matches the code's.
#[derive(Debug, Default)]
pub struct ReplyBuilder {
    code: Option<u16>,
    lines: Vec<String>,
}

/// Upper bound of lines in one reply, so a hostile server cannot grow it without end.
const MAX_REPLY_LINES: usize = 100;

impl ReplyBuilder {
    /// Feeds one line (without CRLF). Returns the reply when this was its last line.
    pub fn push(&mut self, line: &str) -> Result<Option<SmtpReply>, String> {
        let code: u16 = line
            .get(..3)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse().ok())
            .filter(|c| (200..600).contains(c))
            .ok_or_else(|| format!("malformed reply line: {}", line.chars().take(80).collect::<String>()))?;
        if self.code.is_some_and(|c| c != code) {
            return Err(format!("reply code changed within a reply: {code}"));
        }
        self.code = Some(code);
        let sep = line.as_bytes().get(3).copied();
        if self.lines.len() < MAX_REPLY_LINES {
            self.lines.push(line.get(4..).unwrap_or("").to_string());
        }
        if sep == Some(b'-') {
            return Ok(None);
        }
        let lines = std::mem::take(&mut self.lines);
        self.code = None;
        Ok(Some(SmtpReply::from_lines(code, lines)))
    }
}

impl SmtpReply {
    /// Builds a reply from received text lines, splitting off a leading enhanced status.
    pub fn from_lines(code: u16, mut lines: Vec<String>) -> SmtpReply {
        let class = (code / 100) as u8;
        let status = lines
            .first()
            .and_then(|l| l.split_once(' ').map(|(s, _)| s).or(Some(l.as_str())))
            .and_then(EnhancedStatus::parse)
            .filter(|s| s.class == class);
        if let Some(st) = status {
            let prefix = st.to_string();
            for l in &mut lines {
                if let Some(rest) = l.strip_prefix(&prefix) {
                    *l = rest.trim_start().to_string();
                }
            }
        }
        SmtpReply { code, status, lines }
    }
}

impl fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} {} {}", self.code, s, self.lines.join(" / ")),
            None => write!(f, "{} {}", self.code, self.lines.join(" / ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_status_parses_and_prints() {
        assert_eq!(EnhancedStatus::parse("5.1.1"), Some(EnhancedStatus::new(5, 1, 1)));
        assert_eq!(EnhancedStatus::parse("4.7.650").map(|s| s.to_string()).as_deref(), Some("4.7.650"));
        assert_eq!(EnhancedStatus::parse("3.1.1"), None);
        assert_eq!(EnhancedStatus::parse("5.1"), None);
        assert_eq!(EnhancedStatus::parse("5.1.1.1"), None);
        assert_eq!(EnhancedStatus::parse("5.x.1"), None);
    }

    #[test]
    fn builder_assembles_multiline_replies_with_status() {
        let mut b = ReplyBuilder::default();
        assert_eq!(b.push("550-5.1.1 The email account that you tried to reach does not exist.").unwrap(), None);
        let r = b.push("550 5.1.1 Please try again. x - gsmtp").unwrap().unwrap();
        assert_eq!(r.code, 550);
        assert_eq!(r.status, Some(EnhancedStatus::new(5, 1, 1)));
        assert_eq!(
            r.lines,
            vec!["The email account that you tried to reach does not exist.", "Please try again. x - gsmtp"]
        );
        let r = b.push("250 mx.example").unwrap().unwrap();
        assert_eq!((r.status, r.lines.len()), (None, 1));
        // A status whose class does not match the code is text, not a status.
        let r = b.push("451 5.0.0 odd").unwrap().unwrap();
        assert_eq!(r.status, None);
        assert!(b.push("hello").is_err());
        assert!(b.push("25").is_err());
    }

    #[test]
    fn multiline_replies_use_dash_continuations() {
        let reply = SmtpReply {
            code: 250,
            status: None,
            lines: vec!["mx.example".into(), "PIPELINING".into(), "SIZE 10".into()],
        };
        assert_eq!(reply.render(), "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
        let one = SmtpReply::new(550, EnhancedStatus::parse("5.1.1"), "<a@b>: user unknown");
        assert_eq!(one.render(), "550 5.1.1 <a@b>: user unknown\r\n");
    }
}
