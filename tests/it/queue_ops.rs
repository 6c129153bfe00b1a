//! The queue from the command line, as a Postfix admin uses postqueue/postsuper: list into a
//! pipe that closes early, and (below) flush, hold, release, bulk delete and retry ALL.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use mailerd::smtp::command::Notify;
use mailerd::store::sqlite::SqliteStore;
use mailerd::store::{Destination, MessageId, NewMessage, NewRecipient, Origin, Store, Via};
use mailerd::time::Timestamp;

/// A data dir with its config file; the store is opened as the CLI opens it.
pub(crate) struct DataDir {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl DataDir {
    pub fn new() -> DataDir {
        Self::with("")
    }

    /// A data dir whose configuration can run a daemon on loopback (SMTP on port 0, no
    /// submission, no HTTP, no DNS), with `extra` sections appended.
    pub fn with(extra: &str) -> DataDir {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mailerd.toml");
        std::fs::write(
            &config,
            format!(
                "hostname = \"mx.local.test\"\ndata_dir = \"{}\"\n[listen]\nsmtp = \"127.0.0.1:0\"\nsubmission = \"\"\n\
                 [local]\ndomains = [\"local.test\"]\n[dns]\nnameservers = [\"127.0.0.1:9\"]\n\
                 [bounce]\ncheck_authentication = false\n{extra}",
                dir.path().display()
            ),
        )
        .unwrap();
        DataDir { dir, config }
    }

    /// Starts `mailerd serve` on this data dir as a child process; it is stopped on drop.
    pub fn serve(&self) -> Daemon {
        let child = Command::new(env!("CARGO_BIN_EXE_mailerd"))
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env("MAILERD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mailerd");
        // Stopped and waited for on drop, also when it does not start.
        let daemon = Daemon(child);
        let lock = self.dir.path().join("mailerd.lock");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        // Started once the lock names it and its store is open.
        while std::time::Instant::now() < until {
            let locked = std::fs::read_to_string(&lock).is_ok_and(|t| t.trim() == daemon.0.id().to_string());
            if locked && self.dir.path().join("mailerd.db").exists() {
                std::thread::sleep(std::time::Duration::from_millis(200));
                return daemon;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("mailerd serve did not start");
    }

    /// Files in a local mailbox's Maildir new/.
    pub fn maildir(&self, domain: &str, local: &str) -> usize {
        std::fs::read_dir(self.dir.path().join("mail").join(domain).join(local).join("new")).map_or(0, |d| d.count())
    }

    pub fn store(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&self.dir.path().join("mailerd.db")).unwrap())
    }

    /// Runs `mailerd --config … ARGS`: exit code, stdout, stderr.
    pub fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out =
            Command::new(env!("CARGO_BIN_EXE_mailerd")).arg("--config").arg(&self.config).args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }
}

/// A child `mailerd serve`, stopped (SIGTERM, then waited for) when dropped.
pub(crate) struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// Polls `check` every 25 ms for up to 10 s.
pub(crate) async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

pub(crate) fn new_message(id: &str, at: i64, rcpts: &[&str]) -> NewMessage {
    NewMessage {
        id: MessageId(id.into()),
        reverse_path: mailerd::smtp::address::ReversePath::Mailbox(
            mailerd::smtp::address::Mailbox::parse("app@sender.test").expect("address"),
        ),
        envid: None,
        ret: None,
        received_at: Timestamp(at),
        origin: Origin { via: Via::Smtp, client_ip: "127.0.0.1".into(), helo: "t".into(), ..Default::default() },
        body: b"Subject: t\r\n\r\nx\r\n".to_vec(),
        header_message_id: None,
        recipients: rcpts
            .iter()
            .map(|a| {
                let local = a.ends_with("@local.test");
                NewRecipient {
                    address: a.to_string(),
                    orcpt: None,
                    notify: Some(Notify { never: true, ..Notify::default() }),
                    destination: if local { Destination::Mailbox(a.to_lowercase()) } else { Destination::Remote },
                }
            })
            .collect(),
        reports: Vec::new(),
        notes: Vec::new(),
        rejected: Vec::new(),
        idempotency: None,
    }
}

