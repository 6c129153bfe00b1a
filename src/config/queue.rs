//! `[queue]`: holding the queue (`hold`) and the length of a delivery lease (`lease`).
//! Must not: schedule anything (queue::scheduler does), or import a stage.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, emit, invalid};

#[derive(Debug, Clone)]
pub struct Queue {
    pub hold: bool,
    /// How long a claimed recipient stays ours without renewal; a node renews its leases
    /// every third of this while it works, so a dead node's work resumes after at most this.
    pub lease: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawQueue {
    hold: bool,
    lease: u64,
}

impl Default for RawQueue {
    fn default() -> Self {
        RawQueue { hold: false, lease: 60 }
    }
}

impl RawQueue {
    pub(super) fn validate(self) -> Result<Queue, ConfigError> {
        // A lease must outlast the renewal interval and the longest store round trip by far.
        if !(6..=86_400).contains(&self.lease) {
            return Err(invalid("queue.lease", "seconds between 6 and 86400, e.g. 60"));
        }
        Ok(Queue { hold: self.hold, lease: Duration::from_secs(self.lease) })
    }
}

impl Queue {
    pub(super) fn effective(&self) -> toml::Value {
        emit::table(vec![("hold", toml::Value::Boolean(self.hold)), ("lease", emit::secs(self.lease))])
    }
}
