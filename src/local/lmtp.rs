//! The LMTP client of local delivery: hands a message for local mailboxes to a mailbox server
//! (Dovecot's `lmtp` service) on a unix or TCP socket, and returns one outcome per recipient.
//!
//! Standards: RFC 2033 (LHLO; after the final dot, one reply per accepted recipient, in RCPT
//! order), RFC 5321 §4.5.2 (dot-stuffing) and §4.5.3.2 (a deadline for every read), RFC 6152
//! (BODY=8BITMIME when offered). Replies are read and messages dot-stuffed by `smtp::codec`,
//! the extensions read by `outbound::client::Capabilities`, and replies become outcomes in
//! `outbound::outcome` (so a 4xx defers, a 5xx bounces, and 552 5.2.2 is a full mailbox).
//! One connection is kept between transactions and checked with RSET before reuse; it is
//! closed after `idle` without use, and after any error or timeout.
//! Bounded: reply lines by `smtp::codec` (64 KiB), every read and write by a timeout.
//! Must not: touch the store, or decide retries (the scheduler records the outcomes).

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::LmtpTarget;
use crate::outbound::client::{Capabilities, ClientError, Io, Stage, Timeouts, Wire};
use crate::outbound::outcome::DeliveryOutcome;
use crate::smtp::codec::dot_stuff;

/// An LMTP server and the connection kept to it.
pub struct Lmtp {
    target: LmtpTarget,
    /// The name we give in LHLO (our host name).
    lhlo: String,
    timeouts: Timeouts,
    /// How long an unused connection is kept for the next transaction.
    idle: Duration,
    session: Mutex<Option<Session>>,
}

impl Lmtp {
    pub fn new(target: LmtpTarget, lhlo: String, timeouts: Timeouts, idle: Duration) -> Lmtp {
        Lmtp { target, lhlo, timeouts, idle, session: Mutex::new(None) }
    }

    /// Delivers `message` from `reverse_path` (empty: the null sender) to `recipients` in one
    /// transaction, and returns one outcome per recipient, in their order. Transactions are
    /// serialised over the one kept connection.
    pub async fn deliver(&self, reverse_path: &str, recipients: &[&str], message: &[u8]) -> Vec<DeliveryOutcome> {
        let server = self.target.to_string();
        let mut kept = self.session.lock().await;
        let reused = match kept.take() {
            Some(s) if s.last_used.elapsed() >= self.idle => {
                s.quit().await;
                None
            }
            // A kept connection the server closed meanwhile fails its RSET: open a new one.
            Some(mut s) => s.reset().await.is_ok().then_some(s),
            None => None,
        };
        let mut session = match reused {
            Some(s) => s,
            None => match Session::open(&self.target, &self.lhlo, self.timeouts.clone()).await {
                Ok(s) => s,
                Err(e) => return recipients.iter().map(|_| DeliveryOutcome::from_lmtp_error(&e, &server)).collect(),
            },
        };
        let mut results: Vec<Option<DeliveryOutcome>> = vec![None; recipients.len()];
        match session.transaction(&server, reverse_path, recipients, message, &mut results).await {
            Ok(()) => {
                session.last_used = Instant::now();
                *kept = Some(session);
                results.into_iter().map(|r| r.unwrap_or_else(|| lost(&server))).collect()
            }
            Err(e) => {
                // Replies already received stand; the others are tried again.
                drop(session);
                results
                    .into_iter()
                    .map(|r| r.unwrap_or_else(|| DeliveryOutcome::from_lmtp_error(&e, &server)))
                    .collect()
            }
        }
    }
}

/// A recipient the server never answered for although the transaction completed (cannot
/// happen by construction; transient, so the mail is tried again rather than lost).
fn lost(server: &str) -> DeliveryOutcome {
    let e = ClientError::Protocol(Stage::EndOfData, "no reply for this recipient".into());
    DeliveryOutcome::from_lmtp_error(&e, server)
}

/// One connection after LHLO.
struct Session {
    wire: Wire,
    caps: Capabilities,
    last_used: Instant,
}

