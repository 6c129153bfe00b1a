//! The queue from the command line, as a Postfix admin uses postqueue/postsuper: list into a
//! pipe that closes early, and (below) flush, hold, release, bulk delete and retry ALL.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use mailerd::store::sqlite::SqliteStore;
use mailerd::store::{MessageId, NewMessage, NewRecipient, Origin, Store, Transport};
use mailerd::time::Timestamp;

/// A data dir with its config file; the store is opened as the CLI opens it.
pub(crate) struct DataDir {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl DataDir {
    pub fn new() -> DataDir {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mailerd.toml");
        std::fs::write(
            &config,
            format!("data_dir = \"{}\"\n[local]\ndomains = [\"local.test\"]\n", dir.path().display()),
        )
        .unwrap();
        DataDir { dir, config }
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

pub(crate) fn new_message(id: &str, at: i64, rcpts: &[&str]) -> NewMessage {
    NewMessage {
        id: MessageId(id.into()),
        reverse_path: "app@sender.test".into(),
        envid: None,
        ret: None,
        received_at: Timestamp(at),
        origin: Origin { via: "smtp".into(), client_ip: "127.0.0.1".into(), helo: "t".into(), ..Default::default() },
        body: b"Subject: t\r\n\r\nx\r\n".to_vec(),
        header_message_id: None,
        recipients: rcpts
            .iter()
            .map(|a| NewRecipient {
                address: a.to_string(),
                orcpt: None,
                notify: None,
                transport: Transport::Remote,
                mailbox: None,
            })
            .collect(),
        reports: Vec::new(),
        notes: Vec::new(),
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
