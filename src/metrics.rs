//! Process-wide counters, gauges and one histogram, rendered in the Prometheus text format at
//! `GET /metrics`: connections, messages accepted (by door), delivery outcomes, bounces by
//! reason, delivery latency, DNS and TLS errors. The queue size is read from the store at
//! render time. Login counters (password checks, failures, throttled attempts, by door) are
//! the daemon's own [`LoginStats`], kept by its `Authenticator`, so daemons that share a
//! process (the integration tests) do not count each other's logins.
//!
//! A handful of relaxed atomics (no registry crate): incrementing costs one atomic add, and the
//! label sets are closed enums, so cardinality is bounded.
//! Standards: Prometheus text exposition format 0.0.4 (each family's HELP and TYPE right before
//! its samples).
//! Must not: allocate or lock on the hot path, or take labels from input (reasons come from the
//! closed reason table).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::bounce::reason::Reason;

static CONNECTIONS_TOTAL: AtomicU64 = AtomicU64::new(0);
static CONNECTIONS_OPEN: AtomicU64 = AtomicU64::new(0);
static CONNECTIONS_REFUSED: AtomicU64 = AtomicU64::new(0);
const DOORS: [&str; 4] = ["smtp", "submission", "api", "dsn"];
static ACCEPTED: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
const OUTCOMES: [&str; 4] = ["delivered", "deferred", "bounced", "expired"];
static OUTCOME: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static BOUNCED_BY_REASON: [AtomicU64; Reason::ALL.len()] = [const { AtomicU64::new(0) }; Reason::ALL.len()];
static DNS_ERRORS: AtomicU64 = AtomicU64::new(0);
const CLIENT_LIMITS: [&str; 4] = ["sessions", "connection_rate", "message_rate", "recipient_rate"];
static CLIENT_LIMITED: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static CLIENTS_TRACKED: AtomicU64 = AtomicU64::new(0);
static SMTP_DEADLINES: AtomicU64 = AtomicU64::new(0);
static HTTP_OPEN: AtomicU64 = AtomicU64::new(0);
static HTTP_REFUSED: AtomicU64 = AtomicU64::new(0);
/// SMTP refusals we sent, by reply code (the codes of `inbound::replies`; the rest as "other").
const REPLY_CODES: [u16; 18] =
    [421, 450, 451, 452, 454, 500, 501, 502, 503, 504, 530, 535, 538, 550, 552, 553, 554, 556];
static REFUSALS: [AtomicU64; REPLY_CODES.len() + 1] = [const { AtomicU64::new(0) }; REPLY_CODES.len() + 1];
const WEBHOOK_OUTCOMES: [&str; 4] = ["delivered", "refused", "failed", "timed_out"];
static WEBHOOK: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static WEBHOOK_BACKLOG: AtomicU64 = AtomicU64::new(0);
static TLS_ERRORS: AtomicU64 = AtomicU64::new(0);
/// Seconds from acceptance to delivery.
const BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 86400.0];
static LATENCY: [AtomicU64; BUCKETS.len()] = [const { AtomicU64::new(0) }; BUCKETS.len()];
static LATENCY_COUNT: AtomicU64 = AtomicU64::new(0);
static LATENCY_SUM_MS: AtomicU64 = AtomicU64::new(0);

/// Where a login is tried: the label set of the login counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginDoor {
    /// SMTP AUTH on the submission listener.
    Smtp,
    /// The dashboard's login form.
    Dashboard,
}

impl LoginDoor {
    pub const ALL: [LoginDoor; 2] = [LoginDoor::Smtp, LoginDoor::Dashboard];

    pub fn as_str(self) -> &'static str {
        match self {
            LoginDoor::Smtp => "smtp",
            LoginDoor::Dashboard => "dashboard",
        }
    }

    fn index(self) -> usize {
        match self {
            LoginDoor::Smtp => 0,
            LoginDoor::Dashboard => 1,
        }
    }
}

/// One daemon's login counters, by door.
#[derive(Debug, Default)]
pub struct LoginStats {
    checks: [AtomicU64; 2],
    failures: [AtomicU64; 2],
    throttled: [AtomicU64; 2],
}

