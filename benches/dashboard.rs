//! Dashboard pages with 1,000,000 events in a SQLite store: each page is timed as the dashboard
//! serves it (the store query or queries, then the render function), median of several runs,
//! against a baseline measured in the same run: the same pages over a store with 1,000 events.
//!
//! The store is filled through the `Store` trait only (no SQL here): `insert_message` with 100
//! remote recipients per message (one `queued` event each), then `claim_due` and
//! `record_attempts` with a realistic mix of outcomes (one event each): 80 % delivered, 10 %
//! bounced (5.1.1, 5.2.2, 5.7.1), 7 % deferred, 3 % expired; 200 destination domains; messages
//! received over the last 30 days; plus 10,000 suppressions.
//!
//! Run: `cargo bench --bench dashboard` (`MAILERD_BENCH_EVENTS` to change 1,000,000;
//! `MAILERD_BENCH_DIR` to keep the databases there).
//! Target (issue 6): every page under 200 ms with 1,000,000 events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailerd::http::dashboard::Admin;
use mailerd::http::dashboard::pages::{self, QueueQuery};
use mailerd::store::sqlite::SqliteStore;
use mailerd::store::{
    Attempt, Destination, MessageId, NewMessage, NewRecipient, Origin, RecipientState, Store, Suppression, Transport,
    Via,
};
use mailerd::time::Timestamp;

const RECIPIENTS: usize = 100;
const DOMAINS: usize = 200;
const RUNS: usize = 7;
const DAY: i64 = 86_400_000;

fn outcome(i: usize, r: mailerd::store::RecipientId, m: MessageId) -> Attempt {
    let (state, status, detail, code) = match i % 100 {
        0..80 => (RecipientState::Delivered, "2.0.0", "250 2.0.0 OK queued as 4XyZ", Some(250)),
        80..86 => {
            (RecipientState::Bounced, "5.1.1", "550 5.1.1 <user>: Recipient address rejected: User unknown", Some(550))
        }
        86..88 => (RecipientState::Bounced, "5.2.2", "552 5.2.2 Mailbox full", Some(552)),
        88..90 => (RecipientState::Bounced, "5.7.1", "554 5.7.1 Service unavailable; client host blocked", Some(554)),
        90..97 => (RecipientState::Deferred, "4.4.1", "connection timed out", None),
        _ => (RecipientState::Expired, "4.4.7", "retry time exceeded", None),
    };
    Attempt {
        recipient: r,
        message: m,
        state,
        status: mailerd::smtp::reply::EnhancedStatus::parse(status).expect("status"),
        detail: detail.into(),
        reply_code: code,
        remote: Some("mx.example[192.0.2.25]:25".into()),
        next_attempt_at: (state == RecipientState::Deferred)
            .then(|| Timestamp::now().plus(Duration::from_secs(86_400))),
        mailbox_bytes: None,
        event: None,
    }
}

/// Fills `store` with about `events` events; returns one message id (for the journey page).
async fn fill(store: Arc<SqliteStore>, events: usize) -> MessageId {
    let messages = (events / (2 * RECIPIENTS)).max(1);
    let now = Timestamp::now().millis();
    let mut first = None;
    let mut batch = Vec::new();
    for m in 0..messages {
        let received = Timestamp(now - (m as i64 % 30) * DAY - 60_000);
        let id = MessageId::generate(Timestamp(received.millis() + m as i64));
        let id = MessageId(format!("{}{m:06}", &id.0[..14]));
        first.get_or_insert_with(|| id.clone());
        let recipients = (0..RECIPIENTS)
            .map(|r| NewRecipient {
                address: format!("user{m}x{r}@d{}.example", (m * RECIPIENTS + r) % DOMAINS),
                orcpt: None,
                notify: None,
                destination: Destination::Remote,
            })
            .collect();
        let msg = NewMessage {
            id,
            reverse_path: mailerd::smtp::address::ReversePath::Mailbox(
                mailerd::smtp::address::Mailbox::parse("app@sender.example").expect("address"),
            ),
            envid: None,
            ret: None,
            received_at: received,
            origin: Origin { via: Via::Api, ..Origin::default() },
            body: b"From: app@sender.example\r\nSubject: bench\r\n\r\nhello\r\n".to_vec(),
            header_message_id: Some(format!("<bench{m}@sender.example>")),
            recipients,
            reports: Vec::new(),
            notes: Vec::new(),
            rejected: Vec::new(),
            idempotency: None,
        };
        let s = store.clone();
        batch.push(tokio::spawn(async move { s.insert_message(msg).await }));
        if batch.len() == 256 {
            for t in batch.drain(..) {
                t.await.expect("task").expect("insert");
            }
        }
    }
    for t in batch {
        t.await.expect("task").expect("insert");
    }
    let mut i = 0usize;
    loop {
        let claims = store
            .claim_due(Transport::Remote, Timestamp::now(), 5000, Duration::from_secs(600), "bench")
            .await
            .expect("claim");
        if claims.is_empty() {
            break;
        }
        let attempts = claims
            .into_iter()
            .map(|c| {
                i += 1;
                outcome(i * 7919 % 100, c.recipient, c.message)
            })
            .collect();
        store.record_attempts("bench", attempts).await.expect("record");
    }
    let mut sup = Vec::new();
    for k in 0..(events / 100).min(10_000) {
        let s = store.clone();
        sup.push(tokio::spawn(async move {
            s.suppress(Suppression {
                address: format!("gone{k}@d{}.example", k % DOMAINS),
                reason: "userunknown".into(),
                status: Some("5.1.1".into()),
                detail: Some("550 5.1.1 user unknown".into()),
                message_id: None,
                created_at: String::new(),
                domain: None,
                scope: mailerd::store::SuppressionScope::Global,
            })
            .await
        }));
    }
    for t in sup {
        t.await.expect("task").expect("suppress");
    }
    first.expect("one message")
}

