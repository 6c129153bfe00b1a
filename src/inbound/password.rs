//! Passwords and the other secrets of a login: the policy every new password must meet
//! (length, a zxcvbn strength estimate with its built-in dictionaries of common passwords,
//! names and words, not containing the login), Argon2id hashing with the configured cost and
//! whether a stored hash was made with another, and the random secrets of app passwords and
//! recovery codes (shown once, stored as SHA-256: they are random, so a slow hash buys nothing).
//!
//! Standards: NIST SP 800-63B §5.1.1.2 (length, blocklists, no composition rules), RFC 9106
//! (Argon2id), OWASP Password Storage Cheat Sheet (19 MiB, 2 passes, 1 lane as the minimum).
//! Must not: log or return a password or secret except to the one caller that shows it once.

use std::fmt;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use sha2::{Digest, Sha256};

use crate::config::{Argon2Cost, Login, MAX_PASSWORD_LENGTH};
use crate::smtp::address::Mailbox;

/// Why a new password was refused; its `Display` is the reason shown to the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooShort {
        min: usize,
    },
    TooLong {
        max: usize,
    },
    ContainsLogin,
    /// zxcvbn's score is below the configured minimum; its warning says why, when it has one.
    TooWeak {
        score: u8,
        min: u8,
        warning: Option<String>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TooShort { min } => write!(f, "too short: use at least {min} characters"),
            Refusal::TooLong { max } => write!(f, "too long: use at most {max} characters"),
            Refusal::ContainsLogin => write!(f, "contains the login name: choose one that does not"),
            Refusal::TooWeak { score, min, warning } => {
                write!(f, "too easy to guess (strength {score} of 4, at least {min} needed)")?;
                if let Some(w) = warning {
                    write!(f, ": {}", w.trim_end_matches('.'))?;
                }
                write!(f, "; a few unrelated words make a strong password")
            }
        }
    }
}

/// Checks a new password for `login` against the policy of `[login]`.
pub fn check(policy: &Login, login: &Mailbox, password: &str) -> Result<(), Refusal> {
    let chars = password.chars().count();
    if chars < policy.min_password_length {
        return Err(Refusal::TooShort { min: policy.min_password_length });
    }
    if chars > MAX_PASSWORD_LENGTH {
        return Err(Refusal::TooLong { max: MAX_PASSWORD_LENGTH });
    }
    let lower = password.to_lowercase();
    let local = login.local().to_lowercase();
    // A local part of one or two letters is in too many passwords to mean anything.
    if lower.contains(&login.key()) || (local.chars().count() >= 3 && lower.contains(&local)) {
        return Err(Refusal::ContainsLogin);
    }
    let mut inputs: Vec<&str> = vec![local.as_str()];
    inputs.extend(login.domain().as_str().split('.'));
    let estimate = zxcvbn::zxcvbn(password, &inputs);
    let score = u8::from(estimate.score());
    if score < policy.min_password_strength {
        let warning = estimate.feedback().and_then(|f| f.warning()).map(|w| w.to_string());
        return Err(Refusal::TooWeak { score, min: policy.min_password_strength, warning });
    }
    Ok(())
}

