//! Starts mailerd in this process with a temporary data_dir and ephemeral loopback ports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mailerd::config::Config;
use mailerd::daemon::{self, Handle};
use mailerd::inbound::auth::hash_password;
use mailerd::store::Store;
use mailerd::store::sqlite::SqliteStore;

pub struct TestDaemon {
    pub smtp: SocketAddr,
    pub submission: SocketAddr,
    /// The HTTP API, when the test's `[listen]` gives `http`.
    pub http: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    /// The configuration the daemon runs on (what `cli` hands the command line).
    toml: String,
    handle: Option<Handle>,
}

/// What a run of the `mailerd` binary did.
pub struct CliRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// The base configuration of every test; `extra` is TOML appended to it (later keys win by
/// section: pass whole sections that the base does not have, or use `with_sections`).
pub fn base_toml(dir: &Path, sections: &str) -> String {
    let mut local = "[local]\n".to_string();
    let mut limits = "[limits]\n".to_string();
    // No test may ask a real resolver: by default DNS goes to a closed loopback port.
    let mut dns = String::new();
    let mut listen = String::new();
    let mut bounce = String::new();
    let mut rest = String::new();
    // Merge [local], [limits], [dns], [listen] and [bounce] given by the test into the base ones.
    let mut current = &mut rest;
    for line in sections.lines() {
        match line.trim() {
            "[local]" => current = &mut local,
            "[limits]" => current = &mut limits,
            "[dns]" => current = &mut dns,
            "[listen]" => current = &mut listen,
            "[bounce]" => current = &mut bounce,
            l if l.starts_with('[') => {
                current = &mut rest;
                current.push_str(line);
                current.push('\n');
            }
            _ => {
                current.push_str(line);
                current.push('\n');
            }
        }
    }
    if !local.contains("domains") {
        local.push_str("domains = [\"local.test\", \"bücher.test\"]\n");
    }
    for (key, default) in [("smtp", "127.0.0.1:0"), ("submission", "127.0.0.1:0"), ("http", "")] {
        if !listen.lines().any(|l| l.trim_start().starts_with(key)) {
            listen.push_str(&format!("{key} = \"{default}\"\n"));
        }
    }
    if dns.is_empty() {
        dns = "nameservers = [\"127.0.0.1:9\"]\n".into();
        // Nothing answers there: SPF/DKIM/DMARC of bounces would only wait for the timeout.
        if !bounce.contains("check_authentication") {
            bounce.push_str("check_authentication = false\n");
        }
    }
    format!(
        "hostname = \"mx.local.test\"\ndata_dir = \"{}\"\n[listen]\n{listen}{local}{limits}[dns]\n{dns}[bounce]\n{bounce}{rest}",
        dir.display()
    )
}

impl TestDaemon {
    pub async fn start() -> TestDaemon {
        Self::with("").await
    }

    pub async fn with(sections: &str) -> TestDaemon {
        Self::with_clock(sections, mailerd::time::Clock::system()).await
    }

    /// The sending side of the API tests: the HTTP API on, mail from `sender.test` (a local
    /// domain), and `dest.test` routed to `dest`; `extra` is appended (more `[routes]` lines
    /// first, then other sections).
    pub async fn api_to(dest: &TestDaemon, extra: &str) -> TestDaemon {
        Self::with(&format!(
            "[listen]\nhttp = \"127.0.0.1:0\"\n[local]\ndomains = [\"sender.test\"]\n[routes]\n\"dest.test\" = \"{}\"\n{extra}",
            dest.smtp
        ))
        .await
    }

    /// A daemon whose daily tasks and compromised-account detector read `clock` (a test moves
    /// it: hours pass, midnight comes).
    pub async fn with_clock(sections: &str, clock: mailerd::time::Clock) -> TestDaemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let toml = base_toml(dir.path(), sections);
        let config = Config::from_toml(&toml).expect("test config");
        let handle = daemon::start_with_clock(config, clock).await.expect("daemon starts");
        TestDaemon {
            smtp: handle.smtp.expect("smtp listener"),
            submission: handle.submission.expect("submission listener"),
            http: handle.http,
            dir,
            toml,
            handle: Some(handle),
        }
    }

    /// Runs the `mailerd` binary with the daemon's configuration (beside the running daemon,
    /// as an operator would), `stdin` on its standard input.
    pub async fn cli(&self, args: &[&str], stdin: &str) -> CliRun {
        use std::io::Write;
        let config = self.dir.path().join("cli.toml");
        std::fs::write(&config, &self.toml).expect("write config");
        let mut all = vec!["--config".to_string(), config.display().to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        let stdin = stdin.to_string();
        tokio::task::spawn_blocking(move || {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mailerd"))
                .args(&all)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("mailerd runs");
            child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
            let out = child.wait_with_output().expect("mailerd ends");
            CliRun {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
        .await
        .expect("cli task")
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("tls/cert.pem")
    }

    /// Opens a second connection to the daemon's database, as the CLI does.
    pub fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.dir.path().join("mailerd.db")).expect("open store")
    }

    pub async fn add_user(&self, address: &str, password: &str, quota: Option<u64>) {
        let hash = hash_password(password).expect("hash");
        self.store().upsert_mailbox(address, Some(hash), quota).await.expect("add user");
    }

    /// Files delivered into a mailbox's Maildir new/.
    pub fn maildir_files(&self, domain: &str, local: &str) -> Vec<PathBuf> {
        let dir = self.dir.path().join("mail").join(domain).join(local).join("new");
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
        files.sort();
        files
    }

    /// Waits until `n` files are in the Maildir (delivery is asynchronous).
    pub async fn wait_maildir(&self, domain: &str, local: &str, n: usize) -> Vec<PathBuf> {
        for _ in 0..200 {
            let files = self.maildir_files(domain, local);
            if files.len() >= n {
                return files;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("Maildir {local}@{domain} did not get {n} message(s)");
    }

    pub fn stopper(&self) -> tokio::sync::watch::Sender<bool> {
        self.handle.as_ref().expect("running").stopper()
    }

    pub async fn shutdown(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await.expect("clean shutdown");
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.stopper().send(true);
        }
    }
}
