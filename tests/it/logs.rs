//! Log lines that tools can read: the verb first, logfmt quoting (`log.format = "text"`), one
//! JSON object per line (`"json"`), and one `queued` line with from, to and size per message.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::Client;
use crate::queue_ops::{DataDir, eventually};

/// Runs a child daemon on `d` with stderr into a file, sends one message through SMTP to
/// postmaster, waits for its delivery and stops the daemon; returns what it logged.
async fn one_message(d: &DataDir) -> String {
    let log = d.dir.path().join("daemon.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = std::fs::read_to_string(&d.config)
        .unwrap()
        .replace("smtp = \"127.0.0.1:0\"", &format!("smtp = \"127.0.0.1:{port}\""));
    std::fs::write(&d.config, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .arg("--config")
        .arg(&d.config)
        .arg("serve")
        .env("MAILERD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    crate::crash_durability::wait_ready(addr).await;
    let mut c = Client::connect(addr).await;
    c.send_mail("app@local.test", &["postmaster@local.test"], "Subject: logged\r\n\r\nhi\r\n").await.expect("250");
    eventually("the delivery", async || d.maildir("local.test", "postmaster") == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    std::fs::read_to_string(&log).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_lines_are_logfmt_after_the_verb() {
    let d = DataDir::new();
    let text = one_message(&d).await;
    let verb_of = |line: &str| line.split_whitespace().nth(2).map(str::to_string);
    let queued = text.lines().find(|l| verb_of(l).as_deref() == Some("queued")).unwrap_or_else(|| panic!("{text}"));
    for pair in ["via=smtp", "from=app@local.test", "to=postmaster@local.test", "size="] {
        assert!(queued.contains(&format!(" {pair}")), "{queued}");
    }
    let delivered =
        text.lines().find(|l| verb_of(l).as_deref() == Some("delivered")).unwrap_or_else(|| panic!("{text}"));
    assert!(delivered.contains(" detail=\"delivered to maildir as "), "quoted, it holds spaces: {delivered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_are_one_object_each() {
    let d = DataDir::with("[log]\nformat = \"json\"\n");
    let text = one_message(&d).await;
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let queued = lines.iter().find(|l| l["msg"] == "queued").unwrap_or_else(|| panic!("{text}"));
    assert_eq!((queued["via"].as_str(), queued["to"].as_str()), (Some("smtp"), Some("postmaster@local.test")));
    assert!(queued["size"].as_u64().unwrap() > 0 && queued["level"] == "info" && queued["ts"].is_string());
    let delivered = lines.iter().find(|l| l["msg"] == "delivered").unwrap_or_else(|| panic!("{text}"));
    assert_eq!(delivered["queue_id"], queued["queue_id"]);
    assert_eq!(delivered["dsn"], "2.0.0");
}
