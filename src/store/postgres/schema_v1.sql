-- mailerd PostgreSQL schema, version 1: the same tables as SQLite's versions 1-3.
-- Applied once by `migrate` under pg_advisory_xact_lock, recorded in mailerd_schema.
CREATE TABLE messages (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id           TEXT PRIMARY KEY,
    reverse_path TEXT NOT NULL,
    envid        TEXT,
    ret          TEXT,
    size         BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    origin       TEXT NOT NULL,
    -- Set once every recipient is final and reported: the body has been released.
    done         BOOLEAN NOT NULL DEFAULT false,
    body         BYTEA NOT NULL
);
-- Bodies are stored out of line without compression: compressing costs CPU on the commit
-- path of every message, and most bodies are read once and then released.
ALTER TABLE messages ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE TABLE recipients (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id      TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    address         TEXT NOT NULL,
    orcpt           TEXT,
    notify          TEXT,
    transport       TEXT NOT NULL,
    mailbox         TEXT,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    lease_owner     TEXT,
    last_status     TEXT,
    last_detail     TEXT,
    updated_at      BIGINT NOT NULL,
    reply_code      INTEGER,
    remote_mta      TEXT,
    final_reported  BOOLEAN NOT NULL DEFAULT false,
    delay_reported  BOOLEAN NOT NULL DEFAULT false
);
-- The scheduler's only access path: due work by transport, in time order. A claim moves
-- next_attempt_at to the end of the lease, so leased rows drop out of the due range; the
-- claim locks candidate rows FOR UPDATE SKIP LOCKED, so two nodes never take the same row.
CREATE INDEX recipients_due ON recipients (transport, next_attempt_at)
    WHERE state IN ('queued', 'deferred');
CREATE INDEX recipients_message ON recipients (message_id);
CREATE TABLE mailboxes (
    address       TEXT PRIMARY KEY,
    password_hash TEXT,
    quota         BIGINT,
    used_bytes    BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id TEXT NOT NULL,
    recipient  TEXT,
    kind       TEXT NOT NULL,
    status     TEXT,
    detail     TEXT,
    at         BIGINT NOT NULL,
    remote     TEXT
);
CREATE INDEX events_message ON events (message_id);
CREATE TABLE suppressions (
    address    TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    status     TEXT,
    detail     TEXT,
    message_id TEXT,
    created_at BIGINT NOT NULL
);
-- The sent log: one row per (Message-ID header, remote recipient, queue id), kept after the
-- message is gone, so a bounce arriving at any node is matched to mail any node sent.
CREATE TABLE sent_log (
    header_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    queue_id  TEXT NOT NULL,
    sent_at   BIGINT NOT NULL,
    PRIMARY KEY (header_id, recipient, queue_id)
);
