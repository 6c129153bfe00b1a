//! The Dovecot passwd-file `mailerd user add|passwd|del` keep (`dovecot.passwd_file`): one line
//! per login of a local domain, `address:{ARGON2ID}<PHC string>::::::userdb_quota_rule=*:storage=<bytes>B`,
//! so Dovecot's passdb checks the same argon2id hash mailerd stores (Dovecot 2.3 verifies
//! `$argon2id$v=19$m=…,t=…,p=…$salt$hash` PHC strings with its ARGON2ID scheme) and its quota
//! plugin enforces the same limit as mailerd's RCPT check.
//!
//! Standards: Dovecot's passwd-file format (doc.dovecot.org "Passwd-file"): `user:password:uid:
//! gid:gecos:home:shell:extra fields`, `userdb_`-prefixed extra fields go to the userdb.
//! Written atomically: under an exclusive lock (`<file>.lock`, so two `mailerd user` runs do not
//! lose each other's change), to a temporary file in the same directory (mode 0640, the old
//! file's owner and group, so the group Dovecot reads it by is kept), fsync'd, renamed over the
//! old one, and the directory fsync'd. Dovecot re-reads the file only when its size or its
//! mtime's second changed, so a rewrite of the same size within the old one's second gets the
//! next second as its mtime. Lines of other logins (also ones written by hand) are
//! kept as they are, in their order.
//! Must not: touch the store (the CLI passes the values), or write a line with a `:` or a line
//! break in a field (such a login is refused).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of the file: read by the group Dovecot's auth process runs in, by nobody else.
pub const MODE: u32 = 0o640;

/// One login's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The mailbox key (`local@domain`), Dovecot's login.
    pub user: String,
    /// The stored argon2id PHC string.
    pub hash: String,
    /// The mailbox's quota in bytes.
    pub quota: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PasswdFileError {
    #[error("`{0}` cannot be written to a passwd-file (a `:` or a control character)")]
    Unwritable(String),
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
}

impl Entry {
    /// The line, without its line end.
    pub fn line(&self) -> Result<String, PasswdFileError> {
        for field in [&self.user, &self.hash] {
            if field.is_empty() || field.contains(':') || field.chars().any(char::is_control) {
                return Err(PasswdFileError::Unwritable(self.user.clone()));
            }
        }
        Ok(format!("{}:{{ARGON2ID}}{}::::::userdb_quota_rule=*:storage={}B", self.user, self.hash, self.quota))
    }
}

/// The user a line is for (what comes before the first `:`), None for comments and blanks.
fn user_of(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    Some(line.split(':').next().unwrap_or_default())
}

/// `text` with the line of `user` replaced by `line` (appended when there was none), or
/// removed when `line` is None. Users compare case-insensitively, as `%Lu` looks them up.
pub fn edit(text: &str, user: &str, line: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len() + 128);
    let mut placed = false;
    for old in text.lines() {
        if user_of(old).is_some_and(|u| u.eq_ignore_ascii_case(user)) {
            if let (Some(new), false) = (line, placed) {
                out.push_str(new);
                out.push('\n');
                placed = true;
            }
            continue;
        }
        out.push_str(old);
        out.push('\n');
    }
    if let (Some(new), false) = (line, placed) {
        out.push_str(new);
        out.push('\n');
    }
    out
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PasswdFileError + '_ {
    move |error| PasswdFileError::Io { path: path.to_path_buf(), error }
}

/// Writes (`Some`) or removes (`None`) the line of `user` in the file at `path`, atomically.
pub fn update(path: &Path, user: &str, entry: Option<&Entry>) -> Result<(), PasswdFileError> {
    let line = entry.map(Entry::line).transpose()?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lock_path = dir.join(format!(".{name}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    lock_exclusive(&lock).map_err(io(&lock_path))?;

    let (old, meta) = match fs::read_to_string(path) {
        Ok(text) => (text, Some(fs::metadata(path).map_err(io(path))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), None),
        Err(e) => return Err(io(path)(e)),
    };
    let new = edit(&old, user, line.as_deref());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(MODE).open(&tmp)?;
        // The umask may have taken bits away; the mode is exact.
        file.set_permissions(fs::Permissions::from_mode(MODE))?;
        if let Some(meta) = &meta
            && (meta.uid() != file.metadata()?.uid() || meta.gid() != file.metadata()?.gid())
        {
            std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))?;
        }
        file.write_all(new.as_bytes())?;
        if let Some(old) = &meta
            && let Some(later) = distinct_mtime(old, &file.metadata()?)
        {
            file.set_modified(later)?;
        }
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(io(path))
    // The lock is released when `lock` is dropped.
}

