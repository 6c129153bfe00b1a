//! Password hygiene end to end: `mailerd user add` and `mailerd user passwd` refuse weak,
//! common and login-containing passwords with the reason (exit 1) and keep the old password;
//! an accepted one works at SMTP AUTH at once; a hash made with a lower argon2 cost than
//! `[login]` asks for is re-hashed at the next right login (its age kept); a password older
//! than `login.password_max_age` shows a warning on the dashboard.

use std::net::SocketAddr;

use mailerd::store::Store as _;

use crate::harness::http::{form_call, pair_of};
use crate::harness::smtp::plain;
use crate::harness::{Client, TestDaemon};

const STRONG: &str = "violet tractor pebble sunrise";
const STRONGER: &str = "quiet lantern orbit marmalade";

/// AUTH PLAIN over STARTTLS on the submission port; the reply's code.
async fn auth(d: &TestDaemon, user: &str, pass: &str) -> u16 {
    let mut c = Client::connect(d.submission).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.starttls(&d.cert_path()).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.cmd(&format!("AUTH PLAIN {}", plain(user, pass))).await.code
}

#[tokio::test]
async fn weak_common_and_login_containing_passwords_are_refused_with_the_reason() {
    let d = TestDaemon::start().await;
    let user = "bob.smith@local.test";
    for (typed, reason) in [
        ("s3cr\n", "password refused: too short: use at least 12 characters"),
        ("password1234\n", "password refused: too easy to guess (strength"),
        ("qwertyuiop123\n", "password refused: too easy to guess (strength"),
        ("Bob.Smith-violet-tractor\n", "password refused: contains the login name"),
    ] {
        let r = d.cli(&["user", "add", user], typed).await;
        assert_eq!(r.code, Some(1), "{typed}: {}", r.stderr);
        assert!(r.stderr.contains(reason), "{typed}: {}", r.stderr);
        assert!(!r.stderr.contains(typed.trim()), "the password is not echoed: {}", r.stderr);
    }
    assert!(d.store().mailbox(user).await.unwrap().is_none(), "nothing stored");
    let r = d.cli(&["user", "add", user], &format!("{STRONG}\n")).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(auth(&d, user, STRONG).await, 235);

    // passwd: the same policy; a refused password leaves the old one in force.
    let r = d.cli(&["user", "passwd", user], "iloveyou1234\n").await;
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("too easy to guess"), "{}", r.stderr);
    assert_eq!(auth(&d, user, STRONG).await, 235);
    let r = d.cli(&["user", "passwd", user], &format!("{STRONGER}\n")).await;
    assert_eq!((r.code, r.stdout.trim()), (Some(0), "bob.smith@local.test: password changed"), "{}", r.stderr);
    assert_eq!(auth(&d, user, STRONG).await, 535, "the old password is gone");
    assert_eq!(auth(&d, user, STRONGER).await, 235);
    let r = d.cli(&["user", "passwd", "nobody@local.test"], &format!("{STRONG}\n")).await;
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("nobody@local.test has no login"), "{}", r.stderr);
}

#[tokio::test]
async fn a_raised_argon2_cost_rehashes_at_the_next_login() {
    let d = TestDaemon::with("[login]\nargon2_memory = 32768\nargon2_iterations = 3\n").await;
    let user = "carol@local.test";
    // Made with the crate's defaults (m=19456, t=2), as before the configuration was raised.
    d.add_user(user, STRONG, None).await;
    let before = d.store().mailbox(user).await.unwrap().unwrap();
    assert!(before.password_hash.as_deref().unwrap().contains("$m=19456,t=2,p=1$"));
    assert_eq!(auth(&d, user, "wrong password here").await, 535);
    let unchanged = d.store().mailbox(user).await.unwrap().unwrap();
    assert_eq!(unchanged.password_hash, before.password_hash, "a wrong password changes nothing");
    assert_eq!(auth(&d, user, STRONG).await, 235);
    let after = d.store().mailbox(user).await.unwrap().unwrap();
    let hash = after.password_hash.unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=32768,t=3,p=1$"), "{hash}");
    assert_eq!(after.password_changed_at, before.password_changed_at, "a re-hash is no password change");
    assert_eq!(auth(&d, user, STRONG).await, 235, "the re-hashed password works");
    assert_eq!(d.store().mailbox(user).await.unwrap().unwrap().password_hash.unwrap(), hash, "re-hashed once");
}

async fn login(http: SocketAddr, user: &str, password: &str) -> String {
    let form = form_call(http, None, "GET", "/dashboard/login", None, None).await;
    let token = pair_of(form.header("set-cookie"));
    let csrf = form.csrf();
    let fields = [("user", user), ("password", password), ("csrf", csrf.as_str())];
    let r = form_call(http, None, "POST", "/dashboard/login", Some(&token), Some(&fields)).await;
    assert_eq!(r.status, 303, "{}", r.text);
    pair_of(r.header("set-cookie"))
}

#[tokio::test]
async fn an_old_password_is_flagged_on_the_dashboard() {
    let admin = "ops@local.test";
    let d = TestDaemon::with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[dashboard]\nadmins = [\"{admin}\", \"new@local.test\"]\n\
         [login]\npassword_max_age = 86400\n"
    ))
    .await;
    let http = d.http.unwrap();
    d.add_user(admin, STRONG, None).await;
    d.add_user("new@local.test", STRONG, None).await;
    // Set two days ago.
    let db = rusqlite::Connection::open(d.dir.path().join("mailerd.db")).unwrap();
    let two_days_ago = mailerd::time::Timestamp::now().millis() - 2 * 86_400_000;
    db.execute(
        "UPDATE mailboxes SET password_changed_at = ?1 WHERE address = ?2",
        rusqlite::params![two_days_ago, admin],
    )
    .unwrap();
    let session = login(http, admin, STRONG).await;
    let page = form_call(http, None, "GET", "/dashboard/", Some(&session), None).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("id=\"password-due\""), "{}", page.text);
    let session = login(http, "new@local.test", STRONG).await;
    let page = form_call(http, None, "GET", "/dashboard/", Some(&session), None).await;
    assert!(page.text.contains("id=\"cards\"") && !page.text.contains("password-due"));
}
