-- Version 8: scopes for the HTTP API (issue 14; SQLite's version 6). A suppression entry
-- belongs to a sender domain (the domain whose mail hard-bounced, or of the API key that
-- added it; NULL: seen only by admins), and an address may have one entry per domain: any
-- entry refuses the address at RCPT, each is listed and removed only within its scope.
-- Entries made before this version keep NULL.
ALTER TABLE suppressions ADD COLUMN domain TEXT;
ALTER TABLE suppressions DROP CONSTRAINT suppressions_pkey;
-- One entry per (address, scope); also the lookup by address at RCPT.
CREATE UNIQUE INDEX suppressions_scope ON suppressions (address, COALESCE(domain, ''));
-- API keys say whether they are admin keys (a key made before this version without domains
-- was one in all but name, and is one now), and when they were last used.
ALTER TABLE api_keys ADD COLUMN admin BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
UPDATE api_keys SET admin = true WHERE domains = '[]';
