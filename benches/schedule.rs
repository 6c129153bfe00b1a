//! Scheduling cost against queue length (`cargo bench --bench schedule`).
//!
//! Fills a SQLite store with 1,000 and then 100,000 queued messages and times one scheduling
//! step — lease 64 due recipients, record their outcome (deferred, due again at once, so the queue keeps its size) — many
//! times at each size. The step uses the due index (transport, next_attempt_at), so its cost
//! must not grow with the queue: the report prints the ratio of the medians (target < 1.5).
//! It also times DSN generation: 10,000 recipients that failed with 550, one DSN per message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailerd::bounce::dsn::{self, Action, Dsn, DsnRecipient};
use mailerd::bounce::notify::ReportKind;
use mailerd::bounce::reason::Reason;
use mailerd::smtp::address::Mailbox;
use mailerd::store::sqlite::SqliteStore;
use mailerd::store::{
    Attempt, Destination, MessageId, NewMessage, NewRecipient, Origin, RecipientState, Store, Transport,
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
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).expect("store"));
        let t = Instant::now();
        fill(&store, 0, 1_000).await;
        let small = step_cost(&store).await;
        let fill_small = t.elapsed();
        let t = Instant::now();
        fill(&store, 1_000, 100_000).await;
        let fill_large = t.elapsed();
        let large = step_cost(&store).await;
        println!("scheduler step (lease 64 due recipients + record outcomes), median of {STEPS} steps:");
        println!("  queue of   1,000 messages: {:>8.3} ms", small.as_secs_f64() * 1e3);
        println!("  queue of 100,000 messages: {:>8.3} ms", large.as_secs_f64() * 1e3);
        println!("  ratio 100k / 1k: {:.2} (target < 1.5)", large.as_secs_f64() / small.as_secs_f64());
        println!(
            "  (filling: 1,000 in {:.2} s; 99,000 more in {:.2} s = {:.0} durable inserts/s with group commit)",
            fill_small.as_secs_f64(),
            fill_large.as_secs_f64(),
            99_000.0 / fill_large.as_secs_f64()
        );
    });
    let n = 10_000;
    let d = dsn_generation(n);
    println!(
        "DSN rendering: {n} DSNs (one failed recipient each) in {:.3} s = {:.0} DSNs/s",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    );
}
