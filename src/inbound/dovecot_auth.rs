//! The client side of Dovecot's authentication protocol, for SMTP AUTH with
//! `auth.backend = "dovecot"` (what Postfix does with `smtpd_sasl_type = dovecot`): one
//! connection to Dovecot's `auth-client` unix socket per login attempt, the VERSION/CPID
//! handshake, one `AUTH` request with `service=smtp`, and Dovecot's OK, FAIL or CONT.
//!
//! Standards: Dovecot's auth protocol 1.2 (doc.dovecot.org "Authentication Protocol"): lines of
//! TAB-separated fields, values escaped with `\x01` (`\x01\x01` → `\x01`, `\x01t` → TAB,
//! `\x01n` → LF, `\x01r` → CR), SASL data in base64 (RFC 4648); PLAIN as in RFC 4616.
//! mailerd decodes PLAIN and LOGIN itself (so its limiter sees the login name) and hands Dovecot
//! the credentials as one PLAIN response; a CONT is therefore a protocol error here.
//! `secured` is sent for TLS sessions (AUTH is refused before TLS anyway), with `lip`/`rip`
//! and ports, so Dovecot's own `disable_plaintext_auth`, penalties and logs see the client.
//! Bounded: every line at [`MAX_LINE`] bytes, the handshake at [`MAX_HANDSHAKE_LINES`] lines,
//! the whole exchange at the caller's timeout.
//! Must not: log passwords, touch the store, or decide SMTP replies (`inbound::auth` does).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// The protocol's major version we speak; a server of another major version is refused.
const MAJOR: u32 = 1;
/// Longest line read from the server (Dovecot's own limit for auth lines is 8 KiB).
pub const MAX_LINE: usize = 16 * 1024;
/// Lines the server may send before DONE (one MECH line per mechanism, a few others).
pub const MAX_HANDSHAKE_LINES: usize = 256;
/// The id of our one request on a connection.
const REQUEST_ID: u32 = 1;

/// Escapes a value for a TAB-separated line.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\x01' => out.push_str("\x011"),
            '\t' => out.push_str("\x01t"),
            '\n' => out.push_str("\x01n"),
            '\r' => out.push_str("\x01r"),
            '\0' => out.push_str("\x010"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes [`escape`]; an unknown escape keeps the character after `\x01`.
pub fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\x01' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('1') => out.push('\x01'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// One line the server sends, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLine {
    Version {
        major: u32,
        minor: u32,
    },
    /// A mechanism the server offers (upper-case name).
    Mech(String),
    /// The end of the handshake.
    Done,
    /// The answer to request `id`.
    Answer {
        id: u32,
        answer: Answer,
    },
    /// SPID, CUID, COOKIE and anything newer: not needed by a client that only authenticates.
    Other,
}

/// The server's answer to an AUTH request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Authenticated; `user` is the login as Dovecot normalised it (`auth_username_format`).
    Ok { user: Option<String> },
    /// Refused; `temporary` when Dovecot could not decide (a passdb that is down), so the
    /// client may try again later; `reason` is Dovecot's text for the user, if any.
    Fail { temporary: bool, reason: Option<String> },
    /// The mechanism wants another round (base64 challenge).
    Cont(String),
}

/// What went wrong talking to Dovecot: always a temporary failure for the client.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("connecting to {path}: {error}")]
    Connect { path: PathBuf, error: std::io::Error },
    #[error("talking to the auth server: {0}")]
    Io(#[from] std::io::Error),
    #[error("the auth server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("auth protocol: {0}")]
    Protocol(String),
}

