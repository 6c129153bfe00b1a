//! `[limits]`: sizes, counts, rates and deadlines of the SMTP and HTTP listeners.
//! Must not: enforce anything (inbound and http do), or import a stage.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, emit, invalid, secs};

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_size: u64,
    pub max_recipients: usize,
    /// Concurrent sessions of the MX (`listen.smtp`) listener.
    pub max_connections: usize,
    /// Concurrent sessions of the submission listener (its own pool).
    pub max_submission_connections: usize,
    /// Concurrent connections of the HTTP listener (its own pool).
    pub max_http_connections: usize,
    /// Concurrent SMTP sessions per client (an IPv4 address or an IPv6 /64); 0 = no limit.
    pub max_connections_per_ip: usize,
    /// New SMTP connections per client per minute; 0 = no limit.
    pub connection_rate_per_ip: u32,
    /// Messages (MAIL commands) per client per minute; 0 = no limit.
    pub messages_per_ip: u32,
    /// Recipients (RCPT commands) per client per minute; 0 = no limit.
    pub recipients_per_ip: u32,
    /// A whole command line must arrive within this (not just one read).
    pub command_timeout: Duration,
    /// Longest wait for one read during DATA.
    pub data_timeout: Duration,
    /// DATA must average at least this many bytes per second after a grace of
    /// `command_timeout` (0 = no floor): a slow client cannot stretch it for ever.
    pub min_data_rate: u64,
    pub max_errors: u32,
    /// NOOP, RSET, VRFY, HELP and EXPN beyond this many count as errors.
    pub junk_command_limit: u32,
    pub min_free_space: u64,
    pub auth_max_failures: u32,
    pub auth_failure_window: Duration,
    pub shutdown_grace: Duration,
    /// The HTTP request head must arrive within this; also how long an idle keep-alive
    /// connection is kept.
    pub http_header_timeout: Duration,
    /// A whole HTTP request (body and handler) must finish within this.
    pub http_request_timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLimits {
    max_message_size: u64,
    max_recipients: usize,
    max_connections: usize,
    max_submission_connections: usize,
    max_http_connections: usize,
    max_connections_per_ip: usize,
    connection_rate_per_ip: u32,
    messages_per_ip: u32,
    recipients_per_ip: u32,
    command_timeout: u64,
    data_timeout: u64,
    min_data_rate: u64,
    max_errors: u32,
    junk_command_limit: u32,
    min_free_space: u64,
    auth_max_failures: u32,
    auth_failure_window: u64,
    shutdown_grace: u64,
    http_header_timeout: u64,
    http_request_timeout: u64,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            max_message_size: 26_214_400,
            max_recipients: 100,
            max_connections: 1000,
            max_submission_connections: 200,
            max_http_connections: 500,
            max_connections_per_ip: 50,
            connection_rate_per_ip: 0,
            messages_per_ip: 0,
            recipients_per_ip: 0,
            command_timeout: 300,
            data_timeout: 600,
            min_data_rate: 1024,
            max_errors: 20,
            junk_command_limit: 100,
            min_free_space: 0,
            auth_max_failures: 5,
            auth_failure_window: 300,
            shutdown_grace: 30,
            http_header_timeout: 10,
            http_request_timeout: 120,
        }
    }
}

impl RawLimits {
    pub(super) fn validate(self) -> Result<Limits, ConfigError> {
        let l = self;
        if l.max_message_size < 1024 {
            return Err(invalid("limits.max_message_size", "must be at least 1024 bytes"));
        }
        if l.max_recipients == 0 {
            return Err(invalid("limits.max_recipients", "must be at least 1"));
        }
        for (key, n) in [
            ("limits.max_connections", l.max_connections),
            ("limits.max_submission_connections", l.max_submission_connections),
            ("limits.max_http_connections", l.max_http_connections),
        ] {
            if n == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        Ok(Limits {
            max_message_size: l.max_message_size,
            max_recipients: l.max_recipients,
            max_connections: l.max_connections,
            max_submission_connections: l.max_submission_connections,
            max_http_connections: l.max_http_connections,
            max_connections_per_ip: l.max_connections_per_ip,
            connection_rate_per_ip: l.connection_rate_per_ip,
            messages_per_ip: l.messages_per_ip,
            recipients_per_ip: l.recipients_per_ip,
            command_timeout: secs("limits.command_timeout", l.command_timeout)?,
            data_timeout: secs("limits.data_timeout", l.data_timeout)?,
            min_data_rate: l.min_data_rate,
            max_errors: l.max_errors.max(1),
            junk_command_limit: l.junk_command_limit,
            min_free_space: l.min_free_space,
            auth_max_failures: l.auth_max_failures.max(1),
            auth_failure_window: secs("limits.auth_failure_window", l.auth_failure_window)?,
            shutdown_grace: secs("limits.shutdown_grace", l.shutdown_grace)?,
            http_header_timeout: secs("limits.http_header_timeout", l.http_header_timeout)?,
            http_request_timeout: secs("limits.http_request_timeout", l.http_request_timeout)?,
        })
    }
}

impl Limits {
    pub(super) fn effective(&self) -> toml::Value {
        use emit::{int, secs};
        let l = self;
        emit::table(vec![
            ("max_message_size", int(l.max_message_size)),
            ("max_recipients", int(l.max_recipients as u64)),
            ("max_connections", int(l.max_connections as u64)),
            ("max_submission_connections", int(l.max_submission_connections as u64)),
            ("max_http_connections", int(l.max_http_connections as u64)),
            ("max_connections_per_ip", int(l.max_connections_per_ip as u64)),
            ("connection_rate_per_ip", int(l.connection_rate_per_ip.into())),
            ("messages_per_ip", int(l.messages_per_ip.into())),
            ("recipients_per_ip", int(l.recipients_per_ip.into())),
            ("command_timeout", secs(l.command_timeout)),
            ("data_timeout", secs(l.data_timeout)),
            ("min_data_rate", int(l.min_data_rate)),
            ("max_errors", int(l.max_errors.into())),
            ("junk_command_limit", int(l.junk_command_limit.into())),
            ("min_free_space", int(l.min_free_space)),
            ("auth_max_failures", int(l.auth_max_failures.into())),
            ("auth_failure_window", secs(l.auth_failure_window)),
            ("shutdown_grace", secs(l.shutdown_grace)),
            ("http_header_timeout", secs(l.http_header_timeout)),
            ("http_request_timeout", secs(l.http_request_timeout)),
        ])
    }
}