impl Session {
    async fn open(target: &LmtpTarget, lhlo: &str, timeouts: Timeouts) -> Result<Session, ClientError> {
        let connect = async {
            Ok::<Box<dyn Io>, std::io::Error>(match target {
                LmtpTarget::Unix(path) => Box::new(UnixStream::connect(path).await?),
                LmtpTarget::Tcp(addr) => {
                    let stream = TcpStream::connect(addr).await?;
                    let _ = stream.set_nodelay(true);
                    Box::new(stream)
                }
            })
        };
        let io = tokio::time::timeout(timeouts.connect, connect)
            .await
            .map_err(|_| ClientError::Timeout(Stage::Connect))?
            .map_err(|e| ClientError::Io(Stage::Connect, e))?;
        let mut s = Session { wire: Wire::new(io, timeouts), caps: Capabilities::default(), last_used: Instant::now() };
        let greeting = s.wire.read_reply(Stage::Greeting).await?;
        if greeting.code != 220 {
            return Err(ClientError::Rejected(Stage::Greeting, greeting));
        }
        let hello = s.wire.command(&format!("LHLO {lhlo}"), Stage::Ehlo).await?;
        if hello.code != 250 {
            return Err(ClientError::Rejected(Stage::Ehlo, hello));
        }
        s.caps = Capabilities::from_ehlo(&hello);
        Ok(s)
    }

