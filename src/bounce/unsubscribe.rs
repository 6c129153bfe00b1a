//! One-click unsubscribe (RFC 8058) and the List-Unsubscribe header (RFC 2369): the signed
//! tokens of the https link and the mailto address, and the headers mail gets.
//!
//! Two forms, both signed with a key derived from the return-path secret (so every node of a
//! cluster verifies them) and both verified without the store:
//! - the link `https://HOST/u/TOKEN` carries everything: sender domain, recipient and message,
//!   `TOKEN` = base32 (RFC 4648 "extended hex", lower case, no padding) of
//!   `1 | len domain | len recipient | len queue id | 96-bit HMAC-SHA256`;
//! - the mailto address `unsubscribe+TOKEN@DOMAIN` must fit a 64-octet local part (RFC 5321
//!   §4.5.3.1.1), so it carries only the message (`2 | queue id | 80-bit mac`; the headers
//!   are added to messages with one recipient) and the reader looks the recipient and sender
//!   up once the token verified.
//!
//! Base32 in lower case survives mail systems that change the case of local parts, and needs no
//! escaping in a URL path. Pure but for `record`, the one write every way of unsubscribing
//! ends in (a sender-domain suppression and its `unsubscribed` event).
//! Must not: read the secret file, or touch a message other than prepending the two header
//! fields.

use data_encoding::BASE32_DNSSEC;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::smtp::address::{Domain, Mailbox};
use crate::smtp::message::{find_headers_end, header_value};
use crate::store::{EventKind, MessageId, Store, StoreError, Suppression, SuppressionScope};

/// The local part's prefix of the mailto form.
pub const MAILTO_PREFIX: &str = "unsubscribe+";
/// Longest token text read (a link token with a 253-octet domain and a 254-octet address is
/// about 950 characters); anything longer is refused before decoding.
const MAX_TOKEN: usize = 1024;
const LINK_VERSION: u8 = 1;
const MAILTO_VERSION: u8 = 2;
const LINK_MAC: usize = 12;
const MAILTO_MAC: usize = 10;

/// Keys of the unsubscribe tokens: the current one signs, every one verifies.
#[derive(Clone)]
pub struct Keys {
    /// HMAC-SHA256 keyed with the current key and with each previous one: cloned per token,
    /// so a key's two blocks of padding are hashed once, not for every token.
    current: Hmac<Sha256>,
    previous: Vec<Hmac<Sha256>>,
}

/// What a verified link says: who unsubscribes from which sender domain's mail, and the
/// message they did it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub sender_domain: Domain,
    pub recipient: Mailbox,
    pub message: MessageId,
}

/// What a verified mailto address names: the message (whose one recipient unsubscribes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailtoToken {
    pub message: MessageId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not an unsubscribe token")]
    Malformed,
    #[error("the token's signature does not verify")]
    BadSignature,
}

impl Keys {
    /// Keys derived from the return-path secret and the previous ones (`return_path::Signer`).
    pub fn derive(secret: &[u8], previous: &[Vec<u8>]) -> Keys {
        let one = |s: &[u8]| -> [u8; 32] {
            let mut m = super::return_path::keyed(s);
            m.update(b"mailerd unsubscribe tokens v1");
            m.finalize().into_bytes().into()
        };
        let keyed = |s: &[u8]| super::return_path::keyed(&one(s));
        Keys { current: keyed(secret), previous: previous.iter().map(|p| keyed(p)).collect() }
    }

    fn mac(key: &Hmac<Sha256>, data: &[u8], n: usize) -> Vec<u8> {
        let mut m = key.clone();
        m.update(data);
        m.finalize().into_bytes().iter().take(n).copied().collect()
    }

    /// Whether some key's mac of `data` begins with `given`, which may not be empty
    /// (compared in constant time by the hmac crate).
    fn verifies(&self, data: &[u8], given: &[u8]) -> bool {
        std::iter::once(&self.current).chain(&self.previous).any(|k| {
            let mut m = k.clone();
            m.update(data);
            m.verify_truncated_left(given).is_ok()
        })
    }

    /// The token of the https link.
    pub fn link_token(&self, u: &Unsubscribe) -> String {
        let mut data = vec![LINK_VERSION];
        for part in [u.sender_domain.as_str(), &u.recipient.key(), u.message.0.as_str()] {
            let bytes = part.as_bytes();
            data.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
            data.extend_from_slice(bytes.get(..255).unwrap_or(bytes));
        }
        let mac = Keys::mac(&self.current, &data, LINK_MAC);
        data.extend_from_slice(&mac);
        BASE32_DNSSEC.encode(&data)
    }

