//! The writer's WAL writes, coalesced. SQLite appends each frame to the WAL as two writes (its
//! 24-byte header, then the page, which straddles two pages of the OS's cache): a group commit
//! of 300 pages was 600 `pwrite` calls, half the writer's time in the kernel. The VFS
//! `mailerd-wal` is the unix VFS but for the WAL file of a connection, whose writes it keeps in
//! memory until SQLite syncs the file, reads back a part of it, asks its size, truncates it or
//! asks any file control; then they go out in writes of 64 KiB.
//!
//! Only the writer's connection opens the store with it (`open`), and only at
//! `synchronous = FULL`: then every commit syncs the WAL before SQLite publishes its frames in
//! the WAL index, so no other connection (the readers, the checkpoint thread, another process)
//! is ever shown a frame that is still in memory, and a commit is on disk when it returns, as
//! before. Writes are kept only within a write transaction: a commit syncs them, and a rollback
//! forgets them (its rollback hook, `discard`): they are frames no one will read, and with the
//! write lock released they must not reach a file another process may be writing by then. A
//! crash loses what was not synced, which SQLite already expects of any write before a sync.
//! Must not: hold a file's writes past a sync, a read of them, a rollback or `MAX_BUFFER`
//! bytes; wrap any file but a WAL; be opened at `synchronous` below FULL.

use std::ffi::{CStr, c_int, c_void};
use std::sync::OnceLock;

use rusqlite::ffi;

/// The VFS's name (`Connection::open_with_flags_and_vfs`).
pub(super) const NAME: &CStr = c"mailerd-wal";

/// The most bytes kept in memory per WAL file (a group commit of 800 API messages is about
/// 4 MB); a write beyond it sends what is kept first.
const MAX_BUFFER: usize = 8 << 20;

/// A WAL file: SQLite's `sqlite3_file` (its methods, `METHODS`), then ours; the unix VFS's own
/// file lives after it in the same allocation (`REAL_AT`).
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// The file offset of `pending[0]`.
    start: i64,
    /// Writes not yet sent: one contiguous range of the file.
    pending: Vec<u8>,
}

/// Where the unix VFS's file starts within ours (8-byte aligned, as SQLite allocates).
const REAL_AT: usize = std::mem::size_of::<WalFile>().next_multiple_of(8);

/// The most bytes given to the unix VFS in one write: it writes at most 128 KiB - 1 per call
/// (`seekAndWriteFd` masks the length with 0x1ffff, as SQLite itself never writes more than
/// a page at once).
const CHUNK: usize = 64 * 1024;

/// The unix VFS (as an address: raw pointers are not `Sync`).
static UNIX: OnceLock<usize> = OnceLock::new();

/// Registers the VFS once per process; the result of that registration.
fn register() -> Result<(), rusqlite::Error> {
    static REGISTERED: OnceLock<c_int> = OnceLock::new();
    let rc = *REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find initializes SQLite and returns the default VFS (static, never
        // freed). Ours is a copy of it, leaked so that it outlives every connection; its other
        // methods are the unix VFS's own, which read nothing of the struct but what was copied.
        unsafe {
            let unix = ffi::sqlite3_vfs_find(std::ptr::null());
            if unix.is_null() {
                return ffi::SQLITE_ERROR;
            }
            let Ok(extra) = c_int::try_from(REAL_AT) else { return ffi::SQLITE_ERROR };
            let mut vfs = *unix;
            vfs.zName = NAME.as_ptr();
            vfs.pNext = std::ptr::null_mut();
            vfs.szOsFile += extra;
            vfs.xOpen = Some(open_file);
            let _ = UNIX.set(unix as usize);
            ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), 0)
        }
    });
    if rc == ffi::SQLITE_OK { Ok(()) } else { Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None)) }
}

/// A connection to the database at `path` whose WAL writes are coalesced, with `discard` as its
/// rollback hook. The caller sets `synchronous = FULL` before its first write.
pub(super) fn open(path: &std::path::Path) -> Result<rusqlite::Connection, rusqlite::Error> {
    register()?;
    let conn = rusqlite::Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), NAME)?;
    // SAFETY: the handle is used only by the hook, which SQLite calls on this connection's
    // thread while the connection is open (closing it drops the hook first).
    let db = unsafe { conn.handle() } as usize;
    conn.rollback_hook(Some(move || discard(db as *mut ffi::sqlite3)));
    Ok(conn)
}

/// Forgets the writes the connection's WAL file keeps (after a rollback: see the module).
fn discard(db: *mut ffi::sqlite3) {
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `db` is an open connection; JOURNAL_POINTER writes the pointer of its WAL file
    // (or rollback journal), which is ours only if its methods are `METHODS`.
    unsafe {
        let rc = ffi::sqlite3_file_control(
            db,
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_JOURNAL_POINTER,
            (&raw mut file).cast::<c_void>(),
        );
        if rc == ffi::SQLITE_OK && !file.is_null() && std::ptr::eq((*file).pMethods, &METHODS) {
            (*file.cast::<WalFile>()).pending.clear();
        }
    }
}

