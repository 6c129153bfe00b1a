//! Maildir delivery: write to tmp/, fsync, rename into new/, fsync the directory.
//!
//! Standards: the Maildir format (cr.yp.to/proto/maildir.html), `,S=<size>` as Dovecot reads it.
//! Layout: `<data_dir>/mail/<domain>/<local part>/{tmp,new,cur}`; unusual characters of a
//! local part are percent-encoded so a name can never leave its directory.
//! Each delivery is counted in the Maildir's `maildirsize` (`local::quota`), the usage Dovecot's
//! quota plugin reads too.
//! Must not: touch the store or decide retries.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::time::Timestamp;

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// The Maildir directory of a mailbox key (`local@domain`).
pub fn mailbox_dir(mail_root: &Path, key: &str) -> PathBuf {
    let (local, domain) = key.rsplit_once('@').unwrap_or((key, "localhost"));
    mail_root.join(safe_name(domain)).join(safe_name(local))
}

fn safe_name(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for (i, b) in part.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b"_+-=".contains(&b) || (b == b'.' && i > 0);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() { "%00".into() } else { out }
}

/// Delivers `message` into the Maildir of `key` and returns the file's path in new/.
pub fn deliver(mail_root: &Path, key: &str, hostname: &str, message: &[u8]) -> std::io::Result<PathBuf> {
    let dir = mailbox_dir(mail_root, key);
    for sub in ["tmp", "new", "cur"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    let now = Timestamp::now().millis();
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let name = format!(
        "{}.M{}P{}Q{}.{},S={}",
        now / 1000,
        (now % 1000) * 1000,
        std::process::id(),
        seq,
        hostname.replace(['/', ':'], "_"),
        message.len()
    );
    let tmp = dir.join("tmp").join(&name);
    let new = dir.join("new").join(&name);
    let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    file.write_all(message)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, &new)?;
    File::open(dir.join("new"))?.sync_all()?;
    // Delivered: a failure to count it only logs (the next recalculation counts it).
    if let Err(e) = super::quota::add(&dir, message.len() as u64) {
        tracing::warn!(maildir = %dir.display(), error = %e, "maildirsize not updated");
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_their_directory() {
        let root = Path::new("/m");
        assert_eq!(mailbox_dir(root, "bob@a.test"), Path::new("/m/a.test/bob"));
        assert_eq!(mailbox_dir(root, "../x@a.test"), Path::new("/m/a.test/%2E.%2Fx"));
        assert_eq!(mailbox_dir(root, "a/b@a.test"), Path::new("/m/a.test/a%2Fb"));
    }

    #[test]
    fn delivers_into_new() {
        let dir = tempfile::tempdir().unwrap();
        let path = deliver(dir.path(), "bob@a.test", "mx.test", b"Subject: x\r\n\r\nhi\r\n").unwrap();
        assert!(path.starts_with(dir.path().join("a.test/bob/new")));
        assert_eq!(fs::read(&path).unwrap(), b"Subject: x\r\n\r\nhi\r\n");
        assert_eq!(fs::read_dir(dir.path().join("a.test/bob/tmp")).unwrap().count(), 0);
    }
}
