#!/usr/bin/env bash
# relay-big (issue 22): 100 KB messages (text + HTML alternative + base64 attachment), 2
# recipients each, DKIM-signed and relayed to the shared harness's counting sink by
#   (1) mailerd with [dkim] signing, and
#   (2) a private Postfix instance signing through OpenDKIM as a milter,
# under the same load: one .eml sent N times over S concurrent sessions by
# bench/relay_big.py's asyncio load generator (a new connection per message; REUSE=1 keeps
# connections), the MTAs interleaved in every rep. One JSON line per run (appended to
# $RESULTS), then a table of medians: msg/s, MTA CPU ms per message (whole process tree,
# opendkim included), peak PSS/RSS, the mailerd/Postfix ratio and mailerd's msg/s per core
# used against KumoMTA's published ~115 msg/s per core. Every run checks at the sink that the
# messages arrived DKIM-signed, and verifies a few signatures (python3-dkim).
#
#   N=3000 REPS=3 bench/relay_big.sh          # the measurement (quiet machine, release build)
#   N=300 BIN=target/debug/mailerd bench/relay_big.sh   # a smoke run
#
# Environment: N (3000) REPS (1) S sessions (20) REUSE (0) MTAS ("mailerd postfix")
# BIN (target/release/mailerd) WAIT_IDLE (s to wait for a quiet machine before each run, 0)
# BENCH_SCRATCH (${TMPDIR:-/tmp}/mailerd-relay-big) RESULTS ($BENCH_SCRATCH/results.jsonl)
# SHARED_BENCH (../shared/bench: lib/sink.py, lib/smtpbench.py, peers/postfix/ templates)
# Addresses (loopback): mailerd 127.0.0.14:2525, Postfix 127.0.0.13:2525, OpenDKIM
# inet:8891@127.0.0.1, sink 127.0.0.20:2526. Needs root (Postfix, OpenDKIM's user).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
N="${N:-3000}"; REPS="${REPS:-1}"; S="${S:-20}"; REUSE="${REUSE:-0}"
MTAS="${MTAS:-mailerd postfix}"; WAIT_IDLE="${WAIT_IDLE:-0}"
BIN="${BIN:-$ROOT/target/release/mailerd}"
SHARED_BENCH="$(cd "${SHARED_BENCH:-$ROOT/../shared/bench}" && pwd)"
SCRATCH="${BENCH_SCRATCH:-${TMPDIR:-/tmp}/mailerd-relay-big}"
RESULTS="${RESULTS:-$SCRATCH/results.jsonl}"
MAILERD_LISTEN="${MAILERD_LISTEN:-127.0.0.14:2525}"
PF_LISTEN="${PF_LISTEN:-127.0.0.13:2525}"
MILTER_PORT="${MILTER_PORT:-8891}"
SINK="${SINK:-127.0.0.20:2526}"
PY=/usr/bin/python3
DRIVER="$ROOT/bench/relay_big.py"
export PATH="$PATH:/usr/sbin"
export SHARED_BENCH_LIB="$SHARED_BENCH/lib"

has() { [[ " $MTAS " == *" $1 "* ]]; }
! has mailerd || [ -x "$BIN" ] || { echo "relay_big.sh: no $BIN (cargo build --release, or BIN=...)" >&2; exit 2; }
missing=()
command -v postfix >/dev/null || missing+=(postfix)
command -v opendkim >/dev/null || missing+=(opendkim opendkim-tools)
$PY -c 'import dkim' 2>/dev/null || missing+=(python3-dkim)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
ulimit -n 8192

mkdir -p "$SCRATCH"
touch "$RESULTS"
PIDS_TO_STOP=()
PF="$SCRATCH/postfix"
cleanup() {
    local p
    for p in "${PIDS_TO_STOP[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    [ -f "$PF/etc/main.cf" ] && postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
    [ -f "$SCRATCH/opendkim/opendkim.pid" ] && kill -TERM "$(cat "$SCRATCH/opendkim/opendkim.pid")" 2>/dev/null || true
}
trap cleanup EXIT
port_up() { $PY -c 'import socket,sys; h,p=sys.argv[1].rsplit(":",1); socket.create_connection((h,int(p)),1).close()' "$1" 2>/dev/null; }
wait_port() { local i; for i in $(seq 150); do port_up "$1" && return 0; sleep 0.2; done; echo "nothing listens on $1" >&2; return 1; }