fn unix() -> *mut ffi::sqlite3_vfs {
    UNIX.get().map_or(std::ptr::null_mut(), |p| *p as *mut ffi::sqlite3_vfs)
}

/// The VFS's xOpen: the unix VFS's, and for a WAL inside a `WalFile`.
unsafe extern "C" fn open_file(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let unix = unix();
    // SAFETY: `unix` is the registered default VFS; `file` has room for `szOsFile` bytes, ours:
    // a `WalFile` and then the unix VFS's file at `REAL_AT`.
    unsafe {
        let Some(unix_open) = unix.as_ref().and_then(|u| u.xOpen) else { return ffi::SQLITE_ERROR };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            return unix_open(unix, name, file, flags, out_flags);
        }
        (*file).pMethods = std::ptr::null();
        let real = file.cast::<u8>().add(REAL_AT).cast::<ffi::sqlite3_file>();
        let rc = unix_open(unix, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            if let Some(close) = (*real).pMethods.as_ref().and_then(|m| m.xClose) {
                close(real);
            }
            return rc;
        }
        file.cast::<WalFile>().write(WalFile {
            base: ffi::sqlite3_file { pMethods: &METHODS },
            real,
            start: 0,
            pending: Vec::new(),
        });
        ffi::SQLITE_OK
    }
}

/// Version 1: a WAL file is never memory-mapped nor given shared memory.
static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// Our file and the unix VFS's methods of the file inside it.
///
/// # Safety
/// `file` must be a `WalFile` that `open_file` made and `close` has not closed.
unsafe fn parts<'a>(file: *mut ffi::sqlite3_file) -> (&'a mut WalFile, &'a ffi::sqlite3_io_methods) {
    // SAFETY: as the caller promises; the unix file's methods are static.
    unsafe {
        let w = &mut *file.cast::<WalFile>();
        let m = &*(*w.real).pMethods;
        (w, m)
    }
}

/// Sends the kept writes, in calls of at most `CHUNK` bytes.
fn flush(w: &mut WalFile, m: &ffi::sqlite3_io_methods) -> c_int {
    let Some(write) = m.xWrite else { return ffi::SQLITE_IOERR_WRITE };
    let mut rc = ffi::SQLITE_OK;
    let mut at = w.start;
    for chunk in w.pending.chunks(CHUNK) {
        // SAFETY: `real` is the open unix file; the chunk is at most `CHUNK` bytes.
        rc = unsafe { write(w.real, chunk.as_ptr().cast(), chunk.len() as c_int, at) };
        if rc != ffi::SQLITE_OK {
            break;
        }
        at += chunk.len() as i64;
    }
    w.pending.clear();
    rc
}

unsafe extern "C" fn write(file: *mut ffi::sqlite3_file, data: *const c_void, n: c_int, offset: i64) -> c_int {
    // SAFETY: SQLite calls this on a file `open_file` made, with `n` readable bytes at `data`.
    let ((w, m), bytes) = unsafe { (parts(file), std::slice::from_raw_parts(data.cast::<u8>(), n as usize)) };
    let end = w.start + w.pending.len() as i64;
    // Within or right after what is kept (SQLite rewrites a frame of the open transaction in
    // place, and appends the rest): into the buffer.
    if !w.pending.is_empty() && (w.start..=end).contains(&offset) {
        let at = (offset - w.start) as usize;
        if at + bytes.len() <= MAX_BUFFER {
            let over = (w.pending.len() - at).min(bytes.len());
            let (old, new) = bytes.split_at(over);
            if let Some(kept) = w.pending.get_mut(at..at + over) {
                kept.copy_from_slice(old);
            }
            w.pending.extend_from_slice(new);
            return ffi::SQLITE_OK;
        }
    }
    let rc = flush(w, m);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    if bytes.len() > MAX_BUFFER {
        let Some(write) = m.xWrite else { return ffi::SQLITE_IOERR_WRITE };
        // SAFETY: as above.
        return unsafe { write(w.real, data, n, offset) };
    }
    w.start = offset;
    w.pending.extend_from_slice(bytes);
    ffi::SQLITE_OK
}

unsafe extern "C" fn read(file: *mut ffi::sqlite3_file, data: *mut c_void, n: c_int, offset: i64) -> c_int {
    // SAFETY: SQLite calls this on a file `open_file` made.
    let (w, m) = unsafe { parts(file) };
    let end = w.start + w.pending.len() as i64;
    if offset < end && offset + i64::from(n) > w.start {
        let rc = flush(w, m);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    let Some(read) = m.xRead else { return ffi::SQLITE_IOERR_READ };
    // SAFETY: `data` has room for `n` bytes, as SQLite gave it.
    unsafe { read(w.real, data, n, offset) }
}

/// Flushes, then the unix VFS's method `f` on the file.
///
/// # Safety
/// As `parts`.
unsafe fn flushed(
    file: *mut ffi::sqlite3_file,
    f: impl FnOnce(*mut ffi::sqlite3_file, &ffi::sqlite3_io_methods) -> c_int,
) -> c_int {
    // SAFETY: as the caller promises.
    let (w, m) = unsafe { parts(file) };
    let rc = flush(w, m);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    f(w.real, m)
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: SQLite calls this on a file `open_file` made.
    unsafe { flushed(file, |real, m| m.xSync.map_or(ffi::SQLITE_IOERR_FSYNC, |f| f(real, flags))) }
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: SQLite calls this on a file `open_file` made.
    unsafe { flushed(file, |real, m| m.xTruncate.map_or(ffi::SQLITE_IOERR_TRUNCATE, |f| f(real, size))) }
}

unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    // SAFETY: SQLite calls this on a file `open_file` made, `size` writable.
    unsafe { flushed(file, |real, m| m.xFileSize.map_or(ffi::SQLITE_IOERR_FSTAT, |f| f(real, size))) }
}

