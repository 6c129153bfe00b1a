#!/usr/bin/env bash
# Cluster throughput: messages accepted and delivered per second by 1, 2 and 3 mailerd nodes on
# one PostgreSQL, against one node on SQLite, in the same run under the same load: Postfix's
# smtp-source with S sessions split evenly over the nodes (N messages of SIZE bytes), every
# message relayed to one smtp-sink. "Delivered" is counted by the nodes' /metrics.
# Where the limit is: PostgreSQL commits and WAL flushes per second (pg_stat_database,
# pg_stat_wal), CPU seconds used by mailerd and by PostgreSQL during the run, and how busy the
# machine's cores were (the rest went to smtp-source and smtp-sink).
# Needs `cargo build --release`, postfix (smtp-source, smtp-sink), psql, curl, and the
# PostgreSQL of $PG. Usage: N=6000 bench/cluster.sh    (CONFIGS="sqlite pg1 pg2 pg3" by default;
# ROUNDS=3 runs every configuration three times, interleaved, and reports medians: this machine
# is shared and one run's figure can be off by a third)
set -euo pipefail
BIN="${BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release/mailerd}"
N="${N:-6000}"; S="${S:-24}"; SIZE="${SIZE:-4096}"; CONFIGS="${CONFIGS:-sqlite pg1 pg2 pg3}"; ROUNDS="${ROUNDS:-1}"
RESULTS=$(mktemp)
PG="${PG:-postgres://postgres@127.0.0.1:5432/test}"
DB="$(psql -At "$PG" -c 'SELECT current_database()')"
export PATH="$PATH:/usr/sbin"
SINK=127.0.0.1:2799
TICK=$(getconf CLK_TCK)

