//! The SMTP client of outbound delivery: one connection to one remote host.
//!
//! Standards: RFC 5321 (§4.5.3.2 per-stage timeouts, §4.5.2 dot-stuffing), RFC 2920 (MAIL,
//! every RCPT and DATA are sent in one write when the server offers PIPELINING), RFC 3207
//! (opportunistic STARTTLS, or required per route), RFC 8461 §4.2 (under an MTA-STS policy the
//! certificate is checked for the MX name by `trust::Trust` before EHLO is repeated), RFC 7672
//! §2.3 and §3 (under DANE, STARTTLS is required, SNI is the MX host name, and the chain is
//! checked against the TLSA records by `dane::DaneHost` before EHLO is repeated), RFC 1870 (SIZE: a message larger than the
//! server's limit is not sent), RFC 3461 (DSN parameters are passed on when offered).
//! Replies are read and messages dot-stuffed by `smtp::codec` (shared with the checklist's probe).
//! Every recipient gets the complete reply it received (code, status, all lines).
//! Must not: decide retry or bounce (that is `outcome`), or touch the store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub use super::outcome::Stage;
use crate::config::TlsMode;
use crate::smtp::codec::{ReadError, ReplyReader, dot_stuff};
use crate::smtp::command::{Notify, Ret};
use crate::smtp::reply::SmtpReply;
use crate::tlspolicy::TlsResult;

/// A policy's demand on the TLS of a connection: the certificate is checked (against `trust`
/// for the MX name under MTA-STS, against the host's TLSA records under DANE); with `enforce` a
/// failure ends the connection before any mail is sent, without it (MTA-STS testing) the
/// connection goes on and the result is kept in `tls_check`.
pub struct Verify<'a> {
    pub check: Check<'a>,
    pub enforce: bool,
}

/// How the certificate chain is checked.
pub enum Check<'a> {
    /// For the MX name, to the trusted roots (MTA-STS, RFC 8461 §4.2).
    Pkix(&'a super::trust::Trust),
    /// Against the MX host's TLSA records (DANE, RFC 7672 §3).
    Dane(&'a super::dane::DaneHost),
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("{stage} failed: {source}", stage = .0.as_str(), source = .1)]
    Io(Stage, std::io::Error),
    #[error("timeout at {stage}", stage = .0.as_str())]
    Timeout(Stage),
    #[error("{stage}: {reply}", stage = .0.as_str(), reply = .1)]
    Rejected(Stage, SmtpReply),
    #[error("protocol error at {stage}: {detail}", stage = .0.as_str(), detail = .1)]
    Protocol(Stage, String),
    #[error("TLS is required for this destination but {0}")]
    TlsRequired(String),
    /// The TLS a policy requires could not be had: its RFC 8460 result type, what happened, and
    /// our end of the connection (for the TLS report's `sending-mta-ip`).
    #[error("{detail}")]
    TlsPolicy { result: TlsResult, detail: String, local: Option<std::net::SocketAddr> },
    #[error("message of {size} bytes exceeds the server's SIZE limit of {limit}")]
    TooLarge { size: u64, limit: u64 },
}

#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    pub pipelining: bool,
    pub starttls: bool,
    pub size: Option<u64>,
    pub eightbitmime: bool,
    pub smtputf8: bool,
    pub dsn: bool,
}

impl Capabilities {
    /// The extensions an EHLO (or LMTP's LHLO) reply lists.
    pub fn from_ehlo(reply: &SmtpReply) -> Self {
        let mut caps = Capabilities::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let keyword = words.next().unwrap_or("").to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => caps.pipelining = true,
                "STARTTLS" => caps.starttls = true,
                "8BITMIME" => caps.eightbitmime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "DSN" => caps.dsn = true,
                "SIZE" => caps.size = words.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0),
                _ => {}
            }
        }
        caps
    }
}

#[derive(Debug, Clone)]
pub struct Timeouts {
    pub connect: Duration,
    pub command: Duration,
    pub data_end: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        // RFC 5321 §4.5.3.2: 5 minutes per command, 10 minutes for the final reply to DATA.
        Self { connect: Duration::from_secs(30), command: Duration::from_secs(300), data_end: Duration::from_secs(600) }
    }
}

