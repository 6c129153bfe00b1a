//! A real Dovecot as the mailbox server: a private instance (its own dovecot.conf, base_dir,
//! state_dir, log file and Maildirs in a temporary directory) with LMTP and IMAP listeners on
//! free loopback ports, users from a passwd-file, and the quota plugin. Needs root (Dovecot
//! runs its processes as the dovecot and dovenull users) and the dovecot-imapd and
//! dovecot-lmtpd packages; the mail belongs to the dovecot user.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct TestDovecot {
    pub lmtp: SocketAddr,
    pub imap: SocketAddr,
    pub dir: tempfile::TempDir,
    child: Child,
}

/// A user of the test instance: address (the login), password, a quota in bytes, and the
/// password's hash in Dovecot's `{SCHEME}hash` form (None: the password in PLAIN).
pub struct User<'a> {
    pub address: &'a str,
    pub password: &'a str,
    pub quota: Option<u64>,
    pub hash: Option<&'a str>,
}

const DOVECOT: &str = "/usr/sbin/dovecot";

fn free_port() -> Option<u16> {
    Some(std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port())
}

/// The passwd-file: `user:{PLAIN}password:uid:gid:gecos:home:shell:extra fields`.
fn passwd_file(users: &[User<'_>]) -> String {
    users
        .iter()
        .map(|u| {
            let quota = u.quota.map(|q| format!("userdb_quota_rule=*:storage={q}B")).unwrap_or_default();
            let password = u.hash.map_or_else(|| format!("{{PLAIN}}{}", u.password), str::to_string);
            format!("{}:{password}::::::{quota}\n", u.address)
        })
        .collect()
}

impl TestDovecot {
    /// Starts Dovecot with `users` and Maildirs of its own. None (with a SKIPPED line) when it
    /// cannot run here; in CI that is a failure.
    pub async fn start(users: &[User<'_>]) -> Option<TestDovecot> {
        Self::start_on(users, None).await
    }

    /// Starts Dovecot on the Maildirs under `mail_root` (`<domain>/<local part>`, mailerd's
    /// layout, as in contrib/dovecot/mailerd-maildir.conf), or on its own when None.
    pub async fn start_on(users: &[User<'_>], mail_root: Option<&Path>) -> Option<TestDovecot> {
        Self::start_with(users, mail_root, None).await
    }

    /// [`Self::start_on`] with the users of `passwd_file` (a file another program keeps, e.g.
    /// `mailerd user` with `dovecot.passwd_file`) instead of `users`, when given.
    pub async fn start_with(
        users: &[User<'_>],
        mail_root: Option<&Path>,
        users_from: Option<&Path>,
    ) -> Option<TestDovecot> {
        let root = unsafe { libc::geteuid() } == 0;
        let installed =
            [DOVECOT, "/usr/lib/dovecot/lmtp", "/usr/lib/dovecot/imap"].iter().all(|p| Path::new(p).exists());
        if !root || !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "the Dovecot tests need root, dovecot-imapd and dovecot-lmtpd in CI"
            );
            eprintln!("SKIPPED: the Dovecot tests need root and dovecot-imapd, dovecot-lmtpd (apt-get install)");
            return None;
        }
        let dir = tempfile::Builder::new().prefix("mailerd-dovecot").tempdir().ok()?;
        let d = dir.path();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).ok()?;
        std::fs::create_dir_all(d.join("mail")).ok()?;
        let chown = Command::new("chown").args(["dovecot:dovecot", &d.join("mail").display().to_string()]).status();
        assert!(chown.is_ok_and(|s| s.success()), "chown dovecot {}", d.display());
        let (lmtp_port, imap_port) = (free_port()?, free_port()?);
        let mail = mail_root.map_or_else(|| d.join("mail"), Path::to_path_buf);
        let users_file = users_from.map_or_else(|| d.join("users"), Path::to_path_buf);
        let conf = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
             protocols = imap lmtp\nssl = no\nlisten = 127.0.0.1\n\
             disable_plaintext_auth = no\nauth_mechanisms = plain login\nauth_verbose = yes\n\
             default_internal_user = dovecot\ndefault_login_user = dovenull\n\
             first_valid_uid = 1\nmail_uid = dovecot\nmail_gid = dovecot\n\
             mail_location = maildir:{mail}/%Ld/%Ln\nmail_plugins = quota\n\
             protocol lmtp {{\n  postmaster_address = postmaster@local.test\n}}\n\
             protocol imap {{\n  mail_plugins = $mail_plugins imap_quota\n}}\n\
             plugin {{\n  quota = maildir:User quota\n  quota_rule = *:storage=0\n}}\n\
             passdb {{\n  driver = passwd-file\n  args = username_format=%Lu {users}\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = username_format=%Lu {users}\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap_port}\n  }}\n\
               inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {lmtp_port}\n  }}\n}}\n",
            d = d.display(),
            mail = mail.display(),
            users = users_file.display()
        );
        std::fs::write(d.join("dovecot.conf"), conf).ok()?;
        std::fs::write(d.join("users"), passwd_file(users)).ok()?;
        let child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr")).ok()?)
            .spawn()
            .expect("dovecot starts");
        let lmtp = SocketAddr::from(([127, 0, 0, 1], lmtp_port));
        let imap = SocketAddr::from(([127, 0, 0, 1], imap_port));
        let mut dovecot = TestDovecot { lmtp, imap, dir, child };
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(lmtp).await.is_ok() && tokio::net::TcpStream::connect(imap).await.is_ok()
            {
                return Some(dovecot);
            }
            if let Ok(Some(status)) = dovecot.child.try_wait() {
                panic!("dovecot exited ({status}): {}", dovecot.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("dovecot did not listen on {lmtp} and {imap}: {}", dovecot.log());
    }

    /// Replaces the users (Dovecot reads a changed passwd-file on the next lookup).
    pub fn set_users(&self, users: &[User<'_>]) {
        let path = self.dir.path().join("users");
        let tmp = self.dir.path().join("users.new");
        std::fs::write(&tmp, passwd_file(users)).expect("write users");
        std::fs::rename(tmp, path).expect("replace users");
    }

    /// The auth service's client socket (`service auth { unix_listener auth-client }`, the one
    /// Postfix's `smtpd_sasl_type = dovecot` talks to).
    pub fn auth_socket(&self) -> PathBuf {
        self.dir.path().join("run/auth-client")
    }

    /// Dovecot's log and what it wrote to stderr.
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stderr"), read("dovecot.log"))
    }

    /// The Maildir of a user in Dovecot's own mail directory (`mail/<domain>/<local part>`).
    pub fn maildir(&self, domain: &str, user: &str) -> PathBuf {
        self.dir.path().join("mail").join(domain).join(user)
    }

    /// Gives the Maildirs under `mail_root`, and the way to them, to the dovecot user: what
    /// `mail_uid` does when mailerd and Dovecot run as one user (here mailerd runs as root).
    pub fn hand_over(&self, mail_root: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let mut dir = mail_root.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(std::env::temp_dir()) && *d != std::env::temp_dir()) {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            dir = d.parent();
        }
        let chown = Command::new("chown").args(["-R", "dovecot:dovecot", &mail_root.display().to_string()]).status();
        assert!(chown.is_ok_and(|s| s.success()), "chown -R dovecot {}", mail_root.display());
    }
}

