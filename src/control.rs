//! The control socket: `data_dir/mailerd.sock`, a Unix socket where `mailerd status` asks the
//! running daemon how it is, and local tools (`sendmail`, `queue flush|release|retry`) wake
//! its scheduler so what they stored is delivered at once rather than at the next poll.
//!
//! A Unix socket rather than an HTTP endpoint: it works with `listen.http` off (the default),
//! needs no port, and whoever may use it is decided by file permissions (mode 0660: the
//! daemon's user and group), like the data dir it lives in. Protocol: the client writes one
//! request line (`status` or `wake`), the daemon answers one JSON line and closes.
//! Must not: change the queue (requests read, or wake), or wait on a client for long (every
//! exchange has a deadline).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::store::{AccountPause, QueueSummary, Store};
use crate::time::Timestamp;

/// The socket's name inside `data_dir`.
pub const SOCKET: &str = "mailerd.sock";
/// How long one exchange may take, either side.
const DEADLINE: Duration = Duration::from_secs(10);
/// How many destination domains `status` lists.
const TOP_DOMAINS: usize = 10;

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// One listener of the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// `smtp`, `submission` or `http`.
    pub name: String,
    /// `host:port`, None when the listener is off.
    pub address: Option<String>,
}

/// What `mailerd status` shows (its `--json` is this document).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub hostname: String,
    pub pid: u32,
    pub started_at: String,
    pub uptime_seconds: u64,
    pub data_dir: String,
    /// The SQLite file, or PostgreSQL's database and hosts (never a password).
    pub store: String,
    pub listeners: Vec<Listener>,
    /// `queue.hold`: messages are stored and nothing is delivered.
    pub queue_hold: bool,
    pub queue: QueueSummary,
    /// Accounts the hard-bounce breaker paused.
    pub paused_accounts: Vec<AccountPause>,
}

/// What the daemon knows about itself, for `status`.
pub struct Daemon {
    pub store: Arc<dyn Store>,
    pub wakeup: Arc<crate::accept::Wakeup>,
    pub hostname: String,
    pub data_dir: PathBuf,
    pub store_name: String,
    pub listeners: Vec<Listener>,
    pub queue_hold: bool,
    pub started: Instant,
    pub started_at: Timestamp,
}

impl Daemon {
    async fn status(&self) -> Result<Status, crate::store::StoreError> {
        let now = Timestamp::now();
        let queue = self.store.queue_summary(now, TOP_DOMAINS).await?;
        let paused_accounts = self.store.paused_accounts().await.unwrap_or_default();
        Ok(Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: self.hostname.clone(),
            pid: std::process::id(),
            started_at: self.started_at.iso8601(),
            uptime_seconds: self.started.elapsed().as_secs(),
            data_dir: self.data_dir.display().to_string(),
            store: self.store_name.clone(),
            listeners: self.listeners.clone(),
            queue_hold: self.queue_hold,
            queue,
            paused_accounts,
        })
    }

    async fn answer(&self, request: &str) -> String {
        match request.trim() {
            "status" => match self.status().await {
                Ok(s) => serde_json::to_string(&s).unwrap_or_else(|e| error_line(&e.to_string())),
                Err(e) => error_line(&format!("reading the store: {e}")),
            },
            "wake" => {
                self.wakeup.poke();
                "{\"ok\":true}".to_string()
            }
            other => error_line(&format!("unknown request {other:?} (status, wake)")),
        }
    }
}

fn error_line(text: &str) -> String {
    serde_json::json!({ "error": text }).to_string()
}

/// Binds the socket (replacing a stale one: the caller holds the data dir's lock), mode 0660.
pub fn bind(data_dir: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = socket_path(data_dir);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Answers requests until shutdown, then removes the socket.
pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let stream = tokio::select! {
            _ = async { shutdown.wait_for(|s| *s).await.is_ok() } => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(DEADLINE, exchange(stream, &daemon)).await;
        });
    }
    let _ = std::fs::remove_file(socket_path(&daemon.data_dir));
}

async fn exchange(stream: UnixStream, daemon: &Daemon) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(256)).read_line(&mut line).await?;
    let mut answer = daemon.answer(&line).await;
    answer.push('\n');
    write.write_all(answer.as_bytes()).await?;
    write.shutdown().await
}

#[derive(Debug, Error)]
pub enum ControlError {
    /// No daemon listens (no socket, or nobody behind it).
    #[error("no daemon is running on data_dir {} ({}: {error})", .data_dir.display(), .socket.display())]
    NotRunning { data_dir: PathBuf, socket: PathBuf, error: std::io::Error },
    #[error("the daemon did not answer in time")]
    Timeout,
    #[error("talking to the daemon: {0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon said: {0}")]
    Daemon(String),
    #[error("the daemon's answer does not parse: {0}")]
    Answer(String),
}

async fn request(data_dir: &Path, line: &str, deadline: Duration) -> Result<String, ControlError> {
    let socket = socket_path(data_dir);
    let talk = async {
        let mut stream = UnixStream::connect(&socket).await.map_err(|error| ControlError::NotRunning {
            data_dir: data_dir.to_path_buf(),
            socket: socket.clone(),
            error,
        })?;
        stream.write_all(format!("{line}\n").as_bytes()).await?;
        let mut answer = String::new();
        stream.take(16 * 1024 * 1024).read_to_string(&mut answer).await?;
        Ok::<_, ControlError>(answer)
    };
    let answer = tokio::time::timeout(deadline, talk).await.map_err(|_| ControlError::Timeout)??;
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(&answer)
        && let Some(e) = o.get("error").and_then(|e| e.as_str())
    {
        return Err(ControlError::Daemon(e.to_string()));
    }
    Ok(answer)
}

/// Asks the daemon running on `data_dir` for its status.
pub async fn status(data_dir: &Path) -> Result<Status, ControlError> {
    let answer = request(data_dir, "status", DEADLINE).await?;
    serde_json::from_str(&answer).map_err(|e| ControlError::Answer(e.to_string()))
}

/// Wakes the scheduler of the daemon running on `data_dir`, if one does: what was just stored
/// is claimed at once. Best effort, briefly (without a daemon, or when it is slow, the mail is
/// picked up by its one-second poll); returns whether a daemon was woken.
pub async fn wake(data_dir: &Path) -> bool {
    request(data_dir, "wake", Duration::from_millis(500)).await.is_ok()
}
