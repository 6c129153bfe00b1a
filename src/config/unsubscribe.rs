//! `[unsubscribe]`: one-click unsubscribe (RFC 8058) for bulk mail: whether mailerd adds
//! `List-Unsubscribe` to mail sent through the API and by the logins listed in `bulk_logins`,
//! the base of the https link (served by `listen.http` at `/u/TOKEN`, usually behind a TLS
//! proxy) and the domain of the mailto address.
//! Must not: sign or read tokens (bounce::unsubscribe does), or import a stage.

use serde::Deserialize;

use super::{ConfigError, emit, invalid};
use crate::smtp::address::{Domain, Mailbox};

#[derive(Debug, Clone, PartialEq)]
pub struct Unsubscribe {
    /// Add the headers at all (`false`: never; apps may still add their own).
    pub enabled: bool,
    /// `https://host[:port][/path]` without a trailing slash; the link is `{base_url}/u/TOKEN`.
    pub base_url: String,
    /// The domain of `unsubscribe+TOKEN@domain`; it must route back here.
    pub mailto_domain: Domain,
    /// SMTP logins (mailbox keys) whose mail is bulk mail and gets the headers.
    pub bulk_logins: Vec<String>,
}

impl Unsubscribe {
    /// Whether mail submitted by this SMTP login gets the headers.
    pub fn is_bulk_login(&self, login: &str) -> bool {
        self.enabled && Mailbox::parse(login).is_ok_and(|m| self.bulk_logins.contains(&m.key()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawUnsubscribe {
    enabled: bool,
    url: Option<String>,
    mailto_domain: Option<String>,
    bulk_logins: Vec<String>,
}

impl Default for RawUnsubscribe {
    fn default() -> Self {
        RawUnsubscribe { enabled: true, url: None, mailto_domain: None, bulk_logins: Vec::new() }
    }
}

impl RawUnsubscribe {
    /// `hostname` makes the default link (`https://hostname`), `return_path_domain` the
    /// default mailto domain.
    pub(super) fn validate(self, hostname: &str, return_path_domain: &str) -> Result<Unsubscribe, ConfigError> {
        let base_url = match self.url {
            None => format!("https://{}", hostname.to_ascii_lowercase()),
            Some(u) => {
                let u = u.trim().trim_end_matches('/').to_string();
                let rest = u.strip_prefix("https://").unwrap_or("");
                let host = rest.split(['/', ':']).next().unwrap_or("");
                let clean = rest.bytes().all(|b| b.is_ascii_graphic() && !b"<>,\"\\`{}|^".contains(&b));
                if host.is_empty() || !clean || Domain::parse(host).is_err() {
                    return Err(invalid(
                        "unsubscribe.url",
                        format!("`{u}` is not an https URL such as https://mail.example.com"),
                    ));
                }
                u
            }
        };
        let mailto_domain = match self.mailto_domain {
            Some(d) => {
                Domain::parse(&d).map_err(|_| invalid("unsubscribe.mailto_domain", format!("`{d}` is not a domain")))?
            }
            None => Domain::parse(return_path_domain)
                .map_err(|_| invalid("unsubscribe.mailto_domain", format!("`{return_path_domain}` is not a domain")))?,
        };
        let mut bulk_logins = Vec::new();
        for (i, l) in self.bulk_logins.iter().enumerate() {
            let m = Mailbox::parse(l.trim())
                .map_err(|e| invalid(format!("unsubscribe.bulk_logins[{i}]"), format!("`{l}`: {e}")))?;
            bulk_logins.push(m.key());
        }
        Ok(Unsubscribe { enabled: self.enabled, base_url, mailto_domain, bulk_logins })
    }
}

impl Unsubscribe {
    pub(super) fn effective(&self) -> toml::Value {
        emit::table(vec![
            ("enabled", toml::Value::Boolean(self.enabled)),
            ("url", emit::text(&self.base_url)),
            ("mailto_domain", emit::text(self.mailto_domain.as_str())),
            ("bulk_logins", emit::list(self.bulk_logins.clone())),
        ])
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn defaults_follow_the_host_name_and_return_path() {
        let c = Config::from_toml("hostname = \"mx.example.com\"").unwrap();
        assert_eq!(c.unsubscribe.base_url, "https://mx.example.com");
        assert_eq!(c.unsubscribe.mailto_domain.as_str(), "mx.example.com");
        assert!(c.unsubscribe.enabled);
        let c = Config::from_toml(
            "[unsubscribe]\nurl = \"https://u.example.com:8443/mail/\"\nbulk_logins = [\"News@Example.com\"]",
        )
        .unwrap();
        assert_eq!(c.unsubscribe.base_url, "https://u.example.com:8443/mail");
        assert!(c.unsubscribe.is_bulk_login("news@example.com"));
        assert!(!c.unsubscribe.is_bulk_login("alice@example.com"));
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, key) in [
            ("[unsubscribe]\nurl = \"http://x.example\"", "unsubscribe.url"),
            ("[unsubscribe]\nurl = \"https://x.example/a b\"", "unsubscribe.url"),
            ("[unsubscribe]\nmailto_domain = \"no domain\"", "unsubscribe.mailto_domain"),
            ("[unsubscribe]\nbulk_logins = [\"nobody\"]", "unsubscribe.bulk_logins[0]"),
        ] {
            let e = Config::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