impl Drop for TestDovecot {
    fn drop(&mut self) {
        // SIGTERM: the master stops its services (they exit with it) and removes its sockets.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a mailbox over IMAP with Python's imaplib, as a mail client would: LOGIN, SELECT
/// INBOX, then per message its flags and its body (BODY.PEEK[TEXT], byte for byte). With
/// `mark_seen`, the first message is then marked \Seen.
pub struct Fetched {
    pub flags: Vec<String>,
    pub text: Vec<u8>,
}

const IMAP_READER: &str = r#"
import imaplib, sys, os
host, port, user, password, out, mark = sys.argv[1:7]
m = imaplib.IMAP4(host, int(port))
m.login(user, password)
typ, data = m.select('INBOX')
n = int(data[0])
for i in range(1, n + 1):
    typ, data = m.fetch(str(i), '(BODY.PEEK[TEXT])')
    with open(os.path.join(out, '%d.text' % i), 'wb') as f:
        f.write(data[0][1])
    typ, data = m.fetch(str(i), '(FLAGS)')
    with open(os.path.join(out, '%d.flags' % i), 'w') as f:
        f.write(' '.join(x.decode() for x in imaplib.ParseFlags(data[0])))
if mark == 'seen':
    m.store('1', '+FLAGS', '\\Seen')
m.logout()
print(n)
"#;

/// How Dovecot answered an IMAP LOGIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    Accepted,
    /// `NO [AUTHENTICATIONFAILED]`.
    Refused,
    /// Anything else, as imaplib reported it: `NO [UNAVAILABLE] Internal error` when the
    /// passwd-file changed between Dovecot's passdb and userdb lookups of one login (the passdb
    /// took the password from the old file, the userdb looked the user up in the new one).
    Failed(String),
}

/// How Dovecot answers `user`'s `password` over IMAP (imaplib's LOGIN).
pub async fn imap_login_answer(imap: SocketAddr, user: &str, password: &str) -> Login {
    let args = [imap.ip().to_string(), imap.port().to_string(), user.to_string(), password.to_string()];
    let run = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", "import imaplib,sys; m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2])); m.login(sys.argv[3], sys.argv[4]); m.logout()"])
            .args(args)
            .output()
    });
    let output = run.await.expect("imap task").expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.success() {
        true => Login::Accepted,
        false if stderr.contains("AUTHENTICATIONFAILED") => Login::Refused,
        false => Login::Failed(format!("imaplib: {stderr}")),
    }
}

/// Whether Dovecot takes `user`'s `password` over IMAP; any answer but accepted or refused
/// fails the test.
pub async fn imap_login(imap: SocketAddr, user: &str, password: &str) -> bool {
    match imap_login_answer(imap, user, password).await {
        Login::Accepted => true,
        Login::Refused => false,
        Login::Failed(e) => panic!("{e}"),
    }
}

pub async fn imap_read(imap: SocketAddr, user: &str, password: &str, mark_seen: bool) -> Vec<Fetched> {
    let out = tempfile::tempdir().expect("tempdir");
    let args: Vec<String> = vec![
        imap.ip().to_string(),
        imap.port().to_string(),
        user.into(),
        password.into(),
        out.path().display().to_string(),
        if mark_seen { "seen" } else { "-" }.into(),
    ];
    let run =
        tokio::task::spawn_blocking(move || Command::new("python3").arg("-c").arg(IMAP_READER).args(args).output());
    let output = run.await.expect("imap task").expect("python3 runs");
    assert!(output.status.success(), "imaplib: {}", String::from_utf8_lossy(&output.stderr));
    let n: usize = String::from_utf8_lossy(&output.stdout).trim().parse().expect("message count");
    (1..=n)
        .map(|i| Fetched {
            flags: std::fs::read_to_string(out.path().join(format!("{i}.flags")))
                .expect("flags")
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            text: std::fs::read(out.path().join(format!("{i}.text"))).expect("text"),
        })
        .collect()
}