    /// Reads and verifies the token of an https link.
    pub fn verify_link(&self, token: &str) -> Result<Unsubscribe, TokenError> {
        let data = decode(token)?;
        let split = data.len().checked_sub(LINK_MAC).ok_or(TokenError::Malformed)?;
        let (body, mac) = data.split_at(split);
        let mut rest = match body.split_first() {
            Some((&LINK_VERSION, rest)) => rest,
            _ => return Err(TokenError::Malformed),
        };
        let mut parts = Vec::with_capacity(3);
        for _ in 0..3 {
            let (&len, after) = rest.split_first().ok_or(TokenError::Malformed)?;
            let (part, after) = after.split_at_checked(usize::from(len)).ok_or(TokenError::Malformed)?;
            parts.push(std::str::from_utf8(part).map_err(|_| TokenError::Malformed)?);
            rest = after;
        }
        if !rest.is_empty() {
            return Err(TokenError::Malformed);
        }
        if !self.verifies(body, mac) {
            return Err(TokenError::BadSignature);
        }
        let [domain, recipient, message] = parts.as_slice() else { return Err(TokenError::Malformed) };
        Ok(Unsubscribe {
            sender_domain: Domain::parse(domain).map_err(|_| TokenError::Malformed)?,
            recipient: Mailbox::parse(recipient).map_err(|_| TokenError::Malformed)?,
            message: MessageId((*message).to_string()),
        })
    }

    /// The local part of the mailto address (`unsubscribe+TOKEN`), at most 64 octets for a
    /// queue id of 20 hex digits.
    pub fn mailto_local(&self, message: &MessageId) -> String {
        let mut data = vec![MAILTO_VERSION];
        let id = message.0.as_bytes();
        data.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        data.extend_from_slice(id.get(..255).unwrap_or(id));
        let mac = Keys::mac(&self.current, &data, MAILTO_MAC);
        // The queue id is hex: packed as bytes it halves, which keeps the local part short.
        let packed = pack(&data).unwrap_or(data);
        let mut out = packed;
        out.extend_from_slice(&mac);
        format!("{MAILTO_PREFIX}{}", BASE32_DNSSEC.encode(&out))
    }

    /// Reads and verifies the local part of a mailto address.
    pub fn verify_mailto(&self, local_part: &str) -> Result<MailtoToken, TokenError> {
        let token = strip_prefix_ignore_case(local_part, MAILTO_PREFIX).ok_or(TokenError::Malformed)?;
        let data = decode(token)?;
        let split = data.len().checked_sub(MAILTO_MAC).ok_or(TokenError::Malformed)?;
        let (packed, mac) = data.split_at(split);
        let body = unpack(packed).ok_or(TokenError::Malformed)?;
        if !self.verifies(&body, mac) {
            return Err(TokenError::BadSignature);
        }
        let (&len, rest) = body.get(1..).and_then(<[u8]>::split_first).ok_or(TokenError::Malformed)?;
        if rest.len() != usize::from(len) {
            return Err(TokenError::Malformed);
        }
        Ok(MailtoToken { message: MessageId(String::from_utf8(rest.to_vec()).map_err(|_| TokenError::Malformed)?) })
    }
}

fn decode(token: &str) -> Result<Vec<u8>, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN {
        return Err(TokenError::Malformed);
    }
    BASE32_DNSSEC.decode(token.as_bytes()).map_err(|_| TokenError::Malformed)
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| text.get(prefix.len()..)).flatten()
}

/// `2 | len | hex queue id` with the hex digits packed two to a byte (upper-case hex
/// only, an even count); None when the id is not such hex.
fn pack(data: &[u8]) -> Option<Vec<u8>> {
    let (&version, rest) = data.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let id = rest;
    if id.len() != usize::from(len) || id.len() % 2 != 0 || !id.iter().all(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F')) {
        return None;
    }
    let mut out = vec![version, len];
    for pair in id.chunks(2) {
        let hi = hex_value(*pair.first()?)?;
        let lo = hex_value(*pair.get(1)?)?;
        out.push(hi << 4 | lo);
    }
    Some(out)
}

