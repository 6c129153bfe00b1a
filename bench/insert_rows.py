#!/usr/bin/env python3
"""What each row of an accepted message costs the SQLite store's writer: the four inserts of
`store/sqlite/writes.rs` (the message with its body, its recipient, the `queued` event and the
sent log), each alone and all four, in group commits, on copies of an empty migrated store.

    python3 bench/insert_rows.py DATA_DIR/mailerd.db [N] [GROUP] [BODY_BYTES]

DATA_DIR/mailerd.db is a store that `mailerd serve` created and left empty (start it once on
an empty data_dir and stop it). N messages (30,000) go in commits of GROUP (300, as an API batch
group), with bodies of BODY_BYTES (2,600, as the api_send bench's messages once built). Each set
runs at `synchronous = FULL` (as the writer: one fsync per commit) and `OFF` (no fsync: what
is left is the writer's CPU and its writes into the page cache). Prints µs per message.
Every commit's rows are made before the clock starts; Python's sqlite3 (`executemany`) still
adds about a microsecond per row, so the ratios between the sets are what this is for. Used in stop 36: an API batch's rate is one over the writer's time per
message."""
import os
import shutil
import sqlite3
import sys
import tempfile
import time

SETS = {
    "message": "m",
    "recipient": "r",
    "event": "e",
    "sent log": "s",
    "all four": "mres",
}


ORIGIN = ('{"via":"api","client_ip":"127.0.0.1","helo":"api","auth_user":"apikey:k (bench)",'
          '"tls":false,"tags":[],"metadata":{},"sandbox":false}')
SQL = {
    "m": "INSERT INTO messages (id, reverse_path, envid, ret, size, received_at, origin, body,"
         " message_id_header) VALUES (?,?,?,?,?,?,?,?,?)",
    "r": "INSERT INTO recipients (message_id, address, orcpt, notify, transport, mailbox,"
         " bounce_message, bounce_recipient, state, next_attempt_at, updated_at)"
         " VALUES (?,?,?,?,?,?,?,?,'queued',?,?)",
    "e": "INSERT INTO events (message_id, recipient, kind, status, detail, at, sandbox)"
         " VALUES (?,?,'queued',NULL,?,?,0)",
    "s": "INSERT OR IGNORE INTO sent_log (header_id, recipient, queue_id, sent_at) VALUES (?,?,?,?)",
}


def values(k, n, i, body):
    """The values of statement `k` for the message numbered `n` with queue id `i`."""
    at = 1765000000000
    if k == "m":
        return (i, "app@sender.test", None, None, len(body), at + n, ORIGIN, body, f"<{i.lower()}@sender.test>")
    if k == "r":
        return (i, f"user{n}@rcpt.test", None, None, "smtp", None, None, None, at, at)
    if k == "e":
        return (i, f"user{n}@rcpt.test", "from 127.0.0.1 via api", at)
    return (f"{i.lower()}@sender.test", f"user{n}@rcpt.test", i, at)


def run(src, work, which, sync, n, group, body):
    db = os.path.join(work, "copy.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    shutil.copy(src, db)
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute(f"PRAGMA synchronous = {sync}")
    # A recipient's foreign key needs its message: checked only when the messages go in too.
    c.execute("PRAGMA foreign_keys = " + ("ON" if "m" in which else "OFF"))
    # Every commit's rows made before the clock starts: only SQLite's work is timed.
    commits = []
    for g in range(0, n, group):
        ids = [(m, f"019AB{m:015d}") for m in range(g, min(g + group, n))]
        commits.append([(SQL[k], [values(k, m, i, body) for m, i in ids]) for k in which])
    started = time.perf_counter()
    for statements in commits:
        c.execute("BEGIN IMMEDIATE")
        for sql, rows in statements:
            c.executemany(sql, rows)
        c.execute("COMMIT")
    elapsed = time.perf_counter() - started
    c.close()
    return elapsed * 1e6 / n


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    src = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 30_000
    group = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    body = b"x" * (int(sys.argv[4]) if len(sys.argv) > 4 else 2_600)
    # A checkpointed copy of the store: its WAL folded in, so the copy is the whole store.
    with tempfile.TemporaryDirectory() as work:
        snapshot = os.path.join(work, "empty.db")
        c = sqlite3.connect(src)
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.execute(f"VACUUM INTO '{snapshot}'")
        c.close()
        print(f"{n} messages in commits of {group}, {len(body)}-byte bodies; µs per message")
        print(f"{'rows':10} {'FULL':>7} {'OFF':>7}")
        for name, which in SETS.items():
            full = run(snapshot, work, which, "FULL", n, group, body)
            off = run(snapshot, work, which, "OFF", n, group, body)
            print(f"{name:10} {full:7.1f} {off:7.1f}")


if __name__ == "__main__":
    main()
