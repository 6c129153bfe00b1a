//! Nothing lost: SIGKILL the daemon (a child process) in the middle of a load of concurrent
//! sessions, five times, restart it, and find every message that got 250, byte for byte.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailerd::store::sqlite::SqliteStore;
use mailerd::store::{MessageId, Store};

use crate::harness::Client;

const KILLS: usize = 5;
const SESSIONS: usize = 20;

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env("MAILERD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mailerd")
}

pub(crate) async fn wait_ready(addr: SocketAddr) {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("mailerd did not start listening on {addr}");
}

fn body(session: usize, n: usize, round: usize) -> String {
    let token = format!("r{round}-s{session}-m{n}");
    let filler = format!("{token} {}\r\n", "0123456789abcdef".repeat(4));
    format!("From: load@sender.test\r\nSubject: {token}\r\n\r\n{}", filler.repeat(4096 / filler.len()))
}

/// One session sending messages until the connection dies; records each 250 with its body.
async fn load(addr: SocketAddr, session: usize, round: usize, acked: Arc<Mutex<Vec<(String, String)>>>) {
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else { return };
    drop(stream);
    let mut c = Client::connect(addr).await;
    if c.greeting.code != 220 {
        return;
    }
    let Some(r) = try_cmd(&mut c, "EHLO load.test").await else { return };
    if r.code != 250 {
        return;
    }
    for n in 0.. {
        let b = body(session, n, round);
        for line in ["MAIL FROM:<load@sender.test>", "RCPT TO:<postmaster@local.test>", "DATA"] {
            match try_cmd(&mut c, line).await {
                Some(r) if r.code < 400 => {}
                _ => return,
            }
        }
        c.send_raw(b.as_bytes()).await;
        match try_cmd(&mut c, ".").await {
            Some(r) if r.code == 250 => {
                let id = r.queue_id();
                acked.lock().unwrap().push((id, b));
            }
            _ => return,
        }
    }
}

async fn try_cmd(c: &mut Client, line: &str) -> Option<crate::harness::smtp::Reply> {
    c.send(line).await;
    c.try_read_reply().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_that_got_250_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = dir.path().join("mailerd.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"mx.local.test\"\ndata_dir = \"{}\"\n[listen]\nsmtp = \"{addr}\"\nsubmission = \"\"\nhttp = \"\"\n\
             [local]\ndomains = [\"local.test\"]\n[queue]\nhold = true\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut per_round = Vec::new();
    for round in 0..KILLS {
        let mut child = spawn(&config);
        wait_ready(addr).await;
        let before = acked.lock().unwrap().len();
        let tasks: Vec<_> = (0..SESSIONS).map(|s| tokio::spawn(load(addr, s, round, acked.clone()))).collect();
        // Let the load run, then kill at a moment that does not depend on the protocol state.
        let started = Instant::now();
        while acked.lock().unwrap().len() - before < 200 && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(37 * round as u64 % 50)).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        per_round.push(acked.lock().unwrap().len() - before);
    }
    // Restart once more: the daemon must come up on the data the kills left behind.
    let mut child = spawn(&config);
    wait_ready(addr).await;
    let store = SqliteStore::open(&dir.path().join("mailerd.db")).unwrap();
    let acked = acked.lock().unwrap().clone();
    let mut present = 0;
    let mut lost = Vec::new();
    for (id, sent) in &acked {
        match store.load_body(&MessageId(id.clone())).await.unwrap() {
            Some(stored) if stored.ends_with(sent.as_bytes()) && stored.starts_with(b"Received: ") => present += 1,
            Some(_) => lost.push(format!("{id}: corrupt")),
            None => lost.push(format!("{id}: missing")),
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!(
        "crash test: {KILLS} SIGKILLs, {} messages acknowledged (per round {per_round:?}), {present} present and intact, {} lost",
        acked.len(),
        lost.len()
    );
    assert!(per_round.iter().all(|&n| n > 0), "every round must acknowledge messages: {per_round:?}");
    assert!(lost.is_empty(), "lost after 250: {lost:?}");
}