/// Median milliseconds of `RUNS` runs of `f` (which returns the page, so nothing is skipped).
async fn time<F, Fut>(mut f: F) -> (f64, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let mut ms = Vec::new();
    let mut size = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        size = f().await.len();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    (ms[RUNS / 2], size)
}

const BOUNCE: &str = "From: MAILER-DAEMON@mx.d7.example\r\nTo: app@sender.example\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\n<user1x7@d107.example>: host mx.d7.example said: 550 5.1.1 <user1x7@d107.example>: Recipient address rejected: User unknown (in reply to RCPT TO command)\r\n";

async fn pages(store: Arc<SqliteStore>, message: MessageId) -> Vec<(&'static str, f64, usize)> {
    let admin =
        Admin { user: "admin@sender.example".into(), csrf: "0".repeat(64), password_due: false, must_enrol: false };
    let config = mailerd::config::Config::from_toml("").expect("default config");
    let verifier = Arc::new(mailerd::feedback::evidence::Verifier::new(&config, None, false));
    let mut out = Vec::new();
    let (s, a) = (store.clone(), admin.clone());
    out.push((
        "overview",
        time(|| async {
            let now = Timestamp::now();
            let o = s.delivery_overview(pages::chart_since(now), 10).await.expect("overview");
            pages::render_overview(&a, &o, now)
        })
        .await,
    ));
    for (name, state, domain) in [
        ("queue (queued+deferred)", None, None),
        ("queue (all states)", Some("all"), None),
        ("queue (bounced)", Some("bounced"), None),
        ("queue (all, one domain)", Some("all"), Some("d7.example")),
        ("queue (deferred, one domain)", Some("deferred"), Some("d7.example")),
    ] {
        let q = QueueQuery { state: state.map(str::to_string), domain: domain.map(str::to_string) };
        let (s, a) = (store.clone(), admin.clone());
        out.push((
            name,
            time(|| async {
                let rows = s.queue_search(q.filter(pages::PAGE_ROWS)).await.expect("queue");
                pages::render_queue(&a, &q, &rows)
            })
            .await,
        ));
    }
    let (s, a, m) = (store.clone(), admin.clone(), message.clone());
    out.push((
        "message journey",
        time(|| async {
            let d = s.message_detail(&m).await.expect("detail").expect("the message");
            pages::render_message(&a, &d)
        })
        .await,
    ));
    let (s, a) = (store.clone(), admin.clone());
    out.push((
        "suppressions (search)",
        time(|| async {
            let list = s.search_suppressions("d7.", pages::PAGE_ROWS).await.expect("search");
            pages::render_suppressions(&a, "d7.", &list)
        })
        .await,
    ));
    let (s, a, v) = (store.clone(), admin.clone(), verifier.clone());
    out.push((
        "bounce explorer",
        time(|| async {
            let report = mailerd::feedback::parse_bounce(BOUNCE.as_bytes());
            let verdict = v.verify(s.as_ref(), BOUNCE.as_bytes(), &Default::default()).await.expect("verify");
            pages::render_bounce(&a, BOUNCE, &report, Some(&verdict))
        })
        .await,
    ));
    let a = admin.clone();
    out.push((
        "checklist (address)",
        time(|| async {
            let r = mailerd::checklist::address::check("someone@gmial.com", &Default::default());
            pages::render_checklist(&a, "someone@gmial.com", "", Some(&r))
        })
        .await,
    ));
    out.into_iter().map(|(n, (ms, size))| (n, ms, size)).collect()
}

fn main() {
    let events: usize = std::env::var("MAILERD_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        // MAILERD_BENCH_DIR keeps the databases (to look at query plans with sqlite3).
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = std::env::var_os("MAILERD_BENCH_DIR").map(std::path::PathBuf::from);
        let dir = dir.as_deref().unwrap_or(tmp.path());
        let mut results = Vec::new();
        for (label, n) in [("baseline", 1_000), ("large", events)] {
            let store = Arc::new(SqliteStore::open(&dir.join(format!("{label}.db"))).expect("store"));
            let t = Instant::now();
            let message = fill(store.clone(), n).await;
            let depth = store.queue_depth().await.expect("depth");
            eprintln!(
                "{label}: filled ~{n} events ({} recipients still queued) in {:.1} s",
                depth,
                t.elapsed().as_secs_f64()
            );
            results.push(pages(store, message).await);
        }
        println!("dashboard pages, median of {RUNS} runs (store query + render), target < 200 ms");
        println!("{:<30} {:>12} {:>14} {:>10}", "page", "1,000 ev ms", format!("{events} ev ms"), "KB");
        let mut worst: f64 = 0.0;
        for ((name, base, _), (_, big, size)) in results[0].iter().zip(results[1].iter()) {
            worst = worst.max(*big);
            println!("{name:<30} {base:>12.2} {big:>14.2} {:>10.1}", *size as f64 / 1024.0);
        }
        println!("slowest page: {worst:.1} ms ({})", if worst < 200.0 { "within target" } else { "OVER TARGET" });
    });
}
