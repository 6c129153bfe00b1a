//! Holding up under abuse (issue 14), over loopback and bounded in time: one client cannot hold
//! every slot or starve another listener; floods of idle HTTP connections leave SMTP serving;
//! slow clients are closed at their deadline, not kept by a byte now and then; junk commands
//! and recipient overflow get the replies RFC 5321 asks for; a full disk answers 452 4.3.1;
//! a dot after a bare LF stays in the body. Each test prints the figures it measured.
//!
//! Standards: RFC 5321 §4.5.3.1.10 (too many recipients), §4.5.3.2 (timeouts), §4.5.2.
//! Must not: use addresses outside 127.0.0.0/8.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::smtp::connect_from;
use crate::harness::{Client, TestDaemon};

fn lo(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Delivers one message to the local postmaster; the time it took.
async fn deliver_from(from: IpAddr, addr: SocketAddr) -> (u16, Duration) {
    let started = Instant::now();
    let mut c = Client::connect_from(addr, from).await;
    assert_eq!(c.greeting.code, 220, "greeting: {}", c.greeting.first());
    let r = c.send_mail("normal@client.test", &["postmaster@local.test"], "Subject: hi\r\n\r\nhello\r\n").await;
    (r.code, started.elapsed())
}

#[tokio::test]
async fn one_client_cannot_hold_every_slot() {
    let d = TestDaemon::with("[limits]\nmax_connections_per_ip = 20\n").await;
    let mut held = Vec::new();
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..30 {
        let mut c = Client::connect_from(d.smtp, lo(2)).await;
        match c.greeting.code {
            220 => {
                ok += 1;
                held.push(c);
            }
            _ => {
                c.greeting.clone().expect("421 4.7.0 too many connections from 127.0.0.2");
                assert!(c.is_closed().await);
                refused += 1;
            }
        }
    }
    let (code, took) = deliver_from(lo(3), d.smtp).await;
    println!(
        "per-client limit: 127.0.0.2 got {ok} sessions and {refused} refusals; 127.0.0.3 delivered ({code}) in {took:?}"
    );
    assert_eq!((ok, refused), (20, 10));
    assert_eq!(code, 250);
    drop(held);
}

#[tokio::test]
async fn mx_clients_cannot_starve_submission() {
    let d = TestDaemon::with("[limits]\nmax_connections = 5\nmax_connections_per_ip = 100\n").await;
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..10 {
        let c = Client::connect_from(d.smtp, lo(2)).await;
        if c.greeting.code == 220 {
            held.push(c);
        } else {
            c.greeting.expect("421 4.3.2");
            refused += 1;
        }
    }
    let sub = Client::connect_from(d.submission, lo(2)).await;
    println!("MX pool of 5: {} held, {refused} refused; submission greeting {}", held.len(), sub.greeting.first());
    assert_eq!((held.len(), refused), (5, 5));
    sub.greeting.expect("220");
}

#[tokio::test]
async fn slowloris_is_closed_at_its_deadline() {
    // Per-read timeout of 30 s: only the deadlines can close these clients in time.
    let d = TestDaemon::with("[limits]\ncommand_timeout = 4\ndata_timeout = 30\nmin_data_rate = 1024\n").await;
    let smtp = d.smtp;
    // One byte every 5 s inside a command line.
    let command = tokio::spawn(async move {
        let mut c = Client::connect(smtp).await;
        let started = Instant::now();
        for b in b"EHLO slow.client.test\r\n" {
            c.send_raw(&[*b]).await;
            if let Ok(Some(r)) = tokio::time::timeout(Duration::from_secs(5), c.try_read_reply()).await {
                return (r.first(), started.elapsed());
            }
        }
        ("no reply".to_string(), started.elapsed())
    });
    // One byte every 5 s inside DATA.
    let data = tokio::spawn(async move {
        let mut c = Client::connect(smtp).await;
        c.cmd("EHLO slow.client.test").await.expect("250");
        c.cmd("MAIL FROM:<slow@client.test>").await.expect("250");
        c.cmd("RCPT TO:<postmaster@local.test>").await.expect("250");
        c.cmd("DATA").await.expect("354");
        let started = Instant::now();
        for b in b"Subject: slow\r\n\r\nbody\r\n.\r\n" {
            c.send_raw(&[*b]).await;
            if let Ok(Some(r)) = tokio::time::timeout(Duration::from_secs(5), c.try_read_reply()).await {
                return (r.first(), started.elapsed());
            }
        }
        ("no reply".to_string(), started.elapsed())
    });
    // A client that is slow but honest (4 KB/s for 5 s) is not cut off.
    let honest = tokio::spawn(async move {
        let mut c = Client::connect(smtp).await;
        c.cmd("EHLO honest.client.test").await.expect("250");
        c.cmd("MAIL FROM:<honest@client.test>").await.expect("250");
        c.cmd("RCPT TO:<postmaster@local.test>").await.expect("250");
        c.cmd("DATA").await.expect("354");
        c.send_raw(b"Subject: honest\r\n\r\n").await;
        for _ in 0..20 {
            c.send_raw(&[b'x'; 1022]).await;
            c.send_raw(b"\r\n").await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        c.send_raw(b".\r\n").await;
        c.read_reply().await.first()
    });
    let (command, data, honest) = (command.await, data.await, honest.await);
    let (Ok((creply, ctook)), Ok((dreply, dtook)), Ok(hreply)) = (command, data, honest) else {
        panic!("a client task failed");
    };
    println!(
        "slowloris in a command: `{creply}` after {ctook:?}; in DATA: `{dreply}` after {dtook:?}; honest 4 KB/s: `{hreply}`"
    );
    assert!(creply.starts_with("421 4.4.2"), "{creply}");
    assert!(dreply.starts_with("421 4.4.2"), "{dreply}");
    // Deadline 4 s (DATA: 4 s + a few bytes at 1 KB/s), checked at 5 s steps of the client.
    assert!(ctook < Duration::from_secs(10) && dtook < Duration::from_secs(10), "{ctook:?} {dtook:?}");
    assert!(hreply.starts_with("250"), "{hreply}");
}

#[tokio::test]
async fn junk_commands_end_the_session_and_recipient_overflow_does_not() {
    let d = TestDaemon::start().await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO junk.test").await.expect("250");
    c.send_raw("NOOP\r\n".repeat(500).as_bytes()).await;
    let mut ok = 0;
    let last = loop {
        match c.try_read_reply().await {
            Some(r) if r.code == 250 => ok += 1,
            Some(r) => break r.first(),
            None => break "EOF".to_string(),
        }
    };
    println!("500 pipelined NOOPs: {ok} × 250, then `{last}`");
    assert!(last.starts_with("421 4.7.0"), "{last}");
    assert!((100..=120).contains(&ok), "{ok}");

    // 150 pipelined RCPTs with max_recipients = 100: 100 × 250, 50 × 452 4.5.3, no 421.
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO many.test").await.expect("250");
    let mut batch = String::from("MAIL FROM:<many@client.test>\r\n");
    for _ in 0..150 {
        batch.push_str("RCPT TO:<postmaster@local.test>\r\n");
    }
    batch.push_str("DATA\r\n");
    c.send_raw(batch.as_bytes()).await;
    c.read_reply().await.expect("250");
    let (mut accepted, mut later, mut other) = (0, 0, Vec::new());
    for _ in 0..150 {
        let r = c.read_reply().await;
        match r.code {
            250 => accepted += 1,
            452 if r.first().starts_with("452 4.5.3") => later += 1,
            _ => other.push(r.first()),
        }
    }
    c.read_reply().await.expect("354");
    let r = c.cmd("Subject: many\r\n\r\nhello\r\n.").await;
    println!("150 pipelined RCPTs: {accepted} × 250, {later} × 452 4.5.3, others {other:?}; DATA: {}", r.first());
    assert_eq!((accepted, later), (100, 50));
    assert!(other.is_empty());
    r.expect("250");
}

#[tokio::test]
async fn a_dot_after_a_bare_lf_stays_in_the_body() {
    let d = TestDaemon::start().await;
    let mut c = Client::connect(d.smtp).await;
    c.cmd("EHLO lf.test").await.expect("250");
    c.cmd("MAIL FROM:<lf@client.test>").await.expect("250");
    c.cmd("RCPT TO:<postmaster@local.test>").await.expect("250");
    c.cmd("DATA").await.expect("354");
    c.send_raw(b"Subject: lf\r\n\r\nfirst\n.\r\nsecond\r\n.\r\n").await;
    c.read_reply().await.expect("250");
    let files = d.wait_maildir("local.test", "postmaster", 1).await;
    let body = std::fs::read(&files[0]).expect("read");
    assert!(body.windows(15).any(|w| w == b"first\n.\r\nsecond"), "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn http_connections_are_capped_and_idle_ones_closed() {
    let d = TestDaemon::with(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[limits]\nmax_http_connections = 3\nhttp_header_timeout = 2\n",
    )
    .await;
    let http = d.http.expect("http listener");
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(http).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = tokio::net::TcpStream::connect(http).await.expect("connect");
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), fourth.read_to_string(&mut answer)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let started = Instant::now();
    for s in &mut idle {
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
        assert!(matches!(n, Ok(Ok(_)) | Ok(Err(_))), "an idle connection must be closed");
    }
    let closed_after = started.elapsed();
    // Keep-alive: one request, then idle.
    let mut ka = tokio::net::TcpStream::connect(http).await.expect("connect");
    ka.write_all(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut buf = vec![0u8; 1 << 16];
    let n = ka.read(&mut buf).await.expect("response");
    assert!(buf.get(..n).is_some_and(|b| b.starts_with(b"HTTP/1.1 200")));
    let ka_started = Instant::now();
    let mut drained = 0usize;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ka.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => drained += n,
            Err(_) => panic!("an idle keep-alive connection must be closed"),
        }
    }
    let ka_closed_after = ka_started.elapsed();
    println!(
        "HTTP cap 3: the 4th got 503; idle connections closed after {closed_after:?}; idle keep-alive closed after {ka_closed_after:?} ({drained} bytes more)"
    );
    assert!(closed_after < Duration::from_secs(5) && ka_closed_after < Duration::from_secs(5));
}

/// A tmpfs of our own, so the disk really fills (root only; skipped elsewhere).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?.keep();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_full_disk_answers_452_4_3_1() {
    let Some(fs) = Tmpfs::mount("4m") else {
        println!("SKIP a_full_disk_answers_452_4_3_1: cannot mount a tmpfs here (needs root)");
        return;
    };
    let toml = crate::harness::daemon::base_toml(&fs.0.join("data"), "");
    let config = mailerd::config::Config::from_toml(&toml).expect("config");
    let handle = mailerd::daemon::start(config).await.expect("daemon starts");
    let smtp = handle.smtp.expect("smtp");
    let filler = fs.0.join("filler");
    {
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    }
    let body = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(200_000));
    let mut c = Client::connect(smtp).await;
    let full = c.send_mail("a@client.test", &["postmaster@local.test"], &body).await;
    std::fs::remove_file(&filler).expect("remove filler");
    let mut c = Client::connect(smtp).await;
    let after = c.send_mail("a@client.test", &["postmaster@local.test"], &body).await;
    println!("disk full: `{}`; disk freed: `{}`", full.first(), after.first());
    full.expect("452 4.3.1");
    after.expect("250");
    let _ = handle.shutdown().await;
}

