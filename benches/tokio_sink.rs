//! What a bare tokio SMTP sink reaches under the accept benchmark's load, against the protocol
//! ceiling of the same run: Postfix's smtp-source (20 sessions, 4 KiB messages, a new
//! connection per message) sending to Postfix's smtp-sink (one process, one thread, Postfix's event loop),
//! then to a sink written on tokio the way mailerd's SMTP door is (the same multi-thread runtime,
//! one task per connection, `TCP_NODELAY`, a buffered reader, one write per reply) that does
//! nothing else: no parsing beyond the verb, no checks, no store.
//!
//! So it is the bound that the runtime and the socket work alone put on any tokio MTA on this
//! machine: what is left between it and the ceiling is not mailerd's to win; what is left
//! between mailerd (`bench/accept.sh`) and it is mailerd's own work per message.
//!
//! The two sinks take turns in `MAILERD_BENCH_ROUNDS` rounds (3 by default), each round the
//! same N (`MAILERD_BENCH_N`, 20,000 by default); sessions `MAILERD_BENCH_SESSIONS` (20). The
//! tokio sink's worker threads are `MAILERD_BENCH_WORKERS` (default: one per CPU, as mailerd).
//! Prints each round's rates and ratio, the sinks' CPU per message, and the median ratio.
//! Needs smtp-source and smtp-sink (apt postfix; /usr/sbin is searched); says so and stops when
//! they are missing. Loopback only.
//!
//! Run: `cargo bench --bench tokio_sink`. With `MAILERD_SINK_SERVE=ADDR` it only serves the
//! tokio sink on ADDR until killed: `bench/accept.sh` runs it so, to put the same figure in its
//! own run beside the ceiling and mailerd.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

const SINK_ADDR: &str = "127.0.0.1:2636";
const TOKIO_ADDR: &str = "127.0.0.1:2637";
/// The longest line the tokio sink reads (RFC 5321's limits are far below it): a client that
/// sends no line end is closed, not buffered without end.
const MAX_LINE: u64 = 64 * 1024;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A Postfix test program by name, on PATH or in /usr/sbin.
fn postfix_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin")]).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// The next line into `line` (cleared first); false at the end of the stream or past
/// `MAX_LINE` without a line end.
async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R, line: &mut Vec<u8>) -> std::io::Result<bool> {
    line.clear();
    let n = reader.take(MAX_LINE).read_until(b'\n', line).await?;
    Ok(n > 0 && line.ends_with(b"\n"))
}

/// One SMTP session: a reply for each command, the data read to its end and dropped.
async fn session(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.split();
    let mut reader = BufReader::with_capacity(8192, reader);
    writer.write_all(b"220 tokio-sink ESMTP\r\n").await?;
    let mut line = Vec::with_capacity(1024);
    loop {
        if !next_line(&mut reader, &mut line).await? {
            return Ok(());
        }
        let verb = line.get(..4).map(<[u8]>::to_ascii_uppercase);
        match verb.as_deref() {
            Some(b"EHLO") => writer.write_all(b"250-tokio-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n").await?,
            Some(b"DATA") => {
                writer.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                loop {
                    if !next_line(&mut reader, &mut line).await? {
                        return Ok(());
                    }
                    if line == b".\r\n" {
                        break;
                    }
                }
                writer.write_all(b"250 2.0.0 Ok: queued\r\n").await?;
            }
            Some(b"QUIT") => {
                writer.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => writer.write_all(b"250 2.1.0 Ok\r\n").await?,
        }
    }
}

async fn serve(listener: TcpListener) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(session(stream));
    }
}

/// CPU time (user + system) of a process so far, from /proc.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<u64> = rest.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name
    // and the state (which does not parse as a number).
    let ticks = fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// smtp-source's load against `addr`: messages per second.