unsafe extern "C" fn file_control(file: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    // SAFETY: SQLite calls this on a file `open_file` made.
    unsafe { flushed(file, |real, m| m.xFileControl.map_or(ffi::SQLITE_NOTFOUND, |f| f(real, op, arg))) }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this once on a file `open_file` made; ours is dropped after (SQLite frees
    // the allocation itself). Nothing kept is sent: between transactions nothing is kept (a
    // commit synced it, a rollback discarded it), and a transaction still open is rolled back.
    unsafe {
        let (w, m) = parts(file);
        let closed = m.xClose.map_or(ffi::SQLITE_OK, |f| f(w.real));
        std::ptr::drop_in_place(file.cast::<WalFile>());
        (*file).pMethods = std::ptr::null();
        closed
    }
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: SQLite calls this on a file `open_file` made.
    unsafe {
        let (w, m) = parts(file);
        m.xLock.map_or(ffi::SQLITE_OK, |f| f(w.real, level))
    }
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: SQLite calls this on a file `open_file` made.
    unsafe {
        let (w, m) = parts(file);
        m.xUnlock.map_or(ffi::SQLITE_OK, |f| f(w.real, level))
    }
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: SQLite calls this on a file `open_file` made, `out` writable.
    unsafe {
        let (w, m) = parts(file);
        m.xCheckReservedLock.map_or(ffi::SQLITE_OK, |f| f(w.real, out))
    }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this on a file `open_file` made.
    unsafe {
        let (w, m) = parts(file);
        m.xSectorSize.map_or(4096, |f| f(w.real))
    }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this on a file `open_file` made.
    unsafe {
        let (w, m) = parts(file);
        m.xDeviceCharacteristics.map_or(0, |f| f(w.real))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    fn writer(path: &std::path::Path) -> Connection {
        let c = super::open(path).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "synchronous", "FULL").unwrap();
        c
    }

    #[test]
    fn commits_through_the_vfs_are_read_by_plain_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let w = writer(&path);
        w.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)").unwrap();
        let r = Connection::open(&path).unwrap();
        for round in 0..20_i64 {
            w.execute_batch("BEGIN IMMEDIATE").unwrap();
            for i in 0..50_i64 {
                w.execute(
                    "INSERT INTO t (id, body) VALUES (?1, ?2)",
                    rusqlite::params![round * 50 + i, vec![round as u8; 3000]],
                )
                .unwrap();
            }
            w.execute_batch("COMMIT").unwrap();
            let (n, sum): (i64, i64) =
                r.query_row("SELECT count(*), sum(length(body)) FROM t", [], |x| Ok((x.get(0)?, x.get(1)?))).unwrap();
            assert_eq!((n, sum), ((round + 1) * 50, (round + 1) * 50 * 3000));
        }
    }

    /// Rows of `t` and the integrity check, read by a new plain connection.
    fn seen(path: &std::path::Path) -> (i64, String) {
        let c = Connection::open(path).unwrap();
        let n = c.query_row("SELECT count(*) FROM t", [], |x| x.get(0)).unwrap();
        (n, c.query_row("PRAGMA integrity_check", [], |x| x.get(0)).unwrap())
    }

    #[test]
    fn frames_of_a_rolled_back_transaction_never_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let w = writer(&path);
        w.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)").unwrap();
        // A small page cache: the transaction spills frames into the WAL before it ends.
        w.pragma_update(None, "cache_size", 10).unwrap();
        w.execute_batch("BEGIN IMMEDIATE").unwrap();
        for i in 0..200_i64 {
            w.execute("INSERT INTO t (id, body) VALUES (?1, zeroblob(3000))", [i]).unwrap();
        }
        w.execute_batch("ROLLBACK").unwrap();
        // Another writer (another process, say) commits where those frames were kept.
        let other = Connection::open(&path).unwrap();
        other.pragma_update(None, "synchronous", "FULL").unwrap();
        for i in 0..100_i64 {
            other.execute("INSERT INTO t (id, body) VALUES (?1, zeroblob(3000))", [1000 + i]).unwrap();
        }
        drop(other);
        assert_eq!(seen(&path), (100, "ok".to_string()));
        // The first writer's next commit writes only its own frames.
        w.execute("INSERT INTO t (id, body) VALUES (5000, x'00')", []).unwrap();
        assert_eq!(seen(&path), (101, "ok".to_string()));
        drop(w);
        assert_eq!(seen(&path), (101, "ok".to_string()));
    }
}