/// A daemon in a child process: its descriptors are its own, like in production.
struct Child_(Child);

impl Drop for Child_ {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_flood_of_connections_leaves_smtp_serving() {
    mailerd::budget::raise_nofile();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = |_: ()| crate::crash_durability::free_port();
    let (smtp, http) = (port(()), port(()));
    let toml = format!(
        "{}\n",
        crate::harness::daemon::base_toml(
            dir.path(),
            &format!(
                "[listen]\nsmtp = \"127.0.0.1:{smtp}\"\nsubmission = \"\"\nhttp = \"127.0.0.1:{http}\"\n[limits]\nhttp_header_timeout = 5\n"
            ),
        )
    );
    let path = dir.path().join("mailerd.toml");
    std::fs::write(&path, toml).expect("config");
    let child = Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .args(["--config", path.to_str().expect("path"), "serve"])
        .env("MAILERD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mailerd");
    let pid = child.id();
    let _child = Child_(child);
    let smtp: SocketAddr = format!("127.0.0.1:{smtp}").parse().expect("addr");
    let http: SocketAddr = format!("127.0.0.1:{http}").parse().expect("addr");
    crate::crash_durability::wait_ready(smtp).await;
    crate::crash_durability::wait_ready(http).await;
    let rss_before = rss_kib(pid);

