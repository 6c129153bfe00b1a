-- Version 14: API sandbox sends (issue 17; SQLite's version 12). Their events are marked; their messages are kept
-- (with the origin saying sandbox) but have no recipient rows, so nothing claims them.
ALTER TABLE events ADD COLUMN sandbox boolean NOT NULL DEFAULT false;
