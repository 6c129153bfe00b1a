//! `[outbound]`: how mail leaves for other servers: MX port, HELO name, TLS mode, timeouts
//! and concurrency, MTA-STS and TLS reporting (RFC 8460); and `TlsMode`, which `[outbound]` and `[routes]` name and the SMTP client
//! obeys.
//! Must not: connect anywhere (outbound/ does), or import a stage.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, emit, invalid, secs};
use crate::smtp::address::Mailbox;

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
    /// Send the daily TLS report (RFC 8460) to recipient domains that publish `_smtp._tls`.
    pub tls_rpt: bool,
    /// The reports' From (and envelope sender, and `contact-info`); DKIM-signed when a
    /// `[dkim]` key covers its domain.
    pub tls_rpt_from: Mailbox,
    /// The reports' `organization-name`.
    pub tls_rpt_organization: String,
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
    tls_rpt: bool,
    tls_rpt_from: Option<String>,
    tls_rpt_organization: Option<String>,
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
            tls_rpt: false,
            tls_rpt_from: None,
            tls_rpt_organization: None,
        }
    }
}

impl RawOutbound {
    /// `hostname` is the HELO name when `outbound.helo` is not set.
    pub(super) fn validate(self, hostname: &str) -> Result<Outbound, ConfigError> {
        let o = self;
        let from = o.tls_rpt_from.unwrap_or_else(|| format!("tls-reports@{hostname}"));
        let tls_rpt_from = Mailbox::parse(from.trim())
            .map_err(|e| invalid("outbound.tls_rpt_from", format!("`{from}` is not an address: {e}")))?;
        let organization = o.tls_rpt_organization.unwrap_or_else(|| hostname.to_string());
        if organization.trim().is_empty() || organization.chars().any(char::is_control) {
            return Err(invalid("outbound.tls_rpt_organization", "must be a name on one line"));
        }
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
            tls_rpt: o.tls_rpt,
            tls_rpt_from,
            tls_rpt_organization: organization,
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
            ("tls_rpt", toml::Value::Boolean(o.tls_rpt)),
            ("tls_rpt_from", text(&o.tls_rpt_from.to_string())),
            ("tls_rpt_organization", text(&o.tls_rpt_organization)),
        ])
    }
}
