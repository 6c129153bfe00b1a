//! A real Postfix as a destination: a private instance (its own config, queue and
//! maildirs in a temporary directory) on a loopback address, with virtual mailboxes, a
//! message_size_limit and Postfix's relay restrictions. Needs root and the postfix package.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct TestPostfix {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

const MASTER_CF: &str = "\
@LISTEN@ inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

fn id(flag: &str) -> Option<String> {
    let out = Command::new("id").args([flag, "postfix"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl TestPostfix {
    /// Starts Postfix for `domain` with `users` as mailboxes. None (with a message) when it
    /// cannot run here; in CI that is a failure.
    pub async fn start(domain: &str, users: &[&str], size_limit: u64) -> Option<TestPostfix> {
        let root = unsafe { libc::geteuid() } == 0;
        let installed = Path::new("/usr/sbin/postfix").exists();
        let (Some(uid), Some(gid)) = (id("-u"), id("-g")) else {
            assert!(std::env::var_os("CI").is_none(), "postfix is required in CI (.ci/run installs it)");
            eprintln!("SKIPPED: Postfix is not installed (apt-get install postfix)");
            return None;
        };
        if !root || !installed {
            assert!(std::env::var_os("CI").is_none(), "the Postfix peer test needs root and postfix in CI");
            eprintln!("SKIPPED: the Postfix peer needs root and /usr/sbin/postfix");
            return None;
        }
        let dir = tempfile::Builder::new().prefix("mailerd-postfix").tempdir().ok()?;
        let d = dir.path();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).ok()?;
        for sub in ["etc", "spool", "data", "mail"] {
            std::fs::create_dir_all(d.join(sub)).ok()?;
        }
        let port = std::net::TcpListener::bind("127.0.0.3:0").ok()?.local_addr().ok()?.port();
        let addr: SocketAddr = format!("127.0.0.3:{port}").parse().ok()?;
        let main_cf = format!(
            "compatibility_level = 3.6\nqueue_directory = {d}/spool\ndata_directory = {d}/data\n\
             command_directory = /usr/sbin\ndaemon_directory = /usr/lib/postfix/sbin\nshlib_directory = /usr/lib/postfix\n\
             mail_owner = postfix\nsetgid_group = postdrop\nsyslog_name = postfix-mailerd-test\n\
             maillog_file = {d}/maillog\nmaillog_file_prefixes = {d}\nmyhostname = mx.{domain}\nmydestination =\n\
             local_recipient_maps =\nlocal_transport = error:local delivery is disabled\nalias_maps =\nalias_database =\n\
             inet_interfaces = loopback-only\ninet_protocols = ipv4\nmynetworks = 127.255.255.254/32\n\
             smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
             message_size_limit = {size_limit}\nvirtual_mailbox_domains = {domain}\n\
             virtual_mailbox_maps = texthash:{d}/etc/vmailbox\nvirtual_mailbox_base = {d}/mail\n\
             virtual_uid_maps = static:{uid}\nvirtual_gid_maps = static:{gid}\n\
             smtpd_tls_security_level = none\nsmtp_tls_security_level = none\nbiff = no\n",
            d = d.display()
        );
        std::fs::write(d.join("etc/main.cf"), main_cf).ok()?;
        std::fs::write(d.join("etc/master.cf"), MASTER_CF.replace("@LISTEN@", &addr.to_string())).ok()?;
        let vmailbox: String = users.iter().map(|u| format!("{u}@{domain} {domain}/{u}/\n")).collect();
        std::fs::write(d.join("etc/vmailbox"), vmailbox).ok()?;
        let _ = Command::new("chown").args([&format!("{uid}:{gid}"), &d.join("mail").display().to_string()]).status();
        let _ = Command::new("chown").args(["postfix", &d.join("data").display().to_string()]).status();
        let etc = d.join("etc");
        let check = Command::new("postfix").arg("-c").arg(&etc).arg("check").output().ok()?;
        assert!(check.status.success(), "postfix check: {}", String::from_utf8_lossy(&check.stderr));
        let start = Command::new("postfix").arg("-c").arg(&etc).arg("start").output().ok()?;
        assert!(start.status.success(), "postfix start: {}", String::from_utf8_lossy(&start.stderr));
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Some(TestPostfix { addr, dir });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("postfix did not listen on {addr}; see {}/maillog", d.display());
    }

    /// Files delivered to a virtual mailbox.
    pub fn maildir(&self, domain: &str, user: &str) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path().join("mail").join(domain).join(user).join("new"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    }
}

impl Drop for TestPostfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix").arg("-c").arg(self.dir.path().join("etc")).arg("stop").output();
    }
}
