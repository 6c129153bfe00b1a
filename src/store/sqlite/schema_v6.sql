-- Version 6: scopes for the HTTP API (issue 14). A suppression entry belongs to a sender
-- domain (the domain whose mail hard-bounced, or of the API key that added it; NULL: seen
-- only by admins), and an address may have one entry per domain: any entry refuses the
-- address at RCPT, each is listed and removed only within its scope. Entries made before
-- this version keep NULL. The table is rebuilt because its primary key changes.
CREATE TABLE suppressions_v6 (
    address    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    status     TEXT,
    detail     TEXT,
    message_id TEXT,
    created_at INTEGER NOT NULL,
    domain     TEXT
);
INSERT INTO suppressions_v6 (address, reason, status, detail, message_id, created_at)
    SELECT address, reason, status, detail, message_id, created_at FROM suppressions;
DROP TABLE suppressions;
ALTER TABLE suppressions_v6 RENAME TO suppressions;
-- One entry per (address, scope); also the lookup by address at RCPT.
CREATE UNIQUE INDEX suppressions_scope ON suppressions (address, ifnull(domain, ''));
-- API keys say whether they are admin keys (a key made before this version without domains
-- was one in all but name, and is one now), and when they were last used.
ALTER TABLE api_keys ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
UPDATE api_keys SET admin = 1 WHERE domains = '[]';
