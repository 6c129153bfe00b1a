-- Version 20 (SQLite's version 18): API templates and per-key sandbox mode (issue 17). A
-- template belongs to the API key that stored it (by key id, so a rotated key keeps its
-- templates; another key never sees it) and is named by the caller; its parts are minijinja
-- sources rendered at send time.
CREATE TABLE templates (
    api_key    TEXT NOT NULL,
    name       TEXT NOT NULL,
    subject    TEXT,
    text       TEXT,
    html       TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (api_key, name)
);
-- A sandbox key: every send of it is a sandbox send (checked and recorded, never delivered).
ALTER TABLE api_keys ADD COLUMN sandbox BOOLEAN NOT NULL DEFAULT false;
