//! The cost of TLS reporting (`cargo bench --bench tls_counts`): counting sessions and making a
//! day's report.
//!
//! 1. 20,000 sessions counted in a SQLite store by 64 concurrent tasks over 40 paths (what 64
//!    delivery workers opening connections do): sessions counted per second. Each count is one
//!    upsert through the writer's group commit.
//! 2. One domain's day with 1,000 distinct rows (policy × result × MX × IP): take the rows
//!    (`DELETE … RETURNING`), render the RFC 8460 JSON and gzip it; the median of 20 runs.

use std::sync::Arc;
use std::time::Instant;

use mailerd::outbound::tlsrpt::{Submitter, gzip, report_json};
use mailerd::smtp::address::Mailbox;
use mailerd::store::Store;
use mailerd::store::sqlite::SqliteStore;
use mailerd::tlspolicy::{Day, PolicyType, ReportPolicy, TlsCount, TlsResult};

const RESULTS: [TlsResult; 4] = [
    TlsResult::Success,
    TlsResult::StartTlsNotSupported,
    TlsResult::CertificateHostMismatch,
    TlsResult::CertificateExpired,
];

fn count(day: Day, domain: &str, i: usize) -> TlsCount {
    let policy = ReportPolicy {
        kind: PolicyType::Sts,
        id: format!("{}", i % 5),
        body: "version: STSv1\nmode: enforce\nmx: *.bench.test\nmax_age: 86400\n".into(),
    };
    TlsCount {
        day,
        domain: domain.into(),
        policy,
        result: RESULTS[i % RESULTS.len()],
        mx_host: Some(format!("mx{}.bench.test", i % 10)),
        receiving_ip: Some(std::net::IpAddr::from([192, 0, 2, (i % 50) as u8])),
        sending_ip: Some(std::net::IpAddr::from([198, 51, 100, 1])),
        count: 1,
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).expect("store"));
        let day = Day(20_000);

        const SESSIONS: usize = 20_000;
        const TASKS: usize = 64;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in (t..SESSIONS).step_by(TASKS) {
                    store.count_tls_sessions(&count(day, "bench.test", i % 40)).await.expect("count");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let took = started.elapsed();
        let rows = store.take_tls_counts(day, "bench.test").await.expect("take");
        let total: u64 = rows.iter().map(|r| r.count).sum();
        assert_eq!(total, SESSIONS as u64, "every session counted");
        println!(
            "count: {SESSIONS} sessions by {TASKS} tasks into {} rows in {:.2} s = {:.0} sessions/s",
            rows.len(),
            took.as_secs_f64(),
            SESSIONS as f64 / took.as_secs_f64()
        );

        let contact = Mailbox::parse("tls-reports@sender.test").expect("address");
        let who = Submitter { organization: "bench", contact: &contact, domain: "sender.test" };
        let mut times = Vec::new();
        let mut size = (0, 0);
        for run in 0..20 {
            let d = Day(21_000 + run);
            for i in 0..1_000 {
                let mut c = count(d, "big.test", i);
                c.receiving_ip = Some(std::net::IpAddr::from([10, 0, (i / 250) as u8, (i % 250) as u8]));
                store.count_tls_sessions(&c).await.expect("count");
            }
            let started = Instant::now();
            let rows = store.take_tls_counts(d, "big.test").await.expect("take");
            let report = report_json(&who, "bench", d, "big.test", &rows);
            let gz = gzip(&report);
            times.push(started.elapsed());
            size = (report.to_string().len(), gz.len());
            assert_eq!(rows.len(), 1_000);
        }
        times.sort();
        println!(
            "report: 1,000 rows taken, rendered and gzipped in {:.1} ms (median of 20); JSON {} bytes, gzip {} bytes",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            size.0,
            size.1
        );
    });
}
