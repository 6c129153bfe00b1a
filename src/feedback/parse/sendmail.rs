//! Sendmail-style transcripts (`----- Transcript of session follows -----`):
//! `550 5.1.1 <a@b>... User unknown`, `<<< 550 ...` replies after `>>> RCPT To:<a@b>`,
//! and `a@b... reason` lines; V5 sendmail, IMail, Domino and others copy the shape.
//!
//! Standards: none (Sendmail's own bounce template).
//! Must not: panic or classify; rows are capped by the caller.

use super::{Row, clean_address, row_from_text};
use regex::Regex;
use std::sync::LazyLock;

static LINE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^\s*(?:<<<\s*)?(?:[245]\d\d[ \-](?:[245]\.\d{1,3}\.\d{1,3}\s+)?)?<?([^<>\s@]+@[^<>\s@]+?)>?\.\.\.\s*(.*)$",
    )
    .ok()
});
static RCPT: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"(?i)^\s*>>>\s*RCPT TO:\s*<([^>]+)>").ok());

/// The `<<<` reply lines right above line `i`, with the `>>>` command they answered:
/// `<<< 550 Insecure Mail Relay (in reply to MAIL From:<a@b>)`.
fn remote_reply_before(lines: &[&str], i: usize) -> Option<String> {
    let mut start = i;
    while start > 0 && lines.get(start - 1).is_some_and(|l| l.trim_start().starts_with("<<<")) {
        start -= 1;
    }
    if start == i {
        return None;
    }
    let reply: Vec<&str> =
        lines.get(start..i)?.iter().map(|l| l.trim_start().trim_start_matches("<<<").trim()).collect();
    let command = start
        .checked_sub(1)
        .and_then(|j| lines.get(j))
        .and_then(|l| l.trim_start().strip_prefix(">>>"))
        .map(|c| format!(" (in reply to {})", c.trim()))
        .unwrap_or_default();
    Some(format!("{}{command}", reply.join(" ")))
}

/// Rows for each `address... reason` line and each `>>> RCPT TO:` answered by `<<< 5xx`.
pub fn parse(text: &str) -> Vec<Row> {
    let (Some(re), Some(rcpt)) = (LINE.as_ref(), RCPT.as_ref()) else {
        return Vec::new();
    };
    let lines: Vec<&str> = text.lines().take(5000).collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(c) = re.captures(line) {
            if let Some(addr) = c.get(1).and_then(|m| clean_address(m.as_str())) {
                let diag = match remote_reply_before(&lines, i) {
                    // Sendmail's own summary ("Remote protocol error") right after the
                    // remote's reply: the remote's words come first, with their command.
                    Some(reply) if !line.trim_start().starts_with("<<<") => format!("{reply} {}", line.trim()),
                    _ => line.trim().to_string(),
                };
                out.push(row_from_text(addr, &diag));
            }
        } else if let Some(c) = rcpt.captures(line)
            && let Some(addr) = c.get(1).and_then(|m| clean_address(m.as_str()))
        {
            let reply: Vec<&str> = lines
                .iter()
                .skip(i + 1)
                .take_while(|l| l.trim_start().starts_with("<<<"))
                .map(|l| l.trim_start().trim_start_matches("<<<").trim())
                .collect();
            if !reply.is_empty() {
                out.push(row_from_text(addr, &reply.join(" ")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remote_reply_comes_with_sendmails_summary() {
        let text = "While talking to mx.example.edu:\n>>> MAIL From:<neko@example.jp>\n<<< 550 Insecure Mail Relay\n554 <kijitora@example.edu>... Remote protocol error\n";
        let rows = parse(text);
        let d = rows.first().and_then(|r| r.diagnostic.clone()).unwrap_or_default();
        assert_eq!(
            d,
            "550 Insecure Mail Relay (in reply to MAIL From:<neko@example.jp>) 554 <kijitora@example.edu>... Remote protocol error"
        );
    }
}
