//! HTTP API submission: `POST /api/v1/messages` from 32 concurrent keep-alive clients against
//! an in-process daemon (SQLite, queue.hold so nothing is delivered), messages per second
//! durable (202 comes after the commit) and latency percentiles; against a baseline measured in
//! the same run on the same connections: `GET /api/v1/openapi.json` (HTTP and routing only).
//! Then, in the same run against the same daemon, the same messages as
//! `POST /api/v1/messages/batch` of 100 from `BATCH_CLIENTS` clients (each batch one durable
//! commit): messages per second and the ratio to the single sends.
//!
//! The baseline, the single sends and the batches take turns in `MAILERD_BENCH_ROUNDS` rounds
//! (3 by default), each with its share of N: on a shared machine a slow minute then falls on
//! every kind alike, and so does the store's growth. Each round's ratio is printed, then the
//! totals (messages over seconds, all rounds) and the median round.
//!
//! Run: `cargo bench --bench api_send` (N=10000 by default; `MAILERD_BENCH_N`). To profile
//! one path alone, `MAILERD_BENCH_ONLY=batch` (or `single`) runs only its timed run.
//! Targets: >= 2,000 messages per second with 32 clients (issue 6); batches of 100 >= 5x the
//! single sends' messages per second (issue 17); p99 reported.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use mailerd::config::Config;
use mailerd::store::Store;

const CLIENTS: usize = 32;
/// Clients sending batches (each request carries `BATCH` messages).
const BATCH_CLIENTS: usize = 8;
const BATCH: usize = 100;

/// The JSON of one message (about 2 KB of text, as the single sends). Written into one buffer
/// of the right size: the load generator shares the daemon's two cores, so its own work is kept
/// small (the same for single and batch sends).
fn message(i: usize) -> String {
    use std::fmt::Write as _;
    static FILLER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| "x".repeat(2000));
    let mut out = String::with_capacity(2200);
    let _ = write!(
        out,
        r#"{{"from":"app@sender.test","to":["user{i}@rcpt.test"],"subject":"order {i}","text":"Thank you for your order.\n"#
    );
    out.push_str(&FILLER);
    out.push_str(r#""}"#);
    out
}

/// `batches` requests of `BATCH` messages on one keep-alive connection; the latency of each.
async fn batch_client(addr: SocketAddr, key: Arc<String>, batches: usize) -> Vec<Duration> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).ok();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let mut lat = Vec::with_capacity(batches);
    for b in 0..batches {
        let mut body = String::with_capacity(BATCH * 2200);
        body.push_str(r#"{"messages":["#);
        for i in 0..BATCH {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&message(b * BATCH + i));
        }
        body.push_str("]}");
        let started = Instant::now();
        let req = hyper::Request::post("/api/v1/messages/batch")
            .header("host", "bench")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        // The connection takes the next request only once it has finished the last response
        // (hyper's client answers "connection was not ready" otherwise, now and then).
        sender.ready().await.expect("connection ready");
        let resp = sender.send_request(req).await.expect("response");
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        // Only the count is read (the load generator keeps its own work small).
        #[derive(serde::Deserialize)]
        struct Reply {
            queued: usize,
        }
        let reply: Option<Reply> = serde_json::from_slice(&body).ok();
        assert!(
            status == 200 && reply.is_some_and(|r| r.queued == BATCH),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        lat.push(started.elapsed());
    }
    lat
}

/// What a timed run did: messages (or requests) done, seconds taken, each request's latency
/// (unsorted).
#[derive(Default)]
struct Timed {
    done: usize,
    secs: f64,
    lat: Vec<Duration>,
}

impl Timed {
    fn rate(&self) -> f64 {
        self.done as f64 / self.secs
    }

    fn add(&mut self, other: Timed) {
        self.done += other.done;
        self.secs += other.secs;
        self.lat.extend(other.lat);
    }
}

/// `total` messages as batches of `BATCH` over `BATCH_CLIENTS` connections.
async fn run_batches(addr: SocketAddr, key: &Arc<String>, total: usize) -> Timed {
    let per_client = (total / BATCH / BATCH_CLIENTS).max(1);
    let started = Instant::now();
    let tasks: Vec<_> = (0..BATCH_CLIENTS).map(|_| tokio::spawn(batch_client(addr, key.clone(), per_client))).collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("client"));
    }
    Timed { done: lat.len() * BATCH, secs: started.elapsed().as_secs_f64(), lat }
}

async fn client(addr: SocketAddr, key: Arc<String>, n: usize, post: bool) -> Vec<Duration> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).ok();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        let req = if post {
            let body = message(i);
            hyper::Request::post("/api/v1/messages")
                .header("host", "bench")
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
        } else {
            hyper::Request::get("/api/v1/openapi.json").header("host", "bench").body(Full::new(Bytes::new()))
        }
        .expect("request");
        // The connection takes the next request only once it has finished the last response
        // (hyper's client answers "connection was not ready" otherwise, now and then).
        sender.ready().await.expect("connection ready");
        let resp = sender.send_request(req).await.expect("response");
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert!(status == 202 || (!post && status == 200), "{status}: {}", String::from_utf8_lossy(&body));
        lat.push(started.elapsed());
    }
    lat
}

