//! Reading header fields: the one reader of a message's header section (and of the field
//! blocks of an RFC 3464 delivery-status body) in the tree — lines split, continuation lines
//! unfolded, fields told from other lines.
//!
//! Standards: RFC 5322 §2.2 (header fields), §2.2.3 (unfolding), §2.1 (the empty line that
//! ends the header section), RFC 3464 §2.1 (groups of fields separated by empty lines).
//! Lenient on purpose: names are given as written (callers decide which they accept), a line
//! that is not a field is returned as such, and a continuation line with nothing before it is
//! dropped.
//! Must not: decode values (RFC 2047 is mail-parser's), know any field's meaning, or panic.

/// Offset just past the header section: after the CRLF that ends the last field, before the
/// empty line (2 when the message starts with the empty line; the whole input without one).
pub fn find_headers_end(message: &[u8]) -> usize {
    if message.starts_with(b"\r\n") {
        return 2;
    }
    // One searcher for the process: `memmem::find` builds a new one on every call, and every
    // message passes here several times on its way in.
    static EMPTY_LINE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
    EMPTY_LINE.find(message).map(|p| p + 2).unwrap_or(message.len())
}

/// Where the header ends and (after the empty line, CRLF or LF) the body starts: lenient about
/// line ends, for messages as submitted (`find_headers_end` is for wire-format CRLF messages).
pub fn split_header(raw: &[u8]) -> (usize, Option<usize>) {
    if raw.starts_with(b"\r\n") {
        return (0, Some(2));
    }
    if raw.starts_with(b"\n") {
        return (0, Some(1));
    }
    for i in memchr::memchr_iter(b'\n', raw) {
        if raw.get(i + 1) == Some(&b'\n') {
            return (i + 1, Some(i + 2));
        }
        if raw.get(i + 1..i + 3) == Some(b"\r\n") {
            return (i + 1, Some(i + 3));
        }
    }
    (raw.len(), None)
}

/// One logical line: a physical line with its continuation lines folded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderLine<'a> {
    /// An empty line: the end of a header section, or between field groups.
    Blank,
    /// `name: value`: `name` as written before the first colon (not trimmed); `value` the
    /// rest trimmed, and each continuation line trimmed after one space.
    Field { name: &'a str, value: String },
    /// A line without a colon (its continuation lines are folded into it and dropped).
    Other(&'a str),
}

/// The logical lines of `text`; see [`header_lines`] and [`field_blocks`].
pub struct HeaderLines<'a> {
    lines: std::iter::Peekable<std::str::Split<'a, char>>,
    /// Whether a line of only white space is blank (RFC 3464 blocks) rather than a
    /// continuation line (RFC 5322 obs-FWS).
    spaces_are_blank: bool,
}

/// The logical lines of a header section (RFC 5322): only an empty line is [`HeaderLine::Blank`];
/// a line of white space continues the field before it. Lines end with LF or CRLF.
pub fn header_lines(text: &str) -> HeaderLines<'_> {
    HeaderLines { lines: text.split('\n').peekable(), spaces_are_blank: false }
}

/// The logical lines of groups of fields (RFC 3464 delivery-status bodies, also when copied
/// into a text part): a line of only white space separates groups like an empty one.
pub fn field_blocks(text: &str) -> HeaderLines<'_> {
    HeaderLines { lines: text.split('\n').peekable(), spaces_are_blank: true }
}

impl<'a> HeaderLines<'a> {
    fn is_blank(&self, line: &str) -> bool {
        if self.spaces_are_blank { line.trim().is_empty() } else { line.is_empty() }
    }

