#!/usr/bin/env python3
"""Where each thread of a process spent SECONDS: on a CPU, or runnable and waiting for one
(from /proc/PID/task/TID/schedstat, which the kernel keeps exactly), summed per thread name.

    python3 bench/schedstat.py PID SECONDS
    python3 bench/schedstat.py PID --per N -- COMMAND [ARG...]

The second form runs COMMAND (a load) instead of sleeping and prints, per N units of work
(messages), the milliseconds each thread name of PID spent on a CPU, one "name ms" per line,
then "command ms": COMMAND's own CPU. `bench/accept.sh` reads it.

Used in stop 37 beside `MAILERD_BENCH_ONLY=batch cargo bench --bench api_send`: the store
writer's on-CPU share over the messages per second is its CPU per message, and its time in the
run queue shows the two cores saturated."""
import collections
import os
import resource
import subprocess
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


def per_name(before, after, born_too):
    """Per thread name: [on CPU ns, runnable ns, switches, threads] between two snaps; threads
    born in between count from zero when `born_too`."""
    names = collections.defaultdict(lambda: [0, 0, 0, 0])
    for t, (comm, run, wait, n) in after.items():
        if t in before or born_too:
            _, run0, wait0, n0 = before.get(t, (comm, 0, 0, 0))
            g = names[comm]
            g[0] += run - run0
            g[1] += wait - wait0
            g[2] += n - n0
            g[3] += 1
    return names


def per_unit(pid, units, command):
    before = snap(pid)
    done = subprocess.run(command)
    after = snap(pid)
    if done.returncode != 0:
        sys.exit(done.returncode)
    for comm, (run, _, _, _) in sorted(per_name(before, after, True).items()):
        print(comm.replace(" ", "_"), round(run / 1e6 / units, 3))
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    print("command", round((r.ru_utime + r.ru_stime) * 1e3 / units, 3))


def main():
    if len(sys.argv) > 5 and sys.argv[2] == "--per" and sys.argv[4] == "--":
        return per_unit(int(sys.argv[1]), int(sys.argv[3]), sys.argv[5:])
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    pid, seconds = int(sys.argv[1]), float(sys.argv[2])
    before, started = snap(pid), time.monotonic()
    time.sleep(seconds)
    after, elapsed = snap(pid), time.monotonic() - started
    for comm, (run, wait, n, k) in sorted(per_name(before, after, False).items(), key=lambda x: -x[1][0]):
        print(f"{comm:18s} threads {k:2d}  on CPU {run / 1e9 / elapsed * 100:6.1f} %  "
              f"runnable, waiting {wait / 1e9 / elapsed * 100:6.1f} %  switches/s {n / elapsed:8.0f}")


if __name__ == "__main__":
    main()
