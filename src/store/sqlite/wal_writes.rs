//! The store's page writes, coalesced. SQLite appends each frame to the WAL as two writes (its
//! 24-byte header, then the page, which straddles two pages of the OS's cache), and a
//! checkpoint copies each page back into the database file with a write of its own: a group
//! commit of 300 pages was 600 `pwrite` calls for the writer and 300 more for the checkpoint,
//! and on this kind of machine a system call costs about as much as copying a page. Two VFSes,
//! the unix VFS but for one file of a connection, keep that file's writes in memory and send
//! them in writes of 64 KiB when SQLite syncs the file, reads back a part of them, asks its
//! size, truncates it, or asks any file control:
//! - `mailerd-wal` for the writer's WAL, at `synchronous = FULL` (`open_writer`): every commit
//!   syncs the WAL before SQLite publishes its frames in the WAL index, so no other connection
//!   (the readers, the checkpoint thread, another process) is ever shown a frame still in
//!   memory, and a commit is on disk when it returns, as before. A rollback forgets what is kept
//!   (its rollback hook, `discard`): those frames are read by no one, and with the write lock
//!   released they must not reach a file another process may be writing by then.
//! - `mailerd-ckpt` for the checkpoint thread's database file (`open_checkpointer`): a
//!   checkpoint writes pages in page order while it holds the lock that keeps out readers of the
//!   database file alone, then asks the file control `CKPT_DONE` (which sends them), truncates
//!   and syncs the file, and only then records the pages as copied; a checkpoint that fails
//!   half-way still ends with `CKPT_DONE`, and its pages are the WAL's committed ones.
//!
//! A write that fails keeps what is kept, so that the next sync or read fails too (a file
//! control's error is not seen by SQLite). A crash loses what was not synced, which SQLite
//! already expects of any write before a sync.
//! Must not: hold a file's writes past a sync, a read of them, a file control, a rollback, a
//! checkpoint or `MAX_BUFFER` bytes; wrap any other file; be opened for writing at
//! `synchronous` below FULL.

use std::ffi::{CStr, c_int, c_void};
use std::sync::OnceLock;

use rusqlite::ffi;

/// The writer's VFS: its WAL coalesced.
const WRITER: &CStr = c"mailerd-wal";
/// The checkpoint thread's VFS: its database file coalesced.
const CHECKPOINTER: &CStr = c"mailerd-ckpt";

/// The most bytes kept in memory per file (a group commit of 800 API messages is about 4 MB);
/// a write beyond it sends what is kept first.
const MAX_BUFFER: usize = 8 << 20;

/// The most bytes given to the unix VFS in one write: it writes at most 128 KiB - 1 per call
/// (`seekAndWriteFd` masks the length with 0x1ffff, as SQLite itself never writes more than
/// a page at once).
const CHUNK: usize = 64 * 1024;

/// A coalesced file: SQLite's `sqlite3_file` (its methods, `WAL_METHODS` or `DB_METHODS`),
/// then ours; the unix VFS's own file lives after it in the same allocation (`REAL_AT`).
#[repr(C)]
struct Coalesced {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// The file offset of `pending[0]`.
    start: i64,
    /// Writes not yet sent: one contiguous range of the file.
    pending: Vec<u8>,
}

/// Where the unix VFS's file starts within ours (8-byte aligned, as SQLite allocates).
const REAL_AT: usize = std::mem::size_of::<Coalesced>().next_multiple_of(8);

/// The unix VFS (as an address: raw pointers are not `Sync`).
static UNIX: OnceLock<usize> = OnceLock::new();

