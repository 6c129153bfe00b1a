//! Last resort for reports no family parser reads: every address in the report text,
//! with its line and the next one as the diagnostic (Yahoo, AOL, Exchange 2003, Notes,
//! Japanese carrier templates and home-grown bounce messages).
//!
//! Standards: none.
//! Must not: panic or classify; the caller removes the sender's own addresses.

use super::{Row, addresses_in, clean_address, row_from_text};
use regex::Regex;
use std::sync::LazyLock;

/// "could not be delivered to: <a@b>", "error delivering your mail to <a@b>",
/// "Unable to deliver message to: <a@b>": one sentence naming the failed address.
static PHRASE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:deliver(?:ing|ed|y)?|send(?:ing)?|sent|reach)(?-u:\b)[^<>\n@]{0,40}?(?-u:\b)to:?\s*<([^<>\s@]+@[^<>\s@]+)>").ok()
});

/// Rows for each address named in a failure sentence, with the rest of its paragraph
/// (and the next one) as the diagnostic.
pub fn parse_phrases(text: &str) -> Vec<Row> {
    let Some(re) = PHRASE.as_ref() else {
        return Vec::new();
    };
    let lines: Vec<&str> = text.lines().take(5000).collect();
    let mut out: Vec<Row> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        for c in re.captures_iter(line) {
            let Some(a) = c.get(1).and_then(|m| clean_address(m.as_str())) else {
                continue;
            };
            if out.iter().any(|r| r.address == a) {
                continue;
            }
            let rest = c.get(0).map_or("", |m| line.get(m.end()..).unwrap_or(""));
            let mut diag = rest.trim().to_string();
            let mut blanks = 0;
            for l in lines.iter().skip(i + 1).take(12) {
                if l.trim().is_empty() {
                    blanks += 1;
                    if blanks > 1 || diag.len() > 20 {
                        break;
                    }
                    continue;
                }
                diag.push(' ');
                diag.push_str(l.trim());
            }
            out.push(row_from_text(a, &diag));
            if out.len() >= 50 {
                return out;
            }
        }
    }
    out
}

/// Words near an address that make it look like the one that failed.
static FAILURE_WORDS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)(not|fail\w*|unknown|invalid|reject\w*|undeliver\w*|error|unable|could ?n[o']t|cannot|denied|refused|bounced?|no such|full|quota|disabled)(?-u:\b)").ok()
});

/// Rows for each distinct address in `text`, in order of appearance. When some addresses
/// stand next to failure words and others do not, only the former are kept.
pub fn parse(text: &str) -> Vec<Row> {
    let rows = parse_all(text);
    let Some(re) = FAILURE_WORDS.as_ref() else {
        return rows;
    };
    let near_failure = |r: &Row| r.diagnostic.as_deref().is_some_and(|d| re.is_match(d));
    if rows.len() > 1 && rows.iter().any(near_failure) {
        return rows.into_iter().filter(near_failure).collect();
    }
    rows
}

fn parse_all(text: &str) -> Vec<Row> {
    let lines: Vec<&str> = text.lines().take(5000).collect();
    let mut out: Vec<Row> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        for a in addresses_in(line) {
            if out.iter().any(|r| r.address == a) {
                continue;
            }
            // The next line explains this address, unless it is about another one.
            let next = lines.get(i + 1).copied().filter(|l| addresses_in(l).is_empty()).unwrap_or("");
            let diag = format!("{} {}", line.trim(), next.trim());
            out.push(row_from_text(a, &diag));
            if out.len() >= 50 {
                return out;
            }
        }
    }
    out
}
