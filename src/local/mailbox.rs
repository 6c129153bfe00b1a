//! Who lives here: resolves a recipient in a local domain to a mailbox key, through aliases.
//!
//! Standards: RFC 5321 §4.5.1 (`postmaster` exists in every local domain, case-insensitively).
//! A mailbox key is `local@domain` with the local part lower-cased; that is also the key of
//! the `mailboxes` table (login and quota account).
//! Must not: look at the store (the caller does, with the key this module returns).

use crate::config::Config;
use crate::smtp::address::Mailbox;

/// Where a recipient in a local domain goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A local mailbox; `implicit` mailboxes (postmaster) exist without a user record.
    Mailbox { key: String, implicit: bool },
    /// An alias to an address in another domain.
    Forward(Mailbox),
}

/// Resolves `rcpt` (whose domain the caller knows to be local). One alias hop only:
/// alias targets are not aliases themselves (no loops by construction).
pub fn resolve(config: &Config, rcpt: &Mailbox) -> Resolution {
    let key = rcpt.key();
    let target = match config.local.aliases.get(&key) {
        Some(t) if !config.is_local_domain(t.domain()) => return Resolution::Forward(t.clone()),
        Some(t) => t.clone(),
        None => rcpt.clone(),
    };
    let implicit = target.local().eq_ignore_ascii_case("postmaster");
    Resolution::Mailbox { key: target.key(), implicit }
}

/// The mailbox of `<Postmaster>` without a domain: postmaster of the first local domain,
/// or of the host name when there is none.
pub fn postmaster_key(config: &Config) -> String {
    match config.local.domains.first() {
        Some(d) => format!("postmaster@{d}"),
        None => format!("postmaster@{}", config.hostname.to_ascii_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_toml(
            "[local]\ndomains = [\"a.test\", \"b.test\"]\naliases = { \"info@a.test\" = \"Bob@b.test\", \"ext@a.test\" = \"x@other.example\" }",
        )
        .unwrap()
    }

    #[test]
    fn aliases_and_postmaster() {
        let c = config();
        let m = |s: &str| Mailbox::parse(s).unwrap();
        assert_eq!(resolve(&c, &m("INFO@a.test")), Resolution::Mailbox { key: "bob@b.test".into(), implicit: false });
        assert_eq!(resolve(&c, &m("ext@a.test")), Resolution::Forward(m("x@other.example")));
        assert_eq!(
            resolve(&c, &m("PostMaster@b.test")),
            Resolution::Mailbox { key: "postmaster@b.test".into(), implicit: true }
        );
        assert_eq!(postmaster_key(&c), "postmaster@a.test");
    }
}