/// The modification time the new file must get when a reader that compares only the size and
/// the mtime's second (Dovecot's passwd-file, once a second) could not tell it from the old
/// one: the second after the old one's (a password changed within a second of the last write
/// keeps its size: the argon2id strings are all as long). None: its own mtime tells.
fn distinct_mtime(old: &fs::Metadata, new: &fs::Metadata) -> Option<std::time::SystemTime> {
    (old.len() == new.len() && new.mtime() <= old.mtime())
        .then(|| std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(old.mtime()).unwrap_or(0) + 1))
}

/// Takes an exclusive advisory lock on `file` (waits for another holder).
fn lock_exclusive(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for as long as `file` lives.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(user: &str, hash: &str, quota: u64) -> Entry {
        Entry { user: user.into(), hash: hash.into(), quota }
    }

    #[test]
    fn lines_are_dovecots_passwd_file_format() {
        let e = entry("bob@local.test", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", 1024);
        assert_eq!(
            e.line().unwrap(),
            "bob@local.test:{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA::::::userdb_quota_rule=*:storage=1024B"
        );
        for bad in [entry("a:b@local.test", "$x", 1), entry("a@local.test", "$x\n", 1), entry("", "$x", 1)] {
            assert!(matches!(bad.line(), Err(PasswdFileError::Unwritable(_))), "{bad:?}");
        }
    }

    #[test]
    fn edits_keep_other_lines_in_their_order() {
        let text =
            "# kept by hand\nalice@local.test:{PLAIN}x::::::\nbob@local.test:old::::::\ncarol@local.test:y::::::\n";
        assert_eq!(
            edit(text, "Bob@Local.test", Some("bob@local.test:new::::::")),
            "# kept by hand\nalice@local.test:{PLAIN}x::::::\nbob@local.test:new::::::\ncarol@local.test:y::::::\n"
        );
        assert_eq!(
            edit(text, "bob@local.test", None),
            "# kept by hand\nalice@local.test:{PLAIN}x::::::\ncarol@local.test:y::::::\n"
        );
        assert_eq!(edit("", "dan@local.test", Some("dan@local.test:z")), "dan@local.test:z\n");
        assert_eq!(edit("a:1\na:2\n", "a", Some("a:3")), "a:3\n", "a duplicate is dropped");
        assert_eq!(edit("no newline at end", "x", None), "no newline at end\n");
    }

    #[test]
    fn updates_are_atomic_with_mode_0640() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        update(&path, "bob@local.test", Some(&entry("bob@local.test", "$h1", 10))).unwrap();
        update(&path, "amy@local.test", Some(&entry("amy@local.test", "$h2", 20))).unwrap();
        update(&path, "bob@local.test", Some(&entry("bob@local.test", "$h3", 10))).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "bob@local.test:{ARGON2ID}$h3::::::userdb_quota_rule=*:storage=10B\n\
             amy@local.test:{ARGON2ID}$h2::::::userdb_quota_rule=*:storage=20B\n"
        );
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, MODE);
        update(&path, "bob@local.test", None).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "amy@local.test:{ARGON2ID}$h2::::::userdb_quota_rule=*:storage=20B\n"
        );
        // A change that keeps the size, made within the second, still moves the mtime's second.
        for hash in ["$h4", "$h5", "$h6"] {
            let before = fs::metadata(&path).unwrap().mtime();
            update(&path, "amy@local.test", Some(&entry("amy@local.test", hash, 20))).unwrap();
            assert!(fs::metadata(&path).unwrap().mtime() > before, "{hash}");
        }
        update(&path, "amy@local.test", Some(&entry("amy@local.test", "$h2", 20))).unwrap();
        // Only the file and its lock are left: no temporary files.
        let mut names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, [".users.lock", "users"]);
        assert!(update(&dir.path().join("missing/users"), "x@y", None).is_err());
    }
}