/// Registers the two VFSes once per process; the result of that registration.
fn register() -> Result<(), rusqlite::Error> {
    static REGISTERED: OnceLock<c_int> = OnceLock::new();
    let rc = *REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find initializes SQLite and returns the default VFS (static, never
        // freed). Ours are copies of it, leaked so that they outlive every connection; their
        // other methods are the unix VFS's own, which read nothing of the struct but what was
        // copied.
        unsafe {
            let unix = ffi::sqlite3_vfs_find(std::ptr::null());
            if unix.is_null() {
                return ffi::SQLITE_ERROR;
            }
            let Ok(extra) = c_int::try_from(REAL_AT) else { return ffi::SQLITE_ERROR };
            let _ = UNIX.set(unix as usize);
            for (name, open) in [
                (WRITER, open_file::<{ ffi::SQLITE_OPEN_WAL }> as OpenFn),
                (CHECKPOINTER, open_file::<{ ffi::SQLITE_OPEN_MAIN_DB }>),
            ] {
                let mut vfs = *unix;
                vfs.zName = name.as_ptr();
                vfs.pNext = std::ptr::null_mut();
                vfs.szOsFile += extra;
                vfs.xOpen = Some(open);
                let rc = ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), 0);
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
            }
            ffi::SQLITE_OK
        }
    });
    if rc == ffi::SQLITE_OK { Ok(()) } else { Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None)) }
}

type OpenFn = unsafe extern "C" fn(
    *mut ffi::sqlite3_vfs,
    ffi::sqlite3_filename,
    *mut ffi::sqlite3_file,
    c_int,
    *mut c_int,
) -> c_int;

/// The writer's connection to the database at `path`: its WAL writes coalesced, with `discard`
/// as its rollback hook. The caller sets `synchronous = FULL` before its first write.
pub(super) fn open_writer(path: &std::path::Path) -> Result<rusqlite::Connection, rusqlite::Error> {
    register()?;
    let conn = rusqlite::Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), WRITER)?;
    // SAFETY: the handle is used only by the hook, which SQLite calls on this connection's
    // thread while the connection is open (closing it drops the hook first).
    let db = unsafe { conn.handle() } as usize;
    conn.rollback_hook(Some(move || discard(db as *mut ffi::sqlite3)));
    Ok(conn)
}

/// The checkpoint thread's connection to the database at `path`: its writes to the database
/// file coalesced. It must run nothing but checkpoints.
pub(super) fn open_checkpointer(path: &std::path::Path) -> Result<rusqlite::Connection, rusqlite::Error> {
    register()?;
    rusqlite::Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), CHECKPOINTER)
}

/// Forgets the writes the connection's WAL file keeps (after a rollback: see the module).
fn discard(db: *mut ffi::sqlite3) {
    forget(db, ffi::SQLITE_FCNTL_JOURNAL_POINTER, &WAL_METHODS);
}

/// Forgets the writes the connection's database file keeps, after a checkpoint: one that
/// succeeded sent them all; one that failed must not send them later (see the module).
pub(super) fn forget_checkpoint(conn: &rusqlite::Connection) {
    // SAFETY: the handle of an open connection, used for this call only.
    forget(unsafe { conn.handle() }, ffi::SQLITE_FCNTL_FILE_POINTER, &DB_METHODS);
}

/// Empties the kept writes of the file that the file control `op` (JOURNAL_POINTER or
/// FILE_POINTER) names on the open connection `db`, if that file is ours with `methods`.
fn forget(db: *mut ffi::sqlite3, op: c_int, methods: &'static ffi::sqlite3_io_methods) {
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `db` is an open connection; `op` writes a file pointer, which is a `Coalesced`
    // only if its methods are ours.
    unsafe {
        let rc = ffi::sqlite3_file_control(db, c"main".as_ptr(), op, (&raw mut file).cast::<c_void>());
        if rc == ffi::SQLITE_OK && !file.is_null() && std::ptr::eq((*file).pMethods, methods) {
            (*file.cast::<Coalesced>()).pending.clear();
        }
    }
}

fn unix() -> *mut ffi::sqlite3_vfs {
    UNIX.get().map_or(std::ptr::null_mut(), |p| *p as *mut ffi::sqlite3_vfs)
}

