//! `[auth]`: who checks SMTP AUTH passwords: mailerd's own logins (the default), or Dovecot's
//! auth service over its `auth-client` socket (`auth.backend = "dovecot"`, for sites whose users
//! already live in Dovecot, as Postfix's `smtpd_sasl_type = dovecot`).
//! Must not: talk to Dovecot (inbound::dovecot_auth does), or import a stage.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};

/// `auth.backend`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthBackend {
    /// mailerd's logins (`mailerd user`), with app passwords.
    Mailerd,
    /// Dovecot's auth service at this unix socket.
    Dovecot { socket: PathBuf },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAuth {
    backend: String,
    dovecot_socket: PathBuf,
}

impl Default for RawAuth {
    fn default() -> Self {
        RawAuth { backend: "mailerd".into(), dovecot_socket: PathBuf::from("/run/dovecot/auth-client") }
    }
}

impl RawAuth {
    /// `smtp_requires_app_password` is `[login]`'s: with Dovecot there are no app passwords.
    pub(super) fn validate(self, smtp_requires_app_password: bool) -> Result<AuthBackend, ConfigError> {
        match self.backend.as_str() {
            "mailerd" => Ok(AuthBackend::Mailerd),
            "dovecot" => {
                if !self.dovecot_socket.is_absolute() {
                    return Err(invalid("auth.dovecot_socket", "an absolute path to Dovecot's auth-client socket"));
                }
                if smtp_requires_app_password {
                    return Err(invalid(
                        "auth.backend",
                        "\"dovecot\" checks SMTP passwords itself: login.smtp_requires_app_password cannot apply",
                    ));
                }
                Ok(AuthBackend::Dovecot { socket: self.dovecot_socket })
            }
            other => Err(invalid("auth.backend", format!("`{other}` is not \"mailerd\" or \"dovecot\""))),
        }
    }
}

impl AuthBackend {
    pub(super) fn effective(&self) -> toml::Value {
        match self {
            AuthBackend::Mailerd => emit::table(vec![("backend", emit::text("mailerd"))]),
            AuthBackend::Dovecot { socket } => {
                emit::table(vec![("backend", emit::text("dovecot")), ("dovecot_socket", emit::path(socket))])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{AuthBackend, Config};

    #[test]
    fn backend_and_socket() {
        assert_eq!(Config::from_toml("").unwrap().auth, AuthBackend::Mailerd);
        let c = Config::from_toml("[auth]\nbackend = \"dovecot\"").unwrap();
        assert_eq!(c.auth, AuthBackend::Dovecot { socket: "/run/dovecot/auth-client".into() });
        let c =
            Config::from_toml("[auth]\nbackend = \"dovecot\"\ndovecot_socket = \"/var/spool/postfix/private/auth\"")
                .unwrap();
        assert_eq!(c.auth, AuthBackend::Dovecot { socket: "/var/spool/postfix/private/auth".into() });
        let again = Config::from_toml(&toml::to_string(&c.effective(false)).unwrap()).unwrap();
        assert_eq!(again.auth, c.auth);
        for (bad, key) in [
            ("[auth]\nbackend = \"ldap\"", "auth.backend"),
            ("[auth]\nbackend = \"dovecot\"\ndovecot_socket = \"run/auth\"", "auth.dovecot_socket"),
            ("[auth]\nbackend = \"dovecot\"\n[login]\nsmtp_requires_app_password = true", "auth.backend"),
        ] {
            let e = Config::from_toml(bad).unwrap_err().to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }
}
