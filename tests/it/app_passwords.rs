//! App passwords end to end, on a running daemon: `mailerd user app-password add` prints a
//! secret once, swaks (a real SMTP client, STARTTLS and AUTH PLAIN on loopback) sends with it,
//! its use is recorded (time and client address), `revoke` stops it at once while the daemon
//! runs; `login.smtp_requires_app_password` bars the main password from SMTP but not from the
//! dashboard, where app passwords are no login.

use std::process::Command;

use mailerd::store::Store as _;

use crate::harness::TestDaemon;
use crate::harness::http::{form_call, pair_of};

const USER: &str = "bob@local.test";
const PASSWORD: &str = "violet tractor pebble sunrise";

fn swaks_present() -> bool {
    let ok = Command::new("swaks").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "swaks is required in CI (.ci/run installs it)");
        eprintln!("SKIPPED: swaks is not installed");
    }
    ok
}

/// swaks submits one message as `user`/`pass` with STARTTLS; (success, transcript).
async fn swaks(d: &TestDaemon, user: &str, pass: &str) -> (bool, String) {
    let args = vec![
        "--server".to_string(),
        d.submission.to_string(),
        "-tls".into(),
        "--auth".into(),
        "PLAIN".into(),
        "--auth-user".into(),
        user.into(),
        "--auth-password".into(),
        pass.into(),
        "--from".into(),
        user.into(),
        "--to".into(),
        "postmaster@local.test".into(),
    ];
    tokio::task::spawn_blocking(move || {
        let out = Command::new("swaks").args(&args).output().expect("swaks runs");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    })
    .await
    .unwrap()
}

/// The secret `app-password add` printed.
async fn add(d: &TestDaemon, name: &str) -> String {
    let r = d.cli(&["user", "app-password", "add", USER, name], "").await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("shown once"), "{}", r.stderr);
    let secret = r.stdout.trim().to_string();
    assert_eq!(secret.len(), 23, "{secret}");
    secret
}

#[tokio::test]
async fn an_app_password_sends_until_it_is_revoked() {
    if !swaks_present() {
        return;
    }
    let d = TestDaemon::with("[queue]\nhold = true\n").await;
    d.add_user(USER, PASSWORD, None).await;
    let phone = add(&d, "phone").await;
    let laptop = add(&d, "laptop").await;
    assert_ne!(phone, laptop);
    let again = d.cli(&["user", "app-password", "add", USER, "phone"], "").await;
    assert_eq!(again.code, Some(2), "a name is used once");
    // Only the hash is stored.
    let stored = d.store().app_passwords(USER).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|p| p.hash.len() == 64 && !p.hash.contains(&phone)));

    let (ok, out) = swaks(&d, USER, &phone).await;
    assert!(ok, "{out}");
    assert!(out.contains("235 2.7.0") && out.contains("250 2.0.0 Ok: queued as"), "{out}");
    // Typed without dashes and in capitals, it is the same secret.
    let (ok, out) = swaks(&d, USER, &phone.replace('-', "").to_uppercase()).await;
    assert!(ok, "{out}");
    // The use is recorded (off the login's path: wait for it).
    let mut used = None;
    for _ in 0..100 {
        let list = d.cli(&["user", "app-password", "list", USER, "--json"], "").await;
        assert_eq!(list.code, Some(0), "{}", list.stderr);
        let rows: Vec<serde_json::Value> = list.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(rows.iter().map(|r| r["name"].as_str().unwrap()).collect::<Vec<_>>(), ["laptop", "phone"]);
        assert!(rows[0]["last_used_at"].is_null(), "the laptop's was not used");
        if !rows[1]["last_used_ip"].is_null() {
            used = Some(rows[1].clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let used = used.expect("the phone's use is recorded");
    assert_eq!(used["last_used_ip"], "127.0.0.1");
    assert!(used["last_used_at"].as_str().unwrap().ends_with('Z'));
    let people = d.cli(&["user", "app-password", "list", USER], "").await;
    assert!(people.stdout.contains("from 127.0.0.1") && people.stdout.contains("never used"), "{}", people.stdout);
    assert!(!people.stdout.contains(&phone), "secrets are never shown again");

    // Revoked on the command line: the running daemon refuses it at the next AUTH.
    let r = d.cli(&["user", "app-password", "revoke", USER, "phone"], "").await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let (ok, out) = swaks(&d, USER, &phone).await;
    assert!(!ok && out.contains("535 5.7.8"), "{out}");
    let (ok, out) = swaks(&d, USER, &laptop).await;
    assert!(ok, "the other device still works: {out}");
    let (ok, out) = swaks(&d, USER, PASSWORD).await;
    assert!(ok, "the main password is allowed for SMTP by default: {out}");
    let r = d.cli(&["user", "app-password", "revoke", USER, "phone"], "").await;
    assert_eq!(r.code, Some(2), "revoked already");
    let r = d.cli(&["user", "app-password", "add", "nobody@local.test", "x"], "").await;
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("has no login"), "{}", r.stderr);
}

#[tokio::test]
async fn smtp_can_require_app_passwords() {
    if !swaks_present() {
        return;
    }
    let d = TestDaemon::with(&format!(
        "[queue]\nhold = true\n[login]\nsmtp_requires_app_password = true\n\
         [listen]\nhttp = \"127.0.0.1:0\"\n[dashboard]\nadmins = [\"{USER}\"]\n"
    ))
    .await;
    d.add_user(USER, PASSWORD, None).await;
    let phone = add(&d, "phone").await;
    let (ok, out) = swaks(&d, USER, PASSWORD).await;
    assert!(!ok && out.contains("535 5.7.8"), "the main password is barred from SMTP: {out}");
    let (ok, out) = swaks(&d, USER, &phone).await;
    assert!(ok && out.contains("250 2.0.0 Ok: queued as"), "{out}");
    // The dashboard takes the main password, and no app password.
    let http = d.http.unwrap();
    for (secret, status) in [(phone.as_str(), 401), (PASSWORD, 303)] {
        let form = form_call(http, None, "GET", "/dashboard/login", None, None).await;
        let token = pair_of(form.header("set-cookie"));
        let csrf = form.csrf();
        let fields = [("user", USER), ("password", secret), ("csrf", csrf.as_str())];
        let r = form_call(http, None, "POST", "/dashboard/login", Some(&token), Some(&fields)).await;
        assert_eq!(r.status, status, "{}", r.text);
    }
}
