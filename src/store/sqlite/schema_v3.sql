-- Version 3: the sent log. One row per (Message-ID header, remote recipient) of every message
-- that leaves this host, so a bounce that quotes the original can be matched to what we sent
-- (and a "bounce" about mail we never sent recognised as forged). Kept after the message
-- itself is gone.
CREATE TABLE sent_log (
    header_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    queue_id  TEXT NOT NULL,
    sent_at   INTEGER NOT NULL,
    PRIMARY KEY (header_id, recipient, queue_id)
) WITHOUT ROWID;
