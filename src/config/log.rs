//! `[log]`: how log lines on stderr are written (`format`: text or JSON).
//! Must not: write a log line (logging.rs does), or import a stage.

use serde::Deserialize;

use super::{ConfigError, emit, invalid};

/// `[log]`: the lines on stderr (`logging`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Log {
    pub format: LogFormat,
}

/// `log.format`: `text` (logfmt after the time, level and verb) or `json` (one object a line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLog {
    format: Option<String>,
}

impl RawLog {
    pub(super) fn validate(self) -> Result<Log, ConfigError> {
        let format = match self.format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(invalid("log.format", format!("`{other}`: use \"text\" or \"json\""))),
        };
        Ok(Log { format })
    }
}

impl Log {
    pub(super) fn effective(&self) -> toml::Value {
        let format = match self.format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        emit::table(vec![("format", emit::text(format))])
    }
}
