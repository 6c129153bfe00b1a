//! The line loop of the plain-text layouts that name one failed address per line (`postfix`,
//! `exim`): find an address line, gather its reason from the lines after it, go on after them.
//!
//! Standards: none (the layouts are each MTA's own bounce template).
//! Must not: panic, read more than the first 5,000 lines, or gather more than 31 reason lines
//! per address; the layouts decide what an address line is and where a reason ends.

use super::Row;

/// Lines read from one text.
const MAX_LINES: usize = 5000;
/// Reason lines gathered after an address line, at most (one more than this).
const MAX_REASON_LINES: usize = 30;

/// The first 5,000 lines of `text`; for each one, `read(lines, at)` returns the row of the
/// address on line `at` (None: not an address line) and the index where the search goes on
/// (never before the next line).
pub fn per_address_line(text: &str, mut read: impl FnMut(&[&str], usize) -> Option<(Row, usize)>) -> Vec<Row> {
    let lines: Vec<&str> = text.lines().take(MAX_LINES).collect();
    let mut out = Vec::new();
    let mut at = 0;
    while at < lines.len() {
        let next = at + 1;
        match read(&lines, at) {
            Some((row, after)) => {
                out.push(row);
                at = after.max(next);
            }
            None => at = next,
        }
    }
    out
}

/// Appends the lines from `from` on to `reason` (each trimmed, after a space) until
/// `stop(line, reason so far)`, and at most up to 31 lines past `start` (the line after the
/// address); returns the index of the first line not taken.
pub fn gather(
    lines: &[&str],
    start: usize,
    from: usize,
    reason: &mut String,
    stop: impl Fn(&str, &str) -> bool,
) -> usize {
    let mut j = from;
    while let Some(l) = lines.get(j) {
        if stop(l, reason) {
            break;
        }
        reason.push(' ');
        reason.push_str(l.trim());
        j += 1;
        if j - start > MAX_REASON_LINES {
            break;
        }
    }
    j
}
