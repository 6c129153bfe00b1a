//! A recording SMTP sink on 127.0.0.1: accepts every transaction (PIPELINING, 8BITMIME) and
//! keeps, per message whose DATA completed with our 250, its envelope and Subject, so a test
//! can count deliveries and duplicates. A message counts as received once its final dot is
//! read, before the 250 goes out: a sender killed right then is the duplicate window.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Received {
    /// The client's EHLO name (which node delivered it).
    pub helo: String,
    /// When its final dot was read.
    pub at: Instant,
    pub from: String,
    pub rcpts: Vec<String>,
    pub subject: String,
}

pub struct Sink {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Transactions in progress now, and the most ever at once: a connection counts from its
    /// MAIL until the message is read (before the 250 goes out), RSET, QUIT or its end.
    pub transactions: Arc<Transactions>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
pub struct Transactions {
    now: AtomicUsize,
    pub max: AtomicUsize,
}

/// One connection's part in the count: in a transaction or not.
struct Counted(Arc<Transactions>, bool);

impl Counted {
    fn begin(&mut self) {
        if !std::mem::replace(&mut self.1, true) {
            let now = self.0.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.0.max.fetch_max(now, Ordering::SeqCst);
        }
    }

    fn done(&mut self) {
        if std::mem::replace(&mut self.1, false) {
            self.0.now.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.done();
    }
}

impl Sink {
    pub async fn start() -> Sink {
        Sink::start_slow(Duration::ZERO).await
    }

    /// A sink that waits `hold` after reading a message before it answers 250: a wider window
    /// in which the sender has delivered but does not know it yet.
    pub async fn start_slow(hold: Duration) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        Sink::serve(listener, hold)
    }

    /// A sink on a given loopback address and port (a peer that offers no STARTTLS).
    pub async fn start_at(addr: SocketAddr) -> Sink {
        let listener = TcpListener::bind(addr).await.expect("bind sink");
        Sink::serve(listener, Duration::ZERO)
    }

    fn serve(listener: TcpListener, hold: Duration) -> Sink {
        let addr = listener.local_addr().expect("sink addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let transactions = Arc::new(Transactions::default());
        let (log, counter) = (received.clone(), transactions.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counted = Counted(counter.clone(), false);
                tokio::spawn(session(stream, log.clone(), hold, counted));
            }
        });
        Sink { addr, received, transactions, task }
    }

    pub fn subjects(&self) -> Vec<String> {
        self.received.lock().unwrap().iter().map(|r| r.subject.clone()).collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const EHLO: &[u8] = b"250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 50000000\r\n";

async fn session(
    stream: TcpStream,
    log: Arc<Mutex<Vec<Received>>>,
    hold: Duration,
    mut counted: Counted,
) -> Option<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP\r\n").await.ok()?;
    let (mut helo, mut from, mut rcpts) = (String::new(), String::new(), Vec::new());
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await.ok()? == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let verb = text.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => {
                helo = text.get(5..).unwrap_or("").trim().to_string();
                if verb == "EHLO" { EHLO } else { b"250 sink.test\r\n" }
            }
            "MAIL" => {
                counted.begin();
                from =
                    text.get(10..).unwrap_or("").trim_start_matches([' ', '<']).split('>').next().unwrap_or("").into();
                rcpts.clear();
                b"250 2.1.0 ok\r\n"
            }
            "RCPT" => {
                rcpts.push(text.get(8..).unwrap_or("").split('>').next().unwrap_or("").trim_start_matches('<').into());
                b"250 2.1.5 ok\r\n"
            }
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await.ok()?;
                let mut subject = String::new();
                loop {
                    line.clear();
                    if lines.read_until(b'\n', &mut line).await.ok()? == 0 {
                        return None; // cut off mid-message: not received
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    if subject.is_empty()
                        && let Some(s) = line.strip_prefix(b"Subject: ")
                    {
                        subject = String::from_utf8_lossy(s).trim_end().to_string();
                    }
                }
                let at = Instant::now();
                log.lock().unwrap().push(Received {
                    helo: helo.clone(),
                    at,
                    from: from.clone(),
                    rcpts: rcpts.clone(),
                    subject,
                });
                counted.done();
                if !hold.is_zero() {
                    tokio::time::sleep(hold).await;
                }
                b"250 2.0.0 queued\r\n"
            }
            "RSET" => {
                counted.done();
                b"250 2.0.0 ok\r\n"
            }
            "NOOP" => b"250 2.0.0 ok\r\n",
            "QUIT" => {
                counted.done();
                write.write_all(b"221 2.0.0 bye\r\n").await.ok()?;
                return Some(());
            }
            _ => b"502 5.5.2 not implemented\r\n",
        };
        write.write_all(reply).await.ok()?;
    }
}
