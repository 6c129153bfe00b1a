//! One daemon per data dir: a second `mailerd serve` on the same data dir exits 2 at once with
//! one line naming the PID that holds the lock, and starts fine once the first has stopped.

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("mailerd.toml");
    std::fs::write(
        &path,
        format!(
            "hostname = \"mx.local.test\"\ndata_dir = \"{}\"\n[listen]\nsmtp = \"127.0.0.1:0\"\nsubmission = \"\"\nhttp = \"\"\n\
             [dns]\nnameservers = [\"127.0.0.1:9\"]\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

fn serve(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env("MAILERD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mailerd")
}

/// Waits until the lock file names `pid` (the daemon holds the lock).
fn wait_locked(dir: &Path, pid: u32) {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        if std::fs::read_to_string(dir.join("data/mailerd.lock")).is_ok_and(|t| t.trim() == pid.to_string()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the daemon (pid {pid}) did not take the lock");
}

fn stop(mut child: Child) {
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "graceful stop");
}

#[test]
fn a_second_daemon_on_one_data_dir_exits_2_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let first = serve(&config);
    wait_locked(dir.path(), first.id());

    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .output()
        .expect("run a second mailerd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&format!("pid {}", first.id())), "{stderr}");
    assert!(stderr.contains("mailerd.lock"), "{stderr}");

    // The first is unharmed, stops cleanly, and the lock is free again.
    stop(first);
    let again = serve(&config);
    wait_locked(dir.path(), again.id());
    stop(again);
}

#[test]
fn an_unusable_data_dir_is_said_once_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data"), b"a file, not a directory").unwrap();
    let config = config(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_mailerd"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("data"), "{stderr}");

    // Permission denied: as root (who writes anywhere) the binary runs as nobody via setpriv.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let path = dir.path().join("denied.toml");
    let data_dir = locked.join("d");
    std::fs::write(&path, format!("data_dir = \"{}\"\n[listen]\nsmtp = \"\"\nsubmission = \"\"\n", data_dir.display()))
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailerd"));
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        if Command::new("setpriv").arg("--version").output().is_err() {
            let _ = writeln!(
                std::io::stderr(),
                "SKIP instance::permission_denied: needs setpriv (apt-get install util-linux)"
            );
            return;
        }
        cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_mailerd")]);
    }
    let out = cmd.args(["--config", path.to_str().unwrap(), "serve"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("permission denied: {}", data_dir.display())), "{stderr}");
}