impl LoginStats {
    /// A password was checked (one argon2 verification).
    pub fn checked(&self, door: LoginDoor) {
        self.checks.get(door.index()).map(|c| c.fetch_add(1, Relaxed));
    }

    /// A checked password was wrong (or the login unknown).
    pub fn failed(&self, door: LoginDoor) {
        self.failures.get(door.index()).map(|c| c.fetch_add(1, Relaxed));
    }

    /// An attempt was refused by the failure limiter, without a password check.
    pub fn throttled(&self, door: LoginDoor) {
        self.throttled.get(door.index()).map(|c| c.fetch_add(1, Relaxed));
    }
}

pub fn connection_opened() {
    CONNECTIONS_TOTAL.fetch_add(1, Relaxed);
    CONNECTIONS_OPEN.fetch_add(1, Relaxed);
}

pub fn connection_closed() {
    let _ = CONNECTIONS_OPEN.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
}

pub fn connection_refused() {
    CONNECTIONS_REFUSED.fetch_add(1, Relaxed);
}

/// A message durably accepted; `via` is the origin's door.
pub fn accepted(via: &str) {
    if let Some(i) = DOORS.iter().position(|d| *d == via) {
        ACCEPTED.get(i).map(|c| c.fetch_add(1, Relaxed));
    }
}

/// One recipient's attempt outcome (`delivered`, `deferred`, `bounced`, `expired`).
pub fn outcome(state: &str, bounce_reason: Option<Reason>, latency: Option<Duration>) {
    if let Some(i) = OUTCOMES.iter().position(|o| *o == state) {
        OUTCOME.get(i).map(|c| c.fetch_add(1, Relaxed));
    }
    if let Some(reason) = bounce_reason
        && let Some(i) = Reason::ALL.iter().position(|r| *r == reason)
    {
        BOUNCED_BY_REASON.get(i).map(|c| c.fetch_add(1, Relaxed));
    }
    if let (Some(d), "delivered") = (latency, state) {
        let secs = d.as_secs_f64();
        for (b, c) in BUCKETS.iter().zip(LATENCY.iter()) {
            if secs <= *b {
                c.fetch_add(1, Relaxed);
            }
        }
        LATENCY_COUNT.fetch_add(1, Relaxed);
        LATENCY_SUM_MS.fetch_add(d.as_millis().min(u64::MAX as u128) as u64, Relaxed);
    }
}

/// A client refused by a per-client limit (`sessions`, `connection_rate`, ...).
pub fn client_limited(limit: &str) {
    if let Some(i) = CLIENT_LIMITS.iter().position(|l| *l == limit) {
        CLIENT_LIMITED.get(i).map(|c| c.fetch_add(1, Relaxed));
    }
}

/// Clients in the per-client table now.
pub fn clients_tracked(n: usize) {
    CLIENTS_TRACKED.store(n as u64, Relaxed);
}

/// An SMTP session closed because a command line or DATA missed its deadline.
pub fn smtp_deadline() {
    SMTP_DEADLINES.fetch_add(1, Relaxed);
}

/// An SMTP reply we sent; 4xx and 5xx count as refusals by code.
pub fn smtp_reply(code: u16) {
    if code < 400 {
        return;
    }
    let i = REPLY_CODES.iter().position(|c| *c == code).unwrap_or(REPLY_CODES.len());
    REFUSALS.get(i).map(|c| c.fetch_add(1, Relaxed));
}

/// One webhook POST: `delivered`, `refused` (a non-2xx answer), `failed`, `timed_out`.
pub fn webhook(outcome: &str) {
    if let Some(i) = WEBHOOK_OUTCOMES.iter().position(|o| *o == outcome) {
        WEBHOOK.get(i).map(|c| c.fetch_add(1, Relaxed));
    }
}

/// Events read by a webhook task and not yet delivered (changes by `delta`).
pub fn webhook_backlog(delta: i64) {
    let _ = WEBHOOK_BACKLOG.fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_add_signed(delta)));
}