/// The remote end of a connection, for logs, events and DSNs (Remote-MTA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHost {
    pub name: String,
    pub addr: SocketAddr,
}

impl std::fmt::Display for RemoteHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]:{}", self.name, self.addr.ip(), self.addr.port())
    }
}

/// What to send in one transaction.
pub struct Envelope<'a> {
    /// Empty for the null reverse path.
    pub reverse_path: &'a str,
    pub recipients: Vec<RcptSpec<'a>>,
    pub envid: Option<&'a str>,
    pub ret: Option<Ret>,
    pub message: &'a [u8],
}

pub struct RcptSpec<'a> {
    pub address: &'a str,
    pub notify: Option<Notify>,
    pub orcpt: Option<&'a str>,
}

/// The result of one transaction: per recipient, its RCPT reply, and the final reply to
/// the data for those accepted (None when the transaction ended before data was sent).
#[derive(Debug, Clone)]
pub struct TransactionResult {
    pub mail: SmtpReply,
    pub rcpts: Vec<SmtpReply>,
    pub data: Option<SmtpReply>,
    /// The stage `data` answered: DATA (the command was refused) or the end of data.
    pub data_stage: Stage,
}

/// One client end of an SMTP or LMTP conversation: the stream, its reply reader and the
/// timeouts every write and reply wait is bounded by (shared by `Connection` and LMTP).
pub struct Wire {
    pub io: Box<dyn Io>,
    replies: ReplyReader,
    pub timeouts: Timeouts,
}

impl Wire {
    pub fn new(io: Box<dyn Io>, timeouts: Timeouts) -> Wire {
        Wire { io, replies: ReplyReader::new(), timeouts }
    }

    pub async fn write(&mut self, bytes: &[u8], stage: Stage) -> Result<(), ClientError> {
        tokio::time::timeout(self.timeouts.command, async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        })
        .await
        .map_err(|_| ClientError::Timeout(stage))?
        .map_err(|e| ClientError::Io(stage, e))
    }

    pub async fn command(&mut self, line: &str, stage: Stage) -> Result<SmtpReply, ClientError> {
        self.write(format!("{line}\r\n").as_bytes(), stage).await?;
        self.read_reply(stage).await
    }

    /// The next reply; the one after the end of data waits `data_end`, every other `command`.
    pub async fn read_reply(&mut self, stage: Stage) -> Result<SmtpReply, ClientError> {
        let timeout = if stage == Stage::EndOfData { self.timeouts.data_end } else { self.timeouts.command };
        self.replies.read(&mut *self.io, timeout, |_| {}).await.map_err(|e| match e {
            ReadError::Timeout => ClientError::Timeout(stage),
            ReadError::Closed => ClientError::Io(stage, std::io::ErrorKind::UnexpectedEof.into()),
            ReadError::Io(e) => ClientError::Io(stage, e),
            ReadError::Malformed(e) => ClientError::Protocol(stage, e),
            ReadError::LineTooLong => ClientError::Protocol(stage, "reply line too long".into()),
        })
    }
}

pub struct Connection {
    wire: Wire,
    pub remote: RemoteHost,
    pub caps: Capabilities,
    pub tls: bool,
    pub transactions: u32,
    /// The certificates the server showed in the TLS handshake (end entity first).
    peer_certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Under a policy: whether TLS met it (`Verify`), else None.
    pub tls_check: Option<Result<(), (TlsResult, String)>>,
    /// The TLS policy this connection was opened under and how it went, for the journey.
    pub tls_policy: Option<String>,
    /// Our end of the connection (the `sending-mta-ip` of a TLS report).
    pub local: Option<std::net::SocketAddr>,
}

