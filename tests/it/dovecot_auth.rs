//! SMTP AUTH against Dovecot's auth socket (`auth.backend = "dovecot"`, as Postfix's
//! `smtpd_sasl_type = dovecot`): a real private Dovecot with a passwd-file passdb checks the
//! passwords of AUTH PLAIN and AUTH LOGIN on the submission listener; a right one is 235 and
//! the login's sender binding still applies, a wrong one is 535 5.7.8 (and mailerd's own login
//! of the same name does not count); a Dovecot whose passdb cannot be read (it answers
//! `temp_fail`) and a Dovecot that is down are 454 4.7.0, not 535.
//!
//! Must not: use any address outside 127.0.0.0/8, or deliver anything (queue.hold).

use mailerd::store::Store;

use crate::harness::dovecot::{TestDovecot, User};
use crate::harness::smtp::plain;
use crate::harness::{Client, TestDaemon};

const BOB: User<'static> =
    User { address: "bob@local.test", password: "bob's dovecot secret", quota: None, hash: None };

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A submission session after STARTTLS, from loopback address `from`.
async fn secured(d: &TestDaemon, from: [u8; 4]) -> Client {
    let mut c = Client::connect_from(d.submission, from.into()).await;
    c.cmd("EHLO client.test").await.expect("250");
    c.starttls(&d.cert_path()).await;
    c.cmd("EHLO client.test").await.expect("250");
    c
}

#[tokio::test]
async fn smtp_auth_is_checked_by_dovecots_auth_service() {
    let Some(dovecot) = TestDovecot::start(&[BOB]).await else { return };
    let socket = dovecot.auth_socket();
    let d = TestDaemon::with(&format!(
        "[auth]\nbackend = \"dovecot\"\ndovecot_socket = \"{}\"\n[queue]\nhold = true\n\
         [routes]\n\"dest.test\" = \"127.0.0.1:9\"\n[limits]\nmax_errors = 100",
        socket.display()
    ))
    .await;
    // mailerd has a login of the same name with another password: Dovecot decides, not it.
    d.add_user("bob@local.test", "mailerd's own password", None).await;

    // PLAIN with the right password: 235, and the login is bob's for sender binding.
    let mut c = secured(&d, [127, 0, 0, 1]).await;
    c.cmd(&format!("AUTH PLAIN {}", plain("Bob@Local.test", BOB.password))).await.expect("235 2.7.0");
    c.cmd("MAIL FROM:<mallory@local.test>").await.expect("553 5.7.1");
    c.cmd("MAIL FROM:<bob@local.test>").await.expect("250");
    c.cmd("RCPT TO:<friend@dest.test>").await.expect("250");
    c.cmd("DATA").await.expect("354");
    c.send_raw(b"From: bob@local.test\r\nSubject: via dovecot auth\r\n\r\nhello\r\n").await;
    c.cmd(".").await.expect("250");
    c.cmd("QUIT").await;

    // LOGIN, in two challenges.
    let mut c = secured(&d, [127, 0, 0, 1]).await;
    c.cmd("AUTH LOGIN").await.expect("334 VXNlcm5hbWU6");
    c.cmd(&b64("bob@local.test")).await.expect("334 UGFzc3dvcmQ6");
    c.cmd(&b64(BOB.password)).await.expect("235 2.7.0");
    c.cmd("QUIT").await;

    // Wrong passwords: 535 5.7.8, mailerd's own password for bob included.
    let mut c = secured(&d, [127, 0, 0, 3]).await;
    c.cmd(&format!("AUTH PLAIN {}", plain("bob@local.test", "wrong"))).await.expect("535 5.7.8");
    c.cmd(&format!("AUTH PLAIN {}", plain("bob@local.test", "mailerd's own password"))).await.expect("535 5.7.8");
    c.cmd("AUTH LOGIN").await.expect("334");
    c.cmd(&b64("nobody@local.test")).await.expect("334");
    c.cmd(&b64("whatever")).await.expect("535 5.7.8");
    c.cmd("QUIT").await;
    // Dovecot saw the request as mailerd's client: service smtp, the client's address.
    let log = dovecot.log();
    assert!(
        log.lines().any(|l| l.contains("passwd-file(bob@local.test,127.0.0.3") && l.contains("Password mismatch")),
        "{log}"
    );

    // Dovecot up, but its passdb cannot be read: Dovecot says it cannot decide (temp_fail).
    use std::os::unix::fs::PermissionsExt;
    let users = dovecot.dir.path().join("users");
    let mode = std::fs::metadata(&users).unwrap().permissions();
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o000)).unwrap();
    // A new mtime makes Dovecot open the file again, which its auth process may not.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options().append(true).open(&users).unwrap().set_modified(later).unwrap();
    let mut c = secured(&d, [127, 0, 0, 1]).await;
    c.cmd(&format!("AUTH PLAIN {}", plain("bob@local.test", BOB.password)))
        .await
        .expect("454 4.7.0 Temporary authentication failure");
    std::fs::set_permissions(&users, mode).unwrap();
    c.cmd(&format!("AUTH PLAIN {}", plain("bob@local.test", BOB.password))).await.expect("235 2.7.0");
    c.cmd("QUIT").await;

    // Dovecot down: a temporary failure, not a wrong password.
    drop(dovecot);
    assert!(!socket.exists(), "the socket is gone with Dovecot");
    let mut c = secured(&d, [127, 0, 0, 1]).await;
    c.cmd(&format!("AUTH PLAIN {}", plain("bob@local.test", BOB.password)))
        .await
        .expect("454 4.7.0 Temporary authentication failure");
    c.cmd("AUTH LOGIN").await.expect("334");
    c.cmd(&b64("bob@local.test")).await.expect("334");
    c.cmd(&b64(BOB.password)).await.expect("454 4.7.0 Temporary authentication failure");
    // Not counted as failures: the limiter lets the client keep trying.
    for _ in 0..5 {
        c.cmd(&format!("AUTH PLAIN {}", plain("bob@local.test", BOB.password)))
            .await
            .expect("454 4.7.0 Temporary authentication failure");
    }
    c.cmd("MAIL FROM:<bob@local.test>").await.expect("530 5.7.0");
}

