//! SMTP AUTH: PLAIN and LOGIN decoding, argon2 password checks, failure rate limiting.
//!
//! Standards: RFC 4954 (SMTP AUTH), RFC 4616 (PLAIN), draft-murchison-sasl-login (LOGIN),
//! RFC 9106 (Argon2id). Unknown users cost as much as wrong passwords (a dummy hash is
//! verified), so timing does not reveal which addresses exist.
//! Must not: log passwords, or accept AUTH outside TLS (the connection enforces that).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::smtp::address::Mailbox;
use crate::store::Store;

/// Upper bound of client IPs tracked by the limiter (memory stays bounded under attack).
const MAX_TRACKED: usize = 100_000;

/// Hashes a password for storage (PHC string, Argon2id with the crate's defaults).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| e.to_string())
}

pub struct Authenticator {
    store: Arc<dyn Store>,
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    dummy_hash: String,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, max_failures: u32, window: Duration) -> Self {
        let dummy_hash = hash_password("dummy password for unknown users").unwrap_or_default();
        Self { store, max_failures, window, failures: Mutex::new(HashMap::new()), dummy_hash }
    }

    /// True when `ip` failed too often within the window.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        let Ok(map) = self.failures.lock() else {
            return true;
        };
        map.get(&ip).is_some_and(|(n, since)| *n >= self.max_failures && since.elapsed() < self.window)
    }

    pub fn record_failure(&self, ip: IpAddr) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() >= MAX_TRACKED {
            let window = self.window;
            map.retain(|_, (_, since)| since.elapsed() < window);
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
        }
        let entry = map.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub fn record_success(&self, ip: IpAddr) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&ip);
        }
    }

    /// Checks a login; returns the normalised user name on success.
    pub async fn verify(&self, user: &str, password: &str) -> Option<String> {
        let key = Mailbox::parse(user).ok().map(|m| m.key());
        let record = match &key {
            Some(k) => self.store.mailbox(k).await.ok().flatten(),
            None => None,
        };
        let hash = record.as_ref().and_then(|r| r.password_hash.clone());
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || {
            Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok()
        })
        .await
        .unwrap_or(false);
        if ok && known { key } else { None }
    }
}

/// Decodes a PLAIN response: `authzid NUL authcid NUL passwd`. An authzid other than the
/// authcid is refused (no proxy logins).
pub fn decode_plain(b64: &str) -> Option<(String, String)> {
    let raw = B64.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.split('\0');
    let (authz, authc, pass) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authc.is_empty() || (!authz.is_empty() && authz != authc) {
        return None;
    }
    Some((authc.to_string(), pass.to_string()))
}

/// Decodes one base64 line of a LOGIN exchange.
pub fn decode_line(b64: &str) -> Option<String> {
    String::from_utf8(B64.decode(b64.trim()).ok()?).ok()
}

pub fn encode(text: &str) -> String {
    B64.encode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_decoding() {
        assert_eq!(decode_plain(&encode("\0bob@a.test\0pw")), Some(("bob@a.test".into(), "pw".into())));
        assert_eq!(decode_plain(&encode("bob@a.test\0bob@a.test\0pw")), Some(("bob@a.test".into(), "pw".into())));
        assert_eq!(decode_plain(&encode("eve@a.test\0bob@a.test\0pw")), None);
        assert_eq!(decode_plain("!!!"), None);
        assert_eq!(decode_plain(&encode("nonul")), None);
    }

    #[test]
    fn hashes_verify() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(Argon2::default().verify_password(b"s3cret", h.as_str()).is_ok());
        assert!(Argon2::default().verify_password(b"wrong", h.as_str()).is_err());
    }
}
