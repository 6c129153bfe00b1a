//! Mailbox usage, one source of truth for mailerd and Dovecot: the Maildir++ `maildirsize` file
//! in the Maildir itself, which Dovecot's quota plugin (`quota = maildir`) reads and updates
//! too. mailerd appends a line for each message it delivers and reads the sum at RCPT; Dovecot
//! appends a negative line when mail is expunged over IMAP, so deleting mail frees space for
//! mailerd's 552 5.2.2 check at once.
//!
//! Standards: the Maildir++ quota format (Courier's "maildirquota"; Dovecot's quota-maildir):
//! first line the limits (`<bytes>S[,<count>C]`), then one `<bytes> <count>` line per change,
//! each appended in one `write` with O_APPEND; the file is recalculated (every message of the
//! Maildir and its `.Folder`s counted, written to `tmp/` and renamed over) when it is missing,
//! longer than [`RECALC_OVER`] bytes, or names another byte limit than ours. A message's size
//! is its `,S=` field when its name has one (mailerd's and Dovecot's do), else its file size.
//! Must not: touch the store, or decide replies (inbound::policy does).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::time::Timestamp;

/// The file's name in the Maildir.
pub const FILE: &str = "maildirsize";
/// Beyond this size the file is recalculated instead of read (Maildir++'s 5120 bytes).
pub const RECALC_OVER: u64 = 5120;

/// What a Maildir holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub bytes: u64,
    pub messages: u64,
}

/// The parsed file: the byte limit of its first line, and the sums of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeFile {
    pub limit_bytes: Option<u64>,
    pub usage: Usage,
}

/// Parses a `maildirsize` text; None when its first line is not a limits line. Lines that do
/// not parse are skipped (a half-written line of a crashed writer); sums below zero are zero.
pub fn parse(text: &str) -> Option<SizeFile> {
    let mut lines = text.lines();
    let header = lines.next()?.trim();
    let mut limit_bytes = None;
    for part in header.split(',').filter(|p| !p.is_empty()) {
        let (digits, kind) = part.split_at(part.len().checked_sub(1)?);
        let value: u64 = digits.parse().ok()?;
        match kind {
            "S" => limit_bytes = Some(value),
            "C" => {}
            _ => return None,
        }
    }
    let (mut bytes, mut messages) = (0i64, 0i64);
    for line in lines {
        let mut fields = line.split_whitespace();
        let (Some(b), Some(c), None) = (fields.next(), fields.next(), fields.next()) else { continue };
        let (Ok(b), Ok(c)) = (b.parse::<i64>(), c.parse::<i64>()) else { continue };
        bytes = bytes.saturating_add(b);
        messages = messages.saturating_add(c);
    }
    let usage = Usage { bytes: u64::try_from(bytes).unwrap_or(0), messages: u64::try_from(messages).unwrap_or(0) };
    Some(SizeFile { limit_bytes, usage })
}

/// The size of a message file: its `,S=<size>` field, else its length on disk.
fn message_size(path: &Path) -> u64 {
    let from_name = path.file_name().and_then(|n| n.to_str()).and_then(|name| {
        let base = name.split(':').next().unwrap_or(name);
        base.split(',').find_map(|f| f.strip_prefix("S=")).and_then(|s| s.parse().ok())
    });
    from_name.unwrap_or_else(|| fs::metadata(path).map(|m| m.len()).unwrap_or(0))
}

/// Counts every message under `new/` and `cur/` of the Maildir and of its `.Folder`s.
pub fn scan(maildir: &Path) -> std::io::Result<Usage> {
    let mut dirs = vec![maildir.to_path_buf()];
    for entry in fs::read_dir(maildir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name != "." && name != ".." && entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }
    let mut usage = Usage::default();
    for dir in dirs {
        for sub in ["new", "cur"] {
            let Ok(entries) = fs::read_dir(dir.join(sub)) else { continue };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_file()) {
                    usage.bytes = usage.bytes.saturating_add(message_size(&entry.path()));
                    usage.messages += 1;
                }
            }
        }
    }
    Ok(usage)
}