pub fn http_opened() {
    HTTP_OPEN.fetch_add(1, Relaxed);
}

pub fn http_closed() {
    let _ = HTTP_OPEN.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
}

pub fn http_refused() {
    HTTP_REFUSED.fetch_add(1, Relaxed);
}

pub fn dns_error() {
    DNS_ERRORS.fetch_add(1, Relaxed);
}

pub fn tls_error() {
    TLS_ERRORS.fetch_add(1, Relaxed);
}

/// The exposition text; `queue` is the number of recipients still to deliver, when known;
/// `logins` the daemon's login counters.
/// The families that are one number: name, type, help, value.
const SINGLE: [(&str, &str, &str, &AtomicU64); 10] = [
    ("mailerd_connections_total", "counter", "SMTP connections accepted", &CONNECTIONS_TOTAL),
    ("mailerd_connections_open", "gauge", "SMTP connections open now", &CONNECTIONS_OPEN),
    (
        "mailerd_connections_refused_total",
        "counter",
        "SMTP connections refused (421, over max_connections)",
        &CONNECTIONS_REFUSED,
    ),
    ("mailerd_dns_errors_total", "counter", "Temporary DNS failures while routing", &DNS_ERRORS),
    ("mailerd_tls_errors_total", "counter", "Failed TLS handshakes, in and out", &TLS_ERRORS),
    ("mailerd_webhook_backlog", "gauge", "Events read by webhook tasks and not yet delivered", &WEBHOOK_BACKLOG),
    ("mailerd_clients_tracked", "gauge", "Clients in the per-client limit table", &CLIENTS_TRACKED),
    (
        "mailerd_smtp_deadline_closed_total",
        "counter",
        "SMTP sessions closed for missing a command or DATA deadline",
        &SMTP_DEADLINES,
    ),
    ("mailerd_http_connections_open", "gauge", "HTTP connections open now", &HTTP_OPEN),
    (
        "mailerd_http_connections_refused_total",
        "counter",
        "HTTP connections refused (over max_http_connections)",
        &HTTP_REFUSED,
    ),
];