/// The VFSes' xOpen: the unix VFS's, and inside a `Coalesced` for a file whose flags have
/// `KIND` (`SQLITE_OPEN_WAL` for the writer's, `SQLITE_OPEN_MAIN_DB` for the checkpoint's).
unsafe extern "C" fn open_file<const KIND: c_int>(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let methods = if KIND == ffi::SQLITE_OPEN_WAL { &WAL_METHODS } else { &DB_METHODS };
    let unix = unix();
    // SAFETY: `unix` is the registered default VFS; SQLite gives `file` room for our
    // `szOsFile` bytes: a `Coalesced` and then the unix VFS's file at `REAL_AT`.
    unsafe {
        let Some(unix_open) = unix.as_ref().and_then(|u| u.xOpen) else { return ffi::SQLITE_ERROR };
        if flags & KIND == 0 {
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
        file.cast::<Coalesced>().write(Coalesced {
            base: ffi::sqlite3_file { pMethods: methods },
            real,
            start: 0,
            pending: Vec::new(),
        });
        ffi::SQLITE_OK
    }
}

/// A WAL file's (version 1: a WAL is never memory-mapped nor given shared memory).
static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
    ..DB_METHODS
};

/// A database file's: its shared memory (the WAL index) and mappings are the unix file's.
static DB_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
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
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

/// Our file and the unix VFS's methods of the file inside it.
///
/// # Safety
/// `file` must be a `Coalesced` that `open_file` made and `close` has not closed.
unsafe fn parts<'a>(file: *mut ffi::sqlite3_file) -> (&'a mut Coalesced, &'a ffi::sqlite3_io_methods) {
    // SAFETY: as the caller promises; the unix file's methods are static.
    unsafe {
        let w = &mut *file.cast::<Coalesced>();
        let m = &*(*w.real).pMethods;
        (w, m)
    }
}