impl Connection {
    /// Connects, reads the greeting, says EHLO (HELO when refused) and negotiates TLS.
    pub async fn open(
        remote: RemoteHost,
        helo: &str,
        tls_mode: TlsMode,
        tls: &tokio_rustls::TlsConnector,
        verify: Option<Verify<'_>>,
        timeouts: Timeouts,
    ) -> Result<Connection, ClientError> {
        let stream = tokio::time::timeout(timeouts.connect, TcpStream::connect(remote.addr))
            .await
            .map_err(|_| ClientError::Timeout(Stage::Connect))?
            .map_err(|e| ClientError::Io(Stage::Connect, e))?;
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        let mut c = Connection {
            wire: Wire::new(Box::new(stream), timeouts),
            remote,
            caps: Capabilities::default(),
            tls: false,
            transactions: 0,
            peer_certs: Vec::new(),
            tls_check: None,
            tls_policy: None,
            local,
        };
        let greeting = c.read_reply(Stage::Greeting).await?;
        if greeting.code != 220 {
            return Err(ClientError::Rejected(Stage::Greeting, greeting));
        }
        c.hello(helo).await?;
        let enforce = verify.as_ref().is_some_and(|v| v.enforce);
        let tls_mode = if enforce { TlsMode::Required } else { tls_mode };
        let wants_tls = tls_mode != TlsMode::Off && (c.caps.starttls || tls_mode == TlsMode::Required);
        if wants_tls {
            let result = c.starttls(helo, tls, verify.as_ref()).await;
            if result.is_err() {
                crate::metrics::tls_error();
            }
            match result {
                Ok(()) => {}
                Err(e @ ClientError::TlsPolicy { .. }) => return Err(e),
                Err(ClientError::Protocol(Stage::StartTls, d)) if enforce => {
                    let detail = format!("{}: {d}", c.remote);
                    return Err(ClientError::TlsPolicy {
                        result: TlsResult::StartTlsNotSupported,
                        detail,
                        local: c.local,
                    });
                }
                Err(ClientError::Rejected(Stage::StartTls, reply)) if enforce => {
                    let detail = format!("{}: STARTTLS refused: {reply}", c.remote);
                    return Err(ClientError::TlsPolicy {
                        result: TlsResult::StartTlsNotSupported,
                        detail,
                        local: c.local,
                    });
                }
                Err(ClientError::Io(Stage::StartTls, e)) if enforce => {
                    let detail = format!("{}: TLS handshake failed: {e}", c.remote);
                    return Err(ClientError::TlsPolicy {
                        result: TlsResult::ValidationFailure,
                        detail,
                        local: c.local,
                    });
                }
                Err(e) if tls_mode == TlsMode::Required => return Err(ClientError::TlsRequired(e.to_string())),
                Err(e) => return Err(e),
            }
        } else if verify.is_some() {
            let detail = format!("{}: the server does not offer STARTTLS", c.remote);
            c.tls_check = Some(Err((TlsResult::StartTlsNotSupported, detail)));
        }
        Ok(c)
    }

    async fn hello(&mut self, helo: &str) -> Result<(), ClientError> {
        let ehlo = self.command(&format!("EHLO {helo}"), Stage::Ehlo).await?;
        if ehlo.code == 250 {
            self.caps = Capabilities::from_ehlo(&ehlo);
            return Ok(());
        }
        if ehlo.code >= 500 {
            let helo_reply = self.command(&format!("HELO {helo}"), Stage::Ehlo).await?;
            if helo_reply.code == 250 {
                self.caps = Capabilities::default();
                return Ok(());
            }
            return Err(ClientError::Rejected(Stage::Ehlo, helo_reply));
        }
        Err(ClientError::Rejected(Stage::Ehlo, ehlo))
    }

