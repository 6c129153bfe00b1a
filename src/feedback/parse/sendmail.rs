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
                out.push(row_from_text(addr, line.trim()));
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
