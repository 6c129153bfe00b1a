//! A real DNS server for tests: dnsmasq on a loopback port, authoritative for `.test`
//! (unknown names there get NXDOMAIN), with the records a test asks for.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct TestDns {
    pub addr: SocketAddr,
    child: Child,
}

impl TestDns {
    /// Starts dnsmasq with extra options (`--mx-host=…`, `--host-record=…`, `--txt-record=…`).
    /// Returns None (and says so) when dnsmasq is not installed; in CI that is a failure.
    pub async fn start(records: &[String]) -> Option<TestDns> {
        let available = Command::new("dnsmasq").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
        if !available {
            assert!(std::env::var_os("CI").is_none(), "dnsmasq is required in CI (.ci/run installs dnsmasq-base)");
            eprintln!("SKIPPED: dnsmasq is not installed (apt-get install dnsmasq-base)");
            return None;
        }
        for _ in 0..20 {
            let port = std::net::UdpSocket::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
            if let Some(child) = spawn(port, records).await {
                return Some(TestDns { addr: format!("127.0.0.1:{port}").parse().ok()?, child });
            }
        }
        panic!("dnsmasq would not start");
    }

    /// Serves other records on the same port (a zone that changed).
    pub async fn restart(&mut self, records: &[String]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for _ in 0..40 {
            if let Some(child) = spawn(self.addr.port(), records).await {
                self.child = child;
                return;
            }
        }
        panic!("dnsmasq would not restart on port {}", self.addr.port());
    }
}

/// dnsmasq on 127.0.0.1:`port` with `records`, once it runs.
async fn spawn(port: u16, records: &[String]) -> Option<Child> {
    let mut cmd = Command::new("dnsmasq");
    cmd.args([
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        "--local=/test/",
        "--log-facility=-",
        "--user=root",
        "--pid-file",
    ])
    .arg(format!("--port={port}"))
    .args(records)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().ok()?;
    tokio::time::sleep(Duration::from_millis(150)).await;
    match child.try_wait() {
        Ok(None) => Some(child),
        _ => None,
    }
}

impl TestDns {
    /// mail-auth's authenticator asking this server (DKIM verification in the tests), built
    /// the way the daemon builds its own.
    pub fn authenticator(&self) -> mail_auth::MessageAuthenticator {
        mailerd::dns::Dns::authenticator(&[self.addr], std::time::Duration::from_secs(3), 2).expect("authenticator")
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A DKIM key for sender.test made by `mailerd dkim keygen`, and its TXT record in chunks.
pub fn dkim_key(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let key = dir.join("dkim.key");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .args(["dkim", "keygen", "--domain", "sender.test", "--selector", "s1", "--out", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let line = stdout.lines().find(|l| l.starts_with("s1._domainkey.sender.test. IN TXT")).expect("record printed");
    let record = line.split_once('"').unwrap().1.trim_end_matches('"').to_string();
    let chunks: Vec<String> = record.as_bytes().chunks(200).map(|c| String::from_utf8_lossy(c).to_string()).collect();
    (key, format!("--txt-record=s1._domainkey.sender.test,{}", chunks.join(",")))
}
