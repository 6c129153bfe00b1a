//! The client side of the SMTP wire: reading (multi-line) replies off a connection, and
//! dot-stuffing a message for DATA. Shared by the outbound client and the checklist's RCPT probe.
//!
//! Standards: RFC 5321 §4.2 (reply lines: `250-` continues, `250 ` ends), §4.5.2 (transparency:
//! dot-stuffing), §4.5.3.1.5 (reply line length), §4.5.3.2 (a deadline for every read).
//! Bounded: a reply line longer than 64 KiB is an error, and `ReplyBuilder` keeps at most 100
//! lines of a reply, however many the server sends.
//! Must not: know stages, policy or the crate's other modules; write to the connection.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::reply::{ReplyBuilder, SmtpReply};

/// Bytes of a reply line (and of what is buffered after it) beyond which the server is cut off.
const MAX_LINE: usize = 64 * 1024;

/// Why no reply could be read.
#[derive(Debug)]
pub enum ReadError {
    /// Nothing arrived within the deadline.
    Timeout,
    /// The server closed the connection.
    Closed,
    Io(std::io::Error),
    /// A line that is not a reply line, or a code that changed within a reply.
    Malformed(String),
    /// A line longer than 64 KiB.
    LineTooLong,
}

/// Reads replies off one connection; bytes after a reply stay buffered for the next one
/// (pipelined replies arrive together).
#[derive(Debug, Default)]
pub struct ReplyReader {
    buf: Vec<u8>,
    builder: ReplyBuilder,
}

impl ReplyReader {
    pub fn new() -> ReplyReader {
        ReplyReader { buf: Vec::with_capacity(4096), builder: ReplyBuilder::default() }
    }

    /// Drops what is buffered (after STARTTLS, nothing read before the handshake counts).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The next reply; every line of it (without CRLF) is shown to `each_line` as it comes.
    /// `timeout` bounds each read from `io`.
    pub async fn read<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        io: &mut R,
        timeout: Duration,
        mut each_line: impl FnMut(&str),
    ) -> Result<SmtpReply, ReadError> {
        loop {
            while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&raw);
                let line = line.trim_end_matches(['\r', '\n']);
                each_line(line);
                match self.builder.push(line) {
                    Ok(Some(reply)) => return Ok(reply),
                    Ok(None) => {}
                    Err(e) => return Err(ReadError::Malformed(e)),
                }
            }
            if self.buf.len() > MAX_LINE {
                return Err(ReadError::LineTooLong);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(timeout, io.read(&mut chunk))
                .await
                .map_err(|_| ReadError::Timeout)?
                .map_err(ReadError::Io)?;
            if n == 0 {
                return Err(ReadError::Closed);
            }
            self.buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        }
    }
}

/// Dot-stuffs a message and appends the end-of-data marker; a missing final CRLF is added.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    // Line by line: a line that starts with a dot gets another.
    let mut starts = super::message::line_starts(message).peekable();
    while let Some(start) = starts.next() {
        let end = starts.peek().copied().unwrap_or(message.len());
        let line = message.get(start..end).unwrap_or_default();
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !message.is_empty() && !message.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing() {
        assert_eq!(dot_stuff(b".a\r\nb\r\n.\r\n"), b"..a\r\nb\r\n..\r\n.\r\n");
        assert_eq!(dot_stuff(b"no newline"), b"no newline\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
        assert_eq!(dot_stuff(b"a\r\n."), b"a\r\n..\r\n.\r\n");
        assert_eq!(dot_stuff(b"a\n.b\r\n"), b"a\n..b\r\n.\r\n");
        // Byte by byte, as RFC 5321 §4.5.2 says it: a dot first on a line is doubled.
        let mut rng = 7u64;
        for _ in 0..500 {
            let text: Vec<u8> = (0..64)
                .map(|_| {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    match (rng >> 33) % 4 {
                        0 => b'.',
                        1 => b'\r',
                        2 => b'\n',
                        _ => b'a',
                    }
                })
                .collect();
            let mut want = Vec::new();
            let mut at_line_start = true;
            for &b in &text {
                if at_line_start && b == b'.' {
                    want.push(b'.');
                }
                want.push(b);
                at_line_start = b == b'\n';
            }
            if !text.is_empty() && !text.ends_with(b"\r\n") {
                want.extend_from_slice(b"\r\n");
            }
            want.extend_from_slice(b".\r\n");
            assert_eq!(dot_stuff(&text), want, "{:?}", String::from_utf8_lossy(&text));
        }
    }

    #[tokio::test]
    async fn pipelined_replies_are_read_one_by_one() {
        let mut io: &[u8] = b"250-first\r\n250 5.1.0 second\r\n550 5.1.1 no\r\nbad\r\n";
        let mut reader = ReplyReader::new();
        let mut seen = Vec::new();
        let t = Duration::from_secs(1);
        let r = reader.read(&mut io, t, |l| seen.push(l.to_string())).await.unwrap();
        assert_eq!((r.code, r.lines.len()), (250, 2));
        assert_eq!(seen, ["250-first", "250 5.1.0 second"]);
        let r = reader.read(&mut io, t, |_| {}).await.unwrap();
        assert_eq!((r.code, r.status.map(|s| s.to_string())), (550, Some("5.1.1".into())));
        assert!(matches!(reader.read(&mut io, t, |_| {}).await, Err(ReadError::Malformed(_))));
        assert!(matches!(reader.read(&mut io, t, |_| {}).await, Err(ReadError::Closed)));
    }
}
