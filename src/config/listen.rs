//! `[listen]`: where the MX, submission and HTTP listeners listen (`""` turns one off).
//!
//! `listen.http` is off unless given (the README's promise): the API, the dashboard and
//! `/metrics` listen only where an operator chose to expose them.
//! Must not: bind anything (the daemon does), or import a stage.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};

#[derive(Debug, Clone)]
pub struct Listen {
    pub smtp: Option<SocketAddr>,
    pub submission: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawListen {
    smtp: String,
    submission: String,
    http: String,
}

impl Default for RawListen {
    fn default() -> Self {
        Self { smtp: "127.0.0.1:2525".into(), submission: "127.0.0.1:2587".into(), http: String::new() }
    }
}

impl RawListen {
    pub(super) fn validate(self) -> Result<Listen, ConfigError> {
        Ok(Listen {
            smtp: listen_addr("listen.smtp", &self.smtp)?,
            submission: listen_addr("listen.submission", &self.submission)?,
            http: listen_addr("listen.http", &self.http)?,
        })
    }
}

impl Listen {
    pub(super) fn effective(&self) -> toml::Value {
        let addr = |a: Option<SocketAddr>| toml::Value::String(a.map(|a| a.to_string()).unwrap_or_default());
        emit::table(vec![("smtp", addr(self.smtp)), ("submission", addr(self.submission)), ("http", addr(self.http))])
    }
}

fn listen_addr(key: &str, text: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| invalid(key, format!("`{text}` is not an address:port (use \"\" to disable)")))
}