fn exits_0_when_the_reader_goes_away(config: &Path, args: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read a little (like `head -1`), then close the pipe while mailerd still writes.
    let mut first = [0u8; 64];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{args:?}: {stderr}");
    assert!(stderr.is_empty(), "{args:?}: nothing on stderr, got {stderr}");
}

/// Regression: `mailerd queue list | head` panicked with "failed printing to stdout: Broken
/// pipe" (exit 101).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_is_a_normal_end() {
    let d = DataDir::new();
    let store = d.store();
    // Far more output than a pipe buffers (64 KB).
    let rcpts: Vec<String> = (0..20).map(|i| format!("someone-with-a-long-address-{i}@example.net")).collect();
    let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    let inserts: Vec<_> = (0..200)
        .map(|i| {
            let (store, m) = (store.clone(), new_message(&format!("PIPE{i:04}"), 1_700_000_000_000 + i, &rcpts));
            tokio::spawn(async move { store.insert_message(m).await.unwrap() })
        })
        .collect();
    for i in inserts {
        i.await.unwrap();
    }
    for args in [&["queue", "list"][..], &["queue", "list", "--json"]] {
        exits_0_when_the_reader_goes_away(&d.config, args);
    }
}

/// Held mail stays while a daemon runs; release delivers it; flush retries a deferred
/// recipient now; `retry ALL`; bulk delete by state; counts printed; usage errors exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_release_flush_and_delete_beside_a_running_daemon() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let d = DataDir::with(&format!("[retry]\nfirst = 3600\n[routes]\n\"down.test\" = \"{closed}\"\n"));
    let store = d.store();
    let now = Timestamp::now().millis();
    store.insert_message(new_message("HELD1", now, &["postmaster@local.test"])).await.unwrap();
    store.insert_message(new_message("DOWN1", now, &["x@down.test"])).await.unwrap();
    let (code, out, err) = d.run(&["queue", "hold", "HELD1"]);
    assert_eq!((code, out.as_str()), (Some(0), "HELD1: 1 recipient(s) held\n"), "{err}");
    assert_eq!(d.run(&["queue", "hold", "NOPE"]).0, Some(2), "no such message");
    assert_eq!(d.run(&["queue", "hold"]).0, Some(2), "usage: an ID or --all");

    let _daemon = d.serve();
    let attempts = async |id: &str| {
        store.message_detail(&MessageId(id.into())).await.unwrap().map_or(0, |m| m.entry.recipients[0].attempts)
    };
    eventually("the first attempt at down.test", async || attempts("DOWN1").await == 1).await;
    // The daemon delivers nothing held (it polls every second: give it two).
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    assert_eq!(d.maildir("local.test", "postmaster"), 0, "held mail is not delivered");
    let (_, list, _) = d.run(&["queue", "list"]);
    assert!(list.contains("held") && list.contains("postmaster@local.test"), "{list}");

    let (code, out, _) = d.run(&["queue", "release", "--all"]);
    assert_eq!((code, out.as_str()), (Some(0), "1 recipient(s) released (due now)\n"));
    eventually("delivery once released", async || d.maildir("local.test", "postmaster") == 1).await;

    // Deferred for an hour; flush makes it due now, and the daemon tries again at once.
    let (code, out, _) = d.run(&["queue", "flush", "--domain", "DOWN.test"]);
    assert_eq!((code, out.as_str()), (Some(0), "1 recipient(s) due now\n"));
    eventually("the second attempt", async || attempts("DOWN1").await == 2).await;
    let (code, out, _) = d.run(&["queue", "retry", "ALL"]);
    assert_eq!((code, out.as_str()), (Some(0), "1 recipient(s) due now\n"));
    eventually("the third attempt", async || attempts("DOWN1").await == 3).await;

    assert_eq!(d.run(&["queue", "delete", "--state", "deferred"]).0, Some(2), "--state needs --all");
    let (code, out, _) = d.run(&["queue", "delete", "--all", "--state", "held"]);
    assert_eq!((code, out.as_str()), (Some(0), "0 message(s) deleted\n"));
    let (code, out, _) = d.run(&["queue", "delete", "--all", "--state", "deferred"]);
    assert_eq!((code, out.as_str()), (Some(0), "1 message(s) deleted\n"));
    let (_, list, _) = d.run(&["queue", "list"]);
    assert!(list.contains("0 message(s) in the queue"), "{list}");
}