    /// The next physical line without its line end, unless it is the empty piece after the
    /// last line end.
    fn physical(&mut self) -> Option<&'a str> {
        let line = self.lines.next()?;
        if line.is_empty() && self.lines.peek().is_none() {
            return None;
        }
        Some(line.strip_suffix('\r').unwrap_or(line))
    }

    /// The continuation lines after the current one, folded into `value` (when given).
    fn unfold(&mut self, mut value: Option<&mut String>) {
        while let Some(next) = self.lines.peek() {
            let next = next.strip_suffix('\r').unwrap_or(next);
            if !next.starts_with([' ', '\t']) || self.is_blank(next) {
                break;
            }
            if let Some(v) = value.as_deref_mut() {
                v.push(' ');
                v.push_str(next.trim());
            }
            self.lines.next();
        }
    }
}

impl<'a> HeaderLines<'a> {
    /// The next logical line, passing over the fields whose name (as written) `keep` refuses
    /// without copying their values.
    pub fn next_kept(&mut self, keep: impl Fn(&str) -> bool) -> Option<HeaderLine<'a>> {
        loop {
            let line = self.physical()?;
            if self.is_blank(line) {
                return Some(HeaderLine::Blank);
            }
            if line.starts_with([' ', '\t']) {
                continue; // a continuation of nothing
            }
            return Some(match line.split_once(':') {
                Some((name, rest)) if keep(name) => {
                    let mut value = rest.trim().to_string();
                    self.unfold(Some(&mut value));
                    HeaderLine::Field { name, value }
                }
                Some(_) => {
                    self.unfold(None);
                    continue;
                }
                None => {
                    self.unfold(None);
                    HeaderLine::Other(line)
                }
            });
        }
    }
}

impl<'a> Iterator for HeaderLines<'a> {
    type Item = HeaderLine<'a>;

    fn next(&mut self) -> Option<HeaderLine<'a>> {
        self.next_kept(|_| true)
    }
}

/// The unfolded value of the first field `name` (case-insensitive, as written) in `headers`,
/// when it is not empty; at most 998 characters (RFC 5322 §2.1.1).
pub fn header_value(headers: &[u8], name: &str) -> Option<String> {
    // Only from the first line that starts `name:`: the lines before it are not unfolded into
    // strings at all (each message passes here a few times on its way in).
    let first = line_starts(headers).find(|&at| {
        headers.get(at..at + name.len()).is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
            && headers.get(at + name.len()) == Some(&b':')
    })?;
    let text = String::from_utf8_lossy(headers.get(first..).unwrap_or_default());
    let value = header_lines(&text).find_map(|line| match line {
        HeaderLine::Field { name: n, value } if n.eq_ignore_ascii_case(name) => Some(value),
        _ => None,
    })?;
    (!value.is_empty()).then(|| value.chars().take(998).collect())
}

/// Where each line of `text` starts (at 0, and after every LF).
pub fn line_starts(text: &[u8]) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0).chain(memchr::memchr_iter(b'\n', text).map(|i| i + 1))
}