/// Logs in `n` times as `user`, each on a new connection after STARTTLS, and returns the AUTH
/// round trips in milliseconds, sorted (every one must be 235).
async fn login_times(d: &TestDaemon, user: &str, password: &str, n: usize) -> Vec<f64> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = secured(d, [127, 0, 0, 1]).await;
        let started = std::time::Instant::now();
        c.cmd(&format!("AUTH PLAIN {}", plain(user, password))).await.expect("235 2.7.0");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        c.cmd("QUIT").await;
    }
    times.sort_by(f64::total_cmp);
    times
}

/// The cost of the hop: the same argon2id hash checked by mailerd itself and by Dovecot
/// (`{ARGON2ID}` in its passwd-file), 20 logins each; the medians are printed.
#[tokio::test]
async fn one_argon2id_hash_checked_by_mailerd_or_by_dovecot() {
    const N: usize = 20;
    let password = "carol's one password";
    let local = TestDaemon::start().await;
    local.add_user("carol@local.test", password, None).await;
    let hash = local.store().mailbox("carol@local.test").await.unwrap().and_then(|m| m.password_hash).unwrap();
    let scheme = format!("{{ARGON2ID}}{hash}");
    let carol = User { address: "carol@local.test", password, quota: None, hash: Some(&scheme) };
    let Some(dovecot) = TestDovecot::start(&[carol]).await else { return };
    let remote = TestDaemon::with(&format!(
        "[auth]\nbackend = \"dovecot\"\ndovecot_socket = \"{}\"",
        dovecot.auth_socket().display()
    ))
    .await;
    let by_mailerd = login_times(&local, "carol@local.test", password, N).await;
    let by_dovecot = login_times(&remote, "carol@local.test", password, N).await;
    eprintln!(
        "AUTH PLAIN, same argon2id hash ({}), {N} logins each: mailerd median {:.1} ms (max {:.1}), Dovecot median {:.1} ms (max {:.1})",
        hash.split('$').nth(3).unwrap_or(""),
        by_mailerd[N / 2],
        by_mailerd[N - 1],
        by_dovecot[N / 2],
        by_dovecot[N - 1]
    );
}
