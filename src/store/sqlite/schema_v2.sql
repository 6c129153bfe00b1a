-- Version 2: the remote side of delivery attempts (for events and DSNs).
ALTER TABLE recipients ADD COLUMN reply_code INTEGER;
ALTER TABLE recipients ADD COLUMN remote_mta TEXT;
ALTER TABLE events ADD COLUMN remote TEXT;
-- Which reports (DSNs) have been sent for a recipient, so each is sent once.
ALTER TABLE recipients ADD COLUMN final_reported INTEGER NOT NULL DEFAULT 0;
ALTER TABLE recipients ADD COLUMN delay_reported INTEGER NOT NULL DEFAULT 0;
-- Set once every recipient is final and reported: the body has been released.
ALTER TABLE messages ADD COLUMN done INTEGER NOT NULL DEFAULT 0;
CREATE TABLE suppressions (
    address    TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    status     TEXT,
    detail     TEXT,
    message_id TEXT,
    created_at INTEGER NOT NULL
);
