//! The retry policy: after an attempt, deliver, bounce, retry later (exponential backoff) or
//! give up because the message is older than the maximum age.
//!
//! Standards: RFC 5321 §4.5.4.1 (retry at least 30 minutes apart is typical, give up after
//! 4–5 days), RFC 3463 (4.4.7: delivery time expired).
//! Pure: takes the outcome, the attempt count, the arrival time, `now` and the policy as
//! arguments; `decide` is the whole decision.
//! Must not: read the clock or the store.

use std::time::Duration;

use crate::config::Retry;
use crate::outbound::outcome::DeliveryOutcome;
use crate::time::Timestamp;

/// What becomes of a recipient after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Delivered,
    /// A permanent failure: given up at once.
    Bounced,
    /// A temporary failure: tried again at this time.
    RetryAt(Timestamp),
    /// A temporary failure of a message older than its maximum age: given up.
    Expired,
}

/// The decision after an attempt that ended in `outcome`: `attempts` failed attempts came
/// before it, the message arrived at `received_at` (the maximum age counts from its arrival).
pub fn decide(
    outcome: &DeliveryOutcome,
    attempts: u32,
    received_at: Timestamp,
    now: Timestamp,
    policy: &Retry,
) -> Decision {
    match outcome {
        DeliveryOutcome::Delivered(_) => Decision::Delivered,
        DeliveryOutcome::Failed(_) => Decision::Bounced,
        DeliveryOutcome::Deferred(report) => {
            let max_age = if report.is_mailbox_full() { policy.mailbox_full_max_age } else { policy.max_age };
            if is_expired(received_at, now, max_age) {
                Decision::Expired
            } else {
                Decision::RetryAt(now.plus(backoff_with(attempts, policy.first, policy.max_interval)))
            }
        }
    }
}

/// Delay before the attempt after `attempts` failed ones: first, 2×, 4× … capped at `max`.
pub fn backoff_with(attempts: u32, first: Duration, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(attempts.min(16)).unwrap_or(u32::MAX);
    first.saturating_mul(factor).min(max)
}

/// True when a message received at `received_at` is too old to be tried again.
fn is_expired(received_at: Timestamp, now: Timestamp, max_age: Duration) -> bool {
    now.millis().saturating_sub(received_at.millis()) >= max_age.as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::outcome::{Report, Scope, Stage};
    use crate::smtp::reply::EnhancedStatus;

    const MIN: i64 = 60_000;
    const DAY: i64 = 86_400_000;

    /// The default `[retry]`: 5 min, 10, 20 … capped at 4 h; 5 days of age, 1 day when full.
    fn policy() -> Retry {
        Retry {
            first: Duration::from_secs(300),
            max_interval: Duration::from_secs(4 * 3600),
            max_age: Duration::from_secs(5 * 86_400),
            mailbox_full_max_age: Duration::from_secs(86_400),
        }
    }

    fn report(status: &str) -> Report {
        Report {
            status: EnhancedStatus::parse(status).unwrap(),
            reply_code: Some(if status.starts_with('5') { 550 } else { 451 }),
            detail: format!("{status} from the remote"),
            remote: None,
            stage: Stage::RcptTo,
            scope: Scope::Recipient,
            tls_policy: None,
        }
    }

    fn deferred(status: &str) -> DeliveryOutcome {
        DeliveryOutcome::Deferred(report(status))
    }

    /// The decision for an attempt `age` ms after arrival, after `attempts` failed ones.
    fn at(outcome: &DeliveryOutcome, attempts: u32, age: i64) -> Decision {
        let arrival = Timestamp(1_800_000_000_000);
        decide(outcome, attempts, arrival, Timestamp(arrival.millis() + age), &policy())
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = policy();
        let mins: Vec<u64> = (0..8).map(|a| backoff_with(a, p.first, p.max_interval).as_secs() / 60).collect();
        assert_eq!(mins, [5, 10, 20, 40, 80, 160, 240, 240]);
        assert_eq!(backoff_with(u32::MAX, p.first, p.max_interval), Duration::from_secs(4 * 3600));
    }

    #[test]
    fn a_deferral_is_retried_after_its_backoff_step() {
        let arrival = Timestamp(1_800_000_000_000);
        for (attempts, wait) in [(0, 5 * MIN), (1, 10 * MIN), (3, 40 * MIN), (9, 240 * MIN)] {
            let now = Timestamp(arrival.millis() + DAY);
            let d = decide(&deferred("4.3.0"), attempts, arrival, now, &policy());
            assert_eq!(d, Decision::RetryAt(Timestamp(now.millis() + wait)), "after {attempts} attempts");
        }
    }

    #[test]
    fn max_age_and_its_edge() {
        let o = deferred("4.4.1");
        assert!(matches!(at(&o, 5, 4 * DAY), Decision::RetryAt(_)));
        assert!(matches!(at(&o, 5, 5 * DAY - 1000), Decision::RetryAt(_)), "one second before max age");
        assert_eq!(at(&o, 5, 5 * DAY), Decision::Expired, "exactly at max age");
        assert_eq!(at(&o, 5, 6 * DAY), Decision::Expired);
    }

    #[test]
    fn mailbox_full_has_its_own_max_age() {
        let full = deferred("4.2.2");
        assert!(matches!(at(&full, 2, DAY - 1000), Decision::RetryAt(_)));
        assert_eq!(at(&full, 2, DAY), Decision::Expired, "mailbox_full_max_age, not max_age");
        assert!(matches!(at(&deferred("4.3.0"), 2, DAY), Decision::RetryAt(_)), "other 4xx: max_age");
    }

    #[test]
    fn a_5xx_is_final_and_a_delivery_is_done() {
        let failed = DeliveryOutcome::Failed(report("5.1.1"));
        assert_eq!(at(&failed, 0, 0), Decision::Bounced);
        assert_eq!(at(&failed, 3, 10 * DAY), Decision::Bounced);
        assert_eq!(at(&DeliveryOutcome::Delivered(report("2.0.0")), 0, 10 * DAY), Decision::Delivered);
    }
}
