//! The opt-in RCPT probe: asks the recipient's MX whether it would take the address
//! (EHLO, MAIL FROM:<>, RCPT TO, QUIT; never DATA) and reports the answer.
//!
//! Off by default, because: receivers see it as a directory-harvest attempt and may list the
//! probing IP; many servers accept every address at RCPT (catch-all, or they bounce later)
//! or greylist with 4xx, so a 250 proves little and a 4xx nothing.
//! Replies are read by `smtp::codec`, the outbound client's reader (bounded lines and replies).
//! Standards: RFC 5321 §3.3 (transaction), §4.2 (multi-line replies), §4.5.3.2 (timeouts).
//! Must not: send DATA, follow more than the first reachable MX, or read unbounded replies.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::address::Parsed;
use super::{Check, Status};
use crate::dns::{Dns, DnsFailure};
use crate::smtp::codec::{ReadError, ReplyReader};

#[derive(Debug, Clone)]
pub struct ProbeOptions {
    pub helo: String,
    /// The SMTP port of MX hosts (`outbound.mx_port`).
    pub port: u16,
    pub timeout: Duration,
}

/// Probes the first reachable MX of the address's domain.
pub async fn probe(address: &Parsed, dns: &Dns, opts: &ProbeOptions) -> Check {
    if address.is_literal() {
        return Check::new("probe", Status::Info).detail("address literal: not probed");
    }
    let hosts: Vec<String> = match dns.mx(&address.domain).await {
        Ok(mx) if mx.iter().any(|(_, h)| h.is_empty()) => {
            return Check::new("probe", Status::Info).detail("null MX: nothing to probe");
        }
        Ok(mx) => mx.into_iter().map(|(_, h)| h).take(3).collect(),
        Err(DnsFailure::NoRecords) => vec![address.domain.clone()],
        Err(DnsFailure::NxDomain) => {
            return Check::new("probe", Status::Info).detail("no such domain: nothing to probe");
        }
        Err(DnsFailure::Temporary(e)) => {
            return Check::new("probe", Status::Unknown).detail(format!("could not look up the MX: {e}"));
        }
    };
    let mut last_error = String::from("no MX host has an address");
    for host in hosts {
        let Ok(ips) = dns.addresses(&host).await else { continue };
        for ip in ips.into_iter().take(2) {
            let addr = SocketAddr::new(ip, opts.port);
            match tokio::time::timeout(opts.timeout * 4, transaction(addr, address, opts)).await {
                Ok(Ok((true, code, text))) => return verdict(&host, code, &text),
                Ok(Ok((false, code, text))) => {
                    last_error = format!("{host} refused the probe before RCPT: {code} {text}")
                }
                Ok(Err(e)) => last_error = format!("{host} ({addr}): {e}"),
                Err(_) => last_error = format!("{host} ({addr}): timed out"),
            }
        }
    }
    Check::new("probe", Status::Unknown).detail(format!("could not probe: {last_error}"))
}

fn verdict(host: &str, code: u16, text: &str) -> Check {
    let shown: String = text.chars().take(200).collect();
    match code {
        200..=299 => Check::ok("probe")
            .detail(format!("{host} accepts it at RCPT: {code} {shown} (catch-alls accept everything)")),
        400..=499 => Check::new("probe", Status::Unknown)
            .detail(format!("{host} answered {code} {shown} (greylisting or a temporary failure)")),
        _ => Check::new("probe", Status::Fail)
            .detail(format!("{host} refuses it: {code} {shown}"))
            .fix("the address is refused by its own mail server; ask for a current address"),
    }
}

/// The next reply as (code, the text of its lines after the code, joined by spaces), read by
/// the outbound client's codec.
async fn read_reply(
    conn: &mut TcpStream,
    replies: &mut ReplyReader,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let mut text = String::new();
    let reply = replies
        .read(conn, timeout, |line| {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(line.get(4..).unwrap_or("").trim());
        })
        .await
        .map_err(|e| {
            let (kind, why) = match e {
                ReadError::Io(e) => return e,
                ReadError::Timeout => (std::io::ErrorKind::TimedOut, "timed out"),
                ReadError::Closed => (std::io::ErrorKind::UnexpectedEof, "connection closed"),
                ReadError::Malformed(_) => (std::io::ErrorKind::InvalidData, "not an SMTP reply"),
                ReadError::LineTooLong => (std::io::ErrorKind::InvalidData, "reply too long"),
            };
            std::io::Error::new(kind, why)
        })?;
    Ok((reply.code, text))
}

/// One connection: greeting, EHLO, MAIL FROM:<>, RCPT TO; returns the RCPT reply (or the
/// first refusal before it).
async fn transaction(addr: SocketAddr, address: &Parsed, opts: &ProbeOptions) -> std::io::Result<(bool, u16, String)> {
    let stream = tokio::time::timeout(opts.timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let (mut conn, mut replies) = (stream, ReplyReader::new());
    let t = opts.timeout;
    let greeting = read_reply(&mut conn, &mut replies, t).await?;
    if greeting.0 != 220 {
        return Ok((false, greeting.0, greeting.1));
    }
    let utf8 = address.needs_smtputf8();
    let steps = [
        format!("EHLO {}\r\n", opts.helo),
        format!("MAIL FROM:<>{}\r\n", if utf8 { " SMTPUTF8" } else { "" }),
        format!("RCPT TO:<{}>\r\n", address.normalized()),
    ];
    let mut reply = (false, greeting.0, greeting.1);
    for (i, step) in steps.iter().enumerate() {
        conn.write_all(step.as_bytes()).await?;
        let (code, text) = read_reply(&mut conn, &mut replies, t).await?;
        reply = (i == steps.len() - 1, code, text);
        if !(200..300).contains(&code) {
            break;
        }
    }
    let _ = conn.write_all(b"QUIT\r\n").await;
    let _ = tokio::time::timeout(Duration::from_secs(2), read_reply(&mut conn, &mut replies, t)).await;
    Ok(reply)
}
