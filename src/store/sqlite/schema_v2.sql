-- Version 2: the remote side of delivery attempts (for events and DSNs).
ALTER TABLE recipients ADD COLUMN reply_code INTEGER;
ALTER TABLE recipients ADD COLUMN remote_mta TEXT;
ALTER TABLE events ADD COLUMN remote TEXT;
