-- Version 13: suppression scopes (issue 18; SQLite's version 11). An entry refuses its address
-- for every sender (`global`: hard bounces, complaints, entries added by hand) or only for
-- mail from its `domain` (`sender_domain`: an RFC 8058 unsubscribe). Entries made before keep
-- `global`.
ALTER TABLE suppressions ADD COLUMN scope TEXT NOT NULL DEFAULT 'global';