    // 127.0.0.2: 1,000 SMTP connection attempts and 10,000 HTTP connections, all held open.
    let mut smtp_held = Vec::new();
    for _ in 0..1000 {
        if let Ok(s) = connect_from(lo(2), smtp).await {
            smtp_held.push(s);
        }
    }
    let mut http_held = Vec::new();
    for _ in 0..10_000 {
        if let Ok(s) = connect_from(lo(2), http).await {
            http_held.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_flood = rss_kib(pid);
    // Meanwhile a normal client from 127.0.0.3.
    let (code, took) = deliver_from(lo(3), smtp).await;
    let open = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    drop(smtp_held);
    drop(http_held);
    tokio::time::sleep(Duration::from_secs(7)).await;
    let rss_after = rss_kib(pid);
    let open_after = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    println!(
        "flood from 127.0.0.2 (1,000 SMTP + 10,000 HTTP connections): a client from 127.0.0.3 got 250 in {took:?} (reply {code}); daemon descriptors {open} during, {open_after} after; RSS {} MiB before, {} MiB during, {} MiB after",
        rss_before / 1024,
        rss_flood / 1024,
        rss_after / 1024
    );
    assert_eq!(code, 250);
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(open < 2000, "the daemon held {open} descriptors");
    assert!(rss_after < 100 * 1024, "RSS after the flood: {} KiB", rss_after);
}

/// `queue list` says how many it shows of how many wait; by state and domain it lists recipients.
#[tokio::test]
async fn queue_list_says_how_many_it_shows() {
    let d = TestDaemon::with("[queue]\nhold = true\n[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n").await;
    let mut c = Client::connect(d.smtp).await;
    for i in 0..3 {
        let r = c.send_mail("app@client.test", &[&format!("r{i}@remote.test")], "Subject: q\r\n\r\nq\r\n").await;
        r.expect("250");
        c.cmd("RSET").await.expect("250");
    }
    let config = d.dir.path().join("cli.toml");
    std::fs::write(&config, crate::harness::daemon::base_toml(d.dir.path(), "")).expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .args(["--config", config.to_str().expect("path"), "queue", "list", "--limit", "2"])
        .output()
        .expect("run mailerd");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("-- showing the oldest 2 messages; 3 recipients wait (3 queued, 0 deferred, 0 held)"),
        "{text}"
    );
    // By state and domain: recipients, and how many match in all (the store's counts).
    let list = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mailerd"))
            .args(["--config", config.to_str().expect("path"), "queue", "list"])
            .args(args)
            .output()
            .expect("run mailerd");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = list(&["--state", "queued", "--domain", "REMOTE.test", "--limit", "2"]);
    assert!(text.contains("-- showing 2 of 3 recipient(s)") && text.contains("@remote.test"), "{text}");
    let text = list(&["--state", "deferred", "--domain", "remote.test"]);
    assert!(text.contains("-- showing 0 of 0 recipient(s)"), "{text}");
    let text = list(&["--domain", "other.test"]);
    assert!(text.contains("-- showing 0 of 0 recipient(s)"), "{text}");
    let json = list(&["--domain", "remote.test", "--json"]);
    let rows: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(rows.len(), 3, "{json}");
    assert!(
        rows.iter()
            .all(|r| r["state"] == "queued" && r["recipient"].as_str().is_some_and(|a| a.ends_with("@remote.test")))
    );
}
