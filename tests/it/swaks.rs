//! The daemon driven by swaks, the SMTP test client operators use (skipped when absent).

use std::process::Command;

use crate::harness::TestDaemon;

fn swaks() -> Option<&'static str> {
    let ok = Command::new("swaks").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if ok {
        Some("swaks")
    } else {
        assert!(std::env::var_os("CI").is_none(), "swaks is required in CI (.ci/run installs it)");
        eprintln!("SKIPPED: swaks is not installed (apt-get install swaks; .ci/run installs it)");
        None
    }
}

async fn run(args: Vec<String>) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("swaks").args(&args).output().expect("swaks runs");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn swaks_to_postmaster_ends_in_a_maildir_file() {
    let Some(_) = swaks() else { return };
    let d = TestDaemon::start().await;
    let server = d.smtp.to_string();
    let (ok, out) = run(vec![
        "--server".into(),
        server.clone(),
        "--to".into(),
        "postmaster@local.test".into(),
        "--from".into(),
        "ops@sender.test".into(),
    ])
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("250 2.0.0 Ok: queued as"), "{out}");
    let files = d.wait_maildir("local.test", "postmaster", 1).await;
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("X-Mailer: swaks"), "{text}");

    let (ok, out) = run(vec!["--server".into(), server.clone(), "--to".into(), "nobody@local.test".into()]).await;
    assert!(!ok);
    assert!(out.contains("550 5.1.1 <nobody@local.test>: user unknown"), "{out}");
    let (_, out) = run(vec!["--server".into(), server, "--to".into(), "x@other.example".into()]).await;
    assert!(out.contains("554 5.7.1 <x@other.example>: relay access denied"), "{out}");
}

#[tokio::test]
async fn swaks_submits_with_starttls_and_auth() {
    let Some(_) = swaks() else { return };
    let d = TestDaemon::start().await;
    d.add_user("bob@local.test", "s3cret", None).await;
    let args = |pass: &str| {
        vec![
            "--server".into(),
            d.submission.to_string(),
            "-tls".into(),
            "--auth".into(),
            "PLAIN".into(),
            "--auth-user".into(),
            "bob@local.test".into(),
            "--auth-password".into(),
            pass.to_string(),
            "--from".into(),
            "bob@local.test".into(),
            "--to".into(),
            "friend@other.example".into(),
        ]
    };
    let (ok, out) = run(args("s3cret")).await;
    assert!(ok, "{out}");
    assert!(out.contains("235 2.7.0") && out.contains("250 2.0.0 Ok: queued as"), "{out}");
    let (ok, out) = run(args("wrong")).await;
    assert!(!ok);
    assert!(out.contains("535 5.7.8"), "{out}");
}