    async fn starttls(
        &mut self,
        helo: &str,
        tls: &tokio_rustls::TlsConnector,
        verify: Option<&Verify<'_>>,
    ) -> Result<(), ClientError> {
        if !self.caps.starttls {
            return Err(ClientError::Protocol(Stage::StartTls, "the server does not offer STARTTLS".into()));
        }
        let reply = self.command("STARTTLS", Stage::StartTls).await?;
        if reply.code != 220 {
            return Err(ClientError::Rejected(Stage::StartTls, reply));
        }
        self.wire.replies.clear();
        let name = rustls::pki_types::ServerName::try_from(self.remote.name.clone())
            .or_else(|_| rustls::pki_types::ServerName::try_from(self.remote.addr.ip().to_string()))
            .map_err(|e| ClientError::Protocol(Stage::StartTls, e.to_string()))?;
        let plain =
            std::mem::replace(&mut self.wire.io, Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink())));
        let stream = tokio::time::timeout(self.wire.timeouts.command, tls.connect(name, plain))
            .await
            .map_err(|_| ClientError::Timeout(Stage::StartTls))?
            .map_err(|e| ClientError::Io(Stage::StartTls, e))?;
        self.peer_certs = stream
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        self.wire.io = Box::new(stream);
        self.tls = true;
        if let Some(v) = verify {
            let check = match v.check {
                Check::Pkix(trust) => trust.check(&self.remote.name, &self.peer_certs),
                Check::Dane(host) => host.check(&self.peer_certs, rustls::pki_types::UnixTime::now()),
            };
            if let (true, Err((result, detail))) = (v.enforce, &check) {
                let detail = format!("{}: {detail}", self.remote);
                return Err(ClientError::TlsPolicy { result: *result, detail, local: self.local });
            }
            self.tls_check = Some(check);
        }
        self.hello(helo).await
    }

    async fn write(&mut self, bytes: &[u8], stage: Stage) -> Result<(), ClientError> {
        self.wire.write(bytes, stage).await
    }

    async fn command(&mut self, line: &str, stage: Stage) -> Result<SmtpReply, ClientError> {
        self.wire.command(line, stage).await
    }

    async fn read_reply(&mut self, stage: Stage) -> Result<SmtpReply, ClientError> {
        self.wire.read_reply(stage).await
    }

    /// Runs one mail transaction. A refusal of the whole transaction (MAIL or DATA) is not an
    /// error: it is in the result, for every recipient.
    pub async fn send(&mut self, env: &Envelope<'_>) -> Result<TransactionResult, ClientError> {
        let size = env.message.len() as u64;
        if let Some(limit) = self.caps.size
            && size > limit
        {
            return Err(ClientError::TooLarge { size, limit });
        }
        let eight_bit = env.message.iter().any(|b| *b >= 0x80);
        let mut mail = format!("MAIL FROM:<{}>", env.reverse_path);
        if self.caps.size.is_some() {
            mail.push_str(&format!(" SIZE={size}"));
        }
        if eight_bit && self.caps.eightbitmime {
            mail.push_str(" BODY=8BITMIME");
        }
        if self.caps.smtputf8 && !env.reverse_path.is_ascii() || env.recipients.iter().any(|r| !r.address.is_ascii()) {
            mail.push_str(" SMTPUTF8");
        }
        if self.caps.dsn {
            match env.ret {
                Some(Ret::Full) => mail.push_str(" RET=FULL"),
                Some(Ret::Hdrs) => mail.push_str(" RET=HDRS"),
                None => {}
            }
            if let Some(envid) = env.envid {
                mail.push_str(&format!(" ENVID={}", crate::smtp::xtext::encode(envid)));
            }
        }
        let rcpt_lines: Vec<String> = env
            .recipients
            .iter()
            .map(|r| {
                let mut line = format!("RCPT TO:<{}>", r.address);
                if self.caps.dsn {
                    if let Some(n) = r.notify {
                        line.push_str(&format!(" NOTIFY={}", n.render()));
                    }
                    if let Some(o) = r.orcpt {
                        line.push_str(&format!(" ORCPT={}", orcpt_param(o)));
                    }
                }
                line
            })
            .collect();
        self.transactions += 1;
        let (mail_reply, rcpts, data_reply) = if self.caps.pipelining {
            let mut batch = format!("{mail}\r\n");
            for l in &rcpt_lines {
                batch.push_str(l);
                batch.push_str("\r\n");
            }
            batch.push_str("DATA\r\n");
            self.write(batch.as_bytes(), Stage::MailFrom).await?;
            let mail_reply = self.read_reply(Stage::MailFrom).await?;
            let mut rcpts = Vec::with_capacity(rcpt_lines.len());
            for _ in &rcpt_lines {
                rcpts.push(self.read_reply(Stage::RcptTo).await?);
            }
            let data = self.read_reply(Stage::Data).await?;
            (mail_reply, rcpts, data)
        } else {
            let mail_reply = self.command(&mail, Stage::MailFrom).await?;
            if !mail_reply.is_positive() {
                let rcpts = vec![mail_reply.clone(); rcpt_lines.len()];
                self.reset().await;
                return Ok(TransactionResult { mail: mail_reply, rcpts, data: None, data_stage: Stage::Data });
            }
            let mut rcpts = Vec::with_capacity(rcpt_lines.len());
            for l in &rcpt_lines {
                rcpts.push(self.command(l, Stage::RcptTo).await?);
            }
            if !rcpts.iter().any(SmtpReply::is_positive) {
                self.reset().await;
                return Ok(TransactionResult { mail: mail_reply, rcpts, data: None, data_stage: Stage::Data });
            }
            let data = self.command("DATA", Stage::Data).await?;
            (mail_reply, rcpts, data)
        };
        if !mail_reply.is_positive() || !rcpts.iter().any(SmtpReply::is_positive) || data_reply.code != 354 {
            if data_reply.code == 354 {
                // Pipelined DATA was accepted although no recipient was: end it empty (RFC 2920 §3.1).
                self.write(b".\r\n", Stage::EndOfData).await?;
                let _ = self.read_reply(Stage::EndOfData).await?;
            }
            self.reset().await;
            let rcpts = if mail_reply.is_positive() { rcpts } else { vec![mail_reply.clone(); rcpts.len()] };
            let data = if data_reply.code == 354 || !rcpts.iter().any(SmtpReply::is_positive) {
                None
            } else {
                Some(data_reply)
            };
            return Ok(TransactionResult { mail: mail_reply, rcpts, data, data_stage: Stage::Data });
        }
        let stuffed = dot_stuff(env.message);
        self.write(&stuffed, Stage::EndOfData).await?;
        let final_reply = self.read_reply(Stage::EndOfData).await?;
        Ok(TransactionResult { mail: mail_reply, rcpts, data: Some(final_reply), data_stage: Stage::EndOfData })
    }

    /// RSET after a failed transaction; the connection stays usable when it answers 250.
    async fn reset(&mut self) {
        let _ = self.command("RSET", Stage::MailFrom).await;
    }

    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.command("QUIT", Stage::Ehlo)).await;
        let _ = self.wire.io.shutdown().await;
    }
}

