//! One daemon per data directory: an exclusive `flock` on `data_dir/mailerd.lock`, a file that
//! holds the PID of the daemon that has the lock.
//!
//! `serve` takes the lock before anything else (before the store, the TLS key and the
//! listeners) and keeps it until the process ends. The kernel drops it when the process dies,
//! so a crash never leaves a stale lock: the file stays, and its PID is only a hint for the
//! message a second daemon prints. Nodes of a cluster each have their own data dir, so several
//! of them may share one PostgreSQL store. Problems with the data dir itself are said once, in
//! plain words ("permission denied: ./mailerd-data").
//! Standards: flock(2) (a lock belongs to an open file description and goes with it).
//! Must not: delete or truncate the lock file before holding the lock (a second daemon would
//! wipe the holder's PID, or lock a new file while the first holds the old one).

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The lock file's name inside `data_dir`.
pub const LOCK_FILE: &str = "mailerd.lock";

#[derive(Debug, Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error("another mailerd{} is running on data_dir {} ({} is locked)", holder(.pid), .dir.display(), .lock.display())]
    Held { dir: PathBuf, lock: PathBuf, pid: Option<u32> },
    /// The data dir cannot be created, entered or written. Not a `#[source]`: the message
    /// already says what the error is, once.
    #[error("{}", data_dir_problem(.dir, .error))]
    DataDir { dir: PathBuf, error: std::io::Error },
}

fn holder(pid: &Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

/// What is wrong with the data dir, in the words an operator searches for.
pub fn data_dir_problem(dir: &Path, e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let dir = dir.display();
    match e.kind() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        K::PermissionDenied => {
            format!("permission denied: {dir} (data_dir must be writable by uid {})", unsafe { libc::geteuid() })
        }
        K::ReadOnlyFilesystem => format!("read-only file system: {dir} (data_dir must be writable)"),
        K::NotADirectory => format!("not a directory: {dir} (data_dir, or a path above it, is a file)"),
        K::StorageFull => format!("no space left on device: {dir}"),
        _ => format!("data_dir {dir}: {e}"),
    }
}

/// The lock on a data dir; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    pub path: PathBuf,
}

/// Creates `dir` if needed and takes its lock, writing our PID into the lock file.
pub fn lock(dir: &Path) -> Result<InstanceLock, LockError> {
    let problem = |error| LockError::DataDir { dir: dir.to_path_buf(), error };
    std::fs::create_dir_all(dir).map_err(problem)?;
    let path = dir.join(LOCK_FILE);
    // Neither truncated nor recreated: the holder's PID must stay readable until we hold it.
    let mut file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(
            |e| match e.kind() {
                // The directory is not writable (the file cannot be created) or the file is not ours.
                std::io::ErrorKind::PermissionDenied => problem(e),
                _ => LockError::DataDir { dir: path.clone(), error: e },
            },
        )?;
    // SAFETY: the descriptor is open for the life of `file`; flock has no other preconditions.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(LockError::Held { dir: dir.to_path_buf(), lock: path, pid: text.trim().parse().ok() });
        }
        return Err(LockError::DataDir { dir: path, error: e });
    }
    let write_pid = |file: &mut File| -> std::io::Result<()> {
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.flush()
    };
    write_pid(&mut file).map_err(|e| LockError::DataDir { dir: path.clone(), error: e })?;
    Ok(InstanceLock { _file: file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let text = std::fs::read_to_string(&first.path).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
        // flock locks belong to open file descriptions: a second open conflicts even here.
        match lock(dir.path()) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        let shown = lock(dir.path()).unwrap_err().to_string();
        assert!(shown.contains(&format!("pid {}", std::process::id())), "{shown}");
        drop(first);
        lock(dir.path()).expect("free again once dropped");
    }

    #[test]
    fn data_dir_problems_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = lock(&file.join("data")).unwrap_err().to_string();
        assert!(e.starts_with("not a directory: "), "{e}");
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = data_dir_problem(Path::new("./mailerd-data"), &denied);
        assert!(e.starts_with("permission denied: ./mailerd-data"), "{e}");
    }
}
