//! Logs on stderr, one line per event, the verb first (`delivered`, `deferred`, `bounced`,
//! `expired`, `queued`, `rejected`…), then the facts as `key=value` pairs.
//!
//! `log.format = "text"` (the default): `TIME LEVEL verb key=value …`, logfmt-quoted (a value
//! with a space, a quote, `=` or nothing at all is written in double quotes, with `"` and `\`
//! escaped and line breaks as `\n`), so a logfmt parser reads every pair; `"json"`: one JSON
//! object per line (`ts`, `level`, `msg` and the fields; numbers and booleans as such). The
//! level filter is `MAILERD_LOG` (e.g. `debug`, `mailerd=info`), else the caller's default.
//! Standards: logfmt as Heroku and Grafana Loki read it; RFC 8259 (JSON).
//! Must not: write anywhere but stderr, or take secrets (callers never log them).

use std::fmt::{self, Write as _};
use std::io::IsTerminal as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;
use crate::time::Timestamp;

/// Starts logging (once per process; a second call changes nothing).
pub fn init(default_level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILERD_LOG").unwrap_or_else(|_| default_level.into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .event_format(Line { format })
        .try_init();
}

/// The formatter of one event.
struct Line {
    format: LogFormat,
}

/// A field's value as it was recorded.
enum Value {
    Text(String),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
}

#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(&'static str, Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::Text(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields arrive here as Display wrappers, `?x` ones as Debug.
        self.put(field, Value::Text(format!("{value:?}")));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::Uint(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::Float(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        match (field.name(), value) {
            ("message", Value::Text(t)) => self.message = t,
            (name, value) => self.pairs.push((name, value)),
        }
    }
}

/// A logfmt value: bare when it can be, else quoted and escaped.
pub fn logfmt_value(text: &str) -> String {
    let bare = !text.is_empty() && text.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\');
    if bare {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Now, to the millisecond: `2026-12-06T07:23:33.123Z`.
fn now() -> String {
    let t = Timestamp::now();
    let secs = t.iso8601();
    format!("{}.{:03}Z", secs.trim_end_matches('Z'), t.millis().rem_euclid(1000))
}

fn render(format: LogFormat, level: &tracing::Level, f: &Fields) -> String {
    match format {
        LogFormat::Text => {
            let mut line = format!("{} {:>5} {}", now(), level.as_str(), f.message);
            for (key, value) in &f.pairs {
                let v = match value {
                    Value::Text(t) => logfmt_value(t),
                    Value::Int(n) => n.to_string(),
                    Value::Uint(n) => n.to_string(),
                    Value::Float(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                };
                let _ = write!(line, " {key}={v}");
            }
            line
        }
        LogFormat::Json => {
            // Written by hand so `ts`, `level` and `msg` come first (a Map would sort the keys).
            let json = |v: serde_json::Value| v.to_string();
            let mut line = format!(
                "{{\"ts\":{},\"level\":{},\"msg\":{}",
                json(now().into()),
                json(level.as_str().to_ascii_lowercase().into()),
                json(f.message.clone().into())
            );
            for (key, value) in &f.pairs {
                let v: serde_json::Value = match value {
                    Value::Text(t) => t.clone().into(),
                    Value::Int(n) => (*n).into(),
                    Value::Uint(n) => (*n).into(),
                    Value::Float(n) => serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, Into::into),
                    Value::Bool(b) => (*b).into(),
                };
                let _ = write!(line, ",{}:{}", json((*key).into()), json(v));
            }
            line.push('}');
            line
        }
    }
}

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        writeln!(writer, "{}", render(self.format, event.metadata().level(), &fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_quotes_what_needs_it() {
        assert_eq!(logfmt_value("a@b.test"), "a@b.test");
        assert_eq!(logfmt_value("250 2.0.0 Ok: queued"), "\"250 2.0.0 Ok: queued\"");
        assert_eq!(logfmt_value(""), "\"\"");
        assert_eq!(logfmt_value("a=b"), "\"a=b\"");
        assert_eq!(logfmt_value("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
        assert_eq!(logfmt_value("[\"a@b\", \"c@d\"]"), "\"[\\\"a@b\\\", \\\"c@d\\\"]\"");
    }

    #[test]
    fn lines_start_with_the_verb() {
        let f = Fields {
            message: "delivered".into(),
            pairs: vec![
                ("queue_id", Value::Text("01A2".into())),
                ("detail", Value::Text("250 2.0.0 Ok".into())),
                ("size", Value::Uint(1234)),
                ("tls", Value::Bool(true)),
            ],
        };
        let text = render(LogFormat::Text, &tracing::Level::INFO, &f);
        let (_, rest) = text.split_once("  INFO ").unwrap();
        assert_eq!(rest, "delivered queue_id=01A2 detail=\"250 2.0.0 Ok\" size=1234 tls=true");
        let json: serde_json::Value =
            serde_json::from_str(&render(LogFormat::Json, &tracing::Level::WARN, &f)).unwrap();
        assert_eq!((json["level"].as_str(), json["msg"].as_str()), (Some("warn"), Some("delivered")));
        assert_eq!((json["size"].as_u64(), json["tls"].as_bool()), (Some(1234), Some(true)));
        assert_eq!(json["detail"], "250 2.0.0 Ok");
        assert!(json["ts"].as_str().unwrap().ends_with('Z'));
        let raw = render(LogFormat::Json, &tracing::Level::INFO, &f);
        assert!(
            raw.starts_with("{\"ts\":\"") && raw.contains("\"level\":\"info\",\"msg\":\"delivered\",\"queue_id\""),
            "{raw}"
        );
    }
}
