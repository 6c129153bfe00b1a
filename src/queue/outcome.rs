//! The result of one delivery attempt of one recipient, as every transport returns it.
//!
//! Standards: RFC 3463 (the status carried by each outcome), RFC 3464 (Remote-MTA,
//! Diagnostic-Code: kept here so a DSN can quote them).
//! Outcomes are values, not errors: `Delivered`, `Deferred` (try again), `Failed` (give up).
//! Must not: be turned into store records anywhere but `queue::scheduler`.

/// What happened, with the remote server's own words when there were any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// RFC 3463 status, e.g. `2.0.0`, `4.4.1`, `5.1.1`.
    pub status: String,
    /// The SMTP reply code when a server answered (`550`).
    pub reply_code: Option<u16>,
    /// The complete reply text (all lines), or a description of the failure.
    pub detail: String,
    /// `host[ip]:port` of the server that answered.
    pub remote: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered(Report),
    Deferred(Report),
    Failed(Report),
}

impl DeliveryOutcome {
    pub fn report(&self) -> &Report {
        match self {
            DeliveryOutcome::Delivered(r) | DeliveryOutcome::Deferred(r) | DeliveryOutcome::Failed(r) => r,
        }
    }

    pub fn deferred(status: &str, detail: impl Into<String>) -> Self {
        DeliveryOutcome::Deferred(Report { status: status.into(), detail: detail.into(), ..Report::default() })
    }

    pub fn failed(status: &str, detail: impl Into<String>) -> Self {
        DeliveryOutcome::Failed(Report { status: status.into(), detail: detail.into(), ..Report::default() })
    }

    pub fn delivered(detail: impl Into<String>) -> Self {
        DeliveryOutcome::Delivered(Report { status: "2.0.0".into(), detail: detail.into(), ..Report::default() })
    }
}
