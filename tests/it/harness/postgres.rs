//! A fresh PostgreSQL schema per test, on the server named by MAILERD_TEST_POSTGRES_URL, so
//! PostgreSQL tests run in parallel without seeing each other's rows.
//!
//! Without the variable the tests print a `SKIP` line (straight to stderr, past the test
//! harness's capture) and pass. The schema is dropped when the guard is dropped, also when
//! the test panicked.

use std::io::Write as _;

pub const ENV: &str = "MAILERD_TEST_POSTGRES_URL";

/// The server URL, or None after printing why the test is skipped.
pub fn url_or_skip(test: &str) -> Option<String> {
    match std::env::var(ENV) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            let _ = writeln!(std::io::stderr(), "SKIP {test} on PostgreSQL: {ENV} not set");
            None
        }
    }
}

/// A schema that exists for one test; `url` points its connections' search_path at it.
pub struct TestSchema {
    admin: String,
    pub name: String,
    pub url: String,
}

async fn admin_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(conn);
    client
}

impl TestSchema {
    pub async fn create(admin: &str, test: &str) -> TestSchema {
        let mut r = [0u8; 4];
        getrandom::fill(&mut r).expect("random");
        let tag: String = test.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(30).collect();
        let name = format!("mailerd_t_{}_{:08x}", tag.to_lowercase(), u32::from_le_bytes(r));
        admin_client(admin).await.batch_execute(&format!("CREATE SCHEMA {name}")).await.expect("create schema");
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-c%20search_path%3D{name}");
        TestSchema { admin: admin.to_string(), name, url }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a runtime of our own on another thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                let client = admin_client(&admin).await;
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).await;
            });
        })
        .join();
    }
}

/// A PostgreSQL server of the test's own (initdb in a temporary directory, on a loopback
/// port), for tests that stop and restart the database under load. Needs the server
/// binaries (Debian's postgresql package); as root they run as the `postgres` user.
pub struct OwnPostgres {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl OwnPostgres {
    /// None (after a SKIP line) when no PostgreSQL server binaries are installed.
    pub fn start(test: &str) -> Option<OwnPostgres> {
        let bin = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"]
            .iter()
            .map(std::path::PathBuf::from)
            .find(|b| b.join("pg_ctl").exists());
        let Some(bin) = bin else {
            assert!(std::env::var_os("CI").is_none(), "{test}: no PostgreSQL server binaries in CI");
            let _ =
                writeln!(std::io::stderr(), "SKIP {test}: no PostgreSQL server binaries (apt-get install postgresql)");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        if is_root() {
            let ok = std::process::Command::new("chown")
                .args(["-R", "postgres", dir.path().to_str().expect("path")])
                .status()
                .expect("chown");
            assert!(ok.success(), "chown the PostgreSQL directory to postgres");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = OwnPostgres { bin, dir, port };
        let data = pg.data();
        pg.run("initdb", &["-D", &data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        pg.start_again();
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `tool` of the server binaries, as the `postgres` user when we are root (the server
    /// refuses to run as root).
    fn command(&self, tool: &str) -> std::process::Command {
        let exe = self.bin.join(tool);
        if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            std::process::Command::new(exe)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool).args(args).output().expect(tool);
        assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_again(&self) {
        let (data, dir) = (self.data(), self.dir.path().display().to_string());
        let opts =
            format!("-p {} -c listen_addresses=127.0.0.1 -k {dir} -c fsync=on -c synchronous_commit=on", self.port);
        let log = format!("{dir}/server.log");
        self.run("pg_ctl", &["-D", &data, "-o", &opts, "-l", &log, "-w", "-t", "60", "start"]);
    }

    /// Stops the server the way a crash would: no checkpoint, connections cut.
    pub fn crash(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.command("pg_ctl").args(["-D", &self.data(), "-m", "immediate", "stop"]).output();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}