# CPU seconds used so far by the given pids (user + system).
cpu_of() { local t=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "scale=2; $t / $TICK" | bc; }
# CPU seconds so far of every live process of user postgres (read before the load and at its
# end, while the nodes' pooled connections are still open).
pg_cpu() { cpu_of $(pgrep -u postgres || true); }
# Busy and total jiffies of the whole machine.
machine() { awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
pg_stats() { psql -At "$PG" -c "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = '$DB') || ' ' || (SELECT wal_sync FROM pg_stat_wal)"; }
delivered() {
  local sum=0 port v
  for port in "$@"; do
    v=$(curl -s "http://127.0.0.1:$port/metrics" | awk -F' ' '/^mailerd_recipient_outcomes_total\{outcome="delivered"\}/{print $2}')
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -f "$RESULTS"' EXIT
run() {
  local name="$1" nodes="$2" url="$3" dir; dir=$(mktemp -d)
  local pids=() ports=() i
  for ((i = 0; i < nodes; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/27${i}5") 2>/dev/null; then echo "port 27${i}5 is taken" >&2; exit 1; fi
  done
  smtp-sink -u postfix -c "$SINK" 512 > /dev/null 2>&1 & local sink=$!; PIDS+=("$sink")
  for ((i = 0; i < nodes; i++)); do
    mkdir -p "$dir/n$i"
    cat > "$dir/n$i.toml" <<TOML
hostname = "node$i.bench.test"
data_dir = "$dir/n$i"
[listen]
smtp = "127.0.0.1:27${i}5"
submission = ""
http = "127.0.0.1:28${i}5"
[relay]
trusted_networks = ["127.0.0.0/8"]
[routes]
"rcpt.test" = "$SINK"
[outbound]
max_connections_per_destination = 20
[dns]
nameservers = ["127.0.0.1:9"]
[bounce]
return_path_domain = "bounces.bench.test"
check_authentication = false
$( [ -n "$url" ] && printf '[store]\nurl = "%s"\n' "$url" )
TOML
    MAILERD_LOG=warn "$BIN" serve --config "$dir/n$i.toml" & pids+=($!); PIDS+=($!); ports+=("28${i}5")
  done
  for ((i = 0; i < nodes; i++)); do
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/27${i}5") 2>/dev/null && break; sleep 0.1; done
  done
  local pg0="- -" m0 t0 t1 t2 sources=() pgc0=0
  [ -n "$url" ] && pg0=$(pg_stats) && pgc0=$(pg_cpu)
  m0=$(machine); t0=$(date +%s.%N)
  for ((i = 0; i < nodes; i++)); do
    smtp-source -s $((S / nodes)) -l "$SIZE" -m $((N / nodes)) -f s@sender.test -t r@rcpt.test "127.0.0.1:27${i}5" &
    sources+=($!)
  done
  wait "${sources[@]}"; t1=$(date +%s.%N)
  local total=$(( (N / nodes) * nodes )) waited=0
  until [ "$(delivered "${ports[@]}")" -ge "$total" ] || [ $waited -gt 6000 ]; do sleep 0.05; waited=$((waited + 1)); done
  t2=$(date +%s.%N)
  local m1 pg1="- -" cpu_m cpu_pg="-" commits="-" syncs="-" per_msg="-"
  m1=$(machine); cpu_m=$(cpu_of "${pids[@]}")
  if [ -n "$url" ]; then
    pg1=$(pg_stats); cpu_pg=$(echo "$(pg_cpu) - $pgc0" | bc)
    read -r c0 w0 <<<"$pg0"; read -r c1 w1 <<<"$pg1"
    commits=$(echo "($c1 - $c0) / ($t2 - $t0)" | bc); syncs=$(echo "($w1 - $w0) / ($t2 - $t0)" | bc)
    per_msg=$(echo "scale=2; ($c1 - $c0) / $total" | bc)
  fi
  read -r b0 a0 <<<"$m0"; read -r b1 a1 <<<"$m1"
  local busy; busy=$(echo "100 * ($b1 - $b0) / ($a1 - $a0)" | bc)
  echo "$name$nodes $(echo "$total / ($t1 - $t0)" | bc) $(echo "$total / ($t2 - $t0)" | bc)" >> "$RESULTS"
  printf '%-7s %5d nodes  accepted %5d msg/s  delivered %5d msg/s  | PG commits %5s/s (%s per msg), WAL flushes %5s/s | CPU s: mailerd %6s, postgres %6s | machine %s%% busy\n' \
    "$name" "$nodes" "$(echo "$total / ($t1 - $t0)" | bc)" "$(echo "$total / ($t2 - $t0)" | bc)" \
    "$commits" "$per_msg" "$syncs" "$cpu_m" "$cpu_pg" "$busy"
  kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true
  kill "$sink" 2>/dev/null || true; wait "$sink" 2>/dev/null || true
  rm -rf "$dir"
}

echo "N=$N messages of $SIZE bytes, $S smtp-source sessions split over the nodes, $(nproc) cores, $ROUNDS round(s)"
for round in $(seq "$ROUNDS"); do
for c in $CONFIGS; do
  case "$c" in
    sqlite) run sqlite 1 "" ;;
    pg[1-9])
      k=${c#pg}
      psql -q "$PG" -c "DROP SCHEMA IF EXISTS bench_cluster CASCADE; CREATE SCHEMA bench_cluster" 2>/dev/null
      run "pg" "$k" "$PG?options=-c%20search_path%3Dbench_cluster"
      psql -q "$PG" -c "DROP SCHEMA bench_cluster CASCADE" 2>/dev/null ;;
  esac
done
done

# Medians over the rounds, and each configuration against SQLite's median of the same run.
echo "medians over $ROUNDS round(s) (delivered msg/s, ratio to sqlite):"
python3 - "$RESULTS" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, accepted, delivered = line.split()
    runs.setdefault(name, []).append(int(delivered))
base = statistics.median(runs["sqlite1"]) if "sqlite1" in runs else None
for name, v in runs.items():
    m = statistics.median(v)
    ratio = f"  {m / base:.2f}x sqlite" if base else ""
    print(f"  {name:8} {m:7.0f} msg/s  (runs: {', '.join(map(str, v))}){ratio}")
PY
