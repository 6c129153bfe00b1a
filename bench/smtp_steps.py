#!/usr/bin/env python3
"""Times each step of SMTP sessions, one message per connection, as smtp-source sends them.

    python3 bench/smtp_steps.py HOST PORT [N]

Run it beside a load (bench/accept.sh's smtp-source, say) to see where one session's time
goes under that load: connect, banner, EHLO, MAIL, RCPT, DATA, end of data (the durable
commit), QUIT, and the server's close. It prints the median and the mean of each step in µs,
and the total per message. Against smtp-sink on another port, the same numbers are the
protocol ceiling's.
"""
import socket
import statistics
import sys
import time

STEPS = ["connect", "banner", "ehlo", "mail", "rcpt", "data", "eod", "quit", "close", "total"]
BODY = b"Subject: probe\r\n\r\n" + (b"x" * 76 + b"\r\n") * 52 + b".\r\n"
COMMANDS = [
    ("ehlo", b"EHLO probe.test\r\n"),
    ("mail", b"MAIL FROM:<s@sender.test>\r\n"),
    ("rcpt", b"RCPT TO:<r@rcpt.test>\r\n"),
    ("data", b"DATA\r\n"),
    ("eod", BODY),
    ("quit", b"QUIT\r\n"),
]


def reply(f):
    """Reads one (possibly multi-line) reply; fails on a closed connection or an error code."""
    while True:
        line = f.readline()
        if not line:
            raise EOFError("connection closed")
        if line[:1] in (b"4", b"5"):
            raise RuntimeError(line.decode(errors="replace").strip())
        if line[3:4] != b"-":
            return


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    times = {k: [] for k in STEPS}
    for _ in range(n):
        t0 = time.perf_counter()
        s = socket.create_connection((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")
        last = time.perf_counter()
        times["connect"].append(last - t0)
        reply(f)
        now = time.perf_counter()
        times["banner"].append(now - last)
        last = now
        for name, command in COMMANDS:
            s.sendall(command)
            reply(f)
            now = time.perf_counter()
            times[name].append(now - last)
            last = now
        while s.recv(4096):
            pass
        now = time.perf_counter()
        times["close"].append(now - last)
        times["total"].append(now - t0)
        s.close()
    for label, f in (("median", statistics.median), ("mean", statistics.mean)):
        print(label.ljust(7), " ".join(f"{k}={f(v) * 1e6:.0f}" for k, v in times.items()), "µs")


if __name__ == "__main__":
    main()
