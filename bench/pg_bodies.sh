#!/usr/bin/env bash
# Message bodies on PostgreSQL: bytea in the message row (what mailerd uses) against large
# objects, for the life of one body in the queue: store it (its own commit), read it back once
# for delivery, release it. pgbench with 4 clients per case, bodies of 4 KB, 64 KB and 1 MB,
# made on the server (the same bytes for both: the wire cost of sending a body is the same
# bytea parameter either way), synchronous_commit as the server has it.
# Prints bodies/s per method and size, and large objects as a ratio of bytea in the same run.
# Needs psql and pgbench. Usage: bench/pg_bodies.sh   (PG=postgres://… SECONDS_PER_CASE=5)
set -euo pipefail
PG="${PG:-postgres://postgres@127.0.0.1:5432/test}"
SECS="${SECONDS_PER_CASE:-5}"
SCHEMA=bench_bodies
WORK=$(mktemp -d)
trap 'psql -q "$PG" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" 2>/dev/null || true; rm -rf "$WORK"' EXIT

psql -q "$PG" <<SQL
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS $SCHEMA CASCADE;
CREATE SCHEMA $SCHEMA;
SET search_path = $SCHEMA;
-- As mailerd's messages table stores them: uncompressed, out of line above the row limit.
CREATE TABLE body_bytea (id BIGINT PRIMARY KEY, body BYTEA NOT NULL);
ALTER TABLE body_bytea ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE body_bytea SET (toast_tuple_target = 8160);
CREATE TABLE body_lo (id BIGINT PRIMARY KEY, body OID);
CREATE SEQUENCE ids;
SQL

cat > "$WORK/bytea.sql" <<'SQL'
INSERT INTO body_bytea (id, body) VALUES (nextval('ids'), decode(repeat('a5', :size), 'hex')) RETURNING id \gset
SELECT length(body) FROM body_bytea WHERE id = :id;
UPDATE body_bytea SET body = '\x' WHERE id = :id;
SQL
cat > "$WORK/lo.sql" <<'SQL'
INSERT INTO body_lo (id, body) VALUES (nextval('ids'), lo_from_bytea(0, decode(repeat('a5', :size), 'hex'))) RETURNING id \gset
SELECT length(lo_get(body)) FROM body_lo WHERE id = :id;
SELECT lo_unlink(body) FROM body_lo WHERE id = :id;
UPDATE body_lo SET body = NULL WHERE id = :id;
SQL

tps() {
  PGOPTIONS="-c search_path=$SCHEMA" pgbench -n -c 4 -j 2 -T "$SECS" -D size="$2" -f "$WORK/$1.sql" "$PG" 2>/dev/null |
    awk '/^tps = /{printf "%d", $3}'
}

echo "bodies/s through store + read + release, 4 clients, ${SECS}s per case"
printf '%-8s %14s %14s %10s\n' size bytea large-object ratio
for size in 4096 65536 1048576; do
  b=$(tps bytea "$size"); l=$(tps lo "$size")
  printf '%-8s %14s %14s %9.2fx\n' "$size" "$b" "$l" "$(echo "$l / $b" | bc -l)"
done
