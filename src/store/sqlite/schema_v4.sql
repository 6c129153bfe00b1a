-- Version 4: API keys for the HTTP API (only the SHA-256 of each key is kept), webhook cursors,
-- paused accounts.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    domains    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
-- How far each webhook endpoint has been sent the event stream (at-least-once: the cursor moves
-- only after the endpoint answered 2xx).
CREATE TABLE webhook_cursors (
    endpoint   TEXT PRIMARY KEY,
    last_event INTEGER NOT NULL
);
-- Accounts (SMTP logins, API keys) paused by the hard-bounce breaker until an admin resumes them.
CREATE TABLE paused_accounts (
    account    TEXT PRIMARY KEY,
    detail     TEXT NOT NULL,
    message_id TEXT,
    paused_at  INTEGER NOT NULL
);