/// The Argon2id context of a cost.
fn argon2(cost: Argon2Cost) -> Result<Argon2<'static>, String> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None).map_err(|e| e.to_string())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password for storage: a PHC string, Argon2id with `cost` and a random salt.
pub fn hash(cost: Argon2Cost, password: &str) -> Result<String, String> {
    argon2(cost)?.hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `hash` (whatever cost it was made with).
pub fn verify(hash: &str, password: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

/// Whether a stored hash was made otherwise than `cost` says (another algorithm, version or
/// cost), so it is re-hashed at the next successful login. An unreadable hash is not: it
/// matches no password anyway.
pub fn needs_rehash(cost: Argon2Cost, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let Ok(params) = Params::try_from(&parsed) else { return true };
    parsed.algorithm.as_str() != "argon2id"
        || parsed.version.is_some_and(|v| v != u32::from(Version::V0x13))
        || (params.m_cost(), params.t_cost(), params.p_cost()) != (cost.memory_kib, cost.iterations, cost.parallelism)
}

/// The letters of generated secrets: lower case and digits without the look-alikes 0, 1, l
/// and o; 32 of them, so each is 5 random bits and a random byte maps to one without bias.
const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// What a generated secret is for; each kind has its own length and hash prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// 20 letters (100 bits), shown as `xxxxx-xxxxx-xxxxx-xxxxx`.
    AppPassword,
    /// 16 letters (80 bits), shown as `xxxx-xxxx-xxxx-xxxx`.
    RecoveryCode,
}

impl SecretKind {
    fn shape(self) -> (usize, usize, &'static str) {
        match self {
            SecretKind::AppPassword => (20, 5, "app-password:"),
            SecretKind::RecoveryCode => (16, 4, "recovery-code:"),
        }
    }

    /// A new random secret, formatted to be read and typed; None without randomness.
    pub fn generate(self) -> Option<String> {
        let (len, group, _) = self.shape();
        let mut bytes = vec![0u8; len];
        getrandom::fill(&mut bytes).ok()?;
        let letters: Vec<char> = bytes.iter().map(|b| char::from(ALPHABET[usize::from(b & 31)])).collect();
        Some(letters.chunks(group).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-"))
    }

    /// The stored form of a secret as typed (any case, with or without dashes or spaces):
    /// the hex SHA-256 of its letters; None when it cannot be a secret of this kind.
    pub fn hash(self, typed: &str) -> Option<String> {
        let (len, _, prefix) = self.shape();
        if typed.len() > 2 * len {
            return None;
        }
        let letters: String =
            typed.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_lowercase()).collect();
        if letters.len() != len || !letters.bytes().all(|b| ALPHABET.contains(&b)) {
            return None;
        }
        let digest = Sha256::digest(format!("{prefix}{letters}").as_bytes());
        Some(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Login {
        crate::config::Config::from_toml("").unwrap().login
    }

    fn login(a: &str) -> Mailbox {
        Mailbox::parse(a).unwrap()
    }

    #[test]
    fn weak_common_and_login_containing_passwords_are_refused_with_the_reason() {
        let p = policy();
        let bob = login("bob.smith@example.com");
        assert_eq!(check(&p, &bob, "short"), Err(Refusal::TooShort { min: 12 }));
        assert_eq!(check(&p, &bob, &"x".repeat(1025)), Err(Refusal::TooLong { max: 1024 }));
        assert_eq!(check(&p, &bob, "Bob.Smith-horse-battery-42"), Err(Refusal::ContainsLogin));
        assert_eq!(check(&p, &bob, "x bob.smith@example.com x"), Err(Refusal::ContainsLogin));
        // Common passwords and keyboard runs are long enough but found in zxcvbn's lists.
        for common in ["password1234", "qwertyuiop123", "iloveyou1234", "aaaaaaaaaaaa"] {
            match check(&p, &bob, common) {
                Err(Refusal::TooWeak { score, min: 3, .. }) => assert!(score < 3, "{common}"),
                other => panic!("{common}: {other:?}"),
            }
        }
        let weak = check(&p, &bob, "password1234").unwrap_err().to_string();
        assert!(weak.starts_with("too easy to guess (strength"), "{weak}");
        assert!(check(&p, &bob, "correct horse staple violin").is_ok());
        assert!(check(&p, &bob, "Tr0ub4dor&3-quiet-lantern").is_ok());
        // A short local part is not looked for (it is in too many words).
        assert!(check(&p, &login("al@example.com"), "metal ballad turnip cove").is_ok());
        assert_eq!(Refusal::ContainsLogin.to_string(), "contains the login name: choose one that does not");
    }

    #[test]
    fn hashes_carry_their_cost_and_are_renewed_when_it_changes() {
        let low = Argon2Cost { memory_kib: 64, iterations: 1, parallelism: 1 };
        let high = Argon2Cost { memory_kib: 128, iterations: 2, parallelism: 1 };
        let h = hash(low, "s3cret pass").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{h}");
        assert!(verify(&h, "s3cret pass") && !verify(&h, "wrong"));
        assert!(!needs_rehash(low, &h));
        assert!(needs_rehash(high, &h));
        let h2 = hash(high, "s3cret pass").unwrap();
        assert!(verify(&h2, "s3cret pass") && !needs_rehash(high, &h2));
        assert!(!needs_rehash(high, "not a hash"));
        // Another algorithm of the family is renewed too.
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::new(128, 2, 1, None).unwrap())
            .hash_password(b"pw")
            .unwrap()
            .to_string();
        assert!(needs_rehash(high, &argon2i));
    }

    #[test]
    fn secrets_are_random_typed_loosely_and_hashed_by_kind() {
        let a = SecretKind::AppPassword.generate().unwrap();
        assert_eq!(a.len(), 23);
        assert_eq!(a.split('-').count(), 4);
        assert_ne!(a, SecretKind::AppPassword.generate().unwrap());
        let h = SecretKind::AppPassword.hash(&a).unwrap();
        assert_eq!(h.len(), 64);
        assert_eq!(SecretKind::AppPassword.hash(&a.to_uppercase().replace('-', " ")), Some(h.clone()));
        assert_eq!(SecretKind::AppPassword.hash(&a.replace('-', "")), Some(h.clone()));
        assert_eq!(SecretKind::RecoveryCode.hash(&a), None, "another length");
        assert_eq!(SecretKind::AppPassword.hash("not an app password at all"), None);
        assert_eq!(SecretKind::AppPassword.hash(&"0".repeat(20)), None, "look-alikes are not letters");
        assert_eq!(SecretKind::AppPassword.hash(&"a".repeat(10_000)), None);
        let r = SecretKind::RecoveryCode.generate().unwrap();
        assert_eq!(r.len(), 19);
        assert!(SecretKind::RecoveryCode.hash(&r).is_some());
    }
}
