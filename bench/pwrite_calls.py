#!/usr/bin/env python3
"""What a write system call costs on this machine against the bytes it copies: 300 pages
written as SQLite writes WAL frames (a 24-byte header, then the 4 KiB page, 600 calls), as a
checkpoint writes a database file (300 aligned 4 KiB calls), and the same bytes in one call; no
fsync, so only the calls and the copies into the page cache are timed (a temporary file).

    python3 bench/pwrite_calls.py [ROUNDS]

Used in stop 37 for `store/sqlite/wal_writes.rs`; prints ms per 300 pages and µs per page.
Python adds a fraction of a microsecond per call; the single call shows the copy alone."""
import os
import sys
import tempfile
import time

PAGE, HEADER, N = 4096, 24, 300


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    page, header = b"p" * PAGE, b"h" * HEADER
    with tempfile.NamedTemporaryFile() as f:
        fd = f.fileno()
        os.pwrite(fd, (header + page) * N, 0)

        def frames():
            off = 32
            for _ in range(N):
                os.pwrite(fd, header, off)
                os.pwrite(fd, page, off + HEADER)
                off += HEADER + PAGE

        def pages():
            for i in range(N):
                os.pwrite(fd, page, i * PAGE)

        frames_once = (header + page) * N
        pages_once = page * N
        cases = [("WAL frames, 2 calls each", frames), ("WAL frames, one call", lambda: os.pwrite(fd, frames_once, 32)),
                 ("pages, 1 call each", pages), ("pages, one call", lambda: os.pwrite(fd, pages_once, 0))]
        for name, run in cases:
            started = time.perf_counter()
            for _ in range(rounds):
                run()
            per = (time.perf_counter() - started) / rounds
            print(f"{name:26s} {per * 1e3:6.3f} ms per {N} pages = {per * 1e6 / N:5.2f} µs per page")


if __name__ == "__main__":
    main()