/// Parses one line (without its LF) from the server.
pub fn parse_line(line: &str) -> Result<ServerLine, AuthError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = line.split('\t');
    let command = fields.next().unwrap_or_default();
    let number = |f: Option<&str>, what: &str| -> Result<u32, AuthError> {
        f.and_then(|t| t.parse().ok()).ok_or_else(|| AuthError::Protocol(format!("{command} without a valid {what}")))
    };
    Ok(match command {
        "VERSION" => {
            ServerLine::Version { major: number(fields.next(), "major")?, minor: number(fields.next(), "minor")? }
        }
        "MECH" => ServerLine::Mech(fields.next().unwrap_or_default().to_ascii_uppercase()),
        "DONE" => ServerLine::Done,
        "OK" | "FAIL" => {
            let id = number(fields.next(), "id")?;
            let (mut user, mut reason, mut temporary) = (None, None, false);
            for field in fields {
                let (key, value) = field.split_once('=').unwrap_or((field, ""));
                match key {
                    "user" => user = Some(unescape(value)),
                    "reason" => reason = Some(unescape(value)),
                    // `temp` up to Dovecot 2.2, `code=temp_fail` since 2.3 (Postfix reads both).
                    "temp" => temporary = true,
                    "code" => temporary |= value == "temp_fail",
                    _ => {}
                }
            }
            let answer = if command == "OK" { Answer::Ok { user } } else { Answer::Fail { temporary, reason } };
            ServerLine::Answer { id, answer }
        }
        "CONT" => {
            let id = number(fields.next(), "id")?;
            ServerLine::Answer { id, answer: Answer::Cont(fields.next().unwrap_or_default().to_string()) }
        }
        _ => ServerLine::Other,
    })
}

/// What we tell Dovecot of the client.
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo {
    pub remote: SocketAddr,
    pub local: Option<SocketAddr>,
    /// The session runs over TLS.
    pub secured: bool,
}

/// Our handshake: the protocol version and our process id.
pub fn handshake(pid: u32) -> String {
    format!("VERSION\t{MAJOR}\t2\nCPID\t{pid}\n")
}

/// The AUTH line of request `id`: `mechanism` with an initial response (raw bytes, sent in
/// base64) for `service=smtp`.
pub fn auth_line(id: u32, mechanism: &str, client: &ClientInfo, initial: &[u8]) -> String {
    let mut line = format!("AUTH\t{id}\t{}\tservice=smtp\tnologin", escape(mechanism));
    if client.secured {
        line.push_str("\tsecured");
    }
    if let Some(local) = client.local {
        line.push_str(&format!("\tlip={}\tlport={}", local.ip(), local.port()));
    }
    line.push_str(&format!("\trip={}\trport={}", client.remote.ip(), client.remote.port()));
    line.push_str(&format!("\tresp={}\n", B64.encode(initial)));
    line
}

/// The PLAIN response (RFC 4616) for `user` and `password`, no authorization identity.
pub fn plain_response(user: &str, password: &str) -> Vec<u8> {
    [b"\0".as_slice(), user.as_bytes(), b"\0", password.as_bytes()].concat()
}

/// The outcome of one login at Dovecot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The password is right; the login as Dovecot names it.
    Accepted { user: String },
    /// A wrong password or an unknown user.
    Refused,
    /// Dovecot could not decide now (its `temp` flag).
    TryLater { reason: Option<String> },
}

/// Dovecot's auth-client socket.
#[derive(Debug, Clone)]
pub struct DovecotAuth {
    socket: PathBuf,
    timeout: Duration,
}

impl DovecotAuth {
    pub fn new(socket: PathBuf, timeout: Duration) -> DovecotAuth {
        DovecotAuth { socket, timeout }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Checks `user`'s `password` with Dovecot, over a new connection.
    pub async fn login(&self, client: &ClientInfo, user: &str, password: &str) -> Result<Verdict, AuthError> {
        let exchange = async {
            let stream = UnixStream::connect(&self.socket)
                .await
                .map_err(|error| AuthError::Connect { path: self.socket.clone(), error })?;
            exchange(stream, client, user, password).await
        };
        tokio::time::timeout(self.timeout, exchange).await.map_err(|_| AuthError::Timeout(self.timeout))?
    }
}

/// The whole exchange over a connected stream (unix socket, or a test's duplex pipe).
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    client: &ClientInfo,
    user: &str,
    password: &str,
) -> Result<Verdict, AuthError> {
    let mut stream = BufReader::new(stream);
    stream.get_mut().write_all(handshake(std::process::id()).as_bytes()).await?;
    let mut plain = false;
    let mut version = false;
    for _ in 0..MAX_HANDSHAKE_LINES {
        match parse_line(&read_line(&mut stream).await?)? {
            ServerLine::Version { major, .. } if major != MAJOR => {
                return Err(AuthError::Protocol(format!("server speaks version {major}, we speak {MAJOR}")));
            }
            ServerLine::Version { .. } => version = true,
            ServerLine::Mech(m) => plain |= m == "PLAIN",
            ServerLine::Done => break,
            ServerLine::Answer { .. } => return Err(AuthError::Protocol("an answer before DONE".into())),
            ServerLine::Other => {}
        }
    }
    if !version {
        return Err(AuthError::Protocol("no VERSION before DONE".into()));
    }
    if !plain {
        return Err(AuthError::Protocol("the server does not offer PLAIN (auth_mechanisms)".into()));
    }
    let line = auth_line(REQUEST_ID, "PLAIN", client, &plain_response(user, password));
    stream.get_mut().write_all(line.as_bytes()).await?;
    loop {
        match parse_line(&read_line(&mut stream).await?)? {
            ServerLine::Answer { id, answer } if id == REQUEST_ID => {
                return match answer {
                    Answer::Ok { user: name } => {
                        Ok(Verdict::Accepted { user: name.unwrap_or_else(|| user.to_string()) })
                    }
                    Answer::Fail { temporary: true, reason } => Ok(Verdict::TryLater { reason }),
                    Answer::Fail { temporary: false, .. } => Ok(Verdict::Refused),
                    Answer::Cont(_) => Err(AuthError::Protocol("CONT to a complete PLAIN response".into())),
                };
            }
            ServerLine::Answer { id, .. } => return Err(AuthError::Protocol(format!("an answer to request {id}"))),
            _ => {}
        }
    }
}

