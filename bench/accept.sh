#!/usr/bin/env bash
# mailerd acceptance benchmark (self-contained; loopback only).
#
#   bench/accept.sh            # N=20000 messages, 20 sessions, 4 KiB, fsync on
#   N=5000 bench/accept.sh     # a quicker run
#
# In one run it measures, on the same disk and CPU:
#   1. the disk's fsync rate (4 KiB write + fdatasync, one writer): the physical limit of
#      one-message-one-fsync acceptance;
#   2. the loopback protocol ceiling: smtp-source -> smtp-sink (no MTA, nothing stored);
#   3. mailerd accepting durably (queue.hold = true: stored and fsync'd, not delivered),
#      driven by Postfix's smtp-source, the same load as ../shared/bench's "accept" scenario;
#   4. mailerd's resident memory with 1,000 idle connections open;
#   5. a bare SMTP sink written on tokio as mailerd's door is, doing nothing else (the
#      `tokio_sink` bench in its serve mode): what the runtime and the sockets alone reach
#      under the same load, so the report splits the distance to the ceiling into the
#      runtime's part and mailerd's own work. TOKIO_SINK=0 leaves it out.
# Figures are printed as rates and as ratios to the baselines of this same run; for runs 2 and 3
# also how the machine's time went (busy, waiting on the disk, idle).
set -euo pipefail

N="${N:-20000}"
SESSIONS="${SESSIONS:-20}"
SIZE="${SIZE:-4096}"
ADDR="${ADDR:-127.0.0.1:2625}"
SINK_ADDR="${SINK_ADDR:-127.0.0.1:2626}"
IDLE="${IDLE:-1000}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SCRATCH="${BENCH_SCRATCH:-${TMPDIR:-/tmp}/mailerd-own-bench}"

if ! command -v smtp-source >/dev/null && [ ! -x /usr/sbin/smtp-source ]; then
    echo "installing postfix for smtp-source/smtp-sink" >&2
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
fi
PATH="$PATH:/usr/sbin"
ulimit -n 8192

(cd "$ROOT" && cargo build --release --quiet)
BIN="${BIN:-$ROOT/target/release/mailerd}"
TOKIO_SINK="${TOKIO_SINK:-1}"
TOKIO_SINK_ADDR="${TOKIO_SINK_ADDR:-127.0.0.1:2627}"
if [ "$TOKIO_SINK" = 1 ] && [ -z "${TOKIO_SINK_BIN:-}" ]; then
    TOKIO_SINK_BIN=$(cd "$ROOT" && cargo bench --bench tokio_sink --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import json, sys; print(next((m["executable"] for m in map(json.loads, sys.stdin) if m.get("target", {}).get("name") == "tokio_sink" and m.get("executable")), ""))' \
        || true)
fi
if [ "$TOKIO_SINK" = 1 ] && [ ! -x "${TOKIO_SINK_BIN:-}" ]; then
    echo "the tokio_sink bench did not build: its row is left out" >&2
    TOKIO_SINK=0
fi

rm -rf "$SCRATCH"
mkdir -p "$SCRATCH/data"
cat > "$SCRATCH/mailerd.toml" <<TOML
hostname = "bench.mailerd.test"
data_dir = "$SCRATCH/data"
[listen]
smtp = "$ADDR"
submission = ""
http = ""
[relay]
trusted_networks = ["127.0.0.0/8"]
[queue]
hold = true
[limits]
max_connections = $((IDLE + 100))
TOML

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The whole machine's jiffies: busy (user, nice, system, irq, softirq, steal), iowait, idle.
machine() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9, $6, $5}' /proc/stat; }
# "busy B % / iowait W % / idle I %" between two `machine` readings.
shares() { python3 -c "import sys; a = [int(x) for x in sys.argv[1].split()]; b = [int(x) for x in sys.argv[2].split()]; d = [y - x for x, y in zip(a, b)]; t = sum(d) or 1; print('busy %d %% / iowait %d %% / idle %d %%' % tuple(round(100 * x / t) for x in d))" "$1" "$2"; }
now() { date +%s.%N; }
# The load every run gets: N messages over SESSIONS sessions to the address $2, while
# `schedstat.py` watches process $1: the milliseconds per message of each of its thread names
# and of smtp-source itself ("command") go to $SCRATCH/cpu.txt, a "name ms" per line.
load() {
    python3 "$ROOT/bench/schedstat.py" "$1" --per "$N" -- \
        smtp-source -s "$SESSIONS" -l "$SIZE" -m "$N" -f s@sender.test -t r@rcpt.test "$2" > "$SCRATCH/cpu.txt"
}
# The milliseconds per message of the names given ($@) in the last load's cpu.txt, summed.
cpu_of() { awk -v names=" $* " 'index(names, " " $1 " ") {t += $2} END {printf "%.3f", t}' "$SCRATCH/cpu.txt"; }

# 1. fsync rate of the disk under the data directory, and the CPU one write + sync costs
#    (on a virtual disk the kernel's share of a sync is large: it bounds a durable commit too).
read -r FSYNC SYNC_CPU_US < <(python3 - "$SCRATCH" <<'PY'
import os, resource, sys, time
path = os.path.join(sys.argv[1], "fsync.probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
block = b"x" * 4096
cpu = lambda: (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_SELF))
n, t0, c0 = 0, time.perf_counter(), cpu()
while time.perf_counter() - t0 < 3.0:
    os.write(fd, block)
    os.fdatasync(fd)
    n += 1
os.close(fd); os.unlink(path)
print(round(n / (time.perf_counter() - t0)), round((cpu() - c0) * 1e6 / n))
PY
)

