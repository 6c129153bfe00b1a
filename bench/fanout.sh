#!/usr/bin/env bash
# CPU per message of one mailerd relaying to smtp-sink, for comparing two builds (issue 22).
#
#   BINS="old/mailerd target/release/mailerd" R=10 N=3000 REPS=2 bench/fanout.sh
#   PERF=1 BINS=target/release/mailerd bench/fanout.sh      # + perf record, top 10 by self time
#
# smtp-source sends N messages of 4 KiB with R recipients each (20 sessions, a new connection per
# message) to mailerd, which relays them over one route to smtp-sink; the run ends when the store
# has no queued or deferred recipient. Printed per run: msg/s and the daemon's CPU ms per message
# (user + system). The binaries run interleaved, REPS times each: CPU per message is the steadier
# figure on a shared machine; compare builds within one invocation.
set -euo pipefail
R="${R:-10}"; N="${N:-3000}"; REPS="${REPS:-2}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BINS="${BINS:-$ROOT/target/release/mailerd}"
SCRATCH="${BENCH_SCRATCH:-${TMPDIR:-/tmp}/mailerd-fanout}"
export PATH="$PATH:/usr/sbin"
TICK=$(getconf CLK_TCK)

run() {
  local bin="$1" d="$SCRATCH/run" m sink t0 t1 s e q=x
  rm -rf "$d"; mkdir -p "$d/data"
  cat > "$d/mailerd.toml" <<TOML
hostname = "bench.mailerd.test"
data_dir = "$d/data"
[listen]
smtp = "127.0.0.1:2725"
submission = ""
http = ""
[relay]
trusted_networks = ["127.0.0.0/8"]
[routes]
"rcpt.test" = "127.0.0.1:2726"
"sender.test" = "127.0.0.1:2726"
TOML
  smtp-sink -u postfix -c 127.0.0.1:2726 512 > /dev/null 2>&1 & sink=$!
  MAILERD_LOG=warn "$bin" --config "$d/mailerd.toml" serve > "$d/log" 2>&1 & m=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/2725) 2>/dev/null && break; sleep 0.1; done
  local perf=""
  if [ -n "${PERF:-}" ]; then perf record -F 999 -g -p "$m" -o "$SCRATCH/perf.data" 2> /dev/null & perf=$!; sleep 0.5; fi
  t0=$(awk '{print $14 + $15}' "/proc/$m/stat"); s=$(date +%s.%N)
  smtp-source -c -s 20 -l 4096 -m "$N" -r "$R" -f s@sender.test -t r@rcpt.test 127.0.0.1:2725 > /dev/null
  for _ in $(seq 3000); do
    q=$(sqlite3 "$d/data/mailerd.db" "SELECT count(*) FROM recipients WHERE state IN ('queued', 'deferred')" 2> /dev/null || echo x)
    [ "$q" = 0 ] && break; sleep 0.2
  done
  e=$(date +%s.%N); t1=$(awk '{print $14 + $15}' "/proc/$m/stat")
  if [ -n "$perf" ]; then kill -INT "$perf"; wait "$perf" || true; fi
  printf '%-40s R=%-3s N=%-6s %6.0f msg/s  %6.3f CPU ms/msg  (left %s)\n' "$bin" "$R" "$N" \
    "$(echo "$N / ($e - $s)" | bc -l)" "$(echo "($t1 - $t0) * 1000 / $TICK / $N" | bc -l)" "$q"
  kill "$m" "$sink" 2> /dev/null || true; wait "$m" "$sink" 2> /dev/null || true
  if [ -n "$perf" ]; then
    perf report -i "$SCRATCH/perf.data" --no-children --sort sym --stdio -g none 2> /dev/null | grep '%' | head -10
  fi
}

command -v sqlite3 > /dev/null || { echo "needs sqlite3 (apt-get install sqlite3)" >&2; exit 1; }
for _ in $(seq "$REPS"); do for b in $BINS; do run "$b"; done; done