    /// Runs one transaction, writing each recipient's outcome into `results` as its final
    /// reply arrives. An error leaves the recipients not yet answered at None.
    async fn transaction(
        &mut self,
        server: &str,
        reverse_path: &str,
        recipients: &[&str],
        message: &[u8],
        results: &mut [Option<DeliveryOutcome>],
    ) -> Result<(), ClientError> {
        let mut mail = format!("MAIL FROM:<{reverse_path}>");
        if self.caps.eightbitmime && message.iter().any(|b| *b >= 0x80) {
            mail.push_str(" BODY=8BITMIME");
        }
        if self.caps.smtputf8 && (!reverse_path.is_ascii() || recipients.iter().any(|r| !r.is_ascii())) {
            mail.push_str(" SMTPUTF8");
        }
        let reply = self.wire.command(&mail, Stage::MailFrom).await?;
        if !reply.is_positive() {
            results.fill(Some(DeliveryOutcome::from_lmtp_reply(&reply, server, Stage::MailFrom)));
            return self.reset().await;
        }
        let mut accepted = Vec::with_capacity(recipients.len());
        for (i, rcpt) in recipients.iter().enumerate() {
            let reply = self.wire.command(&format!("RCPT TO:<{rcpt}>"), Stage::RcptTo).await?;
            if reply.is_positive() {
                accepted.push(i);
            } else if let Some(slot) = results.get_mut(i) {
                *slot = Some(DeliveryOutcome::from_lmtp_reply(&reply, server, Stage::RcptTo));
            }
        }
        if accepted.is_empty() {
            return self.reset().await;
        }
        let data = self.wire.command("DATA", Stage::Data).await?;
        if data.code != 354 {
            for &i in &accepted {
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(DeliveryOutcome::from_lmtp_reply(&data, server, Stage::Data));
                }
            }
            return self.reset().await;
        }
        self.wire.write(&dot_stuff(message), Stage::EndOfData).await?;
        for &i in &accepted {
            let reply = self.wire.read_reply(Stage::EndOfData).await?;
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(DeliveryOutcome::from_lmtp_reply(&reply, server, Stage::EndOfData));
            }
        }
        Ok(())
    }

    /// RSET: ends a refused transaction, and checks a kept connection before it is reused.
    async fn reset(&mut self) -> Result<(), ClientError> {
        let reply = self.wire.command("RSET", Stage::MailFrom).await?;
        if reply.code == 250 { Ok(()) } else { Err(ClientError::Rejected(Stage::MailFrom, reply)) }
    }

    async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.wire.command("QUIT", Stage::Ehlo)).await;
        let _ = self.wire.io.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::reply::{EnhancedStatus, SmtpReply};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    use tokio::net::TcpListener;

    fn said(code: u16, status: Option<(u8, u16, u16)>, text: &str) -> String {
        SmtpReply::new(code, status.map(|(c, s, d)| EnhancedStatus::new(c, s, d)), text).render()
    }

    /// What the peer saw of one connection: its command lines and the data it received.
    #[derive(Debug, Default)]
    struct Seen {
        commands: Vec<String>,
        data: Vec<Vec<u8>>,
    }

    /// A tiny LMTP server on loopback: accepts `local` users (quota-full for `full`), answers
    /// one reply per accepted recipient after the data, and keeps each connection's log.
    async fn peer(
        connections: usize,
        stall_after_data: bool,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<Seen>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (addr, serve(Listener::Tcp(listener), connections, stall_after_data))
    }

    enum Listener {
        Tcp(TcpListener),
        Unix(tokio::net::UnixListener),
    }

    fn serve(listener: Listener, connections: usize, stall_after_data: bool) -> tokio::task::JoinHandle<Vec<Seen>> {
        tokio::spawn(async move {
            let mut all = Vec::new();
            for _ in 0..connections {
                let stream: Box<dyn Io> = match &listener {
                    Listener::Tcp(l) => Box::new(l.accept().await.unwrap().0),
                    Listener::Unix(l) => Box::new(l.accept().await.unwrap().0),
                };
                let (r, mut w) = tokio::io::split(stream);
                let mut r = BufReader::new(r);
                let mut seen = Seen::default();
                w.write_all(said(220, None, "lmtp.test LMTP ready").as_bytes()).await.unwrap();
                let mut rcpts: Vec<String> = Vec::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        break;
                    }
                    let line = line.trim_end().to_string();
                    seen.commands.push(line.clone());
                    let upper = line.to_ascii_uppercase();
                    let reply = if upper.starts_with("LHLO") {
                        let lines = vec!["lmtp.test".into(), "PIPELINING".into(), "8BITMIME".into()];
                        SmtpReply { code: 250, status: None, lines }.render()
                    } else if upper.starts_with("MAIL") || upper == "RSET" {
                        rcpts.clear();
                        said(250, Some((2, 0, 0)), "OK")
                    } else if upper.starts_with("RCPT TO:<") {
                        let who = line.get(9..).unwrap_or("").trim_end_matches('>').to_string();
                        if who.starts_with("nobody@") {
                            said(550, Some((5, 1, 1)), &format!("<{who}> User doesn't exist"))
                        } else {
                            rcpts.push(who);
                            said(250, Some((2, 1, 5)), "OK")
                        }
                    } else if upper == "DATA" {
                        w.write_all(said(354, None, "OK").as_bytes()).await.unwrap();
                        let mut data = Vec::new();
                        loop {
                            let mut l = Vec::new();
                            r.read_until(b'\n', &mut l).await.unwrap();
                            if l == b".\r\n" {
                                break;
                            }
                            data.extend_from_slice(&l);
                        }
                        seen.data.push(data);
                        if stall_after_data {
                            // Answers for the first recipient only, then hangs up.
                            let first = rcpts.first().cloned().unwrap_or_default();
                            w.write_all(said(250, Some((2, 0, 0)), &format!("<{first}> Saved")).as_bytes())
                                .await
                                .unwrap();
                            w.shutdown().await.unwrap();
                            break;
                        }
                        let mut out = String::new();
                        for who in &rcpts {
                            out.push_str(&if who.starts_with("full@") {
                                said(552, Some((5, 2, 2)), &format!("<{who}> Quota exceeded (mailbox is full)"))
                            } else {
                                said(250, Some((2, 0, 0)), &format!("<{who}> Saved"))
                            });
                        }
                        out
                    } else if upper == "QUIT" {
                        w.write_all(said(221, None, "Bye").as_bytes()).await.unwrap();
                        break;
                    } else {
                        said(500, None, "What?")
                    };
                    w.write_all(reply.as_bytes()).await.unwrap();
                }
                let mut rest = Vec::new();
                let _ = r.read_to_end(&mut rest).await;
                all.push(seen);
            }
            all
        })
    }

    fn client(addr: std::net::SocketAddr) -> Lmtp {
        let t = Timeouts {
            connect: Duration::from_secs(5),
            command: Duration::from_secs(5),
            data_end: Duration::from_secs(5),
        };
        Lmtp::new(LmtpTarget::Tcp(addr), "mx.test".into(), t, Duration::from_secs(60))
    }

    #[tokio::test]
    async fn one_transaction_mixed_outcomes_then_reuse_with_rset() {
        let (addr, peer) = peer(1, false).await;
        let lmtp = client(addr);
        let message = b"Subject: hi\r\n\r\n.leading dot\r\nb\xc3\xbcch\r\n";
        let out = lmtp.deliver("a@sender.test", &["bob@x.test", "nobody@x.test", "full@x.test"], message).await;
        assert_eq!(out.len(), 3);
        assert!(matches!(&out[0], DeliveryOutcome::Delivered(r) if r.detail.contains("<bob@x.test> Saved")));
        assert!(matches!(&out[1], DeliveryOutcome::Failed(r) if r.status.to_string() == "5.1.1"
            && r.stage == Stage::RcptTo));
        assert!(matches!(&out[2], DeliveryOutcome::Deferred(r) if r.is_mailbox_full() && r.reply_code == Some(552)
            && r.stage == Stage::EndOfData));
        assert_eq!(out[0].report().remote.as_deref(), Some(addr.to_string().as_str()));
        // The second message goes over the same connection, after an RSET.
        let out = lmtp.deliver("", &["bob@x.test"], b"Subject: 2\r\n\r\nx").await;
        assert!(matches!(&out[0], DeliveryOutcome::Delivered(_)));
        drop(lmtp);
        let seen = peer.await.unwrap();
        assert_eq!(seen.len(), 1, "one connection for both transactions");
        let cmds = &seen[0].commands;
        assert_eq!(
            cmds,
            &[
                "LHLO mx.test",
                "MAIL FROM:<a@sender.test> BODY=8BITMIME",
                "RCPT TO:<bob@x.test>",
                "RCPT TO:<nobody@x.test>",
                "RCPT TO:<full@x.test>",
                "DATA",
                "RSET",
                "MAIL FROM:<>",
                "RCPT TO:<bob@x.test>",
                "DATA",
            ]
        );
        // Dot-stuffed on the wire; a missing final CRLF added.
        assert_eq!(seen[0].data[0], b"Subject: hi\r\n\r\n..leading dot\r\nb\xc3\xbcch\r\n");
        assert_eq!(seen[0].data[1], b"Subject: 2\r\n\r\nx\r\n");
    }

    #[tokio::test]
    async fn a_connection_lost_after_data_defers_only_the_unanswered() {
        let (addr, peer) = peer(2, true).await;
        let lmtp = client(addr);
        let out = lmtp.deliver("a@s.test", &["one@x.test", "two@x.test"], b"x\r\n").await;
        assert!(matches!(&out[0], DeliveryOutcome::Delivered(_)));
        assert!(matches!(&out[1], DeliveryOutcome::Deferred(r) if r.reply_code.is_none()));
        // The broken connection is not reused: the next delivery opens a new one.
        let out = lmtp.deliver("a@s.test", &["nobody@x.test"], b"x\r\n").await;
        assert!(matches!(&out[0], DeliveryOutcome::Failed(_)));
        drop(lmtp);
        let seen = peer.await.unwrap();
        assert_eq!(seen[1].commands.first().map(String::as_str), Some("LHLO mx.test"));
    }

    #[tokio::test]
    async fn over_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lmtp");
        let peer = serve(Listener::Unix(tokio::net::UnixListener::bind(&path).unwrap()), 1, false);
        let t = Timeouts {
            connect: Duration::from_secs(5),
            command: Duration::from_secs(5),
            data_end: Duration::from_secs(5),
        };
        let target = LmtpTarget::parse(&format!("unix:{}", path.display())).unwrap();
        let lmtp = Lmtp::new(target, "mx.test".into(), t, Duration::from_secs(60));
        let out = lmtp.deliver("a@s.test", &["full@x.test", "bob@x.test"], b"x\r\n").await;
        assert!(matches!(&out[0], DeliveryOutcome::Deferred(r) if r.is_mailbox_full()));
        assert!(matches!(&out[1], DeliveryOutcome::Delivered(r)
            if r.remote.as_deref() == Some(format!("unix:{}", path.display()).as_str())));
        drop(lmtp);
        assert_eq!(peer.await.unwrap()[0].data, [b"x\r\n".to_vec()]);
    }

    #[tokio::test]
    async fn no_server_defers_every_recipient() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let out = client(addr).deliver("a@s.test", &["a@x.test", "b@x.test"], b"x\r\n").await;
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|o| matches!(o, DeliveryOutcome::Deferred(r) if r.stage == Stage::Connect)));
    }
}
