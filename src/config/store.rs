//! `[store]`: which store the queue lives in (`store.url`: SQLite file or PostgreSQL), and the
//! URL with its password masked for `mailerd config check`.
//! Must not: open or touch the store (`store::open` does), or import a stage.

use std::path::Path;

use serde::Deserialize;

use super::{ConfigError, MASKED, emit, invalid};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawStore {
    url: Option<String>,
}

impl RawStore {
    /// The store URL: as given, or the SQLite file `mailerd.db` in `data_dir`.
    pub(super) fn validate(self, data_dir: &Path) -> Result<String, ConfigError> {
        match self.url {
            Some(url) if url.starts_with("sqlite://") => Ok(url),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(url),
            Some(url) => {
                Err(invalid("store.url", format!("`{url}`: use sqlite://PATH or postgres://USER@HOST/DATABASE")))
            }
            None => Ok(format!("sqlite://{}", data_dir.join("mailerd.db").display())),
        }
    }
}

/// The `[store]` table of the effective configuration.
pub(super) fn effective(url: &str, mask: bool) -> toml::Value {
    let url = if mask { mask_url(url) } else { url.to_string() };
    emit::table(vec![("url", toml::Value::String(url))])
}

/// `url` without its password (`postgres://user:PASSWORD@host`, `?password=`).
pub fn mask_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..].find(['/', '?']).map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@').map(|i| rest_start + i)
            && let Some(colon) = out[rest_start..at].find(':').map(|i| rest_start + i)
        {
            out.replace_range(colon + 1..at, MASKED);
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let masked: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}={MASKED}"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", masked.join("&"));
    }
    out
}
