#!/usr/bin/env python3
"""Which threads are runnable under load: samples the state of every thread of the given
processes every 5 ms for SECONDS and prints, per thread name and state (R runnable, S sleeping,
D in the disk), how many samples found it so, and the share of samples in which none was
runnable (with the kernel function each sleeper waited in then).

    python3 bench/thread_states.py SECONDS PID [PID ...]

Used beside bench/accept.sh's load (stop 35): smtp-source's pid and mailerd's. It reads
/proc/PID/task/*/stat and wchan only; its own CPU is a few per cent of one core."""
import collections
import os
import sys
import time


def tasks(pids):
    out = []
    for p in pids:
        try:
            out.extend((p, t) for t in os.listdir(f"/proc/{p}/task"))
        except FileNotFoundError:
            pass
    return out


def main():
    duration, pids = float(sys.argv[1]), [int(p) for p in sys.argv[2:]]
    threads = tasks(pids)
    states, idle_waits = collections.Counter(), collections.Counter()
    samples = none_running = 0
    start = time.time()
    while time.time() - start < duration:
        running = False
        for p, t in threads:
            try:
                stat = open(f"/proc/{p}/task/{t}/stat").read()
            except FileNotFoundError:
                continue
            comm, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2]
            states[(comm, state)] += 1
            running |= state == "R"
        samples += 1
        if not running:
            none_running += 1
            for p, t in threads:
                try:
                    comm = open(f"/proc/{p}/task/{t}/comm").read().strip()
                    idle_waits[(comm, open(f"/proc/{p}/task/{t}/wchan").read())] += 1
                except FileNotFoundError:
                    pass
        time.sleep(0.005)
    print(f"samples {samples}, none runnable {none_running} ({100 * none_running / max(samples, 1):.0f} %)")
    for (comm, state), n in sorted(states.items()):
        print(f"  {comm:<16} {state} {n}")
    for (comm, wchan), n in idle_waits.most_common(20):
        print(f"  when none runnable: {comm:<16} waits in {wchan or '-'} {n}")


if __name__ == "__main__":
    main()
