//! Cluster mode under failure: three mailerd processes on one PostgreSQL, a load submitted
//! round-robin to all of them, delivered to a recording sink.
//!
//! - Ten SIGKILLs of a node mid-load: every message that got 250 is delivered, at most twice,
//!   every duplicate's first copy came from a node killed right after it (the window between
//!   the remote's 250 and the outcome's record), and the destination never had more deliveries
//!   at once than the cluster-wide `max_connections_per_destination`.
//! - PostgreSQL crashed and restarted mid-load (a server of the test's own): the nodes answer
//!   451 4.3.0 while it is away, resume by themselves, and every 250 survived the crash.
//! - A bounce that reaches node B about mail node A sent is matched and suppresses the address
//!   for every node.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::harness::postgres::{OwnPostgres, TestSchema, url_or_skip};
use crate::harness::sink::Sink;

const NODES: usize = 3;
const KILLS: usize = 10;
const SESSIONS: usize = 9;
/// Short leases, so a killed node's recipients come due within seconds.
const LEASE_SECS: u64 = 6;
/// `outbound.max_connections_per_destination`: for the whole cluster, not per node.
const MAX_CONNECTIONS: usize = 4;
const KEY: &str = "5f0c1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7";

struct Node {
    name: String,
    config: PathBuf,
    data: PathBuf,
    addr: SocketAddr,
    child: Option<Child>,
}

impl Node {
    fn new(dir: &Path, i: usize, store_url: &str, sink: SocketAddr) -> Node {
        let name = format!("node{i}.cluster.test");
        let data = dir.join(format!("node{i}"));
        std::fs::create_dir_all(&data).unwrap();
        // The first node brings a key file; the cluster's key in the database is that one,
        // and the other nodes take it from there (README: adding a node).
        if i == 0 {
            std::fs::write(data.join("return-path.key"), KEY).unwrap();
        }
        let addr: SocketAddr = format!("127.0.0.1:{}", crate::crash_durability::free_port()).parse().unwrap();
        let config = dir.join(format!("node{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "hostname = \"{name}\"\ndata_dir = \"{}\"\n\
                 [listen]\nsmtp = \"{addr}\"\nsubmission = \"\"\nhttp = \"\"\n\
                 [store]\nurl = \"{store_url}\"\n\
                 [local]\ndomains = [\"sender.test\"]\n\
                 [relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n\
                 [queue]\nlease = {LEASE_SECS}\n\
                 [retry]\nfirst = 1\nmax_interval = 2\n\
                 [outbound]\nmax_connections_per_destination = {MAX_CONNECTIONS}\n\
                 [routes]\n\"sink.test\" = \"{sink}\"\n\
                 [dns]\nnameservers = [\"127.0.0.1:9\"]\n\
                 [bounce]\nreturn_path_domain = \"bounces.cluster.test\"\ncheck_authentication = false\n",
                data.display()
            ),
        )
        .unwrap();
        Node { name, config, data, addr, child: None }
    }

    async fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_mailerd"))
            .args(["--config", self.config.to_str().unwrap(), "serve"])
            .env("MAILERD_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start mailerd");
        self.child = Some(child);
        crate::crash_durability::wait_ready(self.addr).await;
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            c.wait().unwrap();
        }
    }
}

