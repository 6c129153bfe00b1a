#!/usr/bin/env bash
# The abuse figures of issue 14, measured in one run on a release build, loopback only:
#   (a) one IP holds 1,000 SMTP connection attempts and 10,000 HTTP connections while a client
#       from another loopback address delivers (time to 250), plus the daemon's descriptors and
#       RSS before, during and after the flood (a child-process daemon);
#   (b) slowloris at 1 byte / 5 s inside a command and inside DATA: when each is closed;
#   (c) 200 wrong dashboard passwords from one IP: how many were checked before throttling;
#   (d) a key scoped to one domain: messages, events, suppressions of another domain it reads;
#   (e) hostile JSON inputs to POST /api/v1/messages: how many injected a header or a part;
#   (f) an authenticated user sending as another domain: how many were refused;
#   and the per-client limit, the separate MX/submission pools, junk commands, recipient
#   overflow, the HTTP cap and idle close, a full disk (root only: a tmpfs of its own).
# The measurements are the integration tests of tests/it/{abuse,login_throttle,api_scopes,
# api_injection,sender_login}.rs, built with --release; each prints its figures.
#
# Usage: bench/abuse.sh            (CASES=N: hostile JSON inputs, default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${TMPDIR:-/tmp}/mailerd-abuse-$$.log"
export MAILERD_INJECTION_CASES="${CASES:-2000}"
export MAILERD_TEST_POSTGRES_URL="${MAILERD_TEST_POSTGRES_URL:-}"
status=0
cargo test --release --quiet --test it -- --nocapture --test-threads=1 \
    abuse:: login_throttle api_scopes api_injection sender_login >"$out" 2>&1 || status=$?
echo "== mailerd abuse figures ($(git rev-parse --short HEAD), release build) =="
grep -oE '(flood from|slowloris|per-client limit|MX pool|500 pipelined|150 pipelined|HTTP cap|disk full|SKIP|dashboard,|SMTP AUTH|sender ownership|sender_login_match|scoped key|hostile JSON).*' "$out" || true
grep -E '^test result' "$out" || true
if [ "$status" -ne 0 ]; then
    echo "some measurements failed their assertion: see $out"
    grep -E 'panicked|FAILED' "$out" | head -20
    exit "$status"
fi
rm -f "$out"