/// One line without its LF; Err at end of stream or beyond [`MAX_LINE`].
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Result<String, AuthError> {
    let mut buf = Vec::new();
    let mut limited = AsyncReadExt::take(reader, MAX_LINE as u64 + 1);
    let n = limited.read_until(b'\n', &mut buf).await?;
    if n == 0 {
        return Err(AuthError::Protocol("the server closed the connection".into()));
    }
    if buf.last() != Some(&b'\n') {
        return Err(AuthError::Protocol(if n > MAX_LINE { "line too long".into() } else { "truncated line".into() }));
    }
    buf.pop();
    String::from_utf8(buf).map_err(|_| AuthError::Protocol("a line that is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_escape_and_unescape() {
        let raw = "a\tb\nc\rd\x01e\0f";
        let escaped = escape(raw);
        assert!(!escaped.contains(['\t', '\n', '\r', '\0']), "{escaped:?}");
        assert_eq!(escaped, "a\x01tb\x01nc\x01rd\x011e\x010f");
        assert_eq!(unescape(&escaped), raw);
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape("dangling\x01"), "dangling");
    }

    #[test]
    fn server_lines_parse() {
        assert_eq!(parse_line("VERSION\t1\t2").unwrap(), ServerLine::Version { major: 1, minor: 2 });
        assert_eq!(parse_line("MECH\tplain\tplaintext").unwrap(), ServerLine::Mech("PLAIN".into()));
        assert_eq!(parse_line("SPID\t123").unwrap(), ServerLine::Other);
        assert_eq!(parse_line("COOKIE\tabcdef").unwrap(), ServerLine::Other);
        assert_eq!(parse_line("DONE").unwrap(), ServerLine::Done);
        assert_eq!(
            parse_line("OK\t7\tuser=bob@local.test").unwrap(),
            ServerLine::Answer { id: 7, answer: Answer::Ok { user: Some("bob@local.test".into()) } }
        );
        assert_eq!(
            parse_line("FAIL\t1\tuser=bob\tauthz").unwrap(),
            ServerLine::Answer { id: 1, answer: Answer::Fail { temporary: false, reason: None } }
        );
        assert_eq!(
            parse_line("FAIL\t1\ttemp\treason=passdb\x01tdown").unwrap(),
            ServerLine::Answer { id: 1, answer: Answer::Fail { temporary: true, reason: Some("passdb\tdown".into()) } }
        );
        assert_eq!(
            parse_line("FAIL\t1\tuser=bob\tcode=temp_fail").unwrap(),
            ServerLine::Answer { id: 1, answer: Answer::Fail { temporary: true, reason: None } }
        );
        assert_eq!(
            parse_line("FAIL\t1\tcode=authz_fail").unwrap(),
            ServerLine::Answer { id: 1, answer: Answer::Fail { temporary: false, reason: None } }
        );
        assert_eq!(
            parse_line("CONT\t3\tVXNlcm5hbWU6").unwrap(),
            ServerLine::Answer { id: 3, answer: Answer::Cont("VXNlcm5hbWU6".into()) }
        );
        for bad in ["VERSION", "VERSION\tx\t2", "OK", "OK\tnot-a-number", "CONT"] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_line("").unwrap(), ServerLine::Other);
    }

    #[test]
    fn requests_carry_service_client_and_base64_response() {
        let client = ClientInfo {
            remote: "192.0.2.7:40000".parse().unwrap(),
            local: Some("127.0.0.1:587".parse().unwrap()),
            secured: true,
        };
        let line = auth_line(1, "PLAIN", &client, &plain_response("bob@local.test", "pw\tx"));
        assert_eq!(
            line,
            format!(
                "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tsecured\tlip=127.0.0.1\tlport=587\trip=192.0.2.7\trport=40000\tresp={}\n",
                B64.encode("\0bob@local.test\0pw\tx")
            )
        );
        let plain = ClientInfo { local: None, secured: false, ..client };
        let line = auth_line(2, "PLAIN", &plain, b"");
        assert!(!line.contains("secured") && !line.contains("lip=") && line.ends_with("\tresp=\n"), "{line}");
        assert_eq!(handshake(42), "VERSION\t1\t2\nCPID\t42\n");
    }

    /// Runs `exchange` against a scripted server: it sends `greeting`, reads our handshake and
    /// AUTH line, then sends `answer` (which may use `{id}`).
    async fn scripted(greeting: &str, answer: &str) -> (Result<Verdict, AuthError>, String) {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let greeting = greeting.to_string();
        let answer = answer.to_string();
        let server = tokio::spawn(async move {
            let _ = theirs.write_all(greeting.as_bytes()).await;
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while seen.iter().filter(|b| **b == b'\n').count() < 3 {
                let n = theirs.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            let _ = theirs.write_all(answer.as_bytes()).await;
            String::from_utf8_lossy(&seen).into_owned()
        });
        let client = ClientInfo { remote: "127.0.0.1:1234".parse().unwrap(), local: None, secured: true };
        let verdict = exchange(ours, &client, "bob@local.test", "pw").await;
        (verdict, server.await.unwrap())
    }

    const GREETING: &str =
        "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t9\nCUID\t1\nCOOKIE\tab\nDONE\n";

    #[tokio::test]
    async fn ok_fail_and_temporary_failure() {
        let (v, seen) = scripted(GREETING, "OK\t1\tuser=Bob@local.test\n").await;
        assert_eq!(v.unwrap(), Verdict::Accepted { user: "Bob@local.test".into() });
        assert!(seen.starts_with("VERSION\t1\t2\nCPID\t"), "{seen}");
        assert!(seen.contains("AUTH\t1\tPLAIN\tservice=smtp"), "{seen}");
        let (v, _) = scripted(GREETING, "FAIL\t1\tuser=bob@local.test\n").await;
        assert_eq!(v.unwrap(), Verdict::Refused);
        let (v, _) = scripted(GREETING, "FAIL\t1\ttemp\treason=try later\n").await;
        assert_eq!(v.unwrap(), Verdict::TryLater { reason: Some("try later".into()) });
    }

    #[tokio::test]
    async fn protocol_trouble_is_an_error_not_a_verdict() {
        let wrong_version = "VERSION\t2\t0\nMECH\tPLAIN\nDONE\n";
        assert!(matches!(scripted(wrong_version, "").await.0, Err(AuthError::Protocol(_))));
        let no_plain = "VERSION\t1\t2\nMECH\tCRAM-MD5\nDONE\n";
        assert!(matches!(scripted(no_plain, "").await.0, Err(AuthError::Protocol(_))));
        assert!(matches!(scripted(GREETING, "CONT\t1\t\n").await.0, Err(AuthError::Protocol(_))));
        assert!(matches!(scripted(GREETING, "OK\t2\n").await.0, Err(AuthError::Protocol(_))));
        // The server closes without answering.
        assert!(matches!(scripted(GREETING, "").await.0, Err(AuthError::Protocol(_))));
        let long = format!("VERSION\t1\t2\nMECH\t{}\nDONE\n", "X".repeat(MAX_LINE + 10));
        assert!(matches!(scripted(&long, "").await.0, Err(AuthError::Protocol(_))));
    }

    #[tokio::test]
    async fn a_missing_socket_is_a_connect_error() {
        let auth = DovecotAuth::new(PathBuf::from("/nonexistent/auth-client"), Duration::from_secs(1));
        let client = ClientInfo { remote: "127.0.0.1:1".parse().unwrap(), local: None, secured: true };
        assert!(matches!(auth.login(&client, "a@b.test", "x").await, Err(AuthError::Connect { .. })));
    }
}
