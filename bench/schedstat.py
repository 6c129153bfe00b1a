#!/usr/bin/env python3
"""Where each thread of a process spent SECONDS: on a CPU, or runnable and waiting for one
(from /proc/PID/task/TID/schedstat, which the kernel keeps exactly), summed per thread name.

    python3 bench/schedstat.py PID SECONDS

Used in stop 37 beside `MAILERD_BENCH_ONLY=batch cargo bench --bench api_send`: the store
writer's on-CPU share over the messages per second is its CPU per message, and its time in the
run queue shows the two cores saturated."""
import collections
import os
import sys
import time


def snap(pid):
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                run, wait, n = map(int, f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
        out[t] = (comm, run, wait, n)
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    pid, seconds = int(sys.argv[1]), float(sys.argv[2])
    before, started = snap(pid), time.monotonic()
    time.sleep(seconds)
    after, elapsed = snap(pid), time.monotonic() - started
    per_name = collections.defaultdict(lambda: [0, 0, 0, 0])
    for t, (comm, run, wait, n) in after.items():
        if t in before:
            g = per_name[comm]
            g[0] += run - before[t][1]
            g[1] += wait - before[t][2]
            g[2] += n - before[t][3]
            g[3] += 1
    for comm, (run, wait, n, k) in sorted(per_name.items(), key=lambda x: -x[1][0]):
        print(f"{comm:18s} threads {k:2d}  on CPU {run / 1e9 / elapsed * 100:6.1f} %  "
              f"runnable, waiting {wait / 1e9 / elapsed * 100:6.1f} %  switches/s {n / elapsed:8.0f}")


if __name__ == "__main__":
    main()