# 2. protocol ceiling: smtp-source -> smtp-sink.
smtp-sink -u "$( [ "$(id -u)" = 0 ] && echo postfix || id -un)" "$SINK_ADDR" 1000 >/dev/null 2>&1 &
SINK_PID=$!
sleep 0.5
m0=$(machine)
t0=$(now)
load "$SINK_PID" "$SINK_ADDR"
t1=$(now)
CEILING_MACHINE=$(shares "$m0" "$(machine)")
CEILING_SOURCE_MS=$(cpu_of command)
kill "$SINK_PID" 2>/dev/null || true
CEILING=$(python3 -c "print(round($N / ($t1 - $t0)))")

# 2b. the bare tokio sink under the same load.
if [ "$TOKIO_SINK" = 1 ]; then
    MAILERD_SINK_SERVE="$TOKIO_SINK_ADDR" "$TOKIO_SINK_BIN" >/dev/null 2>&1 &
    TS_PID=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/${TOKIO_SINK_ADDR%:*}/${TOKIO_SINK_ADDR#*:}") 2>/dev/null && break; sleep 0.1; done
    c0=$(cpu_ticks $TS_PID)
    t0=$(now)
    load "$TS_PID" "$TOKIO_SINK_ADDR"
    t1=$(now)
    TS_CPU_MS=$(python3 -c "print(round(($(cpu_ticks $TS_PID) - $c0) * 10 / $N, 3))")
    kill "$TS_PID" 2>/dev/null || true
    TS=$(python3 -c "print(round($N / ($t1 - $t0)))")
fi

# 3. mailerd, durable acceptance.
MAILERD_LOG=warn "$BIN" --config "$SCRATCH/mailerd.toml" serve > "$SCRATCH/mailerd.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR#*:}") 2>/dev/null && break; sleep 0.1; done
c0=$(cpu_ticks $PID)
m0=$(machine)
t0=$(now)
load "$PID" "$ADDR"
t1=$(now)
c1=$(cpu_ticks $PID)
ACCEPT_MACHINE=$(shares "$m0" "$(machine)")
ACCEPT_SOURCE_MS=$(cpu_of command)
# mailerd's CPU per message by thread: the sessions (tokio's workers), the store's writer
# (inserts, commits and their fsyncs) and its checkpoint thread (threads alive at the end).
BY_THREAD="sessions $(cpu_of tokio-rt-worker), writer $(cpu_of store-writer), checkpoint $(cpu_of store-checkpoin)"
STORED=$("$BIN" --config "$SCRATCH/mailerd.toml" queue list --json --limit $((N * 2)) | wc -l)
ACCEPT=$(python3 -c "print(round($N / ($t1 - $t0)))")
CPU_MS=$(python3 -c "print(round(($c1 - $c0) * 10 / $N, 3))")

# 4. memory with idle connections.
RSS_BEFORE=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
RSS_IDLE=$(python3 - "$ADDR" "$IDLE" "$PID" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
socks = []
for _ in range(int(sys.argv[2])):
    s = socket.create_connection((host, int(port)))
    socks.append(s)
for s in socks:
    s.settimeout(10)
    assert s.recv(512).startswith(b"220"), "no greeting"
time.sleep(1)
rss = [l for l in open(f"/proc/{sys.argv[3]}/status") if l.startswith("VmRSS")][0].split()[1]
print(rss)
for s in socks:
    s.close()
PY
)
kill -TERM $PID; wait $PID 2>/dev/null || true
trap - EXIT

cat <<REPORT
mailerd accept benchmark  ($(date -u +%FT%TZ), $(nproc) CPUs, N=$N, $SESSIONS sessions, $SIZE-byte messages, new connection per message)
  disk fsync rate (4 KiB + fdatasync, 1 writer) : $FSYNC /s   ($SYNC_CPU_US µs CPU per write + sync)
  protocol ceiling (smtp-source -> smtp-sink)   : $CEILING msg/s   (machine $CEILING_MACHINE; smtp-source $CEILING_SOURCE_MS ms CPU/message)
  mailerd durable accept (queue.hold)           : $ACCEPT msg/s   ($STORED of $N stored; machine $ACCEPT_MACHINE)
    = $(python3 -c "print(round($ACCEPT / $FSYNC, 2))") x the disk's one-fsync-per-message limit
    = $(python3 -c "print(round($ACCEPT / $CEILING, 2))") x the protocol ceiling
  mailerd CPU                                    : $CPU_MS ms/message (by thread, ms: $BY_THREAD)
  smtp-source CPU against mailerd                : $ACCEPT_SOURCE_MS ms/message
  mailerd RSS: $((RSS_BEFORE / 1024)) MiB after the load, $((RSS_IDLE / 1024)) MiB with $IDLE idle connections
REPORT
if [ "$TOKIO_SINK" = 1 ]; then
    echo "  bare tokio sink (the runtime alone)           : $TS msg/s = $(python3 -c "print(round($TS / $CEILING, 2))") x the ceiling, $TS_CPU_MS ms CPU/message"
    echo "    mailerd = $(python3 -c "print(round($ACCEPT / $TS, 2))") x the bare tokio sink"
fi
[ "$STORED" -eq "$N" ] || { echo "ERROR: $STORED of $N messages stored" >&2; exit 1; }
