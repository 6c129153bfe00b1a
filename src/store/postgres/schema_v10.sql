-- Version 10: idempotency keys of the HTTP API (issue 17; SQLite's version 8). One row per
-- (API key id, Idempotency-Key), written in the same transaction as the message it made,
-- holding the SHA-256 of the request body and the response to replay. Rows live 24 h
-- (`expires_at`): reads ignore expired rows, and each insert of a new row sweeps a few
-- expired ones.
CREATE TABLE idempotency (
    api_key      TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (api_key, key)
);
CREATE INDEX idempotency_expiry ON idempotency (expires_at);
