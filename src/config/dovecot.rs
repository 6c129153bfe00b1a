//! `[dovecot]`: what mailerd keeps for a Dovecot beside it: the passwd-file that
//! `mailerd user add|passwd|del` rewrite, so Dovecot's passdb and userdb (logins, argon2id
//! hashes, quota limits) follow mailerd's logins.
//! Must not: write the file (local::passwd_file does), or import a stage.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};

/// `[dovecot]`, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dovecot {
    /// The passwd-file `mailerd user` keeps (None: none is kept).
    pub passwd_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDovecot {
    passwd_file: String,
}

impl RawDovecot {
    pub(super) fn validate(self) -> Result<Dovecot, ConfigError> {
        if self.passwd_file.is_empty() {
            return Ok(Dovecot { passwd_file: None });
        }
        let path = PathBuf::from(&self.passwd_file);
        if !path.is_absolute() || path.file_name().is_none() {
            return Err(invalid("dovecot.passwd_file", "an absolute path to a file (Dovecot reads it by that path)"));
        }
        Ok(Dovecot { passwd_file: Some(path) })
    }
}

impl Dovecot {
    pub(super) fn effective(&self) -> toml::Value {
        emit::table(vec![("passwd_file", self.passwd_file.as_deref().map_or_else(|| emit::text(""), emit::path))])
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn passwd_file_is_absolute_or_off() {
        assert_eq!(Config::from_toml("").unwrap().dovecot.passwd_file, None);
        let c = Config::from_toml("[dovecot]\npasswd_file = \"/etc/dovecot/mailerd.passwd\"").unwrap();
        assert_eq!(c.dovecot.passwd_file.as_deref(), Some(std::path::Path::new("/etc/dovecot/mailerd.passwd")));
        let again = Config::from_toml(&toml::to_string(&c.effective(false)).unwrap()).unwrap();
        assert_eq!(again.dovecot, c.dovecot);
        for bad in ["users", "/"] {
            let e = Config::from_toml(&format!("[dovecot]\npasswd_file = \"{bad}\"")).unwrap_err().to_string();
            assert!(e.contains("dovecot.passwd_file"), "{bad}: {e}");
        }
    }
}
