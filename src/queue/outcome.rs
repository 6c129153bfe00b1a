//! The result of one delivery attempt of one recipient, as every transport returns it.
//!
//! Standards: RFC 3463 (the status carried by each outcome).
//! Outcomes are values, not errors: `Delivered`, `Deferred` (try again), `Failed` (give up).
//! Must not: be turned into store records anywhere but `queue::scheduler`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered { detail: String },
    Deferred { status: String, detail: String },
    Failed { status: String, detail: String },
}
