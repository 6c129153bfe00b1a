//! A DNSSEC-signed DNS for tests: NSD on a loopback port, authoritative for the root zone `.`
//! (signed at start with a fresh ECDSA P-256 key by `ldns-keygen` and `ldns-signzone`, NSEC)
//! and for unsigned child zones delegated from it without DS (insecure). The root's DNSKEY is
//! written to a file, the trust anchor of the resolver under test (`dns.trust_anchor`).
//! A test may change records after signing (`tamper`): their signatures no longer verify, and a
//! validating resolver finds them bogus.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct SignedDns {
    pub addr: SocketAddr,
    /// The root zone's DNSKEY record, for `dns.trust_anchor`.
    pub anchor: PathBuf,
    /// Holds the zone files, keys and configuration while NSD runs.
    _dir: tempfile::TempDir,
    child: Child,
}

/// A zone served unsigned: its apex and its records (zone-file lines, absolute names).
pub struct Unsigned<'a> {
    pub apex: &'a str,
    pub records: Vec<String>,
}

fn installed(program: &str) -> bool {
    Command::new(program).arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

impl SignedDns {
    /// Starts NSD with the signed root zone of `records` (zone-file lines, absolute names; the
    /// SOA and NS are added), the `unsigned` zones delegated from it, and each `(from, to)` of
    /// `tamper` replaced in the signed root zone (case-insensitively) after signing.
    /// Returns None (and says so) when NSD or ldnsutils is missing; in CI that is a failure.
    pub async fn start(
        records: &[String],
        unsigned: &[Unsigned<'_>],
        tamper: &[(String, String)],
    ) -> Option<SignedDns> {
        if !installed("/usr/sbin/nsd") || !installed("ldns-signzone") || !installed("ldns-keygen") {
            assert!(std::env::var_os("CI").is_none(), "NSD and ldnsutils are required in CI (.ci/run installs them)");
            eprintln!("SKIPPED: NSD or ldnsutils is not installed (apt-get install nsd ldnsutils)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let mut root = vec![
            "$TTL 300".to_string(),
            ". IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300".into(),
            ". IN NS ns.test.".into(),
            "ns.test. IN A 127.0.0.1".into(),
        ];
        for z in unsigned {
            root.push(format!("{}. IN NS ns.{}.", z.apex, z.apex));
            root.push(format!("ns.{}. IN A 127.0.0.1", z.apex));
        }
        root.extend(records.iter().cloned());
        std::fs::write(d.join("root.zone"), root.join("\n") + "\n").unwrap();
        let run = |cmd: &mut Command| {
            let out = cmd.current_dir(d).output().expect("run");
            assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let key = run(Command::new("ldns-keygen").args(["-a", "ECDSAP256SHA256", "."]));
        run(Command::new("ldns-signzone").args(["-f", "root.zone.signed", "root.zone", &key]));
        let mut signed = std::fs::read_to_string(d.join("root.zone.signed")).unwrap();
        for (from, to) in tamper {
            let re = regex::Regex::new(&format!("(?i){}", regex::escape(from))).unwrap();
            assert!(re.is_match(&signed), "`{from}` is not in the signed zone:\n{signed}");
            signed = re.replace_all(&signed, regex::NoExpand(to)).into_owned();
        }
        std::fs::write(d.join("root.zone.signed"), signed).unwrap();
        let anchor = d.join("anchor.key");
        std::fs::copy(d.join(format!("{key}.key")), &anchor).unwrap();
        let mut zones = "zone:\n  name: \".\"\n  zonefile: \"root.zone.signed\"\n".to_string();
        for z in unsigned {
            let mut lines = vec![
                "$TTL 300".to_string(),
                format!("{}. IN SOA ns.{}. hostmaster.test. 1 3600 600 86400 300", z.apex, z.apex),
                format!("{}. IN NS ns.{}.", z.apex, z.apex),
                format!("ns.{}. IN A 127.0.0.1", z.apex),
            ];
            lines.extend(z.records.iter().cloned());
            std::fs::write(d.join(format!("{}.zone", z.apex)), lines.join("\n") + "\n").unwrap();
            zones.push_str(&format!("zone:\n  name: \"{}\"\n  zonefile: \"{}.zone\"\n", z.apex, z.apex));
        }
        for _ in 0..20 {
            let port = std::net::UdpSocket::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            let conf = format!(
                "server:\n  ip-address: 127.0.0.1@{port}\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"{p}\"\n  \
                 database: \"\"\n  pidfile: \"{p}/nsd.pid\"\n  xfrdfile: \"{p}/xfrd.state\"\n  zonelistfile: \"{p}/zone.list\"\n  \
                 xfrdir: \"{p}\"\n  logfile: \"{p}/nsd.log\"\n  server-count: 1\n  verbosity: 1\n\
                 remote-control:\n  control-enable: no\n{zones}",
                p = d.display()
            );
            std::fs::write(d.join("nsd.conf"), conf).unwrap();
            let mut child = Command::new("/usr/sbin/nsd")
                .args(["-d", "-c"])
                .arg(d.join("nsd.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nsd");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                let log = std::fs::read_to_string(d.join("nsd.log")).unwrap_or_default();
                if log.contains("nsd started") && std::net::TcpStream::connect(addr).is_ok() {
                    return Some(SignedDns { addr, anchor, _dir: dir, child });
                }
            }
            stop(&mut child);
        }
        panic!("nsd would not start: {}", std::fs::read_to_string(d.join("nsd.log")).unwrap_or_default());
    }
}

/// SIGTERM, so NSD stops its server and xfrd processes too, then reaps it.
fn stop(child: &mut Child) {
    // SAFETY: kill(2) on the id of a child this harness started and has not reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    for _ in 0..100 {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for SignedDns {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
