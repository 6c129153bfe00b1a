//! The retry policy: exponential backoff and the maximum age of a deferred recipient.
//!
//! Standards: RFC 5321 §4.5.4.1 (retry at least 30 minutes apart is typical, give up after
//! 4–5 days), RFC 3463 (4.4.7: delivery time expired).
//! Pure: takes the attempt count and times as arguments.
//! Must not: read the clock or the store.

use std::time::Duration;

use crate::time::Timestamp;

/// Delay before the attempt after `attempts` failed ones: first, 2×, 4× … capped at `max`.
pub fn backoff_with(attempts: u32, first: Duration, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(attempts.min(16)).unwrap_or(u32::MAX);
    first.saturating_mul(factor).min(max)
}

/// True for statuses that mean "mailbox full" (x.2.2), which are retried for a shorter time.
pub fn is_mailbox_full(status: &str) -> bool {
    status.get(1..).is_some_and(|rest| rest == ".2.2")
}

/// True when a message received at `received_at` is too old to be tried again.
pub fn is_expired(received_at: Timestamp, now: Timestamp, max_age: Duration) -> bool {
    now.millis().saturating_sub(received_at.millis()) >= max_age.as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default schedule of `[retry]`: 5 min, 10, 20 … capped at 4 h; 5 days of age.
    const MAX_AGE: Duration = Duration::from_secs(5 * 24 * 3600);

    fn backoff(attempts: u32) -> Duration {
        backoff_with(attempts, Duration::from_secs(300), Duration::from_secs(4 * 3600))
    }

    #[test]
    fn schedule_doubles_and_caps() {
        let mins: Vec<u64> = (0..8).map(|a| backoff(a).as_secs() / 60).collect();
        assert_eq!(mins, [5, 10, 20, 40, 80, 160, 240, 240]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(4 * 3600));
    }

    #[test]
    fn expiry() {
        let day = 86_400_000;
        assert!(!is_expired(Timestamp(0), Timestamp(4 * day), MAX_AGE));
        assert!(is_expired(Timestamp(0), Timestamp(5 * day), MAX_AGE));
    }
}
