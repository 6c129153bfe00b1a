//! `mailerd status [--json]` asks the running daemon over `data_dir/mailerd.sock`: listeners,
//! the queue by state and domain, the oldest deferred message, deliveries, paused accounts; and
//! says plainly (exit 2) when no daemon runs.

use std::process::Command;
use std::time::Duration;

use mailerd::control::Status;
use mailerd::store::{AccountPause, MessageId, RecipientState, Selection, Store};
use mailerd::time::Timestamp;

use crate::harness::{Client, TestDaemon};

fn status(config: &std::path::Path, json: bool) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailerd"));
    cmd.arg("--config").arg(config).arg("status");
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_running_daemon() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let d = TestDaemon::with(&format!(
        "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[retry]\nfirst = 3600\n[routes]\n\"down.test\" = \"{closed}\"\n"
    ))
    .await;
    let cli_dir = tempfile::tempdir().unwrap();
    let config = cli_dir.path().join("cli.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\n", d.dir.path().display())).unwrap();
    let mut c = Client::connect(d.smtp).await;
    c.send_mail("app@local.test", &["x@down.test"], "Subject: stuck\r\n\r\nx\r\n").await.expect("250");
    let mut c = Client::connect(d.smtp).await;
    c.send_mail("app@local.test", &["postmaster@local.test"], "Subject: here\r\n\r\nx\r\n").await.expect("250");
    // Due only in an hour, so the scheduler leaves it alone until it is held.
    let store = d.store();
    let later = Timestamp::now().millis() + 3_600_000;
    store.insert_message(crate::queue_ops::new_message("HELD1", later, &["y@held.test"])).await.unwrap();
    store.hold(&Selection::message(&MessageId("HELD1".into())), Timestamp::now()).await.unwrap();
    store
        .pause_account(AccountPause {
            account: "user:bob@local.test".into(),
            detail: "12% hard bounces".into(),
            message_id: None,
            paused_at: String::new(),
        })
        .await
        .unwrap();
    d.wait_maildir("local.test", "postmaster", 1).await;
    for _ in 0..200 {
        // Settled: the deferred attempt and the local delivery are both recorded (the Maildir
        // file exists a moment before its recipient is marked delivered).
        let summary = store.queue_summary(Timestamp::now(), 10).await.unwrap();
        let count = |st| summary.by_state.iter().find(|c| c.state == st).map_or(0, |c| c.count);
        if summary.oldest_deferred.is_some() && count(RecipientState::Queued) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let (code, out, err) = status(&config, true);
    assert_eq!(code, Some(0), "{err}");
    let s: Status = serde_json::from_str(out.trim()).expect("one JSON document");
    assert_eq!(s.pid, std::process::id(), "the daemon runs in this test process");
    assert_eq!(s.hostname, "mx.local.test");
    let smtp = s.listeners.iter().find(|l| l.name == "smtp").unwrap();
    assert_eq!(smtp.address.as_deref(), Some(d.smtp.to_string().as_str()));
    assert_eq!(s.listeners.iter().find(|l| l.name == "http").unwrap().address, None);
    let count = |st| s.queue.by_state.iter().find(|c| c.state == st).unwrap().count;
    assert_eq!(
        (count(RecipientState::Queued), count(RecipientState::Deferred), count(RecipientState::Held)),
        (0, 1, 1)
    );
    let oldest = s.queue.oldest_deferred.as_ref().unwrap();
    assert_eq!(oldest.address, "x@down.test");
    let domains: Vec<&str> = s.queue.top_domains.iter().map(|t| t.domain.as_str()).collect();
    assert!(domains.contains(&"down.test") && domains.contains(&"held.test"), "{domains:?}");
    assert!(s.queue.delivered_last_minute >= 1 && s.queue.delivered_last_5_minutes >= 1);
    assert_eq!(s.paused_accounts.len(), 1);

    let (code, out, _) = status(&config, false);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("mailerd "), "{out}");
    assert!(out.contains(&format!("smtp {}", d.smtp)) && out.contains("http off"), "{out}");
    assert!(out.contains("queue:       0 queued, 1 deferred, 1 held"), "{out}");
    assert!(out.contains("oldest deferred: ") && out.contains("x@down.test"), "{out}");
    assert!(out.contains("user:bob@local.test") && out.contains("12% hard bounces"), "{out}");

    d.shutdown().await;
    let (code, _, err) = status(&config, false);
    assert_eq!(code, Some(2));
    assert!(err.contains("no daemon is running on data_dir"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
