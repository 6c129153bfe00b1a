#!/usr/bin/env bash
# Accept rate of one mailerd node, SQLite vs PostgreSQL, in the same run under the same load
# (Postfix smtp-source, S sessions, SIZE-byte messages, queue.hold). Needs `cargo build --release`,
# postfix (smtp-source), bc, psql and the PostgreSQL of $PG. Usage: N=3000 bench/store_accept.sh
set -euo pipefail
BIN="${BIN:-$(dirname "$0")/../target/release/mailerd}"; N="${N:-5000}"; S="${S:-20}"; SIZE="${SIZE:-4096}"
PG="${PG:-postgres://postgres@127.0.0.1:5432/test}"
run() {
  local name="$1" url="$2" dir; dir=$(mktemp -d)
  cat > "$dir/m.toml" <<TOML
hostname = "bench.mailerd.test"
data_dir = "$dir/data"
[listen]
smtp = "127.0.0.1:2725"
submission = ""
http = ""
[relay]
trusted_networks = ["127.0.0.0/8"]
[queue]
hold = true
$( [ -n "$url" ] && printf '[store]\nurl = "%s"\n' "$url" )
TOML
  MAILERD_LOG=warn "$BIN" serve --config "$dir/m.toml" & local pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/2725) 2>/dev/null && break; sleep 0.1; done
  local t0 t1; t0=$(date +%s.%N)
  /usr/sbin/smtp-source -s "$S" -l "$SIZE" -m "$N" -f s@sender.test -t r@rcpt.test 127.0.0.1:2725
  t1=$(date +%s.%N)
  kill "$pid"; wait "$pid" || true
  echo "$name: $N messages in $(echo "$t1 - $t0" | bc) s = $(echo "$N / ($t1 - $t0)" | bc) msg/s"
  rm -rf "$dir"
}
run sqlite ""
psql -q "$PG" -c "DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench" 2>/dev/null
run postgres "$PG?options=-c%20search_path%3Dbench"
echo "postgres rows: $(psql -At "$PG" -c 'SELECT count(*) FROM bench.messages')"
psql -q "$PG" -c "DROP SCHEMA bench CASCADE" 2>/dev/null
