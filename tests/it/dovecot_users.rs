//! `mailerd user add|passwd|del` keep Dovecot's passwd-file (`dovecot.passwd_file`): a real
//! private Dovecot whose passdb and userdb read that file lets a user mailerd added log in over
//! IMAP (Python's imaplib) with the password given to mailerd, takes only the new one after
//! `passwd`, and none after `del`; the file keeps mode 0640 and the group Dovecot reads it by,
//! and carries mailerd's quota as Dovecot's quota rule.
//!
//! Must not: use any address outside 127.0.0.0/8.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use mailerd::store::Store;

use crate::harness::TestDaemon;
use crate::harness::dovecot::{Login, TestDovecot, imap_login, imap_login_answer};

const FIRST: &str = "Tangerine-Orbit-Falcon-42";
const SECOND: &str = "Quiet-Meadow-Lantern-77";

/// Whether Dovecot comes to `expected` for this login within 15 s: it looks at a changed
/// passwd-file at most once a second (db-passwd-file.c checks its mtime and size per second).
/// While it changes over, a login can fail with an internal error (the passdb read the old
/// file, the userdb the new one: "Authenticated user not found from userdb" in Dovecot's log
/// after a `del`, seen in 1 of 25 runs); that answer is neither, and the login is tried again.
async fn settles(imap: std::net::SocketAddr, user: &str, password: &str, expected: bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::time::Instant::now() < end {
        match imap_login_answer(imap, user, password).await {
            Login::Accepted if expected => return true,
            Login::Refused if !expected => return true,
            Login::Failed(e) => eprintln!("while Dovecot changes over: {e}"),
            _ => {}
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    false
}

/// /etc/dovecot as an operator prepares it: the passwd-file exists with `text`, root:dovecot,
/// 0640, in a directory of its own. None (and a SKIPPED line) where there is no dovecot group;
/// in CI that fails instead.
fn dovecot_passwd(text: &str) -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    let etc = tempfile::Builder::new().prefix("mailerd-etc").tempdir().unwrap();
    std::fs::set_permissions(etc.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let passwd = etc.path().join("mailerd.passwd");
    std::fs::write(&passwd, text).unwrap();
    let prepared = std::process::Command::new("chown").args(["root:dovecot", &passwd.display().to_string()]).status();
    if !prepared.is_ok_and(|s| s.success()) {
        assert!(std::env::var_os("CI").is_none(), "the Dovecot tests need root and dovecot-imapd in CI");
        eprintln!("SKIPPED: no dovecot group here (apt-get install dovecot-imapd)");
        return None;
    }
    std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o640)).unwrap();
    Some((etc, passwd))
}

#[tokio::test]
async fn mailerd_user_keeps_dovecots_passwd_file() {
    let Some((_etc, passwd)) = dovecot_passwd("# users of mailerd\n") else { return };
    let gid = std::fs::metadata(&passwd).unwrap().gid();

    let d = TestDaemon::with(&format!("[dovecot]\npasswd_file = \"{}\"", passwd.display())).await;
    let mail_root = d.dir.path().join("mail");
    std::fs::create_dir_all(&mail_root).unwrap();
    let Some(dovecot) = TestDovecot::start_with(&[], Some(&mail_root), Some(&passwd)).await else { return };
    dovecot.hand_over(&mail_root);
    assert!(!imap_login(dovecot.imap, "carol@local.test", FIRST).await, "nobody yet");

    let run = d.cli(&["user", "add", "Carol@local.test", "--quota", "50000"], &format!("{FIRST}\n")).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // A login outside the local domains has no mailbox, so no line.
    let run = d.cli(&["user", "add", "app@elsewhere.test"], &format!("{SECOND}\n")).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let text = std::fs::read_to_string(&passwd).unwrap();
    let hash = d.store().mailbox("carol@local.test").await.unwrap().and_then(|m| m.password_hash).unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert_eq!(
        text,
        format!("# users of mailerd\ncarol@local.test:{{ARGON2ID}}{hash}::::::userdb_quota_rule=*:storage=50000B\n")
    );
    let meta = std::fs::metadata(&passwd).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o640, gid), "mode and group kept");

    // One password for SMTP and IMAP: the one given to mailerd.
    assert!(settles(dovecot.imap, "carol@local.test", FIRST, true).await, "{}", dovecot.log());
    assert!(!imap_login(dovecot.imap, "carol@local.test", SECOND).await);

    let run = d.cli(&["user", "passwd", "carol@local.test"], &format!("{SECOND}\n")).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(settles(dovecot.imap, "carol@local.test", FIRST, false).await, "the old password is gone");
    assert!(imap_login(dovecot.imap, "carol@local.test", SECOND).await, "{}", dovecot.log());

    let run = d.cli(&["user", "del", "carol@local.test"], "").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(settles(dovecot.imap, "carol@local.test", SECOND, false).await, "deleted");
    assert_eq!(std::fs::read_to_string(&passwd).unwrap(), "# users of mailerd\n");
    assert!(d.store().mailbox("carol@local.test").await.unwrap().is_none());
    let meta = std::fs::metadata(&passwd).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o640, gid));
    let run = d.cli(&["user", "del", "carol@local.test"], "").await;
    assert_eq!(run.code, Some(2), "deleting twice is an error: {}", run.stdout);
}

/// Dovecot looks only at the passwd-file's size and its mtime's second: a password changed
/// within the second of the last write keeps the size, and Dovecot kept the old one until the
/// next change (seen in CI). The new file's mtime moves to the next second then.
#[tokio::test]
async fn a_password_changed_within_the_second_reaches_dovecot() {
    use mailerd::local::passwd_file::{Entry, update};
    let Some((etc, passwd)) = dovecot_passwd("") else { return };
    let cost = mailerd::config::Argon2Cost { memory_kib: 19456, iterations: 2, parallelism: 1 };
    let set = |password: &str| {
        let hash = mailerd::inbound::password::hash(cost, password).unwrap();
        let entry = Entry { user: "carol@local.test".into(), hash, quota: 1000 };
        update(&passwd, &entry.user, Some(&entry)).unwrap();
    };
    let mail_root = etc.path().join("mail");
    std::fs::create_dir_all(&mail_root).unwrap();
    let Some(dovecot) = TestDovecot::start_with(&[], Some(&mail_root), Some(&passwd)).await else { return };
    dovecot.hand_over(&mail_root);
    // At the start of a second: write, let Dovecot read it, write again within the second.
    while std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_millis() > 50 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    set(FIRST);
    assert!(imap_login(dovecot.imap, "carol@local.test", FIRST).await, "{}", dovecot.log());
    set(SECOND);
    assert!(settles(dovecot.imap, "carol@local.test", SECOND, true).await, "{}", dovecot.log());
}
