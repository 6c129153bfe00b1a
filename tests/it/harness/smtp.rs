//! A transcript SMTP client for tests: `c.cmd("RCPT TO:<x@y>").await.expect("550 5.1.1")`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    /// Every line without the code and separator, e.g. `5.1.1 <x@y>: user unknown`.
    pub lines: Vec<String>,
}

impl Reply {
    /// Asserts that the first line starts with `prefix` (e.g. "550 5.1.1").
    #[track_caller]
    pub fn expect(&self, prefix: &str) -> &Self {
        let first = format!("{} {}", self.code, self.lines.first().map(String::as_str).unwrap_or(""));
        assert!(first.starts_with(prefix), "expected `{prefix}…`, got `{first}`");
        self
    }

    pub fn first(&self) -> String {
        format!("{} {}", self.code, self.lines.first().map(String::as_str).unwrap_or(""))
    }

    /// The queue id a 250 to the end of data names: the last word of its first line
    /// (`2.0.0 Ok: queued as ID`).
    pub fn queue_id(&self) -> String {
        self.lines.first().and_then(|l| l.rsplit(' ').next()).unwrap_or_default().to_string()
    }
}

pub struct Client {
    io: Option<Box<dyn Io>>,
    buf: Vec<u8>,
    pub greeting: Reply,
}

const TIMEOUT: Duration = Duration::from_secs(20);

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Self::over(stream).await
    }

    /// Connects from the loopback address `from` (e.g. 127.0.0.2), to appear as another client.
    pub async fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> Client {
        Self::over(connect_from(from, addr).await.expect("connect")).await
    }

    async fn over(stream: TcpStream) -> Client {
        let mut c = Client { io: Some(Box::new(stream)), buf: Vec::new(), greeting: Reply { code: 0, lines: vec![] } };
        c.greeting = c.read_reply().await;
        c
    }

    fn io(&mut self) -> &mut Box<dyn Io> {
        self.io.as_mut().expect("connection")
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.io().write_all(bytes).await.expect("write");
    }

    pub async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
    }

    /// Sends one command and reads its reply.
    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.send(line).await;
        self.read_reply().await
    }

    /// Reads one line; None at EOF.
    async fn read_line(&mut self) -> Option<String> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                return Some(String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string());
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout(TIMEOUT, self.io().read(&mut chunk)).await.expect("reply in time").ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn read_reply(&mut self) -> Reply {
        self.try_read_reply().await.expect("a reply, not EOF")
    }

    pub async fn try_read_reply(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line().await?;
            let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).expect("reply code");
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if last {
                return Some(Reply { code, lines });
            }
        }
    }

    /// True when the server closed the connection (EOF) within the timeout.
    pub async fn is_closed(&mut self) -> bool {
        let mut chunk = [0u8; 64];
        matches!(tokio::time::timeout(Duration::from_secs(5), self.io().read(&mut chunk)).await, Ok(Ok(0)) | Ok(Err(_)))
    }

    /// EHLO, MAIL, RCPTs, DATA, body; returns the final reply.
    pub async fn send_mail(&mut self, from: &str, to: &[&str], body: &str) -> Reply {
        let rcpts: Vec<String> = to.iter().map(|t| format!("<{t}>")).collect();
        self.send_mail_with(from, &rcpts.iter().map(String::as_str).collect::<Vec<_>>(), body).await
    }

    /// As `send_mail`, with each RCPT TO's whole argument given: the path in brackets and
    /// any parameters (`<a@b.test> NOTIFY=SUCCESS`).
    pub async fn send_mail_with(&mut self, from: &str, rcpt_args: &[&str], body: &str) -> Reply {
        self.cmd("EHLO client.test").await.expect("250");
        self.cmd(&format!("MAIL FROM:<{from}>")).await.expect("250");
        for r in rcpt_args {
            self.cmd(&format!("RCPT TO:{r}")).await.expect("250");
        }
        self.cmd("DATA").await.expect("354");
        self.send_raw(body.as_bytes()).await;
        self.cmd(".").await
    }

    /// Upgrades the connection with STARTTLS, trusting the daemon's self-signed certificate.
    pub async fn starttls(&mut self, cert: &Path) {
        self.cmd("STARTTLS").await.expect("220 2.0.0");
        self.tls_handshake(cert).await;
    }

    /// The TLS handshake alone (after the 220 to STARTTLS was read).
    pub async fn tls_handshake(&mut self, cert: &Path) {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        for c in rustls::pki_types::CertificateDer::pem_file_iter(cert).expect("cert file") {
            roots.add(c.expect("cert")).expect("add root");
        }
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = rustls::pki_types::ServerName::try_from("mx.local.test").expect("name");
        let plain = self.io.take().expect("connection");
        let tls = connector.connect(name, plain).await.expect("TLS handshake");
        self.io = Some(Box::new(tls));
    }
}

/// A TCP connection to `addr` from the loopback address `from` (any of 127.0.0.0/8).
pub async fn connect_from(from: std::net::IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match from {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(addr).await
}

/// AUTH PLAIN initial response for `user`/`pass`.
pub fn plain(user: &str, pass: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"))
}
