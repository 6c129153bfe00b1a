//! Signed return paths (BATV/VERP style): the envelope sender of mail we send out encodes the
//! message (and the recipient when the transaction has one), an expiry day and an HMAC, so a
//! bounce that comes back can be matched to exactly what we sent, and one that cannot is forged.
//!
//! Format: `bounces+<queue id>-<recipient id or 0>-<expiry day>-<mac>@<return-path domain>`,
//! mac = the first 12 hex digits of HMAC-SHA256(secret, "queue id|recipient id|expiry day").
//! Pure: the secret and the current time are arguments.
//! Must not: read the secret file or the clock.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::time::Timestamp;

pub const LOCAL_PREFIX: &str = "bounces+";
const DAY_MS: i64 = 86_400_000;

/// The key and domain of this host's signed return paths.
#[derive(Debug, Clone)]
pub struct Signer {
    pub secret: Vec<u8>,
    pub domain: String,
    /// Keys no longer used for signing whose signatures still verify (a node's own key after it
    /// joined a cluster that signs with another), so mail already out can still bounce home.
    pub previous: Vec<Vec<u8>>,
}

impl Signer {
    pub fn sign(&self, queue_id: &str, recipient_id: i64, valid_until: Timestamp) -> String {
        sign(&self.secret, &self.domain, queue_id, recipient_id, valid_until)
    }

    /// Checks a whole address: our domain, our prefix, a valid unexpired token.
    pub fn verify_address(&self, local_part: &str, domain: &str, now: Timestamp) -> Result<Token, TokenError> {
        if !domain.eq_ignore_ascii_case(&self.domain) {
            return Err(TokenError::NotOurs);
        }
        let mut result = verify(&self.secret, local_part, now);
        for key in &self.previous {
            if result != Err(TokenError::BadSignature) {
                break;
            }
            result = verify(key, local_part, now);
        }
        result
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub queue_id: String,
    /// 0 when the transaction had several recipients.
    pub recipient_id: i64,
    pub expiry_day: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    NotOurs,
    Malformed,
    BadSignature,
    Expired,
}

/// HMAC-SHA256 under `key`: the one keyed hash of our signed addresses and tokens.
pub(crate) fn keyed(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch is unreachable in practice.
        <Hmac<Sha256> as KeyInit>::new_from_slice(b"mailerd").expect("a literal key is valid")
    })
}

fn mac(secret: &[u8], queue_id: &str, recipient_id: i64, expiry_day: i64) -> String {
    let mut m = keyed(secret);
    m.update(format!("{queue_id}|{recipient_id}|{expiry_day}").as_bytes());
    let bytes = m.finalize().into_bytes();
    bytes.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The signed address for a message (and recipient), valid until `valid_until`.
pub fn sign(secret: &[u8], domain: &str, queue_id: &str, recipient_id: i64, valid_until: Timestamp) -> String {
    let expiry_day = valid_until.millis().div_euclid(DAY_MS) + 1;
    let m = mac(secret, queue_id, recipient_id, expiry_day);
    format!("{LOCAL_PREFIX}{queue_id}-{recipient_id}-{expiry_day}-{m}@{domain}")
}

/// True when the local part has our prefix (whatever its validity).
pub fn looks_signed(local_part: &str) -> bool {
    local_part.len() > LOCAL_PREFIX.len()
        && local_part.get(..LOCAL_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(LOCAL_PREFIX))
}

/// Checks the local part of a signed address.
pub fn verify(secret: &[u8], local_part: &str, now: Timestamp) -> Result<Token, TokenError> {
    if !looks_signed(local_part) {
        return Err(TokenError::NotOurs);
    }
    let rest = local_part.get(LOCAL_PREFIX.len()..).ok_or(TokenError::Malformed)?;
    let mut parts = rest.split('-');
    let (Some(qid), Some(rid), Some(day), Some(m), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let queue_id = qid.to_ascii_uppercase();
    let recipient_id: i64 = rid.parse().map_err(|_| TokenError::Malformed)?;
    let expiry_day: i64 = day.parse().map_err(|_| TokenError::Malformed)?;
    let expected = mac(secret, &queue_id, recipient_id, expiry_day);
    // Constant-time comparison of the (lower-cased) mac.
    let given = m.to_ascii_lowercase();
    let same = given.len() == expected.len()
        && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        return Err(TokenError::BadSignature);
    }
    if now.millis().div_euclid(DAY_MS) > expiry_day {
        return Err(TokenError::Expired);
    }
    Ok(Token { queue_id, recipient_id, expiry_day })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip_and_tampering() {
        let now = Timestamp(1_795_884_093_000);
        let addr = sign(
            SECRET,
            "mx.example",
            "01A2231581E830D719B2",
            42,
            now.plus(std::time::Duration::from_secs(86_400 * 7)),
        );
        let (local, domain) = addr.rsplit_once('@').unwrap();
        assert_eq!(domain, "mx.example");
        let t = verify(SECRET, local, now).unwrap();
        assert_eq!((t.queue_id.as_str(), t.recipient_id), ("01A2231581E830D719B2", 42));
        // Case-insensitive (some MTAs lower-case the local part).
        assert!(verify(SECRET, &local.to_ascii_lowercase(), now).is_ok());
        assert_eq!(verify(b"other secret", local, now), Err(TokenError::BadSignature));
        let tampered = local.replace("-42-", "-43-");
        assert_eq!(verify(SECRET, &tampered, now), Err(TokenError::BadSignature));
        let later = now.plus(std::time::Duration::from_secs(86_400 * 30));
        assert_eq!(verify(SECRET, local, later), Err(TokenError::Expired));
        assert_eq!(verify(SECRET, "alice", now), Err(TokenError::NotOurs));
        assert_eq!(verify(SECRET, "bounces+x-y", now), Err(TokenError::Malformed));
        // A previous key still verifies what it signed; the current one signs.
        let old = Signer { secret: b"old key".to_vec(), domain: "mx.example".into(), previous: Vec::new() };
        let rotated =
            Signer { secret: SECRET.to_vec(), domain: "mx.example".into(), previous: vec![old.secret.clone()] };
        let by_old = old.sign("01A2231581E830D719B2", 0, later);
        let (local, domain) = by_old.split_once('@').unwrap();
        assert!(rotated.verify_address(local, domain, now).is_ok());
        let stranger = Signer { secret: b"stranger".to_vec(), domain: "mx.example".into(), previous: Vec::new() };
        let by_stranger = stranger.sign("01A2231581E830D719B2", 0, later);
        let (local, domain) = by_stranger.split_once('@').unwrap();
        assert_eq!(rotated.verify_address(local, domain, now), Err(TokenError::BadSignature));
    }
}