/// The inverse of `pack`; a body that was not packed (a queue id that is not upper-case hex)
/// is read as it is.
fn unpack(packed: &[u8]) -> Option<Vec<u8>> {
    let (&version, rest) = packed.split_first()?;
    if version != MAILTO_VERSION {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let len = usize::from(len);
    if rest.len() == len / 2 && len % 2 == 0 {
        let mut out = vec![version, u8::try_from(len).ok()?];
        for b in rest {
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 0x0f));
        }
        return Some(out);
    }
    (rest.len() == len).then(|| packed.to_vec())
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex_digit(v: u8) -> u8 {
    b"0123456789ABCDEF".get(usize::from(v)).copied().unwrap_or(b'0')
}

/// Whether a local part has the mailto form's prefix (whatever its validity).
pub fn looks_like_mailto(local_part: &str) -> bool {
    local_part.len() > MAILTO_PREFIX.len() && strip_prefix_ignore_case(local_part, MAILTO_PREFIX).is_some()
}

/// Where the two URIs point.
pub struct Endpoints<'a> {
    /// `https://host[:port][/path]`, without a trailing slash.
    pub base_url: &'a str,
    /// The domain of the mailto address (it must route back here).
    pub mailto_domain: &'a str,
}

/// Adds `List-Unsubscribe` (the https link first, then the mailto address) and
/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` to `message`, below its trace fields;
/// or, when the message already has a `List-Unsubscribe` field (an app that manages its own
/// list passes its own URIs), leaves it as it is and returns false. Added before DKIM signs the
/// message, so the signature covers both fields. In place: the message is not copied (only
/// its body moves down, within the spare capacity its builder left).
pub fn add_headers(keys: &Keys, at: &Endpoints<'_>, u: &Unsubscribe, message: &mut Vec<u8>) -> bool {
    let headers = message.get(..find_headers_end(message)).unwrap_or(message);
    if header_value(headers, "list-unsubscribe").is_some() {
        return false;
    }
    let fields = format!(
        "List-Unsubscribe: <{}/u/{}>,\r\n <mailto:{}@{}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        at.base_url,
        keys.link_token(u),
        keys.mailto_local(&u.message),
        at.mailto_domain
    );
    // Moved down and written over in bulk (`Vec::splice` fills its gap byte by byte).
    let (at, end, n) = (after_trace(message), message.len(), fields.len());
    message.resize(end + n, 0);
    message.copy_within(at..end, at + n);
    if let Some(gap) = message.get_mut(at..at + n) {
        gap.copy_from_slice(fields.as_bytes());
    }
    true
}

/// Where the leading trace fields (`Received`, `Return-Path`, with their continuation lines)
/// end: the new fields go below them, as a later hop's trace goes above.
fn after_trace(message: &[u8]) -> usize {
    let mut at = 0;
    let mut in_trace = false;
    while let Some(rest) = message.get(at..) {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n").map(|p| at + p + 2) else { break };
        let line = message.get(at..end).unwrap_or_default();
        let continuation = line.first().is_some_and(|c| *c == b' ' || *c == b'\t');
        if !continuation {
            let name = line.split(|c| *c == b':').next().unwrap_or_default();
            in_trace = name.eq_ignore_ascii_case(b"received") || name.eq_ignore_ascii_case(b"return-path");
        }
        if !in_trace || line == b"\r\n" {
            break;
        }
        at = end;
    }
    at
}

/// How a recipient unsubscribed (the event's detail names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// RFC 8058 POST from the mailbox provider (or the confirmation page's button).
    OneClick,
    /// Mail to the mailto address.
    Mailto,
}

/// Suppresses the recipient for the sender domain's mail and writes the `unsubscribed` event
/// of the message; returns whether the list changed (a second click changes nothing).
pub async fn record(store: &dyn Store, u: &Unsubscribe, via: Via) -> Result<bool, StoreError> {
    let how = match via {
        Via::OneClick => "one-click (RFC 8058)",
        Via::Mailto => "mailto (RFC 2369)",
    };
    let entry = Suppression {
        address: u.recipient.key(),
        reason: "unsubscribed".to_string(),
        status: None,
        detail: Some(format!("unsubscribed from {} by {how}", u.sender_domain)),
        message_id: Some(u.message.0.clone()),
        created_at: String::new(),
        domain: Some(u.sender_domain.clone()),
        scope: SuppressionScope::SenderDomain,
    };
    let detail = format!("unsubscribed from mail of {} ({how})", u.sender_domain);
    store.suppress_as(entry, EventKind::Unsubscribed, detail).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::derive(b"secret", &[])
    }

    fn sample() -> Unsubscribe {
        Unsubscribe {
            sender_domain: Domain::parse("news.example.com").unwrap(),
            recipient: Mailbox::parse("Alice@Example.NET").unwrap(),
            message: MessageId("0190A1B2C3D4E5F60718".into()),
        }
    }

    #[test]
    fn link_tokens_read_back_and_verify() {
        let k = keys();
        let t = k.link_token(&sample());
        assert!(t.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{t}");
        let back = k.verify_link(&t).unwrap();
        assert_eq!(back.sender_domain.as_str(), "news.example.com");
        assert_eq!(back.recipient.key(), "alice@example.net");
        assert_eq!(back.message.0, "0190A1B2C3D4E5F60718");
        // Upper case (a mail system that shouts) still reads.
        assert_eq!(k.verify_link(&t.to_ascii_uppercase()).unwrap(), back);
    }

    #[test]
    fn tampered_or_foreign_link_tokens_are_refused() {
        let k = keys();
        let t = k.link_token(&sample());
        // Flip each character in turn to another base32 digit: never a valid token.
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            let s = String::from_utf8(b).unwrap();
            assert!(k.verify_link(&s).is_err(), "position {i}");
        }
        assert_eq!(Keys::derive(b"other", &[]).verify_link(&t), Err(TokenError::BadSignature));
        // A key that is no longer current still verifies.
        assert!(Keys::derive(b"new", &[b"secret".to_vec()]).verify_link(&t).is_ok());
        for junk in ["", "x", "!!!!", &"a".repeat(5000), "00000000000000000000000000"] {
            assert!(k.verify_link(junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn mailto_tokens_fit_a_local_part_and_verify() {
        let k = keys();
        let local = k.mailto_local(&MessageId("0190A1B2C3D4E5F60718".into()));
        assert!(local.len() <= 64, "{} octets: {local}", local.len());
        assert!(crate::smtp::address::Mailbox::parse(&format!("{local}@mail.example.com")).is_ok());
        let t = k.verify_mailto(&local).unwrap();
        assert_eq!(t, MailtoToken { message: MessageId("0190A1B2C3D4E5F60718".into()) });
        assert!(k.verify_mailto(&local.to_ascii_uppercase()).is_ok());
        assert!(looks_like_mailto(&local));
        let mut b = local.clone().into_bytes();
        let last = b.len() - 1;
        b[last] = if b[last] == b'a' { b'b' } else { b'a' };
        assert!(k.verify_mailto(std::str::from_utf8(&b).unwrap()).is_err());
        assert_eq!(Keys::derive(b"other", &[]).verify_mailto(&local), Err(TokenError::BadSignature));
        // A queue id that is not hex still round-trips (unpacked).
        let odd = k.mailto_local(&MessageId("q-1".into()));
        assert_eq!(k.verify_mailto(&odd).unwrap().message.0, "q-1");
    }

    #[test]
    fn headers_are_prepended_unless_the_app_has_its_own() {
        let k = keys();
        let at = Endpoints { base_url: "https://mail.example.com", mailto_domain: "mail.example.com" };
        let msg = b"From: news@news.example.com\r\nTo: alice@example.net\r\nSubject: hi\r\n\r\nbody\r\n";
        let mut out = msg.to_vec();
        assert!(add_headers(&k, &at, &sample(), &mut out));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("List-Unsubscribe: <https://mail.example.com/u/"), "{text}");
        assert!(text.contains(">,\r\n <mailto:unsubscribe+"));
        assert!(text.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nFrom: "));
        let traced = b"Received: from a\r\n\tby b; now\r\nFrom: news@news.example.com\r\n\r\nbody\r\n";
        let mut out = traced.to_vec();
        assert!(add_headers(&k, &at, &sample(), &mut out));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("Received: from a\r\n\tby b; now\r\nList-Unsubscribe: <https://"), "{text}");
        assert!(text.ends_with("One-Click\r\nFrom: news@news.example.com\r\n\r\nbody\r\n"), "{text}");
        let own = b"List-Unsubscribe: <https://app.example/unsub?u=1>\r\nFrom: a@b.c\r\n\r\nx\r\n";
        let mut out = own.to_vec();
        assert!(!add_headers(&k, &at, &sample(), &mut out));
        assert_eq!(out, own, "left as it is");
    }

    #[test]
    fn arbitrary_text_never_panics() {
        let k = keys();
        for n in 0..300u32 {
            let s: String = (0..(n % 90))
                .map(|i| char::from(b"0123456789abcdefghijklmnopqrstuv"[((i * 7 + n) % 32) as usize]))
                .collect();
            let _ = k.verify_link(&s);
            let _ = k.verify_mailto(&format!("{MAILTO_PREFIX}{s}"));
        }
    }
}
