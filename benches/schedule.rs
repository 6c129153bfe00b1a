//! Scheduling cost against queue length (`cargo bench --bench schedule`).
//!
//! Fills a SQLite store with 1,000, then 100,000, then 1,000,000 queued messages (one
//! recipient each) and times one scheduling step — lease 64 due recipients, record their outcome
//! (deferred, due again at once, so the queue keeps its size) — many times at each size. The
//! step uses the due index (transport, next_attempt_at), so its cost must not grow with the
//! queue: the report prints the ratios of the medians (target < 1.5).
//! The first 1,000 go through `insert_message` (durable, group commit); the rest are written
//! straight into the database file in transactions of 50,000 rows, as `insert_message` writes
//! them (message, recipient, its `queued` event, the sent log; the dashboard's counting
//! triggers fire). At 1,000,000 the queue looks like a provider outage: 99% deferred to the
//! next hours, half of them at one domain, 1% due.
//! At that size it also times the store reads of `mailerd queue list` (the oldest messages and
//! the total), the dashboard's queue page filtered by state and domain (`queue_search`, the
//! `--state deferred --domain D` selection; queued recipients, and every state at one domain),
//! its overview (`delivery_overview`), `mailerd
//! status` (`queue_summary`) and the oldest deferred message; and prints the database's size on
//! disk and this process's resident memory (VmRSS, and its peak VmHWM).
//! `SCHEDULE_BENCH_DIR=DIR` keeps the million-message store in DIR/mailerd.db (for a daemon or
//! the CLI started on it); `SCHEDULE_BENCH_MAX=100000` stops after the 100,000 stage.
//! It also times DSN generation: 10,000 recipients that failed with 550, one DSN per message.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailerd::bounce::dsn::{self, Action, Dsn, DsnRecipient};
use mailerd::bounce::notify::ReportKind;
use mailerd::bounce::reason::Reason;
use mailerd::smtp::address::Mailbox;
use mailerd::store::sqlite::SqliteStore;
use mailerd::store::{
    Attempt, Destination, MessageId, NewMessage, NewRecipient, Origin, QueueFilter, RecipientState, Store, Transport,
};
use mailerd::time::Timestamp;

const STEPS: usize = 300;

