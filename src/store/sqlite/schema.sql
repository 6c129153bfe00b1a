-- mailerd SQLite schema, version 1. Applied once, guarded by PRAGMA user_version.
CREATE TABLE messages (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    reverse_path TEXT NOT NULL,
    envid        TEXT,
    ret          TEXT,
    size         INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    origin       TEXT NOT NULL,
    body         BLOB NOT NULL
);
CREATE TABLE recipients (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    address         TEXT NOT NULL,
    orcpt           TEXT,
    notify          TEXT,
    transport       TEXT NOT NULL,
    mailbox         TEXT,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_owner     TEXT,
    last_status     TEXT,
    last_detail     TEXT,
    updated_at      INTEGER NOT NULL
);
-- The scheduler's only access path: due work by transport, in time order. A claim moves
-- next_attempt_at to the end of the lease, so leased rows drop out of the due range.
CREATE INDEX recipients_due ON recipients (transport, next_attempt_at)
    WHERE state IN ('queued', 'deferred');
CREATE INDEX recipients_message ON recipients (message_id);
CREATE TABLE mailboxes (
    address       TEXT PRIMARY KEY,
    password_hash TEXT,
    quota         INTEGER,
    used_bytes    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    recipient  TEXT,
    kind       TEXT NOT NULL,
    status     TEXT,
    detail     TEXT,
    at         INTEGER NOT NULL
);
CREATE INDEX events_message ON events (message_id);
