//! The client examples in `examples/` run against a daemon: the curl, Python (requests) and Node
//! (fetch) send scripts each send with an `Idempotency-Key` and retry it, and get the same id
//! back (exactly one message each); the Python and Node webhook receivers verify the signature
//! of every event mailerd posts to them, and refuse a tampered or stale one.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mailerd::store::{QueueFilter, Scope, Store};
use serde_json::Value;

use crate::harness::TestDaemon;

const SECRET: &str = "whsec_examples_0123456789";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether `program` runs here; without it, the examples cannot (a failure under CI).
fn have(program: &str, arg: &str) -> bool {
    let ok = std::process::Command::new(program).arg(arg).output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "{program} is missing (.ci/run installs it)");
        eprintln!("SKIP examples: {program} is not installed");
    }
    ok
}

/// A receiver started on `port`: killed when dropped; its stdout lines (the verified events)
/// arrive on `lines`.
struct Receiver {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn receiver(program: &str, script: &str, port: u16) -> Receiver {
    let mut child = Command::new(program)
        .arg(examples().join(script))
        .arg(port.to_string())
        .env("WEBHOOK_SECRET", SECRET)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} {script}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Receiver { child, lines }
}

async fn wait_listening(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

/// Runs a send example; returns its one JSON line.
async fn send(program: &'static str, script: &'static str, api: std::net::SocketAddr, key: &str) -> Value {
    let key = key.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(program)
            .arg(examples().join(script))
            .env("MAILERD_API", format!("http://{api}"))
            .env("MAILERD_KEY", key)
            .env("MAIL_FROM", "news@example.test")
            .env("MAIL_TO", "bob@example.test")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script}: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{script} printed {stdout}: {e}"))
}

/// Reads a receiver's lines until every id of `ids` has a `delivered` event.
async fn delivered_events(r: &Receiver, ids: &[String]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen: Vec<Value> = Vec::new();
    while !ids.iter().all(|id| seen.iter().any(|e| e["type"] == "delivered" && e["id"] == *id)) {
        assert!(Instant::now() < deadline, "events seen: {seen:?}");
        match r.lines.try_recv() {
            Ok(line) => seen.push(serde_json::from_str(&line).unwrap()),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    seen
}

fn signature(unix: i64, body: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{unix}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix},v1={hex}")
}

#[tokio::test]
async fn the_client_examples_send_retry_and_verify_webhooks() {
    if !(have("curl", "--version") && have("python3", "--version") && have("node", "--version")) {
        return;
    }
    let requests = std::process::Command::new("python3").args(["-c", "import requests"]).status();
    if !requests.is_ok_and(|s| s.success()) {
        assert!(std::env::var_os("CI").is_none(), "Python's requests is missing (.ci/run installs it)");
        eprintln!("SKIP examples: Python's requests is not installed");
        return;
    }
    let (py_port, node_port) = (free_port(), free_port());
    let py = receiver("python3", "python/webhook_receiver.py", py_port);
    let node = receiver("node", "node/webhook_receiver.mjs", node_port);
    wait_listening(py_port).await;
    wait_listening(node_port).await;

    let d = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[local]\ndomains = [\"example.test\"]\n\
         [[webhooks]]\nurl = \"http://127.0.0.1:{py_port}/mailerd\"\nsecret = \"{SECRET}\"\nevents = [\"delivered\"]\n\
         [[webhooks]]\nurl = \"http://127.0.0.1:{node_port}/mailerd\"\nsecret = \"{SECRET}\"\nevents = [\"delivered\"]\n"
    ))
    .await;
    d.add_user("bob@example.test", "pw", None).await;
    let store = d.store();
    let (key, record) = mailerd::http::auth::generate("examples", Scope::All).unwrap();
    store.create_api_key(record).await.unwrap();
    let api = d.http.unwrap();

    let mut ids = Vec::new();
    for (program, script) in [("sh", "curl/send.sh"), ("python3", "python/send.py"), ("node", "node/send.mjs")] {
        let out = send(program, script, api, &key).await;
        assert_eq!(out["retry_id"], out["id"], "{script}: {out}");
        assert_eq!(out["replayed"], "true", "{script}: {out}");
        ids.push(out["id"].as_str().unwrap().to_string());
    }
    // Each send and its retry: one message.
    let rows = store.queue_search(QueueFilter { states: vec![], domain: None, limit: 100 }).await.unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");

    for (name, r) in [("python", &py), ("node", &node)] {
        let events = delivered_events(r, &ids).await;
        assert!(events.iter().all(|e| e["type"] == "delivered"), "{name}: {events:?}");
    }

    // A tampered body, a signature made with another secret, and a stale timestamp: refused.
    let now = mailerd::time::Timestamp::now().millis() / 1000;
    let body = r#"{"id":1,"type":"delivered"}"#;
    for port in [py_port, node_port] {
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let post = |sig: String, body: &'static str| async move {
            crate::harness::http::request_with(
                addr,
                "POST",
                "/mailerd",
                None,
                &[("mailerd-signature", &sig)],
                Some(("application/json", body.as_bytes().to_vec())),
            )
            .await
            .status
        };
        assert_eq!(post(signature(now, body), body).await, 204, "port {port}: a good signature");
        assert_eq!(post(signature(now, body), r#"{"id":1,"type":"bounced"}"#).await, 400, "tampered body");
        assert_eq!(post(signature(now - 3600, body), body).await, 400, "an hour old");
        assert_eq!(post(format!("t={now},v1={}", "0".repeat(64)), body).await, 400, "wrong signature");
        assert_eq!(post(String::new(), body).await, 400, "unsigned");
    }
}
