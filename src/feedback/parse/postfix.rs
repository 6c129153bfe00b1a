//! Plain-text layouts that put each failed address in angle brackets at the start of a
//! line, followed by the reason: Postfix (`<a@b>: host mx said: 550 ...`,
//! `<a@b> (expanded from <c@d>): ...`), qmail (`<a@b>:` then the reason on the next lines),
//! Courier and OpenSMTPD use the same shape.
//!
//! The line loop is `lines.rs`, shared with `exim.rs`.
//! Standards: none (each MTA's own bounce template).
//! Must not: panic or classify; rows are capped by the caller.

use super::lines::{gather, per_address_line};
use super::{Row, clean_address, row_from_text};
use regex::Regex;
use std::sync::LazyLock;

static LINE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:<([^<>\s]+@[^<>\s]+)>\s*(?:\(expanded from[^)]*\))?\s*[:.]*|([^<>\s:@]+@[^<>\s:@]+\.[A-Za-z]{2,}):)\s*(.*)$").ok()
});

/// Rows for every `<address>` line, with the text up to the next blank line or address.
pub fn parse(text: &str) -> Vec<Row> {
    let Some(re) = LINE.as_ref() else {
        return Vec::new();
    };
    per_address_line(text, |lines, at| {
        let c = re.captures(lines.get(at)?)?;
        let addr = c.get(1).or(c.get(2)).and_then(|m| clean_address(m.as_str()))?;
        let mut diag = c.get(3).map(|m| m.as_str().to_string()).unwrap_or_default();
        // Reason lines follow until a blank line (qmail may leave one blank line first).
        let i = at + 1;
        let mut from = i;
        if diag.trim().is_empty() && lines.get(from).is_some_and(|l| l.trim().is_empty()) {
            from += 1;
        }
        let j = gather(lines, i, from, &mut diag, |l, _| {
            // An indented `<address>: ...` line naming the same address is the remote
            // server's reply wrapped onto a continuation line, not the next recipient.
            let same_address = l.starts_with([' ', '\t'])
                && re.captures(l).and_then(|c| c.get(1).or(c.get(2))).and_then(|m| clean_address(m.as_str()))
                    == Some(addr.clone());
            l.trim().is_empty() || (re.is_match(l) && !same_address) || l.starts_with("---")
        });
        Some((row_from_text(addr, &diag), j))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_wrapped_onto_an_indented_line_of_the_same_address_is_kept() {
        let t = "<kiji@example.jp>: host\n    mx.example.jp[192.0.2.22] said: 550\n    <kiji@example.jp>: User unknown\n\n<neko@example.jp>: host mx said: 552 Mailbox full\n";
        let rows = parse(t);
        assert_eq!(rows.len(), 2);
        let first = rows.first().and_then(|r| r.diagnostic.clone()).unwrap_or_default();
        assert!(first.ends_with("<kiji@example.jp>: User unknown"), "{first}");
    }
}
