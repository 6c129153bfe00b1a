//! RFC 3464 delivery-status fields: per-message block, then one block per recipient
//! (Final-Recipient, Original-Recipient, Action, Status, Remote-MTA, Diagnostic-Code).
//!
//! Standards: RFC 3464 (and RFC 6533 `message/global-delivery-status`), RFC 3463 codes.
//! Reads the fields with `smtp::message::field_blocks` (unfolding continuation lines) so that
//! inline copies in a text part read the same as a real `message/delivery-status` part.
//! Must not: panic, keep more than `MAX_RECIPIENTS` rows, or classify.

use super::{MAX_RECIPIENTS, Row, clean_address, reply_code_in, squeeze, status_in};
use crate::smtp::message::{HeaderLine, field_blocks, is_field_name};

/// True when `text` carries RFC 3464 recipient fields inline (no delivery-status part).
pub fn looks_inline(text: &str) -> bool {
    let l = text.to_ascii_lowercase();
    l.contains("final-recipient:") && (l.contains("action:") || l.contains("status:"))
}

/// Unfolded `(lower-case name, value)` fields of the first 20,000 lines, in order (read by
/// `smtp::message::field_blocks`); a blank line yields `("", "")`, a line that is not a field
/// `("#text", "")`.
fn fields(text: &str) -> Vec<(String, String)> {
    let end = text.match_indices('\n').nth(19_999).map_or(text.len(), |(i, _)| i);
    let text = text.get(..end).unwrap_or(text);
    field_blocks(text)
        .map(|line| match line {
            HeaderLine::Blank => (String::new(), String::new()),
            HeaderLine::Field { name, value } if is_field_name(name.trim()) => {
                (name.trim().to_ascii_lowercase(), value)
            }
            HeaderLine::Field { .. } | HeaderLine::Other(_) => ("#text".to_string(), String::new()),
        })
        .collect()
}

/// `"dns; mx.example.jp"` -> `"mx.example.jp"`.
fn after_type(v: &str) -> String {
    let v = match v.split_once(';') {
        Some((t, rest)) if !t.contains(' ') && t.len() < 12 => rest,
        _ => v,
    };
    v.trim().trim_end_matches('.').to_string()
}

/// Per-recipient rows from the fields of a delivery-status body.
pub fn parse(text: &str) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut cur: Option<Row> = None;
    let mut original: Option<String> = None;
    let flush = |cur: &mut Option<Row>, original: &mut Option<String>, rows: &mut Vec<Row>| {
        if let Some(mut r) = cur.take() {
            if r.address.is_empty()
                && let Some(o) = original.take()
            {
                r.address = o;
            }
            if rows.len() < MAX_RECIPIENTS && (!r.address.is_empty() || r.status.is_some()) {
                rows.push(r);
            }
        }
        *original = None;
    };
    for (name, value) in fields(text) {
        match name.as_str() {
            // A blank line ends a recipient block.
            "" if cur.as_ref().is_some_and(|r| r.action.is_some() || r.status.is_some()) => {
                flush(&mut cur, &mut original, &mut rows);
            }
            "final-recipient" => {
                if cur.as_ref().is_some_and(|r| !r.address.is_empty()) {
                    flush(&mut cur, &mut original, &mut rows);
                }
                let r = cur.get_or_insert_with(Row::default);
                r.address = clean_address(&after_type(&value)).unwrap_or_default();
            }
            "original-recipient" => {
                let a = clean_address(&after_type(&value));
                if let Some(r) = cur.as_mut().filter(|r| r.address.is_empty()) {
                    r.address = a.unwrap_or_default();
                } else if cur.is_none() {
                    original = a;
                }
            }
            "action" => {
                cur.get_or_insert_with(Row::default).action = Some(value.to_ascii_lowercase());
            }
            "status" => {
                let r = cur.get_or_insert_with(Row::default);
                r.status = status_in(&value);
                // "4.0.0 (host name lookup failure)": keep the comment as a diagnostic.
                let comment = value.split_once(' ').map(|(_, c)| c.trim()).unwrap_or("");
                if r.diagnostic.is_none() && comment.len() > 3 {
                    r.diagnostic = Some(squeeze(comment));
                }
            }
            "remote-mta" => {
                let r = cur.get_or_insert_with(Row::default);
                r.remote_mta = Some(after_type(&value)).filter(|s| !s.is_empty());
            }
            "diagnostic-code" => {
                let r = cur.get_or_insert_with(Row::default);
                r.local_program |= value.trim_start().get(..7).is_some_and(|t| t.eq_ignore_ascii_case("x-unix;"));
                let d = squeeze(&after_type(&value));
                if r.reply_code.is_none() {
                    r.reply_code = reply_code_in(&d);
                }
                if !d.is_empty() {
                    r.diagnostic = Some(match r.diagnostic.take() {
                        Some(c) if !d.contains(c.as_str()) && r.status.is_some() && c.len() < 200 => {
                            format!("{d} ({c})")
                        }
                        _ => d,
                    });
                }
            }
            _ => {}
        }
    }
    flush(&mut cur, &mut original, &mut rows);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_recipient_block() {
        let t = "Reporting-MTA: dns; mx.example.com\n\nFinal-Recipient: rfc822; <Kiji@Example.JP>\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.example.jp\nDiagnostic-Code: smtp; 550 5.1.1 <kiji@example.jp>...\n  User Unknown\n";
        let rows = parse(t);
        assert_eq!(rows.len(), 1);
        let r = rows.first().cloned().unwrap_or_default();
        assert_eq!(r.address, "kiji@example.jp");
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
        assert_eq!(r.reply_code.as_deref(), Some("550"));
        assert_eq!(r.remote_mta.as_deref(), Some("mx.example.jp"));
        assert!(r.diagnostic.unwrap_or_default().ends_with("User Unknown"));
    }
}
