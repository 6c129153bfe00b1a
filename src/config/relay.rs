//! `[relay]`: who may relay without AUTH (`trusted_networks`); `sender_login_match` is read
//! here and goes into `Senders` (`senders.rs`) with the `[[senders]]` entries.
//! Must not: decide a relay (inbound::policy does), or import a stage.

use ipnet::IpNet;
use serde::Deserialize;

use super::{ConfigError, emit, invalid};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawRelay {
    trusted_networks: Vec<String>,
    pub(super) sender_login_match: bool,
}

impl Default for RawRelay {
    fn default() -> Self {
        RawRelay { trusted_networks: Vec::new(), sender_login_match: true }
    }
}

impl RawRelay {
    /// The trusted networks (a bare address is a network of one).
    pub(super) fn trusted_networks(&self) -> Result<Vec<IpNet>, ConfigError> {
        self.trusted_networks
            .iter()
            .map(|n| {
                n.parse::<IpNet>().or_else(|_| n.parse::<std::net::IpAddr>().map(IpNet::from)).map_err(|_| {
                    invalid("relay.trusted_networks", format!("`{n}` is not a network (e.g. 127.0.0.0/8)"))
                })
            })
            .collect()
    }
}

/// The `[relay]` table of the effective configuration.
pub(super) fn effective(trusted_networks: &[IpNet], sender_login_match: bool) -> toml::Value {
    emit::table(vec![
        ("trusted_networks", emit::list(trusted_networks.iter().map(|n| n.to_string()).collect())),
        ("sender_login_match", toml::Value::Boolean(sender_login_match)),
    ])
}
