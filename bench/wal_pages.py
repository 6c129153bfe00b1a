#!/usr/bin/env python3
"""Which B-trees the commits in a SQLite WAL wrote: frames per commit, by table or index.

    python3 bench/wal_pages.py DATA_DIR/mailerd.db

Take a copy of the database, its -wal and -shm while the daemon is under load and stopped
(`kill -STOP`, copy, `kill -CONT`), and point this at the copy: it reads the WAL's valid
frames (those with the header's salts), splits them at commit frames, and names each page's
B-tree with SQLite's `dbstat` table (opened on a second copy, so the first stays as taken).
"""
import collections
import shutil
import sqlite3
import struct
import sys
import tempfile
from pathlib import Path


def frames(wal: bytes):
    """(page number, is commit) of each valid frame, in order."""
    _, _, page_size, _, salt1, salt2, _, _ = struct.unpack(">IIIIIIII", wal[:32])
    out, off = [], 32
    while off + 24 + page_size <= len(wal):
        page, commit, s1, s2, _, _ = struct.unpack(">IIIIII", wal[off : off + 24])
        if (s1, s2) != (salt1, salt2):
            break
        out.append((page, commit != 0))
        off += 24 + page_size
    return out


def main():
    db = Path(sys.argv[1])
    wal = Path(f"{db}-wal").read_bytes()
    commits, current = [], []
    for page, commit in frames(wal):
        current.append(page)
        if commit:
            commits.append(current)
            current = []
    if not commits:
        sys.exit("no committed frames in the WAL")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / db.name
        shutil.copy(db, copy)
        shutil.copy(f"{db}-wal", f"{copy}-wal")
        con = sqlite3.connect(copy)
        names = {p: f"{n} ({t})" for p, n, t in con.execute("SELECT pageno, name, pagetype FROM dbstat")}
        con.close()
    counts = collections.Counter(names.get(p, "?") for c in commits for p in c)
    print(f"{len(commits)} commits, {sum(map(len, commits)) / len(commits):.1f} frames per commit")
    for name, n in counts.most_common():
        print(f"{n / len(commits):6.2f} per commit  {name}")


if __name__ == "__main__":
    main()