/// ORCPT's value: addr-type `;` xtext(address).
fn orcpt_param(orcpt: &str) -> String {
    match orcpt.split_once(';') {
        Some((kind, addr)) => format!("{kind};{}", crate::smtp::xtext::encode(addr)),
        None => format!("rfc822;{}", crate::smtp::xtext::encode(orcpt)),
    }
}

/// A client TLS configuration for opportunistic STARTTLS: encryption without certificate
/// verification (RFC 7435 opportunistic security; MX certificates are often self-signed).
pub fn opportunistic_tls() -> tokio_rustls::TlsConnector {
    #[derive(Debug)]
    struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map(|b| b.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAny(provider))).with_no_client_auth());
    match config {
        Ok(c) => tokio_rustls::TlsConnector::from(Arc::new(c)),
        // The default provider always supports the default versions; keep a usable fallback.
        Err(_) => tokio_rustls::TlsConnector::from(Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_from_ehlo() {
        let r = SmtpReply::from_lines(
            250,
            vec![
                "mx".into(),
                "PIPELINING".into(),
                "SIZE 1000".into(),
                "STARTTLS".into(),
                "dsn".into(),
                "8BITMIME".into(),
            ],
        );
        let c = Capabilities::from_ehlo(&r);
        assert!(c.pipelining && c.starttls && c.dsn && c.eightbitmime && !c.smtputf8);
        assert_eq!(c.size, Some(1000));
    }
}