async fn run(addr: SocketAddr, key: &Arc<String>, total: usize, post: bool) -> Timed {
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS).map(|_| tokio::spawn(client(addr, key.clone(), total / CLIENTS, post))).collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("client"));
    }
    Timed { done: lat.len(), secs: started.elapsed().as_secs_f64(), lat }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn main() {
    let total: usize = std::env::var("MAILERD_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let toml = format!(
            "hostname = \"mx.bench.test\"\ndata_dir = \"{}\"\n[listen]\nsmtp = \"127.0.0.1:0\"\nsubmission = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n[queue]\nhold = true\n[dns]\nnameservers = [\"127.0.0.1:9\"]\n[routes]\n\"rcpt.test\" = \"127.0.0.1:9\"\n[bounce]\ncheck_authentication = false\n",
            dir.path().display()
        );
        let handle = mailerd::daemon::start(Config::from_toml(&toml).expect("config")).await.expect("daemon");
        let addr = handle.http.expect("http");
        let store = mailerd::store::sqlite::SqliteStore::open(&dir.path().join("mailerd.db")).expect("store");
        let (key, record) = mailerd::http::auth::generate("bench", mailerd::store::Scope::Domains(vec![mailerd::smtp::address::Domain::parse("sender.test").expect("domain")])).expect("key");
        store.create_api_key(record).await.expect("key stored");
        let key = Arc::new(key);
        // Warm up both paths.
        let _ = run(addr, &key, CLIENTS * 10, true).await;
        let _ = run(addr, &key, CLIENTS * 10, false).await;
        let _ = run_batches(addr, &key, BATCH * BATCH_CLIENTS).await;

        let only = std::env::var("MAILERD_BENCH_ONLY").unwrap_or_default();
        if only == "batch" {
            let batched = run_batches(addr, &key, total).await.rate();
            println!("POST /api/v1/messages/batch of {BATCH} alone: {batched:>8.0} msg/s");
            handle.shutdown().await.ok();
            return;
        }
        if only == "single" {
            let _ = run(addr, &key, total, false).await;
            let rate = run(addr, &key, total, true).await.rate();
            println!("POST /api/v1/messages alone: {rate:>8.0} msg/s");
            handle.shutdown().await.ok();
            return;
        }
        // The three runs take turns, `rounds` times, each with its share of `total`: a shared
        // machine's slow minute then falls on all of them, and so does the store's growth.
        let rounds: usize =
            std::env::var("MAILERD_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
        let share = total / rounds;
        let (mut base, mut single, mut batch) = (Timed::default(), Timed::default(), Timed::default());
        let mut ratios = Vec::new();
        for round in 1..=rounds {
            base.add(run(addr, &key, share, false).await);
            let s = run(addr, &key, share, true).await;
            let b = run_batches(addr, &key, share).await;
            let ratio = b.rate() / s.rate();
            println!("round {round}: single {:>6.0} msg/s, batch {:>6.0} msg/s = {ratio:.2}x", s.rate(), b.rate());
            ratios.push(ratio);
            single.add(s);
            batch.add(b);
        }
        ratios.sort_by(f64::total_cmp);
        for t in [&mut base, &mut single, &mut batch] {
            t.lat.sort();
        }
        println!("{CLIENTS} keep-alive clients, {total} requests each kind, in {rounds} rounds taking turns");
        println!(
            "GET openapi.json (HTTP ceiling, baseline): {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms",
            base.rate(),
            pct(&base.lat, 0.50),
            pct(&base.lat, 0.99)
        );
        println!(
            "POST /api/v1/messages (durable 202):      {:>8.0} msg/s  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  = {:.2}x the baseline",
            single.rate(),
            pct(&single.lat, 0.50),
            pct(&single.lat, 0.99),
            pct(&single.lat, 1.0),
            single.rate() / base.rate()
        );
        println!(
            "POST /api/v1/messages/batch of {BATCH} ({BATCH_CLIENTS} clients): {:>8.0} msg/s  p50 {:.2} ms  p99 {:.2} ms per batch  = {:.2}x the single sends (median round {:.2}x)",
            batch.rate(),
            pct(&batch.lat, 0.50),
            pct(&batch.lat, 0.99),
            batch.rate() / single.rate(),
            ratios[ratios.len() / 2]
        );
        let queued = store.queue_list(usize::MAX).await.map(|q| q.len()).unwrap_or(0);
        println!("messages in the store: {queued}");
        handle.shutdown().await.ok();
    });
}
