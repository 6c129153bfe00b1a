-- Version 2: what the HTTP API needs (SQLite's version 4): API keys, webhook cursors, paused
-- accounts; and the transaction id of each event, so the event stream never moves its cursor
-- past an event whose transaction has not committed yet (ids are taken at insert, commits
-- land in any order across nodes).
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    domains    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE webhook_cursors (
    endpoint   TEXT PRIMARY KEY,
    last_event BIGINT NOT NULL
);
CREATE TABLE paused_accounts (
    account    TEXT PRIMARY KEY,
    detail     TEXT NOT NULL,
    message_id TEXT,
    paused_at  BIGINT NOT NULL
);
ALTER TABLE events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
