//! `[login]`: what a password must be (length, strength, age), how it is hashed (Argon2id
//! parameters), and whether the main password may be used for SMTP AUTH.
//! Must not: check or hash a password (inbound::password does), or import a stage.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};

/// Argon2id cost parameters (RFC 9106 §4; the argon2 crate's defaults are OWASP's minimum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Cost {
    /// Memory in KiB (`m`).
    pub memory_kib: u32,
    /// Passes over the memory (`t`).
    pub iterations: u32,
    /// Lanes (`p`).
    pub parallelism: u32,
}

/// `[login]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    /// Characters a new password needs at least.
    pub min_password_length: usize,
    /// The zxcvbn score (0–4) a new password needs at least.
    pub min_password_strength: u8,
    /// Age after which a password is reported as due for a change (log line, dashboard
    /// warning); None: passwords do not age.
    pub password_max_age: Option<Duration>,
    pub argon2: Argon2Cost,
    /// When true, SMTP AUTH accepts app passwords only, never the main password.
    pub smtp_requires_app_password: bool,
}

/// Upper bounds that keep a typo from making every login take gigabytes or minutes.
const MAX_MEMORY_KIB: u32 = 1 << 20;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 16;
/// A password longer than this is refused (argon2 hashes any length; a bound keeps input small).
pub const MAX_PASSWORD_LENGTH: usize = 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLogin {
    min_password_length: usize,
    min_password_strength: u8,
    password_max_age: u64,
    argon2_memory: u32,
    argon2_iterations: u32,
    argon2_parallelism: u32,
    smtp_requires_app_password: bool,
}

impl Default for RawLogin {
    fn default() -> Self {
        RawLogin {
            min_password_length: 12,
            min_password_strength: 3,
            password_max_age: 0,
            argon2_memory: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            smtp_requires_app_password: false,
        }
    }
}

impl RawLogin {
    pub(super) fn validate(self) -> Result<Login, ConfigError> {
        if !(1..=MAX_PASSWORD_LENGTH).contains(&self.min_password_length) {
            return Err(invalid("login.min_password_length", format!("characters, 1 to {MAX_PASSWORD_LENGTH}")));
        }
        if self.min_password_strength > 4 {
            return Err(invalid("login.min_password_strength", "a zxcvbn score from 0 (anything) to 4 (strongest)"));
        }
        if !(1..=MAX_PARALLELISM).contains(&self.argon2_parallelism) {
            return Err(invalid("login.argon2_parallelism", format!("lanes, 1 to {MAX_PARALLELISM}")));
        }
        if !(1..=MAX_ITERATIONS).contains(&self.argon2_iterations) {
            return Err(invalid("login.argon2_iterations", format!("passes, 1 to {MAX_ITERATIONS}")));
        }
        let min_memory = 8 * self.argon2_parallelism;
        if !(min_memory..=MAX_MEMORY_KIB).contains(&self.argon2_memory) {
            return Err(invalid(
                "login.argon2_memory",
                format!("KiB, {min_memory} (8 per lane) to {MAX_MEMORY_KIB}; 19456 is OWASP's minimum"),
            ));
        }
        Ok(Login {
            min_password_length: self.min_password_length,
            min_password_strength: self.min_password_strength,
            password_max_age: (self.password_max_age > 0).then(|| Duration::from_secs(self.password_max_age)),
            argon2: Argon2Cost {
                memory_kib: self.argon2_memory,
                iterations: self.argon2_iterations,
                parallelism: self.argon2_parallelism,
            },
            smtp_requires_app_password: self.smtp_requires_app_password,
        })
    }
}

impl Login {
    pub(super) fn effective(&self) -> toml::Value {
        emit::table(vec![
            ("min_password_length", emit::int(self.min_password_length as u64)),
            ("min_password_strength", emit::int(self.min_password_strength.into())),
            ("password_max_age", emit::int(self.password_max_age.map_or(0, |d| d.as_secs()))),
            ("argon2_memory", emit::int(self.argon2.memory_kib.into())),
            ("argon2_iterations", emit::int(self.argon2.iterations.into())),
            ("argon2_parallelism", emit::int(self.argon2.parallelism.into())),
            ("smtp_requires_app_password", toml::Value::Boolean(self.smtp_requires_app_password)),
        ])
    }
}
