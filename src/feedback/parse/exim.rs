//! Plain-text layouts that put each failed address alone on an (often indented) line and
//! the reason on the lines below it, indented deeper: Exim (`  a@b\n    SMTP error from
//! remote mail server after RCPT TO:...`), Gmail delay notices, Lotus Notes, and many
//! provider templates.
//!
//! The line loop is `lines.rs`, shared with `postfix.rs`.
//! Standards: none (each MTA's own bounce template).
//! Must not: panic or classify; rows are capped by the caller.

use super::lines::{gather, per_address_line};
use super::{Row, clean_address, row_from_text};
use regex::Regex;
use std::sync::LazyLock;

static LINE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^(\s*)(?:RCPT TO:\s*|Recipient:\s*|\*\s*|-+\s*)?<?(?:mailto:)?([^<>\s@]+@[^<>\s@]+?)>?(?:\s*<[^>]*>)?(?:\s*\([^)]*\))?(?:\s+on\s+\S.*\d)?\s*:?\s*$").ok()
});

fn indent(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

/// Rows for every address-only line, with the deeper-indented (or next) lines as reason.
pub fn parse(text: &str) -> Vec<Row> {
    let Some(re) = LINE.as_ref() else {
        return Vec::new();
    };
    per_address_line(text, |lines, at| {
        let line = lines.get(at)?;
        let addr = re.captures(line)?.get(2).and_then(|m| clean_address(m.as_str()))?;
        let i = at + 1;
        let base = indent(line);
        let mut diag = String::new();
        let j = gather(lines, i, i, &mut diag, |l, diag| {
            l.trim().is_empty() || re.is_match(l) || (base > 0 && indent(l) <= base && !diag.is_empty())
        });
        if diag.is_empty() {
            // The reason may be the next paragraph (Gmail: address, blank line, details).
            let mut k = j;
            while lines.get(k).is_some_and(|l| l.trim().is_empty()) && k < j + 3 {
                k += 1;
            }
            while let Some(l) = lines.get(k) {
                // A dashed rule starts another section (`------- Returned Message ----`).
                if l.trim().is_empty() || re.is_match(l) || k > j + 12 || is_rule(l) {
                    break;
                }
                diag.push(' ');
                diag.push_str(l.trim());
                k += 1;
            }
        }
        if diag.trim().is_empty() {
            diag = reasons_above(lines, at);
        }
        Some((row_from_text(addr, &diag), j))
    })
}

/// A dashed heading such as `------- Returned Message --------`.
fn is_rule(l: &str) -> bool {
    let t = l.trim();
    t.starts_with("-----") && t.ends_with("-----")
}

/// Lotus Notes writes the reason above the address: `------- Failure Reasons --------`,
/// the reason lines, then the address. The lines between that heading and line `at`.
fn reasons_above(lines: &[&str], at: usize) -> String {
    let from = at.saturating_sub(12);
    let Some(window) = lines.get(from..at) else {
        return String::new();
    };
    let Some(head) = window.iter().rposition(|l| l.to_ascii_lowercase().contains("failure reasons")) else {
        return String::new();
    };
    window
        .get(head + 1..)
        .unwrap_or_default()
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lotus_notes_reason_above_the_address() {
        let t = "------- Failure Reasons  --------\n\nUser not listed in public Name & Address Book\nkiji@example.jp\n\n------- Returned Message --------\n";
        let rows = parse(t);
        let r = rows.first().cloned().unwrap_or_default();
        assert_eq!(r.address, "kiji@example.jp");
        assert_eq!(r.diagnostic.as_deref(), Some("User not listed in public Name & Address Book"));
    }
}