# --- the message and the signing key (one RSA-2048 key, used by both MTAs) -------------------
[ -f "$SCRATCH/big.eml" ] || $PY "$DRIVER" gen-eml "$SCRATCH/big.eml" --sender news@sender.test >/dev/null
K="$SCRATCH/opendkim"
mkdir -p "$K"
if [ ! -f "$K/bench.key" ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$K/bench.key" 2>/dev/null
    echo "v=DKIM1; k=rsa; p=$(openssl pkey -in "$K/bench.key" -pubout -outform DER 2>/dev/null | base64 -w0)" > "$K/bench.txt"
fi
chown opendkim:opendkim "$K" "$K/bench.key"; chmod 700 "$K"; chmod 600 "$K/bench.key"

# --- OpenDKIM as a signing milter (a sysadmin's KeyTable/SigningTable setup) -----------------
if has postfix; then
echo "bench._domainkey.sender.test sender.test:bench:$K/bench.key" > "$K/KeyTable"
echo "*@sender.test bench._domainkey.sender.test" > "$K/SigningTable"
cat > "$K/opendkim.conf" <<CONF
# private OpenDKIM for bench/relay_big.sh (the system /etc/opendkim.conf is not used)
Syslog                  no
UMask                   007
UserID                  opendkim:opendkim
Socket                  inet:$MILTER_PORT@127.0.0.1
PidFile                 $K/opendkim.pid
Mode                    s
Canonicalization        relaxed/simple
SignatureAlgorithm      rsa-sha256
OversignHeaders         From
KeyTable                file:$K/KeyTable
SigningTable            refile:$K/SigningTable
InternalHosts           127.0.0.0/8
# the key lives under the scratch directory in /tmp, which others may write: OpenDKIM's
# "key data is not secure" check would refuse it (and tempfail every message)
RequireSafeKeys         no
CONF
if ! { [ -f "$K/opendkim.pid" ] && kill -0 "$(cat "$K/opendkim.pid")" 2>/dev/null; }; then
    opendkim -x "$K/opendkim.conf"
fi
wait_port "127.0.0.1:$MILTER_PORT"

# --- the private Postfix instance (the shared harness's templates, own address) --------------
if [ -f "$PF/spool/pid/master.pid" ] && postfix -c "$PF/etc" status >/dev/null 2>&1; then
    postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
fi
mkdir -p "$PF/etc" "$PF/spool" "$PF/data"
sed -e "s#@PFX@#$PF#g" -e "s#@LISTEN_IP@#${PF_LISTEN%:*}#g" \
    -e "s#@SINK_IP@#${SINK%:*}#g" -e "s#@SINK_PORT@#${SINK##*:}#g" \
    "$SHARED_BENCH/peers/postfix/main.cf" > "$PF/etc/main.cf"
sed -e "s#@LISTEN@#$PF_LISTEN#g" "$SHARED_BENCH/peers/postfix/master.cf" > "$PF/etc/master.cf"
postconf -c "$PF/etc" -e \
    "smtpd_milters = inet:127.0.0.1:$MILTER_PORT" \
    'non_smtpd_milters = $smtpd_milters' \
    'milter_default_action = accept' \
    'milter_protocol = 6' \
    'syslog_name = postfix-relay-big'
chown postfix "$PF/data"
postfix -c "$PF/etc" check >/dev/null 2>&1 || { script -qc "postfix -c $PF/etc check" /dev/null; exit 1; }
postfix -c "$PF/etc" start >/dev/null 2>&1
wait_port "$PF_LISTEN"
fi

# --- mailerd ---------------------------------------------------------------------------------
if has mailerd; then
M="$SCRATCH/mailerd"
rm -rf "$M"; mkdir -p "$M/data"
cat > "$M/mailerd.toml" <<TOML
hostname = "bench.mailerd.test"
data_dir = "$M/data"
[listen]
smtp = "$MAILERD_LISTEN"
submission = ""
http = ""
[relay]
trusted_networks = ["127.0.0.0/8"]
[routes]
"rcpt.test" = "$SINK"
"sender.test" = "$SINK"
[dkim]
domain = "sender.test"
selector = "bench"
key = "$K/bench.key"
TOML
MAILERD_LOG=warn "$BIN" --config "$M/mailerd.toml" serve </dev/null >"$M/mailerd.log" 2>&1 &
MAILERD_PID=$!
PIDS_TO_STOP+=("$MAILERD_PID")
wait_port "$MAILERD_LISTEN"
sleep 0.5
kill -0 "$MAILERD_PID" 2>/dev/null || { echo "mailerd did not start:" >&2; cat "$M/mailerd.log" >&2; exit 1; }
fi

# --- the runs --------------------------------------------------------------------------------
run_one() { # MTA
    local mta="$1" listen note pids=()
    case "$mta" in
        mailerd) listen="$MAILERD_LISTEN"; note="$MAILERD_VERSION"; pids=(--mta-pid "$MAILERD_PID") ;;
        postfix)
            listen="$PF_LISTEN"; note="$POSTFIX_VERSION"
            # start from an empty queue, and forget destinations marked dead by an earlier run
            postsuper -c "$PF/etc" -d ALL >/dev/null 2>&1 || true
            postkick -c "$PF/etc" public qmgr F 2>/dev/null || true
            pids=(--mta-pid "$(tr -d ' ' < "$PF/spool/pid/master.pid")" --mta-pid "$(cat "$K/opendkim.pid")") ;;
        *) echo "unknown MTA $mta" >&2; return 2 ;;
    esac
    local reuse=(); [ "$REUSE" = 1 ] && reuse=(--reuse)
    $PY "$DRIVER" run --mta "$mta" --listen "$listen" --sink "$SINK" -n "$N" -s "$S" \
        --eml "$SCRATCH/big.eml" "${pids[@]}" "${reuse[@]}" --scratch "$SCRATCH" \
        --dkim-txt "$K/bench.txt" --wait-idle "$WAIT_IDLE" \
        --note "$note" \
        | tee -a "$RESULTS" || true
}
MAILERD_VERSION="mailerd $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || true)"
POSTFIX_VERSION="postfix $(postconf -h -d mail_version) + $(opendkim -V 2>&1 | head -1 || true)"
FIRST_RESULT=$(wc -l < "$RESULTS" 2>/dev/null || echo 0)
for rep in $(seq "$REPS"); do
    order="$MTAS"
    # interleave: every rep runs each MTA once, and the order alternates between reps
    [ $((rep % 2)) = 0 ] && order="$(echo "$MTAS" | tr ' ' '\n' | tac | tr '\n' ' ')"
    for mta in $order; do run_one "$mta"; done
done
tail -n +"$((FIRST_RESULT + 1))" "$RESULTS" > "$SCRATCH/this-run.jsonl"
echo
$PY "$DRIVER" table "$SCRATCH/this-run.jsonl"
