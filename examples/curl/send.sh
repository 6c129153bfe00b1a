#!/bin/sh
# Sends one message with an Idempotency-Key, then retries the same request as a client would
# after a timeout; the retry must get the same id back. Needs curl.
set -eu
: "${MAILERD_API:?e.g. http://127.0.0.1:8080}" "${MAILERD_KEY:?an API key}" "${MAIL_FROM:?}" "${MAIL_TO:?}"
key="curl-$(date +%s)-$$"
body=$(printf '{"from": "%s", "to": ["%s"], "subject": "Hello from curl", "text": "Sent with an idempotency key."}' \
    "$MAIL_FROM" "$MAIL_TO")
headers=$(mktemp)
trap 'rm -f "$headers"' EXIT

send() {
    # --retry retries on timeouts and 5xx with the same key: safe, never a second message.
    curl --silent --show-error --fail-with-body --retry 3 --max-time 10 \
        -D "$headers" -X POST "$MAILERD_API/api/v1/messages" \
        -H "Authorization: Bearer $MAILERD_KEY" -H 'Content-Type: application/json' \
        -H "Idempotency-Key: $key" --data "$body"
}

first=$(send)
first_id=$(printf '%s' "$first" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')
again=$(send)
again_id=$(printf '%s' "$again" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')
replayed=$(tr -d '\r' < "$headers" | sed -n 's/^[Ii]dempotent-[Rr]eplayed: *//p')
echo "{\"id\": \"$first_id\", \"retry_id\": \"$again_id\", \"replayed\": \"$replayed\"}"
[ -n "$first_id" ] && [ "$first_id" = "$again_id" ] && [ "$replayed" = "true" ]
