//! Wall-clock time as a value (`Timestamp`, Unix milliseconds) and its RFC 5322 rendering, and
//! `Clock`, the source of `now` a long-lived component is given: the system's, or a manual one a
//! test sets and advances (hours and weeks pass, and the daily TLS report is made, without
//! sleeping).
//!
//! Standards: RFC 5322 §3.3 (date-time), always rendered in UTC (`+0000`).
//! Must not: be read inside pure modules; they take a `Timestamp` argument instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp(d.as_millis() as i64)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(d.as_millis() as i64))
    }

    /// `Sat, 28 Nov 2026 16:41:33 +0000`
    pub fn rfc5322(self) -> String {
        let secs = self.0.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let wd = WEEKDAYS.get(days.rem_euclid(7) as usize).copied().unwrap_or("Thu");
        let mon = MONTHS.get((m - 1) as usize).copied().unwrap_or("Jan");
        format!("{wd}, {d:02} {mon} {y} {:02}:{:02}:{:02} +0000", rem / 3600, (rem % 3600) / 60, rem % 60)
    }

    /// `2026-11-28T16:41:33Z`, for logs and JSON.
    pub fn iso8601(self) -> String {
        let secs = self.0.div_euclid(1000);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
    }
}

impl Timestamp {
    /// Reads what [`Timestamp::iso8601`] writes (`2026-11-28T16:41:33Z`).
    pub fn parse_iso8601(text: &str) -> Option<Timestamp> {
        let t = text.trim().strip_suffix('Z')?;
        let (date, time) = t.split_once('T')?;
        let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
        let mut h = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
        Timestamp::from_utc(y, m, day, hh, mm, ss)
    }

    /// A UTC date and time; None when a field is out of range.
    pub fn from_utc(y: i64, m: i64, d: i64, hour: i64, min: i64, sec: i64) -> Option<Timestamp> {
        let valid = (1..=12).contains(&m) && (1..=31).contains(&d) && (0..24).contains(&hour);
        if !valid || !(0..60).contains(&min) || !(0..=60).contains(&sec) {
            return None;
        }
        let days = days_from_civil(y, m, d);
        Some(Timestamp((days * 86_400 + hour * 3600 + min * 60 + sec) * 1000))
    }
}

/// Howard Hinnant's civil-to-days algorithm, the inverse of `civil_from_days`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Where a task reads the time: the system clock, or a clock the caller sets (tests). Cheap
/// to clone; clones share the time.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Manual>>,
}

struct Manual {
    millis: AtomicI64,
    changed: tokio::sync::Notify,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that stands at `at` until `set` moves it.
    pub fn manual(at: Timestamp) -> Clock {
        Clock { manual: Some(Arc::new(Manual { millis: AtomicI64::new(at.0), changed: Default::default() })) }
    }

    pub fn now(&self) -> Timestamp {
        match &self.manual {
            Some(m) => Timestamp(m.millis.load(Ordering::SeqCst)),
            None => Timestamp::now(),
        }
    }

    /// Moves a manual clock to `at` and wakes the task waiting in `changed` (the system clock
    /// cannot be set: nothing happens).
    pub fn set(&self, at: Timestamp) {
        if let Some(m) = &self.manual {
            m.millis.store(at.0, Ordering::SeqCst);
            m.changed.notify_one();
        }
    }

    /// Moves a manual clock forward by `d` (the system clock: nothing happens).
    pub fn advance(&self, d: Duration) {
        if let Some(m) = &self.manual {
            m.millis.fetch_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX), Ordering::SeqCst);
            m.changed.notify_one();
        }
    }

    /// Returns when a manual clock was set (never, for the system clock): a task sleeping
    /// until a time on this clock waits for this too.
    pub async fn changed(&self) {
        match &self.manual {
            Some(m) => m.changed.notified().await,
            None => std::future::pending().await,
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            Some(_) => write!(f, "Clock::manual({})", self.now().iso8601()),
            None => f.write_str("Clock::system"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn renders_known_dates() {
        assert_eq!(Timestamp(0).rfc5322(), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(Timestamp(1_795_884_093_000).rfc5322(), "Sat, 28 Nov 2026 16:41:33 +0000");
        assert_eq!(Timestamp(951_782_400_000).iso8601(), "2000-02-29T00:00:00Z");
        assert_eq!(Timestamp::from_utc(2026, 11, 28, 16, 41, 33), Some(Timestamp(1_795_884_093_000)));
        assert_eq!(Timestamp::from_utc(1970, 1, 1, 0, 0, 0), Some(Timestamp(0)));
        assert_eq!(Timestamp::from_utc(2000, 2, 29, 0, 0, 0), Some(Timestamp(951_782_400_000)));
        assert_eq!(Timestamp::from_utc(2000, 13, 1, 0, 0, 0), None);
    }

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_set_and_says_so() {
        use super::Clock;
        let c = Clock::manual(Timestamp(5_000));
        assert_eq!(c.clone().now(), Timestamp(5_000));
        let waiter = tokio::spawn({
            let c = c.clone();
            async move {
                c.changed().await;
                c.now()
            }
        });
        c.set(Timestamp(90_000));
        assert_eq!(waiter.await.unwrap(), Timestamp(90_000));
        let system = Clock::system();
        system.set(Timestamp(0));
        assert!(system.now() > Timestamp(1_700_000_000_000));
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_share_it() {
        let clock = super::Clock::manual(Timestamp(1_000));
        let other = clock.clone();
        clock.advance(std::time::Duration::from_secs(3600));
        assert_eq!(other.now(), Timestamp(3_601_000));
        other.set(Timestamp(5));
        assert_eq!(clock.now(), Timestamp(5));
        assert!(super::Clock::system().now().millis() > 1_700_000_000_000);
    }
}