async fn fill(store: &Arc<SqliteStore>, from: usize, to: usize) {
    let mut tasks = Vec::new();
    for chunk_start in (from..to).step_by(2_000) {
        let store = store.clone();
        let end = (chunk_start + 2_000).min(to);
        tasks.push(tokio::spawn(async move {
            let mut inflight = Vec::new();
            for i in chunk_start..end {
                let store = store.clone();
                inflight.push(tokio::spawn(async move {
                    let msg = NewMessage {
                        id: MessageId(format!("BENCH{i:015}")),
                        reverse_path: mailerd::smtp::address::ReversePath::Mailbox(
                            mailerd::smtp::address::Mailbox::parse("s@sender.test").expect("address"),
                        ),
                        envid: None,
                        ret: None,
                        received_at: Timestamp::now(),
                        origin: Origin::default(),
                        body: vec![b'x'; 1024],
                        header_message_id: Some(format!("<{i}@bench.test>")),
                        recipients: vec![NewRecipient {
                            address: format!("r{i}@rcpt.test"),
                            orcpt: None,
                            notify: None,
                            destination: Destination::Remote,
                        }],
                        reports: Vec::new(),
                        notes: Vec::new(),
                        rejected: Vec::new(),
                        idempotency: None,
                    };
                    store.insert_message(msg).await.expect("insert");
                }));
            }
            for t in inflight {
                t.await.expect("task");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
}

/// Where the recipient of bulk row `i` is, when it is due, and when it last changed.
struct Row {
    state: &'static str,
    domain: String,
    next_attempt_at: i64,
    updated_at: i64,
}

/// Writes messages `from..to` (one recipient each, laid out by `row`) straight into the database
/// at `path`, in transactions of 50,000 messages, with the rows `insert_message` writes.
fn bulk_fill(path: &Path, from: usize, to: usize, row: impl Fn(usize) -> Row) {
    let mut c = rusqlite::Connection::open(path).expect("open");
    c.busy_timeout(Duration::from_secs(30)).expect("busy timeout");
    // Only this filler skips fsync: the rows are test data, the store's own connection keeps FULL.
    c.pragma_update(None, "synchronous", "OFF").expect("pragma");
    // 256 MiB of page cache: the indexes' random inserts stay in memory instead of re-reading
    // pages through the OS for every row.
    c.pragma_update(None, "cache_size", -262_144).expect("pragma");
    let origin = serde_json::to_string(&Origin::default()).expect("origin");
    let body = vec![b'x'; 1024];
    for start in (from..to).step_by(50_000) {
        let tx = c.transaction().expect("transaction");
        {
            let mut msg = tx
                .prepare(
                    "INSERT INTO messages (id, reverse_path, envid, ret, size, received_at, origin, body)
                     VALUES (?1, 's@sender.test', NULL, NULL, ?2, ?3, ?4, ?5)",
                )
                .expect("prepare");
            let mut rcpt = tx
                .prepare(
                    "INSERT INTO recipients (message_id, address, transport, state, attempts, next_attempt_at,
                                             last_status, last_detail, updated_at)
                     VALUES (?1, ?2, 'remote', ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .expect("prepare");
            let mut event = tx
                .prepare(
                    "INSERT INTO events (message_id, recipient, kind, status, detail, at, sandbox)
                     VALUES (?1, ?2, 'queued', NULL, 'from 127.0.0.1 via smtp', ?3, 0)",
                )
                .expect("prepare");
            let mut sent = tx
                .prepare("INSERT INTO sent_log (header_id, recipient, queue_id, sent_at) VALUES (?1, ?2, ?3, ?4)")
                .expect("prepare");
            for i in start..(start + 50_000).min(to) {
                let r = row(i);
                let id = format!("BENCH{i:015}");
                let address = format!("r{i}@{}", r.domain);
                let received = r.updated_at - 60_000;
                let deferred = r.state == "deferred";
                msg.execute(rusqlite::params![id, body.len() as i64, received, origin, body]).expect("message");
                rcpt.execute(rusqlite::params![
                    id,
                    address,
                    r.state,
                    deferred as i64,
                    r.next_attempt_at,
                    deferred.then_some("4.4.1"),
                    deferred.then_some("connection timed out"),
                    r.updated_at
                ])
                .expect("recipient");
                event.execute(rusqlite::params![id, address, received]).expect("event");
                sent.execute(rusqlite::params![format!("{i}@bench.test"), address, id, received]).expect("sent log");
            }
        }
        tx.commit().expect("commit");
    }
}

/// Makes all but every tenth waiting recipient deferred until later (the 1% due of a queue of
/// a million, once it holds ten times as many).
fn defer_most(path: &Path, later: impl Fn(i64) -> i64) {
    let c = rusqlite::Connection::open(path).expect("open");
    c.busy_timeout(Duration::from_secs(30)).expect("busy timeout");
    let mut stmt = c.prepare("SELECT id FROM recipients WHERE id % 10 <> 0").expect("prepare");
    let ids: Vec<i64> = stmt.query_map([], |r| r.get(0)).expect("query").map(|r| r.expect("row")).collect();
    c.execute_batch("BEGIN").expect("begin");
    let mut upd = c
        .prepare(
            "UPDATE recipients SET state = 'deferred', attempts = 1, next_attempt_at = ?2, last_status = '4.4.1',
                    last_detail = 'connection timed out' WHERE id = ?1",
        )
        .expect("prepare");
    for id in ids {
        upd.execute(rusqlite::params![id, later(id)]).expect("update");
    }
    c.execute_batch("COMMIT").expect("commit");
}

/// A small deterministic spread (a hash of `i`), `0..n`.
fn spread(i: usize, n: u64) -> i64 {
    ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33).rem_euclid(n) as i64
}

/// Median (and first, cold) time of `f` over `n` calls.
async fn timed<T, F: std::future::Future<Output = T>>(n: usize, mut f: impl FnMut() -> F) -> (Duration, Duration, T) {
    let mut times = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        last = Some(f().await);
        times.push(t.elapsed());
    }
    let first = times[0];
    times.sort();
    (first, times[times.len() / 2], last.expect("ran"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// VmRSS and VmHWM of this process, in MiB.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn disk_mib(path: &Path) -> f64 {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = path.with_extension("db-wal");
    (size(path) + size(&wal)) as f64 / (1024.0 * 1024.0)
}

/// Median time of one claim + record step, over `STEPS` steps.
async fn step_cost(store: &Arc<SqliteStore>) -> Duration {
    let mut times = Vec::with_capacity(STEPS);
    for _ in 0..STEPS {
        let started = Instant::now();
        let now = Timestamp::now();
        let claims =
            store.claim_due(Transport::Remote, now, 64, Duration::from_secs(600), "bench").await.expect("claim");
        assert!(!claims.is_empty(), "the queue ran dry");
        let attempts = claims
            .iter()
            .map(|c| Attempt {
                recipient: c.recipient,
                message: c.message.clone(),
                state: RecipientState::Deferred,
                status: mailerd::smtp::reply::EnhancedStatus::new(4, 4, 1),
                detail: "bench".into(),
                reply_code: None,
                remote: None,
                // Due again at once, so the queue keeps its length for the next step.
                next_attempt_at: Some(now),
                mailbox_bytes: None,
                event: None,
            })
            .collect();
        store.record_attempts("bench", attempts).await.expect("record");
        times.push(started.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

fn dsn_generation(n: usize) -> Duration {
    let to = Mailbox::parse("s@sender.test").expect("address");
    let original = b"Message-ID: <m@sender.test>\r\nSubject: bench\r\nFrom: s@sender.test\r\n\r\nbody\r\n".to_vec();
    let started = Instant::now();
    let mut bytes = 0;
    for i in 0..n {
        let d = Dsn {
            reporting_mta: "bench.mailerd.test",
            to: &to,
            queue_id: "BENCH",
            envid: None,
            arrival: Timestamp(1_795_884_093_000),
            recipients: vec![DsnRecipient {
                final_recipient: format!("r{i}@rcpt.test"),
                original_recipient: None,
                action: Action::Failed,
                status: "5.1.1".into(),
                remote_mta: Some("sink.rcpt.test".into()),
                diagnostic: Some(format!("550 5.1.1 <r{i}@rcpt.test>: user unknown")),
                diagnostic_is_smtp: true,
                last_attempt: Some(Timestamp(1_795_884_094_000)),
                reason: Reason::UserUnknown,
                hard: Some(true),
            }],
            original: &original,
            return_full: false,
            kind: ReportKind::Failure,
            retry_until: None,
        };
        bytes += dsn::render(&d, Timestamp(1_795_884_095_000), &format!("U{i}")).len();
    }
    assert!(bytes > 0);
    started.elapsed()
}

fn main() {
    let max: usize = std::env::var("SCHEDULE_BENCH_MAX").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = std::env::var_os("SCHEDULE_BENCH_DIR").map(std::path::PathBuf::from);
        let dir = dir.as_deref().unwrap_or(tmp.path());
        std::fs::create_dir_all(dir).expect("bench dir");
        let path = dir.join("mailerd.db");
        for f in ["mailerd.db", "mailerd.db-wal", "mailerd.db-shm"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        let store = Arc::new(SqliteStore::open(&path).expect("store"));
        let t = Instant::now();
        fill(&store, 0, 1_000).await;
        let fill_small = t.elapsed();
        let small = step_cost(&store).await;
        let now = Timestamp::now().millis();
        let t = Instant::now();
        // As the first 1,000: queued, due now, at one domain.
        bulk_fill(&path, 1_000, 100_000, |_| Row {
            state: "queued",
            domain: "rcpt.test".into(),
            next_attempt_at: now,
            updated_at: now,
        });
        let fill_large = t.elapsed();
        let large = step_cost(&store).await;
        println!("scheduler step (lease 64 due recipients + record outcomes), median of {STEPS} steps:");
        println!("  queue of     1,000 messages (all due): {:>8.3} ms", ms(small));
        println!("  queue of   100,000 messages (all due): {:>8.3} ms", ms(large));
        println!("  ratio 100k / 1k: {:.2} (target < 1.5)", large.as_secs_f64() / small.as_secs_f64());
        println!(
            "  (filling: 1,000 through insert_message in {:.2} s; 99,000 more in bulk transactions in {:.2} s)",
            fill_small.as_secs_f64(),
            fill_large.as_secs_f64(),
        );
        if max < 1_000_000 {
            return;
        }
        // A provider outage: 99% deferred to the next 10 minutes to 4 hours, half of them at one
        // domain, the rest over 1,000 domains; 1% (every tenth of the first 100,000) due.
        let t = Instant::now();
        let later = |i: i64| now + 600_000 + spread(i as usize, 14_400_000 - 600_000);
        defer_most(&path, later);
        bulk_fill(&path, 100_000, 1_000_000, |i| Row {
            state: "deferred",
            domain: if i % 2 == 0 { "outage.test".into() } else { format!("d{}.test", spread(i, 1_000)) },
            next_attempt_at: later(i as i64),
            updated_at: now - spread(i, 172_800_000),
        });
        let fill_million = t.elapsed();
        let million = step_cost(&store).await;
        println!("  queue of 1,000,000 messages (1% due):  {:>8.3} ms", ms(million));
        println!("  ratio 1M / 1k: {:.2} (target < 1.5)", million.as_secs_f64() / small.as_secs_f64());
        println!(
            "  (filling: 900,000 more and 90,000 deferred in {:.1} s = {:.0} messages/s)",
            fill_million.as_secs_f64(),
            900_000.0 / fill_million.as_secs_f64()
        );

        println!("store reads at 1,000,000 queued (first call / median of 5):");
        let report = |name: &str, (first, median, what): (Duration, Duration, String)| {
            println!("  {name:<58} {:>9.1} / {:>9.1} ms  {what}", ms(first), ms(median));
        };
        report(
            "queue list: queue_list(100), the oldest 100 messages",
            timed(5, || {
                let store = store.clone();
                async move { format!("({} shown)", store.queue_list(100).await.expect("queue list").len()) }
            })
            .await,
        );
        report(
            "queue list: queued_messages(), the total under the list",
            timed(3, || {
                let store = store.clone();
                async move { format!("({})", store.queued_messages().await.expect("total")) }
            })
            .await,
        );
        report(
            "metrics: queue_depth()",
            timed(5, || {
                let store = store.clone();
                async move { format!("({})", store.queue_depth().await.expect("depth")) }
            })
            .await,
        );
        let queue_pages: [(&str, Vec<RecipientState>, Option<&str>); 4] = [
            (
                "queue page: queue_search(deferred, outage.test, 50)",
                vec![RecipientState::Deferred],
                Some("outage.test"),
            ),
            ("queue page: queue_search(deferred, d7.test, 50)", vec![RecipientState::Deferred], Some("d7.test")),
            ("queue page: queue_search(queued, every domain, 50)", vec![RecipientState::Queued], None),
            ("queue page: queue_search(every state, outage.test, 50)", Vec::new(), Some("outage.test")),
        ];
        for (name, states, domain) in queue_pages {
            let filter = QueueFilter { states, domain: domain.map(String::from), limit: 50 };
            report(
                name,
                timed(5, || {
                    let (store, filter) = (store.clone(), filter.clone());
                    async move { format!("({} rows)", store.queue_search(filter).await.expect("search").len()) }
                })
                .await,
            );
        }
        report(
            "dashboard overview: delivery_overview(30 days, top 10)",
            timed(5, || {
                let store = store.clone();
                async move {
                    let since = Timestamp(Timestamp::now().millis() - 30 * 86_400_000);
                    let o = store.delivery_overview(since, 10).await.expect("overview");
                    format!("({} failing domains)", o.failing_domains.len())
                }
            })
            .await,
        );
        report(
            "mailerd status: queue_summary(now, 10)",
            timed(5, || {
                let store = store.clone();
                async move {
                    let s = store.queue_summary(Timestamp::now(), 10).await.expect("summary");
                    format!("({} top domains)", s.top_domains.len())
                }
            })
            .await,
        );
        report(
            "oldest deferred (API status, metrics)",
            timed(5, || {
                let store = store.clone();
                async move {
                    format!(
                        "({})",
                        if store.oldest_deferred().await.expect("oldest").is_some() { "found" } else { "none" }
                    )
                }
            })
            .await,
        );
        let (rss, hwm) = memory_mib();
        println!("  bench process memory after the steps and reads: VmRSS {rss:.0} MiB, peak VmHWM {hwm:.0} MiB");
        drop(store);
        let c = rusqlite::Connection::open(&path).expect("open");
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).expect("checkpoint");
        drop(c);
        println!("  store on disk: {:.0} MiB ({})", disk_mib(&path), path.display());
    });
    let n = 10_000;
    let d = dsn_generation(n);
    println!(
        "DSN rendering: {n} DSNs (one failed recipient each) in {:.3} s = {:.0} DSNs/s",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    );
}