/// A counter family with one label: name, help, label, its values, the counters (in that order).
type Labelled = (&'static str, &'static str, &'static str, &'static [&'static str], &'static [AtomicU64]);

const LABELLED: [Labelled; 4] = [
    ("mailerd_messages_accepted_total", "Messages durably accepted, by door", "via", &DOORS, &ACCEPTED),
    ("mailerd_recipient_outcomes_total", "Delivery attempt outcomes per recipient", "outcome", &OUTCOMES, &OUTCOME),
    ("mailerd_webhook_posts_total", "Webhook POSTs, by outcome", "outcome", &WEBHOOK_OUTCOMES, &WEBHOOK),
    (
        "mailerd_client_limited_total",
        "SMTP clients refused by a per-client limit, by limit",
        "limit",
        &CLIENT_LIMITS,
        &CLIENT_LIMITED,
    ),
];

pub fn render(queue: Option<u64>, oldest: Option<u64>, logins: &LoginStats) -> String {
    let mut out = String::with_capacity(4096);
    let o = &mut out;
    let v = |a: &AtomicU64| a.load(Relaxed);
    for (name, kind, help, value) in SINGLE {
        family(o, name, kind, help);
        let _ = writeln!(o, "{name} {}", v(value));
    }
    for (name, help, label, values, counters) in LABELLED {
        family(o, name, "counter", help);
        for (l, c) in values.iter().zip(counters.iter()) {
            let _ = writeln!(o, "{name}{{{label}=\"{l}\"}} {}", v(c));
        }
    }
    family(o, "mailerd_bounces_total", "counter", "Recipients bounced or expired, by reason");
    for (r, c) in Reason::ALL.iter().zip(BOUNCED_BY_REASON.iter()) {
        let n = v(c);
        if n > 0 {
            let _ = writeln!(o, "mailerd_bounces_total{{reason=\"{}\"}} {n}", r.as_str());
        }
    }
    family(o, "mailerd_delivery_latency_seconds", "histogram", "From acceptance to delivery");
    for (b, c) in BUCKETS.iter().zip(LATENCY.iter()) {
        let _ = writeln!(o, "mailerd_delivery_latency_seconds_bucket{{le=\"{b}\"}} {}", v(c));
    }
    let count = v(&LATENCY_COUNT);
    let _ = writeln!(o, "mailerd_delivery_latency_seconds_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(o, "mailerd_delivery_latency_seconds_sum {}", v(&LATENCY_SUM_MS) as f64 / 1000.0);
    let _ = writeln!(o, "mailerd_delivery_latency_seconds_count {count}");
    family(o, "mailerd_queue_recipients", "gauge", "Recipients queued or deferred");
    if let Some(q) = queue {
        let _ = writeln!(o, "mailerd_queue_recipients {q}");
    }
    family(o, "mailerd_queue_oldest_deferred_seconds", "gauge", "Age of the oldest message with a deferred recipient");
    if let Some(age) = oldest {
        let _ = writeln!(o, "mailerd_queue_oldest_deferred_seconds {age}");
    }
    family(o, "mailerd_build_info", "gauge", "This build (always 1)");
    let _ = writeln!(o, "mailerd_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    family(o, "mailerd_smtp_refusals_total", "counter", "SMTP 4xx and 5xx replies sent, by reply code");
    for (i, c) in REFUSALS.iter().enumerate() {
        let code = REPLY_CODES.get(i).map_or_else(|| "other".to_string(), |c| c.to_string());
        let _ = writeln!(o, "mailerd_smtp_refusals_total{{code=\"{code}\"}} {}", v(c));
    }
    for (name, help, counters) in [
        ("mailerd_login_checks_total", "Passwords checked (argon2 verifications), by door", &logins.checks),
        ("mailerd_login_failures_total", "Checked passwords that were wrong, by door", &logins.failures),
        ("mailerd_login_throttled_total", "Login attempts refused by the failure limiter unchecked", &logins.throttled),
    ] {
        family(o, name, "counter", help);
        for door in LoginDoor::ALL {
            let n = counters.get(door.index()).map_or(0, v);
            let _ = writeln!(o, "{name}{{via=\"{}\"}} {n}", door.as_str());
        }
    }
    out
}

/// A family's `# HELP` and `# TYPE`, written right before its samples (client parsers such as
/// Python's prometheus_client read a sample that does not follow its TYPE as untyped).
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        accepted("api");
        outcome("delivered", None, Some(Duration::from_millis(700)));
        outcome("bounced", Some(Reason::UserUnknown), None);
        let logins = LoginStats::default();
        logins.checked(LoginDoor::Dashboard);
        logins.throttled(LoginDoor::Dashboard);
        logins.throttled(LoginDoor::Dashboard);
        let text = render(Some(3), None, &logins);
        assert!(text.contains("mailerd_login_checks_total{via=\"dashboard\"} 1\n"));
        assert!(text.contains("mailerd_login_throttled_total{via=\"dashboard\"} 2\n"));
        assert!(text.contains("mailerd_login_failures_total{via=\"smtp\"} 0\n"));
        assert!(text.contains("mailerd_messages_accepted_total{via=\"api\"}"));
        assert!(text.contains("mailerd_bounces_total{reason=\"userunknown\"}"));
        assert!(text.contains("mailerd_queue_recipients 3"));
        // 0.7 s falls in le=1 and above, not in le=0.5.
        let bucket = |le: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("mailerd_delivery_latency_seconds_bucket{{le=\"{le}\"}}")))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap()
        };
        assert!(bucket("1") >= 1 && bucket("1") >= bucket("0.5"));
        assert!(bucket("+Inf") >= bucket("86400"));
    }

    #[test]
    fn each_family_comes_with_its_help_and_type() {
        let text = render(Some(3), None, &LoginStats::default());
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            // The nearest TYPE above a sample names its family.
            let family = lines[..i].iter().rev().find_map(|l| l.strip_prefix("# TYPE ")).unwrap();
            let family = family.split(' ').next().unwrap();
            assert!(line.starts_with(family), "{line} is under # TYPE {family}");
        }
    }
}
