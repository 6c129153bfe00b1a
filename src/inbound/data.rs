//! The DATA body reader: finds the end of data, undoes dot-stuffing, and caps the size.
//!
//! Standards: RFC 5321 §4.1.1.4 (end of data is CRLF "." CRLF), §4.5.2 (transparency).
//! Only a "." line that follows a CRLF ends the data: a bare-LF variant never does (SMTP
//! smuggling). Past `max` bytes the body is dropped and the rest is only scanned for the end,
//! so an oversized message costs no memory (552 5.3.4 is then sent after the end).
//! Must not: do I/O; the connection feeds it bytes.

/// A partial line at least this long is passed on before its end is seen.
const MIN_PARTIAL: usize = 3;

#[derive(Debug)]
pub struct DataReader {
    max: u64,
    body: Vec<u8>,
    data_bytes: u64,
    too_large: bool,
    at_line_start: bool,
    /// The last two raw bytes seen, to know whether a line began after a CRLF.
    last_two: [u8; 2],
}

#[derive(Debug, PartialEq, Eq)]
pub enum Feed {
    /// The end was not found; `consumed` bytes were used, keep the rest and read more.
    NeedMore { consumed: usize },
    /// The end was found after `consumed` bytes; anything after it is the next command.
    Done { consumed: usize },
}

impl DataReader {
    /// `prefix` (e.g. our Received header) starts the stored message and is not counted.
    pub fn new(max: u64, prefix: Vec<u8>) -> Self {
        Self { max, body: prefix, data_bytes: 0, too_large: false, at_line_start: true, last_two: *b"\r\n" }
    }

    pub fn feed(&mut self, buf: &[u8]) -> Feed {
        let mut pos = 0;
        while let Some(rest) = buf.get(pos..).filter(|r| !r.is_empty()) {
            match rest.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    let line = rest.get(..=nl).unwrap_or(rest);
                    let after_crlf = self.last_two == *b"\r\n";
                    if self.at_line_start && after_crlf && line == b".\r\n" {
                        return Feed::Done { consumed: pos + line.len() };
                    }
                    self.push_line_part(line, after_crlf);
                    self.at_line_start = true;
                    pos += line.len();
                }
                None if !self.at_line_start || rest.len() >= MIN_PARTIAL => {
                    let after_crlf = self.last_two == *b"\r\n";
                    self.push_line_part(rest, after_crlf);
                    self.at_line_start = false;
                    pos += rest.len();
                }
                None => break,
            }
        }
        Feed::NeedMore { consumed: pos }
    }

    /// `after_crlf`: the part starts a line that follows a CRLF, the only kind of line
    /// dot-stuffing applies to; a line after a bare LF keeps its leading dot.
    fn push_line_part(&mut self, raw: &[u8], after_crlf: bool) {
        if let [.., a, b] = raw {
            self.last_two = [*a, *b];
        } else if let [b] = raw {
            self.last_two = [self.last_two[1], *b];
        }
        let content = match raw.split_first() {
            Some((b'.', rest)) if self.at_line_start && after_crlf => rest,
            _ => raw,
        };
        self.data_bytes += content.len() as u64;
        if self.too_large {
            return;
        }
        if self.data_bytes > self.max {
            self.too_large = true;
            self.body = Vec::new();
            return;
        }
        self.body.extend_from_slice(content);
    }

    pub fn too_large(&self) -> bool {
        self.too_large
    }

    /// Data bytes received (after unstuffing), counted even when the body was dropped.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    pub fn into_message(self) -> Vec<u8> {
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(max: u64, chunks: &[&[u8]]) -> (DataReader, Vec<u8>) {
        let mut r = DataReader::new(max, Vec::new());
        let mut pending = Vec::new();
        for c in chunks {
            pending.extend_from_slice(c);
            match r.feed(&pending) {
                Feed::NeedMore { consumed } => {
                    pending.drain(..consumed);
                }
                Feed::Done { consumed } => {
                    pending.drain(..consumed);
                    return (r, pending);
                }
            }
        }
        panic!("no end of data");
    }

    #[test]
    fn unstuffs_and_stops_at_the_dot() {
        let (r, rest) = run(1000, &[b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n"]);
        assert_eq!(r.into_message(), b"Subject: x\r\n\r\n.dot\r\n");
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[test]
    fn end_split_across_reads() {
        let (r, _) = run(1000, &[b"a\r", b"\n", b".", b"\r", b"\n"]);
        assert_eq!(r.into_message(), b"a\r\n");
        let (r, _) = run(1000, &[b".\r\n"]);
        assert_eq!(r.into_message(), b"");
    }

    #[test]
    fn bare_lf_dot_does_not_end_data() {
        let (r, _) = run(1000, &[b"a\n.\r\nMAIL FROM:<evil@x>\r\n\r\n.\r\n"]);
        let msg = r.into_message();
        assert!(msg.windows(4).any(|w| w == b"MAIL"), "smuggled command must stay in the body");
        let (r, _) = run(1000, &[b"a\r\n.\nb\r\n.\r\n"]);
        assert_eq!(r.into_message(), b"a\r\n\nb\r\n");
    }

    #[test]
    fn a_dot_after_a_bare_lf_is_data_and_stays() {
        let (r, _) = run(1000, &[b"a\n.\r\nb\n..c\r\n.\r\n"]);
        assert_eq!(r.into_message(), b"a\n.\r\nb\n..c\r\n");
        // Split between reads, too.
        let (r, _) = run(1000, &[b"a\n", b".", b"\r\n", b".\r\n"]);
        assert_eq!(r.into_message(), b"a\n.\r\n");
    }

    #[test]
    fn long_lines_stream_without_an_end() {
        let long = vec![b'x'; 10_000];
        let (r, _) = run(100_000, &[&long, b"\r\n.\r\n"]);
        assert_eq!(r.data_bytes(), 10_002);
    }

    #[test]
    fn oversized_body_is_dropped_but_scanned() {
        let big = vec![b'y'; 5000];
        let (r, rest) = run(1000, &[&big, b"\r\n", &big, b"\r\n.\r\nRSET\r\n"]);
        assert!(r.too_large());
        assert_eq!(rest, b"RSET\r\n");
        assert!(r.into_message().is_empty());
    }

    #[test]
    fn prefix_is_not_counted() {
        let mut r = DataReader::new(3, b"Received: x\r\n".to_vec());
        assert_eq!(r.feed(b"ab\r\n.\r\n"), Feed::Done { consumed: 7 });
        assert!(r.too_large(), "4 data bytes exceed 3");
        let mut r = DataReader::new(4, b"Received: x\r\n".to_vec());
        assert_eq!(r.feed(b"ab\r\n.\r\n"), Feed::Done { consumed: 7 });
        assert_eq!(r.into_message(), b"Received: x\r\nab\r\n");
    }
}
