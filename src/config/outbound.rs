//! `[outbound]`: how mail leaves for other servers: MX port, HELO name, TLS mode, timeouts
//! and concurrency; and `TlsMode`, which `[outbound]` and `[routes]` name and the SMTP client
//! obeys.
//! Must not: connect anywhere (outbound/ does), or import a stage.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, emit, invalid, secs};

/// Whether the SMTP client uses STARTTLS (`outbound.tls`, a route's `tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Use STARTTLS when offered; without verification of the certificate (RFC 7435).
    Opportunistic,
    /// STARTTLS must succeed or nothing is sent.
    Required,
    /// Never STARTTLS (tests against plain sinks).
    Off,
}

impl TlsMode {
    /// The config spelling of a mode; `key` names it in the error.
    pub(super) fn parse(key: &str, text: &str) -> Result<TlsMode, ConfigError> {
        match text {
            "opportunistic" => Ok(TlsMode::Opportunistic),
            "required" => Ok(TlsMode::Required),
            "off" => Ok(TlsMode::Off),
            other => Err(invalid(key, format!("`{other}`: use \"opportunistic\", \"required\" or \"off\""))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Opportunistic => "opportunistic",
            TlsMode::Required => "required",
            TlsMode::Off => "off",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Outbound {
    pub mx_port: u16,
    pub helo: String,
    pub tls: TlsMode,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub max_connections_per_destination: usize,
    pub max_messages_per_connection: u32,
    pub max_deliveries: usize,
    pub idle_timeout: Duration,
    /// Honour the MTA-STS policies of recipient domains (RFC 8461) when no static route applies.
    pub mta_sts: bool,
    /// The port MTA-STS policies are fetched from (443; tests set another).
    pub mta_sts_port: u16,
    /// The time a policy fetch may take, from connecting to the last byte.
    pub mta_sts_timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawOutbound {
    mx_port: u16,
    helo: Option<String>,
    tls: String,
    connect_timeout: u64,
    command_timeout: u64,
    max_connections_per_destination: usize,
    max_messages_per_connection: u32,
    max_deliveries: usize,
    idle_timeout: u64,
    mta_sts: bool,
    mta_sts_port: u16,
    mta_sts_timeout: u64,
}

impl Default for RawOutbound {
    fn default() -> Self {
        Self {
            mx_port: 25,
            helo: None,
            tls: "opportunistic".into(),
            connect_timeout: 30,
            command_timeout: 300,
            max_connections_per_destination: 20,
            max_messages_per_connection: 100,
            max_deliveries: 200,
            idle_timeout: 10,
            mta_sts: true,
            mta_sts_port: 443,
            mta_sts_timeout: 60,
        }
    }
}

impl RawOutbound {
    /// `hostname` is the HELO name when `outbound.helo` is not set.
    pub(super) fn validate(self, hostname: &str) -> Result<Outbound, ConfigError> {
        let o = self;
        Ok(Outbound {
            mx_port: o.mx_port,
            helo: o.helo.unwrap_or_else(|| hostname.to_string()),
            tls: TlsMode::parse("outbound.tls", &o.tls)?,
            connect_timeout: secs("outbound.connect_timeout", o.connect_timeout)?,
            command_timeout: secs("outbound.command_timeout", o.command_timeout)?,
            max_connections_per_destination: o.max_connections_per_destination.max(1),
            max_messages_per_connection: o.max_messages_per_connection.max(1),
            max_deliveries: o.max_deliveries.max(1),
            idle_timeout: secs("outbound.idle_timeout", o.idle_timeout)?,
            mta_sts: o.mta_sts,
            mta_sts_port: o.mta_sts_port,
            mta_sts_timeout: secs("outbound.mta_sts_timeout", o.mta_sts_timeout)?,
        })
    }
}

impl Outbound {
    pub(super) fn effective(&self) -> toml::Value {
        use emit::{int, secs, text};
        let o = self;
        emit::table(vec![
            ("mx_port", int(o.mx_port.into())),
            ("helo", text(&o.helo)),
            ("tls", text(o.tls.as_str())),
            ("connect_timeout", secs(o.connect_timeout)),
            ("command_timeout", secs(o.command_timeout)),
            ("max_connections_per_destination", int(o.max_connections_per_destination as u64)),
            ("max_messages_per_connection", int(o.max_messages_per_connection.into())),
            ("max_deliveries", int(o.max_deliveries as u64)),
            ("idle_timeout", secs(o.idle_timeout)),
            ("mta_sts", toml::Value::Boolean(o.mta_sts)),
            ("mta_sts_port", int(o.mta_sts_port.into())),
            ("mta_sts_timeout", secs(o.mta_sts_timeout)),
        ])
    }
}