/// Sends the kept writes, in calls of at most `CHUNK` bytes; they are kept if one fails.
fn flush(w: &mut Coalesced, m: &ffi::sqlite3_io_methods) -> c_int {
    let Some(write) = m.xWrite else { return ffi::SQLITE_IOERR_WRITE };
    let mut at = w.start;
    for chunk in w.pending.chunks(CHUNK) {
        // SAFETY: `real` is the open unix file; the chunk is at most `CHUNK` bytes.
        let rc = unsafe { write(w.real, chunk.as_ptr().cast(), chunk.len() as c_int, at) };
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        at += chunk.len() as i64;
    }
    w.pending.clear();
    ffi::SQLITE_OK
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

/// Sends what is kept first if it overlaps `offset..offset + n`.
fn flush_overlap(w: &mut Coalesced, m: &ffi::sqlite3_io_methods, offset: i64, n: i64) -> c_int {
    let end = w.start + w.pending.len() as i64;
    if offset < end && offset + n > w.start { flush(w, m) } else { ffi::SQLITE_OK }
}

unsafe extern "C" fn read(file: *mut ffi::sqlite3_file, data: *mut c_void, n: c_int, offset: i64) -> c_int {
    // SAFETY: SQLite calls this on a file `open_file` made.
    let (w, m) = unsafe { parts(file) };
    let rc = flush_overlap(w, m, offset, i64::from(n));
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let Some(read) = m.xRead else { return ffi::SQLITE_IOERR_READ };
    // SAFETY: `data` has room for `n` bytes, as SQLite gave it.
    unsafe { read(w.real, data, n, offset) }
}

unsafe extern "C" fn fetch(file: *mut ffi::sqlite3_file, offset: i64, n: c_int, out: *mut *mut c_void) -> c_int {
    // SAFETY: SQLite calls this on a file `open_file` made, `out` writable.
    unsafe {
        let (w, m) = parts(file);
        let rc = flush_overlap(w, m, offset, i64::from(n));
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        match m.xFetch {
            Some(f) => f(w.real, offset, n, out),
            None => {
                *out = std::ptr::null_mut();
                ffi::SQLITE_OK
            }
        }
    }
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

/// The unix VFS's method `f` on the file, nothing sent.
///
/// # Safety
/// As `parts`.
unsafe fn passed<T>(
    file: *mut ffi::sqlite3_file,
    f: impl FnOnce(*mut ffi::sqlite3_file, &ffi::sqlite3_io_methods) -> T,
) -> T {
    // SAFETY: as the caller promises.
    let (w, m) = unsafe { parts(file) };
    f(w.real, m)
}

/// The methods that do nothing of their own: each sends what is kept first (`flushed`) or
/// not (`passed`), then calls the unix file's method of the same field, answering the given
/// value when the unix file has none.
macro_rules! forward {
    ($($how:ident fn $name:ident($($arg:ident: $ty:ty),*) -> $field:ident or $absent:expr;)*) => {$(
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            // SAFETY: SQLite calls this on a file `open_file` made, with its method's
            // arguments.
            unsafe { $how(file, |real, m| m.$field.map_or($absent, |f| f(real, $($arg),*))) }
        }
    )*};
}

forward! {
    flushed fn sync(flags: c_int) -> xSync or ffi::SQLITE_IOERR_FSYNC;
    flushed fn truncate(size: i64) -> xTruncate or ffi::SQLITE_IOERR_TRUNCATE;
    flushed fn file_size(size: *mut i64) -> xFileSize or ffi::SQLITE_IOERR_FSTAT;
    flushed fn file_control(op: c_int, arg: *mut c_void) -> xFileControl or ffi::SQLITE_NOTFOUND;
    passed fn lock(level: c_int) -> xLock or ffi::SQLITE_OK;
    passed fn unlock(level: c_int) -> xUnlock or ffi::SQLITE_OK;
    passed fn check_reserved_lock(out: *mut c_int) -> xCheckReservedLock or ffi::SQLITE_OK;
    passed fn sector_size() -> xSectorSize or 4096;
    passed fn device_characteristics() -> xDeviceCharacteristics or 0;
    passed fn shm_map(region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> xShmMap or ffi::SQLITE_IOERR_SHMMAP;
    passed fn shm_lock(offset: c_int, n: c_int, flags: c_int) -> xShmLock or ffi::SQLITE_IOERR_SHMLOCK;
    passed fn shm_unmap(delete: c_int) -> xShmUnmap or ffi::SQLITE_OK;
    passed fn unfetch(offset: i64, p: *mut c_void) -> xUnfetch or ffi::SQLITE_OK;
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this once on a file `open_file` made; ours is dropped after
    // (SQLite frees the allocation itself). Nothing kept is sent: between transactions and
    // checkpoints nothing is kept (a commit synced it, a rollback discarded it, a checkpoint's
    // `CKPT_DONE` sent it), and a transaction still open is rolled back.
    unsafe {
        let (w, m) = parts(file);
        let closed = m.xClose.map_or(ffi::SQLITE_OK, |f| f(w.real));
        std::ptr::drop_in_place(file.cast::<Coalesced>());
        (*file).pMethods = std::ptr::null();
        closed
    }
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: SQLite calls this on a database file `open_file` made.
    unsafe { passed(file, |real, m| m.xShmBarrier.map_or((), |f| f(real))) }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    /// A new database in a temporary directory with table `t`, and its writer through the VFS
    /// (WAL, `synchronous = FULL`, as the store's).
    fn writer() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let c = super::open_writer(&path).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "synchronous", "FULL").unwrap();
        c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)").unwrap();
        (dir, path, c)
    }

    #[test]
    fn commits_through_the_vfs_are_read_by_plain_connections() {
        let (_dir, path, w) = writer();
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
        let (_dir, path, w) = writer();
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

    #[test]
    fn a_checkpoint_through_the_vfs_leaves_every_page_in_the_database_file() {
        let (dir, path, w) = writer();
        let ckpt = super::open_checkpointer(&path).unwrap();
        ckpt.pragma_update(None, "synchronous", "FULL").unwrap();
        for round in 0..10_i64 {
            w.execute_batch("BEGIN IMMEDIATE").unwrap();
            for i in 0..100_i64 {
                w.execute("INSERT INTO t (id, body) VALUES (?1, zeroblob(3000))", [round * 100 + i]).unwrap();
            }
            w.execute_batch("COMMIT").unwrap();
            let (busy, logged, copied): (i64, i64, i64) = ckpt
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?)))
                .unwrap();
            assert_eq!((busy, logged), (0, copied), "round {round}: every frame copied");
            assert_eq!(seen(&path), ((round + 1) * 100, "ok".to_string()));
        }
        // The database file alone (no WAL beside it) holds what the checkpoints copied.
        let alone = dir.path().join("alone.db");
        std::fs::copy(&path, &alone).unwrap();
        assert_eq!(seen(&alone), (1000, "ok".to_string()));
    }
}