fn load(source: &PathBuf, addr: &str, n: usize, sessions: usize) -> f64 {
    let started = Instant::now();
    let status = Command::new(source)
        .args(["-s", &sessions.to_string(), "-l", "4096", "-m", &n.to_string()])
        .args(["-f", "s@sender.test", "-t", "r@rcpt.test", addr])
        .stdout(Stdio::null())
        .status()
        .expect("smtp-source runs");
    assert!(status.success(), "smtp-source failed against {addr}");
    n as f64 / started.elapsed().as_secs_f64()
}

fn wait_for(addr: &str) {
    let addr: SocketAddr = addr.parse().expect("address");
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {addr}");
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The tokio sink's runtime, as mailerd builds its own (`MAILERD_BENCH_WORKERS` threads, else
/// one per CPU).
fn runtime() -> tokio::runtime::Runtime {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = std::env::var("MAILERD_BENCH_WORKERS").ok().and_then(|v| v.parse().ok()) {
        runtime.worker_threads(workers);
    }
    runtime.enable_all().build().expect("runtime")
}

fn main() {
    if let Ok(addr) = std::env::var("MAILERD_SINK_SERVE") {
        let runtime = runtime();
        let listener = runtime.block_on(TcpListener::bind(&addr)).expect("bind the tokio sink");
        runtime.block_on(serve(listener));
        return;
    }
    let (Some(source), Some(sink)) = (postfix_tool("smtp-source"), postfix_tool("smtp-sink")) else {
        println!("tokio_sink: skipped, smtp-source and smtp-sink not found (apt-get install postfix)");
        return;
    };
    let n = env_or("MAILERD_BENCH_N", 20_000);
    let rounds = env_or("MAILERD_BENCH_ROUNDS", 3).max(1);
    let sessions = env_or("MAILERD_BENCH_SESSIONS", 20);
    let runtime = runtime();
    let listener = runtime.block_on(TcpListener::bind(TOKIO_ADDR)).expect("bind the tokio sink");
    runtime.spawn(serve(listener));
    let user = sink_user();
    let sink = Killed(
        Command::new(&sink)
            .args(["-u", &user, SINK_ADDR, "1000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smtp-sink starts"),
    );
    wait_for(SINK_ADDR);
    wait_for(TOKIO_ADDR);
    let me = std::process::id();
    let mut ratios = Vec::with_capacity(rounds);
    println!("tokio_sink: N={n} per run, {sessions} sessions, 4096-byte messages, new connection per message");
    for round in 1..=rounds {
        let c0 = cpu_of(sink.0.id());
        let ceiling = load(&source, SINK_ADDR, n, sessions);
        let sink_cpu = cpu_of(sink.0.id()) - c0;
        let t0 = cpu_of(me);
        let tokio = load(&source, TOKIO_ADDR, n, sessions);
        let tokio_cpu = cpu_of(me) - t0;
        let ratio = tokio / ceiling;
        ratios.push(ratio);
        println!(
            "round {round}: smtp-sink {ceiling:>6.0} msg/s ({:.3} ms CPU/msg), tokio sink {tokio:>6.0} msg/s ({:.3} ms CPU/msg) = {ratio:.2}x the ceiling",
            sink_cpu.as_secs_f64() * 1000.0 / n as f64,
            tokio_cpu.as_secs_f64() * 1000.0 / n as f64,
        );
    }
    ratios.sort_by(f64::total_cmp);
    let mid = ratios.len() / 2;
    let median = if ratios.len() % 2 == 0 { (ratios[mid - 1] + ratios[mid]) / 2.0 } else { ratios[mid] };
    println!("median round: the tokio sink at {median:.2}x the smtp-sink ceiling");
}

/// The user smtp-sink runs as (`-u`): postfix when this runs as root (it drops privileges to
/// it), else this user, as `bench/accept.sh` does.
fn sink_user() -> String {
    let id =
        |arg: &str| Command::new("id").arg(arg).output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match id("-u") {
        Ok(uid) if uid == "0" => "postfix".into(),
        _ => id("-un").unwrap_or_else(|_| "nobody".into()),
    }
}