/// Recalculates the file with the byte limit `limit` and returns the usage.
pub fn recalculate(maildir: &Path, limit: u64) -> std::io::Result<Usage> {
    let usage = scan(maildir)?;
    let tmp_dir = maildir.join("tmp");
    fs::create_dir_all(&tmp_dir)?;
    let tmp = tmp_dir.join(format!("{}.{}.{FILE}", Timestamp::now().millis(), std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(format!("{limit}S\n{} {}\n", usage.bytes, usage.messages).as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, maildir.join(FILE))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map(|()| usage)
}

/// The usage of the Maildir at RCPT time, for the byte limit `limit`: read from the file, or
/// recalculated when it must be. A Maildir that does not exist yet holds nothing.
pub fn usage(maildir: &Path, limit: u64) -> std::io::Result<Usage> {
    if !maildir.is_dir() {
        return Ok(Usage::default());
    }
    let path = maildir.join(FILE);
    let current = match fs::metadata(&path) {
        Ok(meta) if meta.len() <= RECALC_OVER => fs::read_to_string(&path).ok().as_deref().and_then(parse),
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    match current {
        Some(file) if file.limit_bytes == Some(limit) => Ok(file.usage),
        _ => recalculate(maildir, limit),
    }
}

/// Counts a delivered message of `size` bytes: one appended line, when the file exists (when
/// it does not, the next [`usage`] counts the Maildir, this message included).
pub fn add(maildir: &Path, size: u64) -> std::io::Result<()> {
    match OpenOptions::new().append(true).open(maildir.join(FILE)) {
        Ok(mut file) => file.write_all(format!("{size} 1\n").as_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_parsed_as_maildir_plus_plus() {
        let f = parse("1024S\n300 1\n200 1\n-300 -1\n").unwrap();
        assert_eq!(f, SizeFile { limit_bytes: Some(1024), usage: Usage { bytes: 200, messages: 1 } });
        let f = parse("1000S,10C\n0 0\n").unwrap();
        assert_eq!(f.limit_bytes, Some(1000));
        assert_eq!(parse("10C\n5 1\n").unwrap().limit_bytes, None);
        assert_eq!(parse("5 1\n"), None, "no limits line");
        assert_eq!(parse("abcS\n"), None);
        assert_eq!(parse(""), None);
        // A half-written last line is skipped; a negative total is zero.
        assert_eq!(parse("10S\n5 1\n7").unwrap().usage, Usage { bytes: 5, messages: 1 });
        assert_eq!(parse("10S\n-5 -1\n").unwrap().usage, Usage::default());
    }

    fn put(dir: &Path, rel: &str, bytes: &[u8]) {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn usage_is_recalculated_when_missing_too_long_or_of_another_limit_and_then_appended() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("bob");
        assert_eq!(usage(&m, 100).unwrap(), Usage::default(), "no Maildir yet");
        put(&m, "new/1.M1P1.host,S=40", &[b'x'; 40]);
        put(&m, "cur/2.M2P2.host,S=25:2,S", &[b'x'; 25]);
        put(&m, "cur/3.M3P3.host", &[b'x'; 7]);
        put(&m, ".Sent/cur/4.M4P4.host,S=8:2,S", &[b'x'; 8]);
        put(&m, "tmp/5.M5P5.host,S=999", &[b'x'; 9]);
        put(&m, "dovecot-uidlist", b"ignored");
        assert_eq!(usage(&m, 100).unwrap(), Usage { bytes: 80, messages: 4 });
        assert_eq!(fs::read_to_string(m.join(FILE)).unwrap(), "100S\n80 4\n");
        add(&m, 20).unwrap();
        assert_eq!(usage(&m, 100).unwrap(), Usage { bytes: 100, messages: 5 }, "read, not scanned");
        // Dovecot expunges a message: its negative line frees the space.
        OpenOptions::new().append(true).open(m.join(FILE)).unwrap().write_all(b"-40 -1\n").unwrap();
        assert_eq!(usage(&m, 100).unwrap(), Usage { bytes: 60, messages: 4 });
        // Another limit (the quota changed): counted again, with the new limit.
        assert_eq!(usage(&m, 500).unwrap(), Usage { bytes: 80, messages: 4 }, "the scan finds what is there");
        assert!(fs::read_to_string(m.join(FILE)).unwrap().starts_with("500S\n"));
        // Too long (a line per delivery, Dovecot's and ours): counted again.
        for _ in 0..2000 {
            add(&m, 1).unwrap();
        }
        assert_eq!(usage(&m, 500).unwrap(), Usage { bytes: 80, messages: 4 });
        assert_eq!(fs::read_dir(m.join("tmp")).unwrap().count(), 1, "no temporary file left behind");
    }

    #[test]
    fn adding_without_a_file_leaves_the_count_to_the_next_scan() {
        let dir = tempfile::tempdir().unwrap();
        add(dir.path(), 10).unwrap();
        assert!(!dir.path().join(FILE).exists());
    }
}