async fn wait_greeting(addr: SocketAddr) {
    use tokio::io::AsyncReadExt;
    for _ in 0..200 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            let mut first = [0u8; 4];
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), s.read_exact(&mut first)).await
                && &first == b"220 "
            {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("mailerd on {addr} never greeted");
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A small SMTP client that never panics on a dead peer: every step is an Option.
struct Conn {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Option<Conn> {
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await.ok()?.ok()?;
        let (r, w) = stream.into_split();
        let mut c = Conn { read: BufReader::new(r), write: w };
        (c.reply().await?.0 == 220).then_some(c)
    }

    /// One reply: (code, the last line's text).
    async fn reply(&mut self) -> Option<(u16, String)> {
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(30), self.read.read_line(&mut line)).await.ok()?.ok()?;
            if n == 0 {
                return None;
            }
            let code: u16 = line.get(..3)?.parse().ok()?;
            if line.as_bytes().get(3) != Some(&b'-') {
                return Some((code, line.trim_end().to_string()));
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> Option<(u16, String)> {
        self.write.write_all(format!("{line}\r\n").as_bytes()).await.ok()?;
        self.reply().await
    }
}

/// What the load saw.
#[derive(Default)]
struct Log {
    /// Subjects of messages that got 250.
    acked: Vec<String>,
    /// Subjects sent whose final reply never came (the node died): stored or not.
    unanswered: Vec<String>,
    /// Every reply that was not a success: (when, reply).
    refusals: Vec<(Instant, String)>,
    /// When each 250 came.
    acked_at: Vec<Instant>,
}

/// One client session after another, moving to the next node every 20 messages and whenever
/// a node stops answering, until `stop`.
async fn load(nodes: Arc<Vec<SocketAddr>>, session: usize, stop: Arc<AtomicBool>, log: Arc<Mutex<Log>>) {
    let mut target = session;
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let addr = nodes[target % nodes.len()];
        target += 1;
        let Some(mut c) = Conn::open(addr).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if c.cmd("EHLO load.test").await.map(|r| r.0) != Some(250) {
            continue;
        }
        for _ in 0..20 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let subject = format!("s{session}-m{n}");
            n += 1;
            match c.cmd("MAIL FROM:<app@sender.test>").await {
                Some((250, _)) => {}
                Some((_, text)) => {
                    log.lock().unwrap().refusals.push((Instant::now(), text));
                    break;
                }
                None => break,
            }
            match c.cmd(&format!("RCPT TO:<user{}@sink.test>", n % 50)).await {
                Some((250, _)) => {}
                Some((_, text)) => {
                    log.lock().unwrap().refusals.push((Instant::now(), text));
                    let _ = c.cmd("RSET").await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                None => break,
            }
            if c.cmd("DATA").await.map(|r| r.0) != Some(354) {
                break;
            }
            let body = format!(
                "From: app@sender.test\r\nTo: someone@sink.test\r\nSubject: {subject}\r\n\
                 Message-ID: <{subject}@sender.test>\r\n\r\nload message {subject}\r\n."
            );
            match c.cmd(&body).await {
                Some((250, _)) => {
                    {
                        let mut l = log.lock().unwrap();
                        l.acked.push(subject);
                        l.acked_at.push(Instant::now());
                    }
                    // Paced a little: the backlog must drain through 4 slow connections.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Some((_, text)) => log.lock().unwrap().refusals.push((Instant::now(), text)),
                None => {
                    log.lock().unwrap().unanswered.push(subject);
                    break;
                }
            }
        }
        let _ = c.cmd("QUIT").await;
    }
}

struct Cluster {
    nodes: Vec<Node>,
    sink: Sink,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(store_url: &str, sink: Sink) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes: Vec<Node> = (0..NODES).map(|i| Node::new(dir.path(), i, store_url, sink.addr)).collect();
        for n in &mut nodes {
            n.start().await;
            // Listening comes before start-up is over (store, return-path key), the greeting
            // after: node 0 stores its key before the others look for one.
            wait_greeting(n.addr).await;
        }
        Cluster { nodes, sink, _dir: dir }
    }

    fn addrs(&self) -> Arc<Vec<SocketAddr>> {
        Arc::new(self.nodes.iter().map(|n| n.addr).collect())
    }

    fn start_load(&self, stop: &Arc<AtomicBool>, log: &Arc<Mutex<Log>>) -> Vec<tokio::task::JoinHandle<()>> {
        (0..SESSIONS).map(|s| tokio::spawn(load(self.addrs(), s, stop.clone(), log.clone()))).collect()
    }

    /// Waits until the sink has every subject in `wanted` (at most `limit`); returns the
    /// number of copies of each subject the sink got.
    async fn drain(&self, wanted: &[String], limit: Duration) -> HashMap<String, usize> {
        let started = Instant::now();
        loop {
            let mut copies: HashMap<String, usize> = HashMap::new();
            for s in self.sink.subjects() {
                *copies.entry(s).or_default() += 1;
            }
            if wanted.iter().all(|w| copies.contains_key(w)) || started.elapsed() > limit {
                return copies;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(conn);
    client
}

async fn count(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_loses_nothing_over_ten_node_kills() {
    let Some(admin) = url_or_skip("cluster node kills") else { return };
    let schema = TestSchema::create(&admin, "cluster_kills").await;
    // The sink holds each 250 for 20 ms: kills often land between its 250 and the record.
    let mut cluster = Cluster::start(&schema.url, Sink::start_slow(Duration::from_millis(20)).await).await;
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Log::default()));
    let load = cluster.start_load(&stop, &log);

    // Kill a node at a moment unrelated to the protocol, let it come back, again and again.
    let mut kills: Vec<(String, Instant)> = Vec::new();
    let mut acked_per_round = Vec::new();
    for k in 0..KILLS {
        let before = log.lock().unwrap().acked.len();
        let started = Instant::now();
        while log.lock().unwrap().acked.len() < before + 60 && started.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(150 + 97 * k as u64 % 300)).await;
        let node = &mut cluster.nodes[k % NODES];
        node.kill();
        kills.push((node.name.clone(), Instant::now()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        node.start().await;
        acked_per_round.push(log.lock().unwrap().acked.len() - before);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        let _ = tokio::time::timeout(Duration::from_secs(40), t).await;
    }

    let (acked, unanswered) = {
        let l = log.lock().unwrap();
        (l.acked.clone(), l.unanswered.clone())
    };
    // The dead nodes' leases end after LEASE_SECS; give retries time as well.
    let draining = Instant::now();
    let copies = cluster.drain(&acked, Duration::from_secs(240)).await;
    let drained_in = draining.elapsed();
    let db = pg(&schema.url).await;
    let started = Instant::now();
    while count(&db, "SELECT count(*) FROM recipients WHERE state IN ('queued', 'deferred')").await > 0
        && started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pending = count(&db, "SELECT count(*) FROM recipients WHERE state IN ('queued', 'deferred')").await;
    let failed =
        count(&db, "SELECT count(*) FROM recipients WHERE state NOT IN ('queued', 'deferred', 'delivered')").await;
    let stored = count(&db, "SELECT count(*) FROM messages").await;

    let missing: Vec<&String> = acked.iter().filter(|s| !copies.contains_key(*s)).collect();
    let dupes: Vec<&String> = copies.iter().filter(|(_, n)| **n == 2).map(|(s, _)| s).collect();
    let more: Vec<(&String, &usize)> = copies.iter().filter(|(_, n)| **n > 2).collect();
    let max_transactions = cluster.sink.transactions.max.load(Ordering::SeqCst);
    let unanswered_delivered = unanswered.iter().filter(|s| copies.contains_key(*s)).count();
    // Each duplicate: its first copy came from a node that was killed after sending it and
    // before the second copy went out (the node died between the sink's 250 and its record).
    let received = cluster.sink.received.lock().unwrap().clone();
    let mut unexplained = Vec::new();
    for d in &dupes {
        let mut copies: Vec<_> = received.iter().filter(|r| &&r.subject == d).collect();
        copies.sort_by_key(|r| r.at);
        let (first, second) = (copies[0], copies[1]);
        let explained = kills.iter().any(|(node, at)| *node == first.helo && *at >= first.at && *at <= second.at);
        if !explained {
            unexplained.push(format!("{d}: first by {} then by {}", first.helo, second.helo));
        }
    }
    eprintln!(
        "cluster kill test: {KILLS} SIGKILLs over {NODES} nodes, {} messages got 250 (per round {acked_per_round:?}), \
         {} stored, {} delivered distinct, {} missing, {} duplicates, {} delivered more than twice, \
         {} unanswered sends ({} of them delivered), {pending} still pending, {failed} failed; at most {max_transactions} transactions at the sink \
         at once (limit {MAX_CONNECTIONS} for the cluster); the backlog drained {:.1} s after the load",
        acked.len(),
        stored,
        copies.len(),
        missing.len(),
        dupes.len(),
        more.len(),
        unanswered.len(),
        unanswered_delivered,
        drained_in.as_secs_f64()
    );
    assert!(acked_per_round.iter().all(|&n| n > 0), "load ran through every kill: {acked_per_round:?}");
    assert!(missing.is_empty(), "accepted but never delivered: {missing:?}");
    assert!(more.is_empty(), "delivered more than twice: {more:?}");
    assert!(unexplained.is_empty(), "duplicates outside the documented window: {unexplained:?}");
    assert_eq!(pending, 0, "the queue drained");
    assert!(max_transactions <= MAX_CONNECTIONS, "{max_transactions} deliveries to one destination at once");
    assert_eq!(failed, 0, "nothing bounced or expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_answer_451_while_postgres_is_away_and_resume_by_themselves() {
    let Some(server) = OwnPostgres::start("cluster PostgreSQL restart") else { return };
    let url = server.url();
    let cluster = Cluster::start(&url, Sink::start().await).await;
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Log::default()));
    let load = cluster.start_load(&stop, &log);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let crash_at = Instant::now();
    server.crash();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let back_at = Instant::now();
    server.start_again();
    let up_at = Instant::now();
    // The nodes find the server again on their own: wait for 250s after the restart.
    let started = Instant::now();
    while log.lock().unwrap().acked_at.iter().filter(|t| **t > up_at).count() < 100
        && started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        let _ = tokio::time::timeout(Duration::from_secs(40), t).await;
    }
    let (acked, acked_at, refusals) = {
        let l = log.lock().unwrap();
        (l.acked.clone(), l.acked_at.clone(), l.refusals.clone())
    };
    let before = acked_at.iter().filter(|t| **t < crash_at).count();
    let during = acked_at.iter().filter(|t| **t > crash_at + Duration::from_millis(500) && **t < back_at).count();
    let after = acked_at.iter().filter(|t| **t > up_at).count();
    let in_outage: Vec<&String> = refusals
        .iter()
        .filter(|(t, _)| *t >= crash_at && *t <= up_at + Duration::from_secs(2))
        .map(|(_, r)| r)
        .collect();
    let not_451: Vec<&&String> = in_outage.iter().filter(|r| !r.starts_with("451 4.3.0")).collect();

    // Every 250 survived the crash: it is in the database and gets delivered.
    let copies = cluster.drain(&acked, Duration::from_secs(90)).await;
    let db = pg(&url).await;
    let mut lost = Vec::new();
    for s in &acked {
        let id = format!("{s}@sender.test");
        let row = db.query_one("SELECT count(*) FROM sent_log WHERE header_id = $1", &[&id]).await.unwrap();
        if row.get::<_, i64>(0) == 0 {
            lost.push(s.clone());
        }
    }
    let missing = acked.iter().filter(|s| !copies.contains_key(*s)).count();
    eprintln!(
        "cluster PostgreSQL restart: {} messages got 250 ({before} before the crash, {during} during the 3 s outage, \
         {after} after the restart), {} refusals in the outage ({} of them not 451 4.3.0), {} lost, {missing} undelivered",
        acked.len(),
        in_outage.len(),
        not_451.len(),
        lost.len()
    );
    assert!(before > 0 && after >= 100, "load before and after the outage: {before}, {after}");
    assert!(!in_outage.is_empty(), "clients were told to come back while the database was away");
    assert!(not_451.is_empty(), "refusals other than 451 4.3.0: {not_451:?}");
    assert_eq!(during, 0, "no 250 while the database was away");
    assert!(lost.is_empty(), "250 given but not stored: {lost:?}");
    assert_eq!(missing, 0, "every accepted message delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_at_node_b_suppresses_mail_node_a_sent_for_every_node() {
    let Some(admin) = url_or_skip("cluster bounce at another node") else { return };
    let schema = TestSchema::create(&admin, "cluster_bounce").await;
    let mut cluster = Cluster::start(&schema.url, Sink::start().await).await;
    // Node A accepts the message (any node may deliver it); the bounce comes back to node B.
    let (a, b, c) = (cluster.nodes[0].addr, cluster.nodes[1].addr, cluster.nodes[2].addr);
    let mut conn = Conn::open(a).await.expect("node A");
    conn.cmd("EHLO app.test").await.unwrap();
    assert_eq!(conn.cmd("MAIL FROM:<app@sender.test>").await.unwrap().0, 250);
    assert_eq!(conn.cmd("RCPT TO:<gone@sink.test>").await.unwrap().0, 250);
    assert_eq!(conn.cmd("DATA").await.unwrap().0, 354);
    let reply = conn
        .cmd("From: app@sender.test\r\nTo: gone@sink.test\r\nSubject: to-be-bounced\r\nMessage-ID: <tbb@sender.test>\r\n\r\nhi\r\n.")
        .await
        .unwrap();
    assert_eq!(reply.0, 250, "{reply:?}");
    let queue_id = reply.1.rsplit(' ').next().unwrap().to_string();

    // Delivered by some node, with a return path signed by the cluster's key.
    cluster.drain(&["to-be-bounced".to_string()], Duration::from_secs(30)).await;
    let delivered = cluster.sink.received.lock().unwrap()[0].clone();
    assert_eq!(delivered.rcpts, ["gone@sink.test"]);
    let signed = delivered.from;
    assert!(signed.starts_with("bounces+") && signed.ends_with("@bounces.cluster.test"), "{signed}");
    assert!(signed.contains(&queue_id), "{signed}");

    // One key for all: node A's file, stored in the database; B and C made no key of their own.
    let db = pg(&schema.url).await;
    let stored = db.query_one("SELECT value FROM cluster_secrets WHERE name = 'return-path'", &[]).await.unwrap();
    assert_eq!(stored.get::<_, Vec<u8>>(0), KEY.as_bytes());
    for node in &cluster.nodes[1..] {
        assert!(!node.data.join("return-path.key").exists(), "a cluster node wrote a key file of its own");
    }

    // The remote side bounces it later (after the delivering node recorded its 250); the
    // bounce reaches node B.
    let started = Instant::now();
    let delivered_sql =
        format!("SELECT count(*) FROM recipients WHERE message_id = '{queue_id}' AND state = 'delivered'");
    while count(&db, &delivered_sql).await == 0 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut mx = Conn::open(b).await.expect("node B");
    mx.cmd("EHLO mx.sink.test").await.unwrap();
    assert_eq!(mx.cmd("MAIL FROM:<>").await.unwrap().0, 250);
    assert_eq!(mx.cmd(&format!("RCPT TO:<{signed}>")).await.unwrap().0, 250);
    assert_eq!(mx.cmd("DATA").await.unwrap().0, 354);
    let dsn = crate::feedback_loop::late_bounce(&signed, "gone@sink.test");
    let r = mx.cmd(&format!("{}.", dsn)).await.unwrap();
    assert_eq!(r.0, 250, "{r:?}");

    // Matched to A's message, and the address is suppressed for every node. The suppression
    // is committed before the recipient's state changes (a second transaction): wait for both.
    let started = Instant::now();
    let bounced_sql = format!("SELECT count(*) FROM recipients WHERE message_id = '{queue_id}' AND state = 'bounced'");
    while (count(&db, "SELECT count(*) FROM suppressions WHERE address = 'gone@sink.test'").await == 0
        || count(&db, &bounced_sql).await == 0)
        && started.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state: String = db
        .query_one("SELECT state FROM recipients WHERE message_id = $1", &[&queue_id])
        .await
        .expect("recipient of A's message")
        .get(0);
    assert_eq!(state, "bounced", "the bounce at B was matched to the message A accepted");
    for (name, node) in [("A", a), ("B", b), ("C", c)] {
        let mut s = Conn::open(node).await.expect("node");
        s.cmd("EHLO app.test").await.unwrap();
        s.cmd("MAIL FROM:<app@sender.test>").await.unwrap();
        let r = s.cmd("RCPT TO:<gone@sink.test>").await.unwrap();
        assert!(r.0 == 550 && r.1.contains("suppress"), "node {name}: {r:?}");
    }
    for n in &mut cluster.nodes {
        n.kill();
    }
}