/// Whether `name` looks like a field name a report writes: letters, digits and `-`, shorter
/// than 40 characters.
pub fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.len() < 40 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `header_value` as it was: every line unfolded, the first match taken.
    fn header_value_by_every_line(headers: &[u8], name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(headers);
        let value = header_lines(&text).find_map(|line| match line {
            HeaderLine::Field { name: n, value } if n.eq_ignore_ascii_case(name) => Some(value),
            _ => None,
        })?;
        (!value.is_empty()).then(|| value.chars().take(998).collect())
    }

    proptest::proptest! {
        #[test]
        fn header_ends_are_found_as_byte_by_byte(raw in proptest::collection::vec(proptest::sample::select(b"\r\na:".to_vec()), 0..24)) {
            let old_split = {
                let mut found = (raw.len(), None);
                if raw.starts_with(b"\r\n") {
                    found = (0, Some(2));
                } else if raw.starts_with(b"\n") {
                    found = (0, Some(1));
                } else {
                    for (i, w) in raw.windows(2).enumerate() {
                        if w == b"\n\n" {
                            found = (i + 1, Some(i + 2));
                            break;
                        }
                        if w == b"\n\r" && raw.get(i + 2) == Some(&b'\n') {
                            found = (i + 1, Some(i + 3));
                            break;
                        }
                    }
                }
                found
            };
            proptest::prop_assert_eq!(split_header(&raw), old_split);
            let old_end = if raw.starts_with(b"\r\n") {
                2
            } else {
                raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 2).unwrap_or(raw.len())
            };
            proptest::prop_assert_eq!(find_headers_end(&raw), old_end);
        }

        #[test]
        fn header_value_reads_what_unfolding_every_line_reads(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("(Message-ID|message-id|List-Unsubscribe|X-A|Subject|Message-ID ) ?:[ -~]{0,20}").expect("regex"),
                    proptest::string::string_regex("[ \t][ -~]{0,12}").expect("regex"),
                    proptest::string::string_regex("[ -~\u{e9}]{0,16}").expect("regex"),
                ],
                0..8,
            ),
            crlf in proptest::bool::ANY,
        ) {
            let headers = lines.join(if crlf { "\r\n" } else { "\n" });
            for name in ["message-id", "Message-ID", "list-unsubscribe", "x-a", "subject"] {
                proptest::prop_assert_eq!(
                    header_value(headers.as_bytes(), name),
                    header_value_by_every_line(headers.as_bytes(), name),
                    "{:?} in {:?}", name, headers
                );
            }
        }

        #[test]
        fn kept_lines_are_every_line_without_the_passed_fields(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("(From|date|X-A|Subject|Date ) ?:[ -~]{0,20}").expect("regex"),
                    proptest::string::string_regex("[ \t][ -~]{0,12}").expect("regex"),
                    proptest::string::string_regex("[ -~\u{e9}]{0,16}").expect("regex"),
                    proptest::strategy::Just(String::new()),
                ],
                0..10,
            ),
            crlf in proptest::bool::ANY,
        ) {
            let text = lines.join(if crlf { "\r\n" } else { "\n" });
            let keep = |name: &str| name.trim_end().eq_ignore_ascii_case("date");
            let every: Vec<_> = header_lines(&text)
                .filter(|l| !matches!(l, HeaderLine::Field { name, .. } if !keep(name)))
                .collect();
            let mut kept_lines = header_lines(&text);
            let kept: Vec<_> = std::iter::from_fn(|| kept_lines.next_kept(keep)).collect();
            proptest::prop_assert_eq!(kept, every, "{:?}", text);
        }
    }

    fn field(name: &str, value: &str) -> HeaderLine<'static> {
        HeaderLine::Field { name: Box::leak(name.to_string().into_boxed_str()), value: value.to_string() }
    }

    #[test]
    fn fields_are_unfolded_and_other_lines_told_apart() {
        let text =
            " lost\r\nSubject: a\r\n b\r\n\tc\r\nnot a field\r\n more\r\nX-A :  y \r\n \r\nZ: 1\r\n\r\nbody: no\r\n";
        let lines: Vec<_> = header_lines(text).collect();
        assert_eq!(
            lines,
            vec![
                field("Subject", "a b c"),
                HeaderLine::Other("not a field"),
                field("X-A ", "y "),
                field("Z", "1"),
                HeaderLine::Blank,
                field("body", "no"),
            ]
        );
        let blocks: Vec<_> = field_blocks("A: 1\n  \n b\nB: 2").collect();
        assert_eq!(blocks, vec![field("A", "1"), HeaderLine::Blank, field("B", "2")]);
    }

    #[test]
    fn header_helpers() {
        let h = b"Subject: a\r\n b\r\nX: y\r\n\r\nbody";
        assert_eq!(header_value(h, "subject").as_deref(), Some("a b"));
        assert_eq!(header_value(h, "x").as_deref(), Some("y"));
        assert_eq!(header_value(b"Empty:\r\n", "empty"), None);
        assert_eq!(find_headers_end(h), 22);
        assert_eq!(find_headers_end(b"no headers end"), 14);
        assert_eq!(find_headers_end(b"\r\nbody"), 2);
        assert!(is_field_name("Final-Recipient") && !is_field_name("a b") && !is_field_name(""));
    }
}
